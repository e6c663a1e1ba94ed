package spec

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// Istio's validation of the resilience fields, one file per class of
// problem; each error names its file, line and field.
func TestValidateResilienceErrors(t *testing.T) {
	runErrorCases(t, []errorCase{
		// agent.ValidateDuration: at least 1ms, whole milliseconds.
		{"resilience-durations.yaml", []wantError{
			{Line: 14, Field: "mesh[0].spec.http[0].timeout", Msg: "timeout -1s: duration must be greater than 1ms"},
			{Line: 17, Field: "mesh[0].spec.http[0].retries.perTryTimeout", Msg: "perTryTimeout 500µs: duration must be greater than 1ms"},
			{Line: 18, Field: "mesh[0].spec.http[0].retries.backoff", Msg: "backoff 1.5ms: only durations to ms precision are supported"},
			{Line: 28, Field: "mesh[1].spec.trafficPolicy.outlierDetection.interval", Msg: "interval 0s: duration must be greater than 1ms"},
			{Line: 29, Field: "mesh[1].spec.trafficPolicy.outlierDetection.baseEjectionTime", Msg: "baseEjectionTime -30s: duration must be greater than 1ms"},
		}},
		// agent.ValidateHTTPRetry.
		{"resilience-attempts.yaml", []wantError{
			{Line: 17, Field: "mesh[0].spec.http[0].retries.attempts", Msg: "attempts cannot be negative (it is -1)"},
			{Line: 21, Field: "mesh[0].spec.http[1].retries.attempts", Msg: "http retry policy configured when attempts are set to 0 (disabled)"},
		}},
		// supportedRetryOnPolicies, and numbers that net/http knows as statuses.
		{"resilience-retry-on.yaml", []wantError{
			{Line: 19, Field: "mesh[0].spec.http[0].retries.retryOn", Msg: `"gateway-eror" is not a valid retryOn policy: want a comma-separated list of HTTP status codes and of 5xx, gateway-error,`},
			{Line: 26, Field: "mesh[0].spec.http[1].retries.retryOn", Msg: `"599" is not a valid retryOn policy: 599 is not an HTTP status code`},
			{Line: 26, Field: "mesh[0].spec.http[1].retries.retryOn", Msg: `" reset" is not a valid retryOn policy: Istio does not trim spaces; write "reset"`},
			{Line: 26, Field: "mesh[0].spec.http[1].retries.retryOn", Msg: `"" is not a valid retryOn policy: empty item`},
		}},
		// validateHTTPFaultInjection, validatePercentage, Envoy's [200, 600).
		{"resilience-fault.yaml", []wantError{
			{Line: 19, Field: "mesh[0].spec.http[0].fault.abort.percentage.value", Msg: "percentage 150 is neither 0.0, nor in range [0.0001, 100.0]"},
			{Line: 22, Field: "mesh[0].spec.http[0].fault.delay.percentage.value", Msg: "percentage -5 is neither 0.0, nor in range [0.0001, 100.0]"},
			{Line: 29, Field: "mesh[0].spec.http[1].fault.abort.httpStatus", Msg: "HTTP status 600 is not in range 200-599"},
			{Line: 36, Field: "mesh[0].spec.http[2].fault.abort.httpStatus", Msg: "HTTP status 199 is not in range 200-599"},
			{Line: 39, Field: "mesh[0].spec.http[3].fault", Msg: "HTTP fault injection must have an abort and/or a delay"},
		}},
		// validateHTTPRoute, validateHTTPMirrors and validateHTTPRouteConflict.
		{"resilience-mirror.yaml", []wantError{
			{Line: 16, Field: "mesh[0].spec.http[0].mirrorPercentage.value", Msg: "mirror_percentage must have a max value of 100 (it has 150)"},
			{Line: 23, Field: "mesh[0].spec.http[1].mirrors[1].percentage.value", Msg: "mirror percentage must have a min value of 0 (it has -1)"},
			{Line: 27, Field: "mesh[0].spec.http[2].mirrors", Msg: "HTTP route cannot contain both mirror and mirrors"},
		}},
		// validateOutlierDetection: ValidatePercent, on the host and a subset.
		{"resilience-outlier.yaml", []wantError{
			{Line: 14, Field: "mesh[0].spec.trafficPolicy.outlierDetection.maxEjectionPercent", Msg: "percentage 101 is not in range 0..100"},
			{Line: 20, Field: "mesh[0].spec.subsets[0].trafficPolicy.outlierDetection.minHealthPercent", Msg: "percentage 120 is not in range 0..100"},
		}},
		// validateConnectionPool.
		{"resilience-connection-pool.yaml", []wantError{
			{Line: 13, Field: "mesh[0].spec.trafficPolicy.connectionPool.tcp.maxConnections", Msg: "max connections must be non-negative (it is -1)"},
			{Line: 15, Field: "mesh[0].spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests", Msg: "http1 max pending requests must be non-negative (it is -1)"},
			{Line: 20, Field: "mesh[0].spec.subsets[0].trafficPolicy.connectionPool", Msg: "connection pool must have at least one field"},
		}},
		// Stricter than Istio: Envoy refuses an empty hash header name.
		{"resilience-consistent-hash.yaml", []wantError{
			{Line: 14, Field: "mesh[0].spec.trafficPolicy.loadBalancer.consistentHash.httpHeaderName", Msg: "httpHeaderName is empty"},
		}},
	})
}

// meshConfig.defaultHttpRetryPolicy gets ValidateHTTPRetry too.
func TestValidateResilienceMeshRetryPolicy(t *testing.T) {
	_, err := LoadFS(fstest.MapFS{"x.yaml": {Data: []byte(
		"name: x\nmeshConfig:\n  defaultHttpRetryPolicy:\n    attempts: 2\nload: {target: order, rate: 10/s, duration: 1s}\nexpect:\n  - successRate: {min: 0.5}\n",
	)}}, "x.yaml", "x.yaml")
	require.NoError(t, err, "a valid mesh-wide retry policy loads")
	runErrorCases(t, []errorCase{
		{"resilience-mesh-retry.yaml", []wantError{
			{Line: 7, Field: "meshConfig.defaultHttpRetryPolicy.perTryTimeout", Msg: "perTryTimeout 100µs: duration must be greater than 1ms"},
			{Line: 8, Field: "meshConfig.defaultHttpRetryPolicy.retryOn", Msg: `"retriable-status-code" is not a valid retryOn policy`},
		}},
	})
}

// The mesh retry policy checks, on the validator directly.
func TestMeshRetryPolicyChecks(t *testing.T) {
	const doc = "name: x\nmeshConfig:\n  defaultHttpRetryPolicy:\n    attempts: -2\n    retryOn: 5xx,retriable-status-code\n"
	var n yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(doc), &n))
	l := &loader{display: "x.yaml", ix: indexNode(n.Content[0])}
	policy := l.ix.values["meshConfig.defaultHttpRetryPolicy"]
	require.NotNil(t, policy)
	v := &validator{l: l, s: &Scenario{MeshConfig: &MeshConfigSpec{DefaultHTTPRetryPolicy: *policy}}}
	v.meshRetryPolicy()
	var got []string
	for _, e := range l.errs {
		got = append(got, e.Error())
	}
	assert.Equal(t, []string{
		"x.yaml:4: meshConfig.defaultHttpRetryPolicy.attempts: attempts cannot be negative (it is -2); 0 disables retries",
		`x.yaml:5: meshConfig.defaultHttpRetryPolicy.retryOn: "retriable-status-code" is not a valid retryOn policy: want a comma-separated list of HTTP status codes and of ` +
			strings.Join(retryOnPolicies, ", ") + ` (did you mean "retriable-status-codes"?)`,
	}, got)

	// A policy that does not decode is reported where the settings are read, not twice.
	l = &loader{display: "x.yaml", ix: indexNode(n.Content[0])}
	bad := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "often", Line: 3}
	v = &validator{l: l, s: &Scenario{MeshConfig: &MeshConfigSpec{DefaultHTTPRetryPolicy: *bad}}}
	v.meshRetryPolicy()
	assert.Empty(t, l.errs)
}

// What Istio accepts stays accepted; each case differs from a valid
// scenario in one place.
func TestValidateResilienceInline(t *testing.T) {
	const dr = `  - apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: payment}
    spec:
      host: payment
      subsets:
        - {name: v1, labels: {version: v1}}
        - {name: v2, labels: {version: v2}}
`
	const tail = "load: {target: order, rate: 100/s, duration: 1s}\nexpect:\n  - successRate: {min: 0.99}\n"
	vs := func(route string) string {
		return "  - {apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: p}, spec: {hosts: [payment], http: [{route: [{destination: {host: payment}}], " + route + "}]}}\n"
	}
	rule := func(policy string) string {
		return "  - {apiVersion: networking.istio.io/v1, kind: DestinationRule, metadata: {name: o}, spec: {host: order, trafficPolicy: " + policy + "}}\n"
	}
	for _, tc := range []struct {
		name, mesh, want string // want "" means valid
	}{
		{"timeout 1ms", vs("timeout: 1ms"), ""},
		{"timeout 0s", vs("timeout: 0s"), "x.yaml:11: mesh[1].spec.http[0].timeout: timeout 0s: duration must be greater than 1ms"},
		{"timeout 100us", vs("timeout: 100us"), "mesh[1].spec.http[0].timeout: timeout 100µs: duration must be greater than 1ms"},
		{"attempts 0 alone disables", vs("retries: {attempts: 0}"), ""},
		{"attempts 0 with perTryTimeout", vs("retries: {attempts: 0, perTryTimeout: 1s}"), "mesh[1].spec.http[0].retries.attempts: http retry policy configured when attempts are set to 0"},
		{"attempts 0 with retryRemoteLocalities", vs("retries: {attempts: 0, retryRemoteLocalities: false}"), "mesh[1].spec.http[0].retries.attempts: http retry policy configured when attempts are set to 0"},
		{"grpc conditions and codes", vs(`retries: {attempts: 2, retryOn: "cancelled,deadline-exceeded,internal,resource-exhausted,unavailable,503,200,reset-before-request,http3-post-connect-failure"}`), ""},
		{"status code 600", vs(`retries: {attempts: 2, retryOn: "600"}`), `"600" is not a valid retryOn policy: 600 is not an HTTP status code`},
		{"upper case condition", vs(`retries: {attempts: 2, retryOn: "5XX"}`), `"5XX" is not a valid retryOn policy`},
		{"space before a code", vs(`retries: {attempts: 2, retryOn: "5xx, 503"}`), `" 503" is not a valid retryOn policy: Istio does not trim spaces; write "503"`},
		{"perTryTimeout 10ms", vs("retries: {attempts: 2, perTryTimeout: 10ms, backoff: 25ms}"), ""},
		{"abort 200", vs("fault: {abort: {httpStatus: 200, percentage: {value: 100}}}"), ""},
		{"abort 599", vs("fault: {abort: {httpStatus: 599}}"), ""},
		{"abort without status", vs("fault: {abort: {percentage: {value: 10}}}"), "mesh[1].spec.http[0].fault.abort: abort configured, but error type not set"},
		{"abort percentage 0", vs("fault: {abort: {httpStatus: 503, percentage: {value: 0}}}"), ""},
		{"abort percentage too small", vs("fault: {abort: {httpStatus: 503, percentage: {value: 0.00001}}}"), "percentage 1e-05 is neither 0.0, nor in range [0.0001, 100.0]"},
		{"delay of 0s", vs("fault: {delay: {fixedDelay: 0s, percentage: {value: 10}}}"), "mesh[1].spec.http[0].fault.delay.fixedDelay: fixedDelay 0s: duration must be greater than 1ms"},
		{"exponential delay", vs("fault: {delay: {exponentialDelay: 1s}}"), "mesh[1].spec.http[0].fault.delay.exponentialDelay: exponentialDelay not supported yet"},
		{"mirror 0", vs("mirror: {host: payment, subset: v2}, mirrorPercentage: {value: 0}"), ""},
		{"mirrors 0 and 100", vs("mirrors: [{destination: {host: order}, percentage: {value: 100}}, {destination: {host: payment, subset: v2}, percentage: {value: 0}}]"), ""},
		{"mirror and mirrors", vs("mirror: {host: payment, subset: v2}, mirrors: [{destination: {host: order}}]"), "x.yaml:11: mesh[1].spec.http[0].mirrors: HTTP route cannot contain both mirror and mirrors"},
		{"deprecated mirrorPercent", vs("mirror: {host: payment}, mirrorPercent: 101"), "mesh[1].spec.http[0].mirrorPercent: mirror_percent must have a max value of 100 (it has 101)"},
		{"ejection percents 0 and 100", rule("{outlierDetection: {maxEjectionPercent: 100, minHealthPercent: 0, interval: 1ms, baseEjectionTime: 1s}}"), ""},
		{"negative maxEjectionPercent", rule("{outlierDetection: {maxEjectionPercent: -1}}"), "mesh[1].spec.trafficPolicy.outlierDetection.maxEjectionPercent: percentage -1 is not in range 0..100"},
		{"local origin failures without split", rule("{outlierDetection: {consecutiveLocalOriginFailures: 2}}"), "consecutive local origin failures is specified, but split external local origin errors is set to false"},
		{"local origin failures with split", rule("{outlierDetection: {consecutiveLocalOriginFailures: 2, splitExternalLocalOriginErrors: true}}"), ""},
		{"port level settings", rule("{portLevelSettings: [{port: {number: 80}, outlierDetection: {interval: 1us}}]}"), "mesh[1].spec.trafficPolicy.portLevelSettings[0].outlierDetection.interval: interval 1µs: duration must be greater than 1ms"},
		{"pool limits of 0 and more", rule("{connectionPool: {tcp: {maxConnections: 0, connectTimeout: 10ms}, http: {http2MaxRequests: 5, maxRetries: 0, idleTimeout: 1s}}}"), ""},
		{"negative max retries", rule("{connectionPool: {http: {maxRetries: -3}}}"), "mesh[1].spec.trafficPolicy.connectionPool.http.maxRetries: max retries must be non-negative (it is -3)"},
		{"hash on a header", rule("{loadBalancer: {consistentHash: {httpHeaderName: x-user}}}"), ""},
		{"hash on a bad header name", rule(`{loadBalancer: {consistentHash: {httpHeaderName: "x user"}}}`), `invalid header name "x user"`},
		{"hash on the source IP", rule("{loadBalancer: {consistentHash: {useSourceIp: true}}}"), ""},
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
			assert.Len(t, err.(Errors), 1, "one problem, reported once: %v", err)
		})
	}
}

// The retryOn list is Istio's supportedRetryOnPolicies (16 conditions);
// numbers are fine when net/http knows them as statuses.
func TestRetryOnPoliciesMatchIstio(t *testing.T) {
	assert.Len(t, retryOnPolicies, 16)
	for _, p := range retryOnPolicies {
		assert.Empty(t, retryOnProblem(p), p)
	}
	for _, p := range []string{"100", "200", "429", "503", "504", "511"} {
		assert.Empty(t, retryOnProblem(p), p)
	}
	for _, p := range []string{"0", "-503", "99", "599", "1000", "5xx ", "gateway_error", ""} {
		assert.NotEmpty(t, retryOnProblem(p), p)
	}
}
