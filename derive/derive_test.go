package derive_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/derive"
	"github.com/meshbench/meshbench/internal/stats"
	"github.com/meshbench/meshbench/scenarios/catalog"
	"github.com/meshbench/meshbench/scenarios/spec"
)

// plan derives the plan of one file of YAML named in.yaml.
func plan(t *testing.T, yaml string) *derive.Plan {
	t.Helper()
	p, err := derive.Derive([]spec.IstioInput{{Name: "in.yaml", Data: []byte(yaml)}}, derive.Options{})
	require.NoError(t, err)
	return p
}

// topology renders the inferred topology as "service@line: version@line ..."
// lines, callers marked.
func topology(p *derive.Plan) []string {
	var out []string
	for _, s := range p.Topology.Services {
		line := fmt.Sprintf("%s@%d:", s.Name, s.Source.Line)
		if s.Caller {
			line = "caller " + line
		}
		if s.Port != 0 || s.Protocol != "" {
			line = fmt.Sprintf("%s port=%d/%s", line, s.Port, s.Protocol)
		}
		if s.Selects != nil {
			line += fmt.Sprintf(" selects %s/%s", s.Selects.Service, s.Selects.Version)
		}
		for _, v := range s.Versions {
			line += fmt.Sprintf(" %s×%d@%d", v.Name, v.Replicas, v.Source.Line)
			if len(v.Labels) > 0 {
				line += fmt.Sprintf("%v", v.Labels)
			}
		}
		out = append(out, line)
	}
	return out
}

// checks renders the checks as "name@line" or "not checked@line: why".
func checks(p *derive.Plan) []string {
	var out []string
	for _, c := range p.Checks {
		if c.Scenario == nil {
			out = append(out, fmt.Sprintf("not checked@%d: %s", c.Source.Line, c.Promise))
			continue
		}
		out = append(out, fmt.Sprintf("%s@%d", c.Name, c.Source.Line))
	}
	return out
}

// allowNothingPay is an allow-nothing policy and one that opens payment
// to order.
const allowNothingPay = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: pay}
spec:
  selector: {matchLabels: {app: payment}}
  rules: [{from: [{source: {principals: [cluster.local/ns/default/sa/order]}}]}]
---
`

// gammaRoute is a Gateway API route for mesh traffic in the shape of
// Istio's traffic-shifting task, with a header match and a timeout.
const gammaRoute = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews}
spec:
  parentRefs:
    - {group: "", kind: Service, name: reviews, port: 9080}
  rules:
    - backendRefs:
        - {name: reviews-v1, port: 9080, weight: 90}
        - {name: reviews-v3, port: 9080, weight: 10}
    - matches:
        - headers: [{name: end-user, value: jason}]
      timeouts: {request: 1s}
      backendRefs:
        - {name: reviews-v2, port: 9080}
        - {name: ratings, port: 9080, weight: 0}
`

const subsets = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: payment}
spec:
  host: payment
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: canary, labels: {version: v2, track: canary}}
---
`

// paymentRoutes starts a VirtualService for payment, after its subsets;
// its http routes follow.
const paymentRoutes = subsets + `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: payment}
spec:
  hosts: [payment]
  http:
`

// paymentMirrors routes payment to v1 and mirrors it with mirrors (Istio
// 1.19+): all to its canary subset, a tenth to audit, which nothing else
// names.
const paymentMirrors = paymentRoutes + `    - route: [{destination: {host: payment, subset: v1}}]
      mirrors:
        - destination: {host: payment, subset: canary}
        - destination: {host: audit}
          percentage: {value: 10}
`

// ratingsPolicy lets reviews call ratings, and reviewsSubsets gives
// reviews two versions: reviews is a server that also calls, whichever
// file comes first.
const ratingsPolicy = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ratings-viewer}
spec:
  selector: {matchLabels: {app: ratings}}
  rules: [{from: [{source: {principals: [cluster.local/ns/default/sa/reviews]}}]}]
`

const reviewsSubsets = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
`

func TestInferTopology(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "subsets become versions with their labels and lines",
			yaml: subsets,
			want: []string{"payment@5: v1×2@7 v2×2@8map[track:canary]"},
		},
		{
			name: "every host a route names, full names too, with the port",
			yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: front}
spec:
  hosts: [front]
  http:
    - route:
        - destination: {host: payment.default.svc.cluster.local, port: {number: 9080}}
      mirror: {host: audit}
`,
			want: []string{"front@5: v1×2@5", "payment@8: port=9080/ v1×2@8", "audit@9: v1×2@9"},
		},
		{
			name: "every mirrors[] destination names a service, as mirror does",
			yaml: paymentMirrors,
			want: []string{"payment@5: v1×2@7 v2×2@8map[track:canary]", "audit@19: v1×2@19"},
		},
		{
			name: "an HTTPRoute's RequestMirror backend names a service, or a version of its parent",
			yaml: `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
    - backendRefs: [{name: reviews-v1, port: 9080}]
      filters:
        - {type: RequestMirror, requestMirror: {backendRef: {name: reviews-v2, port: 9080}}}
        - {type: RequestMirror, requestMirror: {backendRef: {name: audit, port: 8080}}}
`,
			want: []string{"reviews@5: port=9080/ v1×2@7 v2×2@9", "reviews-v1@7: selects reviews/v1", "reviews-v2@9: selects reviews/v2", "audit@10: port=8080/ v1×2@10"},
		},
		{
			name: "tcp routes make a tcp service",
			yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db}
spec:
  hosts: [db]
  tcp:
    - route:
        - destination: {host: db, port: {number: 5432}}
`,
			want: []string{"db@5: port=5432/tcp v1×2@5"},
		},
		{
			name: "callers from principals of the namespace only, one pod",
			yaml: `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: pay}
spec:
  selector: {matchLabels: {app: payment}}
  rules:
    - from:
        - source:
            principals: ["cluster.local/ns/default/sa/order", "cluster.local/ns/other/sa/spy", "*"]
`,
			want: []string{"payment@5: v1×2@5", "caller order@9: v1×1@9"},
		},
		{
			name: "a principal's service that a DestinationRule gives versions is no caller, the AuthorizationPolicy read first",
			yaml: ratingsPolicy + "---\n" + reviewsSubsets,
			want: []string{"ratings@5: v1×2@5", "reviews@12: v1×2@13 v2×2@13"},
		},
		{
			name: "nor is one a route names",
			yaml: ratingsPolicy + `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews}}], timeout: 1s}]
`,
			want: []string{"ratings@5: v1×2@5", "reviews@12: v1×2@12"},
		},
		{
			name: "hosts of other namespaces and wildcards name no service",
			yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: x}
spec:
  hosts: ["*.example.com", "payment.other.svc.cluster.local", "ledger"]
  http:
    - route: [{destination: {host: ledger}}]
`,
			want: []string{"ledger@5: v1×2@5"},
		},
		{
			name: "a namespace the objects share is the topology's",
			yaml: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cart, namespace: shop}
spec:
  host: cart.shop.svc.cluster.local
  subsets: [{name: v1, labels: {version: v1}}]
`,
			want: []string{"cart@5: v1×2@6"},
		},
		{
			name: "a PeerAuthentication's workload",
			yaml: `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: legacy-in}
spec:
  selector: {matchLabels: {app: inventory}}
  mtls: {mode: PERMISSIVE}
`,
			want: []string{"inventory@5: v1×2@5"},
		},
		{
			name: "an HTTPRoute's backends named <parent>-<version> are Services over that version's pods",
			yaml: gammaRoute,
			want: []string{
				"reviews@6: port=9080/ v1×2@9 v3×2@10 v2×2@15",
				"reviews-v1@9: selects reviews/v1",
				"reviews-v3@10: selects reviews/v3",
				"reviews-v2@15: selects reviews/v2",
				"ratings@16: port=9080/ v1×2@16",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, topology(plan(t, tc.yaml)))
		})
	}
}

func TestDeriveChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "weights give a split; no retries the default-retries check",
			yaml: subsets + `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: payment}
spec:
  hosts: [payment]
  http:
    - route:
        - {destination: {host: payment, subset: v1}, weight: 90}
        - {destination: {host: payment, subset: canary}, weight: 10}
`,
			want: []string{"payment-split@16", "payment-default-retries@16"},
		},
		{
			name: "a header match gives a match check; a query match is not checked, nor does it catch the others",
			yaml: subsets + `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: payment}
spec:
  hosts: [payment]
  http:
    - match: [{queryParams: {beta: {exact: "1"}}}]
      route: [{destination: {host: payment, subset: canary}}]
    - match: [{headers: {end-user: {exact: jason}}}]
      route: [{destination: {host: payment, subset: canary}}]
    - route: [{destination: {host: payment, subset: v1}}]
`,
			want: []string{"not checked@16: http[0]'s promises", "payment-http1-match@18", "payment-http1-default-retries@18", "payment-http2-split@20"},
		},
		{
			name: "a header that the app does not pass on is not checked",
			yaml: subsets + `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: payment}
spec:
  hosts: [payment]
  http:
    - name: beta
      match: [{headers: {x-beta: {exact: "1"}}}]
      route: [{destination: {host: payment, subset: canary}}]
    - name: main
      route: [{destination: {host: payment, subset: v1}}]
`,
			want: []string{"not checked@16: route \"beta\"'s promises", "payment-main-split@19", "payment-main-default-retries@19"},
		},
		{
			name: "timeout, retries and fault",
			yaml: subsets + `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: payment}
spec:
  hosts: [payment]
  http:
    - route: [{destination: {host: payment, subset: v1}}]
      timeout: 500ms
      retries: {attempts: 2, retryOn: "connect-failure,503"}
      fault: {abort: {httpStatus: 503, percentage: {value: 10}}}
`,
			want: []string{"payment-split@16", "payment-timeout@17", "payment-retries@18", "payment-fault@19"},
		},
		{
			name: "a per-try timeout retried gives its own check; one not retried, or not below the route's timeout, is not checked",
			yaml: paymentRoutes + `    - name: retried
      match: [{headers: {end-user: {exact: a}}}]
      route: [{destination: {host: payment, subset: v1}}]
      retries: {attempts: 3, perTryTimeout: 50ms, retryOn: "gateway-error,connect-failure"}
    - name: unretried
      match: [{headers: {end-user: {exact: b}}}]
      route: [{destination: {host: payment, subset: v1}}]
      retries: {attempts: 2, perTryTimeout: 50ms, retryOn: "connect-failure,503"}
    - name: capped
      match: [{headers: {end-user: {exact: c}}}]
      route: [{destination: {host: payment, subset: v1}}]
      timeout: 40ms
      retries: {attempts: 2, perTryTimeout: 50ms, retryOn: 5xx}
    - name: one-try
      route: [{destination: {host: payment, subset: v1}}]
      timeout: 60ms
      retries: {attempts: 2, perTryTimeout: 50ms, retryOn: 5xx}
`,
			want: []string{
				"payment-retried-match@16", "payment-retried-retries@19", "payment-retried-per-try-timeout@19",
				"payment-unretried-match@20", "payment-unretried-retries@23", "not checked@23: cuts each of up to 3 tries at 50ms",
				"payment-capped-match@24", "payment-capped-timeout@27", "payment-capped-retries@28", "not checked@28: cuts each",
				"payment-one-try-split@29", "payment-one-try-timeout@31", "payment-one-try-retries@32", "not checked@32: cuts each",
			},
		},
		{
			name: "retries on connection failures only are not checked",
			yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: payment}
spec:
  hosts: [payment]
  http:
    - route: [{destination: {host: payment}}]
      retries: {attempts: 2, retryOn: "connect-failure,reset"}
`,
			want: []string{"not checked@7: routes to its destinations", "not checked@8: retries up to 2 times"},
		},
		{
			name: "outlier detection, and what is not derived",
			yaml: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: payment}
spec:
  host: payment
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 2, baseEjectionTime: 1m, maxEjectionPercent: 50}
    connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}
`,
			want: []string{"payment-outlier@7", "payment-connection-pool@8"},
		},
		{
			name: "a pool without a pending limit only queues; limits too high are not exceeded",
			yaml: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: payment}
spec:
  host: payment
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ledger}
spec:
  host: ledger
  trafficPolicy:
    connectionPool: {http: {http2MaxRequests: 1000}}
`,
			want: []string{"not checked@7: connection pool limits", "not checked@15: refuses requests beyond 1000 in flight"},
		},
		{
			name: "PeerAuthentication: mesh-wide STRICT overridden for one workload",
			yaml: `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: legacy, namespace: default}
spec:
  selector: {matchLabels: {app: inventory}}
  mtls: {mode: DISABLE}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: payment}
spec:
  host: payment
`,
			want: []string{"default-mtls@5", "legacy-mtls@12"},
		},
		{
			name: "authorization rules that cannot be exercised are listed",
			yaml: `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: pay}
spec:
  selector: {matchLabels: {app: payment}}
  rules:
    - to: [{operation: {methods: [TRACE]}}]
    - from: [{source: {ipBlocks: [10.0.0.0/8]}}]
    - when: [{key: source.ip, values: [10.0.0.1]}]
    - from: [{source: {namespaces: [default]}}]
`,
			want: []string{"not checked@7: allows every caller's", "not checked@8: allows its principals'", "not checked@9: allows every caller's", "pay-rule3-authz@10"},
		},
		{
			name: "kinds meshbench does not simulate are listed, never dropped",
			yaml: `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default}
spec: {egress: [{hosts: ["./*"]}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: payment}
spec: {host: payment}
`,
			want: []string{"not checked@1: what networking.istio.io/v1 Sidecar promises"},
		},
		{
			name: "an allow-nothing policy that a namespace-wide ALLOW of everything opens again is not checked; the other rules derive as before",
			yaml: allowNothingPay + `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ledger}
spec: {host: ledger}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: open-all}
spec: {rules: [{}]}
`,
			want: []string{"not checked@1: allows nothing", "pay-rule0-authz@11", "not checked@18: who may call what"},
		},
		{
			name: "routes and traffic policies of a service that an allow-nothing policy closes are not checked",
			yaml: allowNothingPay + `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ledger}
spec:
  hosts: [ledger]
  http: [{route: [{destination: {host: ledger}}], timeout: 1s}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ledger}
spec:
  host: ledger
  trafficPolicy: {outlierDetection: {consecutive5xxErrors: 5}}
`,
			want: []string{"allow-nothing-allow-nothing@1", "pay-rule0-authz@11", "not checked@17: its routes", "not checked@25: its outlier detection"},
		},
		{
			name: "a check per mirror; an undefined subset is not checked",
			yaml: paymentMirrors + `        - destination: {host: payment, subset: nightly}
`,
			want: []string{"payment-split@16", "payment-default-retries@16", "payment-mirror0@18", "payment-mirror1@19", "not checked@21: mirrors to payment"},
		},
		{
			name: "mirror, with mirrorPercentage or the deprecated mirrorPercent",
			yaml: paymentRoutes + `    - match: [{headers: {end-user: {exact: jason}}}]
      route: [{destination: {host: payment, subset: v1}}]
      mirror: {host: audit}
      mirrorPercent: 5
    - route: [{destination: {host: payment, subset: v1}}]
      mirror: {host: audit}
      mirrorPercentage: {value: 50}
`,
			want: []string{"payment-http0-match@16", "payment-http0-default-retries@16", "payment-http0-mirror@18", "payment-http1-split@20", "payment-http1-mirror@21"},
		},
		{
			name: "an HTTPRoute's RequestMirror filter",
			yaml: `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
    - backendRefs: [{name: reviews-v1, port: 9080}]
      filters: [{type: RequestMirror, requestMirror: {backendRef: {name: reviews-v2, port: 9080}, percent: 50}}]
`,
			want: []string{"reviews-split@7", "reviews-default-retries@7", "reviews-mirror@8"},
		},
		{
			name: "an HTTPRoute's rules in istiod's order (a header match first): match, timeout, default retries, then the split",
			yaml: gammaRoute,
			want: []string{"reviews-rule1-match@11", "reviews-rule1-timeout@13", "reviews-rule1-default-retries@11", "reviews-rule0-split@8"},
		},
		{
			name: "a VirtualService for a Service an HTTPRoute routes is not checked; neither is a second HTTPRoute, nor a GRPCRoute",
			yaml: gammaRoute + `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews}}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews-more}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews}]
  rules: [{backendRefs: [{name: reviews-v1, port: 9080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: echo}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules: [{backendRefs: [{name: echo, port: 9090}]}]
`,
			want: []string{"reviews-rule1-match@11", "reviews-rule1-timeout@13", "reviews-rule1-default-retries@11", "reviews-rule0-split@8",
				"not checked@22: its routes", "not checked@29: its rules", "not checked@32: the route's rules"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := checks(plan(t, tc.yaml))
			require.Len(t, got, len(tc.want), "%q", got)
			for i, w := range tc.want {
				assert.True(t, strings.HasPrefix(got[i], w), "check %d: got %q, want %q…", i, got[i], w)
			}
		})
	}
}

// Each PeerAuthentication's check covers the services whose pods it
// governs, by Istio's precedence: workload over namespace over mesh.
func TestPeerAuthenticationTargets(t *testing.T) {
	p := plan(t, `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: legacy}
spec:
  selector: {matchLabels: {app: inventory}}
  mtls: {mode: PERMISSIVE}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: front}
spec:
  hosts: [front]
  http: [{route: [{destination: {host: payment}}]}]
`)
	got := map[string]string{}
	for _, c := range p.Checks {
		if c.Scenario != nil && strings.HasSuffix(c.Name, "-mtls") {
			got[c.Name] = c.Promise[strings.LastIndex(c.Promise, "("):]
		}
	}
	assert.Equal(t, map[string]string{"default-mtls": "(front, payment)", "legacy-mtls": "(inventory)"}, got)
}

// A STRICT policy's meshed caller calls every target through its
// sidecar, whose clusters carry the connection pools other rules set: the
// load keeps half the smallest pool in flight, so that the pool's 503 UO
// overflows (the pool check's promise) cannot fail the mTLS check's meshed
// success rate. A folder with the mtls-migration and circuit-breaking
// files together is the case the e2e folders have apart.
func TestStrictCheckStaysWithinThePools(t *testing.T) {
	const strict = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: STRICT}}
`
	rule := func(name, policy string) string {
		return "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: " + name + "}\nspec:\n  host: " + name + "\n" + policy
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int // the load's concurrency; 0 is none
	}{
		{name: "the e2e folders together", files: map[string]string{}, want: 1},
		{name: "no pool", files: map[string]string{"a.yaml": strict + rule("payment", "  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n")}},
		{name: "a pool that only queues", files: map[string]string{"a.yaml": strict + rule("payment", "  trafficPolicy: {connectionPool: {tcp: {maxConnections: 1}}}\n")}},
		{name: "the smallest of two services' pools", want: 5, files: map[string]string{"a.yaml": strict +
			rule("payment", "  trafficPolicy: {connectionPool: {http: {http2MaxRequests: 10}}}\n") +
			rule("ledger", "  trafficPolicy: {connectionPool: {http: {http2MaxRequests: 40}}}\n")}},
		{name: "a subset's pool", want: 2, files: map[string]string{"a.yaml": strict +
			rule("payment", "  subsets: [{name: v1, labels: {version: v1}, trafficPolicy: {connectionPool: {tcp: {maxConnections: 2}, http: {http1MaxPendingRequests: 2}}}}]\n")}},
		{name: "a port's pool", want: 3, files: map[string]string{"a.yaml": strict +
			rule("payment", "  trafficPolicy: {portLevelSettings: [{port: {number: 8080}, connectionPool: {http: {http2MaxRequests: 6}}}]}\n")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if len(tc.files) == 0 {
				for _, f := range []string{"mtls-migration/details.yaml", "mtls-migration/peer-authentication.yaml", "circuit-breaking/httpbin.yaml"} {
					data, err := os.ReadFile(filepath.Join("testdata", f))
					require.NoError(t, err)
					require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644))
				}
			}
			for name, data := range tc.files {
				require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644))
			}
			inputs, err := derive.ReadPaths([]string{dir}, nil)
			require.NoError(t, err)
			p, err := derive.Derive(inputs, derive.Options{})
			require.NoError(t, err)
			i := slices.IndexFunc(p.Checks, func(c derive.Check) bool { return c.Name == "default-mtls" })
			require.GreaterOrEqual(t, i, 0, "%q", checks(p))
			sc := p.Checks[i].Scenario
			assert.Equal(t, tc.want, sc.Load.Concurrency)
			if tc.want > 0 {
				assert.Contains(t, p.Checks[i].Promise, fmt.Sprintf("%d in flight at most", tc.want))
			}
			// The verdict on mTLS stays: the meshed calls succeed, plaintext
			// is refused, and each target receives mTLS and nothing else.
			assert.Contains(t, sc.Expect, map[string]any{"successRate": map[string]any{"min": 0.99, "variant": "meshed"}})
			assert.Contains(t, sc.Expect, map[string]any{"status": map[string]any{"code": 502, "min": 0.99, "variant": "plaintext"}})
			files, err := p.Write(t.TempDir())
			require.NoError(t, err)
			for _, f := range files {
				_, err := spec.LoadFile(f)
				require.NoError(t, err, f)
			}
		})
	}
}

// A route's check calls the service as a caller that an ALLOW policy lets
// in, so that the policy does not refuse the check's load.
func TestCallerAllowedByAuthorizationPolicy(t *testing.T) {
	p := plan(t, subsets+`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: pay}
spec:
  selector: {matchLabels: {app: payment}}
  rules: [{from: [{source: {principals: ["cluster.local/ns/default/sa/checkout"]}}]}]
`)
	assert.Equal(t, []string{"payment@5: v1×2@7 v2×2@8map[track:canary]", "caller checkout@15: v1×1@15"}, topology(p))
	p = plan(t, subsets+`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: pay}
spec:
  selector: {matchLabels: {app: payment}}
  rules: [{from: [{source: {principals: ["cluster.local/ns/default/sa/checkout"]}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: payment}
spec:
  hosts: [payment]
  http: [{route: [{destination: {host: payment, subset: v1}}]}]
`)
	for _, c := range p.Checks {
		if c.Scenario != nil && !strings.HasSuffix(c.Name, "-authz") {
			assert.Equal(t, "checkout", c.Scenario.Load.Target, c.Name)
		}
	}
}

// AuthorizationPolicy: the callers a rule allows get 200 and one it does
// not 403; a DENY rule is shown on an allowed caller, on the path its
// ALLOW rule needs, and wins.
// Each rule's callers get 200 on its path, the others 403, DENY winning;
// a rule's paths also derive a scenario of its own on a path they do not
// take (one path per service in a topology): an allowed caller gets 403
// there from an ALLOW rule, 200 past a DENY rule. A rule's methods
// likewise: its callers call with one of them (POST first) in the rule's
// scenario, and with a method outside them (DELETE first, never HEAD) in
// one of its own, on the rule's path, getting what the policies give.
func TestAuthorizationPolicyChecks(t *testing.T) {
	catalogFile, err := os.ReadFile(filepath.Join("..", "scenarios", "catalog", "istio", "authz-payment.yaml"))
	require.NoError(t, err)
	policy := func(name, action, rule string) string {
		return fmt.Sprintf(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: %s}
spec:
  selector: {matchLabels: {app: details}}
  action: %s
  rules:
%s`, name, action, rule)
	}
	const fromProductpage = "    - from: [{source: {principals: [cluster.local/ns/default/sa/productpage]}}]\n"
	type verdict struct{ variant, target, want, path string }
	for _, tc := range []struct {
		name, yaml string
		want       map[string][]verdict
		notChecked map[string]string // line → promise
	}{
		{
			name: "catalog: order on /pay, DENY of mallory",
			yaml: string(catalogFile),
			want: map[string][]verdict{
				"payment-callers-rule0-authz":              {{"order", "order", "200", "/pay"}, {"client", "client", "403", "/pay"}},
				"payment-callers-rule0-authz-other-path":   {{"order", "order", "403", "/meshbench-other-path"}},
				"payment-callers-rule0-authz-other-method": {{"order", "order", "403 by DELETE", "/pay"}},
				"deny-mallory-rule0-authz":                 {{"order", "order", "403 with end-user mallory", "/pay"}},
			},
			notChecked: map[string]string{
				"22": "allows its principals' calls to payment on /pay/refunds", // the gateway's principal is of istio-system
			},
		},
		{
			name: "a prefix path",
			yaml: policy("details-viewer", "ALLOW", fromProductpage+"      to: [{operation: {paths: [/details/*]}}]\n"),
			want: map[string][]verdict{
				"details-viewer-rule0-authz":            {{"productpage", "productpage", "200", "/details/x"}, {"client", "client", "403", "/details/x"}},
				"details-viewer-rule0-authz-other-path": {{"productpage", "productpage", "403", "/meshbench-other-path"}},
			},
		},
		{
			name: "a suffix path that takes the first other path",
			yaml: policy("details-viewer", "ALLOW", fromProductpage+"      to: [{operation: {paths: [\"*-path\"]}}]\n"),
			want: map[string][]verdict{
				"details-viewer-rule0-authz":            {{"productpage", "productpage", "200", "/x-path"}, {"client", "client", "403", "/x-path"}},
				"details-viewer-rule0-authz-other-path": {{"productpage", "productpage", "403", "/x.meshbench-other"}},
			},
		},
		{
			name: "paths that take every path",
			yaml: policy("details-viewer", "ALLOW", fromProductpage+"      to: [{operation: {paths: [/*]}}]\n"),
			want: map[string][]verdict{
				"details-viewer-rule0-authz": {{"productpage", "productpage", "200", "/x"}, {"client", "client", "403", "/x"}},
			},
			notChecked: map[string]string{"8": "refuses productpage's calls to details on other paths than /*"},
		},
		{
			name: "another rule allows the other path",
			yaml: policy("details-viewer", "ALLOW", fromProductpage+"      to: [{operation: {paths: [/details]}}]\n"+fromProductpage),
			want: map[string][]verdict{
				"details-viewer-rule0-authz":            {{"productpage", "productpage", "200", "/details"}, {"client", "client", "403", "/details"}},
				"details-viewer-rule0-authz-other-path": {{"productpage", "productpage", "200", "/meshbench-other-path"}},
				"details-viewer-rule1-authz":            {{"productpage", "productpage", "200", ""}, {"client", "client", "403", ""}}, // the default path
			},
		},
		{
			name: "a DENY on a path leaves the others open",
			yaml: policy("details-admin", "DENY", fromProductpage+"      to: [{operation: {methods: [POST], paths: [/admin]}}]\n"),
			want: map[string][]verdict{
				"details-admin-rule0-authz":              {{"productpage", "productpage", "403", "/admin"}},
				"details-admin-rule0-authz-other-path":   {{"productpage", "productpage", "200", "/meshbench-other-path"}},
				"details-admin-rule0-authz-other-method": {{"productpage", "productpage", "200 by DELETE", "/admin"}},
			},
		},
		{
			name: "a GET-only rule: GET in its scenario, DELETE outside it",
			yaml: policy("details-viewer", "ALLOW", fromProductpage+"      to: [{operation: {methods: [GET]}}]\n"),
			want: map[string][]verdict{
				"details-viewer-rule0-authz":              {{"productpage", "productpage", "200 by GET", ""}, {"client", "client", "403 by GET", ""}},
				"details-viewer-rule0-authz-other-method": {{"productpage", "productpage", "403 by DELETE", ""}},
			},
		},
		{
			name: "methods and paths: the other method on the rule's path",
			yaml: policy("details-viewer", "ALLOW", fromProductpage+"      to: [{operation: {methods: [GET, DELETE], paths: [/details/*]}}]\n"),
			want: map[string][]verdict{
				"details-viewer-rule0-authz":              {{"productpage", "productpage", "200 by GET", "/details/x"}, {"client", "client", "403 by GET", "/details/x"}},
				"details-viewer-rule0-authz-other-path":   {{"productpage", "productpage", "403 by GET", "/meshbench-other-path"}},
				"details-viewer-rule0-authz-other-method": {{"productpage", "productpage", "403 by PUT", "/details/x"}},
			},
		},
		{
			name: "a prefix method takes POST",
			yaml: policy("details-viewer", "ALLOW", fromProductpage+"      to: [{operation: {methods: [\"P*\"]}}]\n"),
			want: map[string][]verdict{
				"details-viewer-rule0-authz":              {{"productpage", "productpage", "200", ""}, {"client", "client", "403", ""}},
				"details-viewer-rule0-authz-other-method": {{"productpage", "productpage", "403 by DELETE", ""}},
			},
		},
		{
			name: "methods that take every method",
			yaml: policy("details-viewer", "ALLOW", fromProductpage+"      to: [{operation: {methods: [\"*\"]}}]\n"),
			want: map[string][]verdict{
				"details-viewer-rule0-authz": {{"productpage", "productpage", "200", ""}, {"client", "client", "403", ""}},
			},
			notChecked: map[string]string{"8": "refuses productpage's calls to details with other methods than *"},
		},
		{
			name: "another rule allows the other method",
			yaml: policy("details-viewer", "ALLOW", fromProductpage+"      to: [{operation: {methods: [GET]}}]\n"+fromProductpage),
			want: map[string][]verdict{
				"details-viewer-rule0-authz":              {{"productpage", "productpage", "200 by GET", ""}, {"client", "client", "403 by GET", ""}},
				"details-viewer-rule0-authz-other-method": {{"productpage", "productpage", "200 by DELETE", ""}},
				"details-viewer-rule1-authz":              {{"productpage", "productpage", "200", ""}, {"client", "client", "403", ""}},
			},
		},
		{
			name: "a DENY of DELETE for everyone: PUT passes",
			yaml: policy("details-no-delete", "DENY", "    - to: [{operation: {methods: [DELETE]}}]\n"),
			want: map[string][]verdict{
				"details-no-delete-rule0-authz":              {{"client", "client", "403 by DELETE", ""}},
				"details-no-delete-rule0-authz-other-method": {{"client", "client", "200 by PUT", ""}},
			},
		},
		{
			name: "a DENY for everyone is shown on the caller and method an ALLOW lets in",
			yaml: policy("details-viewer", "ALLOW", fromProductpage+"      to: [{operation: {methods: [GET]}}]\n") + "---\n" +
				policy("details-deny-mallory", "DENY", "    - when: [{key: \"request.headers[end-user]\", values: [mallory]}]\n"),
			want: map[string][]verdict{
				"details-viewer-rule0-authz":              {{"productpage", "productpage", "200 by GET", ""}, {"client", "client", "403 by GET", ""}},
				"details-viewer-rule0-authz-other-method": {{"productpage", "productpage", "403 by DELETE", ""}},
				"details-deny-mallory-rule0-authz":        {{"productpage", "productpage", "403 by GET with end-user mallory", ""}},
			},
		},
		{
			name:       "a method no call can have",
			yaml:       policy("details-viewer", "ALLOW", fromProductpage+"      to: [{operation: {methods: [CONNECT]}}]\n"),
			want:       map[string][]verdict{},
			notChecked: map[string]string{"8": "allows productpage's calls to details"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := plan(t, tc.yaml)
			got := map[string][]verdict{}
			notChecked := map[string]string{}
			for _, c := range p.Checks {
				if c.Scenario == nil {
					notChecked[fmt.Sprint(c.Source.Line)] = c.Promise
					continue
				}
				path := ""
				for _, s := range c.Scenario.Topology.Services {
					if s.Name == "payment" || s.Name == "details" {
						path = s.Path
					}
				}
				for i, v := range c.Scenario.Load.Variants {
					want := "200"
					if st, ok := c.Scenario.Expect[i]["status"].(map[string]any); ok {
						want = fmt.Sprint(st["code"])
					}
					if v.Method != "" {
						want += " by " + v.Method
					}
					if v.Headers["end-user"] != "" {
						want += " with end-user " + v.Headers["end-user"]
					}
					got[c.Name] = append(got[c.Name], verdict{v.Name, v.Target, want, path})
				}
			}
			assert.Equal(t, tc.want, got)
			if tc.notChecked == nil {
				tc.notChecked = map[string]string{}
			}
			assert.Equal(t, tc.notChecked, notChecked)
		})
	}
}

func TestReadListStdinAndIgnoredKinds(t *testing.T) {
	// As kubectl get -o yaml prints it: server-set metadata and status.
	list := `apiVersion: v1
kind: List
items:
  - apiVersion: networking.istio.io/v1beta1
    kind: DestinationRule
    metadata:
      name: payment
      namespace: default
      resourceVersion: "1"
      uid: 2a7c1f0e-1b9e-4f6d-9a53-0c4b7d3e1f00
      creationTimestamp: "2026-01-01T00:00:00Z"
      generation: 1
      annotations: {kubectl.kubernetes.io/last-applied-configuration: "{}"}
    spec: {host: payment}
    status: {}
  - apiVersion: v1
    kind: Service
    metadata: {name: payment}
    spec: {ports: [{port: 80}]}
`
	inputs, err := derive.ReadPaths([]string{derive.Stdin}, strings.NewReader(list))
	require.NoError(t, err)
	p, err := derive.Derive(inputs, derive.Options{})
	require.NoError(t, err)
	assert.Equal(t, []string{"payment@14: v1×2@14"}, topology(p))
	require.Len(t, p.Notes, 1)
	assert.Equal(t, "<stdin>:16", p.Notes[0].Source.String())
	assert.Contains(t, p.Notes[0].Text, "ignored Service payment (v1)")

	// The spec is checked as strictly as anywhere.
	inputs, err = derive.ReadPaths([]string{derive.Stdin}, strings.NewReader(strings.Replace(list, "{host: payment}", "{host: payment, hots: x}", 1)))
	require.NoError(t, err)
	_, err = derive.Derive(inputs, derive.Options{})
	assert.ErrorContains(t, err, `<stdin>:14: spec.hots: unknown field "hots"`)
}

func TestBadInputNamesFileAndLine(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "vs.yaml")
	require.NoError(t, os.WriteFile(f, []byte(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: payment}
spec:
  hosts: [payment]
  http:
    - route: [{destination: {host: payment}}]
      retries: {atempts: 3}
`), 0o644))
	inputs, err := derive.ReadPaths([]string{dir}, nil)
	require.NoError(t, err)
	_, err = derive.Derive(inputs, derive.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), f+":8: spec.http[0].retries.atempts: unknown field")

	_, err = derive.ReadPaths([]string{filepath.Join(dir, "missing")}, nil)
	assert.ErrorContains(t, err, "missing: no such file or directory")
}

// The derived scenarios of the end-to-end folders are ordinary scenario
// files: the scenario loader reads every one unchanged.
func TestDerivedScenariosLoad(t *testing.T) {
	folders, err := filepath.Glob("testdata/*")
	require.NoError(t, err)
	require.Len(t, folders, 10)
	for _, folder := range folders {
		inputs, err := derive.ReadPaths([]string{folder}, nil)
		require.NoError(t, err)
		p, err := derive.Derive(inputs, derive.Options{})
		require.NoError(t, err)
		files, err := p.Write(t.TempDir())
		require.NoError(t, err)
		require.NotEmpty(t, files)
		for _, f := range files {
			sc, err := spec.LoadFile(f)
			require.NoError(t, err, f)
			assert.Contains(t, sc.Description, folder, "each scenario cites its promise's file and line")
		}
	}
}

// The end-to-end folders that TestCheckFoldersPass runs hold a workload
// PeerAuthentication DISABLE (mtls-migration) and fault delays, one on
// every request of its route, whose latency is checked (fault-injection).
func TestFoldersCoverDisableAndDelay(t *testing.T) {
	checks := func(folder string) map[string]*derive.Check {
		inputs, err := derive.ReadPaths([]string{filepath.Join("testdata", folder)}, nil)
		require.NoError(t, err)
		p, err := derive.Derive(inputs, derive.Options{})
		require.NoError(t, err)
		out := map[string]*derive.Check{}
		for i := range p.Checks {
			out[p.Checks[i].Name] = &p.Checks[i]
		}
		return out
	}
	mtls := checks("mtls-migration")
	require.Contains(t, mtls, "reports-plaintext-mtls")
	assert.Contains(t, mtls["reports-plaintext-mtls"].Promise, "DISABLE: plaintext is accepted (reports)")
	require.NotNil(t, mtls["reports-plaintext-mtls"].Scenario)

	faults := checks("fault-injection")
	var kinds []string
	for _, name := range []string{"stock-http1-fault", "stock-http2-fault"} {
		require.Contains(t, faults, name)
		assert.Contains(t, faults[name].Promise, "delays ")
		require.NotNil(t, faults[name].Scenario)
		for _, e := range faults[name].Scenario.Expect {
			for k := range e {
				kinds = append(kinds, name+" "+k)
			}
		}
	}
	assert.ElementsMatch(t, []string{"stock-http1-fault responseFlags", "stock-http1-fault latency", "stock-http2-fault responseFlags"}, kinds)
}

// The Istio files of each catalog scenario (its mesh files) derive
// scenarios that the loader reads.
func TestCatalogIstioFilesDerive(t *testing.T) {
	sets, err := catalog.IstioFileSets()
	require.NoError(t, err)
	derived := 0
	for _, set := range sets {
		var paths []string
		for _, f := range set {
			paths = append(paths, filepath.Join("..", "scenarios", "catalog", filepath.FromSlash(f)))
		}
		t.Run(strings.Join(set, "+"), func(t *testing.T) {
			inputs, err := derive.ReadPaths(paths, nil)
			require.NoError(t, err)
			p, err := derive.Derive(inputs, derive.Options{})
			require.NoError(t, err)
			files, err := p.Write(t.TempDir())
			require.NoError(t, err)
			for _, f := range files {
				_, err := spec.LoadFile(f)
				require.NoError(t, err, f)
				derived++
			}
		})
	}
	assert.Positive(t, derived)
}

// A per-try timeout's check: an app slower than the per-try timeout in a
// share p of its answers (each independently), success at least what
// 1-p^k implies less the retries check's margin, at most attempts+1
// tries, and latency bounded by the tries and their back-offs, or by a
// route timeout that leaves room for fewer tries.
func TestPerTryTimeoutCheck(t *testing.T) {
	for _, tc := range []struct {
		name, policy string
		minSuccess   float64
		p99          string
	}{
		// 4 tries: 1-0.3^4 = 99.19%, less a third of its gain over 70%;
		// 4×50ms plus back-offs of at most 25, 50 and 100ms, plus 250ms.
		{"four tries", "retries: {attempts: 3, perTryTimeout: 50ms, retryOn: 5xx}", 0.8946, "625ms"},
		// Under 150ms only two tries surely fit (2×50ms + 25ms): 1-0.3^2 = 91%,
		// less a third of 21 points; latency within the route timeout.
		{"two tries fit the route timeout", "timeout: 150ms\n      retries: {attempts: 3, perTryTimeout: 50ms, retryOn: reset}", 0.84, "400ms"},
		// A back-off base of 100ms: 4×50ms + 100, 200 and 400ms.
		{"a longer back-off", "retries: {attempts: 3, perTryTimeout: 50ms, retryOn: gateway-error, backoff: 100ms}", 0.8946, "1.15s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := plan(t, paymentRoutes+`    - route: [{destination: {host: payment, subset: v1}}]
      `+tc.policy+"\n")
			var c *derive.Check
			for i := range p.Checks {
				if p.Checks[i].Name == "payment-per-try-timeout" {
					c = &p.Checks[i]
				}
			}
			require.NotNil(t, c, "%q", checks(p))
			sc := c.Scenario
			assert.Equal(t, map[string]any{"min": tc.minSuccess, "confidence": 1 - derive.DefaultAlpha}, sc.Expect[0]["successRate"])
			assert.Equal(t, map[string]any{"service": "payment", "min": 2, "max": 4}, sc.Expect[1]["attempts"])
			assert.Equal(t, map[string]any{"service": "payment", "min": 1}, sc.Expect[2]["retries"])
			assert.Equal(t, map[string]any{"p99": map[string]string{"max": tc.p99}}, sc.Expect[3]["latency"])
			for _, s := range sc.Topology.Services {
				if s.Name != "payment" {
					continue
				}
				for _, v := range s.Versions {
					l := v.Latency
					assert.Equal(t, "exponential", l.Dist)
					// P(service time > 50ms) = exp(-50ms/mean) = 30%.
					assert.InDelta(t, 0.3, math.Exp(-float64(50*time.Millisecond)/float64(l.Mean)), 1e-6)
				}
			}
		})
	}
}

// A match check's variants are sized by what each must show: the
// matching requests a split among the route's own destinations, the
// others only that none reach them when their route has a split check
// of its own (which needs the larger sample).
func TestMatchVariantsSizedByNeed(t *testing.T) {
	p := plan(t, paymentRoutes+`    - match: [{headers: {end-user: {exact: jason}}}]
      route: [{destination: {host: payment, subset: canary}}]
    - route:
        - {destination: {host: payment, subset: v1}, weight: 70}
        - {destination: {host: payment, subset: canary}, weight: 30}
`)
	sizes := map[string][]int{}
	for _, c := range p.Checks {
		if c.Scenario == nil {
			continue
		}
		for _, v := range c.Scenario.Load.Variants {
			sizes[c.Name] = append(sizes[c.Name], v.Weight)
		}
	}
	assert.Equal(t, []int{200, 200}, sizes["payment-http0-match"])
	split := p.Checks[slices.IndexFunc(p.Checks, func(c derive.Check) bool { return c.Name == "payment-http1-split" })]
	assert.Equal(t, "400/s", split.Scenario.Load.Rate, "sped up: 27.7 s at 200/s is over loadTarget")
	assert.Equal(t, "13.9s", split.Scenario.Load.Duration, "about 5,530 requests at 400/s for 70/30 at the default power")
}

// An HTTPRoute's split is judged at its backends' weights among the
// parent's versions, on a topology that has the backends' Services.
func TestGatewayRouteSplit(t *testing.T) {
	p := plan(t, gammaRoute)
	var split *derive.Check
	for i := range p.Checks {
		if p.Checks[i].Name == "reviews-rule0-split" {
			split = &p.Checks[i]
		}
	}
	require.NotNil(t, split)
	assert.Equal(t, "HTTPRoute default/reviews", split.Resource)
	assert.Equal(t, map[string]any{"service": "reviews", "weights": map[string]float64{"v1": 90, "v3": 10}, "confidence": 1 - derive.DefaultAlpha, "variant": "matching"},
		split.Scenario.Expect[0]["split"])
	var selecting []string
	for _, s := range split.Scenario.Topology.Services {
		if s.Selects != nil {
			selecting = append(selecting, s.Name+"→"+s.Selects.Service+"/"+s.Selects.Version)
			assert.Empty(t, s.Versions, "a Service with selects has no pods")
		}
	}
	assert.Equal(t, []string{"reviews-v1→reviews/v1", "reviews-v3→reviews/v3", "reviews-v2→reviews/v2"}, selecting)
}

// An allow-nothing policy's check calls each closed service through the
// ingress gateway and wants 403; every scenario also applies the
// policies that let the loads in where they enter.
func TestAllowNothing(t *testing.T) {
	p := plan(t, allowNothingPay+`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ledger-deny}
spec:
  selector: {matchLabels: {app: ledger}}
  action: DENY
  rules: [{to: [{operation: {paths: [/admin]}}]}]
`)
	c := p.Checks[0]
	require.NotNil(t, c.Scenario)
	assert.Equal(t, "AuthorizationPolicy default/allow-nothing", c.Resource)
	assert.Contains(t, c.Promise, "(ledger)", "payment is opened by its policy, order is a caller")
	require.Len(t, c.Scenario.Load.Variants, 1)
	assert.Equal(t, "ledger", c.Scenario.Load.Variants[0].Target)
	assert.Equal(t, []map[string]any{{"status": map[string]any{"code": 403, "min": 0.99, "variant": "ledger"}}}, c.Scenario.Expect)
	for _, c := range p.Checks {
		if c.Scenario != nil {
			assert.Contains(t, c.Scenario.Mesh, map[string]string{"file": derive.EntryFile}, c.Name)
		}
	}
	dir := t.TempDir()
	_, err := p.Write(dir)
	require.NoError(t, err)
	entry, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(derive.EntryFile)))
	require.NoError(t, err)
	for _, name := range []string{"meshbench-entry-client", "meshbench-entry-order"} {
		assert.Contains(t, string(entry), name)
	}
	assert.NotContains(t, string(entry), "meshbench-entry-ledger")

	// Without an allow-nothing policy, no entry policies.
	p = plan(t, subsets)
	_, err = p.Write(dir)
	require.NoError(t, err)
	for _, c := range p.Checks {
		if c.Scenario != nil {
			assert.NotContains(t, c.Scenario.Mesh, map[string]string{"file": derive.EntryFile})
		}
	}
}

// A STRICT policy's check looks for mTLS at the services with pods: a
// Gateway API backend Service that selects a version has none, and its
// requests are counted at the service whose pods answer.
func TestStrictCheckLeavesOutSelectingServices(t *testing.T) {
	p := plan(t, gammaRoute+`---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
`)
	var strict *derive.Check
	for i := range p.Checks {
		if p.Checks[i].Resource == "PeerAuthentication istio-system/default" && p.Checks[i].Scenario != nil {
			strict = &p.Checks[i]
		}
	}
	require.NotNil(t, strict)
	var services []string
	for _, e := range strict.Scenario.Expect {
		if m, ok := e["security"].(map[string]any); ok {
			services = append(services, fmt.Sprint(m["service"]))
		}
	}
	assert.Contains(t, services, "reviews")
	for _, s := range services {
		assert.NotRegexp(t, `^reviews-v\d$`, s, "a selecting Service has no pods to report it")
	}
}

// An outlier check on a rule whose connection pool refuses beyond a few
// requests in flight keeps its load within half the pool, so that the
// pool's overflows (its own promise) cannot fail the success rate on a
// slow machine; without a pool the load is open-loop.
func TestOutlierLoadStaysWithinThePool(t *testing.T) {
	for _, tc := range []struct {
		pool string
		want int
	}{
		{"connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}", 1},
		{"connectionPool: {http: {http2MaxRequests: 10}}", 5},
		{"connectionPool: {tcp: {maxConnections: 1}}", 0}, // only queues: no overflow to avoid
		{"", 0},
	} {
		p := plan(t, `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: payment}
spec:
  host: payment
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 2}
    `+tc.pool+"\n")
		i := slices.IndexFunc(p.Checks, func(c derive.Check) bool { return c.Name == "payment-outlier" })
		require.GreaterOrEqual(t, i, 0, "%q", checks(p))
		assert.Equal(t, tc.want, p.Checks[i].Scenario.Load.Concurrency, "%s", tc.pool)
	}
}

// An outlier check also judges the requests sent after the rule's interval
// (Envoy's default 10s when unset): the failing pod is ejected at its k-th
// consecutive 5xx, so past the interval only its returns (after base ×
// the times it was ejected, at a sweep) cost errors, k each. The load runs
// long enough past the interval for a bound well above what a pod never
// ejected would leave (half the requests failing with two pods).
func TestOutlierSuccessAfterTheInterval(t *testing.T) {
	for _, tc := range []struct {
		od       string
		after    string
		minAfter float64 // the lowest bound acceptable here
	}{
		{"{consecutive5xxErrors: 2}", "10s", 0.95},
		{"{consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 3m, maxEjectionPercent: 100}", "1s", 0.95},
		{"{consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 30s}", "1s", 0.95},
		// Returns every second or so: more errors past the interval, and a
		// longer load to keep the bound.
		{"{consecutive5xxErrors: 5, interval: 1s, baseEjectionTime: 1s}", "1s", 0.9},
	} {
		p := plan(t, `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: payment}
spec:
  host: payment
  trafficPolicy:
    outlierDetection: `+tc.od+"\n")
		i := slices.IndexFunc(p.Checks, func(c derive.Check) bool { return c.Name == "payment-outlier" })
		require.GreaterOrEqual(t, i, 0, "%q", checks(p))
		sc := p.Checks[i].Scenario
		var after map[string]any
		for _, e := range sc.Expect {
			if m, ok := e["successRate"].(map[string]any); ok && m["after"] != nil {
				after = m
			}
		}
		require.NotNil(t, after, "%s: %v", tc.od, sc.Expect)
		assert.Equal(t, tc.after, after["after"], tc.od)
		assert.GreaterOrEqual(t, after["min"].(float64), tc.minAfter, tc.od)
		assert.Less(t, after["min"].(float64), 1.0, tc.od)
		dur, err := time.ParseDuration(sc.Load.Duration)
		require.NoError(t, err)
		window, _ := time.ParseDuration(tc.after)
		sent := (dur - window).Seconds() * float64(derive.DefaultRate)
		assert.GreaterOrEqual(t, sent, 200.0, "%s: %s of load, %s of it past the interval", tc.od, dur, dur-window)
		assert.Contains(t, p.Checks[i].Promise, "of the requests sent after the "+tc.after+" interval")
	}
}

// Each mirror's scenario loads, and fails the mirror's pods only: the
// subset's version, or every version of a mirror without one.
func TestMirrorsScenarios(t *testing.T) {
	p := plan(t, paymentMirrors)
	files, err := p.Write(t.TempDir())
	require.NoError(t, err)
	failing := map[string][]string{}
	for _, f := range files {
		sc, err := spec.LoadFile(f)
		require.NoError(t, err, f)
		for _, s := range sc.Topology.Services {
			for _, v := range s.Versions {
				if v.ErrorRate == 1 {
					failing[sc.Name] = append(failing[sc.Name], s.Name+"/"+v.Name)
				}
			}
		}
	}
	assert.Equal(t, map[string][]string{"payment-mirror0": {"payment/v2"}, "payment-mirror1": {"audit/v1"}}, failing)
}

// A mirror's copies must reach it: its sidecars' count of what they
// received (security, policy any) is at least a one-sided binomial lower
// bound on the copies of the load's requests at the design's alpha, the
// load sized for about 100 copies; none at 0%. A mirror that also
// receives the route's own requests cannot show its copies apart.
func TestMirrorArrival(t *testing.T) {
	p := plan(t, paymentMirrors+`        - destination: {host: ledger}
          percentage: {value: 0}
`)
	byName := map[string]*derive.Scenario{}
	promises := map[string]string{}
	for _, c := range p.Checks {
		if c.Scenario != nil {
			byName[c.Name], promises[c.Name] = c.Scenario, c.Promise
		}
	}
	require.Contains(t, byName, "payment-mirror0")
	assert.Len(t, byName["payment-mirror0"].Expect, 1, "payment/v2 also receives the route's requests")
	assert.Contains(t, promises["payment-mirror0"], "not checked: payment also receives the route's own requests")

	audit := byName["payment-mirror1"]
	require.NotNil(t, audit)
	assert.Equal(t, "5s", audit.Load.Duration, "1,000 requests at 200/s: about 100 copies at 10%")
	require.Len(t, audit.Expect, 2)
	sec := audit.Expect[1]["security"].(map[string]any)
	assert.Equal(t, "audit", sec["service"])
	assert.Equal(t, "any", sec["policy"])
	k := sec["min"].(int)
	assert.LessOrEqual(t, stats.BinomialLessP(k-1, 1000, 0.1), 1e-6, "a true 10%% falls below it with chance at most alpha")
	assert.Greater(t, k, 50)
	assert.Contains(t, promises["payment-mirror1"], fmt.Sprintf("audit receives the copies: at least %d of 1000 requests' (10%%)", k))

	ledger := byName["payment-mirror2"]
	require.NotNil(t, ledger)
	assert.Equal(t, map[string]any{"service": "ledger", "policy": "any", "max": 0}, ledger.Expect[1]["security"])

	// The files load, and the loader takes policy any.
	files, err := p.Write(t.TempDir())
	require.NoError(t, err)
	for _, f := range files {
		_, err := spec.LoadFile(f)
		require.NoError(t, err, f)
	}
}

// mirror's share is mirrorPercentage, else the deprecated mirrorPercent
// (route.go MirrorPercent), and sizes the load.
func TestMirrorPercentages(t *testing.T) {
	p := plan(t, paymentRoutes+`    - route: [{destination: {host: payment, subset: v1}}]
      mirror: {host: audit}
      mirrorPercent: 5
`)
	var c *derive.Check
	for i := range p.Checks {
		if p.Checks[i].Name == "payment-mirror" {
			c = &p.Checks[i]
		}
	}
	require.NotNil(t, c)
	assert.True(t, strings.HasPrefix(c.Promise, "mirrors 5% to audit"), c.Promise)
	assert.Equal(t, "10s", c.Scenario.Load.Duration, "2,000 requests at 200/s: about 100 copies at 5%")
}

// Caller status does not depend on the order of the files: with the
// AuthorizationPolicy first or last, reviews keeps its versions and pods,
// and stays a target of the STRICT and allow-nothing checks.
func TestCallersWhateverTheOrder(t *testing.T) {
	strict := `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing}
spec: {}
`
	derived := func(names ...string) ([]string, []string) {
		files := map[string]string{"policy.yaml": ratingsPolicy, "reviews.yaml": reviewsSubsets, "mesh.yaml": strict}
		var in []spec.IstioInput
		for _, n := range names {
			in = append(in, spec.IstioInput{Name: n, Data: []byte(files[n])})
		}
		p, err := derive.Derive(in, derive.Options{})
		require.NoError(t, err)
		topo := topology(p)
		slices.Sort(topo)
		// The checks, with the services a check names in its promise
		// (in the topology's order, which follows the files') sorted.
		var promises []string
		for _, c := range p.Checks {
			text := c.Name + ": " + c.Promise
			if i := strings.LastIndex(text, " ("); i >= 0 && strings.HasSuffix(text, ")") {
				names := strings.Split(text[i+2:len(text)-1], ", ")
				slices.Sort(names)
				text = text[:i] + " (" + strings.Join(names, ", ") + ")"
			}
			promises = append(promises, text)
		}
		slices.Sort(promises)
		return topo, promises
	}
	lastTopo, lastChecks := derived("reviews.yaml", "mesh.yaml", "policy.yaml")
	firstTopo, firstChecks := derived("policy.yaml", "reviews.yaml", "mesh.yaml")
	assert.Equal(t, []string{"ratings@5: v1×2@5", "reviews@5: v1×2@6 v2×2@6"}, lastTopo)
	assert.Equal(t, lastTopo, firstTopo)
	assert.Equal(t, lastChecks, firstChecks)
	joined := strings.Join(firstChecks, "\n")
	assert.Contains(t, joined, "accepted (ratings, reviews)", "reviews is a target of the STRICT check")
	// reviews is where the load enters to call ratings as reviews: its
	// entry policy lets the load in, so the allow-nothing check cannot
	// expect a 403 there, and ratings is opened by its own policy.
	assert.Contains(t, joined, "allow-nothing-not-checked")
}

// The checks group by the resource that promises them, each group at the
// resource's first line, in the input's order.
func TestByResource(t *testing.T) {
	p := plan(t, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-mallory}
spec:
  selector: {matchLabels: {app: payment}}
  action: DENY
  rules:
    - when: [{key: "request.headers[end-user]", values: [mallory]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: payment}
spec:
  host: payment
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: payment-callers}
spec:
  selector: {matchLabels: {app: payment}}
  rules:
    - from: [{source: {principals: [cluster.local/ns/default/sa/order]}}]
      to: [{operation: {methods: [POST], paths: [/pay]}}]
`)
	var got []string
	for _, g := range p.ByResource() {
		line := fmt.Sprintf("%s@%s:", g.Resource, g.Source)
		for _, c := range g.Checks {
			if c.Scenario != nil {
				line += " " + c.Name
			} else {
				line += fmt.Sprintf(" not-checked@%d", c.Source.Line)
			}
		}
		got = append(got, line)
	}
	assert.Equal(t, []string{
		"AuthorizationPolicy default/deny-mallory@in.yaml:1: deny-mallory-rule0-authz",
		"DestinationRule default/payment@in.yaml:10: not-checked@15",
		"AuthorizationPolicy default/payment-callers@in.yaml:17: payment-callers-rule0-authz payment-callers-rule0-authz-other-path payment-callers-rule0-authz-other-method",
	}, got)
}

// A route's method match is exercised with a method it takes (never
// HEAD, whose answers carry no version), the sample app calling on with
// it, and the POSTs it does not take must land on the route after it.
func TestMethodMatchSendsItsMethod(t *testing.T) {
	for _, tc := range []struct {
		match, method, why string
	}{
		{"{exact: GET}", "GET", ""},
		{"{prefix: P}", "", ""}, // POST is the first method it takes: the load's own
		{"{regex: \"DEL.*\"}", "DELETE", ""},
		{"{exact: HEAD}", "", "its method match takes none of POST, GET, PUT, DELETE, PATCH, OPTIONS"},
	} {
		p := plan(t, paymentRoutes+`    - match: [{method: `+tc.match+`}]
      route: [{destination: {host: payment, subset: canary}}]
    - route: [{destination: {host: payment, subset: v1}}]
`)
		i := slices.IndexFunc(p.Checks, func(c derive.Check) bool { return c.Name == "payment-http0-match" })
		if tc.why != "" {
			require.Less(t, i, 0, tc.match)
			j := slices.IndexFunc(p.Checks, func(c derive.Check) bool { return c.Scenario == nil && strings.Contains(c.NotChecked, tc.why) })
			assert.GreaterOrEqual(t, j, 0, "%s: %q", tc.match, checks(p))
			continue
		}
		require.GreaterOrEqual(t, i, 0, "%s: %q", tc.match, checks(p))
		sc := p.Checks[i].Scenario
		require.NotEmpty(t, sc.Load.Variants, tc.match)
		assert.Equal(t, "matching", sc.Load.Variants[0].Name)
		assert.Equal(t, tc.method, sc.Load.Variants[0].Method, tc.match)
		if tc.method != "" {
			require.Len(t, sc.Load.Variants, 2, "%s: the POSTs are the others", tc.match)
			assert.Equal(t, "others", sc.Load.Variants[1].Name)
			assert.Empty(t, sc.Load.Variants[1].Method, "POST, the load's")
			assert.Contains(t, p.Checks[i].Promise, "method "+tc.method+", path /payment")
		}
	}
}
