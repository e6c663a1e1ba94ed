package derive

import (
	"fmt"
	"strings"

	networking "istio.io/api/networking/v1alpha3"

	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// httpRoute derives the checks of a Gateway API HTTPRoute for mesh traffic
// (a Service parent) from the VirtualService routes istiod makes of it
// (xdsgen.HTTPRouteRules, after istiod's conversion.go convertHTTPRoute:
// one route per match, backendRefs as weighted destinations,
// timeouts.request as the route's timeout), in istiod's order
// (xdsgen.SortHTTPRoutes). Each check cites the rule it came from.
func (d *deriver) httpRoute(o *spec.IstioObject) {
	res := o.Kind + " " + o.Namespace + "/" + o.Name
	parents, _ := gatewayRoute(o)
	svc := d.firstService(parents)
	if svc == nil {
		d.notChecked(res, Source{o.File, o.LineOf("spec.parentRefs")}, "its rules",
			"no parentRef is a Service of the namespace "+d.plan.Topology.Namespace)
		return
	}
	if first := d.gatewayRouteFor(svc.Name); first != o {
		// istiod merges a Service's routes into one VirtualService
		// (route_collections.go mergeHTTPRoutes).
		d.notChecked(res, Source{o.File, o.LineOf("spec.parentRefs")}, "its rules",
			fmt.Sprintf("%s %s also routes %s, and deriving checks from merged routes is not implemented yet", first.Kind, first.Name, svc.Name))
		return
	}
	if why := d.refused(svc); why != "" {
		d.notChecked(res, Source{o.File, o.LineOf("spec.parentRefs")}, "its rules", why)
		return
	}
	hr := *o.HTTPRoute
	hr.Namespace = o.Namespace // the backends' hosts are in the route's namespace
	routes := xdsgen.HTTPRouteRules(&hr)
	// Where each converted route came from: HTTPRouteRules makes them in
	// rule and match order.
	type origin struct{ rule, match int }
	from := map[*networking.HTTPRoute]origin{}
	k := 0
	for n, rule := range hr.Spec.Rules {
		for m := range max(len(rule.Matches), 1) {
			if len(rule.Matches) == 0 {
				m = -1
			}
			from[routes[k]] = origin{n, m}
			k++
		}
	}
	xdsgen.SortHTTPRoutes(routes)
	for _, r := range routes {
		if matchesAll(r.Match) {
			r.Match = nil
		}
	}
	text := func(k int) string {
		at := from[routes[k]]
		rule := hr.Spec.Rules[at.rule]
		t := fmt.Sprintf("rules[%d]", at.rule)
		if rule.Name != nil {
			t = fmt.Sprintf("rule %q", *rule.Name)
		}
		if len(rule.Matches) > 1 {
			t += fmt.Sprintf(".matches[%d]", at.match)
		}
		return t
	}
	d.httpRoutes(routes, func(i int) *route {
		at := from[routes[i]]
		rule := hr.Spec.Rules[at.rule]
		r := &route{o: o, service: svc, i: i, hr: routes[i], routes: len(routes), part: fmt.Sprintf("rule%d", at.rule), textOf: text}
		if rule.Name != nil {
			r.part = string(*rule.Name)
		}
		if len(rule.Matches) > 1 {
			r.part += fmt.Sprintf("-match%d", at.match)
		}
		r.field = func(f string) string {
			p := fmt.Sprintf("spec.rules[%d]", at.rule)
			switch f {
			case ".route":
				return p + ".backendRefs"
			case ".match":
				if at.match >= 0 {
					return fmt.Sprintf("%s.matches[%d]", p, at.match)
				}
			case ".timeout":
				// backendRequest, when set, is the route's timeout
				// (convertHTTPRoute).
				if o.Has(p + ".timeouts.backendRequest") {
					return p + ".timeouts.backendRequest"
				}
				return p + ".timeouts.request"
			}
			if strings.HasPrefix(f, ".mirror") {
				// xdsgen.HTTPRouteRules makes a RequestMirror filter one of mirrors.
				return p + ".filters"
			}
			return p
		}
		return r
	})
}

// matchesAll reports whether a converted match takes every request: a
// rule written without matches gets the default match, a PathPrefix of
// "/" (the Gateway API's HTTPRouteMatch.Path default, httproute_types.go),
// which the client's requests always satisfy.
func matchesAll(ms []*networking.HTTPMatchRequest) bool {
	if len(ms) != 1 {
		return false
	}
	m := ms[0]
	return m.GetUri().GetPrefix() == "/" && len(m.GetHeaders()) == 0 && len(m.GetQueryParams()) == 0 && m.GetMethod() == nil
}
