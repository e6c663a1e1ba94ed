package xdsgen_test

import (
	"net/netip"
	"testing"
	"testing/fstest"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// gammaRoutes loads a scenario of order → payment (v1, v2), payment-v1,
// payment-v2 and echo (gRPC) with the given mesh entries through the real
// loader (which applies the CRDs' defaults, as the API server does) and
// returns the routes of host's virtual host on order's sidecar.
func gammaRoutes(t *testing.T, mesh, host string) []*route.Route {
	t.Helper()
	src := `name: g
topology:
  services:
    - name: order
      versions: [{name: v1}]
      calls: [payment, echo]
    - name: payment
      versions: [{name: v1}, {name: v2}]
    - name: payment-v1
      selects: {service: payment, version: v1}
    - name: payment-v2
      selects: {service: payment, version: v2}
    - name: echo
      protocol: grpc
      versions: [{name: v1}]
mesh:
` + mesh + `load: {target: order, rate: 10/s, duration: 1s}
expect:
  - successRate: {min: 0.5}
`
	sc, err := spec.LoadFS(fstest.MapFS{"s.yaml": {Data: []byte(src)}}, "s.yaml", "s.yaml")
	require.NoError(t, err)
	next := netip.MustParseAddr("10.0.0.0")
	reg, err := registry.New(*sc.Topology, func() (netip.Addr, error) { next = next.Next(); return next, nil })
	require.NoError(t, err)
	res := xdsgen.New(reg, sc.Config).ForSidecar(pod(t, reg, "order-v1-0"))
	return findVHost(t, findRouteConfig(t, res, "80"), host+":80").GetRoutes()
}

// A canary by weights between per-version Services (conversion.go
// buildHTTPDestination): a weighted cluster of each Service's default
// cluster, a backend of weight 0 dropped; a missing backend answers 500
// (route.go applyHTTPRouteDestination); Istio's default retry policy and
// no timeout, as for a VirtualService route without them. A VirtualService
// for the same host loses to the route (virtualservice.go
// SelectVirtualServices).
func TestGAMMAWeightedBackendsWinOverAVirtualService(t *testing.T) {
	routes := gammaRoutes(t, `  - apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: aaa-payment}
    spec:
      hosts: [payment]
      http: [{route: [{destination: {host: payment-v2}}]}]
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: canary}
    spec:
      parentRefs: [{group: "", kind: Service, name: payment}]
      rules:
        - backendRefs:
            - {name: payment-v1, port: 80, weight: 90}
            - {name: payment-v2, port: 80, weight: 10}
            - {name: payment, port: 80, weight: 0}
`, paymentHost)
	require.Len(t, routes, 1)
	r := routes[0]
	assert.Equal(t, "default.canary.0", r.GetName())
	assert.Equal(t, "/", r.GetMatch().GetPrefix(), "the CRD's default match, prefix / (not made path-separated)")
	wc := r.GetRoute().GetWeightedClusters().GetClusters()
	require.Len(t, wc, 2)
	assert.Equal(t, "outbound|80||payment-v1.default.svc.cluster.local", wc[0].GetName())
	assert.Equal(t, uint32(90), wc[0].GetWeight().GetValue())
	assert.Equal(t, "outbound|80||payment-v2.default.svc.cluster.local", wc[1].GetName())
	assert.Equal(t, uint32(10), wc[1].GetWeight().GetValue())
	assert.Equal(t, route.RouteAction_INTERNAL_SERVER_ERROR, r.GetRoute().GetClusterNotFoundResponseCode())
	assert.Equal(t, "0s", r.GetRoute().GetTimeout().AsDuration().String())
	assert.Equal(t, uint32(2), r.GetRoute().GetRetryPolicy().GetNumRetries().GetValue())
}

// Rules are split one route per match and sorted as the Gateway API
// orders matches (conversion.go sortHTTPRoutes), across the HTTPRoutes of
// one parent merged by name (route_collections.go mergeHTTPRoutes); a
// prefix other than / matches whole segments (route.go TranslateRouteMatch);
// a rewrite of the prefix to / removes it; backendRequest without a retry
// is the route's timeout (convertHTTPRoute).
func TestGAMMARulesSortedAndTranslatedWithGatewaySemantics(t *testing.T) {
	routes := gammaRoutes(t, `  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: b}
    spec:
      parentRefs: [{group: "", kind: Service, name: payment}]
      rules:
        - matches:
            - path: {type: RegularExpression, value: "/r/[0-9]+"}
          backendRefs: [{name: payment-v1, port: 80}]
        - matches:
            - path: {type: PathPrefix, value: /strip/}
          filters:
            - type: URLRewrite
              urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}
          backendRefs: [{name: payment-v1, port: 80}]
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: a}
    spec:
      parentRefs: [{group: "", kind: Service, name: payment}]
      rules:
        - backendRefs: [{name: payment, port: 80}]
        - matches:
            - path: {type: Exact, value: /x}
            - headers: [{name: end-user, value: jason}]
          backendRefs: [{name: payment-v2, port: 80}]
          timeouts: {request: 5s, backendRequest: 2s}
`, paymentHost)
	var got []string
	for _, r := range routes {
		got = append(got, r.GetName()+" "+r.GetMatch().String())
	}
	require.Len(t, routes, 4, "%v", got)
	// Exact first; then prefixes, longer first, a header match before none
	// of the same path, a catch-all, after which istiod drops the regex.
	assert.Equal(t, "/x", routes[0].GetMatch().GetPath())
	assert.Equal(t, "default.a.1", routes[0].GetName())
	assert.Equal(t, "/strip", routes[1].GetMatch().GetPathSeparatedPrefix())
	assert.Equal(t, "default.a.1", routes[2].GetName())
	assert.Equal(t, "end-user", routes[2].GetMatch().GetHeaders()[0].GetName())
	assert.Equal(t, "default.a.0", routes[3].GetName())

	assert.Equal(t, "2s", routes[0].GetRoute().GetTimeout().AsDuration().String(), "backendRequest replaces request without a retry")
	rw := routes[1].GetRoute()
	assert.Empty(t, rw.GetPrefixRewrite())
	assert.Equal(t, `^/strip(/?)(.*)`, rw.GetRegexRewrite().GetPattern().GetRegex())
	assert.Equal(t, `/\2`, rw.GetRegexRewrite().GetSubstitution())
}

// Filters: header modifiers with lower-cased names, a mirror's fraction
// as a share, a rewrite of the prefix and the host (conversion.go
// createHeadersFilter, createMirrorFilter, createRewriteFilter).
func TestGAMMAFilters(t *testing.T) {
	routes := gammaRoutes(t, `  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: f}
    spec:
      parentRefs: [{group: "", kind: Service, name: payment}]
      rules:
        - matches: [{path: {value: /pay}}]
          filters:
            - type: RequestHeaderModifier
              requestHeaderModifier: {set: [{name: X-Set, value: "1"}], remove: [x-gone]}
            - type: ResponseHeaderModifier
              responseHeaderModifier: {add: [{name: x-resp, value: "2"}]}
            - type: RequestMirror
              requestMirror: {backendRef: {name: payment-v2, port: 80}, fraction: {numerator: 1, denominator: 4}}
            - type: URLRewrite
              urlRewrite: {hostname: pay.internal, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2/}}
          backendRefs: [{name: payment-v1, port: 80}]
`, paymentHost)
	require.Len(t, routes, 1)
	r := routes[0]
	assert.Equal(t, "/pay", r.GetMatch().GetPathSeparatedPrefix())
	require.Len(t, r.GetRequestHeadersToAdd(), 1)
	assert.Equal(t, "x-set", r.GetRequestHeadersToAdd()[0].GetHeader().GetKey())
	assert.Equal(t, []string{"x-gone"}, r.GetRequestHeadersToRemove())
	require.Len(t, r.GetResponseHeadersToAdd(), 1)
	a := r.GetRoute()
	require.Len(t, a.GetRequestMirrorPolicies(), 1)
	assert.Equal(t, "outbound|80||payment-v2.default.svc.cluster.local", a.GetRequestMirrorPolicies()[0].GetCluster())
	assert.Equal(t, uint32(250000), a.GetRequestMirrorPolicies()[0].GetRuntimeFraction().GetDefaultValue().GetNumerator())
	assert.Equal(t, "/v2", a.GetPrefixRewrite())
	assert.Equal(t, "pay.internal", a.GetHostRewriteLiteral())
}

// GRPCRoute method matches become path matches (conversion.go
// createGRPCURIMatch), a service-only prefix then path-separated as any
// gateway prefix; a rule without matches matches everything, last.
func TestGAMMAGRPCMethodMatches(t *testing.T) {
	routes := gammaRoutes(t, `  - apiVersion: gateway.networking.k8s.io/v1
    kind: GRPCRoute
    metadata: {name: echo}
    spec:
      parentRefs: [{group: "", kind: Service, name: echo}]
      rules:
        - backendRefs: [{name: echo, port: 80}]
        - matches:
            - method: {service: echo.Echo, method: Say}
            - method: {service: echo.Echo}
            - method: {method: Stream}
            - method: {type: RegularExpression, service: "echo\\..*"}
          backendRefs: [{name: echo, port: 80}]
`, "echo.default.svc.cluster.local")
	require.Len(t, routes, 5)
	assert.Equal(t, "/echo.Echo/Say", routes[0].GetMatch().GetPath())
	assert.Equal(t, "/echo.Echo", routes[1].GetMatch().GetPathSeparatedPrefix())
	// Two regexes: the longer (13 characters against 12) first.
	assert.Equal(t, "/[^/]+/Stream", routes[2].GetMatch().GetSafeRegex().GetRegex())
	assert.Equal(t, `/echo\..*/.+`, routes[3].GetMatch().GetSafeRegex().GetRegex())
	assert.Equal(t, "/", routes[4].GetMatch().GetPrefix())
	assert.Equal(t, "default.echo.0", routes[4].GetName())
}

// istiod stops a VirtualService's routes at a catch-all (route.go
// BuildHTTPRoutesForVirtualService): a rule without matches, merged from a
// second route, hides the regex rule sorted after it.
func TestGAMMARoutesStopAtACatchAll(t *testing.T) {
	routes := gammaRoutes(t, `  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: a}
    spec:
      parentRefs: [{group: "", kind: Service, name: payment}]
      rules:
        - matches: [{path: {type: RegularExpression, value: "/r/.*"}}]
          backendRefs: [{name: payment-v2, port: 80}]
        - backendRefs: [{name: payment-v1, port: 80}]
`, paymentHost)
	require.Len(t, routes, 1)
	assert.Equal(t, "/", routes[0].GetMatch().GetPrefix())
}
