package sidecar

import (
	"context"
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
	"testing"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshbench/meshbench/sim/ca"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
	"github.com/meshbench/meshbench/sim/xdsserver"
)

// End-to-end: a real xdsserver on 127.0.0.1:0 publishes what xdsgen
// generates; builtin sidecars, each on its pod's own 127.x address, fetch it
// over ADS; httptest apps sit behind their inbound listeners; the test is the
// caller's app, sending through the caller sidecar's 15001 listener as an
// HTTP proxy.

const (
	e2ePaymentHost = "payment.default.svc.cluster.local"
	e2eWait        = 15 * time.Second
)

// e2eSubnet picks a random /24 of 127.64.0.0/10 whose first addresses have
// the sidecar ports free, as sim/local/addr.go does, and hands out .1, .2, ...
func e2eSubnet(t *testing.T) func() (netip.Addr, error) {
	t.Helper()
	for try := 0; try < 50; try++ {
		b := [4]byte{127, byte(64 + rand.IntN(160)), byte(rand.IntN(256)), 0}
		free := true
		for host := byte(1); host <= 4 && free; host++ {
			for _, port := range []int{PrometheusPort, xdsgen.VirtualOutboundPort, 8080} {
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
		if !free {
			continue
		}
		next := byte(0)
		return func() (netip.Addr, error) {
			next++
			a := b
			a[3] = next
			return netip.AddrFrom4(a), nil
		}
	}
	require.FailNow(t, "no free loopback /24")
	return nil
}

// e2eApp is a pod's app: it names its pod, records the attempt count each
// request carries, and is slow on /slow.
type e2eApp struct {
	pod string
	srv *httptest.Server

	mu       sync.Mutex
	attempts []string
}

func (a *e2eApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.attempts = append(a.attempts, r.Header.Get(HeaderAttemptCount))
	a.mu.Unlock()
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

func (a *e2eApp) seen() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.attempts...)
}

func (a *e2eApp) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.attempts = nil
}

type e2eMesh struct {
	t       *testing.T
	reg     *registry.Registry
	cfg     meshconfig.Config
	xds     *xdsserver.Server
	ca      *ca.CA
	certs   map[string]*ca.Cert // by node id
	apps    map[string]*e2eApp
	proxies map[string]*Sidecar
	pods    []*registry.Pod // the pods that run (app and sidecar)
	version int
	client  *http.Client // through the first pod's outbound listener
}

// newE2EMesh starts the control plane, the apps and sidecars of the named
// pods (the first is the caller), publishes version 1 and waits until every
// sidecar is Ready and has ACKed it. Pods not named have no listener: their
// EDS endpoints refuse connections.
func newE2EMesh(t *testing.T, topo registry.Topology, cfg meshconfig.Config, running ...string) *e2eMesh {
	t.Helper()
	// Registered first, so it runs last, once everything below is closed.
	leakOpt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leakOpt) })

	reg, err := registry.New(topo, e2eSubnet(t))
	require.NoError(t, err)
	m := &e2eMesh{t: t, reg: reg, cfg: cfg, apps: map[string]*e2eApp{}, proxies: map[string]*Sidecar{}, certs: map[string]*ca.Cert{}}
	// Workload certificates, served over SDS as Istio's agent does, so that
	// sidecars talk auto mTLS to each other as the runtime has them do.
	m.ca, err = ca.New(xdsgen.TrustDomain, 0)
	require.NoError(t, err)

	m.xds = xdsserver.New(slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	require.NoError(t, m.xds.Start(ctx, "127.0.0.1:0"))
	t.Cleanup(m.xds.Stop)

	for _, name := range running {
		p, ok := reg.Pod(name)
		require.True(t, ok, name)
		app := &e2eApp{pod: name}
		app.srv = httptest.NewServer(app)
		t.Cleanup(app.srv.Close)
		p.AppAddr = app.srv.Listener.Addr().String()
		m.apps[name] = app
		m.pods = append(m.pods, p)
		id, err := m.ca.WorkloadID(p.Namespace, p.ServiceAccount)
		require.NoError(t, err)
		m.certs[p.NodeID()], err = m.ca.Issue(id)
		require.NoError(t, err)
	}
	v := m.publish(nil)
	for _, p := range m.pods {
		sc, err := Start(Config{
			NodeID: p.NodeID(), IP: p.IP, XDS: m.xds.Addr(),
			Workload: p.Workload, Namespace: p.Namespace, App: p.Service, Version: p.Version,
			Principal: p.SPIFFEID(xdsgen.TrustDomain),
			Seed:      7,
		})
		require.NoError(t, err, p.Name)
		t.Cleanup(func() { require.NoError(t, sc.Close()) })
		m.proxies[p.Name] = sc
	}
	for name, sc := range m.proxies {
		select {
		case <-sc.Ready():
		case <-time.After(e2eWait):
			require.FailNow(t, "sidecar not ready", name)
		}
	}
	require.NoError(t, m.waitConverged(v))

	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: m.proxies[running[0]].OutboundAddr()})}
	t.Cleanup(tr.CloseIdleConnections)
	m.client = &http.Client{Transport: tr, Timeout: e2eWait}
	return m
}

func (m *e2eMesh) nodes() []string {
	var out []string
	for _, p := range m.pods {
		out = append(out, p.NodeID())
	}
	return out
}

// publish generates the next version for every running pod, lets mutate
// change it, and sets it on the control plane.
func (m *e2eMesh) publish(mutate func(*xdsgen.Resources)) string {
	m.t.Helper()
	m.version++
	v := strconv.Itoa(m.version)
	gen := xdsgen.New(m.reg, m.cfg)
	for _, p := range m.pods {
		res := gen.ForSidecar(p)
		c := m.certs[p.NodeID()]
		res.Secrets = xdsgen.Secrets(c.CertPEM, c.KeyPEM, m.ca.RootPEM())
		if mutate != nil {
			mutate(&res)
		}
		snap, err := res.Snapshot(v)
		require.NoError(m.t, err)
		require.NoError(m.t, m.xds.SetSnapshot(context.Background(), p.NodeID(), snap))
	}
	return v
}

func (m *e2eMesh) waitConverged(v string) error {
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	return m.xds.WaitConverged(ctx, m.nodes(), v)
}

type e2eResp struct {
	code  int
	hdr   http.Header
	body  string
	took  time.Duration
	flags string
}

// get sends a request for host (payment by default) through the caller's outbound listener.
func (m *e2eMesh) get(host, path string, hdr ...string) e2eResp {
	m.t.Helper()
	if host == "" {
		host = e2ePaymentHost
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+host+path, nil)
	require.NoError(m.t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	start := time.Now()
	resp, err := m.client.Do(req)
	require.NoError(m.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(m.t, err)
	return e2eResp{code: resp.StatusCode, hdr: resp.Header, body: string(b), took: time.Since(start), flags: resp.Header.Get(HeaderResponseFlags)}
}

// counter sums the series of a counter on a sidecar's metrics endpoint whose labels include want.
func (m *e2eMesh) counter(pod, name string, want map[string]string) float64 {
	m.t.Helper()
	v, err := m.scrape(pod, name, want)
	require.NoError(m.t, err)
	return v
}

func (m *e2eMesh) scrape(pod, name string, want map[string]string) (float64, error) {
	// A client of its own: the mesh client would send this through the proxy.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: e2eWait}
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
			sum += mt.GetCounter().GetValue()
		}
	}
	return sum, nil
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

// eventuallyCounter waits until a counter reaches want: the sidecar records
// a request after its response is written, and there is no event for that.
func (m *e2eMesh) eventuallyCounter(pod, name string, labels map[string]string, want float64) {
	m.t.Helper()
	var got float64
	var err error
	if !assert.Eventually(m.t, func() bool {
		got, err = m.scrape(pod, name, labels)
		return err == nil && got == want
	}, e2eWait, 5*time.Millisecond) {
		m.t.Logf("%s%v on %s = %v (err %v), want %v", name, labels, pod, got, err, want)
	}
}

func e2eVS(name string, spec *networking.VirtualService) *networkingv1.VirtualService {
	out := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
	proto.Merge(&out.Spec, spec)
	return out
}

func e2eDR(lb networking.LoadBalancerSettings_SimpleLB, subsets ...string) *networkingv1.DestinationRule {
	spec := &networking.DestinationRule{Host: "payment"}
	if lb != networking.LoadBalancerSettings_UNSPECIFIED {
		spec.TrafficPolicy = &networking.TrafficPolicy{LoadBalancer: &networking.LoadBalancerSettings{
			LbPolicy: &networking.LoadBalancerSettings_Simple{Simple: lb},
		}}
	}
	for _, s := range subsets {
		spec.Subsets = append(spec.Subsets, &networking.Subset{Name: s, Labels: map[string]string{"version": s}})
	}
	out := &networkingv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: "payment", Namespace: "default"}}
	proto.Merge(&out.Spec, spec)
	return out
}

func e2eDest(subset string, weight int32) *networking.HTTPRouteDestination {
	return &networking.HTTPRouteDestination{Destination: &networking.Destination{Host: "payment", Subset: subset}, Weight: weight}
}

func e2eTopology(paymentVersions ...registry.Version) registry.Topology {
	return registry.Topology{Services: []registry.Service{
		{Name: "order", Versions: []registry.Version{{Name: "v1"}}},
		{Name: "payment", Versions: paymentVersions},
	}}
}

// (a) Routing by the RouteConfiguration, with the config version on the
// response, and (e) Istio's standard metric at both ends.
func TestE2ERoutingAndMetrics(t *testing.T) {
	cfg := meshconfig.Config{
		DestinationRules: []*networkingv1.DestinationRule{e2eDR(networking.LoadBalancerSettings_UNSPECIFIED, "v1", "v2")},
		VirtualServices: []*networkingv1.VirtualService{e2eVS("payment", &networking.VirtualService{
			Hosts: []string{"payment"},
			Http: []*networking.HTTPRoute{
				{Name: "jason", Match: []*networking.HTTPMatchRequest{{Headers: map[string]*networking.StringMatch{
					"end-user": {MatchType: &networking.StringMatch_Exact{Exact: "jason"}},
				}}}, Route: []*networking.HTTPRouteDestination{e2eDest("v2", 0)}},
				{Name: "split", Match: []*networking.HTTPMatchRequest{{Uri: &networking.StringMatch{MatchType: &networking.StringMatch_Prefix{Prefix: "/split"}}}},
					Route: []*networking.HTTPRouteDestination{e2eDest("v1", 80), e2eDest("v2", 20)}},
				{Name: "rest", Route: []*networking.HTTPRouteDestination{e2eDest("v1", 0)}},
			},
		})},
	}
	m := newE2EMesh(t, e2eTopology(registry.Version{Name: "v1"}, registry.Version{Name: "v2"}), cfg, "order-v1-0", "payment-v1-0", "payment-v2-0")

	r := m.get("", "/pay")
	require.Equal(t, http.StatusOK, r.code, r.body)
	assert.Equal(t, "payment-v1-0", r.body, "no match: the catch-all route to subset v1")
	assert.Equal(t, "1", r.hdr.Get(HeaderConfigVersion))
	assert.Empty(t, r.flags)

	r = m.get("", "/pay", "end-user", "jason")
	require.Equal(t, http.StatusOK, r.code, r.body)
	assert.Equal(t, "payment-v2-0", r.body, "header match: subset v2")
	assert.Equal(t, "1", r.hdr.Get(HeaderConfigVersion))
	// One attempt each, counted by x-envoy-attempt-count (include_request_attempt_count).
	assert.Equal(t, []string{"1"}, m.apps["payment-v1-0"].seen())
	assert.Equal(t, []string{"1"}, m.apps["payment-v2-0"].seen())

	// The short name works too (the virtual host's domains include "payment").
	r = m.get("payment", "/pay")
	require.Equal(t, http.StatusOK, r.code, r.body)
	assert.Equal(t, "payment-v1-0", r.body)

	// Weighted 80/20: Binomial(200, 0.2) has mean 40 and sd 5.7; ±30 is > 5 sd.
	const n = 200
	v2 := 0
	for range n {
		r := m.get("", "/split")
		require.Equal(t, http.StatusOK, r.code, r.body)
		if r.body == "payment-v2-0" {
			v2++
		}
	}
	assert.InDelta(t, 40, v2, 30)

	// No virtual host for the Host: 404 with flag NR (Envoy's "No route configured").
	r = m.get("nope.default.svc.cluster.local", "/pay")
	assert.Equal(t, http.StatusNotFound, r.code)
	assert.Equal(t, "NR", r.flags)

	// (e) istio_requests_total, labels as Istio's standard metrics
	// (istio.io docs, reference/config/metrics): the client side reports as
	// source, the server side as destination, with the workloads of both.
	toV2 := float64(1 + v2)
	toV1 := float64(2 + n - v2)
	src := map[string]string{
		"reporter": "source", "source_workload": "order-v1", "source_app": "order", "source_version": "v1",
		"destination_service": e2ePaymentHost, "destination_service_name": "payment", "destination_service_namespace": "default",
		"response_code": "200", "response_flags": "-",
	}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	m.eventuallyCounter("order-v1-0", "istio_requests_total", with(src, "destination_workload", "payment-v2", "destination_version", "v2", "destination_app", "payment"), toV2)
	m.eventuallyCounter("order-v1-0", "istio_requests_total", with(src, "destination_workload", "payment-v1", "destination_version", "v1"), toV1)
	m.eventuallyCounter("order-v1-0", "istio_requests_total", map[string]string{"reporter": "source", "response_code": "404", "response_flags": "NR"}, 1)
	dst := with(src, "reporter", "destination", "destination_workload", "payment-v2", "destination_version", "v2", "destination_workload_namespace", "default")
	m.eventuallyCounter("payment-v2-0", "istio_requests_total", dst, toV2)
	m.eventuallyCounter("payment-v2-0", "istio_requests_total", map[string]string{"reporter": "source"}, 0)
}

func breakRouteRegex(res *xdsgen.Resources) {
	for _, rc := range res.Routes {
		if rc.GetName() != "80" {
			continue
		}
		for _, vh := range rc.GetVirtualHosts() {
			if vh.GetName() == e2ePaymentHost+":80" {
				vh.Routes[0].Match.PathSpecifier = &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: "("}}
			}
		}
	}
}

// (b) A route config the proxy refuses is NACKed: the proxy keeps serving
// the previous version (xDS protocol, "ACK/NACK": the NACK carries the last
// good version_info and error_detail), the control plane records the
// reason, and a later good version is ACKed.
func TestE2ENackKeepsPreviousConfig(t *testing.T) {
	m := newE2EMesh(t, e2eTopology(registry.Version{Name: "v1"}), meshconfig.Config{}, "order-v1-0", "payment-v1-0")
	caller := m.proxies["order-v1-0"]
	require.Equal(t, "1", m.get("", "/pay").hdr.Get(HeaderConfigVersion))

	bad := m.publish(breakRouteRegex)
	err := m.waitConverged(bad)
	require.Error(t, err)
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "the NACK ends the wait")
	assert.Contains(t, err.Error(), "rejected config "+bad)
	assert.Contains(t, err.Error(), "RouteConfiguration")
	assert.Contains(t, err.Error(), `invalid regex "("`)

	// Every proxy NACKs (they all get RDS "80"); WaitConverged ended on the first.
	var nack *xdsserver.Nack
	require.Eventually(t, func() bool {
		for _, n := range m.xds.Nacks() {
			if n.Node == m.pods[0].NodeID() {
				nack = &n
				return true
			}
		}
		return false
	}, e2eWait, time.Millisecond)
	assert.Equal(t, resource.RouteType, nack.TypeURL)
	assert.Equal(t, bad, nack.Refused)
	assert.Equal(t, "1", nack.Version, "the NACK names the version the proxy keeps")
	assert.Contains(t, nack.Reason, `invalid regex "("`)

	// Still served, by version 1's routes.
	for range 5 {
		r := m.get("", "/pay")
		require.Equal(t, http.StatusOK, r.code, r.body)
		assert.Equal(t, "1", r.hdr.Get(HeaderConfigVersion))
	}
	assert.Equal(t, "1", caller.Version(resource.RouteType))
	assert.Equal(t, "1", m.xds.Acked(m.pods[0].NodeID(), resource.RouteType))

	// A good version is taken again.
	good := m.publish(nil)
	require.Eventually(t, func() bool {
		return caller.Version(resource.RouteType) == good && m.xds.Acked(m.pods[0].NodeID(), resource.RouteType) == good
	}, e2eWait, time.Millisecond)
	r := m.get("", "/pay")
	require.Equal(t, http.StatusOK, r.code, r.body)
	assert.Equal(t, good, r.hdr.Get(HeaderConfigVersion))
}

// After a NACK, WaitConverged on the next good version returns nil once
// every proxy has ACKed it.
func TestE2EGoodVersionAfterNackConverges(t *testing.T) {
	m := newE2EMesh(t, e2eTopology(registry.Version{Name: "v1"}), meshconfig.Config{}, "order-v1-0", "payment-v1-0")
	bad := m.publish(breakRouteRegex)
	require.Error(t, m.waitConverged(bad))
	good := m.publish(nil)
	require.NoError(t, m.waitConverged(good))
	assert.Equal(t, good, m.get("", "/pay").hdr.Get(HeaderConfigVersion))
}

// (c) Retries. Istio's default policy retries connect-failure twice with the
// previous_hosts predicate (retry.go DefaultPolicy), so a refused endpoint is
// retried on the other one; with attempts 0 there is no policy (retry.go
// ConvertPolicy) and the refused host answers 503 with flag UF ("Upstream
// connection failure in addition to 503 response code", Envoy access log
// response flags). ROUND_ROBIN makes the first pick of every request
// deterministic; with Istio's LEAST_REQUEST a retry may, rarely, land on the
// refused host again within host_selection_retry_max_attempts.
func TestE2ERetriesOnConnectFailure(t *testing.T) {
	cfg := meshconfig.Config{DestinationRules: []*networkingv1.DestinationRule{e2eDR(networking.LoadBalancerSettings_ROUND_ROBIN)}}
	// payment-v1-1 does not run: its endpoint refuses connections.
	m := newE2EMesh(t, e2eTopology(registry.Version{Name: "v1", Replicas: 2}), cfg, "order-v1-0", "payment-v1-0")
	app := m.apps["payment-v1-0"]
	retries := map[string]string{"cluster_name": "outbound|80||" + e2ePaymentHost}
	require.Zero(t, m.counter("order-v1-0", "envoy_cluster_upstream_rq_retry", retries))

	const n = 20
	for i := range n {
		r := m.get("", "/pay")
		require.Equal(t, http.StatusOK, r.code, "request %d: %s %s", i, r.flags, r.body)
		assert.Equal(t, "payment-v1-0", r.body)
		assert.Empty(t, r.flags)
	}
	seen := app.seen()
	require.Len(t, seen, n, "each request reached the app once")
	second := 0
	for _, a := range seen {
		require.Contains(t, []string{"1", "2"}, a)
		if a == "2" {
			second++
		}
	}
	// The app sees the second attempt of the requests whose first went to the refused host.
	assert.Positive(t, second, "attempt counts at the app: %v", seen)
	// Envoy counts each retry in cluster.<name>.upstream_rq_retry.
	assert.Equal(t, float64(second), m.counter("order-v1-0", "envoy_cluster_upstream_rq_retry", retries))
	m.eventuallyCounter("order-v1-0", "istio_requests_total", map[string]string{"reporter": "source", "response_code": "200"}, n)

	// No retries: the refused host's share fails.
	m.cfg.VirtualServices = []*networkingv1.VirtualService{e2eVS("payment", &networking.VirtualService{
		Hosts: []string{"payment"},
		Http: []*networking.HTTPRoute{{
			Route:   []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "payment"}}},
			Retries: &networking.HTTPRetry{Attempts: 0},
		}},
	})}
	v := m.publish(nil)
	require.NoError(t, m.waitConverged(v))
	app.reset()
	before := m.counter("order-v1-0", "envoy_cluster_upstream_rq_retry", retries)
	codes := map[int]int{}
	for range 10 {
		r := m.get("", "/pay")
		codes[r.code]++
		require.Equal(t, v, r.hdr.Get(HeaderConfigVersion))
		switch r.code {
		case http.StatusOK:
			assert.Equal(t, "payment-v1-0", r.body)
		case http.StatusServiceUnavailable:
			assert.Equal(t, "UF", r.flags)
		default:
			require.FailNow(t, "unexpected status", "%d %s %s", r.code, r.flags, r.body)
		}
	}
	// ROUND_ROBIN over two hosts, one pick per request: half fail.
	assert.Equal(t, map[int]int{200: 5, 503: 5}, codes)
	for _, a := range app.seen() {
		assert.Equal(t, "1", a)
	}
	assert.Equal(t, before, m.counter("order-v1-0", "envoy_cluster_upstream_rq_retry", retries))
	m.eventuallyCounter("order-v1-0", "istio_requests_total", map[string]string{"reporter": "source", "response_code": "503", "response_flags": "UF"}, 5)
}

// (d) A route timeout ends the request with 504 and flag UT ("Upstream
// request timeout in addition to 504 response code"); Istio's timeout 0s
// (route.go Notimeout) on other routes leaves slow requests alone.
func TestE2ERouteTimeout(t *testing.T) {
	cfg := meshconfig.Config{VirtualServices: []*networkingv1.VirtualService{e2eVS("payment", &networking.VirtualService{
		Hosts: []string{"payment"},
		Http: []*networking.HTTPRoute{
			{
				Match:   []*networking.HTTPMatchRequest{{Uri: &networking.StringMatch{MatchType: &networking.StringMatch_Exact{Exact: "/slow"}}}},
				Route:   []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "payment"}}},
				Timeout: durationpb.New(50 * time.Millisecond),
			},
			{Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "payment"}}}},
		},
	})}}
	m := newE2EMesh(t, e2eTopology(registry.Version{Name: "v1"}), cfg, "order-v1-0", "payment-v1-0")

	r := m.get("", "/slow")
	assert.Equal(t, http.StatusGatewayTimeout, r.code)
	assert.Equal(t, "UT", r.flags)
	assert.Equal(t, "UT", r.hdr.Get("x-meshbench-response-flags"))
	assert.Equal(t, "upstream request timeout", r.body)
	assert.GreaterOrEqual(t, r.took, 50*time.Millisecond)
	assert.Less(t, r.took, 200*time.Millisecond, "answered at the timeout, not when the app finished")
	m.eventuallyCounter("order-v1-0", "istio_requests_total", map[string]string{"reporter": "source", "response_code": "504", "response_flags": "UT", "destination_service": e2ePaymentHost}, 1)

	// The same slow path on a route without a timeout.
	cfg.VirtualServices[0].Spec.Http[0].Timeout = nil
	v := m.publish(nil)
	require.NoError(t, m.waitConverged(v))
	r = m.get("", "/slow")
	assert.Equal(t, http.StatusOK, r.code, r.body)
	assert.GreaterOrEqual(t, r.took, 200*time.Millisecond)
	assert.Empty(t, r.flags)
}

// (f) The control plane goes away: the proxies keep their last config and
// serve; when it comes back on the same address they reconnect (with
// back-off), resume, and ACK the next version.
func TestE2EControlPlaneRestart(t *testing.T) {
	m := newE2EMesh(t, e2eTopology(registry.Version{Name: "v1"}), meshconfig.Config{}, "order-v1-0", "payment-v1-0")
	addr := m.xds.Addr()
	require.Equal(t, "1", m.get("", "/pay").hdr.Get(HeaderConfigVersion))

	m.xds.Stop()
	for range 10 {
		r := m.get("", "/pay")
		require.Equal(t, http.StatusOK, r.code, r.body)
		assert.Equal(t, "1", r.hdr.Get(HeaderConfigVersion))
	}

	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	require.NoError(t, m.xds.Start(ctx, addr))
	v := m.publish(nil)
	require.NoError(t, m.waitConverged(v))
	r := m.get("", "/pay")
	require.Equal(t, http.StatusOK, r.code, r.body)
	assert.Equal(t, v, r.hdr.Get(HeaderConfigVersion))
	for _, typ := range xdsserver.TypeURLs {
		for _, sc := range m.proxies {
			assert.Equal(t, v, sc.Version(typ), typ)
		}
	}
}

// Guard the helper: a closed address refuses, so "not running" pods are real connect failures.
func TestE2ESubnetAddressesRefuse(t *testing.T) {
	alloc := e2eSubnet(t)
	a, err := alloc()
	require.NoError(t, err)
	_, err = net.DialTimeout("tcp", netip.AddrPortFrom(a, 8080).String(), time.Second)
	require.Error(t, err)
	assert.Contains(t, fmt.Sprint(err), "refused")
}
