package sidecar

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// The compiled forms of xDS resources. Each is immutable once built; an
// update builds new values and swaps them in.

// listenerConf is a compiled Listener.
type listenerConf struct {
	name    string
	port    int
	bind    bool // false for Istio's per-port outbound listeners, reached through 15001
	virtual string
	chains  []chainConf
	// What the interception data path reads (intercept.go): the listener's
	// IP, its direction, its listener filters and default_filter_chain.
	addr                        netip.Addr
	inbound                     bool // traffic_direction INBOUND
	originalDst, handOff        bool // original_dst listener filter; use_original_dst
	tlsInspector, httpInspector bool
	tlsDisabled, httpDisabled   portPredicate // filter_disabled, nil: never
	filtersTimeout              time.Duration // listener_filters_timeout, 0: none
	continueOnTimeout           bool
	defaultChain                *chainConf
}

// chainConf is a filter chain holding an HTTP connection manager.
type chainConf struct {
	// netRBAC are the chain's network RBAC filters, judged per connection.
	netRBAC  []*rbacConf
	destPort int         // filter_chain_match.destination_port; 0 matches any
	rds      string      // RDS name, or
	inline   *routeTable // an inline route configuration
	// tls is set on a chain that terminates TLS (a DownstreamTlsContext);
	// transport is filter_chain_match.transport_protocol ("tls", "raw_buffer" or "").
	tls       *downstreamTLS
	transport string
	// rbac are the chain's RBAC filters, in order.
	rbac []*rbacConf
	// clientCert is what the chain does with x-forwarded-client-cert.
	clientCert clientCertConf
	// streamIdle is the HCM's stream_idle_timeout (0: none).
	streamIdle time.Duration
	// name and match are the chain's name and whole filter_chain_match;
	// hcm is set for an HTTP connection manager chain, tcp for a tcp_proxy one.
	name          string
	match         chainMatch
	hcm           bool
	tcp           *tcpProxyConf
	normalizePath bool
	// statPrefix is the HCM's stat_prefix, which names its http.* stats.
	statPrefix string
	// upgrades are the HCM's upgrade_configs: upgrade type → enabled.
	upgrades map[string]bool
	// accessLogs are the HCM's access_log (accesslog.go).
	accessLogs []*accessLogConf
	// tracing is the HCM's tracing (tracing.go); nil traces nothing.
	tracing *tracingConf
}

// routeTable is a compiled RouteConfiguration.
type routeTable struct {
	name    string
	version string
	// versionValue is version as the header value every response carries.
	versionValue []string
	vhosts       []*vhost
	exact        map[string]*vhost
	ignorePort   bool
}

type vhost struct {
	name         string
	domains      []string
	routes       []*compiledRoute
	attemptCount bool
}

type compiledRoute struct {
	name     string
	match    routeMatch
	cluster  string
	weighted []weightedCluster
	total    uint64
	timeout  time.Duration // 0: none
	retry    *retryPolicy
	fault    *faultConf
	headers  headerEdits
	// Rewrites applied to the upstream request.
	prefixRewrite string
	regexRewrite  *regexp.Regexp
	regexSubst    string
	hostRewrite   string
	mirrors       []mirrorConf
	hashHeader    string // consistent hash on this request header
	// decorator is the route's decorator.operation: the span's name.
	decorator string
	deadlines grpcTimeouts
	// upgrades are the route's upgrade_configs: upgrade type → enabled.
	upgrades map[string]bool
}

// faultConf is the route's HTTP fault filter config; percentages in millionths.
type faultConf struct {
	delay       time.Duration
	delayPerMil uint32
	abortStatus int
	abortPerMil uint32
}

type headerEdits struct {
	reqSet, reqAdd, respSet, respAdd [][2]string
	reqRemove, respRemove            []string
}

type mirrorConf struct {
	cluster  string
	perMil   uint32
	noSuffix bool // disable_shadow_host_suffix_append
}

type weightedCluster struct {
	name   string
	weight uint64
}

type routeMatch struct {
	prefix, path string
	hasPath      bool
	// sepPrefix makes prefix a path_separated_prefix: the path is the
	// prefix, or the prefix then "/" (Envoy's PathSeparatedPrefixRouteEntryImpl).
	sepPrefix     bool
	regex         *regexp.Regexp
	caseSensitive bool
	headers       []headerMatch
	query         []queryMatch
}

type headerMatch struct {
	name         string
	present      bool
	str          *stringMatch
	invert       bool
	missingEmpty bool // treat_missing_header_as_empty
}

type queryMatch struct {
	name    string
	present bool
	str     *stringMatch
}

type stringMatch struct {
	exact, prefix, suffix, contains *string
	regex                           *regexp.Regexp
	ignoreCase                      bool
}

// retryPolicy is a compiled Envoy RetryPolicy.
type retryPolicy struct {
	numRetries    int
	on            retryOn
	codes         map[int]bool
	perTryTimeout time.Duration
	previousHosts bool
	hostSelectMax int
	backoffBase   time.Duration
	backoffMax    time.Duration
}

// clusterConf is a compiled Cluster.
type clusterConf struct {
	name           string
	eds            bool
	edsName        string
	lb             cluster.Cluster_LbPolicy
	connectTimeout time.Duration
	static         []endpointInfo
	// panicThreshold is common_lb_config.healthy_panic_threshold in percent:
	// below it the balancer uses every host (Envoy's default is 50; 0 turns panic off).
	panicThreshold float64
	limits         limits
	outlier        *outlierConf
	// ringSize is the minimum ring size of RING_HASH (and MAGLEV, which we balance the same way).
	ringSize uint64
	// maxRequestsPerConn and idleTimeout come from the upstream HttpProtocolOptions.
	maxRequestsPerConn uint32
	idleTimeout        time.Duration
	// proto is the upstream protocol (upstream_h2.go).
	proto upstreamProto
	// tls is the upstream TLS for every endpoint (transport_socket), or for
	// endpoints whose metadata matches tlsMode=istio (transport_socket_matches).
	tls        *upstreamTLS
	tlsByMatch bool
	// originalDst: an ORIGINAL_DST cluster, whose hosts are the original
	// destinations of the connections it serves, removed after cleanup unused.
	originalDst bool
	cleanup     time.Duration
	// bindIP is upstream_bind_config's source address, when set.
	bindIP netip.Addr
}

// limits are a cluster's circuit breaker thresholds (default priority).
type limits struct {
	maxConnections, maxPending, maxRequests, maxRetries uint64
}

// envoyDefaultLimits are Envoy's circuit breaker defaults: 1024 connections,
// pending and active requests, 3 concurrent retries (circuit_breaker.proto).
var envoyDefaultLimits = limits{1024, 1024, 1024, 3}

// outlierConf is a compiled OutlierDetection with Envoy's defaults
// (outlier_detection.proto): interval 10s, base ejection time 30s, max
// ejection percent 10, max ejection time 300s, consecutive 5xx 5 at 100%
// enforcing, consecutive gateway failure 5 at 0% enforcing.
type outlierConf struct {
	consecutive5xx, consecutiveGateway  uint32
	enforce5xx, enforceGateway          uint32
	interval, baseEjection, maxEjection time.Duration
	maxEjectionPercent                  uint32
}

// endpointInfo is one upstream host with the workload it belongs to.
type endpointInfo struct {
	addr      string
	tlsMode   string // envoy.transport_socket_match tlsMode: "istio" for pods with a sidecar
	unhealthy bool   // EDS health_status other than HEALTHY or UNKNOWN
	weight    uint32
	workload  string
	namespace string
	app       string
	version   string
	pod       string
}

func compileListener(l *listener.Listener) (*listenerConf, error) {
	sa := l.GetAddress().GetSocketAddress()
	if sa == nil {
		return nil, fmt.Errorf("listener %s: only socket addresses are supported", l.GetName())
	}
	lc := &listenerConf{name: l.GetName(), port: int(sa.GetPortValue()), bind: l.GetBindToPort() == nil || l.GetBindToPort().GetValue(),
		inbound: l.GetTrafficDirection() == core.TrafficDirection_INBOUND}
	if a, err := netip.ParseAddr(sa.GetAddress()); err == nil {
		lc.addr = a
	} else {
		return nil, fmt.Errorf("listener %s: address %q: %v", l.GetName(), sa.GetAddress(), err)
	}
	if l.GetUseOriginalDst().GetValue() {
		lc.virtual = l.GetName()
	}
	if err := compileListenerFilters(lc, l); err != nil {
		return nil, fmt.Errorf("listener %s: %w", l.GetName(), err)
	}
	for _, fc := range l.GetFilterChains() {
		cc, err := compileChain(fc)
		if err != nil {
			return nil, fmt.Errorf("listener %s: %w", l.GetName(), err)
		}
		lc.chains = append(lc.chains, cc)
	}
	if fc := l.GetDefaultFilterChain(); fc != nil {
		cc, err := compileChain(fc)
		if err != nil {
			return nil, fmt.Errorf("listener %s: default_filter_chain: %w", l.GetName(), err)
		}
		lc.defaultChain = &cc
	}
	return lc, nil
}

// compileChain compiles one filter chain: its match, transport socket and
// network filters.
func compileChain(fc *listener.FilterChain) (chainConf, error) {
	cc := chainConf{name: fc.GetName(), destPort: int(fc.GetFilterChainMatch().GetDestinationPort().GetValue()), transport: fc.GetFilterChainMatch().GetTransportProtocol()}
	m, err := compileChainMatch(fc.GetFilterChainMatch())
	if err != nil {
		return cc, err
	}
	cc.match = m
	if ts := fc.GetTransportSocket(); ts != nil {
		dt, err := compileDownstreamTLS(ts)
		if err != nil {
			return cc, err
		}
		cc.tls = dt
	}
	err = compileNetworkFilters(&cc, fc.GetFilters(), func(m *hcm.HttpConnectionManager) error {
		rb, err := compileRBACFilters(m.GetHttpFilters())
		if err != nil {
			return err
		}
		cc.rbac = rb
		if cc.clientCert, err = compileClientCert(m); err != nil {
			return err
		}
		if err := compileHCMExtras(&cc, m); err != nil {
			return err
		}
		cc.statPrefix = m.GetStatPrefix()
		if cc.tracing, err = compileTracing(m); err != nil {
			return err
		}
		if cc.accessLogs, err = compileAccessLogs(m.GetAccessLog()); err != nil {
			return err
		}
		if cc.upgrades, err = compileHCMUpgrades(m); err != nil {
			return err
		}
		cc.streamIdle = defaultStreamIdle // Envoy's default (http_connection_manager.proto)
		if d := m.GetStreamIdleTimeout(); d != nil {
			cc.streamIdle = d.AsDuration()
		}
		switch rs := m.GetRouteSpecifier().(type) {
		case *hcm.HttpConnectionManager_Rds:
			cc.rds = rs.Rds.GetRouteConfigName()
		case *hcm.HttpConnectionManager_RouteConfig:
			rt, err := compileRoutes(rs.RouteConfig, "")
			if err != nil {
				return err
			}
			cc.inline = rt
		default:
			return errors.New("HTTP connection manager without routes")
		}
		return nil
	})
	return cc, err
}

func compileRoutes(rc *route.RouteConfiguration, version string) (*routeTable, error) {
	rt := &routeTable{name: rc.GetName(), version: version, versionValue: []string{version}, exact: map[string]*vhost{}, ignorePort: rc.GetIgnorePortInHostMatching()}
	seen := map[string]bool{}
	for _, v := range rc.GetVirtualHosts() {
		vh := &vhost{name: v.GetName(), domains: v.GetDomains(), attemptCount: v.GetIncludeRequestAttemptCount()}
		for _, d := range v.GetDomains() {
			if d == "" {
				return nil, fmt.Errorf("route %s: virtual host %s has an empty domain", rc.GetName(), v.GetName())
			}
			// Envoy rejects a domain that two virtual hosts claim, wildcards too (route_config_impl.cc).
			if seen[strings.ToLower(d)] {
				return nil, fmt.Errorf("route %s: only unique values for domains are permitted; duplicate entry of domain %s", rc.GetName(), strings.ToLower(d))
			}
			seen[strings.ToLower(d)] = true
			if !strings.Contains(d, "*") {
				d = strings.ToLower(d)
				if _, dup := rt.exact[d]; dup {
					return nil, fmt.Errorf("route %s: only unique values for domains are permitted; duplicate entry of domain %s", rc.GetName(), d)
				}
				rt.exact[d] = vh
			}
		}
		// A virtual host's retry_policy applies to its routes that set
		// none; a route's own replaces it whole (route_components.proto).
		var vhRetry *retryPolicy
		if rp := v.GetRetryPolicy(); rp != nil {
			p, err := compileRetry(rp)
			if err != nil {
				return nil, fmt.Errorf("route %s: virtual host %s: %w", rc.GetName(), v.GetName(), err)
			}
			vhRetry = p
		}
		for _, r := range v.GetRoutes() {
			cr, err := compileRoute(r)
			if err != nil {
				return nil, fmt.Errorf("route %s: virtual host %s: %w", rc.GetName(), v.GetName(), err)
			}
			if cr.retry == nil && r.GetRoute().GetRetryPolicy() == nil {
				cr.retry = vhRetry
			}
			vh.routes = append(vh.routes, cr)
		}
		rt.vhosts = append(rt.vhosts, vh)
	}
	return rt, nil
}

// defaultStreamIdle is Envoy's stream_idle_timeout when the HCM sets none:
// with Istio's route timeout of 0, it is what ends a hung upstream.
const defaultStreamIdle = 5 * time.Minute

// compileHeaderMatch compiles an Envoy HeaderMatcher, for routes and RBAC
// alike; a matcher kind it cannot evaluate is refused, never read as absent.
func compileHeaderMatch(h *route.HeaderMatcher) (headerMatch, error) {
	hm := headerMatch{name: strings.ToLower(h.GetName()), invert: h.GetInvertMatch(), missingEmpty: h.GetTreatMissingHeaderAsEmpty()}
	switch s := h.GetHeaderMatchSpecifier().(type) {
	case *route.HeaderMatcher_PresentMatch:
		hm.present = s.PresentMatch
	case *route.HeaderMatcher_StringMatch:
		sm, err := compileStringMatch(s.StringMatch)
		if err != nil {
			return hm, err
		}
		hm.str = sm
	case nil:
		hm.present = true
	default:
		return hm, fmt.Errorf("unsupported header matcher %T on %q", s, h.GetName())
	}
	return hm, nil
}

func compileRoute(r *route.Route) (*compiledRoute, error) {
	cr := &compiledRoute{name: r.GetName(), decorator: r.GetDecorator().GetOperation()}
	m := r.GetMatch()
	if m.GetRuntimeFraction() != nil {
		return nil, fmt.Errorf("route %q: match.runtime_fraction is not supported", r.GetName())
	}
	if r.GetTracing() != nil {
		// A route's own sampling and tags override the HCM's in Envoy
		// (route.proto Tracing); istiod never sets them
		// (pilot/pkg/networking/core/tracing.go sets only the HCM's).
		return nil, fmt.Errorf("route %q: route-level tracing is not supported (the HTTP connection manager's tracing is)", r.GetName())
	}
	cr.match.caseSensitive = m.GetCaseSensitive() == nil || m.GetCaseSensitive().GetValue()
	switch ps := m.GetPathSpecifier().(type) {
	case *route.RouteMatch_Prefix:
		cr.match.prefix = ps.Prefix
	case *route.RouteMatch_Path:
		cr.match.path, cr.match.hasPath = ps.Path, true
	case *route.RouteMatch_SafeRegex:
		re, err := compileRegex(ps.SafeRegex.GetRegex())
		if err != nil {
			return nil, err
		}
		cr.match.regex = re
	case *route.RouteMatch_PathSeparatedPrefix:
		cr.match.prefix, cr.match.sepPrefix = ps.PathSeparatedPrefix, true
	default:
		return nil, fmt.Errorf("route %q: unsupported path specifier %T", r.GetName(), ps)
	}
	for _, h := range m.GetHeaders() {
		hm, err := compileHeaderMatch(h)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", r.GetName(), err)
		}
		cr.match.headers = append(cr.match.headers, hm)
	}
	for _, q := range m.GetQueryParameters() {
		qm := queryMatch{name: q.GetName()}
		switch s := q.GetQueryParameterMatchSpecifier().(type) {
		case *route.QueryParameterMatcher_PresentMatch:
			qm.present = s.PresentMatch
		case *route.QueryParameterMatcher_StringMatch:
			sm, err := compileStringMatch(s.StringMatch)
			if err != nil {
				return nil, err
			}
			qm.str = sm
		}
		cr.match.query = append(cr.match.query, qm)
	}
	a := r.GetRoute()
	if a == nil {
		return nil, fmt.Errorf("route %q: only route actions are supported (no redirect or direct response)", r.GetName())
	}
	switch cs := a.GetClusterSpecifier().(type) {
	case *route.RouteAction_Cluster:
		cr.cluster = cs.Cluster
	case *route.RouteAction_WeightedClusters:
		for _, c := range cs.WeightedClusters.GetClusters() {
			w := uint64(c.GetWeight().GetValue())
			cr.weighted = append(cr.weighted, weightedCluster{name: c.GetName(), weight: w})
			cr.total += w
		}
		// Envoy refuses weighted clusters whose weights add up to 0 (route_entry_impl.cc).
		if cr.total == 0 {
			return nil, fmt.Errorf("route %q: sum of weights in weighted_cluster should be greater than 0", r.GetName())
		}
	default:
		return nil, fmt.Errorf("route %q: unsupported cluster specifier %T", r.GetName(), cs)
	}
	if err := compileRouteExtras(cr, r, a); err != nil {
		return nil, fmt.Errorf("route %q: %w", r.GetName(), err)
	}
	up, err := compileRouteUpgrades(a)
	if err != nil {
		return nil, fmt.Errorf("route %q: %w", r.GetName(), err)
	}
	cr.upgrades = up
	cr.timeout = a.GetTimeout().AsDuration()
	if a.GetTimeout() == nil {
		cr.timeout = 15 * time.Second // Envoy's default route timeout; Istio always sets one
	}
	cr.deadlines = compileGRPCTimeouts(a)
	if rp := a.GetRetryPolicy(); rp != nil {
		p, err := compileRetry(rp)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", r.GetName(), err)
		}
		cr.retry = p
	}
	return cr, nil
}

// retryOn is a set of retry_on conditions, a bit each, so that judging an
// answer tests bits rather than looking names up.
type retryOn uint32

const (
	retry5xx retryOn = 1 << iota
	retryGatewayError
	retryReset
	retryResetBeforeRequest
	retryConnectFailure
	retryEnvoyRateLimited
	retryRetriable4xx
	retryRefusedStream
	retryRetriableStatusCodes
	retryRetriableHeaders
	retryHTTP3PostConnectFailure
	retryCancelled
	retryDeadlineExceeded
	retryInternal
	retryResourceExhausted
	retryUnavailable
)

// has reports whether any of cs is in the set.
func (o retryOn) has(cs retryOn) bool { return o&cs != 0 }

// retryOnTokens are the retry_on values the sidecar understands (Envoy's
// router filter docs, x-envoy-retry-on and x-envoy-retry-grpc-on).
var retryOnTokens = map[string]retryOn{
	"5xx": retry5xx, "gateway-error": retryGatewayError, "reset": retryReset, "reset-before-request": retryResetBeforeRequest,
	"connect-failure": retryConnectFailure, "envoy-ratelimited": retryEnvoyRateLimited, "retriable-4xx": retryRetriable4xx,
	"refused-stream": retryRefusedStream, "retriable-status-codes": retryRetriableStatusCodes,
	"retriable-headers": retryRetriableHeaders, "http3-post-connect-failure": retryHTTP3PostConnectFailure,
	"cancelled": retryCancelled, "deadline-exceeded": retryDeadlineExceeded, "internal": retryInternal,
	"resource-exhausted": retryResourceExhausted, "unavailable": retryUnavailable,
}

func compileRetry(rp *route.RetryPolicy) (*retryPolicy, error) {
	if len(rp.GetRetriableHeaders()) > 0 || len(rp.GetRetriableRequestHeaders()) > 0 {
		return nil, errors.New("retry_policy retriable_headers and retriable_request_headers are not supported")
	}
	p := &retryPolicy{
		numRetries:    1, // Envoy's default num_retries (route_components.proto)
		codes:         map[int]bool{},
		perTryTimeout: rp.GetPerTryTimeout().AsDuration(),
		hostSelectMax: int(rp.GetHostSelectionRetryMaxAttempts()),
		// Envoy's default back-off: base 25ms, max 10× base (route_components.proto RetryBackOff).
		backoffBase: 25 * time.Millisecond,
	}
	if rp.GetNumRetries() != nil {
		p.numRetries = int(rp.GetNumRetries().GetValue())
	}
	for _, t := range strings.Split(rp.GetRetryOn(), ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		c, ok := retryOnTokens[t]
		if !ok {
			return nil, fmt.Errorf("unknown retry_on value %q", t)
		}
		p.on |= c
	}
	for _, c := range rp.GetRetriableStatusCodes() {
		p.codes[int(c)] = true
	}
	for _, h := range rp.GetRetryHostPredicate() {
		if h.GetName() == "envoy.retry_host_predicates.previous_hosts" {
			p.previousHosts = true
		}
	}
	if b := rp.GetRetryBackOff(); b != nil {
		if b.GetBaseInterval() != nil {
			p.backoffBase = b.GetBaseInterval().AsDuration()
		}
		if b.GetMaxInterval() != nil {
			p.backoffMax = b.GetMaxInterval().AsDuration()
		}
	}
	if p.backoffMax == 0 {
		p.backoffMax = 10 * p.backoffBase
	}
	return p, nil
}

func compileStringMatch(m *matcher.StringMatcher) (*stringMatch, error) {
	sm := &stringMatch{ignoreCase: m.GetIgnoreCase()}
	switch p := m.GetMatchPattern().(type) {
	case *matcher.StringMatcher_Exact:
		v := p.Exact
		sm.exact = &v
	case *matcher.StringMatcher_Prefix:
		v := p.Prefix
		sm.prefix = &v
	case *matcher.StringMatcher_Suffix:
		v := p.Suffix
		sm.suffix = &v
	case *matcher.StringMatcher_Contains:
		v := p.Contains
		sm.contains = &v
	case *matcher.StringMatcher_SafeRegex:
		re, err := compileRegex(p.SafeRegex.GetRegex())
		if err != nil {
			return nil, err
		}
		sm.regex = re
	default:
		return nil, fmt.Errorf("unsupported string matcher %T", p)
	}
	return sm, nil
}

// compileRegex compiles an RE2 pattern that must match the whole value, as
// Envoy's safe_regex does; Go's regexp is RE2 too.
func compileRegex(expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile("^(?:" + expr + ")$")
	if err != nil {
		return nil, fmt.Errorf("invalid regex %q: %v", expr, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return re, nil
}

func compileCluster(c *cluster.Cluster) (*clusterConf, error) {
	cc := &clusterConf{name: c.GetName(), lb: c.GetLbPolicy(), connectTimeout: c.GetConnectTimeout().AsDuration(), panicThreshold: 50, limits: envoyDefaultLimits}
	if c.GetConnectTimeout() == nil {
		cc.connectTimeout = 5 * time.Second // Envoy's default connect_timeout (cluster.proto)
	}
	switch c.GetLbPolicy() {
	case cluster.Cluster_ROUND_ROBIN, cluster.Cluster_LEAST_REQUEST, cluster.Cluster_RANDOM:
	case cluster.Cluster_CLUSTER_PROVIDED:
		if c.GetType() != cluster.Cluster_ORIGINAL_DST {
			return nil, fmt.Errorf("cluster %s: lb_policy CLUSTER_PROVIDED is only supported with ORIGINAL_DST", c.GetName())
		}
	case cluster.Cluster_RING_HASH, cluster.Cluster_MAGLEV:
		cc.ringSize = 1024
		if n := c.GetRingHashLbConfig().GetMinimumRingSize().GetValue(); n > 0 {
			cc.ringSize = n
		}
	default:
		return nil, fmt.Errorf("cluster %s: unsupported lb_policy %s", c.GetName(), c.GetLbPolicy())
	}
	if t := c.GetCommonLbConfig().GetHealthyPanicThreshold(); t != nil {
		cc.panicThreshold = t.GetValue()
	}
	if c.GetCommonLbConfig().GetLocalityWeightedLbConfig() != nil {
		// Locality weights count only under locality_weighted_lb_config,
		// which the balancer does not implement.
		return nil, fmt.Errorf("cluster %s: locality_weighted_lb_config is not supported", c.GetName())
	}
	if err := compileUpstreamTLS(cc, c); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.GetName(), err)
	}
	if err := compileClusterExtras(cc, c); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.GetName(), err)
	}
	if err := compileClusterIntercept(cc, c); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.GetName(), err)
	}
	switch c.GetType() {
	case cluster.Cluster_EDS:
		cc.eds = true
		cc.edsName = c.GetEdsClusterConfig().GetServiceName()
		if cc.edsName == "" {
			cc.edsName = c.GetName()
		}
	case cluster.Cluster_STATIC:
		if err := checkEndpoints(c.GetLoadAssignment()); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", c.GetName(), err)
		}
		cc.static = endpointsOf(c.GetLoadAssignment())
	case cluster.Cluster_ORIGINAL_DST:
		// hosts come from the connections (compileClusterIntercept)
	default:
		return nil, fmt.Errorf("cluster %s: unsupported discovery type %s", c.GetName(), c.GetType())
	}
	return cc, nil
}

// checkEndpoints refuses what of a ClusterLoadAssignment the balancer
// cannot do: priorities other than 0 (Envoy fails over between them) and
// endpoints that are not socket addresses or pipes.
func checkEndpoints(cla *endpoint.ClusterLoadAssignment) error {
	for _, loc := range cla.GetEndpoints() {
		if loc.GetPriority() != 0 {
			return fmt.Errorf("endpoints of %s: priority %d is not supported (priority failover)", cla.GetClusterName(), loc.GetPriority())
		}
		for _, lb := range loc.GetLbEndpoints() {
			if a := lb.GetEndpoint().GetAddress(); a.GetSocketAddress() == nil && a.GetPipe() == nil {
				return fmt.Errorf("endpoints of %s: only socket addresses and pipes are supported", cla.GetClusterName())
			}
		}
	}
	return nil
}

// endpointsOf flattens a ClusterLoadAssignment, reading Istio's workload metadata.
func endpointsOf(cla *endpoint.ClusterLoadAssignment) []endpointInfo {
	var out []endpointInfo
	for _, loc := range cla.GetEndpoints() {
		for _, lb := range loc.GetLbEndpoints() {
			e := endpointInfo{weight: 1}
			switch a := lb.GetEndpoint().GetAddress(); {
			case a.GetSocketAddress() != nil:
				e.addr = net.JoinHostPort(a.GetSocketAddress().GetAddress(), strconv.Itoa(int(a.GetSocketAddress().GetPortValue())))
			case a.GetPipe() != nil:
				e.addr = pipeHost(a.GetPipe().GetPath())
			default:
				continue
			}
			switch lb.GetHealthStatus() {
			case core.HealthStatus_HEALTHY, core.HealthStatus_UNKNOWN:
			default:
				e.unhealthy = true
			}
			if w := lb.GetLoadBalancingWeight(); w != nil {
				e.weight = w.GetValue()
			}
			if md := lb.GetMetadata().GetFilterMetadata()["istio"]; md != nil {
				parts := strings.Split(md.GetFields()["workload"].GetStringValue(), ";")
				if len(parts) >= 4 {
					e.workload, e.namespace, e.app, e.version = parts[0], parts[1], parts[2], parts[3]
				}
				e.pod = md.GetFields()["pod"].GetStringValue()
			}
			if md := lb.GetMetadata().GetFilterMetadata()["envoy.transport_socket_match"]; md != nil {
				e.tlsMode = md.GetFields()["tlsMode"].GetStringValue()
			}
			out = append(out, e)
		}
	}
	return out
}
