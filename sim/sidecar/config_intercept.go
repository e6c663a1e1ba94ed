package sidecar

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	netrbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
)

// The parts of istiod's xDS beyond what sim/xdsgen sends: listener
// filters, the whole filter_chain_match, tcp_proxy chains, the filters
// istiod adds that the sidecar ignores, and ORIGINAL_DST clusters. The
// data path that acts on them, under interception, is intercept.go.

// Listener filter names (envoy/extensions/filters/listener/*).
const (
	listenerOriginalDst  = "envoy.filters.listener.original_dst"
	listenerTLSInspector = "envoy.filters.listener.tls_inspector"
	listenerHTTPInspect  = "envoy.filters.listener.http_inspector"
	tcpProxyName         = "envoy.filters.network.tcp_proxy"
	metadataExchange     = "istio.metadata_exchange"
)

// ignoredNetworkFilters are non-terminal network filters istiod puts in
// front of a chain's terminal filter, which the sidecar runs as a no-op:
// istio.metadata_exchange (proxy/source/extensions/filters/network/
// metadata_exchange) trades peer metadata in-band on connections whose ALPN
// is istio-peer-exchange; our sidecars carry it in the HTTP headers
// x-envoy-peer-metadata(-id) instead, and a TCP peer's metadata only labels
// istio_tcp_* metrics, which the sidecar does not report.
//
// istio.stats as a network filter (telemetry v2 on TCP chains,
// pilot/pkg/networking/core/extension: the stats.PluginConfig TypedStruct)
// counts istio_tcp_* metrics, which the sidecar does not report yet; the
// oracle's fake istiod omits it, the real one sends it on every TCP chain.
var ignoredNetworkFilters = map[string]string{
	metadataExchange: "peer metadata travels in HTTP headers (x-envoy-peer-metadata)",
	"istio.stats":    "istio_tcp_* metrics, which the sidecar does not report",
}

// knownHTTPFilters are the HTTP filters the sidecar takes in an HCM, with
// what it does with each; any other name is refused by name.
var knownHTTPFilters = map[string]string{
	wellknown.Router:                "the router: the request path of this package",
	faultFilterName:                 "acted on per route (typed_per_filter_config)",
	rbacFilterName:                  "acted on (rbac.go)",
	"envoy.filters.http.cors":       "ignored: with no per-route CORS policy (Istio sets none without corsPolicy) the filter does nothing",
	"envoy.filters.http.grpc_stats": "ignored: per-method gRPC stats only, not exported (gRPC status is in istio_requests_total)",
	"istio.alpn":                    "acted on under interception: upstream mTLS offers ALPN istio-http/1.1",
	metadataExchange:                "acted on: peer metadata in x-envoy-peer-metadata(-id) headers",
	"istio.stats":                   "acted on: the sidecar's own Istio-standard metrics (metrics.go)",
}

// chainMatch is a compiled FilterChainMatch.
type chainMatch struct {
	destPort    int
	prefixes    []netip.Prefix
	serverNames []string
	transport   string
	appProtos   []string
	directSrc   []netip.Prefix
	srcType     listener.FilterChainMatch_ConnectionSourceType
	src         []netip.Prefix
	srcPorts    []uint32
}

// tcpProxyConf is a compiled TcpProxy.
type tcpProxyConf struct {
	statPrefix string
	// accessLogs are tcp_proxy's access_log: a line per connection.
	accessLogs  []*accessLogConf
	cluster     string
	weighted    []weightedCluster
	total       uint64
	idle        time.Duration // 0: none
	maxAttempts int
}

func compileCIDRs(rs []*core.CidrRange) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, r := range rs {
		a, err := netip.ParseAddr(r.GetAddressPrefix())
		if err != nil {
			return nil, fmt.Errorf("cidr range %q: %v", r.GetAddressPrefix(), err)
		}
		bits := a.BitLen()
		if r.GetPrefixLen() != nil {
			bits = int(r.GetPrefixLen().GetValue())
		}
		p, err := a.Prefix(bits)
		if err != nil {
			return nil, fmt.Errorf("cidr range %s/%d: %v", r.GetAddressPrefix(), bits, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func compileChainMatch(m *listener.FilterChainMatch) (chainMatch, error) {
	cm := chainMatch{
		destPort: int(m.GetDestinationPort().GetValue()), serverNames: m.GetServerNames(), transport: m.GetTransportProtocol(),
		appProtos: m.GetApplicationProtocols(), srcType: m.GetSourceType(), srcPorts: m.GetSourcePorts(),
	}
	if m.GetAddressSuffix() != "" || m.GetSuffixLen() != nil {
		return cm, errors.New("filter_chain_match address_suffix and suffix_len are not supported (Envoy ignores them too)")
	}
	var err error
	if cm.prefixes, err = compileCIDRs(m.GetPrefixRanges()); err != nil {
		return cm, err
	}
	if cm.directSrc, err = compileCIDRs(m.GetDirectSourcePrefixRanges()); err != nil {
		return cm, err
	}
	if cm.src, err = compileCIDRs(m.GetSourcePrefixRanges()); err != nil {
		return cm, err
	}
	return cm, nil
}

// compileListenerFilters reads what the sidecar does before a listener
// picks a filter chain (listener.proto): original_dst, tls_inspector and
// http_inspector, under listener_filters_timeout (default 15s, 0 none).
func compileListenerFilters(lc *listenerConf, l *listener.Listener) error {
	lc.filtersTimeout = 15 * time.Second
	if d := l.GetListenerFiltersTimeout(); d != nil {
		lc.filtersTimeout = d.AsDuration()
	}
	lc.continueOnTimeout = l.GetContinueOnListenerFiltersTimeout()
	// use_original_dst makes Envoy add an original_dst listener filter of
	// its own (ListenerImpl::buildOriginalDstListenerFilter, listener_impl.cc).
	lc.originalDst = l.GetUseOriginalDst().GetValue()
	lc.handOff = l.GetUseOriginalDst().GetValue()
	for _, f := range l.GetListenerFilters() {
		var disabled portPredicate
		if p := f.GetFilterDisabled(); p != nil {
			d, err := compilePredicate(p)
			if err != nil {
				return fmt.Errorf("listener filter %s: filter_disabled: %w", f.GetName(), err)
			}
			disabled = d
		}
		switch f.GetName() {
		case listenerOriginalDst:
			if disabled != nil {
				return fmt.Errorf("listener filter %s: filter_disabled is not supported on it", f.GetName())
			}
			lc.originalDst = true
		case listenerTLSInspector:
			lc.tlsInspector, lc.tlsDisabled = true, disabled
		case listenerHTTPInspect:
			lc.httpInspector, lc.httpDisabled = true, disabled
		default:
			return fmt.Errorf("unsupported listener filter %q", f.GetName())
		}
	}
	return nil
}

// portPredicate is a compiled ListenerFilterChainMatchPredicate: whether
// a listener filter is off for a connection to the destination port.
type portPredicate func(port int) bool

// compilePredicate compiles a ListenerFilterChainMatchPredicate
// (listener_components.proto; Envoy's ListenerFilterMatcher in
// source/common/network/filter_matcher.cc), which istiod uses to skip the
// inspectors on ports where they must not wait.
func compilePredicate(p *listener.ListenerFilterChainMatchPredicate) (portPredicate, error) {
	compileAll := func(ps []*listener.ListenerFilterChainMatchPredicate) ([]portPredicate, error) {
		var out []portPredicate
		for _, x := range ps {
			c, err := compilePredicate(x)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		return out, nil
	}
	switch r := p.GetRule().(type) {
	case *listener.ListenerFilterChainMatchPredicate_AnyMatch:
		return func(int) bool { return true }, nil
	case *listener.ListenerFilterChainMatchPredicate_DestinationPortRange:
		lo, hi := int(r.DestinationPortRange.GetStart()), int(r.DestinationPortRange.GetEnd())
		return func(port int) bool { return port >= lo && port < hi }, nil
	case *listener.ListenerFilterChainMatchPredicate_NotMatch:
		c, err := compilePredicate(r.NotMatch)
		if err != nil {
			return nil, err
		}
		return func(port int) bool { return !c(port) }, nil
	case *listener.ListenerFilterChainMatchPredicate_OrMatch:
		cs, err := compileAll(r.OrMatch.GetRules())
		if err != nil {
			return nil, err
		}
		return func(port int) bool {
			for _, c := range cs {
				if c(port) {
					return true
				}
			}
			return false
		}, nil
	case *listener.ListenerFilterChainMatchPredicate_AndMatch:
		cs, err := compileAll(r.AndMatch.GetRules())
		if err != nil {
			return nil, err
		}
		return func(port int) bool {
			for _, c := range cs {
				if !c(port) {
					return false
				}
			}
			return true
		}, nil
	}
	return nil, fmt.Errorf("unsupported listener filter predicate %T", p.GetRule())
}

// compileNetworkFilters reads a chain's network filters: the ignored
// ones, then one terminal filter, an HTTP connection manager (compiled by
// hcmFn) or a tcp_proxy.
func compileNetworkFilters(cc *chainConf, fs []*listener.Filter, hcmFn func(*hcm.HttpConnectionManager) error) error {
	for i, f := range fs {
		last := i == len(fs)-1
		if _, ok := ignoredNetworkFilters[f.GetName()]; ok && !last {
			continue
		}
		switch f.GetName() {
		case wellknown.HTTPConnectionManager:
			m := &hcm.HttpConnectionManager{}
			if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
				return err
			}
			if err := hcmFn(m); err != nil {
				return err
			}
			cc.hcm = true
		case networkRBACName:
			r := &netrbac.RBAC{}
			if err := f.GetTypedConfig().UnmarshalTo(r); err != nil {
				return err
			}
			rc, err := compileNetworkRBAC(r)
			if err != nil {
				return err
			}
			if rc != nil {
				cc.netRBAC = append(cc.netRBAC, rc)
			}
			continue
		case tcpProxyName:
			tp := &tcpproxy.TcpProxy{}
			if err := f.GetTypedConfig().UnmarshalTo(tp); err != nil {
				return err
			}
			t, err := compileTCPProxy(tp)
			if err != nil {
				return err
			}
			cc.tcp = t
		default:
			return fmt.Errorf("unsupported network filter %q", f.GetName())
		}
		if !last {
			// Envoy refuses a terminal filter that is not last (filter_chain_utility.cc).
			return fmt.Errorf("terminal filter %s is not the last network filter", f.GetName())
		}
	}
	if !cc.hcm && cc.tcp == nil {
		return errors.New("filter chain without an HTTP connection manager or tcp_proxy")
	}
	if cc.hcm && len(cc.netRBAC) > 0 {
		// istiod puts the HTTP RBAC filter on HTTP chains; judging a
		// connection before its HTTP requests is not done.
		return fmt.Errorf("%s before an HTTP connection manager is not supported", networkRBACName)
	}
	return nil
}

// compileTCPProxy reads a TcpProxy (tcp_proxy.proto): cluster or
// weighted_clusters, idle_timeout (default 1h, 0 none) and
// max_connect_attempts (default 1).
func compileTCPProxy(tp *tcpproxy.TcpProxy) (*tcpProxyConf, error) {
	t := &tcpProxyConf{statPrefix: tp.GetStatPrefix(), idle: time.Hour, maxAttempts: 1}
	als, err := compileAccessLogs(tp.GetAccessLog())
	if err != nil {
		return nil, err
	}
	t.accessLogs = als
	switch cs := tp.GetClusterSpecifier().(type) {
	case *tcpproxy.TcpProxy_Cluster:
		t.cluster = cs.Cluster
	case *tcpproxy.TcpProxy_WeightedClusters:
		for _, c := range cs.WeightedClusters.GetClusters() {
			t.weighted = append(t.weighted, weightedCluster{name: c.GetName(), weight: uint64(c.GetWeight())})
			t.total += uint64(c.GetWeight())
		}
		if t.total == 0 {
			return nil, errors.New("tcp_proxy weighted_clusters: the weights add up to 0")
		}
	default:
		return nil, fmt.Errorf("tcp_proxy: unsupported cluster specifier %T", cs)
	}
	switch {
	case tp.GetTunnelingConfig() != nil:
		return nil, errors.New("tcp_proxy tunneling_config is not supported")
	case tp.GetOnDemand() != nil:
		return nil, errors.New("tcp_proxy on_demand is not supported")
	case len(tp.GetHashPolicy()) > 0:
		return nil, errors.New("tcp_proxy hash_policy is not supported")
	case tp.GetMetadataMatch() != nil:
		return nil, errors.New("tcp_proxy metadata_match is not supported")
	}
	if d := tp.GetIdleTimeout(); d != nil {
		t.idle = d.AsDuration()
	}
	if n := tp.GetMaxConnectAttempts(); n != nil {
		t.maxAttempts = max(int(n.GetValue()), 1)
	}
	return t, nil
}

// checkHTTPFilters refuses an HCM filter the sidecar does not know, by name.
func checkHTTPFilters(fs []*hcm.HttpFilter) error {
	for _, f := range fs {
		if _, ok := knownHTTPFilters[f.GetName()]; !ok {
			return fmt.Errorf("unsupported HTTP filter %q", f.GetName())
		}
	}
	return nil
}

// compileHCMExtras reads the HCM fields istiod sets beyond routes, RBAC,
// XFCC and stream_idle_timeout. Acted on: normalize_path (RFC 3986 dot
// segments removed before routing). Ignored, as they change nothing our
// verdicts read: use_remote_address and xff_num_trusted_hops (x-forwarded-for
// and the internal/external decision feed no route istiod builds),
// request_id_extension (x-request-id is kept or made as Envoy's uuid
// extension does), server_name,
// stat_prefix, proxy_100_continue (Go's server answers
// Expect: 100-continue itself). upgrade_configs is read with the routes
// (upgrade.go). Refused: a path_with_escaped_slashes_action that rewrites
// paths. tracing is compiled on its own (tracing.go).
func compileHCMExtras(cc *chainConf, m *hcm.HttpConnectionManager) error {
	if err := checkHTTPFilters(m.GetHttpFilters()); err != nil {
		return err
	}
	cc.normalizePath = m.GetNormalizePath().GetValue()
	switch m.GetPathWithEscapedSlashesAction() {
	case hcm.HttpConnectionManager_IMPLEMENTATION_SPECIFIC_DEFAULT, hcm.HttpConnectionManager_KEEP_UNCHANGED:
	default:
		return fmt.Errorf("path_with_escaped_slashes_action %s is not supported", m.GetPathWithEscapedSlashesAction())
	}
	if m.GetMergeSlashes() {
		return errors.New("merge_slashes is not supported")
	}
	return nil
}

// ignoredClusterFilters are upstream network filters istiod puts on
// clusters that the sidecar runs as no-ops (see ignoredNetworkFilters).
var ignoredClusterFilters = map[string]bool{metadataExchange: true}

// compileClusterIntercept reads what istiod sets on a cluster beyond what
// compileCluster knew: ORIGINAL_DST (original_dst_cluster.cc: the host is
// the connection's original destination, made on demand and removed after
// cleanup_interval, default 5s, unused), upstream_bind_config and the
// cluster's filters. alt_stat_name and metadata only name stats: ignored.
func compileClusterIntercept(cc *clusterConf, c *cluster.Cluster) error {
	for _, f := range c.GetFilters() {
		if !ignoredClusterFilters[f.GetName()] {
			return fmt.Errorf("unsupported cluster filter %q", f.GetName())
		}
	}
	if b := c.GetUpstreamBindConfig(); b != nil {
		a, err := netip.ParseAddr(b.GetSourceAddress().GetAddress())
		if err != nil {
			return fmt.Errorf("upstream_bind_config: %v", err)
		}
		//lint:ignore SA1019 a deprecated field set must still be refused, not ignored
		if b.GetSourceAddress().GetPortValue() != 0 || len(b.GetAdditionalSourceAddresses()) > 0 || len(b.GetExtraSourceAddresses()) > 0 {
			return errors.New("upstream_bind_config: only a source address with port 0 is supported")
		}
		cc.bindIP = a
	}
	for k := range c.GetTypedExtensionProtocolOptions() {
		if k != httpProtocolOptions {
			return fmt.Errorf("unsupported typed_extension_protocol_options %q", k)
		}
	}
	if c.GetType() == cluster.Cluster_ORIGINAL_DST {
		if c.GetLbPolicy() != cluster.Cluster_CLUSTER_PROVIDED {
			// cluster_factory_impl.cc: ORIGINAL_DST needs lb_policy CLUSTER_PROVIDED.
			return fmt.Errorf("cluster type 'original_dst' may only be used with LB type 'CLUSTER_PROVIDED'")
		}
		if o := c.GetOriginalDstLbConfig(); o != nil && (o.GetUseHttpHeader() || o.GetUpstreamPortOverride() != nil || o.GetMetadataKey() != nil) {
			return errors.New("original_dst_lb_config is not supported")
		}
		cc.originalDst = true
		cc.cleanup = 5 * time.Second
		if d := c.GetCleanupInterval(); d != nil {
			cc.cleanup = d.AsDuration()
		}
	}
	return nil
}
