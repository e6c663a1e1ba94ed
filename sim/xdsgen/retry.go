package xdsgen

import (
	"net/http"
	"strconv"
	"strings"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	previoushosts "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	previouspriorities "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"
)

// DefaultRetryOn is Istio's retry_on when a route sets no retries: no retriable
// status codes, so a 503 is not retried (pilot/pkg/networking/core/route/retry/retry.go defaultRetryOn).
const DefaultRetryOn = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"

// PreviousHostsPredicate is the retry host predicate Istio adds (pilot/pkg/xds/filters RetryPreviousHosts).
const PreviousHostsPredicate = "envoy.retry_host_predicates.previous_hosts"

func previousHosts() []*route.RetryPolicy_RetryHostPredicate {
	return []*route.RetryPolicy_RetryHostPredicate{{
		Name:       PreviousHostsPredicate,
		ConfigType: &route.RetryPolicy_RetryHostPredicate_TypedConfig{TypedConfig: mustAny(&previoushosts.PreviousHostsPredicate{})},
	}}
}

// retryPolicy applies the mesh's choice of default before ConvertRetryPolicy.
func (g *Generator) retryPolicy(in *networking.HTTPRetry, hashPolicy bool) *route.RetryPolicy {
	p := ConvertRetryPolicy(in, hashPolicy)
	if p != nil && g.cfg.Mesh.Retry503ByDefault && in.GetRetryOn() == "" {
		// Before Istio 1.24 every policy that kept the default retry_on also
		// retried 503 (retry.go of 1.23, defaultPolicy with
		// EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY=false), the mesh default included.
		p.RetriableStatusCodes = []uint32{503}
	}
	return p
}

// ConvertRetryPolicy is retry.ConvertPolicy: nil gives Istio's default (2
// retries on DefaultRetryOn, previous hosts unless consistent hashing, 5 host
// selection attempts); attempts <= 0 disables retries; bare status codes in
// retryOn become retriable_status_codes; retryIgnorePreviousHosts, backoff and
// retryRemoteLocalities map as Istio maps them.
func ConvertRetryPolicy(in *networking.HTTPRetry, hashPolicy bool) *route.RetryPolicy {
	out := &route.RetryPolicy{
		NumRetries:                    wrapperspb.UInt32(2),
		RetryOn:                       DefaultRetryOn,
		HostSelectionRetryMaxAttempts: 5,
	}
	if !hashPolicy {
		out.RetryHostPredicate = previousHosts()
	}
	if in == nil {
		return out
	}
	if in.GetAttempts() <= 0 {
		return nil
	}
	out.NumRetries = wrapperspb.UInt32(uint32(in.GetAttempts()))
	if in.GetRetryOn() != "" {
		out.RetryOn, out.RetriableStatusCodes = parseRetryOn(in.GetRetryOn())
		if len(out.RetriableStatusCodes) > 0 && !strings.Contains(out.RetryOn, "retriable-status-codes") {
			out.RetryOn += ",retriable-status-codes"
		}
	}
	if in.GetPerTryTimeout() != nil {
		out.PerTryTimeout = in.GetPerTryTimeout()
	}
	if in.GetRetryIgnorePreviousHosts() != nil {
		out.RetryHostPredicate = nil
		if in.GetRetryIgnorePreviousHosts().GetValue() {
			out.RetryHostPredicate = previousHosts()
		}
	}
	if in.GetRetryRemoteLocalities().GetValue() {
		// retry.go buildPreviousPrioritiesConfig: update_frequency 2.
		out.RetryPriority = &route.RetryPolicy_RetryPriority{Name: "envoy.retry_priorities.previous_priorities",
			ConfigType: &route.RetryPolicy_RetryPriority_TypedConfig{TypedConfig: mustAny(&previouspriorities.PreviousPrioritiesConfig{UpdateFrequency: 2})}}
	}
	if in.GetBackoff() != nil {
		out.RetryBackOff = &route.RetryPolicy_RetryBackOff{BaseInterval: in.GetBackoff()}
	}
	return out
}

// parseRetryOn splits Istio's retryOn into Envoy's retry_on and the bare status codes (retry.go parseRetryOn).
func parseRetryOn(retryOn string) (string, []uint32) {
	var codes []uint32
	var tojoin []string
	for _, part := range strings.Split(retryOn, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		// Only a number that is an HTTP status is a code (retry.go parseRetryOn).
		if code, err := strconv.Atoi(part); err == nil && http.StatusText(code) != "" {
			codes = append(codes, uint32(code))
			continue
		}
		tojoin = append(tojoin, part)
	}
	return strings.Join(tojoin, ","), codes
}
