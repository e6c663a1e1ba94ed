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
	"sort"
	"strings"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	// Linked in so that the Any configs Istio and meshbench set can be
	// unpacked and compared field by field.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
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
// and is left out on purpose (see Compare).
type Scope struct {
	// Hosts are the FQDNs of the registry's services.
	Hosts map[string]bool
}

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
		if va != vb {
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
		if !outboundRouteName(rc.GetName()) {
			continue
		}
		flattenRouteConfig(rc, scope, out)
	}
	for _, l := range s.Listeners {
		if !outboundListenerName(l.GetName()) {
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
	"zipkin":                        true,
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
	parts := strings.Split(name, "|")
	if len(parts) != 4 || parts[0] != "outbound" {
		return false
	}
	// Outbound clusters of hosts outside the registry (services Istio
	// knows of that the scenario does not declare) are not meshbench's.
	return scope.Hosts[parts[3]]
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
	hpt := "50 (unset: Envoy default)"
	if t := c.GetCommonLbConfig().GetHealthyPanicThreshold(); t != nil {
		hpt = fmt.Sprint(t.GetValue())
	}
	out[p+".common_lb_config.healthy_panic_threshold"] = hpt
}

func flattenEndpoints(cla *endpoint.ClusterLoadAssignment, out map[string]string) {
	p := "endpoints[" + cla.GetClusterName() + "]"
	out[p] = "present"
	for _, loc := range cla.GetEndpoints() {
		for _, lb := range loc.GetLbEndpoints() {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			ep := fmt.Sprintf("%s.lb_endpoints[%s:%d]", p, sa.GetAddress(), sa.GetPortValue())
			out[ep] = "present"
			w := "1 (unset)"
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
}

func flattenRouteConfig(rc *route.RouteConfiguration, scope Scope, out map[string]string) {
	p := "routes[" + rc.GetName() + "]"
	out[p] = "present"
	out[p+".ignore_port_in_host_matching"] = fmt.Sprint(rc.GetIgnorePortInHostMatching())
	for _, vh := range rc.GetVirtualHosts() {
		// Istio adds virtual hosts meshbench does not model: allow_any /
		// block_all (the catch-all for hosts that no Service declares) and
		// those of services outside the registry (kube-dns and the like).
		// Only the virtual hosts of the registry's services are compared.
		host, _, ok := strings.Cut(vh.GetName(), ":")
		if !ok || !scope.Hosts[host] {
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
	// Envoy matches paths case-sensitively unless told otherwise.
	if m.GetCaseSensitive() == nil {
		out[p+".match.case_sensitive"] = "true (unset)"
	}
	flattenMessage(p+".match", m, out)
	switch a := r.GetAction().(type) {
	case *route.Route_Route:
		out[p+".action"] = "route"
		flattenRouteAction(p+".route", a.Route, out)
	case *route.Route_Redirect:
		out[p+".action"] = "redirect"
		flattenMessage(p+".redirect", a.Redirect, out)
	case *route.Route_DirectResponse:
		out[p+".action"] = "direct_response"
		flattenMessage(p+".direct_response", a.DirectResponse, out)
	default:
		out[p+".action"] = fmt.Sprintf("%T", a)
	}
	if f, ok := r.GetTypedPerFilterConfig()[FaultFilter]; ok {
		flattenMessage(p+".typed_per_filter_config["+FaultFilter+"]", f, out)
	}
}

func flattenRouteAction(p string, a *route.RouteAction, out map[string]string) {
	switch cs := a.GetClusterSpecifier().(type) {
	case *route.RouteAction_Cluster:
		out[p+".cluster"] = cs.Cluster
	case *route.RouteAction_WeightedClusters:
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
	// Unset, Envoy's route timeout is 15s.
	out[p+".timeout"] = durationOr(a.GetTimeout(), 15*time.Second)
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
			out[p+".retry_policy.num_retries"] = "1 (unset: Envoy default)"
		}
		flattenMessage(p+".retry_policy", rp, out)
	} else {
		out[p+".retry_policy"] = Absent
	}
	for i, mp := range a.GetRequestMirrorPolicies() {
		flattenMessage(fmt.Sprintf("%s.request_mirror_policies[%d]", p, i), mp, out)
	}
}

func durationOr(d *durationpb.Duration, def time.Duration) string {
	if d == nil {
		return def.String() + " (unset: Envoy default)"
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

// scalarMessage shows the well-known wrapper types as plain values and
// unpacks Any, so that paths do not end in .value or .type_url.
func scalarMessage(m protoreflect.Message) (string, bool) {
	switch m.Descriptor().FullName() {
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
