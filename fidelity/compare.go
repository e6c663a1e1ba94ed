// Package fidelity checks meshbench's xDS translator (sim/xdsgen) against
// Istio's own, which runs in-process in this module's tests. It is a module
// of its own so that the product never links Istio.
//
// This file holds the comparison: it reduces the xDS of one sidecar, as
// Istio builds it and as meshbench builds it, to the fields meshbench's
// sidecar acts on, each under a readable field path, and lists where the
// two differ. See docs/fidelity.md.
package fidelity

import (
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	// Linked in so that the Any configs Istio and meshbench set can be
	// unpacked and compared field by field.
	_ "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/request_id/uuid/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// FaultFilter is the HTTP filter whose per-route config carries a
// VirtualService's fault injection (Istio's wellknown.Fault).
const FaultFilter = "envoy.filters.http.fault"

// Absent is how a field that one side does not set is shown.
const Absent = "(absent)"

// Side is one translator's xDS for one sidecar.
type Side struct {
	Clusters  []*cluster.Cluster
	Endpoints []*endpoint.ClusterLoadAssignment
	Listeners []*listener.Listener
	Routes    []*route.RouteConfiguration
}

// Diff is one field whose value differs: Istio's and meshbench's, either
// possibly Absent.
type Diff struct {
	Path  string
	Istio string
	Ours  string
}

func (d Diff) String() string {
	return fmt.Sprintf("%s\n      istio:     %s\n      meshbench: %s", d.Path, d.Istio, d.Ours)
}

// Scope says which objects are meshbench's to compare: the outbound
// clusters, route configurations and virtual hosts of the services in the
// registry. Anything Istio builds beyond them is not modelled by meshbench
// and is left out on purpose (see Flatten).
type Scope struct {
	// Hosts maps the FQDN of each registry service to its service ports.
	Hosts map[string]map[int]bool
	// TCPListeners are the names of the registry's TCP services' outbound
	// listeners, <VIP>_<port>, which are compared as the 0.0.0.0_<port>
	// ones are (Istio sends such listeners for services outside the
	// registry too, which are not).
	TCPListeners map[string]bool
	// InboundPorts are the container ports of the sidecar's own service,
	// whose chains on the virtualInbound listener are compared for their
	// connection managers' tracing.
	InboundPorts map[int]bool
	// Clusters are further clusters to compare, with their endpoints, by
	// name (the trace collector's).
	Clusters map[string]bool
	// Listeners are further listeners to compare, by name (the ingress
	// gateway's).
	Listeners map[string]bool
}

// hasHost reports whether host is a registry service.
func (s Scope) hasHost(host string) bool { return s.Hosts[host] != nil }

// servesPort reports whether some registry service has service port port.
func (s Scope) servesPort(port int) bool {
	for _, ports := range s.Hosts {
		if ports[port] {
			return true
		}
	}
	return false
}

// hasPort reports whether host is a registry service with service port port.
func (s Scope) hasPort(host string, port int) bool { return s.Hosts[host][port] }

// Compare lists every difference between Istio's and meshbench's xDS in the
// fields meshbench's sidecar acts on, sorted by path.
func Compare(istio, ours Side, scope Scope) []Diff {
	a := Flatten(istio, scope)
	b := Flatten(ours, scope)
	return diffMaps(a, b)
}

func diffMaps(a, b map[string]string) []Diff {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	// An object (cluster, virtual host, route, endpoint...) that only one
	// side has is one difference, not one per field: its fields are left
	// out.
	var onlyOne []string
	for k := range keys {
		if (a[k] == "present") != (b[k] == "present") {
			onlyOne = append(onlyOne, k)
		}
	}
	within := func(k string) bool {
		for _, o := range onlyOne {
			if len(k) > len(o) && strings.HasPrefix(k, o) && (k[len(o)] == '.' || k[len(o)] == '[') {
				return true
			}
		}
		return false
	}
	var out []Diff
	for k := range keys {
		va, oka := a[k]
		vb, okb := b[k]
		if !oka {
			va = Absent
		}
		if !okb {
			vb = Absent
		}
		if va != vb && !within(k) {
			out = append(out, Diff{Path: k, Istio: va, Ours: vb})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Flatten reduces one side's xDS to field path → value for the fields
// compared. Paths look like
//
//	clusters[outbound|80|v1|payment.default.svc.cluster.local].lb_policy
//	routes[80].virtual_hosts[payment.default.svc.cluster.local:80].routes[0].route.retry_policy.num_retries
//	endpoints[outbound|80||payment.default.svc.cluster.local].lb_endpoints[10.0.0.3:8080].load_balancing_weight
//	listeners[0.0.0.0_80].rds
func Flatten(s Side, scope Scope) map[string]string {
	out := map[string]string{}
	for _, c := range s.Clusters {
		if !outboundInScope(c.GetName(), scope) {
			continue
		}
		flattenCluster(c, out)
	}
	for _, cla := range s.Endpoints {
		if !outboundInScope(cla.GetClusterName(), scope) {
			continue
		}
		flattenEndpoints(cla, out)
	}
	for _, rc := range s.Routes {
		// Only the route configurations of the registry's service ports:
		// a live istiod also sends those of the ports of services outside
		// it (istiod's own 15010 and 15014, for instance).
		port, err := strconv.Atoi(rc.GetName())
		if !outboundRouteName(rc.GetName()) || err != nil || !scope.servesPort(port) {
			continue
		}
		flattenRouteConfig(rc, scope, out)
	}
	for _, l := range s.Listeners {
		if l.GetName() == virtualInbound {
			flattenInboundTracing(l, scope, out)
			continue
		}
		// The outbound listeners of the registry's service ports: a mesh
		// has others (the trace collector's 0.0.0.0_9411), which are not
		// meshbench's.
		port, _ := strconv.Atoi(strings.TrimPrefix(l.GetName(), "0.0.0.0_"))
		if !(outboundListenerName(l.GetName()) && scope.servesPort(port)) && !scope.TCPListeners[l.GetName()] && !scope.Listeners[l.GetName()] {
			continue
		}
		flattenListener(l, out)
	}
	return out
}

// ignoredClusters are clusters Istio gives every sidecar that meshbench
// does not model: the catch-alls for traffic to unknown destinations
// (BlackHole, Passthrough) and for inbound traffic to ports no Service
// declares (InboundPassthrough), plus the agent/stats/SDS plumbing. They
// are ignored on purpose; the prefix test in outboundInScope would drop
// them anyway, but naming them keeps the intent explicit.
var ignoredClusters = map[string]bool{
	"BlackHoleCluster":              true,
	"PassthroughCluster":            true,
	"InboundPassthroughCluster":     true,
	"InboundPassthroughClusterIpv4": true,
	"InboundPassthroughClusterIpv6": true,
	"prometheus_stats":              true,
	"agent":                         true,
	"sds-grpc":                      true,
	"xds-grpc":                      true,
}

// outboundInScope reports whether a cluster is an outbound cluster
// (outbound|port|subset|host) of a service in the registry. Inbound
// clusters (inbound|port||) are not compared: they route to the app in the
// same pod and meshbench's runtime wires them to a loopback address Istio
// knows nothing about.
func outboundInScope(name string, scope Scope) bool {
	if ignoredClusters[name] {
		return false
	}
	if scope.Clusters[name] {
		return true
	}
	parts := strings.Split(name, "|")
	if len(parts) != 4 || parts[0] != "outbound" {
		return false
	}
	// Outbound clusters of hosts outside the registry (services Istio
	// knows of that the scenario does not declare) are not meshbench's.
	return scope.hasHost(parts[3])
}

// outboundRouteName: sidecars name their outbound route configurations by
// port alone ("80"); the inbound ones ("inbound|8080||") and Istio's
// other RDS names are not compared.
func outboundRouteName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// outboundListenerName: the per-port outbound listeners, 0.0.0.0_<port>.
// The virtual 15001/15006 listeners differ by design (meshbench's sidecar
// is an HTTP proxy, not an iptables target) and are not compared.
func outboundListenerName(name string) bool {
	p, ok := strings.CutPrefix(name, "0.0.0.0_")
	return ok && outboundRouteName(p)
}

func flattenCluster(c *cluster.Cluster, out map[string]string) {
	p := "clusters[" + c.GetName() + "]"
	out[p] = "present"
	switch {
	case c.GetClusterType() != nil:
		out[p+".type"] = "custom:" + c.GetClusterType().GetName()
	default:
		out[p+".type"] = c.GetType().String()
	}
	// lb_policy is an enum whose zero value, ROUND_ROBIN, proto3 does not
	// mark as set: show it always.
	out[p+".lb_policy"] = c.GetLbPolicy().String()
	// Envoy's default connect_timeout is 5s (cluster.proto), which is what
	// meshbench's sidecar assumes when it is unset.
	out[p+".connect_timeout"] = durationOr(c.GetConnectTimeout(), 5*time.Second)
	flattenMessage(p+".circuit_breakers", c.GetCircuitBreakers(), out)
	flattenMessage(p+".outlier_detection", c.GetOutlierDetection(), out)
	// Unset, Envoy's healthy panic threshold is 50%.
	hpt := "50"
	if t := c.GetCommonLbConfig().GetHealthyPanicThreshold(); t != nil {
		hpt = fmt.Sprint(t.GetValue())
	}
	out[p+".common_lb_config.healthy_panic_threshold"] = hpt
	flattenMessage(p+".ring_hash_lb_config", c.GetRingHashLbConfig(), out)
	flattenMessage(p+".maglev_lb_config", c.GetMaglevLbConfig(), out)
	// Upstream HTTP options: idle timeout and requests per connection.
	if o, ok := c.GetTypedExtensionProtocolOptions()[HTTPProtocolOptions]; ok {
		flattenMessage(p+".typed_extension_protocol_options["+HTTPProtocolOptions+"]", o, out)
	}
}

// HTTPProtocolOptions is the key of a cluster's upstream HTTP options.
const HTTPProtocolOptions = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

func flattenEndpoints(cla *endpoint.ClusterLoadAssignment, out map[string]string) {
	p := "endpoints[" + cla.GetClusterName() + "]"
	out[p] = "present"
	for _, loc := range cla.GetEndpoints() {
		for _, lb := range loc.GetLbEndpoints() {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			ep := fmt.Sprintf("%s.lb_endpoints[%s:%d]", p, sa.GetAddress(), sa.GetPortValue())
			out[ep] = "present"
			w := "1"
			if lb.GetLoadBalancingWeight() != nil {
				w = fmt.Sprint(lb.GetLoadBalancingWeight().GetValue())
			}
			out[ep+".load_balancing_weight"] = w
			out[ep+".health_status"] = lb.GetHealthStatus().String()
			// meshbench's sidecar reads the workload's namespace, app and
			// version from Istio's endpoint metadata (for per-version stats).
			if md := lb.GetMetadata().GetFilterMetadata()["istio"]; md != nil {
				out[ep+".metadata.istio.workload"] = md.GetFields()["workload"].GetStringValue()
			}
		}
	}
}

func flattenListener(l *listener.Listener, out map[string]string) {
	p := "listeners[" + l.GetName() + "]"
	out[p] = "present"
	var rds []string
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			if f.GetName() != wellknown.HTTPConnectionManager {
				continue
			}
			m := &hcm.HttpConnectionManager{}
			if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
				continue
			}
			if r := m.GetRds(); r != nil {
				rds = append(rds, r.GetRouteConfigName())
			}
		}
	}
	sort.Strings(rds)
	out[p+".rds"] = strings.Join(uniq(rds), ",")
	for i, m := range connectionManagers(l.GetFilterChains()) {
		flattenTracing(fmt.Sprintf("%s.http_connection_manager[%d]", p, i), m, out)
	}
	if als := filterAccessLogs(l); len(als) > 0 {
		out[p+".access_log"] = strings.Join(als, " | ")
	}
	// A TCP listener: per filter chain (by position), its match and the
	// tcp_proxy fields the sidecar acts on: cluster or weighted_clusters,
	// idle_timeout (unset: 1h) and max_connect_attempts (unset: 1).
	var tcp []string
	for i, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			if f.GetName() != wellknown.TCPProxy {
				continue
			}
			tp := &tcpproxy.TcpProxy{}
			if err := f.GetTypedConfig().UnmarshalTo(tp); err != nil {
				continue
			}
			c := fmt.Sprintf("filter_chains[%d]", i)
			tcp = append(tcp, c)
			if m := fc.GetFilterChainMatch(); m != nil {
				out[p+"."+c+".filter_chain_match"] = m.String()
			}
			if tp.GetCluster() != "" {
				out[p+"."+c+".tcp_proxy.cluster"] = tp.GetCluster()
			}
			var wc []string
			for _, w := range tp.GetWeightedClusters().GetClusters() {
				wc = append(wc, fmt.Sprintf("%s=%d", w.GetName(), w.GetWeight()))
			}
			if len(wc) > 0 {
				sort.Strings(wc)
				out[p+"."+c+".tcp_proxy.weighted_clusters"] = strings.Join(wc, ",")
			}
			idle := "1h0m0s"
			if tp.GetIdleTimeout() != nil {
				idle = tp.GetIdleTimeout().AsDuration().String()
			}
			out[p+"."+c+".tcp_proxy.idle_timeout"] = idle
			attempts := "1"
			if tp.GetMaxConnectAttempts() != nil {
				attempts = fmt.Sprint(tp.GetMaxConnectAttempts().GetValue())
			}
			out[p+"."+c+".tcp_proxy.max_connect_attempts"] = attempts
		}
	}
	if len(tcp) > 0 {
		out[p+".tcp_proxy"] = strings.Join(tcp, ",")
	}
}

func flattenRouteConfig(rc *route.RouteConfiguration, scope Scope, out map[string]string) {
	p := "routes[" + rc.GetName() + "]"
	out[p] = "present"
	out[p+".ignore_port_in_host_matching"] = fmt.Sprint(rc.GetIgnorePortInHostMatching())
	for _, vh := range rc.GetVirtualHosts() {
		// Istio adds virtual hosts meshbench does not model, which are not
		// compared:
		//   - allow_any / block_all: the catch-all for hosts no Service
		//     declares (outboundTrafficPolicy);
		//   - those of services outside the registry (kube-dns, the
		//     kubernetes API and the like);
		//   - host:port for a registry host on a port its Service does not
		//     have: Istio binds a VirtualService whose host has no Service
		//     on port 80 to port 80 as a plain hostname (route.go
		//     buildSidecarVirtualHostsForVirtualService, "gross HACK").
		//     meshbench's apps always call a service on its service port.
		// Only the virtual hosts of the registry's services on their own
		// ports are compared.
		host, portStr, ok := strings.Cut(vh.GetName(), ":")
		port, err := strconv.Atoi(portStr)
		if !ok || err != nil || !scope.hasPort(host, port) {
			continue
		}
		flattenVirtualHost(p+".virtual_hosts["+vh.GetName()+"]", vh, out)
	}
}

func flattenVirtualHost(p string, vh *route.VirtualHost, out map[string]string) {
	out[p] = "present"
	// Domains are a set: one path per domain, so that a known difference
	// can name exactly the domains it is about.
	for _, d := range vh.GetDomains() {
		out[p+".domains["+d+"]"] = "present"
	}
	out[p+".include_request_attempt_count"] = fmt.Sprint(vh.GetIncludeRequestAttemptCount())
	// Route order matters (Envoy takes the first match): routes are
	// compared by position.
	for i, r := range vh.GetRoutes() {
		flattenRoute(fmt.Sprintf("%s.routes[%d]", p, i), r, out)
	}
}

func flattenRoute(p string, r *route.Route, out map[string]string) {
	out[p] = "present"
	m := proto.Clone(r.GetMatch()).(*route.RouteMatch)
	// Header and query parameter matchers all have to hold: their order
	// means nothing to Envoy, and Istio builds query parameters from a map
	// (in random order). Both are compared sorted by name.
	sort.SliceStable(m.Headers, func(i, j int) bool { return m.Headers[i].GetName() < m.Headers[j].GetName() })
	sort.SliceStable(m.QueryParameters, func(i, j int) bool { return m.QueryParameters[i].GetName() < m.QueryParameters[j].GetName() })
	// Envoy matches paths case-sensitively unless told otherwise.
	if m.GetCaseSensitive() == nil {
		out[p+".match.case_sensitive"] = "true"
	}
	flattenMessage(p+".match", m, out)
	// The action is an object of its own: when the kinds differ, that is
	// one difference, not one per field of each.
	switch a := r.GetAction().(type) {
	case *route.Route_Route:
		out[p+".route"] = "present"
		flattenRouteAction(p+".route", a.Route, out)
	case *route.Route_Redirect:
		out[p+".redirect"] = "present"
		flattenMessage(p+".redirect", a.Redirect, out)
	case *route.Route_DirectResponse:
		out[p+".direct_response"] = "present"
		flattenMessage(p+".direct_response", a.DirectResponse, out)
	default:
		out[p+".action"] = fmt.Sprintf("%T", a)
	}
	if f, ok := r.GetTypedPerFilterConfig()[FaultFilter]; ok {
		flattenMessage(p+".typed_per_filter_config["+FaultFilter+"]", f, out)
	}
	// The span name of the requests the route takes (route.go
	// GetRouteOperation), which the sidecar's tracing uses.
	if op := r.GetDecorator().GetOperation(); op != "" {
		out[p+".decorator.operation"] = op
	}
	// Header edits, which meshbench's sidecar applies to the request and
	// the response.
	for i, h := range r.GetRequestHeadersToAdd() {
		element(fmt.Sprintf("%s.request_headers_to_add[%d]", p, i), h, out)
	}
	for i, h := range r.GetResponseHeadersToAdd() {
		element(fmt.Sprintf("%s.response_headers_to_add[%d]", p, i), h, out)
	}
	for i, h := range r.GetRequestHeadersToRemove() {
		out[fmt.Sprintf("%s.request_headers_to_remove[%d]", p, i)] = h
	}
	for i, h := range r.GetResponseHeadersToRemove() {
		out[fmt.Sprintf("%s.response_headers_to_remove[%d]", p, i)] = h
	}
}

func flattenRouteAction(p string, a *route.RouteAction, out map[string]string) {
	switch cs := a.GetClusterSpecifier().(type) {
	case *route.RouteAction_Cluster:
		out[p+".cluster"] = cs.Cluster
	case *route.RouteAction_WeightedClusters:
		out[p+".weighted_clusters"] = fmt.Sprintf("%d clusters", len(cs.WeightedClusters.GetClusters()))
		for i, c := range cs.WeightedClusters.GetClusters() {
			cp := fmt.Sprintf("%s.weighted_clusters.clusters[%d]", p, i)
			out[cp+".name"] = c.GetName()
			out[cp+".weight"] = fmt.Sprint(c.GetWeight().GetValue())
		}
	case nil:
		out[p+".cluster"] = Absent
	default:
		out[p+".cluster_specifier"] = fmt.Sprintf("%T", cs)
	}
	// What a missing cluster answers: 503 unless set (Istio sets 500 for
	// Gateway API routes, route.go applyHTTPRouteDestination).
	out[p+".cluster_not_found_response_code"] = a.GetClusterNotFoundResponseCode().String()
	// Unset, Envoy's route timeout is 15s.
	out[p+".timeout"] = durationOr(a.GetTimeout(), 15*time.Second)
	// A gRPC caller's deadline in the router and the connection manager.
	//lint:ignore SA1019 Istio sets the deprecated field, and the sidecar acts on it
	if d := a.GetMaxGrpcTimeout(); d != nil {
		out[p+".max_grpc_timeout"] = d.AsDuration().String()
	} else {
		out[p+".max_grpc_timeout"] = Absent
	}
	flattenMessage(p+".max_stream_duration", a.GetMaxStreamDuration(), out)
	if rp := a.GetRetryPolicy(); rp != nil {
		rp = proto.Clone(rp).(*route.RetryPolicy)
		// retry_on is a set of conditions and retriable_status_codes a set
		// of codes: their order means nothing to Envoy.
		on := strings.Split(rp.GetRetryOn(), ",")
		for i := range on {
			on[i] = strings.TrimSpace(on[i])
		}
		sort.Strings(on)
		rp.RetryOn = strings.Join(on, ",")
		sort.Slice(rp.RetriableStatusCodes, func(i, j int) bool { return rp.RetriableStatusCodes[i] < rp.RetriableStatusCodes[j] })
		if rp.GetNumRetries() == nil {
			out[p+".retry_policy.num_retries"] = "1"
		}
		flattenMessage(p+".retry_policy", rp, out)
	} else {
		out[p+".retry_policy"] = Absent
	}
	for i, mp := range a.GetRequestMirrorPolicies() {
		element(fmt.Sprintf("%s.request_mirror_policies[%d]", p, i), mp, out)
	}
	// Rewrites of the upstream request and the consistent-hash key.
	if a.GetPrefixRewrite() != "" {
		out[p+".prefix_rewrite"] = a.GetPrefixRewrite()
	}
	flattenMessage(p+".regex_rewrite", a.GetRegexRewrite(), out)
	if h := a.GetHostRewriteLiteral(); h != "" {
		out[p+".host_rewrite_literal"] = h
	}
	for i, h := range a.GetHashPolicy() {
		element(fmt.Sprintf("%s.hash_policy[%d]", p, i), h, out)
	}
}

// virtualInbound is the sidecar's inbound capture listener.
const virtualInbound = "virtualInbound"

// connectionManagers are the HCMs of the chains, in order.
func connectionManagers(chains []*listener.FilterChain) []*hcm.HttpConnectionManager {
	var out []*hcm.HttpConnectionManager
	for _, fc := range chains {
		for _, f := range fc.GetFilters() {
			m := &hcm.HttpConnectionManager{}
			if f.GetName() == wellknown.HTTPConnectionManager && f.GetTypedConfig().UnmarshalTo(m) == nil {
				out = append(out, m)
			}
		}
	}
	return out
}

// flattenTracing adds an HCM's tracing (sampling, custom tags, provider
// and its typed config) and its request ID extension, which decides
// sampling from x-request-id.
func flattenTracing(p string, m *hcm.HttpConnectionManager, out map[string]string) {
	if m.GetTracing() == nil {
		out[p+".tracing"] = Absent
	} else {
		flattenMessage(p+".tracing", m.GetTracing(), out)
	}
	flattenMessage(p+".request_id_extension", m.GetRequestIdExtension(), out)
}

// flattenInboundTracing compares the tracing of the virtualInbound
// chains of the sidecar's own ports, by port: istiod gives every chain
// of a port (TLS and plain text) the same, and which chains a port has is
// not this comparison's subject. The listener's other chains
// (passthrough, other ports) are not meshbench's.
func flattenInboundTracing(l *listener.Listener, scope Scope, out map[string]string) {
	byPort := map[int]map[string]string{}
	for _, fc := range l.GetFilterChains() {
		port := int(fc.GetFilterChainMatch().GetDestinationPort().GetValue())
		ms := connectionManagers([]*listener.FilterChain{fc})
		if !scope.InboundPorts[port] || len(ms) == 0 {
			continue
		}
		p := fmt.Sprintf("listeners[%s].filter_chains[port %d].http_connection_manager", virtualInbound, port)
		chain := map[string]string{}
		flattenTracing(p, ms[0], chain)
		if prev, ok := byPort[port]; ok && !maps.Equal(prev, chain) {
			chain = map[string]string{p: "the chains of the port differ"}
		}
		byPort[port] = chain
	}
	for _, chain := range byPort {
		maps.Copy(out, chain)
	}
}

// element adds one item of a list as an object: when only one side has
// it, that is one difference, not one per field.
func element(p string, m proto.Message, out map[string]string) {
	out[p] = "present"
	flattenMessage(p, m, out)
}

func durationOr(d *durationpb.Duration, def time.Duration) string {
	if d == nil {
		return def.String()
	}
	return d.AsDuration().String()
}

func uniq(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// flattenMessage adds every field set in m under path p: nested messages
// by field name, repeated fields by index, maps by key. Durations, wrappers
// and Any are shown by value. A message that is set but has no field set
// shows as "{}"; an unset message adds nothing.
func flattenMessage(p string, m proto.Message, out map[string]string) {
	if m == nil {
		return
	}
	rm := m.ProtoReflect()
	if !rm.IsValid() {
		return
	}
	flattenReflect(p, rm, out)
}

func flattenReflect(p string, m protoreflect.Message, out map[string]string) {
	if v, ok := scalarMessage(m); ok {
		out[p] = v
		return
	}
	if inner, typeURL, ok := unpackAny(m); ok {
		out[p+".@type"] = typeURL
		if inner != nil {
			flattenReflect(p, inner.ProtoReflect(), out)
		}
		return
	}
	n := 0
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		n++
		fp := p + "." + string(fd.Name())
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				flattenValue(fmt.Sprintf("%s[%d]", fp, i), fd, l.Get(i), out)
			}
		case fd.IsMap():
			var keys []string
			vals := map[string]protoreflect.Value{}
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				ks := k.String()
				keys = append(keys, ks)
				vals[ks] = mv
				return true
			})
			sort.Strings(keys)
			for _, k := range keys {
				flattenValue(fp+"["+k+"]", fd.MapValue(), vals[k], out)
			}
		default:
			flattenValue(fp, fd, v, out)
		}
		return true
	})
	if n == 0 {
		if _, set := out[p+".@type"]; !set {
			out[p] = "{}"
		}
	}
}

func flattenValue(p string, fd protoreflect.FieldDescriptor, v protoreflect.Value, out map[string]string) {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		flattenReflect(p, v.Message(), out)
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			out[p] = string(ev.Name())
		} else {
			out[p] = fmt.Sprint(v.Enum())
		}
	case protoreflect.BytesKind:
		out[p] = fmt.Sprintf("%x", v.Bytes())
	default:
		out[p] = fmt.Sprint(v.Interface())
	}
}

// scalarMessage shows the well-known wrapper types as plain values, so
// that paths do not end in .value, and a FractionalPercent as the share it
// means, whatever its denominator (20/HUNDRED and 200000/MILLION are both
// "200000 per million"), as meshbench's sidecar reads it.
func scalarMessage(m protoreflect.Message) (string, bool) {
	switch m.Descriptor().FullName() {
	case "envoy.type.v3.FractionalPercent":
		n := m.Get(m.Descriptor().Fields().ByName("numerator")).Uint()
		switch m.Get(m.Descriptor().Fields().ByName("denominator")).Enum() {
		case 0: // HUNDRED
			n *= 10_000
		case 1: // TEN_THOUSAND
			n *= 100
		}
		return fmt.Sprintf("%d per million", n), true
	case "google.protobuf.Duration":
		d := &durationpb.Duration{
			Seconds: m.Get(m.Descriptor().Fields().ByName("seconds")).Int(),
			Nanos:   int32(m.Get(m.Descriptor().Fields().ByName("nanos")).Int()),
		}
		return d.AsDuration().String(), true
	case "google.protobuf.BoolValue", "google.protobuf.UInt32Value", "google.protobuf.UInt64Value",
		"google.protobuf.Int32Value", "google.protobuf.Int64Value", "google.protobuf.DoubleValue",
		"google.protobuf.FloatValue", "google.protobuf.StringValue":
		return fmt.Sprint(m.Get(m.Descriptor().Fields().ByName("value")).Interface()), true
	}
	return "", false
}

// unpackAny unpacks a google.protobuf.Any; inner is nil when its type is
// not linked into the binary.
func unpackAny(m protoreflect.Message) (proto.Message, string, bool) {
	if m.Descriptor().FullName() != "google.protobuf.Any" {
		return nil, "", false
	}
	a := &anypb.Any{
		TypeUrl: m.Get(m.Descriptor().Fields().ByName("type_url")).String(),
		Value:   m.Get(m.Descriptor().Fields().ByName("value")).Bytes(),
	}
	inner, err := a.UnmarshalNew()
	if err != nil {
		return nil, a.GetTypeUrl(), true
	}
	return inner, a.GetTypeUrl(), true
}

// filterAccessLogs describes the access_log entries of a listener's HCM and
// tcp_proxy filters (each distinct one once, sorted): logger name and its
// config as text. istiod's listener-level access log (response flag NR) is
// not compared: xdsgen does not build it.
func filterAccessLogs(l *listener.Listener) []string {
	var out []string
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			var als []*accesslogv3.AccessLog
			switch f.GetName() {
			case wellknown.HTTPConnectionManager:
				m := &hcm.HttpConnectionManager{}
				if f.GetTypedConfig().UnmarshalTo(m) == nil {
					als = m.GetAccessLog()
				}
			case wellknown.TCPProxy:
				tp := &tcpproxy.TcpProxy{}
				if f.GetTypedConfig().UnmarshalTo(tp) == nil {
					als = tp.GetAccessLog()
				}
			}
			for _, al := range als {
				desc := al.GetName()
				if m, err := al.GetTypedConfig().UnmarshalNew(); err == nil {
					b, _ := protojson.MarshalOptions{}.Marshal(m)
					desc += " " + string(b)
				}
				if al.GetFilter() != nil {
					desc += " filter " + al.GetFilter().String()
				}
				out = append(out, desc)
			}
		}
	}
	sort.Strings(out)
	return uniq(out)
}
