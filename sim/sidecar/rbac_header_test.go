package sidecar

import (
	"net/http"
	"net/http/httptest"
	"testing"

	rbacconfig "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/anypb"
)

// denyHeader is an RBAC DENY filter whose one policy matches the header h.
func denyHeader(t *testing.T, h *route.HeaderMatcher) ([]*rbacConf, error) {
	t.Helper()
	cfg := &rbacv3.RBAC{Rules: &rbacconfig.RBAC{Action: rbacconfig.RBAC_DENY, Policies: map[string]*rbacconfig.Policy{
		"deny": {
			Permissions: []*rbacconfig.Permission{{Rule: &rbacconfig.Permission_Header{Header: h}}},
			Principals:  []*rbacconfig.Principal{{Identifier: &rbacconfig.Principal_Any{Any: true}}},
		},
	}}}
	typed, err := anypb.New(cfg)
	require.NoError(t, err)
	return compileRBACFilters([]*hcm.HttpFilter{{Name: rbacFilterName, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: typed}}})
}

// RBAC header matchers follow Envoy's HeaderUtility::matchHeaders, as route
// header matches do: a string match on an absent header does not match
// (inverted or not), present_match and invert_match combine, and a matcher
// kind the sidecar cannot evaluate is refused (NACK), never read as absent.
func TestRBACHeaderMatchersAsEnvoy(t *testing.T) {
	exact := func(v string) *route.HeaderMatcher_StringMatch {
		return &route.HeaderMatcher_StringMatch{StringMatch: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: v}}}
	}
	for _, c := range []struct {
		name           string
		h              *route.HeaderMatcher
		denied, absent bool // with x-team: blue, and without the header
	}{
		{"string match", &route.HeaderMatcher{Name: "x-team", HeaderMatchSpecifier: exact("blue")}, true, false},
		{"inverted string match", &route.HeaderMatcher{Name: "x-team", HeaderMatchSpecifier: exact("red"), InvertMatch: true}, true, false},
		{"present", &route.HeaderMatcher{Name: "x-team", HeaderMatchSpecifier: &route.HeaderMatcher_PresentMatch{PresentMatch: true}}, true, false},
		{"inverted present", &route.HeaderMatcher{Name: "x-team", HeaderMatchSpecifier: &route.HeaderMatcher_PresentMatch{PresentMatch: true}, InvertMatch: true}, false, true},
		{"missing read as empty", &route.HeaderMatcher{Name: "x-team", HeaderMatchSpecifier: exact(""), TreatMissingHeaderAsEmpty: true}, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			confs, err := denyHeader(t, c.h)
			require.NoError(t, err)
			with := httptest.NewRequest(http.MethodGet, "/pay", nil)
			with.Header.Set("x-team", "blue")
			without := httptest.NewRequest(http.MethodGet, "/pay", nil)
			assert.Equal(t, !c.denied, allowed(confs, rbacInput{r: with}), "with the header")
			assert.Equal(t, !c.absent, allowed(confs, rbacInput{r: without}), "without the header")
		})
	}
	_, err := denyHeader(t, &route.HeaderMatcher{Name: "x-n", HeaderMatchSpecifier: &route.HeaderMatcher_RangeMatch{}})
	assert.ErrorContains(t, err, "unsupported header matcher", "a range match is refused, not read as absent")
}

// path_separated_prefix matches the prefix itself or the prefix followed
// by "/", not any path that starts with it (route_components.proto).
func TestPathSeparatedPrefixStopsAtASegment(t *testing.T) {
	cr, err := compileRoute(&route.Route{
		Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/api"}},
		Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "c"}}},
	})
	require.NoError(t, err)
	for path, want := range map[string]bool{"/api": true, "/api/": true, "/api/v1": true, "/apix": false, "/ap": false, "/api?x=1": true} {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		assert.Equal(t, want, cr.match.matches(r), path)
	}
}
