package spec

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// gammaTopology is order → payment (v1, v2) with a Service per version.
const gammaTopology = `topology:
  services:
    - name: order
      versions: [{name: v1}]
      calls: [payment]
    - name: payment
      versions: [{name: v1}, {name: v2}]
    - name: payment-v1
      selects: {service: payment, version: v1}
    - name: payment-v2
      selects: {service: payment, version: v2}
`

const gammaTail = `load: {target: order, rate: 10/s, duration: 1s}
expect:
  - successRate: {min: 0.5}
`

func loadGAMMA(t *testing.T, files map[string]string) (*Scenario, error) {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, data := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return LoadFS(fsys, "s.yaml", "s.yaml")
}

// A well-formed HTTPRoute is read into the config with the API server's
// defaults, beside the Istio kinds, from a multi-document mesh file.
func TestGAMMARouteIsLoadedWithCRDDefaults(t *testing.T) {
	sc, err := loadGAMMA(t, map[string]string{
		"s.yaml": "name: g\n" + gammaTopology + "mesh:\n  - file: routes.yaml\n" + gammaTail,
		"routes.yaml": `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: payment}
spec: {host: payment}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: payment}
spec:
  parentRefs: [{group: "", kind: Service, name: payment}]
  rules:
    - backendRefs:
        - {name: payment-v1, port: 80, weight: 90}
        - {name: payment-v2, port: 80}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: order}
spec:
  parentRefs: [{group: "", kind: Service, name: order}]
  rules:
    - matches: [{method: {service: a.B}}]
      backendRefs: [{name: order, port: 80}]
`,
	})
	require.NoError(t, err)
	require.Len(t, sc.Config.HTTPRoutes, 1)
	require.Len(t, sc.Config.GRPCRoutes, 1)
	require.Len(t, sc.Config.DestinationRules, 1)
	hr := sc.Config.HTTPRoutes[0]
	assert.Equal(t, "default", hr.Namespace)
	assert.Equal(t, "routes.yaml:6", sc.Config.Origin["HTTPRoute/default/payment"])
	// The CRD's defaults: a rule without matches matches the prefix /; a
	// backend's weight is 1.
	rule := hr.Spec.Rules[0]
	require.Len(t, rule.Matches, 1)
	assert.Equal(t, gatewayv1.PathMatchPathPrefix, *rule.Matches[0].Path.Type)
	assert.Equal(t, "/", *rule.Matches[0].Path.Value)
	assert.Equal(t, int32(1), *rule.BackendRefs[1].Weight)
	assert.Equal(t, gatewayv1.GRPCMethodMatchExact, *sc.Config.GRPCRoutes[0].Spec.Rules[0].Matches[0].Method.Type)
}

// Bad Gateway API input is refused at its line and field path, as the
// Istio kinds are: unknown fields (which encoding/json would drop), values
// of the wrong type, what istiod refuses or meshbench does not translate.
func TestGAMMARouteErrors(t *testing.T) {
	route := func(spec string) string {
		return "name: g\n" + gammaTopology + `mesh:
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: payment}
    spec:
` + spec + gammaTail
	}
	cases := []struct {
		name, spec string
		want       []string
	}{
		{"unknown field", `      parentRefs: [{group: "", kind: Service, name: payment}]
      rules:
        - backendRefs: [{name: payment-v1, port: 80, wieght: 90}]
`, []string{`s.yaml:20: mesh[0].spec.rules[0].backendRefs[0].wieght: unknown field "wieght" (did you mean "weight"?)`}},
		{"wrong type", `      parentRefs: [{group: "", kind: Service, name: payment}]
      rules:
        - backendRefs: [{name: payment-v1, port: "80"}]
`, []string{`s.yaml:20: mesh[0].spec.rules[0].backendRefs[0].port: want a whole number, got the string "80"`}},
		{"gateway parent", `      parentRefs: [{name: my-gateway}]
      rules:
        - backendRefs: [{name: payment-v1, port: 80}]
`, []string{`s.yaml:18: mesh[0].spec.parentRefs[0]: parentRef Gateway "my-gateway" is not a Service`}},
		{"unknown service", `      parentRefs: [{group: "", kind: Service, name: billing}]
      rules:
        - backendRefs: [{name: payment.default.svc.cluster.local, port: 80}]
`, []string{
			`s.yaml:18: mesh[0].spec.parentRefs[0].name: "billing" matches no service in the topology`,
			`s.yaml:20: mesh[0].spec.rules[0].backendRefs[0].name: "payment.default.svc.cluster.local" matches no service in the topology (services: order, payment, payment-v1, payment-v2); give the Service's name, not a hostname`,
		}},
		{"port", `      parentRefs: [{group: "", kind: Service, name: payment, port: 8080}]
      rules:
        - backendRefs: [{name: payment-v1}]
`, []string{
			`s.yaml:18: mesh[0].spec.parentRefs[0].port: service payment has no port 8080 (its port is 80)`,
			`s.yaml:20: mesh[0].spec.rules[0].backendRefs[0]: port is required in a backendRef to a Service`,
		}},
		{"redirect", `      parentRefs: [{group: "", kind: Service, name: payment}]
      rules:
        - filters:
            - type: RequestRedirect
              requestRedirect: {statusCode: 301}
          backendRefs: [{name: payment-v1, port: 80}]
`, []string{`s.yaml:21: mesh[0].spec.rules[0].filters[0].type: RequestRedirect is not supported`}},
		{"filter shape", `      parentRefs: [{group: "", kind: Service, name: payment}]
      rules:
        - filters:
            - type: RequestHeaderModifier
          backendRefs: [{name: payment-v1, port: 80}]
`, []string{`s.yaml:21: mesh[0].spec.rules[0].filters[0]: a filter of type RequestHeaderModifier needs its requestHeaderModifier field`}},
		{"retry is experimental", `      parentRefs: [{group: "", kind: Service, name: payment}]
      rules:
        - backendRefs: [{name: payment-v1, port: 80}]
          retry: {attempts: 3}
`, []string{`s.yaml:21: mesh[0].spec.rules[0].retry: retry is in the Gateway API's experimental channel only`}},
		{"timeouts", `      parentRefs: [{group: "", kind: Service, name: payment}]
      rules:
        - backendRefs: [{name: payment-v1, port: 80}]
          timeouts: {request: 1s, backendRequest: 2s}
        - backendRefs: [{name: payment-v1, port: 80}]
          timeouts: {request: 1.5s}
`, []string{
			`s.yaml:21: mesh[0].spec.rules[0].timeouts.backendRequest: backendRequest timeout 2s is longer than the request timeout 1s`,
			`s.yaml:23: mesh[0].spec.rules[1].timeouts.request: invalid duration "1.5s"`,
		}},
		{"no live backend", `      parentRefs: [{group: "", kind: Service, name: payment}]
      rules:
        - backendRefs: [{name: payment-v1, port: 80, weight: 0}]
`, []string{`s.yaml:20: mesh[0].spec.rules[0]: no backendRef with a weight above 0`}},
		{"matches", `      parentRefs: [{group: "", kind: Service, name: payment}]
      rules:
        - matches:
            - path: {type: Prefix, value: /pay}
            - path: {value: pay}
            - headers: [{name: x, type: RegularExpression, value: "a("}]
          backendRefs: [{name: payment-v1, port: 80}]
`, []string{
			`s.yaml:21: mesh[0].spec.rules[0].matches[0].path.type: unknown path match type "Prefix"`,
			`s.yaml:22: mesh[0].spec.rules[0].matches[1].path.value: path "pay" must start with /`,
			`s.yaml:23: mesh[0].spec.rules[0].matches[2].headers[0].value: invalid regex "a("`,
		}},
		{"split backend filters", `      parentRefs: [{group: "", kind: Service, name: payment}]
      rules:
        - backendRefs:
            - name: payment-v1
              port: 80
              filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: a, value: b}]}}]
            - {name: payment-v2, port: 80}
`, []string{`s.yaml:23: mesh[0].spec.rules[0].backendRefs[0].filters: a backendRef's filters in a weighted split are not translated`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadGAMMA(t, map[string]string{"s.yaml": route(c.spec)})
			require.Error(t, err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// The apiVersion must be the Gateway API's v1.
func TestGAMMARouteAPIVersion(t *testing.T) {
	_, err := loadGAMMA(t, map[string]string{"s.yaml": "name: g\n" + gammaTopology + `mesh:
  - apiVersion: gateway.networking.k8s.io/v1beta1
    kind: HTTPRoute
    metadata: {name: payment}
    spec:
      parentRefs: [{group: "", kind: Service, name: payment}]
      rules: [{backendRefs: [{name: payment-v1, port: 80}]}]
` + gammaTail})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `s.yaml:14: mesh[0].apiVersion: unsupported apiVersion "gateway.networking.k8s.io/v1beta1" for HTTPRoute; want gateway.networking.k8s.io/v1`)
}

// A selecting Service names an existing service and version and declares
// nothing of its own.
func TestSelectingServiceErrors(t *testing.T) {
	_, err := loadGAMMA(t, map[string]string{"s.yaml": `name: g
topology:
  services:
    - name: order
      versions: [{name: v1}]
      calls: [payment]
    - name: payment
      versions: [{name: v1}]
    - name: payment-v3
      selects: {service: payment, version: v3}
    - name: ghost
      selects: {service: nobody}
    - name: payment-v1
      port: 8080
      selects: {service: payment, version: v1}
    - name: payment-v9
      selects: {service: payment, version: v1}
      versions: [{name: v9}]
` + gammaTail})
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, `s.yaml:10: topology.services[2].selects.version: payment has no version "v3" (versions: v1)`)
	assert.Contains(t, msg, `s.yaml:12: topology.services[3].selects.service: selects "nobody", which matches no other service`)
	assert.Contains(t, msg, `s.yaml:14: topology.services[4].port: a Service with selects has the pods, ports and path of payment; remove port`)
	assert.Contains(t, msg, `s.yaml:18: topology.services[5].versions: a Service with selects has the pods, ports and path of payment; remove versions`)
}

// A mesh fault on a service a Gateway API route routes is refused: it
// would go into a VirtualService that sidecars ignore beside the route.
func TestMeshFaultOnGAMMARoutedServiceIsRefused(t *testing.T) {
	_, err := loadGAMMA(t, map[string]string{"s.yaml": "name: g\n" + gammaTopology + `mesh:
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: payment}
    spec:
      parentRefs: [{group: "", kind: Service, name: payment}]
      rules: [{backendRefs: [{name: payment-v1, port: 80}]}]
chaos:
  - fault: {type: abort, status: 503}
    target: {service: payment}
` + gammaTail})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "chaos[0].target: payment is routed by HTTPRoute payment")
}

// A VirtualService for a host an HTTPRoute routes is accepted, as istiod
// accepts it, with a warning that sidecars ignore it.
func TestVirtualServiceBesideHTTPRouteWarns(t *testing.T) {
	sc, err := loadGAMMA(t, map[string]string{"s.yaml": "name: g\n" + gammaTopology + `mesh:
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: payment}
    spec:
      parentRefs: [{group: "", kind: Service, name: payment}]
      rules: [{backendRefs: [{name: payment-v1, port: 80}]}]
  - apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: payment}
    spec:
      hosts: [payment]
      http: [{route: [{destination: {host: payment-v2}}]}]
` + gammaTail})
	require.NoError(t, err)
	require.Len(t, sc.Warnings, 1)
	assert.Contains(t, sc.Warnings.Error(), "s.yaml:24: mesh[1].spec.hosts[0]: sidecars ignore this VirtualService for payment: HTTPRoute payment routes it")
}
