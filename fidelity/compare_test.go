package fidelity

import (
	"strings"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	xdstype "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestParseKnownDifferences(t *testing.T) {
	doc := "# Fidelity\n\n## Known differences\n\nSome text.\n\n" +
		"| Field path | Reason |\n" +
		"|---|---|\n" +
		"| `routes[*].virtual_hosts[*].domains[10.96.*]` | no VIPs |\n" +
		"| `clusters[outbound\\|80\\|\\|a]*` | a pipe, escaped |\n" +
		"\n## Next\n| `not.a.row` | ignored |\n"
	rows, err := ParseKnownDifferences("doc.md", doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("got %d rows, want 2", len(rows))
	}
	if rows[0].Line != 9 || rows[0].Reason != "no VIPs" {
		t.Errorf("row 0 = line %d reason %q", rows[0].Line, rows[0].Reason)
	}
	for path, want := range map[string]bool{
		"routes[80].virtual_hosts[payment.default.svc.cluster.local:80].domains[10.96.0.2]": true,
		"routes[80].virtual_hosts[payment.default.svc.cluster.local:80].domains[payment]":   false,
		"xroutes[80].virtual_hosts[a:80].domains[10.96.0.2]":                                false,
	} {
		if got := rows[0].Matches(path); got != want {
			t.Errorf("Matches(%s) = %v, want %v", path, got, want)
		}
	}
	if !rows[1].Matches("clusters[outbound|80||a].lb_policy") {
		t.Errorf("escaped pipes: %q does not match", rows[1].Pattern)
	}

	for _, bad := range []string{
		"## Known differences\n| Field path | Reason |\n|---|---|\n| `x` | |\n",
		"## Known differences\n| Field path | Reason |\n|---|---|\n| x | reason |\n",
		"## Known differences\nno table\n",
		"## Other\n| `x` | y |\n",
	} {
		if _, err := ParseKnownDifferences("doc.md", bad); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
}

// TestFlattenNormalizes checks the normalizations Compare relies on: order
// of header and query matchers, retry_on and status codes, fractional
// percent denominators and Envoy's defaults for unset fields.
func TestFlattenNormalizes(t *testing.T) {
	scope := Scope{Hosts: map[string]map[int]bool{"a.ns.svc.cluster.local": {80: true}}}
	side := func(r *route.Route) Side {
		return Side{Routes: []*route.RouteConfiguration{{
			Name: "80",
			VirtualHosts: []*route.VirtualHost{
				{Name: "a.ns.svc.cluster.local:80", Domains: []string{"a"}, Routes: []*route.Route{r}},
				{Name: "allow_any", Domains: []string{"*"}},
			},
		}}}
	}
	hdr := func(name string) *route.HeaderMatcher {
		return &route.HeaderMatcher{Name: name, HeaderMatchSpecifier: &route.HeaderMatcher_PresentMatch{PresentMatch: true}}
	}
	qp := func(name string) *route.QueryParameterMatcher {
		return &route.QueryParameterMatcher{Name: name, QueryParameterMatchSpecifier: &route.QueryParameterMatcher_StringMatch{
			StringMatch: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: name}},
		}}
	}
	a := &route.Route{
		Match: &route.RouteMatch{
			PathSpecifier:   &route.RouteMatch_Prefix{Prefix: "/"},
			Headers:         []*route.HeaderMatcher{hdr("x-b"), hdr("x-a")},
			QueryParameters: []*route.QueryParameterMatcher{qp("q"), qp("p")},
		},
		Action: &route.Route_Route{Route: &route.RouteAction{
			ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "c"},
			RetryPolicy:      &route.RetryPolicy{RetryOn: "5xx,reset", RetriableStatusCodes: []uint32{504, 503}},
			RequestMirrorPolicies: []*route.RouteAction_RequestMirrorPolicy{{Cluster: "m", RuntimeFraction: &core.RuntimeFractionalPercent{
				DefaultValue: &xdstype.FractionalPercent{Numerator: 20, Denominator: xdstype.FractionalPercent_HUNDRED},
			}}},
		}},
	}
	b := &route.Route{
		Match: &route.RouteMatch{
			PathSpecifier:   &route.RouteMatch_Prefix{Prefix: "/"},
			Headers:         []*route.HeaderMatcher{hdr("x-a"), hdr("x-b")},
			QueryParameters: []*route.QueryParameterMatcher{qp("p"), qp("q")},
			CaseSensitive:   wrapperspb.Bool(true),
		},
		Action: &route.Route_Route{Route: &route.RouteAction{
			ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "c"},
			RetryPolicy:      &route.RetryPolicy{RetryOn: "reset, 5xx", RetriableStatusCodes: []uint32{503, 504}, NumRetries: wrapperspb.UInt32(1)},
			RequestMirrorPolicies: []*route.RouteAction_RequestMirrorPolicy{{Cluster: "m", RuntimeFraction: &core.RuntimeFractionalPercent{
				DefaultValue: &xdstype.FractionalPercent{Numerator: 200000, Denominator: xdstype.FractionalPercent_MILLION},
			}}},
		}},
	}
	// Equal up to order, notation and Envoy's defaults (num_retries 1,
	// case_sensitive true when unset).
	for _, d := range Compare(side(a), side(b), scope) {
		t.Errorf("unexpected difference %s", d)
	}

	// A real difference is found, with its path.
	b.GetRoute().Timeout = nil
	a.GetRoute().Timeout = nil
	b.GetRoute().ClusterSpecifier = &route.RouteAction_Cluster{Cluster: "other"}
	found := false
	for _, d := range Compare(side(a), side(b), scope) {
		if d.Path == "routes[80].virtual_hosts[a.ns.svc.cluster.local:80].routes[0].route.cluster" && d.Istio == "c" && d.Ours == "other" {
			found = true
		}
		if strings.Contains(d.Path, "allow_any") {
			t.Errorf("allow_any is compared: %s", d)
		}
	}
	if !found {
		t.Error("the cluster difference was not found")
	}
}

// Route configurations of ports no registry service has (a live istiod's
// own 15010, say) are out of scope; those of the registry's ports are in.
func TestFlattenLeavesOutOtherPortsRoutes(t *testing.T) {
	scope := Scope{Hosts: map[string]map[int]bool{"payment.default.svc.cluster.local": {80: true}}}
	flat := Flatten(Side{Routes: []*route.RouteConfiguration{{Name: "80"}, {Name: "15010"}}}, scope)
	if flat["routes[80]"] != "present" {
		t.Errorf("routes[80] left out: %v", flat)
	}
	if _, ok := flat["routes[15010]"]; ok {
		t.Errorf("routes[15010] compared, but no registry service has port 15010: %v", flat)
	}
}
