package xdsgen

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/meshbench/meshbench/sim/istionames"
)

// This file translates Gateway API routes for mesh traffic (GAMMA: an
// HTTPRoute or GRPCRoute whose parentRef is a Service) as istiod does: it
// turns them into VirtualServices with "gateway semantics"
// (pilot/pkg/config/kube/gateway/route_collections.go HTTPRouteCollection,
// GRPCRouteCollection, mergeHTTPRoutes; conversion.go convertHTTPRoute,
// convertGRPCRoute), which route.go then translates like any other, with
// the few differences UseGatewaySemantics makes (gatewayRoutes below).
// Every function cites the istiod function it follows.

// Gateway semantics, as istiod marks its generated VirtualServices
// (pkg/config/constants: InternalRouteSemantics, RouteSemanticsGateway).
const (
	routeSemanticsAnnotation = "internal.istio.io/route-semantics"
	routeSemanticsGateway    = "gateway"
)

// usesGatewaySemantics is model.UseGatewaySemantics.
func usesGatewaySemantics(vs *networkingv1.VirtualService) bool {
	return vs.Annotations[routeSemanticsAnnotation] == routeSemanticsGateway
}

// gammaRoute is one Gateway API route of either kind, reduced to what the
// merge needs.
type gammaRoute struct {
	namespace, name string
	parents         []gatewayv1.ParentReference
	// routes converts the rules: one VirtualService http route per match.
	routes func() []*networking.HTTPRoute
}

// GAMMAVirtualServices are the VirtualServices istiod builds from the
// config's HTTPRoutes and GRPCRoutes for their Service parents, one per
// namespace, parent port and host, the rules of every route with that key
// merged (mergeHTTPRoutes: by creation time, then namespace and name; the
// scenario's objects have no creation time, so by namespace and name), and
// sorted as the Gateway API orders matches (SortHTTPRoutes). They are
// named as istiod names them (the key, "/" replaced by "~").
func (g *Generator) GAMMAVirtualServices() []*networkingv1.VirtualService {
	var all []gammaRoute
	for _, r := range g.cfg.HTTPRoutes {
		all = append(all, gammaRoute{namespace: r.Namespace, name: r.Name, parents: r.Spec.ParentRefs,
			routes: func() []*networking.HTTPRoute { return HTTPRouteRules(r) }})
	}
	for _, r := range g.cfg.GRPCRoutes {
		all = append(all, gammaRoute{namespace: r.Namespace, name: r.Name, parents: r.Spec.ParentRefs,
			routes: func() []*networking.HTTPRoute { return grpcRouteRules(r) }})
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].namespace != all[j].namespace {
			return all[i].namespace < all[j].namespace
		}
		return all[i].name < all[j].name
	})
	byKey := map[string]*networkingv1.VirtualService{}
	var keys []string
	for _, r := range all {
		converted := r.routes()
		SortHTTPRoutes(converted)
		for _, pr := range r.parents {
			if !isServiceParent(pr) {
				continue // the loader refuses other parents
			}
			ns := r.namespace
			if pr.Namespace != nil {
				ns = string(*pr.Namespace)
			}
			host := string(pr.Name) + "." + ns + ".svc." + istionames.ClusterDomain
			// route_collections.go HTTPRouteCollection: "for mesh routes,
			// build one VS per namespace/port->host".
			key := r.namespace
			if pr.Port != nil {
				key += "/" + strconv.Itoa(int(*pr.Port))
			}
			key += "/" + host
			vs := byKey[key]
			if vs == nil {
				vs = &networkingv1.VirtualService{
					TypeMeta: metav1.TypeMeta{APIVersion: "networking.istio.io/v1", Kind: "VirtualService"},
					ObjectMeta: metav1.ObjectMeta{
						Name:        strings.ReplaceAll(key, "/", "~"),
						Namespace:   r.namespace,
						Annotations: map[string]string{routeSemanticsAnnotation: routeSemanticsGateway},
					},
				}
				vs.Spec.Hosts = []string{host}
				vs.Spec.Gateways = []string{"mesh"}
				byKey[key] = vs
				keys = append(keys, key)
			}
			vs.Spec.Http = append(vs.Spec.Http, converted...)
		}
	}
	sort.Strings(keys)
	out := make([]*networkingv1.VirtualService, 0, len(keys))
	for _, k := range keys {
		vs := byKey[k]
		// mergeHTTPRoutes sorts the merged rules again (stable).
		SortHTTPRoutes(vs.Spec.Http)
		out = append(out, vs)
	}
	return out
}

// isServiceParent reports whether a parentRef names a core Service (a
// parentRef's group defaults to gateway.networking.k8s.io).
func isServiceParent(pr gatewayv1.ParentReference) bool {
	return pr.Group != nil && (*pr.Group == "" || *pr.Group == "core") && pr.Kind != nil && *pr.Kind == "Service"
}

// routeName is istiod's name for a rule's routes: the rule's name, or
// <namespace>.<name>.<rule index> (conversion.go convertHTTPRoute).
func routeName(ns, name string, rule *gatewayv1.SectionName, pos int) string {
	if rule != nil {
		return string(*rule)
	}
	return ns + "." + name + "." + strconv.Itoa(pos)
}

// splitMatches is HTTPRouteCollection's loop: a rule of n matches becomes
// n routes of one match each (a rule without matches, one route).
func splitMatches[M any](ms []M) []*M {
	if len(ms) == 0 {
		return []*M{nil}
	}
	out := make([]*M, len(ms))
	for i := range ms {
		out[i] = &ms[i]
	}
	return out
}

// HTTPRouteRules is convertHTTPRoute for every rule and match of r, in
// rule and match order (SortHTTPRoutes orders them as istiod does).
func HTTPRouteRules(r *gatewayv1.HTTPRoute) []*networking.HTTPRoute {
	var out []*networking.HTTPRoute
	for n, rule := range r.Spec.Rules {
		for _, m := range splitMatches(rule.Matches) {
			hr := &networking.HTTPRoute{Name: routeName(r.Namespace, r.Name, rule.Name, n)}
			if m != nil {
				hr.Match = []*networking.HTTPMatchRequest{{
					Uri: uriMatch(m.Path), Headers: headersMatch(m.Headers), QueryParams: queryMatch(m.QueryParams), Method: methodMatch(m.Method),
				}}
			}
			for _, f := range rule.Filters {
				switch f.Type {
				case gatewayv1.HTTPRouteFilterRequestHeaderModifier:
					if hr.Headers == nil {
						hr.Headers = &networking.Headers{}
					}
					hr.Headers.Request = headersFilter(f.RequestHeaderModifier)
				case gatewayv1.HTTPRouteFilterResponseHeaderModifier:
					if hr.Headers == nil {
						hr.Headers = &networking.Headers{}
					}
					hr.Headers.Response = headersFilter(f.ResponseHeaderModifier)
				case gatewayv1.HTTPRouteFilterRequestMirror:
					hr.Mirrors = append(hr.Mirrors, mirrorFilter(f.RequestMirror, r.Namespace))
				case gatewayv1.HTTPRouteFilterURLRewrite:
					hr.Rewrite = rewriteFilter(f.URLRewrite)
				}
			}
			if t := rule.Timeouts; t != nil {
				// convertHTTPRoute: request is the route's timeout, and
				// backendRequest, without a retry, replaces it (0 is none).
				if d := gatewayDuration(t.Request); d != 0 {
					hr.Timeout = durationpb.New(d)
				}
				if d := gatewayDuration(t.BackendRequest); d != 0 {
					hr.Timeout = durationpb.New(d)
				}
			}
			var refs []backend
			for _, b := range rule.BackendRefs {
				refs = append(refs, backend{ref: b.BackendObjectReference, weight: b.Weight, headers: backendHeaders(b.Filters)})
			}
			hr.Route = destinations(refs, r.Namespace)
			out = append(out, hr)
		}
	}
	return out
}

// grpcRouteRules is convertGRPCRoute for every rule and match of r.
func grpcRouteRules(r *gatewayv1.GRPCRoute) []*networking.HTTPRoute {
	var out []*networking.HTTPRoute
	for n, rule := range r.Spec.Rules {
		for _, m := range splitMatches(rule.Matches) {
			hr := &networking.HTTPRoute{Name: routeName(r.Namespace, r.Name, rule.Name, n)}
			if m != nil {
				var hs []gatewayv1.HTTPHeaderMatch
				for _, h := range m.Headers {
					hs = append(hs, gatewayv1.HTTPHeaderMatch{Name: gatewayv1.HTTPHeaderName(h.Name), Value: h.Value, Type: (*gatewayv1.HeaderMatchType)(h.Type)})
				}
				hr.Match = []*networking.HTTPMatchRequest{{Uri: grpcMethodMatch(m.Method), Headers: headersMatch(hs)}}
			}
			for _, f := range rule.Filters {
				switch f.Type {
				case gatewayv1.GRPCRouteFilterRequestHeaderModifier:
					if hr.Headers == nil {
						hr.Headers = &networking.Headers{}
					}
					hr.Headers.Request = headersFilter(f.RequestHeaderModifier)
				case gatewayv1.GRPCRouteFilterResponseHeaderModifier:
					if hr.Headers == nil {
						hr.Headers = &networking.Headers{}
					}
					hr.Headers.Response = headersFilter(f.ResponseHeaderModifier)
				case gatewayv1.GRPCRouteFilterRequestMirror:
					hr.Mirrors = append(hr.Mirrors, mirrorFilter(f.RequestMirror, r.Namespace))
				}
			}
			var refs []backend
			for _, b := range rule.BackendRefs {
				var hf []gatewayv1.HTTPRouteFilter
				for _, f := range b.Filters {
					hf = append(hf, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterType(f.Type), RequestHeaderModifier: f.RequestHeaderModifier, ResponseHeaderModifier: f.ResponseHeaderModifier})
				}
				refs = append(refs, backend{ref: b.BackendObjectReference, weight: b.Weight, headers: backendHeaders(hf)})
			}
			hr.Route = destinations(refs, r.Namespace)
			out = append(out, hr)
		}
	}
	return out
}

type backend struct {
	ref     gatewayv1.BackendObjectReference
	weight  *int32
	headers *networking.Headers
}

// destinations is buildHTTPDestination/buildGRPCDestination: backends of
// weight 0 dropped (weight defaults to 1), a single one left with weight 0
// (no split), each a Service FQDN on its port (buildDestination).
func destinations(refs []backend, ns string) []*networking.HTTPRouteDestination {
	var out []*networking.HTTPRouteDestination
	for _, b := range refs {
		w := int32(1)
		if b.weight != nil {
			w = *b.weight
		}
		if w == 0 {
			continue
		}
		out = append(out, &networking.HTTPRouteDestination{Destination: destination(b.ref, ns), Weight: w, Headers: b.headers})
	}
	if len(out) == 1 {
		out[0].Weight = 0
	}
	return out
}

// destination is buildDestination for a Service.
func destination(ref gatewayv1.BackendObjectReference, ns string) *networking.Destination {
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	d := &networking.Destination{Host: string(ref.Name) + "." + ns + ".svc." + istionames.ClusterDomain}
	if ref.Port != nil {
		d.Port = &networking.PortSelector{Number: uint32(*ref.Port)}
	}
	return d
}

// backendHeaders is buildHTTPDestination's per-backend header modifiers.
func backendHeaders(fs []gatewayv1.HTTPRouteFilter) *networking.Headers {
	var h *networking.Headers
	for _, f := range fs {
		switch f.Type {
		case gatewayv1.HTTPRouteFilterRequestHeaderModifier:
			if h == nil {
				h = &networking.Headers{}
			}
			h.Request = headersFilter(f.RequestHeaderModifier)
		case gatewayv1.HTTPRouteFilterResponseHeaderModifier:
			if h == nil {
				h = &networking.Headers{}
			}
			h.Response = headersFilter(f.ResponseHeaderModifier)
		}
	}
	return h
}

// headersFilter is createHeadersFilter: set and add as maps of lower-cased
// names (the first of a name wins, headerListToMap), remove as given.
func headersFilter(f *gatewayv1.HTTPHeaderFilter) *networking.Headers_HeaderOperations {
	if f == nil {
		return nil
	}
	toMap := func(hs []gatewayv1.HTTPHeader) map[string]string {
		if len(hs) == 0 {
			return nil
		}
		m := map[string]string{}
		for _, h := range hs {
			k := strings.ToLower(string(h.Name))
			if _, dup := m[k]; !dup {
				m[k] = h.Value
			}
		}
		return m
	}
	return &networking.Headers_HeaderOperations{Set: toMap(f.Set), Add: toMap(f.Add), Remove: f.Remove}
}

// mirrorFilter is createMirrorFilter: the backend, and its share from
// fraction (numerator × 100 / denominator, default 100) or percent; none
// set mirrors everything.
func mirrorFilter(f *gatewayv1.HTTPRequestMirrorFilter, ns string) *networking.HTTPMirrorPolicy {
	m := &networking.HTTPMirrorPolicy{Destination: destination(f.BackendRef, ns)}
	switch {
	case f.Fraction != nil:
		den := int32(100)
		if f.Fraction.Denominator != nil {
			den = *f.Fraction.Denominator
		}
		m.Percentage = &networking.Percent{Value: 100 * float64(f.Fraction.Numerator) / float64(den)}
	case f.Percent != nil:
		m.Percentage = &networking.Percent{Value: float64(*f.Percent)}
	}
	return m
}

// rewriteFilter is createRewriteFilter: a replaced prefix without its
// trailing "/" ("/" when that leaves nothing), a full path as a regex
// rewrite of "/.*", a hostname as the authority.
func rewriteFilter(f *gatewayv1.HTTPURLRewriteFilter) *networking.HTTPRewrite {
	if f == nil {
		return nil
	}
	rw := &networking.HTTPRewrite{}
	if p := f.Path; p != nil {
		switch p.Type {
		case gatewayv1.PrefixMatchHTTPPathModifier:
			if p.ReplacePrefixMatch != nil {
				rw.Uri = strings.TrimSuffix(*p.ReplacePrefixMatch, "/")
				if rw.Uri == "" {
					rw.Uri = "/"
				}
			}
		case gatewayv1.FullPathHTTPPathModifier:
			if p.ReplaceFullPath != nil {
				rw.UriRegexRewrite = &networking.RegexRewrite{Match: "/.*", Rewrite: *p.ReplaceFullPath}
			}
		}
	}
	if f.Hostname != nil {
		rw.Authority = string(*f.Hostname)
	}
	if rw.Uri == "" && rw.UriRegexRewrite == nil && rw.Authority == "" {
		return nil
	}
	return rw
}

// uriMatch is createURIMatch: PathPrefix (the default) without a trailing
// "/" unless it is "/", Exact, RegularExpression.
func uriMatch(p *gatewayv1.HTTPPathMatch) *networking.StringMatch {
	tp, val := gatewayv1.PathMatchPathPrefix, "/"
	if p != nil && p.Type != nil {
		tp = *p.Type
	}
	if p != nil && p.Value != nil {
		val = *p.Value
	}
	switch tp {
	case gatewayv1.PathMatchExact:
		return &networking.StringMatch{MatchType: &networking.StringMatch_Exact{Exact: val}}
	case gatewayv1.PathMatchRegularExpression:
		return &networking.StringMatch{MatchType: &networking.StringMatch_Regex{Regex: val}}
	}
	if val != "/" {
		val = strings.TrimSuffix(val, "/")
	}
	return &networking.StringMatch{MatchType: &networking.StringMatch_Prefix{Prefix: val}}
}

// headersMatch is createHeadersMatch: Exact (the default) or
// RegularExpression, by name as written.
func headersMatch(hs []gatewayv1.HTTPHeaderMatch) map[string]*networking.StringMatch {
	if len(hs) == 0 {
		return nil
	}
	out := map[string]*networking.StringMatch{}
	for _, h := range hs {
		if h.Type != nil && *h.Type == gatewayv1.HeaderMatchRegularExpression {
			out[string(h.Name)] = &networking.StringMatch{MatchType: &networking.StringMatch_Regex{Regex: h.Value}}
		} else {
			out[string(h.Name)] = &networking.StringMatch{MatchType: &networking.StringMatch_Exact{Exact: h.Value}}
		}
	}
	return out
}

// queryMatch is createQueryParamsMatch.
func queryMatch(qs []gatewayv1.HTTPQueryParamMatch) map[string]*networking.StringMatch {
	if len(qs) == 0 {
		return nil
	}
	out := map[string]*networking.StringMatch{}
	for _, q := range qs {
		if q.Type != nil && *q.Type == gatewayv1.QueryParamMatchRegularExpression {
			out[string(q.Name)] = &networking.StringMatch{MatchType: &networking.StringMatch_Regex{Regex: q.Value}}
		} else {
			out[string(q.Name)] = &networking.StringMatch{MatchType: &networking.StringMatch_Exact{Exact: q.Value}}
		}
	}
	return out
}

// methodMatch is createMethodMatch: an exact match.
func methodMatch(m *gatewayv1.HTTPMethod) *networking.StringMatch {
	if m == nil {
		return nil
	}
	return &networking.StringMatch{MatchType: &networking.StringMatch_Exact{Exact: string(*m)}}
}

// grpcMethodMatch is createGRPCURIMatch: a gRPC path /<service>/<method>
// as string matches of the path.
func grpcMethodMatch(m *gatewayv1.GRPCMethodMatch) *networking.StringMatch {
	if m == nil || (m.Service == nil && m.Method == nil) {
		return nil
	}
	regex := m.Type != nil && *m.Type == gatewayv1.GRPCMethodMatchRegularExpression
	switch {
	case m.Method == nil && !regex:
		return &networking.StringMatch{MatchType: &networking.StringMatch_Prefix{Prefix: "/" + *m.Service + "/"}}
	case m.Method == nil:
		return &networking.StringMatch{MatchType: &networking.StringMatch_Regex{Regex: "/" + *m.Service + "/.+"}}
	case m.Service == nil:
		return &networking.StringMatch{MatchType: &networking.StringMatch_Regex{Regex: "/[^/]+/" + *m.Method}}
	case !regex:
		return &networking.StringMatch{MatchType: &networking.StringMatch_Exact{Exact: "/" + *m.Service + "/" + *m.Method}}
	}
	return &networking.StringMatch{MatchType: &networking.StringMatch_Regex{Regex: "/" + *m.Service + "/" + *m.Method}}
}

// gatewayDuration reads a Gateway API duration (the loader checked it).
func gatewayDuration(d *gatewayv1.Duration) time.Duration {
	if d == nil {
		return 0
	}
	out, _ := time.ParseDuration(string(*d))
	return out
}

// SortHTTPRoutes is conversion.go sortHTTPRoutes: the Gateway API's match
// precedence. Routes without a match go last; then by path match kind
// (Exact, prefix, regex), the longer path first, a method match first,
// more header matches first, more query matches first. Stable.
func SortHTTPRoutes(routes []*networking.HTTPRoute) {
	sort.SliceStable(routes, func(i, j int) bool {
		if len(routes[i].Match) == 0 {
			return false
		} else if len(routes[j].Match) == 0 {
			return true
		}
		m1, m2 := routes[i].Match[0], routes[j].Match[0]
		r1, r2 := uriRank(m1), uriRank(m2)
		len1, len2 := uriLength(m1), uriLength(m2)
		switch {
		case r1 != r2:
			return r1 > r2
		case len1 != len2:
			return len1 > len2
		case (m1.Method == nil) != (m2.Method == nil):
			return m1.Method != nil
		case len(m1.Headers) != len(m2.Headers):
			return len(m1.Headers) > len(m2.Headers)
		default:
			return len(m1.QueryParams) > len(m2.QueryParams)
		}
	})
}

// uriRank is getURIRank: Exact 3, Prefix 2, Regex 1, none -1.
func uriRank(m *networking.HTTPMatchRequest) int {
	switch m.GetUri().GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		return 3
	case *networking.StringMatch_Prefix:
		return 2
	case *networking.StringMatch_Regex:
		return 1
	}
	return -1
}

// uriLength is getURILength.
func uriLength(m *networking.HTTPMatchRequest) int {
	switch u := m.GetUri().GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		return len(u.Exact)
	case *networking.StringMatch_Prefix:
		return len(u.Prefix)
	case *networking.StringMatch_Regex:
		return len(u.Regex)
	}
	return 0
}

// gatewayRoutes applies what route.go does differently for a VirtualService
// of gateway semantics to routes translateHTTPRoute built:
//   - a prefix other than "/" matches whole segments: path_separated_prefix,
//     without a trailing "/" (TranslateRouteMatch);
//   - a backend that does not exist answers 500, as the Gateway API asks
//     (applyHTTPRouteDestination: ClusterNotFoundResponseCode);
//   - a rewrite of the prefix to "/" removes the prefix, keeping a "/"
//     (applyHTTPRouteDestination: regex ^<prefix>(/?)(.*) to /\2).
func gatewayRoutes(routes []*route.Route, hr *networking.HTTPRoute) []*route.Route {
	for _, r := range routes {
		if p, ok := r.GetMatch().GetPathSpecifier().(*route.RouteMatch_Prefix); ok && p.Prefix != "/" {
			r.Match.PathSpecifier = &route.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: strings.TrimSuffix(p.Prefix, "/")}
		}
		a := r.GetRoute()
		if a == nil {
			continue
		}
		a.ClusterNotFoundResponseCode = route.RouteAction_INTERNAL_SERVER_ERROR
		if rw := hr.GetRewrite(); rw != nil && rw.GetUriRegexRewrite() == nil && rw.GetUri() == "/" {
			a.PrefixRewrite = ""
			a.RegexRewrite = &matcher.RegexMatchAndSubstitute{
				Pattern:      &matcher.RegexMatcher{Regex: fmt.Sprintf(`^%s(/?)(.*)`, regexp.QuoteMeta(r.GetMatch().GetPathSeparatedPrefix()))},
				Substitution: `/\2`,
			}
		}
	}
	return routes
}
