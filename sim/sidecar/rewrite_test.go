package sidecar

import (
	"net/http/httptest"
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// prefix_rewrite replaces what the route matched, on the path as it came:
// the prefix (case-insensitively where the match is), the whole path of a
// regex or exact match, and percent-encoding is kept.
func TestPrefixRewriteAsEnvoy(t *testing.T) {
	rt := func(m *route.RouteMatch, rewrite string) *compiledRoute {
		cr, err := compileRoute(&route.Route{Match: m, Action: &route.Route_Route{Route: &route.RouteAction{
			ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "c"}, PrefixRewrite: rewrite,
		}}})
		require.NoError(t, err)
		return cr
	}
	prefix := func(p string) *route.RouteMatch {
		return &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: p}}
	}
	for _, c := range []struct {
		name      string
		cr        *compiledRoute
		req, want string
	}{
		{"prefix", rt(prefix("/pay"), "/v2"), "/pay/7?x=1", "/v2/7?x=1"},
		{"percent-encoding kept", rt(prefix("/pay"), "/v2"), "/pay/a%2Fb", "/v2/a%2Fb"},
		{"ignoreUriCase", rt(&route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/PAY"}, CaseSensitive: wrapperspb.Bool(false)}, "/v2"), "/pay/7", "/v2/7"},
		{"regex: the whole path", rt(&route.RouteMatch{PathSpecifier: &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: "/pay/[0-9]+"}}}, "/v2/pay"), "/pay/7?x=1", "/v2/pay?x=1"},
		{"exact: the whole path", rt(&route.RouteMatch{PathSpecifier: &route.RouteMatch_Path{Path: "/pay"}}, "/v2"), "/pay", "/v2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", c.req, nil)
			require.True(t, c.cr.match.matches(r), "the route matches %s", c.req)
			ur := (&Sidecar{}).prepare(r, &exchange{reporter: "source"}, c.cr)
			assert.Equal(t, c.want, ur.uri)
		})
	}
}
