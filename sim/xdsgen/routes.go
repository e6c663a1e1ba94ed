package xdsgen

import (
	"sort"
	"strings"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/meshbench/meshbench/sim/registry"
)

// durationZero is Istio's "Notimeout": route timeout 0s turns Envoy's 15 s
// default off (pilot/pkg/networking/core/route/route.go setTimeout).
func durationZero() *durationpb.Duration { return durationpb.New(0) }

// outboundRoutes builds one RouteConfiguration per service port, named by
// the port, with a virtual host per service on that port.
func (g *Generator) outboundRoutes() []*route.RouteConfiguration {
	byPort := map[int][]*route.VirtualHost{}
	for _, s := range g.reg.Services {
		byPort[s.Port] = append(byPort[s.Port], g.virtualHost(s, "mesh"))
	}
	var ports []int
	for p := range byPort {
		ports = append(ports, p)
	}
	sort.Ints(ports)
	var out []*route.RouteConfiguration
	for _, p := range ports {
		out = append(out, &route.RouteConfiguration{
			Name:         OutboundRouteName(p),
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
	rc := &route.RouteConfiguration{Name: GatewayRouteName(gw.Port), ValidateClusters: wrapperspb.Bool(false), IgnorePortInHostMatching: true}
	var names []string
	for _, res := range g.cfg.Gateways {
		if registry.Selects(res.Spec.GetSelector(), gw.Labels) {
			names = append(names, res.Name, res.Namespace+"/"+res.Name)
		}
	}
	for _, s := range g.reg.Services {
		var bound []string
		for _, n := range names {
			if len(g.virtualServices(s, n)) > 0 {
				bound = append(bound, n)
			}
		}
		if len(bound) > 0 {
			rc.VirtualHosts = append(rc.VirtualHosts, g.virtualHost(s, bound[0]))
			continue
		}
		rc.VirtualHosts = append(rc.VirtualHosts, g.virtualHost(s, ""))
	}
	return rc
}

// virtualHost builds a service's virtual host with the routes of its
// VirtualServices bound to gateway, or Istio's default route.
func (g *Generator) virtualHost(s registry.ServiceInfo, gateway string) *route.VirtualHost {
	vh := &route.VirtualHost{
		Name: VirtualHostName(s.FQDN(), s.Port),
		// The FQDN and the short names a same-namespace caller may use; ports are
		// not appended because sidecars ignore the port in host matching
		// (httproute.go generateVirtualHostDomains, generateAltVirtualHostsForKubernetesService).
		Domains: []string{s.FQDN(), s.Name, s.Name + "." + s.Namespace + ".svc", s.Name + "." + s.Namespace},
		// On by default in Istio's proxy headers (pilot/pkg/networking/util/proxy_headers.go).
		IncludeRequestAttemptCount: true,
	}
	var vss []*VirtualServiceRef
	if gateway != "" {
		for _, vs := range g.virtualServices(s, gateway) {
			vss = append(vss, &VirtualServiceRef{Name: vs.Name, Namespace: vs.Namespace, Spec: &vs.Spec})
		}
	}
	for _, vs := range vss {
		for _, hr := range vs.Spec.GetHttp() {
			vh.Routes = append(vh.Routes, g.translateHTTPRoute(s, hr)...)
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
}

// defaultRoute is BuildDefaultHTTPOutboundRoute: prefix "/" to the service
// cluster, Istio's default retry policy and no timeout.
func (g *Generator) defaultRoute(s registry.ServiceInfo) *route.Route {
	return &route.Route{
		Name:  DefaultRouteName,
		Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
		Action: &route.Route_Route{Route: &route.RouteAction{
			ClusterSpecifier: &route.RouteAction_Cluster{Cluster: ClusterName(OutboundDirection, s.Port, "", s.FQDN())},
			Timeout:          durationZero(),
			RetryPolicy:      ConvertRetryPolicy(nil),
		}},
	}
}

// translateHTTPRoute turns one VirtualService http route into Envoy routes:
// one per match condition, all with the same action (route.go BuildHTTPRoutesForVirtualService).
func (g *Generator) translateHTTPRoute(s registry.ServiceInfo, hr *networking.HTTPRoute) []*route.Route {
	action := &route.RouteAction{
		Timeout:     durationZero(),
		RetryPolicy: ConvertRetryPolicy(hr.GetRetries()),
	}
	if t := hr.GetTimeout(); t != nil {
		action.Timeout = t
	}
	dests := hr.GetRoute()
	if len(dests) == 1 {
		action.ClusterSpecifier = &route.RouteAction_Cluster{Cluster: g.destinationCluster(s, dests[0].GetDestination())}
	} else {
		wc := &route.WeightedCluster{}
		for _, d := range dests {
			if d.GetWeight() == 0 {
				continue // Istio drops zero-weight destinations (route.go translateWeightedClusters)
			}
			wc.Clusters = append(wc.Clusters, &route.WeightedCluster_ClusterWeight{
				Name:   g.destinationCluster(s, d.GetDestination()),
				Weight: wrapperspb.UInt32(uint32(d.GetWeight())),
			})
		}
		action.ClusterSpecifier = &route.RouteAction_WeightedClusters{WeightedClusters: wc}
	}
	matches := hr.GetMatch()
	if len(matches) == 0 {
		matches = []*networking.HTTPMatchRequest{nil}
	}
	var out []*route.Route
	for _, m := range matches {
		r := &route.Route{
			Name:   hr.GetName(),
			Match:  translateRouteMatch(m),
			Action: &route.Route_Route{Route: action},
		}
		if m.GetName() != "" {
			// Istio names a route "<match name>.<route name>" when both are set.
			r.Name = m.GetName()
			if hr.GetName() != "" {
				r.Name = m.GetName() + "." + hr.GetName()
			}
		}
		out = append(out, r)
	}
	return out
}

// destinationCluster resolves a VirtualService destination to its cluster name.
func (g *Generator) destinationCluster(from registry.ServiceInfo, d *networking.Destination) string {
	svc, ok := g.reg.Service(d.GetHost())
	if !ok {
		// Validation refuses unknown hosts; keep the host so the sidecar answers NC.
		return ClusterName(OutboundDirection, int(d.GetPort().GetNumber()), d.GetSubset(), d.GetHost())
	}
	port := svc.Port
	if n := d.GetPort().GetNumber(); n != 0 {
		port = int(n)
	}
	return ClusterName(OutboundDirection, port, d.GetSubset(), svc.FQDN())
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
		if em := convertStringMatch(sm); em != nil {
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
