package sidecar

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshbench/meshbench/internal/istiotest"
	"github.com/meshbench/meshbench/internal/syncbuf"
	"github.com/meshbench/meshbench/sim/ca"
	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
	"github.com/meshbench/meshbench/sim/xdsserver"
)

// The test mesh rig shared by the e2e, resilience and mTLS tests: a real
// xdsserver on a random 127.x address publishes what xdsgen generates, with
// SDS secrets from a sim/ca CA (so that sidecars talk auto mTLS to each
// other as the local runtime has them do); builtin sidecars, each on its
// pod's own 127.x address, fetch it over ADS; every running pod's app is an
// httptest server behind its sidecar's inbound listener. The test itself is
// the caller's app and sends through the caller sidecar's 15001 listener as
// an HTTP proxy.

const (
	rigPaymentHost = "payment.default.svc.cluster.local"
	rigCaller      = "order-v1-0"
	rigWait        = 15 * time.Second
)

// rigCluster is the label set of payment's outbound cluster (no subset).
var rigCluster = map[string]string{"cluster_name": "outbound|80||" + rigPaymentHost}

// rigSubnet picks a random /24 of 127.64.0.0/10 whose first addresses have
// the sidecar ports free, as sim/local/addr.go does, and hands out .1, .2, ...
func rigSubnet(t *testing.T) func() (netip.Addr, error) {
	t.Helper()
	for range 50 {
		b := [4]byte{127, byte(64 + rand.IntN(160)), byte(rand.IntN(256)), 0}
		free := true
		for host := byte(1); host <= 6 && free; host++ {
			for _, port := range []int{PrometheusPort, istionames.VirtualOutboundPort, 8080, 15010} {
				a := b
				a[3] = host
				l, err := net.Listen("tcp", netip.AddrPortFrom(netip.AddrFrom4(a), uint16(port)).String())
				if err != nil {
					free = false
					break
				}
				_ = l.Close()
			}
		}
		if free {
			next := byte(0)
			return func() (netip.Addr, error) {
				next++
				a := b
				a[3] = next
				return netip.AddrFrom4(a), nil
			}
		}
	}
	require.FailNow(t, "no free loopback /24")
	return nil
}

// rigSeen is one request as an app saw it.
type rigSeen struct {
	id, attempt, host string
	method, path      string
	xfcc              string // x-forwarded-client-cert, "" when there was none
	proto             string // HTTP/1.1 or HTTP/2.0
}

// rigApp is one pod's app: it records every request and answers with handle
// or, by default, 200 and its pod name (naming the pod in x-app-pod too),
// slowly on /slow.
type rigApp struct {
	pod    string
	srv    *httptest.Server
	handle func(w http.ResponseWriter, r *http.Request)

	mu   sync.Mutex
	seen []rigSeen
	// notify, when set, is called with each request under the lock, so a
	// test can wait for a request it expects.
	notify func(rigSeen)
	// arrived gets every request as it comes in (never blocking the app).
	arrived chan rigSeen
}

func (a *rigApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := rigSeen{
		id: r.Header.Get("x-request-id"), attempt: r.Header.Get(HeaderAttemptCount), host: r.Host,
		method: r.Method, path: r.URL.Path, xfcc: r.Header.Get("x-forwarded-client-cert"), proto: r.Proto,
	}
	a.mu.Lock()
	a.seen = append(a.seen, s)
	if a.notify != nil {
		a.notify(s)
	}
	a.mu.Unlock()
	select {
	case a.arrived <- s:
	default:
	}
	if a.handle != nil {
		a.handle(w, r)
		return
	}
	w.Header().Set("x-app-pod", a.pod)
	if r.URL.Path == "/slow" {
		// The app's own service time, not synchronisation.
		timer := time.NewTimer(200 * time.Millisecond)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
			return
		}
	}
	_, _ = io.WriteString(w, a.pod)
}

func (a *rigApp) requests() []rigSeen {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]rigSeen(nil), a.seen...)
}

func (a *rigApp) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seen)
}

// attempts is the x-envoy-attempt-count of every request, in order.
func (a *rigApp) attempts() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, s := range a.seen {
		out = append(out, s.attempt)
	}
	return out
}

func (a *rigApp) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen = nil
}

// rigFail answers every request with code.
func rigFail(code int) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// rigOpts says what newRig starts.
type rigOpts struct {
	topo registry.Topology
	cfg  meshconfig.Config
	// handlers are the apps' handlers by pod name (default: rigApp's).
	handlers map[string]func(http.ResponseWriter, *http.Request)
	// dead pods run nothing: their endpoint (pod IP:8080) refuses connections.
	dead []string
	// ttl is the lifetime of the workload certificates (0: the CA's default).
	ttl time.Duration
	// seed is every sidecar's Config.Seed.
	seed uint64
	// h2c makes the apps take HTTP/2 with prior knowledge too.
	h2c bool
	// listeners, by pod, wrap the app's listener (fakesvc.Listener takes
	// the gRPC connections out for its gRPC server).
	listeners map[string]func(net.Listener) net.Listener
	// accessLogs, by pod, receive the sidecar's access log lines.
	accessLogs map[string]*syncbuf.Buffer
	// tracingFlush is every sidecar's Config.TracingFlushInterval.
	tracingFlush time.Duration
}

type rig struct {
	t       *testing.T
	reg     *registry.Registry
	cfg     meshconfig.Config
	xds     *xdsserver.Server
	ca      *ca.CA
	apps    map[string]*rigApp // by pod name
	proxies map[string]*Sidecar
	pods    []*registry.Pod // the pods that run (app and sidecar)
	version int
	client  *http.Client // through rigCaller's outbound listener
	nextID  atomic.Int64

	mu    sync.Mutex
	certs map[string]*ca.Cert // by node id
}

// newRig starts the control plane on the subnet's first address and, for
// every pod of the topology not dead, an app and a sidecar; publishes
// version 1 and waits until every sidecar is Ready and has ACKed it, SDS
// included.
func newRig(t *testing.T, o rigOpts) *rig {
	t.Helper()
	// Registered first, so it runs last, once everything below is closed.
	leakOpt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leakOpt) })

	alloc := rigSubnet(t)
	cpIP, err := alloc()
	require.NoError(t, err)
	reg, err := registry.New(o.topo, alloc)
	require.NoError(t, err)
	m := &rig{t: t, reg: reg, cfg: o.cfg, apps: map[string]*rigApp{}, proxies: map[string]*Sidecar{}, certs: map[string]*ca.Cert{}}
	m.ca, err = ca.New(istionames.TrustDomain, o.ttl)
	require.NoError(t, err)

	m.xds = xdsserver.New(slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), rigWait)
	defer cancel()
	require.NoError(t, m.xds.Start(ctx, net.JoinHostPort(cpIP.String(), "0")))
	t.Cleanup(m.xds.Stop)

	isDead := map[string]bool{}
	for _, d := range o.dead {
		_, ok := reg.Pod(d)
		require.True(t, ok, d)
		isDead[d] = true
	}
	for _, p := range reg.Pods {
		if isDead[p.Name] {
			continue
		}
		app := &rigApp{pod: p.Name, handle: o.handlers[p.Name], arrived: make(chan rigSeen, 1024)}
		app.srv = httptest.NewUnstartedServer(app)
		if o.h2c {
			var p http.Protocols
			p.SetHTTP1(true)
			p.SetUnencryptedHTTP2(true)
			app.srv.Config.Protocols = &p
		}
		if wrap := o.listeners[p.Name]; wrap != nil {
			app.srv.Listener = wrap(app.srv.Listener)
		}
		app.srv.Start()
		t.Cleanup(app.srv.Close)
		p.AppAddr = app.srv.Listener.Addr().String()
		m.apps[p.Name] = app
		m.pods = append(m.pods, p)
	}
	m.issue()
	v := m.publish()
	for _, p := range m.pods {
		sc, err := Start(Config{
			NodeID: p.NodeID(), IP: p.IP, XDS: m.xds.Addr(),
			Workload: p.Workload, Namespace: p.Namespace, App: p.Service, Version: p.Version,
			Principal: p.SPIFFEID(istionames.TrustDomain),
			Seed:      o.seed, TracingFlushInterval: o.tracingFlush,
			OpenAccessLog: func(string) (io.Writer, error) {
				if s := o.accessLogs[p.Name]; s != nil {
					return s, nil
				}
				return io.Discard, nil
			},
		})
		require.NoError(t, err, p.Name)
		t.Cleanup(func() { require.NoError(t, sc.Close()) })
		m.proxies[p.Name] = sc
	}
	for name, sc := range m.proxies {
		select {
		case <-sc.Ready():
		case <-time.After(rigWait):
			require.FailNow(t, "sidecar not ready", name)
		}
	}
	m.converge(v)

	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: m.proxies[rigCaller].OutboundAddr()})}
	t.Cleanup(tr.CloseIdleConnections)
	m.client = &http.Client{Transport: tr, Timeout: rigWait}
	return m
}

// issue gives every running pod a fresh certificate from the mesh CA.
func (m *rig) issue() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.pods {
		id, err := m.ca.WorkloadID(p.Namespace, p.ServiceAccount)
		require.NoError(m.t, err)
		c, err := m.ca.Issue(id)
		require.NoError(m.t, err)
		m.certs[p.NodeID()] = c
	}
}

func (m *rig) cert(pod string) *ca.Cert {
	p, ok := m.reg.Pod(pod)
	require.True(m.t, ok, pod)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.certs[p.NodeID()]
}

func (m *rig) nodes() []string {
	var out []string
	for _, p := range m.pods {
		out = append(out, p.NodeID())
	}
	return out
}

// publish sets the next version of every running pod's config and secrets,
// after mutate, if any, has changed what xdsgen generated.
func (m *rig) publish(mutate ...func(*xdsgen.Resources)) string {
	m.t.Helper()
	m.version++
	v := strconv.Itoa(m.version)
	gen := xdsgen.New(m.reg, m.cfg)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.pods {
		res := gen.ForSidecar(p)
		c := m.certs[p.NodeID()]
		res.Secrets = xdsgen.Secrets(c.CertPEM, c.KeyPEM, m.ca.RootPEM())
		if len(mutate) > 0 {
			res = res.Clone() // the generator shares messages between proxies
		}
		for _, f := range mutate {
			f(&res)
		}
		snap, err := res.Snapshot(v)
		require.NoError(m.t, err)
		require.NoError(m.t, m.xds.SetSnapshot(context.Background(), p.NodeID(), snap))
	}
	return v
}

// waitConverged waits until every running sidecar has ACKed (or one has
// NACKed) version v of CDS, EDS, LDS and RDS.
func (m *rig) waitConverged(v string) error {
	ctx, cancel := context.WithTimeout(context.Background(), rigWait)
	defer cancel()
	return m.xds.WaitConverged(ctx, m.nodes(), v)
}

// converge waits until every running sidecar has ACKed version v, SDS
// included: xdsserver.WaitConverged waits for CDS, EDS, LDS and RDS only,
// and a sidecar asks for its secrets once clusters and listeners name them,
// so they come last. There is no event for that: poll, within a bound.
// (CDS and LDS of version v are applied by then, so needSecrets is known.)
func (m *rig) converge(v string) {
	m.t.Helper()
	require.NoError(m.t, m.waitConverged(v))
	require.Eventually(m.t, func() bool {
		for _, p := range m.pods {
			// A sidecar whose config names no secret never asks for them.
			if m.proxies[p.Name].needSecrets.Load() && m.xds.Acked(p.NodeID(), resource.SecretType) != v {
				return false
			}
		}
		return true
	}, rigWait, time.Millisecond, "secrets of version %s not ACKed", v)
}

type rigResp struct {
	id    string // the x-request-id call gave it
	code  int
	hdr   http.Header
	body  string
	flags string
	took  time.Duration
	tls   *tls.ConnectionState
}

// rigDo sends one request and reads the whole answer; a transport error is
// returned, not fatal.
func rigDo(c *http.Client, method, u string, hdr ...string) (rigResp, error) {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return rigResp{}, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return rigResp{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return rigResp{}, err
	}
	return rigResp{
		code: resp.StatusCode, hdr: resp.Header, body: string(b), flags: resp.Header.Get(HeaderResponseFlags),
		took: time.Since(start), tls: resp.TLS,
	}, nil
}

// get sends a GET for host (payment by default) through the caller's outbound listener.
func (m *rig) get(host, path string, hdr ...string) rigResp {
	m.t.Helper()
	if host == "" {
		host = rigPaymentHost
	}
	r, err := rigDo(m.client, http.MethodGet, "http://"+host+path, hdr...)
	require.NoError(m.t, err)
	return r
}

// call sends one request to payment's /pay through the caller's sidecar,
// with an x-request-id of its own so that the apps' records can be matched
// to it.
func (m *rig) call(hdr ...string) rigResp {
	m.t.Helper()
	id := fmt.Sprintf("rz-%d", m.nextID.Add(1))
	r := m.get("", "/pay", append([]string{"x-request-id", id}, hdr...)...)
	r.id = id
	return r
}

// scrape sums the series of a counter or gauge on a pod's sidecar whose
// labels include want.
func (m *rig) scrape(pod, name string, want map[string]string) (float64, error) {
	// A client of its own: the mesh client would send this through the proxy.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: rigWait}
	resp, err := c.Get(m.proxies[pod].MetricsURL())
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, mt := range fams[name].GetMetric() {
		if labelsInclude(mt.GetLabel(), want) {
			sum += mt.GetCounter().GetValue() + mt.GetGauge().GetValue()
		}
	}
	return sum, nil
}

// metric is scrape, failing the test on an error.
func (m *rig) metric(pod, name string, want map[string]string) float64 {
	m.t.Helper()
	v, err := m.scrape(pod, name, want)
	require.NoError(m.t, err)
	return v
}

func labelsInclude(ls []*dto.LabelPair, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range ls {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// eventuallyCounter waits until a counter reaches want: a sidecar records
// a request after its response is written, and there is no event for that.
func (m *rig) eventuallyCounter(pod, name string, labels map[string]string, want float64) {
	m.t.Helper()
	var got float64
	var err error
	if !assert.Eventually(m.t, func() bool {
		got, err = m.scrape(pod, name, labels)
		return err == nil && got == want
	}, rigWait, 5*time.Millisecond) {
		m.t.Logf("%s%v on %s = %v (err %v), want %v", name, labels, pod, got, err, want)
	}
}

// rigTopology is order (one pod) calling payment with the given versions.
func rigTopology(payment ...registry.Version) registry.Topology {
	return registry.Topology{Services: []registry.Service{
		{Name: "order", Versions: []registry.Version{{Name: "v1"}}, Calls: []string{"payment"}, Path: "/orders"},
		{Name: "payment", Versions: payment, Path: "/pay"},
	}}
}

// rigVS is payment's VirtualService with the given http routes.
func rigVS(routes ...*networking.HTTPRoute) *networkingv1.VirtualService {
	vs := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "payment", Namespace: "default"}}
	vs.Spec.Hosts = []string{"payment"}
	vs.Spec.Http = routes
	return vs
}

// rigDR is payment's DestinationRule with the given traffic policy and
// subsets by version.
func rigDR(tp *networking.TrafficPolicy, subsets ...string) *networkingv1.DestinationRule {
	// Not istiotest.DestinationRule: tests change tp after the rule is made.
	return &networkingv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: "payment", Namespace: "default"},
		Spec: networking.DestinationRule{Host: "payment", TrafficPolicy: tp, Subsets: istiotest.VersionSubsets(subsets...)}}
}

func rigDest(subset string, weight int32) *networking.HTTPRouteDestination {
	return &networking.HTTPRouteDestination{Destination: &networking.Destination{Host: "payment", Subset: subset}, Weight: weight}
}

func rigRoute(subset string) []*networking.HTTPRouteDestination {
	return []*networking.HTTPRouteDestination{rigDest(subset, 0)}
}

func rigLB(lb networking.LoadBalancerSettings_SimpleLB) *networking.LoadBalancerSettings {
	return &networking.LoadBalancerSettings{LbPolicy: &networking.LoadBalancerSettings_Simple{Simple: lb}}
}
