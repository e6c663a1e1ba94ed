package xdsgen

import (
	"sort"
	"strconv"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	commonfault "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	xdstype "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/registry"
)

// durationZero is Istio's "Notimeout": route timeout 0s turns Envoy's 15 s
// default off (pilot/pkg/networking/core/route/route.go setTimeout).
func durationZero() *durationpb.Duration { return durationpb.New(0) }

// setTimeout is route.go setTimeout for a proxy that is not proxyless
// gRPC: the VirtualService's timeout or none, and the same value as
// max_grpc_timeout (deprecated, which Istio still uses "as the replacement
// MaxStreamDuration has some regressions"), so that a gRPC caller's
// grpc-timeout bounds its request, capped by the route's timeout.
func setTimeout(action *route.RouteAction, vsTimeout *durationpb.Duration) {
	action.Timeout = durationZero()
	if vsTimeout != nil {
		action.Timeout = vsTimeout
	}
	//lint:ignore SA1019 Istio sets the deprecated field (route.go setTimeout)
	action.MaxGrpcTimeout = action.Timeout
}

// outboundRoutes builds one RouteConfiguration per service port, named by
// the port, with a virtual host per service on that port.
func (g *Generator) outboundRoutes() []*route.RouteConfiguration {
	byPort := map[int][]*route.VirtualHost{}
	for _, s := range g.reg.Services {
		if IsTCP(s) {
			continue // a TCP port has no routes: tcp_proxy (tcp.go)
		}
		byPort[s.Port] = append(byPort[s.Port], g.virtualHost(s, "mesh", s.Port))
	}
	var ports []int
	for p := range byPort {
		ports = append(ports, p)
	}
	sort.Ints(ports)
	var out []*route.RouteConfiguration
	for _, p := range ports {
		out = append(out, &route.RouteConfiguration{
			Name:         istionames.OutboundRouteName(p),
			VirtualHosts: byPort[p],
			// Sidecars match the host without its port (httproute.go generateVirtualHostDomains, SidecarIgnorePort).
			IgnorePortInHostMatching: true,
			ValidateClusters:         wrapperspb.Bool(false),
		})
	}
	return out
}

// gatewayRoute builds the gateway's route: the VirtualServices bound to a
// Gateway resource that selects it, or, when none binds, a plain route to
// every service so that load can enter the mesh without a Gateway resource.
func (g *Generator) gatewayRoute(gw Gateway) *route.RouteConfiguration {
	rc := &route.RouteConfiguration{Name: istionames.GatewayRouteName(gw.Port), ValidateClusters: wrapperspb.Bool(false), IgnorePortInHostMatching: true}
	var names []string
	for _, res := range g.cfg.Gateways {
		if registry.Selects(res.Spec.GetSelector(), gw.Labels) {
			names = append(names, res.Name, res.Namespace+"/"+res.Name)
		}
	}
	for _, s := range g.reg.Services {
		if IsTCP(s) {
			continue // the gateway's HTTP server port carries HTTP only
		}
		var bound []string
		for _, n := range names {
			if len(g.virtualServices(s, n)) > 0 {
				bound = append(bound, n)
			}
		}
		if len(bound) > 0 {
			rc.VirtualHosts = append(rc.VirtualHosts, g.virtualHost(s, bound[0], gw.Port))
			continue
		}
		rc.VirtualHosts = append(rc.VirtualHosts, g.virtualHost(s, "", gw.Port))
	}
	return rc
}

// virtualHost builds a service's virtual host with the routes of its
// VirtualServices bound to gateway, or Istio's default route, for the
// route configuration of listenPort.
func (g *Generator) virtualHost(s registry.ServiceInfo, gateway string, listenPort int) *route.VirtualHost {
	vh := &route.VirtualHost{
		Name: istionames.VirtualHostName(s.FQDN(), s.Port),
		// The FQDN and the short names a same-namespace caller may use; ports are
		// not appended because sidecars ignore the port in host matching
		// (httproute.go generateVirtualHostDomains, generateAltVirtualHostsForKubernetesService).
		// The absolute FQDN with a trailing dot is on by default (EnableAbsoluteFqdnVhostDomain).
		Domains: []string{s.FQDN(), s.FQDN() + ".", s.Name, s.Name + "." + s.Namespace + ".svc", s.Name + "." + s.Namespace},
		// On by default in Istio's proxy headers (pilot/pkg/networking/util/proxy_headers.go).
		IncludeRequestAttemptCount: true,
	}
	var vss []*VirtualServiceRef
	if gateway != "" {
		for _, vs := range g.virtualServices(s, gateway) {
			vss = append(vss, &VirtualServiceRef{Name: vs.Name, Namespace: vs.Namespace, Spec: &vs.Spec, GatewaySemantics: usesGatewaySemantics(vs)})
		}
	}
	if gateway == "mesh" && len(vss) > 1 {
		// On sidecars only the first VirtualService for a host applies; Istio
		// drops the others (httproute.go BuildSidecarOutboundVirtualHosts).
		vss = vss[:1]
	}
	for _, vs := range vss {
		for _, hr := range vs.Spec.GetHttp() {
			routes := g.translateHTTPRoute(s, hr)
			if vs.GatewaySemantics {
				routes = gatewayRoutes(routes, hr) // gamma.go
			}
			for _, r := range routes {
				r.Decorator = &route.Decorator{Operation: routeOperation(r, vs.Name, listenPort)}
			}
			// Routes after a catch-all are never reached: istiod stops
			// there (route.go BuildHTTPRoutesForVirtualService, IsCatchAllRoute).
			catchAll := len(hr.GetMatch()) == 0
			for i, r := range routes {
				if isCatchAllRoute(r) {
					routes, catchAll = routes[:i+1], true
					break
				}
			}
			vh.Routes = append(vh.Routes, routes...)
			if catchAll {
				break
			}
		}
	}
	if len(vh.Routes) == 0 {
		vh.Routes = []*route.Route{g.defaultRoute(s)}
	}
	return vh
}

// VirtualServiceRef is a VirtualService's identity and spec.
type VirtualServiceRef struct {
	Name, Namespace string
	Spec            *networking.VirtualService
	// GatewaySemantics marks one istiod made from Gateway API routes (gamma.go).
	GatewaySemantics bool
}

// defaultRoute is BuildDefaultHTTPOutboundRoute: prefix "/" to the service
// cluster, Istio's default retry policy and no timeout.
func (g *Generator) defaultRoute(s registry.ServiceInfo) *route.Route {
	r := &route.Route{
		Name:      istionames.DefaultRouteName,
		Match:     &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
		Decorator: &route.Decorator{Operation: traceOperation(s.FQDN(), s.Port)},
		Action: &route.Route_Route{Route: &route.RouteAction{
			ClusterSpecifier: &route.RouteAction_Cluster{Cluster: istionames.ClusterName(istionames.OutboundDirection, s.Port, "", s.FQDN())},
			RetryPolicy:      g.retryPolicy(g.cfg.Mesh.DefaultHTTPRetryPolicy, false),
		}},
	}
	setTimeout(r.GetRoute(), nil) // BuildDefaultHTTPOutboundRoute
	// A DestinationRule's consistent hash applies to the default route too (route.go buildSidecarVirtualHostForService).
	if dr := g.destinationRule(s); dr != nil {
		if hp := hashPolicy(dr.Spec.GetTrafficPolicy().GetLoadBalancer().GetConsistentHash()); hp != nil {
			r.GetRoute().HashPolicy = []*route.RouteAction_HashPolicy{hp}
		}
	}
	return r
}

// traceOperation is a default route's decorator, host:port/* (istiod's
// telemetry.TraceOperation): the span name of the requests it takes.
func traceOperation(host string, port int) string {
	return host + ":" + strconv.Itoa(port) + "/*"
}

// routeOperation is a VirtualService route's decorator, as istiod's
// route.GetRouteOperation makes it: the path (a prefix with "*"), after
// the host and port of its one cluster, or after the VirtualService's
// name and the listener's port when it splits.
func routeOperation(r *route.Route, vsName string, listenPort int) string {
	path := "/*"
	switch ps := r.GetMatch().GetPathSpecifier().(type) {
	case *route.RouteMatch_Prefix:
		path = ps.Prefix + "*"
	case *route.RouteMatch_Path:
		path = ps.Path
	case *route.RouteMatch_SafeRegex:
		path = ps.SafeRegex.GetRegex()
	}
	if _, port, _, host, ok := istionames.ParseClusterName(r.GetRoute().GetCluster()); ok {
		return host + ":" + strconv.Itoa(port) + path
	}
	return vsName + ":" + strconv.Itoa(listenPort) + path
}

// translateHTTPRoute turns one VirtualService http route into Envoy routes:
// one per match condition, all with the same action (route.go
// BuildHTTPRoutesForVirtualService, translateRoute, applyHTTPRouteDestination).
func (g *Generator) translateHTTPRoute(s registry.ServiceInfo, hr *networking.HTTPRoute) []*route.Route {
	matches := hr.GetMatch()
	if len(matches) == 0 {
		matches = []*networking.HTTPMatchRequest{nil}
	}
	var out []*route.Route
	for _, m := range matches {
		r := &route.Route{Name: hr.GetName(), Match: translateRouteMatch(m)}
		if m.GetName() != "" {
			r.Name = hr.GetName() + "." + m.GetName()
		}
		authority := ""
		if h := hr.GetHeaders(); h != nil {
			ops := translateHeaders(h)
			r.RequestHeadersToAdd, r.ResponseHeadersToAdd = ops.reqAdd, ops.respAdd
			r.RequestHeadersToRemove, r.ResponseHeadersToRemove = ops.reqRemove, ops.respRemove
			authority = ops.authority
		}
		action := g.routeAction(s, hr, authority)
		r.Action = &route.Route_Route{Route: action}
		if ds := hr.GetRoute(); len(ds) == 1 && ds[0].GetHeaders() != nil {
			// A single destination's header edits go on the route (route.go processDestination).
			ops := translateHeaders(ds[0].GetHeaders())
			r.RequestHeadersToAdd = append(r.RequestHeadersToAdd, ops.reqAdd...)
			r.ResponseHeadersToAdd = append(r.ResponseHeadersToAdd, ops.respAdd...)
			r.RequestHeadersToRemove = append(r.RequestHeadersToRemove, ops.reqRemove...)
			r.ResponseHeadersToRemove = append(r.ResponseHeadersToRemove, ops.respRemove...)
			if ops.authority != "" && action.HostRewriteSpecifier == nil {
				action.HostRewriteSpecifier = &route.RouteAction_HostRewriteLiteral{HostRewriteLiteral: ops.authority}
			}
		}
		if f := hr.GetFault(); f != nil {
			if hf := translateFault(f); hf != nil {
				r.TypedPerFilterConfig = map[string]*anypb.Any{FaultFilter: mustAny(hf)}
			}
		}
		out = append(out, r)
	}
	return out
}

// routeAction builds the action of an http route: timeout, rewrite,
// mirrors, destinations, hash policy and retries (route.go applyHTTPRouteDestination).
func (g *Generator) routeAction(s registry.ServiceInfo, hr *networking.HTTPRoute, authority string) *route.RouteAction {
	action := &route.RouteAction{}
	setTimeout(action, hr.GetTimeout())
	if rw := hr.GetRewrite(); rw != nil {
		if rr := rw.GetUriRegexRewrite(); rr != nil {
			action.RegexRewrite = &matcher.RegexMatchAndSubstitute{Pattern: &matcher.RegexMatcher{Regex: rr.GetMatch()}, Substitution: rr.GetRewrite()}
		} else if uri := rw.GetUri(); uri != "" {
			action.PrefixRewrite = uri
		}
		if rw.GetAuthority() != "" {
			authority = rw.GetAuthority()
		}
	}
	if authority != "" {
		action.HostRewriteSpecifier = &route.RouteAction_HostRewriteLiteral{HostRewriteLiteral: authority}
	}
	if hr.GetMirror() != nil {
		if mp := mirrorPercent(hr); mp != nil {
			action.RequestMirrorPolicies = append(action.RequestMirrorPolicies, &route.RouteAction_RequestMirrorPolicy{
				Cluster: g.destinationCluster(s, hr.GetMirror()), RuntimeFraction: mp, TraceSampled: wrapperspb.Bool(false),
				// PILOT_DISABLE_SHADOW_HOST_SUFFIX defaults to true (route.go TranslateRequestMirrorPolicy).
				DisableShadowHostSuffixAppend: true,
			})
		}
	}
	for _, m := range hr.GetMirrors() {
		if m.GetDestination() == nil {
			continue
		}
		mp := &core.RuntimeFractionalPercent{DefaultValue: percentToFraction(100)}
		if m.GetPercentage() != nil {
			if m.GetPercentage().GetValue() <= 0 {
				continue
			}
			mp = &core.RuntimeFractionalPercent{DefaultValue: percentToFraction(m.GetPercentage().GetValue())}
		}
		action.RequestMirrorPolicies = append(action.RequestMirrorPolicies, &route.RouteAction_RequestMirrorPolicy{
			Cluster: g.destinationCluster(s, m.GetDestination()), RuntimeFraction: mp, TraceSampled: wrapperspb.Bool(false),
			DisableShadowHostSuffixAppend: true,
		})
	}
	policy := hr.GetRetries()
	if policy == nil {
		policy = g.cfg.Mesh.DefaultHTTPRetryPolicy
	}
	consistentHash := false
	dests := hr.GetRoute()
	if len(dests) == 1 {
		action.ClusterSpecifier = &route.RouteAction_Cluster{Cluster: g.destinationCluster(s, dests[0].GetDestination())}
		if hash := g.consistentHash(dests[0].GetDestination()); hash != nil {
			consistentHash = true
			if hp := hashPolicy(hash); hp != nil {
				action.HashPolicy = []*route.RouteAction_HashPolicy{hp}
			}
		}
	} else {
		// Weighted routes carry the hash policies of their destinations (route.go, weighted clusters).
		for _, d := range dests {
			if hp := hashPolicy(g.consistentHash(d.GetDestination())); hp != nil && d.GetWeight() > 0 {
				dup := false
				for _, have := range action.HashPolicy {
					if proto.Equal(have, hp) {
						dup = true
					}
				}
				if !dup {
					action.HashPolicy = append(action.HashPolicy, hp)
				}
			}
		}
		wc := &route.WeightedCluster{}
		for _, d := range dests {
			if d.GetWeight() == 0 {
				continue // Istio drops zero-weight destinations when there are others
			}
			wc.Clusters = append(wc.Clusters, &route.WeightedCluster_ClusterWeight{
				Name:   g.destinationCluster(s, d.GetDestination()),
				Weight: wrapperspb.UInt32(uint32(d.GetWeight())),
			})
		}
		action.ClusterSpecifier = &route.RouteAction_WeightedClusters{WeightedClusters: wc}
	}
	action.RetryPolicy = g.retryPolicy(policy, consistentHash)
	return action
}

// FaultFilter is the name of Envoy's HTTP fault filter.
const FaultFilter = "envoy.filters.http.fault"

// translateFault is route.go TranslateFault: fixed delays only, percentages
// as millionths, HTTP or gRPC aborts.
func translateFault(in *networking.HTTPFaultInjection) *faultv3.HTTPFault {
	out := &faultv3.HTTPFault{}
	if d := in.GetDelay(); d != nil && d.GetFixedDelay() != nil {
		out.Delay = &commonfault.FaultDelay{FaultDelaySecifier: &commonfault.FaultDelay_FixedDelay{FixedDelay: d.GetFixedDelay()}}
		if d.GetPercentage() != nil {
			out.Delay.Percentage = percentToFraction(d.GetPercentage().GetValue())
		} else {
			out.Delay.Percentage = percentToFraction(float64(deprecatedDelayPercent(d)))
		}
	}
	if a := in.GetAbort(); a != nil {
		out.Abort = &faultv3.FaultAbort{}
		if a.GetPercentage() != nil {
			out.Abort.Percentage = percentToFraction(a.GetPercentage().GetValue())
		}
		switch e := a.GetErrorType().(type) {
		case *networking.HTTPFaultInjection_Abort_HttpStatus:
			out.Abort.ErrorType = &faultv3.FaultAbort_HttpStatus{HttpStatus: uint32(e.HttpStatus)}
		default:
			out.Abort = nil
		}
	}
	if out.Delay == nil && out.Abort == nil {
		return nil
	}
	return out
}

// percentToFraction is translatePercentToFractionalPercent: value × 10000 per million.
func percentToFraction(p float64) *xdstype.FractionalPercent {
	return &xdstype.FractionalPercent{Numerator: uint32(p * 10000), Denominator: xdstype.FractionalPercent_MILLION}
}

// mirrorPercent is route.go MirrorPercent: 100% when unset, none when 0.
func mirrorPercent(hr *networking.HTTPRoute) *core.RuntimeFractionalPercent {
	switch {
	case hr.GetMirrorPercentage() != nil:
		if hr.GetMirrorPercentage().GetValue() > 0 {
			return &core.RuntimeFractionalPercent{DefaultValue: percentToFraction(hr.GetMirrorPercentage().GetValue())}
		}
		return nil
	case DeprecatedMirrorPercent(hr) != nil:
		if v := DeprecatedMirrorPercent(hr).GetValue(); v > 0 {
			return &core.RuntimeFractionalPercent{DefaultValue: percentToFraction(float64(v))}
		}
		return nil
	default:
		return &core.RuntimeFractionalPercent{DefaultValue: percentToFraction(100)}
	}
}

type headerOps struct {
	reqAdd, respAdd       []*core.HeaderValueOption
	reqRemove, respRemove []string
	authority             string
}

// translateHeaders is route.go TranslateHeadersOperations: set overwrites,
// add appends, sorted by name; :authority/host becomes a host rewrite.
func translateHeaders(h *networking.Headers) headerOps {
	var ops headerOps
	set, setAuth := appendHeaders(h.GetRequest().GetSet(), false)
	add, addAuth := appendHeaders(h.GetRequest().GetAdd(), true)
	ops.reqAdd = append(set, add...)
	rset, _ := appendHeaders(h.GetResponse().GetSet(), false)
	radd, _ := appendHeaders(h.GetResponse().GetAdd(), true)
	ops.respAdd = append(rset, radd...)
	ops.reqRemove = h.GetRequest().GetRemove()
	ops.respRemove = h.GetResponse().GetRemove()
	ops.authority = addAuth
	if setAuth != "" {
		ops.authority = setAuth
	}
	return ops
}

func appendHeaders(headers map[string]string, appendFlag bool) ([]*core.HeaderValueOption, string) {
	var out []*core.HeaderValueOption
	authority := ""
	keys := make([]string, 0, len(headers))
	for k := range headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lk := strings.ToLower(k)
		if lk == ":authority" || lk == "host" {
			authority = headers[k]
		}
		if strings.HasPrefix(lk, ":") || lk == "host" {
			continue
		}
		o := &core.HeaderValueOption{Header: &core.HeaderValue{Key: k, Value: headers[k]}, AppendAction: core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}
		if appendFlag {
			o.AppendAction = core.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
		}
		out = append(out, o)
	}
	return out, authority
}

// consistentHash returns the consistent-hash settings that apply to a
// destination: its subset's load balancer if set, else the host's.
func (g *Generator) consistentHash(d *networking.Destination) *networking.LoadBalancerSettings_ConsistentHashLB {
	svc, ok := g.reg.Lookup(d.GetHost(), "") // resolved in New
	if !ok {
		return nil
	}
	dr := g.destinationRule(svc)
	if dr == nil {
		return nil
	}
	policy := dr.Spec.GetTrafficPolicy()
	for _, sub := range dr.Spec.GetSubsets() {
		if sub.GetName() == d.GetSubset() && sub.GetTrafficPolicy() != nil {
			policy = mergeSubsetPolicy(policy, sub.GetTrafficPolicy())
		}
	}
	return policy.GetLoadBalancer().GetConsistentHash()
}

// hashPolicy is route.go ConsistentHashToHashPolicy for header hashing.
func hashPolicy(h *networking.LoadBalancerSettings_ConsistentHashLB) *route.RouteAction_HashPolicy {
	switch h.GetHashKey().(type) {
	case *networking.LoadBalancerSettings_ConsistentHashLB_HttpHeaderName:
		return &route.RouteAction_HashPolicy{PolicySpecifier: &route.RouteAction_HashPolicy_Header_{
			Header: &route.RouteAction_HashPolicy_Header{HeaderName: h.GetHttpHeaderName()},
		}}
	case *networking.LoadBalancerSettings_ConsistentHashLB_UseSourceIp:
		return &route.RouteAction_HashPolicy{PolicySpecifier: &route.RouteAction_HashPolicy_ConnectionProperties_{
			ConnectionProperties: &route.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true},
		}}
	}
	return nil
}

// destinationCluster resolves a VirtualService destination to its cluster name.
func (g *Generator) destinationCluster(from registry.ServiceInfo, d *networking.Destination) string {
	svc, ok := g.reg.Lookup(d.GetHost(), "") // resolved in New
	if !ok {
		// Validation refuses unknown hosts; keep the host so the sidecar answers NC.
		return istionames.ClusterName(istionames.OutboundDirection, int(d.GetPort().GetNumber()), d.GetSubset(), d.GetHost())
	}
	port := svc.Port
	if n := d.GetPort().GetNumber(); n != 0 {
		port = int(n)
	}
	return istionames.ClusterName(istionames.OutboundDirection, port, d.GetSubset(), svc.FQDN())
}

// translateRouteMatch mirrors route.go TranslateRouteMatch for the sidecar
// case: headers sorted by name, uri exact/prefix/regex, method and authority
// as pseudo-header matches, query parameters.
func translateRouteMatch(in *networking.HTTPMatchRequest) *route.RouteMatch {
	out := &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}}
	if in == nil {
		return out
	}
	for name, sm := range in.GetHeaders() {
		out.Headers = append(out.Headers, translateHeaderMatch(name, sm))
	}
	for name, sm := range in.GetWithoutHeaders() {
		h := translateHeaderMatch(name, sm)
		h.InvertMatch = true
		// route.go TranslateRouteMatch: a string match (not a presence match) treats a missing header as empty.
		if !h.GetPresentMatch() {
			h.TreatMissingHeaderAsEmpty = true
		}
		out.Headers = append(out.Headers, h)
	}
	sort.Slice(out.Headers, func(i, j int) bool { return out.Headers[i].Name < out.Headers[j].Name })
	switch m := in.GetUri().GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		out.PathSpecifier = &route.RouteMatch_Path{Path: m.Exact}
	case *networking.StringMatch_Prefix:
		out.PathSpecifier = &route.RouteMatch_Prefix{Prefix: m.Prefix}
	case *networking.StringMatch_Regex:
		out.PathSpecifier = &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: m.Regex}}
	}
	out.CaseSensitive = wrapperspb.Bool(!in.GetIgnoreUriCase())
	if in.GetMethod() != nil {
		out.Headers = append(out.Headers, translateHeaderMatch(":method", in.GetMethod()))
	}
	if in.GetAuthority() != nil {
		out.Headers = append(out.Headers, translateHeaderMatch(":authority", in.GetAuthority()))
	}
	var qnames []string
	for name := range in.GetQueryParams() {
		qnames = append(qnames, name)
	}
	sort.Strings(qnames)
	for _, name := range qnames {
		sm := in.GetQueryParams()[name]
		qm := &route.QueryParameterMatcher{Name: name}
		if em := convertStringMatch(sm); em != nil && sm.GetRegex() != "*" {
			qm.QueryParameterMatchSpecifier = &route.QueryParameterMatcher_StringMatch{StringMatch: em}
		} else {
			qm.QueryParameterMatchSpecifier = &route.QueryParameterMatcher_PresentMatch{PresentMatch: true}
		}
		out.QueryParameters = append(out.QueryParameters, qm)
	}
	return out
}

// translateHeaderMatch: an empty match or regex "*" means "present"
// (route.go canBeConvertedToPresentMatch), else a string match.
func translateHeaderMatch(name string, in *networking.StringMatch) *route.HeaderMatcher {
	out := &route.HeaderMatcher{Name: strings.ToLower(name)}
	em := convertStringMatch(in)
	if em == nil || in.GetRegex() == "*" {
		out.HeaderMatchSpecifier = &route.HeaderMatcher_PresentMatch{PresentMatch: true}
		return out
	}
	out.HeaderMatchSpecifier = &route.HeaderMatcher_StringMatch{StringMatch: em}
	return out
}

// convertStringMatch is util.ConvertToEnvoyMatch.
func convertStringMatch(in *networking.StringMatch) *matcher.StringMatcher {
	switch m := in.GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: m.Exact}}
	case *networking.StringMatch_Prefix:
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: m.Prefix}}
	case *networking.StringMatch_Regex:
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: m.Regex}}}
	}
	return nil
}

// deprecatedDelayPercent reads fault.delay.percent, deprecated but still read by Istio (route.go TranslateFault).
func deprecatedDelayPercent(d *networking.HTTPFaultInjection_Delay) int32 {
	//lint:ignore SA1019 Istio still reads the deprecated integer.
	return d.GetPercent()
}

// DeprecatedMirrorPercent reads http[].mirrorPercent, deprecated but still
// honoured by Istio (route.go MirrorPercent).
func DeprecatedMirrorPercent(hr *networking.HTTPRoute) *wrapperspb.UInt32Value {
	//lint:ignore SA1019 Istio still honours the deprecated field.
	return hr.GetMirrorPercent()
}

// isCatchAllRoute is route.go IsCatchAllRoute: prefix "/" (or
// path-separated "/", or regex ".*") with no header or query match.
func isCatchAllRoute(r *route.Route) bool {
	catchAll := false
	switch m := r.GetMatch().GetPathSpecifier().(type) {
	case *route.RouteMatch_Prefix:
		catchAll = m.Prefix == "/"
	case *route.RouteMatch_PathSeparatedPrefix:
		catchAll = m.PathSeparatedPrefix == "/"
	case *route.RouteMatch_SafeRegex:
		catchAll = m.SafeRegex.GetRegex() == ".*"
	}
	return catchAll && len(r.GetMatch().GetHeaders()) == 0 && len(r.GetMatch().GetQueryParameters()) == 0 && len(r.GetMatch().GetDynamicMetadata()) == 0
}
