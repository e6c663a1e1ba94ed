package spec

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/meshbench/meshbench/internal/suggest"
	"github.com/meshbench/meshbench/scenarios/spec/protoyaml"
	"github.com/meshbench/meshbench/scenarios/spec/yamlnode"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// This file checks the resilience fields of the Istio resources the way
// Istio's admission webhook does, so that a scenario Istio would refuse is
// refused here too, at its file, line and field, rather than run with
// config no real mesh would take:
//
//   - VirtualService http routes: timeout, retries, fault, mirrors
//     (validateHTTPRoute and validateHTTPRouteConflict in
//     pkg/config/validation/virtualservice.go,
//     ValidateHTTPRetry and ValidateDuration in
//     pkg/config/validation/agent/validation.go, validateHTTPFaultInjection,
//     validatePercentage and validateHTTPMirrors in
//     pkg/config/validation/validation.go);
//   - DestinationRule traffic policies, of the host, its ports and its
//     subsets: outlier detection, connection pool, consistent hash
//     (validateTrafficPolicy, validateOutlierDetection,
//     validateConnectionPool, validateLoadBalancer in validation.go);
//   - meshConfig.defaultHttpRetryPolicy, with ValidateHTTPRetry.
//
// Where meshbench is stricter than Istio the comment says so and why: in
// each case Istio accepts the value and Envoy then refuses the resource
// (the builtin sidecar NACKs it, as Envoy would) or silently ignores it.

// fieldErr reports a problem at a field path relative to what is checked.
type fieldErr func(p, format string, args ...any)

// resilience checks the resilience fields of every VirtualService and
// DestinationRule, and the mesh's default retry policy.
func (v *validator) resilience(objs []*meshObject) {
	for _, o := range objs {
		bad := func(p, format string, args ...any) { v.objErr(o, p, format, args...) }
		switch {
		case o.vs != nil:
			for i, r := range o.vs.Spec.GetHttp() {
				httpRouteResilience(bad, yamlnode.Item("spec.http", i), r)
			}
		case o.dr != nil:
			trafficPolicyResilience(bad, "spec.trafficPolicy", o.dr.Spec.GetTrafficPolicy())
			for i, sub := range o.dr.Spec.GetSubsets() {
				trafficPolicyResilience(bad, yamlnode.Item("spec.subsets", i)+".trafficPolicy", sub.GetTrafficPolicy())
			}
		}
	}
	v.meshRetryPolicy()
}

// meshRetryPolicy checks meshConfig.defaultHttpRetryPolicy with Istio's
// ValidateHTTPRetry. Stricter than Istio: ValidateMeshConfig checks only
// defaultInboundHttpRetryPolicy (validation.go
// validateMeshConfigDefaultInboundHTTPRetryPolicy), yet the outbound default
// becomes the retry policy of every route that sets none, where an unknown
// retryOn token would be dropped silently by Envoy, or make the builtin
// sidecar NACK every route.
// Problems of the spec itself (unknown fields, types) are reported where the
// mesh settings are read; this only looks at a policy that decodes.
func (v *validator) meshRetryPolicy() {
	mc := v.s.MeshConfig
	if mc == nil || mc.DefaultHTTPRetryPolicy.Kind == 0 {
		return
	}
	const p = "meshConfig.defaultHttpRetryPolicy"
	c := &protoyaml.Converter{Report: func(int, string, string) {}}
	policy := &networking.HTTPRetry{}
	c.Decode(&mc.DefaultHTTPRetryPolicy, p, policy)
	if c.Failed {
		return
	}
	retryResilience(func(f, format string, args ...any) { v.l.at(yamlnode.Join(p, f), format, args...) }, "", policy)
}

// httpRouteResilience checks one VirtualService http route at p.
func httpRouteResilience(bad fieldErr, p string, r *networking.HTTPRoute) {
	if r.GetTimeout() != nil {
		// Istio's webhook refuses any timeout under 1ms, 0s included, though
		// route.go would translate 0s as "no timeout".
		checkDuration(bad, p+".timeout", "timeout", r.GetTimeout())
	}
	retryResilience(bad, p+".retries", r.GetRetries())
	faultResilience(bad, p+".fault", r.GetFault())
	if mp := xdsgen.DeprecatedMirrorPercent(r); mp != nil && mp.GetValue() > 100 {
		bad(p+".mirrorPercent", "mirror_percent must have a max value of 100 (it has %d)", mp.GetValue())
	}
	if mp := r.GetMirrorPercentage(); mp != nil {
		mirrorPercentage(bad, p+".mirrorPercentage.value", "mirror_percentage", mp.GetValue())
	}
	// validateHTTPRouteConflict in Istio's
	// pkg/config/validation/virtualservice.go: "HTTP route cannot contain
	// both mirror and mirrors" (the sidecar would otherwise have to pick
	// one, or send both sets of copies).
	if r.GetMirror() != nil && len(r.GetMirrors()) > 0 {
		bad(p+".mirrors", "HTTP route cannot contain both mirror and mirrors")
	}
	for i, m := range r.GetMirrors() {
		if m.GetPercentage() != nil {
			mirrorPercentage(bad, yamlnode.Item(p+".mirrors", i)+".percentage.value", "mirror percentage", m.GetPercentage().GetValue())
		}
	}
}

// mirrorPercentage is validateHTTPRoute's and validateHTTPMirrors' check of
// a mirror percentage: 0 to 100 (0 mirrors nothing).
func mirrorPercentage(bad fieldErr, p, what string, value float64) {
	switch {
	case value > 100:
		bad(p, "%s must have a max value of 100 (it has %g)", what, value)
	case value < 0:
		bad(p, "%s must have a min value of 0 (it has %g)", what, value)
	}
}

// retryOnPolicies are the retry conditions Istio accepts in retryOn
// (supportedRetryOnPolicies in pkg/config/validation/agent/validation.go):
// Envoy's x-envoy-retry-on values, then its x-envoy-retry-grpc-on values.
var retryOnPolicies = []string{
	"5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "retriable-4xx",
	"refused-stream", "retriable-status-codes", "retriable-headers", "envoy-ratelimited", "http3-post-connect-failure",
	"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
}

// retryResilience is Istio's ValidateHTTPRetry for the policy at p.
func retryResilience(bad fieldErr, p string, r *networking.HTTPRetry) {
	if r == nil {
		return
	}
	if r.GetAttempts() < 0 {
		bad(yamlnode.Join(p, "attempts"), "attempts cannot be negative (it is %d); 0 disables retries", r.GetAttempts())
	}
	if r.GetAttempts() == 0 && (r.GetPerTryTimeout() != nil || r.GetRetryOn() != "" || r.GetRetryRemoteLocalities() != nil) {
		bad(yamlnode.Join(p, "attempts"), "http retry policy configured when attempts are set to 0 (disabled); set attempts, or drop the other retry settings")
	}
	if r.GetPerTryTimeout() != nil {
		checkDuration(bad, yamlnode.Join(p, "perTryTimeout"), "perTryTimeout", r.GetPerTryTimeout())
	}
	if r.GetBackoff() != nil {
		checkDuration(bad, yamlnode.Join(p, "backoff"), "backoff", r.GetBackoff())
	}
	if r.GetRetryOn() == "" {
		return
	}
	// Istio splits on "," and does not trim (route/retry/retry.go does when
	// translating, but the webhook refuses " reset" first).
	for _, policy := range strings.Split(r.GetRetryOn(), ",") {
		if msg := retryOnProblem(policy); msg != "" {
			bad(yamlnode.Join(p, "retryOn"), "%q is not a valid retryOn policy: %s", policy, msg)
		}
	}
}

// retryOnProblem says what is wrong with one item of retryOn, or "".
func retryOnProblem(policy string) string {
	if contains(retryOnPolicies, policy) {
		return ""
	}
	// A number is a status code to retry on (retriable_status_codes) only if
	// it is a known HTTP status: ValidateHTTPRetry uses net/http.StatusText.
	if code, err := strconv.Atoi(policy); err == nil {
		if http.StatusText(code) != "" {
			return ""
		}
		return fmt.Sprintf("%d is not an HTTP status code", code)
	}
	switch t := strings.TrimSpace(policy); {
	case t == "":
		return "empty item; retryOn is a comma-separated list like 5xx,connect-failure,503"
	case t != policy && (contains(retryOnPolicies, t) || retryOnProblem(t) == ""):
		return fmt.Sprintf("Istio does not trim spaces; write %q", t)
	}
	return fmt.Sprintf("want a comma-separated list of HTTP status codes and of %s%s",
		strings.Join(retryOnPolicies, ", "), suggest.Hint(policy, retryOnPolicies))
}

// faultResilience is validateHTTPFaultInjection for the fault at p.
func faultResilience(bad fieldErr, p string, f *networking.HTTPFaultInjection) {
	if f == nil {
		return
	}
	if f.GetAbort() == nil && f.GetDelay() == nil {
		bad(p, "HTTP fault injection must have an abort and/or a delay")
	}
	if a := f.GetAbort(); a != nil {
		ap := p + ".abort"
		checkPercentage(bad, ap+".percentage.value", a.GetPercentage())
		switch e := a.GetErrorType().(type) {
		case *networking.HTTPFaultInjection_Abort_HttpStatus:
			// Istio's validateHTTPStatus admits 200..600, its message says
			// 200-599; Envoy's FaultAbort.http_status is [200, 600)
			// (extensions/filters/http/fault/v3/fault.proto), so 600 would be
			// NACKed. meshbench refuses it here.
			if e.HttpStatus < 200 || e.HttpStatus >= 600 {
				bad(ap+".httpStatus", "HTTP status %d is not in range 200-599", e.HttpStatus)
			}
		case *networking.HTTPFaultInjection_Abort_Http2Error:
			bad(ap+".http2Error", "HTTP/2 abort fault injection not supported yet")
		case nil:
			// Stricter than Istio, which only warns ("abort configured, but
			// error type not set"): such an abort aborts nothing.
			bad(ap, "abort configured, but error type not set; set httpStatus, like 503")
		}
	}
	if d := f.GetDelay(); d != nil {
		dp := p + ".delay"
		checkPercentage(bad, dp+".percentage.value", d.GetPercentage())
		switch t := d.GetHttpDelayType().(type) {
		case *networking.HTTPFaultInjection_Delay_FixedDelay:
			checkDuration(bad, dp+".fixedDelay", "fixedDelay", t.FixedDelay)
		case *networking.HTTPFaultInjection_Delay_ExponentialDelay:
			bad(dp+".exponentialDelay", "exponentialDelay not supported yet")
		}
	}
}

// checkPercentage is validatePercentage: 0, or 0.0001 to 100.
func checkPercentage(bad fieldErr, p string, pc *networking.Percent) {
	if pc == nil {
		return
	}
	if v := pc.GetValue(); v < 0 || v > 100 || (v > 0 && v < 0.0001) {
		bad(p, "percentage %v is neither 0.0, nor in range [0.0001, 100.0]", v)
	}
}

// trafficPolicyResilience checks the resilience parts of a traffic policy at
// p and of its port-level settings (validateTrafficPolicy,
// validatePortTrafficPolicies).
func trafficPolicyResilience(bad fieldErr, p string, tp *networking.TrafficPolicy) {
	if tp == nil {
		return
	}
	outlierResilience(bad, p+".outlierDetection", tp.GetOutlierDetection())
	connectionPoolResilience(bad, p+".connectionPool", tp.GetConnectionPool())
	loadBalancerResilience(bad, p+".loadBalancer", tp.GetLoadBalancer())
	for i, pl := range tp.GetPortLevelSettings() {
		pp := yamlnode.Item(p+".portLevelSettings", i)
		outlierResilience(bad, pp+".outlierDetection", pl.GetOutlierDetection())
		connectionPoolResilience(bad, pp+".connectionPool", pl.GetConnectionPool())
		loadBalancerResilience(bad, pp+".loadBalancer", pl.GetLoadBalancer())
	}
}

// outlierResilience is validateOutlierDetection.
func outlierResilience(bad fieldErr, p string, o *networking.OutlierDetection) {
	if o == nil {
		return
	}
	if o.GetBaseEjectionTime() != nil {
		checkDuration(bad, p+".baseEjectionTime", "baseEjectionTime", o.GetBaseEjectionTime())
	}
	if o.GetInterval() != nil {
		checkDuration(bad, p+".interval", "interval", o.GetInterval())
	}
	if !o.GetSplitExternalLocalOriginErrors() && o.GetConsecutiveLocalOriginFailures().GetValue() > 0 {
		bad(p+".consecutiveLocalOriginFailures", "outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false")
	}
	// ValidatePercent: both are percentages of the hosts, 0..100.
	for _, f := range []struct {
		name string
		v    int32
	}{{"maxEjectionPercent", o.GetMaxEjectionPercent()}, {"minHealthPercent", o.GetMinHealthPercent()}} {
		if f.v < 0 || f.v > 100 {
			bad(p+"."+f.name, "percentage %d is not in range 0..100", f.v)
		}
	}
}

// connectionPoolResilience is validateConnectionPool, for the limits and
// timeouts meshbench's sidecar applies.
func connectionPoolResilience(bad fieldErr, p string, cp *networking.ConnectionPoolSettings) {
	if cp == nil {
		return
	}
	if cp.GetHttp() == nil && cp.GetTcp() == nil {
		bad(p, "connection pool must have at least one field")
		return
	}
	if h := cp.GetHttp(); h != nil {
		hp := p + ".http"
		for _, f := range []struct {
			name, what string
			v          int32
		}{
			{"http1MaxPendingRequests", "http1 max pending requests", h.GetHttp1MaxPendingRequests()},
			{"http2MaxRequests", "http2 max requests", h.GetHttp2MaxRequests()},
			{"maxRequestsPerConnection", "max requests per connection", h.GetMaxRequestsPerConnection()},
			{"maxRetries", "max retries", h.GetMaxRetries()},
		} {
			if f.v < 0 {
				bad(hp+"."+f.name, "%s must be non-negative (it is %d)", f.what, f.v)
			}
		}
		if h.GetIdleTimeout() != nil {
			checkDuration(bad, hp+".idleTimeout", "idleTimeout", h.GetIdleTimeout())
		}
	}
	if t := cp.GetTcp(); t != nil {
		tp := p + ".tcp"
		if t.GetMaxConnections() < 0 {
			bad(tp+".maxConnections", "max connections must be non-negative (it is %d)", t.GetMaxConnections())
		}
		if t.GetConnectTimeout() != nil {
			checkDuration(bad, tp+".connectTimeout", "connectTimeout", t.GetConnectTimeout())
		}
	}
}

// loadBalancerResilience checks consistent hashing on a header. Stricter
// than Istio, whose validateLoadBalancer does not look at httpHeaderName:
// an empty name becomes a RouteAction.HashPolicy.Header with an empty
// header_name, which Envoy refuses (route_components.proto: min_len 1), so
// every route to the service would be NACKed.
func loadBalancerResilience(bad fieldErr, p string, lb *networking.LoadBalancerSettings) {
	ch := lb.GetConsistentHash()
	if ch == nil {
		return
	}
	if h, ok := ch.GetHashKey().(*networking.LoadBalancerSettings_ConsistentHashLB_HttpHeaderName); ok {
		if name := h.HttpHeaderName; name == "" {
			bad(p+".consistentHash.httpHeaderName", "httpHeaderName is empty: name the request header to hash on, like x-user")
		} else if !headerNameRE.MatchString(name) {
			bad(p+".consistentHash.httpHeaderName", "invalid header name %q", name)
		}
	}
}

// checkDuration is Istio's ValidateDuration (pkg/config/validation/agent):
// at least 1ms, in whole milliseconds.
func checkDuration(bad fieldErr, p, name string, d *durationpb.Duration) {
	dur := d.AsDuration()
	switch {
	case dur < time.Millisecond:
		bad(p, "%s %s: duration must be greater than 1ms", name, dur)
	case dur%time.Millisecond != 0:
		bad(p, "%s %s: only durations to ms precision are supported", name, dur)
	}
}
