package spec

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/scenarios/expect"
)

func TestValidateIstioErrors(t *testing.T) {
	runErrorCases(t, []errorCase{
		{"vs-unknown-field.yaml", []wantError{
			{Line: 14, Field: "mesh[0].spec.http[0].retries.atempts", Msg: `unknown field "atempts" (did you mean "attempts"?)`},
		}},
		{"weight-string.yaml", []wantError{
			{Line: 14, Field: "mesh[1].spec.http[0].route[0].weight", Msg: `want a whole number, got the string "90"`},
		}},
		{"weights-80-10.yaml", []wantError{
			{Line: 12, Field: "mesh[1].spec.http[0].route", Msg: "the destination weights sum to 90, want 100 (payment/v1 80, payment/v2 10)"},
		}},
		{"no-weights.yaml", []wantError{
			{Line: 13, Field: "mesh[1].spec.http[0].route[0]", Msg: "destination payment/v1 has no weight"},
			{Line: 14, Field: "mesh[1].spec.http[0].route[1]", Msg: "destination payment/v2 has no weight"},
		}},
		{"undefined-subset.yaml", []wantError{
			{Line: 15, Field: "mesh[1].spec.http[0].route[0].destination.subset", Msg: "subset v3 of payment is defined by no DestinationRule (defined subsets: v1, v2)"},
		}},
		{"unknown-host.yaml", []wantError{
			{Line: 13, Field: "mesh[0].spec.http[0].route[0].destination.host", Msg: `host "billing" matches no service in the topology (services: order, payment)`},
		}},
		{"unsupported-kind.yaml", []wantError{
			{Line: 6, Field: "mesh[0].kind", Msg: `unsupported kind "ServiceEntry"`},
			{Line: 11, Field: "mesh[1].apiVersion", Msg: `unsupported apiVersion "networking.istio.io/v2"`},
			{Line: 19, Field: "mesh[2].metadata", Msg: "metadata.name is required"},
		}},
		{"duplicate-names.yaml", []wantError{
			{Line: 16, Field: "mesh[1].metadata.name", Msg: "DestinationRule default/payment is defined twice (first at testdata/bad/duplicate-names.yaml:4)"},
		}},
		{"subset-no-pod.yaml", []wantError{
			{Line: 18, Field: "mesh[0].spec.subsets[2]", Msg: "subset all has no labels"},
			{Line: 27, Field: "mesh[1].spec.http[0].route[0].destination.subset", Msg: "the route sends every request to subset v3 of payment, which selects no pod (defined at testdata/bad/subset-no-pod.yaml:15)"},
			{Line: 30, Field: "mesh[1].spec.http[1].route[1].destination.subset", Msg: "the route sends weight 10 to subset v3 of payment, which selects no pod"},
		}},
		{"partial-host.yaml", []wantError{
			{Line: 11, Field: "mesh[0].spec.hosts[0]", Msg: `host "payment.default" matches no service: Istio completes only names without a dot`},
			{Line: 15, Field: "mesh[0].spec.http[0].route[0].destination.host", Msg: `host "payment.default.svc" matches no service`},
			{Line: 22, Field: "mesh[1].spec.hosts[0]", Msg: `host "payment" in namespace shop means payment.shop.svc.cluster.local`},
			{Line: 27, Field: "mesh[1].spec.http[0].route[0].destination.port.number", Msg: "port 8080 is not a port of payment (ports: 80); 8080 is its targetPort"},
		}},
		{"spec-types.yaml", []wantError{
			{Line: 9, Field: "mesh[0].metadata.uid", Msg: `unknown field "uid"`},
			{Line: 15, Field: "mesh[0].spec.http[0].match[0].headers.end-user.prefix", Msg: "only one of exact, prefix, regex may be set; exact is already set at line 15"},
			{Line: 16, Field: "mesh[0].spec.http[0].match[0].headers.version.exact", Msg: `want a string, got the integer "2"`},
			{Line: 19, Field: "mesh[0].spec.http[0].timeout", Msg: `invalid duration "1 minute"`},
			{Line: 27, Field: "mesh[1].spec.trafficPolicy.loadBalancer.simple", Msg: `invalid value "ROUND_ROBBIN"; want one of UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST (did you mean "ROUND_ROBIN"?)`},
		}},
		{"gateway.yaml", []wantError{
			{Line: 11, Field: "mesh[0].spec.gateways[0]", Msg: `gateway "shop-gateway" is defined by no Gateway`},
			{Line: 14, Field: "mesh[0].spec.http[0].route[0].destination.host", Msg: `host "shop" matches no service`},
		}},
	})
}

func TestValidateScenarioErrors(t *testing.T) {
	runErrorCases(t, []errorCase{
		{"load-expect.yaml", []wantError{
			{Line: 3, Field: "load.rate", Msg: "load.rate is required"},
			{Line: 4, Field: "load.target", Msg: `target "billing" matches no service in the topology (services: order, payment)`},
			{Line: 5, Field: "load.method", Msg: `unsupported method "FETCH"`},
			{Line: 6, Field: "load.duration", Msg: "duration 20m0s is not in 100ms..10m0s"},
			{Line: 9, Field: "load.variants[0].weight", Msg: "variant weight must be > 0"},
			{Line: 10, Field: "load.variants[1].name", Msg: "variant jason is declared twice"},
			{Line: 13, Field: "expect[0]", Msg: "an expectation sets exactly one of split, successRate, latency, status, retries, ejections, overflows, responseFlags, attempts, security, rotations, latencyShift, messages, deadline, capacity; this one sets split and successRate"},
			{Line: 21, Field: "expect[1].split.variant", Msg: `variant "bob" is not a load variant (variants: jason)`},
			{Line: 23, Field: "expect[2].successRate.min", Msg: "min 1.5 is not in (0,1]"},
			{Line: 25, Field: "expect[3].latency.p95", Msg: `unknown latency statistic "p95"`},
			{Line: 26, Field: "expect[3].latency.p99", Msg: "p99 needs max"},
			{Line: 27, Field: "expect[4]", Msg: "an expectation sets one of split, successRate, latency, status, retries, ejections, overflows, responseFlags, attempts, security, rotations"},
		}},
		{"topology.yaml", []wantError{
			{Line: 5, Field: "topology.services", Msg: "the calls form a cycle: order → payment → order"},
			{Line: 7, Field: "topology.services[0].calls[1]", Msg: `order calls "shipping", which matches no service`},
			{Line: 13, Field: "topology.services[1].versions[0].labels.app", Msg: "label app is set by meshbench"},
			{Line: 14, Field: "topology.services[1].versions[1].name", Msg: "version v1 of payment is declared twice"},
		}},
		{"topology-on-callee-error.yaml", []wantError{
			{Line: 7, Field: "topology.services[0].onCalleeError", Msg: `onCalleeError "ignore" is not fail or degrade`},
			{Line: 10, Field: "topology.services[0].versions[1].onCalleeError", Msg: `onCalleeError "degraded" is not fail or degrade (did you mean "degrade"?)`},
		}},
		{"topology-version-calls.yaml", []wantError{
			{Line: 5, Field: "topology.services", Msg: "the calls form a cycle: order → payment → order"},
			{Line: 13, Field: "topology.services[1].versions[2].calls[0]", Msg: `payment/v3 calls "ledger", which matches no service`},
		}},
	})
}

// Smaller cases, inline: each scenario differs from a valid one in one place.
func TestValidateInline(t *testing.T) {
	const dr = `  - apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: payment}
    spec:
      host: payment
      subsets:
        - {name: v1, labels: {version: v1}}
        - {name: v2, labels: {version: v2}}
`
	const tail = `load: {target: order, rate: 100/s, duration: 1s}
expect:
  - successRate: {min: 0.99}
`
	for _, tc := range []struct {
		name, mesh, want string // want "" means valid
	}{
		{"short name", "  - {apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: p}, spec: {hosts: [payment], http: [{route: [{destination: {host: payment, subset: v2}}]}]}}\n", ""},
		{"fqdn", "  - {apiVersion: networking.istio.io/v1beta1, kind: VirtualService, metadata: {name: p}, spec: {hosts: [payment.default.svc.cluster.local], http: [{route: [{destination: {host: payment.default.svc.cluster.local}}]}]}}\n", ""},
		{"single destination needs no weight", "  - {apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: p}, spec: {hosts: [payment], http: [{route: [{destination: {host: payment}, weight: 30}]}]}}\n", ""},
		{"explicit zero weight", "  - {apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: p}, spec: {hosts: [payment], http: [{route: [{destination: {host: payment, subset: v1}, weight: 100}, {destination: {host: payment, subset: v2}, weight: 0}]}]}}\n", ""},
		{"wildcard host", "  - {apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: p}, spec: {hosts: ['*.default.svc.cluster.local'], http: [{route: [{destination: {host: payment}}]}]}}\n", ""},
		{"star host in mesh", "  - {apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: p}, spec: {hosts: ['*'], http: [{route: [{destination: {host: payment}}]}]}}\n",
			"x.yaml:11: mesh[1].spec.hosts[0]: wildcard host * is not allowed"},
		{"negative weight", "  - {apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: p}, spec: {hosts: [payment], http: [{route: [{destination: {host: payment, subset: v1}, weight: 110}, {destination: {host: payment, subset: v2}, weight: -10}]}]}}\n",
			"x.yaml:11: mesh[1].spec.http[0].route[1].weight: weight -10 < 0"},
		{"tcp weights", "  - {apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: p}, spec: {hosts: [payment], tcp: [{route: [{destination: {host: payment, subset: v1}, weight: 50}, {destination: {host: payment, subset: v2}, weight: 40}]}]}}\n",
			"x.yaml:11: mesh[1].spec.tcp[0].route: the destination weights sum to 90, want 100"},
		{"no routes", "  - {apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: p}, spec: {hosts: [payment]}}\n",
			"x.yaml:11: mesh[1].spec: http, tcp or tls must be provided"},
		{"mirror subset", "  - {apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: p}, spec: {hosts: [payment], http: [{route: [{destination: {host: payment}}], mirror: {host: payment, subset: v9}}]}}\n",
			"x.yaml:11: mesh[1].spec.http[0].mirror.subset: subset v9 of payment is defined by no DestinationRule"},
		{"spec missing", "  - {apiVersion: networking.istio.io/v1, kind: Gateway, metadata: {name: g}}\n",
			"x.yaml:11: mesh[1]: spec is required"},
		{"gateway without servers", "  - {apiVersion: networking.istio.io/v1, kind: Gateway, metadata: {name: g}, spec: {selector: {istio: ingressgateway}}}\n",
			"x.yaml:11: mesh[1].spec: gateway must have at least one server"},
		{"status is not input", "  - {apiVersion: networking.istio.io/v1, kind: Gateway, metadata: {name: g}, spec: {servers: []}, status: {}}\n",
			`x.yaml:11: mesh[1].status: unknown field "status"`},
		{"not an object", "  - just a string\n",
			"x.yaml:11: mesh[1]: a mesh entry is {file: path.yaml} or an inline Istio object"},
		{"spec not a mapping", "  - {apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: p}, spec: [payment]}\n",
			"x.yaml:11: mesh[1].spec: want a mapping (VirtualService), got a list"},
		{"proto field name", "  - {apiVersion: networking.istio.io/v1, kind: DestinationRule, metadata: {name: d}, spec: {host: order, traffic_policy: {tls: {mode: ISTIO_MUTUAL}}}}\n", ""},
		{"duplicate subset across rules", "  - {apiVersion: networking.istio.io/v1, kind: DestinationRule, metadata: {name: d2}, spec: {host: payment, subsets: [{name: v1, labels: {version: v1}}]}}\n",
			"x.yaml:11: mesh[1].spec.subsets[0].name: subset v1 of payment is already defined at x.yaml:9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := "name: inline\nmesh:\n" + dr + tc.mesh + tail
			s, err := LoadFS(fstest.MapFS{"x.yaml": {Data: []byte(data)}}, "x.yaml", "x.yaml")
			if tc.want == "" {
				require.NoError(t, err)
				assert.NotNil(t, s)
				return
			}
			assert.Nil(t, s)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestResolveHost(t *testing.T) {
	s, err := catalogScenario("no-mesh-config")
	require.NoError(t, err)
	v := newValidator(&loader{}, s)
	for _, tc := range []struct {
		host, ns, want string
	}{
		{"payment", "default", "payment"},
		{"payment.default.svc.cluster.local", "default", "payment"},
		{"payment.default.svc.cluster.local", "other", "payment"},
		{"order", "default", "order"},
		{"payment", "other", ""},
		{"payment.default", "default", ""},
		{"payment.default.svc", "default", ""},
		{"billing", "default", ""},
		{"", "default", ""},
	} {
		svc, why := v.resolveHost(tc.host, tc.ns)
		if tc.want == "" {
			assert.Nil(t, svc, tc.host)
			assert.NotEmpty(t, why, tc.host)
			continue
		}
		require.NotNil(t, svc, "%s: %s", tc.host, why)
		assert.Equal(t, tc.want, svc.Name)
	}
}

func TestValidateSplitTolerance(t *testing.T) {
	const head = "name: x\nload: {target: order, rate: 100/s, duration: 1s}\nexpect:\n  - split:\n      service: payment\n      weights: {v1: 2, v2: 1}\n"
	s, err := LoadFS(fstest.MapFS{"x.yaml": {Data: []byte(head + "      tolerance: 5\n")}}, "x.yaml", "x.yaml")
	require.NoError(t, err)
	require.IsType(t, &expect.Split{}, s.Expect[0].Kind)
	assert.InDelta(t, 5, s.Expect[0].Kind.(*expect.Split).Tolerance, 0)
	for _, bad := range []string{"-1", "100"} {
		_, err := LoadFS(fstest.MapFS{"x.yaml": {Data: []byte(head + "      tolerance: " + bad + "\n")}}, "x.yaml", "x.yaml")
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "x.yaml:7: expect[0].split.tolerance: tolerance "+bad+" must be percentage points")
	}
}

// A variant's method overrides the load's; one outside the load's methods
// is refused at its line, as load.method is.
func TestValidateVariantMethod(t *testing.T) {
	const head = "name: x\nload:\n  target: order\n  rate: 100/s\n  duration: 1s\n  variants:\n    - {name: reader, weight: 1, method: GET}\n    - {name: writer, weight: 1}\n"
	const tail = "expect:\n  - successRate: {min: 0.99}\n"
	s, err := LoadFS(fstest.MapFS{"x.yaml": {Data: []byte(head + tail)}}, "x.yaml", "x.yaml")
	require.NoError(t, err)
	assert.Equal(t, "POST", s.Load.Method)
	assert.Equal(t, "GET", s.Load.Variants[0].Method)
	assert.Empty(t, s.Load.Variants[1].Method, "the load's method")

	bad := head + "    - {name: fetcher, weight: 1, method: FETCH}\n" + tail
	_, err = LoadFS(fstest.MapFS{"x.yaml": {Data: []byte(bad)}}, "x.yaml", "x.yaml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `x.yaml:9: load.variants[2].method: unsupported method "FETCH"; want one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS`)
}
