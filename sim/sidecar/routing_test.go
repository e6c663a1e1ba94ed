package sidecar

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// These tests compile real xDS protos with the sidecar's own compilers and
// check the Envoy semantics the sidecar claims for them.

func tstVHosts(t *testing.T, domains map[string][]string) *routeTable {
	t.Helper()
	rc := &route.RouteConfiguration{Name: "80"}
	for name, ds := range domains {
		rc.VirtualHosts = append(rc.VirtualHosts, &route.VirtualHost{Name: name, Domains: ds})
	}
	rt, err := compileRoutes(rc, "1")
	require.NoError(t, err)
	return rt
}

// Envoy's virtual host selection (route_components.proto VirtualHost.domains):
// "1. Exact domain names 2. Suffix domain wildcards 3. Prefix domain wildcards
// 4. Special wildcard * ... The wildcard will not match the empty string ...
// The longest wildcards match first." Host matching is case-insensitive
// (Envoy lowercases the host before the lookup, config_impl.cc findVirtualHost).
func TestVirtualHostSelection(t *testing.T) {
	rt := tstVHosts(t, map[string][]string{
		"exact":         {"foo.example.com", "payment"},
		"suffix":        {"*.example.com"},
		"longer-suffix": {"*.bar.example.com"},
		"dash-suffix":   {"*-bar.foo.com"},
		"prefix":        {"foo.*"},
		"longer-prefix": {"foo.bar.*"},
		"any":           {"*"},
	})
	tests := []struct{ host, want string }{
		{"foo.example.com", "exact"},
		{"FOO.Example.COM", "exact"},
		{"payment", "exact"},
		{"x.example.com", "suffix"},
		{"x.bar.example.com", "longer-suffix"},
		{"foo.x.example.com", "suffix"}, // suffix wildcards before prefix wildcards
		{"foo.bar.example.com", "longer-suffix"},
		{"baz-bar.foo.com", "dash-suffix"},
		{"-bar.foo.com", "any"}, // the wildcard does not match the empty string
		{".example.com", "any"},
		{"foo.other.org", "prefix"},
		{"foo.bar.org", "longer-prefix"},
		{"foo.", "any"},
		{"payments", "any"},
		{"other.org", "any"},
	}
	for _, tc := range tests {
		vh := rt.virtualHost(tc.host)
		if assert.NotNil(t, vh, tc.host) {
			assert.Equal(t, tc.want, vh.name, tc.host)
		}
	}

	// Without "*", an unknown host finds no virtual host (Envoy answers 404 NR).
	rt = tstVHosts(t, map[string][]string{"exact": {"foo.example.com"}, "suffix": {"*.example.com"}})
	assert.Nil(t, rt.virtualHost("other.org"))
	assert.Equal(t, "suffix", rt.virtualHost("a.example.com").name)
}

// "A domain must be unique across all virtual hosts or the config will fail to load."
func TestVirtualHostDuplicateDomainRejected(t *testing.T) {
	_, err := compileRoutes(&route.RouteConfiguration{Name: "80", VirtualHosts: []*route.VirtualHost{
		{Name: "a", Domains: []string{"payment"}}, {Name: "b", Domains: []string{"Payment"}},
	}}, "1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "duplicate entry of domain payment")

	_, err = compileRoutes(&route.RouteConfiguration{Name: "80", VirtualHosts: []*route.VirtualHost{{Name: "a", Domains: []string{""}}}}, "1")
	require.Error(t, err, "empty domain")
}

func TestVirtualHostDuplicateWildcardRejected(t *testing.T) {
	for _, d := range []string{"*", "*.example.com", "foo.*"} {
		_, err := compileRoutes(&route.RouteConfiguration{Name: "80", VirtualHosts: []*route.VirtualHost{
			{Name: "a", Domains: []string{d}}, {Name: "b", Domains: []string{d}},
		}}, "1")
		assert.Error(t, err, d)
	}
}

func tstRoute(name string, m *route.RouteMatch) *route.Route {
	return &route.Route{Name: name, Match: m, Action: &route.Route_Route{Route: &route.RouteAction{
		ClusterSpecifier: &route.RouteAction_Cluster{Cluster: name},
	}}}
}

func tstPrefix(p string) *route.RouteMatch {
	return &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: p}}
}

func tstReq(method, target string, hdr ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

// Routes are tried in order and the first match wins (route_components.proto
// VirtualHost.routes: "The list of routes that will be matched, in order, for
// incoming requests. The first route that matches will be used.").
func TestRouteMatchOrder(t *testing.T) {
	rt, err := compileRoutes(&route.RouteConfiguration{Name: "80", VirtualHosts: []*route.VirtualHost{{
		Name: "payment", Domains: []string{"*"},
		Routes: []*route.Route{
			tstRoute("api-v2", &route.RouteMatch{
				PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/api"},
				Headers:       []*route.HeaderMatcher{{Name: "x-version", HeaderMatchSpecifier: &route.HeaderMatcher_StringMatch{StringMatch: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: "2"}}}}},
			}),
			tstRoute("api", tstPrefix("/api")),
			tstRoute("api-exact", &route.RouteMatch{PathSpecifier: &route.RouteMatch_Path{Path: "/api/exact"}}),
			tstRoute("catch-all", tstPrefix("/")),
			tstRoute("never", tstPrefix("/x")),
		},
	}}}, "1")
	require.NoError(t, err)
	vh := rt.virtualHost("payment")
	require.NotNil(t, vh)
	for target, want := range map[string]string{
		"/api/exact": "api", // an earlier, broader route shadows a later, more specific one
		"/api":       "api",
		"/apix":      "api", // prefix is a string prefix, not a path segment
		"/x":         "catch-all",
		"/":          "catch-all",
	} {
		assert.Equal(t, want, vh.match(tstReq("GET", target)).name, target)
	}
	assert.Equal(t, "api-v2", vh.match(tstReq("GET", "/api/exact", "x-version", "2")).name)

	// No route matches: nil (Envoy's 404 NR).
	rt, err = compileRoutes(&route.RouteConfiguration{Name: "80", VirtualHosts: []*route.VirtualHost{{
		Name: "p", Domains: []string{"*"}, Routes: []*route.Route{tstRoute("pay", tstPrefix("/pay"))},
	}}}, "1")
	require.NoError(t, err)
	assert.Nil(t, rt.virtualHost("p").match(tstReq("GET", "/other")))
}

func tstStr(m *matcher.StringMatcher) *route.HeaderMatcher_StringMatch {
	return &route.HeaderMatcher_StringMatch{StringMatch: m}
}

func exactM(s string) *matcher.StringMatcher {
	return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: s}}
}

func regexM(s string) *matcher.StringMatcher {
	return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: s}}}
}

func tstMatches(t *testing.T, m *route.RouteMatch, r *http.Request) bool {
	t.Helper()
	cr, err := compileRoute(tstRoute("r", m))
	require.NoError(t, err)
	return cr.match.matches(r)
}

// Header, query parameter, method and path matching (route_components.proto
// RouteMatch, HeaderMatcher, QueryParameterMatcher; type/matcher/v3/string.proto).
func TestRouteMatchConditions(t *testing.T) {
	h := func(hm *route.HeaderMatcher) *route.RouteMatch {
		return &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}, Headers: []*route.HeaderMatcher{hm}}
	}
	q := func(qm *route.QueryParameterMatcher) *route.RouteMatch {
		return &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}, QueryParameters: []*route.QueryParameterMatcher{qm}}
	}
	tests := []struct {
		name  string
		match *route.RouteMatch
		req   *http.Request
		want  bool
	}{
		// present_match: true matches when the header is there; false when it is absent.
		{"present, there", h(&route.HeaderMatcher{Name: "x-a", HeaderMatchSpecifier: &route.HeaderMatcher_PresentMatch{PresentMatch: true}}), tstReq("GET", "/", "x-a", ""), true},
		{"present, absent", h(&route.HeaderMatcher{Name: "x-a", HeaderMatchSpecifier: &route.HeaderMatcher_PresentMatch{PresentMatch: true}}), tstReq("GET", "/"), false},
		{"present false, absent", h(&route.HeaderMatcher{Name: "x-a", HeaderMatchSpecifier: &route.HeaderMatcher_PresentMatch{PresentMatch: false}}), tstReq("GET", "/"), true},
		{"present false, there", h(&route.HeaderMatcher{Name: "x-a", HeaderMatchSpecifier: &route.HeaderMatcher_PresentMatch{PresentMatch: false}}), tstReq("GET", "/", "x-a", "1"), false},
		{"no specifier is present", h(&route.HeaderMatcher{Name: "x-a"}), tstReq("GET", "/", "x-a", "1"), true},
		// invert_match inverts the result; an inverted present match matches an absent header.
		{"present inverted, absent", h(&route.HeaderMatcher{Name: "x-a", InvertMatch: true, HeaderMatchSpecifier: &route.HeaderMatcher_PresentMatch{PresentMatch: true}}), tstReq("GET", "/"), true},
		{"present inverted, there", h(&route.HeaderMatcher{Name: "x-a", InvertMatch: true, HeaderMatchSpecifier: &route.HeaderMatcher_PresentMatch{PresentMatch: true}}), tstReq("GET", "/", "x-a", "1"), false},
		{"exact", h(&route.HeaderMatcher{Name: "x-user", HeaderMatchSpecifier: tstStr(exactM("jason"))}), tstReq("GET", "/", "X-User", "jason"), true},
		{"exact is case sensitive", h(&route.HeaderMatcher{Name: "x-user", HeaderMatchSpecifier: tstStr(exactM("jason"))}), tstReq("GET", "/", "x-user", "Jason"), false},
		{"exact ignore_case", h(&route.HeaderMatcher{Name: "x-user", HeaderMatchSpecifier: tstStr(&matcher.StringMatcher{IgnoreCase: true, MatchPattern: &matcher.StringMatcher_Exact{Exact: "jason"}})}), tstReq("GET", "/", "x-user", "JASON"), true},
		{"exact, absent", h(&route.HeaderMatcher{Name: "x-user", HeaderMatchSpecifier: tstStr(exactM("jason"))}), tstReq("GET", "/"), false},
		{"exact inverted, other value", h(&route.HeaderMatcher{Name: "x-user", InvertMatch: true, HeaderMatchSpecifier: tstStr(exactM("jason"))}), tstReq("GET", "/", "x-user", "bob"), true},
		{"exact inverted, same value", h(&route.HeaderMatcher{Name: "x-user", InvertMatch: true, HeaderMatchSpecifier: tstStr(exactM("jason"))}), tstReq("GET", "/", "x-user", "jason"), false},
		{"prefix", h(&route.HeaderMatcher{Name: "x-a", HeaderMatchSpecifier: tstStr(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: "ab"}})}), tstReq("GET", "/", "x-a", "abc"), true},
		{"prefix, no", h(&route.HeaderMatcher{Name: "x-a", HeaderMatchSpecifier: tstStr(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: "ab"}})}), tstReq("GET", "/", "x-a", "cab"), false},
		{"suffix", h(&route.HeaderMatcher{Name: "x-a", HeaderMatchSpecifier: tstStr(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Suffix{Suffix: "bc"}})}), tstReq("GET", "/", "x-a", "abc"), true},
		{"contains", h(&route.HeaderMatcher{Name: "x-a", HeaderMatchSpecifier: tstStr(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Contains{Contains: "b"}})}), tstReq("GET", "/", "x-a", "abc"), true},
		// safe_regex must match the whole value (RE2 full match).
		{"regex full match", h(&route.HeaderMatcher{Name: "x-a", HeaderMatchSpecifier: tstStr(regexM("a.c"))}), tstReq("GET", "/", "x-a", "abc"), true},
		{"regex is anchored", h(&route.HeaderMatcher{Name: "x-a", HeaderMatchSpecifier: tstStr(regexM("a.c"))}), tstReq("GET", "/", "x-a", "abcd"), false},
		// Several values of a header are joined with "," before matching (header_utility.cc getAllOfHeaderAsString).
		{"values joined", h(&route.HeaderMatcher{Name: "x-a", HeaderMatchSpecifier: tstStr(exactM("1,2"))}), tstReq("GET", "/", "x-a", "1", "x-a", "2"), true},
		// :method and :authority are pseudo-headers.
		{":method", h(&route.HeaderMatcher{Name: ":method", HeaderMatchSpecifier: tstStr(exactM("POST"))}), tstReq("POST", "/"), true},
		{":method, other", h(&route.HeaderMatcher{Name: ":method", HeaderMatchSpecifier: tstStr(exactM("POST"))}), tstReq("GET", "/"), false},
		{":method inverted", h(&route.HeaderMatcher{Name: ":method", InvertMatch: true, HeaderMatchSpecifier: tstStr(exactM("POST"))}), tstReq("GET", "/"), true},
		{":authority", h(&route.HeaderMatcher{Name: ":authority", HeaderMatchSpecifier: tstStr(&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: "payment"}})}), tstReq("GET", "http://payment.default/"), true},
		// Query parameters.
		{"query present", q(&route.QueryParameterMatcher{Name: "debug", QueryParameterMatchSpecifier: &route.QueryParameterMatcher_PresentMatch{PresentMatch: true}}), tstReq("GET", "/?debug"), true},
		{"query present, absent", q(&route.QueryParameterMatcher{Name: "debug", QueryParameterMatchSpecifier: &route.QueryParameterMatcher_PresentMatch{PresentMatch: true}}), tstReq("GET", "/?other=1"), false},
		{"query exact", q(&route.QueryParameterMatcher{Name: "v", QueryParameterMatchSpecifier: &route.QueryParameterMatcher_StringMatch{StringMatch: exactM("2")}}), tstReq("GET", "/?v=2"), true},
		{"query exact, other", q(&route.QueryParameterMatcher{Name: "v", QueryParameterMatchSpecifier: &route.QueryParameterMatcher_StringMatch{StringMatch: exactM("2")}}), tstReq("GET", "/?v=3"), false},
		{"query exact, absent", q(&route.QueryParameterMatcher{Name: "v", QueryParameterMatchSpecifier: &route.QueryParameterMatcher_StringMatch{StringMatch: exactM("2")}}), tstReq("GET", "/"), false},
		{"query regex", q(&route.QueryParameterMatcher{Name: "v", QueryParameterMatchSpecifier: &route.QueryParameterMatcher_StringMatch{StringMatch: regexM("[0-9]+")}}), tstReq("GET", "/?v=42"), true},
		{"query regex anchored", q(&route.QueryParameterMatcher{Name: "v", QueryParameterMatchSpecifier: &route.QueryParameterMatcher_StringMatch{StringMatch: regexM("[0-9]+")}}), tstReq("GET", "/?v=42a"), false},
		// Paths: exact "path" ignores the query string; safe_regex matches the whole path without it.
		{"path exact with query", &route.RouteMatch{PathSpecifier: &route.RouteMatch_Path{Path: "/pay"}}, tstReq("GET", "/pay?x=1"), true},
		{"path exact, longer", &route.RouteMatch{PathSpecifier: &route.RouteMatch_Path{Path: "/pay"}}, tstReq("GET", "/pay/1"), false},
		{"path exact case insensitive", &route.RouteMatch{CaseSensitive: wrapperspb.Bool(false), PathSpecifier: &route.RouteMatch_Path{Path: "/pay"}}, tstReq("GET", "/PAY"), true},
		{"path exact case sensitive by default", &route.RouteMatch{PathSpecifier: &route.RouteMatch_Path{Path: "/pay"}}, tstReq("GET", "/PAY"), false},
		{"prefix case insensitive", &route.RouteMatch{CaseSensitive: wrapperspb.Bool(false), PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/Pay"}}, tstReq("GET", "/pay/1"), true},
		{"path regex", &route.RouteMatch{PathSpecifier: &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: "/pay/[0-9]+"}}}, tstReq("GET", "/pay/12?x=1"), true},
		{"path regex anchored", &route.RouteMatch{PathSpecifier: &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: "/pay/[0-9]+"}}}, tstReq("GET", "/pay/12/x"), false},
		// All conditions must hold.
		{"headers and query, one fails", &route.RouteMatch{
			PathSpecifier:   &route.RouteMatch_Prefix{Prefix: "/pay"},
			Headers:         []*route.HeaderMatcher{{Name: "x-a", HeaderMatchSpecifier: tstStr(exactM("1"))}},
			QueryParameters: []*route.QueryParameterMatcher{{Name: "v", QueryParameterMatchSpecifier: &route.QueryParameterMatcher_StringMatch{StringMatch: exactM("2")}}},
		}, tstReq("GET", "/pay?v=3", "x-a", "1"), false},
		{"headers and query, all hold", &route.RouteMatch{
			PathSpecifier:   &route.RouteMatch_Prefix{Prefix: "/pay"},
			Headers:         []*route.HeaderMatcher{{Name: "x-a", HeaderMatchSpecifier: tstStr(exactM("1"))}},
			QueryParameters: []*route.QueryParameterMatcher{{Name: "v", QueryParameterMatchSpecifier: &route.QueryParameterMatcher_StringMatch{StringMatch: exactM("2")}}},
		}, tstReq("GET", "/pay?v=2", "x-a", "1"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tstMatches(t, tc.match, tc.req))
		})
	}
}

// A header matcher other than present_match does not match a missing header,
// inverted or not, unless treat_missing_header_as_empty is set: then the
// value is "" (route_components.proto HeaderMatcher.treat_missing_header_as_empty:
// "The 'header2' header is not present and the header matcher rule for
// 'header2' will be ignored so it will not match"; header_utility.cc
// matchHeaders returns false for an absent header unless it is a present match).
func TestInvertedHeaderMatchOnMissingHeader(t *testing.T) {
	h := func(hm *route.HeaderMatcher) *route.RouteMatch {
		return &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}, Headers: []*route.HeaderMatcher{hm}}
	}
	assert.False(t, tstMatches(t, h(&route.HeaderMatcher{Name: "x-user", InvertMatch: true, HeaderMatchSpecifier: tstStr(exactM("jason"))}), tstReq("GET", "/")),
		"inverted exact, header absent, treat_missing_header_as_empty false: no match")
	assert.True(t, tstMatches(t, h(&route.HeaderMatcher{Name: "x-user", InvertMatch: true, TreatMissingHeaderAsEmpty: true, HeaderMatchSpecifier: tstStr(exactM("jason"))}), tstReq("GET", "/")),
		"inverted exact, header absent, treated as empty: \"\" != jason, inverted: match")
	assert.True(t, tstMatches(t, h(&route.HeaderMatcher{Name: "x-user", TreatMissingHeaderAsEmpty: true, HeaderMatchSpecifier: tstStr(exactM(""))}), tstReq("GET", "/")),
		"exact \"\" on an absent header treated as empty: match")
}

func TestInvalidRegexRefused(t *testing.T) {
	_, err := compileRoute(tstRoute("bad", &route.RouteMatch{PathSpecifier: &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: "("}}}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `invalid regex "("`)
	_, err = compileRoute(tstRoute("bad", &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}, Headers: []*route.HeaderMatcher{{Name: "x", HeaderMatchSpecifier: tstStr(regexM("*"))}}}))
	require.Error(t, err, "\"*\" is not RE2")
}

// The NACK's error_detail is what an operator reads: it should carry the
// regexp parser's message, as Envoy's does ("missing )").
func TestInvalidRegexReasonNamesTheProblem(t *testing.T) {
	_, err := compileRoute(tstRoute("bad", &route.RouteMatch{PathSpecifier: &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: "("}}}))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "<nil>")
	assert.Contains(t, err.Error(), "missing closing )")
}

func tstWeighted(weights map[string]uint32, order ...string) *route.Route {
	wc := &route.WeightedCluster{}
	for _, n := range order {
		wc.Clusters = append(wc.Clusters, &route.WeightedCluster_ClusterWeight{Name: n, Weight: wrapperspb.UInt32(weights[n])})
	}
	return &route.Route{Name: "w", Match: tstPrefix("/"), Action: &route.Route_Route{Route: &route.RouteAction{
		ClusterSpecifier: &route.RouteAction_WeightedClusters{WeightedClusters: wc},
	}}}
}

// Weighted clusters: a request goes to cluster i with probability
// weight_i / total (route_components.proto WeightedCluster). With a rnd
// that walks every residue of the total once, each cluster gets exactly its weight.
func TestPickClusterWeights(t *testing.T) {
	for _, tc := range []struct {
		weights map[string]uint32
		order   []string
	}{
		{map[string]uint32{"v1": 75, "v2": 25}, []string{"v1", "v2"}},
		{map[string]uint32{"a": 1, "b": 2, "c": 3}, []string{"c", "a", "b"}},
		{map[string]uint32{"only": 7}, []string{"only"}},
		{map[string]uint32{"a": 0, "b": 5}, []string{"a", "b"}},
	} {
		cr, err := compileRoute(tstWeighted(tc.weights, tc.order...))
		require.NoError(t, err)
		var total uint64
		for _, w := range tc.weights {
			total += uint64(w)
		}
		require.Equal(t, total, cr.total)
		// Three full cycles, starting at an offset that is not a multiple of the total.
		n := uint64(1<<40 + 3)
		rnd := func() uint64 { n++; return n }
		got := map[string]uint32{}
		for i := uint64(0); i < 3*total; i++ {
			got[cr.pickCluster(rnd)]++
		}
		for name, w := range tc.weights {
			assert.Equal(t, 3*w, got[name], "%s of %v", name, tc.weights)
		}
	}
	// A plain cluster never calls rnd.
	cr, err := compileRoute(tstRoute("plain", tstPrefix("/")))
	require.NoError(t, err)
	assert.Equal(t, "plain", cr.pickCluster(func() uint64 { panic("rnd called") }))

	// Weights that sum to 0 are refused.
	_, err = compileRoute(tstWeighted(map[string]uint32{"a": 0, "b": 0}, "a", "b"))
	require.Error(t, err)
}

func TestPickClusterDistributionSeeded(t *testing.T) {
	cr, err := compileRoute(tstWeighted(map[string]uint32{"v1": 90, "v2": 10}, "v1", "v2"))
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(1, 2))
	got := map[string]int{}
	const n = 10000
	for range n {
		got[cr.pickCluster(r.Uint64)]++
	}
	// Binomial(10000, 0.1): sd 30; 6 sd either side.
	assert.InDelta(t, 1000, got["v2"], 180, "%v", got)
	assert.Equal(t, n, got["v1"]+got["v2"])
}

// Envoy's retry back-off as its code computes it (backoff_strategy.cc
// JitteredExponentialBackOffStrategy, not the router docs' (2^N-1)B): the
// N-th back-off is in [0, B·2^(N-1)), the bound becoming the maximum once
// doubling would pass it; the maximum defaults to 10 times the base, and the
// default base is 25ms (route_components.proto RetryBackOff).
func TestRetryBackoffBounds(t *testing.T) {
	check := func(t *testing.T, p *retryPolicy, base, max time.Duration) {
		r := rand.New(rand.NewPCG(3, 4))
		for n := 1; n <= 12; n++ {
			limit := base
			for i := 1; i < n; i++ {
				if limit > max/2 {
					limit = max
				} else {
					limit *= 2
				}
			}
			var hi time.Duration
			for range 2000 {
				d := p.backoff(n, r.Uint64)
				require.GreaterOrEqual(t, d, time.Duration(0), "retry %d", n)
				require.Less(t, d, limit, "retry %d", n)
				hi = maxDur(hi, d)
			}
			assert.Greater(t, hi, limit*9/10, "retry %d: jitter covers the range", n)
			// The extremes of rnd give the ends of the range.
			assert.Equal(t, time.Duration(0), p.backoff(n, func() uint64 { return 0 }))
			assert.Equal(t, limit-1, p.backoff(n, func() uint64 { return uint64(limit - 1) }))
		}
		// Large retry numbers do not overflow.
		for _, n := range []int{30, 63, 64, 1000} {
			d := p.backoff(n, r.Uint64)
			assert.True(t, d >= 0 && d < max, "retry %d: %v", n, d)
		}
	}
	t.Run("defaults", func(t *testing.T) {
		p, err := compileRetry(&route.RetryPolicy{RetryOn: "5xx"})
		require.NoError(t, err)
		assert.Equal(t, 25*time.Millisecond, p.backoffBase)
		assert.Equal(t, 250*time.Millisecond, p.backoffMax)
		// n=1: [0,25ms), n=2: [0,50ms), n=3: [0,100ms), n=4: [0,200ms), n>=5: [0,250ms).
		check(t, p, 25*time.Millisecond, 250*time.Millisecond)
	})
	t.Run("base only: max is 10x base", func(t *testing.T) {
		p, err := compileRetry(&route.RetryPolicy{RetryBackOff: &route.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(10 * time.Millisecond)}})
		require.NoError(t, err)
		assert.Equal(t, 100*time.Millisecond, p.backoffMax)
		check(t, p, 10*time.Millisecond, 100*time.Millisecond)
	})
	t.Run("base and max", func(t *testing.T) {
		p, err := compileRetry(&route.RetryPolicy{RetryBackOff: &route.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(10 * time.Millisecond), MaxInterval: durationpb.New(30 * time.Millisecond)}})
		require.NoError(t, err)
		check(t, p, 10*time.Millisecond, 30*time.Millisecond)
	})
}

func maxDur(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

func TestCompileRetryDefaults(t *testing.T) {
	// num_retries defaults to 1 (route_components.proto RetryPolicy.num_retries).
	p, err := compileRetry(&route.RetryPolicy{RetryOn: "5xx"})
	require.NoError(t, err)
	assert.Equal(t, 1, p.numRetries)
	assert.False(t, p.previousHosts)

	p, err = compileRetry(&route.RetryPolicy{
		RetryOn: "connect-failure,retriable-status-codes", NumRetries: wrapperspb.UInt32(2),
		RetriableStatusCodes: []uint32{503}, HostSelectionRetryMaxAttempts: 5,
		RetryHostPredicate: []*route.RetryPolicy_RetryHostPredicate{{Name: "envoy.retry_host_predicates.previous_hosts"}},
	})
	require.NoError(t, err)
	assert.Equal(t, 2, p.numRetries)
	assert.True(t, p.previousHosts)
	assert.Equal(t, 5, p.hostSelectMax)
	assert.True(t, p.codes[503])

	_, err = compileRetry(&route.RetryPolicy{RetryOn: "5xx,sometimes"})
	require.Error(t, err, "unknown retry_on values are refused")
}

type tstOutcome struct {
	code    int
	hdr     []string
	failure failure
}

func (o tstOutcome) resp() *http.Response {
	if o.failure != noFailure {
		return nil
	}
	r := &http.Response{StatusCode: o.code, Header: http.Header{}}
	for i := 0; i+1 < len(o.hdr); i += 2 {
		r.Header.Set(o.hdr[i], o.hdr[i+1])
	}
	return r
}

func (o tstOutcome) String() string {
	if o.failure != noFailure {
		return o.failure.String()
	}
	return http.StatusText(o.code) + " " + joinPairs(o.hdr)
}

func joinPairs(h []string) string {
	out := ""
	for i := 0; i+1 < len(h); i += 2 {
		out += h[i] + "=" + h[i+1] + " "
	}
	return out
}

func respond(code int, hdr ...string) tstOutcome { return tstOutcome{code: code, hdr: hdr} }
func failed(f failure) tstOutcome                { return tstOutcome{failure: f} }

// retriable() for each retry_on token, as Envoy's router filter documents
// x-envoy-retry-on / x-envoy-retry-grpc-on and RetryStateImpl implements them
// (source/common/router/retry_state_impl.cc wouldRetryFromHeaders, wouldRetryFromReset).
func TestRetriablePerToken(t *testing.T) {
	tests := []struct {
		retryOn string
		codes   []uint32
		yes     []tstOutcome
		no      []tstOutcome
	}{
		// 5xx: any 5xx, or no response at all (reset, connect failure, per-try timeout).
		{"5xx", nil,
			[]tstOutcome{respond(500), respond(503), respond(504), respond(599), failed(connectFailure), failed(connectionTermination), failed(perTryTimeout)},
			[]tstOutcome{respond(200), respond(409), respond(429), respond(499)}},
		// gateway-error: 502, 503, 504; resets and per-try timeouts count as one.
		{"gateway-error", nil,
			[]tstOutcome{respond(502), respond(503), respond(504), failed(connectFailure), failed(perTryTimeout)},
			[]tstOutcome{respond(500), respond(501), respond(200)}},
		// connect-failure: the connection could not be made.
		{"connect-failure", nil,
			[]tstOutcome{failed(connectFailure)},
			[]tstOutcome{failed(connectionTermination), respond(503), respond(500)}},
		// reset: no response at all.
		{"reset", nil,
			[]tstOutcome{failed(connectionTermination), failed(connectFailure)},
			[]tstOutcome{respond(503), respond(500)}},
		// retriable-4xx: 409 only.
		{"retriable-4xx", nil,
			[]tstOutcome{respond(409)},
			[]tstOutcome{respond(400), respond(429), respond(503)}},
		// retriable-status-codes: the listed codes.
		{"retriable-status-codes", []uint32{418, 503},
			[]tstOutcome{respond(418), respond(503)},
			[]tstOutcome{respond(500), respond(200), failed(connectFailure)}},
		// refused-stream is HTTP/2 REFUSED_STREAM, which HTTP/1.1 never produces.
		{"refused-stream", nil, nil,
			[]tstOutcome{failed(connectFailure), failed(connectionTermination), respond(503)}},
		// retriable-headers without retriable_headers never retries.
		{"retriable-headers", nil, nil, []tstOutcome{respond(503), respond(200)}},
		// gRPC: by grpc-status of the response headers.
		{"cancelled", nil, []tstOutcome{respond(200, "grpc-status", "1")}, []tstOutcome{respond(200, "grpc-status", "14"), respond(503)}},
		{"deadline-exceeded", nil, []tstOutcome{respond(200, "grpc-status", "4")}, []tstOutcome{respond(200, "grpc-status", "1")}},
		{"resource-exhausted", nil, []tstOutcome{respond(200, "grpc-status", "8")}, []tstOutcome{respond(200, "grpc-status", "14")}},
		{"internal", nil, []tstOutcome{respond(200, "grpc-status", "13")}, []tstOutcome{respond(200, "grpc-status", "2")}},
		{"unavailable", nil, []tstOutcome{respond(200, "grpc-status", "14")}, []tstOutcome{respond(200, "grpc-status", "13"), respond(503)}},
		// Istio's default (retry.go defaultRetryOn): connection failures and gRPC
		// unavailable/cancelled, no status codes, so a 503 is not retried.
		{"connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes", nil,
			[]tstOutcome{failed(connectFailure), respond(200, "grpc-status", "14"), respond(200, "grpc-status", "1")},
			[]tstOutcome{respond(503), respond(500), failed(connectionTermination)}},
		// Codes without the retriable-status-codes token do nothing.
		{"connect-failure", []uint32{503}, nil, []tstOutcome{respond(503)}},
	}
	for _, tc := range tests {
		t.Run(tc.retryOn, func(t *testing.T) {
			p, err := compileRetry(&route.RetryPolicy{RetryOn: tc.retryOn, RetriableStatusCodes: tc.codes})
			require.NoError(t, err)
			for _, o := range tc.yes {
				assert.True(t, p.retriable(o.resp(), o.failure), "should retry %v", o)
			}
			for _, o := range tc.no {
				assert.False(t, p.retriable(o.resp(), o.failure), "should not retry %v", o)
			}
			// The route's global timeout ends the request: never retried.
			assert.False(t, p.retriable(nil, routeTimeout))
		})
	}
}

// wouldRetryFromReset: "if (retry_on_ & (RETRY_ON_5XX | RETRY_ON_GATEWAY_ERROR))
// { // Currently we count an upstream reset as a "5xx" ... return RetryWithBackoff }".
func TestRetriableGatewayErrorRetriesReset(t *testing.T) {
	p, err := compileRetry(&route.RetryPolicy{RetryOn: "gateway-error"})
	require.NoError(t, err)
	assert.True(t, p.retriable(nil, connectionTermination))
}

// reset-before-request retries when nothing was sent upstream, which is always
// the case for a connect failure (retry_state_impl.cc wouldRetryFromReset:
// "if (retry_on_ & RETRY_ON_RESET_BEFORE_REQUEST && !upstream_request_started)").
func TestRetriableResetBeforeRequest(t *testing.T) {
	p, err := compileRetry(&route.RetryPolicy{RetryOn: "reset-before-request"})
	require.NoError(t, err)
	assert.True(t, p.retriable(nil, connectFailure))
	assert.False(t, p.retriable(respond(503).resp(), noFailure))
}

// "A response that contains the x-envoy-ratelimited header comes from an
// upstream envoy. We retry these only when the envoy-ratelimited policy is in
// effect." (retry_state_impl.cc wouldRetryFromHeaders), whatever the status.
func TestRetriableEnvoyRateLimited(t *testing.T) {
	p, err := compileRetry(&route.RetryPolicy{RetryOn: "envoy-ratelimited"})
	require.NoError(t, err)
	assert.True(t, p.retriable(respond(429, "x-envoy-ratelimited", "true").resp(), noFailure))
	assert.False(t, p.retriable(respond(429).resp(), noFailure))

	p, err = compileRetry(&route.RetryPolicy{RetryOn: "5xx"})
	require.NoError(t, err)
	assert.False(t, p.retriable(respond(503, "x-envoy-ratelimited", "true").resp(), noFailure))
}
