// Package sidecar is meshbench's builtin data plane: an xDS-driven HTTP
// proxy that implements the Envoy behaviour of the fields Istio sets, for
// one pod (sidecar mode) or as an ingress gateway (router mode).
//
// The request path, one file a stage: the listener that took the request
// picks the route table (listener.go: outbound, inbound with its RBAC and
// x-forwarded-client-cert, or the gateway's; the chains are indexed by
// port, and a connection's client-certificate facts are derived once,
// peercert.go); the route is matched, its fault filter applied and the
// request prepared as it will go upstream, rewrites and header edits
// included (route.go); forward makes attempts under the stream's timers,
// the route timeout, max stream duration and idle timeout, which end one
// context (stream.go), and the retry policy (forward.go), each through the
// cluster's circuit breakers (breakers.go) to a host the balancer picks
// (upstream.go; each attempt's request in one allocation,
// upstream_request.go; connections opened as Envoy's pool opens them,
// connectgate.go), and judges each failure, a typed value, against the retry
// policy (retry.go); shadow copies go out with the first attempt
// (mirror.go); the answer streams back and the exchange is recorded in
// Istio's metrics (metrics.go). An upgrade (WebSocket) the HCM and route
// allow goes upstream as asked and, after a 101, carries bytes both ways
// (upgrade.go). A tcp_proxy chain (tcpproxy.go) copies a connection's
// bytes to a host of its cluster and counts it in Istio's TCP metrics.
// An HCM with tracing decides whether each request is sampled, sends its
// B3 context upstream and reports its span, batched to the Zipkin
// collector cluster off the request path (tracing.go).
//
// Interception mode (Config.Intercept), for pods whose traffic
// istio-iptables redirects and whose config is istiod's own: every listener
// with bind_to_port unset or true binds its address (istiod's
// virtualOutbound 0.0.0.0:15001 and virtualInbound 0.0.0.0:15006) and takes
// raw TCP as Envoy does (intercept.go): original_dst restores the
// destination (SO_ORIGINAL_DST), tls_inspector and http_inspector peek at
// the first bytes, use_original_dst hands the connection to the listener
// of its original destination (exact address, else 0.0.0.0 and the port,
// as istiod's bind_to_port false 0.0.0.0_80), the filter chain is chosen
// in Envoy's order (chainmatch.go), and the chain's HTTP connection
// manager or tcp_proxy (tcpproxy.go) serves it. ORIGINAL_DST clusters
// connect to the connection's original destination, from
// upstream_bind_config's 127.0.0.6 for istiod's inbound clusters, which
// istio-iptables lets through. docs/fidelity.md ("istiod's xDS under
// interception") lists what of istiod's xDS is acted on, ignored or refused.
//
// Where it differs from Envoy, by design, outside interception mode:
//   - There are no iptables. The app sends its calls to the 15001 listener as
//     to an HTTP forward proxy (a Unix socket of the pod's own on the local
//     runtime, the pod's loopback on docker), and the destination port comes
//     from the Host header; the inbound chains of virtualInbound bind the pod
//     IP on their destination ports, so EDS endpoints (pod IP:targetPort)
//     reach them directly. Raw TCP comes as an HTTP/1.1 CONNECT naming the
//     service's VIP and port, which stand for the original destination: the
//     tunnel is handed to that address's outbound TCP listener and its
//     tcp_proxy (tcpconnect.go); an inbound TCP port is served as under
//     interception, without the hand-off.
//   - A CDS, LDS or RDS update with one bad resource is NACKed whole, where
//     Envoy may accept the good resources of the update.
//   - HTTP/1.1 and HTTP/2 are spoken downstream on every HTTP listener
//     (h2 by ALPN over TLS, h2c with prior knowledge in plaintext), and
//     upstream as the cluster's HttpProtocolOptions say (upstream_h2.go).
//
// Under pilot-agent (the kind runtime), the sidecar runs from Envoy's
// bootstrap instead (bootstrap.go): the node verbatim, ADS and SDS over
// pilot-agent's Unix sockets (sds.go), Envoy's admin API and the
// bootstrap's static listeners (admin.go).
package sidecar

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshbench/meshbench/sim/h1"
	"github.com/meshbench/meshbench/sim/istionames"
)

// PrometheusPort serves /stats/prometheus, as Envoy's stats endpoint in Istio.
const PrometheusPort = 15090

// Config says who the sidecar is and where its control plane is.
type Config struct {
	NodeID string
	// Router makes the proxy an ingress gateway: its bound listeners route
	// with RDS and report as the source workload of what they forward.
	Router bool
	IP     netip.Addr
	XDS    string // control plane address host:port
	// XDSToken is the credential the proxy presents on its ADS stream
	// (xdsserver.Tokens); the control plane serves it only its own node.
	XDSToken string
	// OutboundIP, when set, is where the 15001 capture listener binds instead
	// of IP: loopback inside a pod's network namespace, so that only the
	// pod's own app can send through it.
	OutboundIP netip.Addr
	// OutboundSocket, when set, is a Unix socket path where the 15001
	// capture listener listens instead: in a directory only the pod's own
	// app is given, so no other process can send through the sidecar.
	OutboundSocket string
	// Intercept is the mode of a pod whose traffic istio-iptables
	// redirects (the kind runtime, under pilot-agent): every listener with
	// bind_to_port unset or true binds its own address (istiod's
	// virtualOutbound 0.0.0.0:15001 and virtualInbound 0.0.0.0:15006, a
	// gateway's 0.0.0.0_8080) and serves raw TCP as Envoy does: original
	// destination, listener filters, hand-off to the listener of the
	// original destination, filter chain match, then the chain's HTTP
	// connection manager or tcp_proxy (intercept.go). OutboundIP,
	// OutboundSocket and the per-port inbound binds do not apply.
	Intercept bool
	// InterceptBindIP, when set, is where listeners on 0.0.0.0 bind under
	// Intercept instead: for tests that cannot take the host's wildcard ports.
	InterceptBindIP netip.Addr
	// The workload this proxy belongs to, for metrics and peer metadata.
	Workload, Namespace, App, Version string
	Principal                         string
	Log                               *slog.Logger
	Seed                              uint64

	// Under pilot-agent (FromBootstrap fills these from Envoy's bootstrap;
	// docs/fidelity.md, "Under pilot-agent").

	// Node, when set, is sent verbatim on the ADS and SDS streams instead of
	// one made of NodeID and Workload: istiod reads its metadata.
	Node *core.Node
	// NodeOnFirstMessageOnly sends the node on a stream's first request
	// only (ads_config.set_node_on_first_message_only).
	NodeOnFirstMessageOnly bool
	// SDS, when set ("unix:/path" or host:port), is a SecretDiscoveryService
	// the secrets come from, one StreamSecrets stream per secret name, as
	// Envoy opens them for an sds_config naming the sds-grpc cluster; no
	// secrets are asked for on the ADS stream then.
	SDS string
	// Admin, when set, is where Envoy's admin API listens (host:port); the
	// :15090 server of our own is not started then: the bootstrap's static
	// listener on 15090 routes /stats/prometheus to the admin.
	Admin string
	// StaticListeners are the bootstrap's static listeners (15090, 15021).
	StaticListeners []StaticListener
	// DrainTime is --drain-time-s: how long POST /drain_listeners?graceful
	// discourages connections before it closes the listeners.
	DrainTime time.Duration
	// Bootstrap is the bootstrap in force, for the admin's /config_dump.
	Bootstrap *bootstrapv3.Bootstrap
	// OpenAccessLog, when set, opens the file a file access logger names
	// (e.g. /dev/stdout), once per path; a returned io.Closer is closed
	// with the sidecar. Nil opens the path as Envoy does: appending,
	// created if absent.
	OpenAccessLog func(path string) (io.Writer, error)
	// TracingFlushInterval is Envoy's runtime key
	// tracing.zipkin.flush_interval_ms: how long spans wait for a batch
	// of min_flush_spans (0: Envoy's 5 s).
	TracingFlushInterval time.Duration
}

// state is the config in force: swapped whole on every accepted update.
type state struct {
	listeners map[string]*listenerConf
	// outbound and inbound index the HTTP chains the request path looks
	// up on every request; made with listeners (setListeners), never changed.
	outbound map[int]*chainConf
	inbound  map[inboundChainKey]*chainConf
	routes   map[string]*routeTable
	clusters map[string]*upstream
	versions map[string]string
}

func (s *state) clone() *state {
	n := &state{listeners: map[string]*listenerConf{}, routes: map[string]*routeTable{}, clusters: map[string]*upstream{}, versions: map[string]string{}}
	for k, v := range s.listeners {
		n.listeners[k] = v
	}
	n.outbound, n.inbound = s.outbound, s.inbound
	for k, v := range s.routes {
		n.routes[k] = v
	}
	for k, v := range s.clusters {
		n.clusters[k] = v
	}
	for k, v := range s.versions {
		n.versions[k] = v
	}
	return n
}

// inboundChainKey is what picks a virtualInbound HTTP chain for a request:
// the port it came to and whether it came over TLS.
type inboundChainKey struct {
	port int
	tls  bool
}

// setListeners puts listeners in force with their indexes: the HTTP chain
// of each per-port outbound listener (a TCP port's <VIP>_<port> listener
// is reached by CONNECT, tcpconnect.go), the first by name where several
// take a port, and virtualInbound's HTTP chains, the last where several
// match, as the request path looked them up.
func (s *state) setListeners(listeners map[string]*listenerConf) {
	s.listeners = listeners
	s.outbound, s.inbound = map[int]*chainConf{}, map[inboundChainKey]*chainConf{}
	for _, name := range slices.Sorted(maps.Keys(listeners)) {
		l := listeners[name]
		if l.bind || l.virtual != "" || len(l.chains) == 0 || !l.chains[0].hcm {
			continue
		}
		if _, ok := s.outbound[l.port]; !ok {
			s.outbound[l.port] = &l.chains[0]
		}
	}
	if l := listeners[istionames.VirtualInboundListener]; l != nil {
		for i, c := range l.chains {
			if c.hcm {
				s.inbound[inboundChainKey{port: c.destPort, tls: c.tls != nil}] = &l.chains[i]
			}
		}
	}
}

// outboundChain is the HTTP filter chain of the per-port outbound listener.
func (s *state) outboundChain(port int) *chainConf { return s.outbound[port] }

// routesOf is the route table a chain routes with.
func (s *state) routesOf(c *chainConf) *routeTable {
	switch {
	case c == nil:
		return nil
	case c.inline != nil:
		return c.inline
	}
	return s.routes[c.rds]
}

// Sidecar is a running proxy.
type Sidecar struct {
	cfg     Config
	log     *slog.Logger
	self    peer
	metrics *metrics
	state   atomic.Pointer[state]
	// applyMu makes one apply at a time: the ADS stream and every SDS
	// stream apply from goroutines of their own, and each apply clones the
	// state in force and stores the clone, so two at once would lose one's
	// update (an SDS rotation storing the clusters a CDS update just
	// replaced). Envoy applies every update on its main thread.
	applyMu sync.Mutex

	mu      sync.Mutex
	bound   map[int]*boundServer // by port
	closed  bool
	seeded  uint64
	applied map[string]bool
	ready   chan struct{}

	cancel   context.CancelFunc
	done     chan struct{}
	metricsS *boundServer

	// ctx ends when the sidecar closes; mirrored requests run under it.
	ctx     context.Context
	mirrors sync.WaitGroup

	// secretsV holds the SDS secrets in force; lastSerial the workload cert's serial.
	secretsV   atomic.Pointer[secretSet]
	lastSerial atomic.Pointer[string]
	// needSecrets is set when a listener or cluster references SDS secrets.
	needSecrets atomic.Bool
	// secretNames are the secrets listeners and clusters name, guarded by
	// mu: the proxy is ready once each is in force, as Envoy warms a
	// listener or cluster only when its SDS secrets have arrived.
	secretNames map[string]bool
	// needs records, guarded by mu, the dependent types (EDS, RDS) some
	// cluster or listener has named: readiness waits for them.
	needs    map[string]bool
	sessions tls.ClientSessionCache

	// Header values this proxy sends on every outbound request, made once.
	peerID, peerMetadata []string
	// inboundService is destination_service of what the inbound side serves.
	inboundService string

	admin *adminState // Envoy's admin API and the bootstrap's static listeners (admin.go)
	// logFiles are the access log files open (accesslog.go).
	logFiles logFiles
	// tracers batch spans to the collectors (tracing.go).
	tracers tracers
}

type boundServer struct {
	key  string     // what it serves: "outbound", "inbound:<port>:<chains>", "router:<listener>"
	addr string     // where it listens, as bound
	srv  *h1.Server // HTTP/1.1 itself, HTTP/2 through net/http
	done chan struct{}
	peek *peekListener // for inbound listeners that sort TLS from plaintext
	ic   *interceptServer
}

// Start connects to the control plane and serves what it is sent. Listeners
// bind as LDS names them; Ready tells when every type has arrived.
func Start(cfg Config) (*Sidecar, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Sidecar{
		cfg:      cfg,
		log:      cfg.Log.With("proxy", cfg.NodeID),
		self:     peer{workload: cfg.Workload, namespace: cfg.Namespace, app: cfg.App, version: cfg.Version, principal: orUnknown(cfg.Principal)},
		metrics:  newMetrics(),
		bound:    map[int]*boundServer{},
		applied:  map[string]bool{},
		needs:    map[string]bool{},
		ready:    make(chan struct{}),
		done:     make(chan struct{}),
		seeded:   cfg.Seed,
		logFiles: logFiles{open: cfg.OpenAccessLog},
		sessions: tls.NewLRUClientSessionCache(1024),
	}
	s.peerID = []string{cfg.NodeID}
	s.inboundService = istionames.ServiceHost(cfg.App, cfg.Namespace)
	s.peerMetadata = []string{strings.Join([]string{s.self.workload, s.self.namespace, s.self.app, s.self.version, s.self.principal}, ";")}
	s.registerTracingMetrics(s.metrics.reg)
	s.state.Store(&state{listeners: map[string]*listenerConf{}, routes: map[string]*routeTable{}, clusters: map[string]*upstream{}, versions: map[string]string{}})
	apply := s.apply
	if cfg.Admin != "" {
		if err := s.startAdmin(); err != nil {
			return nil, err
		}
		apply = s.admin.counting(s.apply)
	} else {
		mux := http.NewServeMux()
		h := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
		mux.Handle("/stats/prometheus", h)
		mux.Handle("/metrics", h)
		ms, err := s.serve(net.JoinHostPort(cfg.IP.String(), strconv.Itoa(PrometheusPort)), "metrics", mux)
		if err != nil {
			return nil, err
		}
		s.metricsS = ms
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.ctx = cancel, ctx
	node := cfg.Node
	if node == nil {
		node = &core.Node{Id: cfg.NodeID, Cluster: cfg.Workload + "." + cfg.Namespace}
	}
	var sds *sdsClient
	if cfg.SDS != "" {
		sds = newSDSClient(cfg.SDS, node, apply, s.log)
		apply = sds.routing(apply)
	}
	client := newADSClient(cfg.XDS, cfg.XDSToken, node, apply, s.log)
	client.nodeFirstOnly = cfg.NodeOnFirstMessageOnly
	go func() {
		defer close(s.done)
		if sds != nil {
			go sds.run(ctx)
			defer sds.wait()
		}
		client.run(ctx)
	}()
	return s, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Ready is closed once clusters, endpoints, listeners and routes have each been applied.
func (s *Sidecar) Ready() <-chan struct{} { return s.ready }

// OutboundAddr is the 15001 capture listener the app sends its calls to.
func (s *Sidecar) OutboundAddr() string {
	if s.cfg.OutboundSocket != "" {
		return "unix:" + s.cfg.OutboundSocket
	}
	return net.JoinHostPort(s.bindIP(15001).String(), strconv.Itoa(15001))
}

// listenAddr is where a listener on port listens: "unix:/path" or host:port.
func (s *Sidecar) listenAddr(port int) string {
	if port == 15001 && s.cfg.OutboundSocket != "" {
		return "unix:" + s.cfg.OutboundSocket
	}
	return net.JoinHostPort(s.bindIP(port).String(), strconv.Itoa(port))
}

// bindIP is the address a listener on port binds.
func (s *Sidecar) bindIP(port int) netip.Addr {
	if port == 15001 && s.cfg.OutboundIP.IsValid() {
		return s.cfg.OutboundIP
	}
	return s.cfg.IP
}

// MetricsURL is the Prometheus endpoint.
func (s *Sidecar) MetricsURL() string {
	if s.cfg.Admin != "" {
		return "http://" + s.cfg.Admin + "/stats/prometheus"
	}
	return "http://" + net.JoinHostPort(s.cfg.IP.String(), strconv.Itoa(PrometheusPort)) + "/stats/prometheus"
}

// Version returns the version of a type currently applied.
func (s *Sidecar) Version(typeURL string) string { return s.state.Load().versions[typeURL] }

// Close stops the xDS client and every listener. Open connections are
// closed at once, as when the proxy process ends.
func (s *Sidecar) Close() error {
	s.cancel()
	<-s.done
	s.mu.Lock()
	s.closed = true
	var servers []*boundServer
	if s.metricsS != nil {
		servers = append(servers, s.metricsS)
	}
	if s.admin != nil {
		servers = append(servers, s.admin.servers...)
	}
	for _, b := range s.bound {
		servers = append(servers, b)
	}
	s.bound = map[int]*boundServer{}
	s.mu.Unlock()
	for _, b := range servers {
		b.close()
	}
	s.mirrors.Wait()
	// Requests still ending write their lines first (closed connections
	// end their handlers); a hijacked stream is not waited for long.
	s.logFiles.close(2 * time.Second)
	// Spans still queued go out while the collector's cluster is open.
	s.closeTracers()
	for _, u := range s.state.Load().clusters {
		u.close()
	}
	return nil
}

func (b *boundServer) close() {
	if b.ic != nil {
		b.ic.close()
	}
	_ = b.srv.Close()
	<-b.done
	if b.peek != nil {
		b.peek.wait()
	}
}

func (s *Sidecar) serve(addr, key string, h http.Handler) (*boundServer, error) {
	return s.serveWith(addr, key, h, nil)
}

// serveWith serves h on addr; wrap may put a TLS-sorting listener in front.
func (s *Sidecar) serveWith(addr, key string, h http.Handler, wrap func(net.Listener) *peekListener) (*boundServer, error) {
	network := "tcp"
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, addr = "unix", path
	}
	lis, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	b := &boundServer{key: key, addr: lis.Addr().String(), done: make(chan struct{}), srv: &h1.Server{
		Handler:           h,
		Protocols:         downstreamProtocols(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
		ConnContext:       withConnCert,
	}}
	var l net.Listener = lis
	if wrap != nil {
		b.peek = wrap(lis)
		l = b.peek
	}
	go func() {
		defer close(b.done)
		_ = b.srv.Serve(l)
	}()
	return b, nil
}

// apply is the xDS client's applier: it validates a whole response, then
// swaps the new state in. An error leaves the state as it was.
func (s *Sidecar) apply(typeURL, version string, res []*anypb.Any) (map[string][]string, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	cur := s.state.Load()
	next := cur.clone()
	var deps map[string][]string
	var err error
	switch typeURL {
	case resource.ClusterType:
		deps, err = s.applyClusters(next, res)
	case resource.EndpointType:
		err = applyEndpoints(next, res)
	case resource.ListenerType:
		deps, err = s.applyListeners(next, res)
	case resource.RouteType:
		err = applyRoutes(next, version, res)
	case resource.SecretType:
		err = s.applySecrets(res)
	default:
		err = fmt.Errorf("unsupported type %s", typeURL)
	}
	if err != nil {
		return nil, err
	}
	next.versions[typeURL] = version
	s.state.Store(next)
	if typeURL == resource.ClusterType {
		for name, u := range cur.clusters {
			if next.clusters[name] != u {
				u.close()
			}
		}
	}
	s.mu.Lock()
	for _, name := range deps[resource.SecretType] {
		if name != "" {
			s.needSecrets.Store(true)
			if s.secretNames == nil {
				s.secretNames = map[string]bool{}
			}
			s.secretNames[name] = true
		}
	}
	for _, t := range []string{resource.EndpointType, resource.RouteType} {
		if len(nonEmpty(deps[t])) > 0 {
			s.needs[t] = true
		}
	}
	s.applied[typeURL] = true
	// Envoy's init manager: initialized once CDS and LDS are in and every
	// cluster's EDS and listener's RDS they named has arrived, a proxy named
	// none of them needing none (server/init manager, cds_api_impl.cc).
	if s.applied[resource.ClusterType] && s.applied[resource.ListenerType] &&
		(!s.needs[resource.EndpointType] || s.applied[resource.EndpointType]) &&
		(!s.needs[resource.RouteType] || s.applied[resource.RouteType]) && s.secretsWarm() {
		select {
		case <-s.ready:
		default:
			close(s.ready)
		}
	}
	s.mu.Unlock()
	return deps, nil
}

// secretsWarm reports whether every secret named so far is in force; s.mu held.
func (s *Sidecar) secretsWarm() bool {
	set := s.secrets()
	for name := range s.secretNames {
		if set.certs[name] == nil && set.roots[name] == nil {
			return false
		}
	}
	return true
}

func (s *Sidecar) applyClusters(next *state, res []*anypb.Any) (map[string][]string, error) {
	// Compile every cluster before touching a live one: a NACK must leave
	// the clusters in force exactly as they were.
	compiled := make([]*clusterConf, 0, len(res))
	for _, a := range res {
		c := &cluster.Cluster{}
		if err := a.UnmarshalTo(c); err != nil {
			return nil, err
		}
		cc, err := compileCluster(c)
		if err != nil {
			return nil, err
		}
		compiled = append(compiled, cc)
	}
	clusters := map[string]*upstream{}
	var eds, secrets []string
	for _, cc := range compiled {
		if cc.eds {
			eds = append(eds, cc.edsName)
		}
		if cc.tls != nil {
			secrets = append(secrets, cc.tls.certSecret, cc.tls.rootSecret)
		}
		if u, ok := next.clusters[cc.name]; ok && u.conf.Load().eds == cc.eds && u.conf.Load().edsName == cc.edsName && u.conf.Load().originalDst == cc.originalDst {
			old := u.conf.Load()
			u.conf.Store(cc)
			if !sameTLS(old.tls, cc.tls) || old.tlsByMatch != cc.tlsByMatch {
				u.setTLS(cc)
			}
			if !cc.eds {
				u.setEndpoints(cc.static)
			} else if old.ringSize != cc.ringSize {
				u.setEndpoints(endpointsOfHosts(u.hosts.Load().hosts))
			}
			clusters[cc.name] = u
			continue
		}
		s.seeded++
		clusters[cc.name] = newUpstream(cc, s.seeded, s.metrics, s.clientTLS)
	}
	next.clusters = clusters
	return map[string][]string{resource.EndpointType: eds, resource.SecretType: nonEmpty(secrets)}, nil
}

func sameTLS(a, b *upstreamTLS) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.certSecret == b.certSecret && a.rootSecret == b.rootSecret && a.sni == b.sni && strings.Join(a.sans, ",") == strings.Join(b.sans, ",") &&
		strings.Join(a.sanPrefixes, ",") == strings.Join(b.sanPrefixes, ",") && strings.Join(a.alpn, ",") == strings.Join(b.alpn, ",")
}

func nonEmpty(xs []string) []string {
	var out []string
	for _, x := range xs {
		if x != "" {
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return dedupe(out)
}

func endpointsOfHosts(hs []*host) []endpointInfo {
	out := make([]endpointInfo, len(hs))
	for i, h := range hs {
		out[i] = h.endpointInfo
	}
	return out
}

func applyEndpoints(next *state, res []*anypb.Any) error {
	byName := map[string]*endpoint.ClusterLoadAssignment{}
	for _, a := range res {
		cla := &endpoint.ClusterLoadAssignment{}
		if err := a.UnmarshalTo(cla); err != nil {
			return err
		}
		if err := checkEndpoints(cla); err != nil {
			return err
		}
		byName[cla.GetClusterName()] = cla
	}
	for _, u := range next.clusters {
		c := u.conf.Load()
		if cla, ok := byName[c.edsName]; ok && c.eds {
			u.setEndpoints(endpointsOf(cla))
		}
	}
	return nil
}

func applyRoutes(next *state, version string, res []*anypb.Any) error {
	routes := map[string]*routeTable{}
	for _, a := range res {
		rc := &route.RouteConfiguration{}
		if err := a.UnmarshalTo(rc); err != nil {
			return err
		}
		rt, err := compileRoutes(rc, version)
		if err != nil {
			return err
		}
		routes[rt.name] = rt
	}
	next.routes = routes
	return nil
}

// applyListeners compiles the listeners, binds the ports they need and
// closes the ones no longer named. A port that cannot be bound fails the update.
func (s *Sidecar) applyListeners(next *state, res []*anypb.Any) (map[string][]string, error) {
	listeners := map[string]*listenerConf{}
	var rds, secrets []string
	want := map[int]string{}
	for _, a := range res {
		l := &listener.Listener{}
		if err := a.UnmarshalTo(l); err != nil {
			return nil, err
		}
		lc, err := compileListener(l)
		if err != nil {
			return nil, err
		}
		if err := s.openAccessLogs(lc); err != nil {
			return nil, err
		}
		listeners[lc.name] = lc
		for _, c := range lc.chains {
			if c.rds != "" {
				rds = append(rds, c.rds)
			}
			if c.tls != nil {
				secrets = append(secrets, c.tls.certSecret, c.tls.rootSecret)
			}
		}
		switch {
		case s.cfg.Intercept:
			if lc.bind {
				want[lc.port] = "intercept:" + lc.name
			}
		case lc.virtual == "virtualOutbound":
			if !s.cfg.Router {
				want[lc.port] = "outbound"
			}
		case lc.virtual == "virtualInbound":
			for _, c := range lc.chains {
				if c.tcp != nil && c.destPort != 0 {
					// A TCP port: its connections are sorted and proxied
					// as under interception, on the pod's address.
					want[c.destPort] = "tcpin:" + lc.name
					continue
				}
				if c.destPort == 0 || !c.hcm {
					continue
				}
				kind := "plain"
				if c.tls != nil {
					kind = "tls"
				}
				k := "inbound:" + strconv.Itoa(c.destPort)
				if prev, ok := want[c.destPort]; ok {
					k = prev
				}
				want[c.destPort] = k + ":" + kind
			}
		case lc.bind && s.cfg.Router:
			want[lc.port] = "router:" + lc.name
		}
	}
	if err := s.rebind(want, listeners); err != nil {
		return nil, err
	}
	next.setListeners(listeners)
	sort.Strings(rds)
	return map[string][]string{resource.RouteType: dedupe(rds), resource.SecretType: nonEmpty(secrets)}, nil
}

// inboundWrap returns the TLS-sorting wrapper of an inbound port, or nil for other listeners.
func (s *Sidecar) inboundWrap(key string, port int, listeners map[string]*listenerConf) func(net.Listener) *peekListener {
	if !strings.HasPrefix(key, "inbound:") {
		return nil
	}
	var tlsCfg *tls.Config
	plain := false
	if l := listeners["virtualInbound"]; l != nil {
		for _, c := range l.chains {
			if c.destPort != port || !c.hcm {
				continue
			}
			if c.tls != nil {
				tlsCfg = s.serverTLS(c.tls)
			} else {
				plain = true
			}
		}
	}
	return func(l net.Listener) *peekListener { return newPeekListener(l, tlsCfg, plain) }
}

func dedupe(xs []string) []string {
	var out []string
	for i, x := range xs {
		if i == 0 || xs[i-1] != x {
			out = append(out, x)
		}
	}
	return out
}

// rebind makes the bound listeners match want (port → what it serves).
func (s *Sidecar) rebind(want map[int]string, listeners map[string]*listenerConf) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("sidecar closed")
	}
	var opened []int
	for port, key := range want {
		if b, ok := s.bound[port]; ok && b.key == key {
			continue
		}
		if s.admin.stopped(key) {
			continue // POST /drain_listeners stopped these, as Envoy's stopListeners does new ones too
		}
		if b, ok := s.bound[port]; ok {
			b.close()
			delete(s.bound, port)
		}
		var b *boundServer
		var err error
		if name, ok := strings.CutPrefix(key, "intercept:"); ok {
			b, err = s.serveIntercept(s.interceptBind(listeners[name]), key, name, false)
		} else if name, ok := strings.CutPrefix(key, "tcpin:"); ok {
			b, err = s.serveIntercept(s.listenAddr(port), key, name, true)
		} else {
			b, err = s.serveWith(s.listenAddr(port), key, s.handler(key, port), s.inboundWrap(key, port, listeners))
		}
		if err != nil {
			for _, p := range opened {
				s.bound[p].close()
				delete(s.bound, p)
			}
			return fmt.Errorf("cannot bind listener on port %d: %w", port, err)
		}
		s.bound[port] = b
		opened = append(opened, port)
	}
	for port, b := range s.bound {
		if _, ok := want[port]; !ok {
			b.close()
			delete(s.bound, port)
		}
	}
	return nil
}
