package derive

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/meshbench/meshbench/sim/registry"
)

// slowShare is the share of the app's answers slower than the per-try
// timeout in a per-try timeout check: as retryErrorRate, so that the two
// checks of a policy imply the same success.
const slowShare = retryErrorRate

// Bounds on the per-try timeouts a check exercises: below the first, the
// local runtime's own jitter decides which tries time out; past the
// second, the derived load would hold its requests too long.
const (
	minPerTry         = 20 * time.Millisecond
	maxPerTryDuration = 3 * time.Second
	// perTryLatencySlack is what the client's and sidecars' own work may
	// add to the slowest request's latency on two shared cores.
	perTryLatencySlack = 250 * time.Millisecond
)

// Envoy's retry back-off when the route sets none: a 25ms base interval
// and a maximum of ten times the base (route_components.proto,
// RetryPolicy.RetryBackOff; sim/sidecar compileRetry).
const (
	envoyBackoffBase   = 25 * time.Millisecond
	envoyBackoffFactor = 10
)

// retriesPerTryTimeout reports whether retryOn retries a try that its
// per-try timeout ended. Envoy retries such a try under 5xx, gateway-error
// and reset (router filter docs, x-envoy-retry-on: 5xx and reset cover a
// request the upstream does not answer, "read timeout" included; router.cc
// onPerTryTimeoutCommon resets the try locally and RetryStateImpl::
// wouldRetryFromReset retries that under all three; sim/sidecar retriable).
// Istio passes the tokens through unchanged (retry.go parseRetryOn), and
// its default retryOn has none of them (DefaultRetryOn).
func retriesPerTryTimeout(retryOn string) bool {
	for _, tok := range strings.Split(retryOn, ",") {
		switch strings.TrimSpace(tok) {
		case "5xx", "gateway-error", "reset":
			return true
		}
	}
	return false
}

// backoffCeilings is the sum of the first n back-offs' ceilings: Envoy's
// jittered exponential back-off waits at most min(base·2^(k-1), max)
// before retry k (backoff_strategy.cc; sim/sidecar backoffCeiling).
func backoffCeilings(n int, base time.Duration) time.Duration {
	var sum time.Duration
	ceiling := base
	for range n {
		sum += min(ceiling, envoyBackoffFactor*base)
		ceiling *= 2
	}
	return sum
}

// perTryTimeout: with an app whose answers are slower than the per-try
// timeout T a share p of the time, each independently, a try that takes
// T is cut and retried, so success rises to 1 - p^k for the k tries that
// fit (attempts+1, or fewer under a shorter route timeout), no request is
// tried more than attempts+1 times, and latency stays near k·T.
func (d *deriver) perTryTimeout(r *route) {
	rp := r.hr.GetRetries()
	a := int(rp.GetAttempts())
	t := rp.GetPerTryTimeout().AsDuration()
	src := r.at(".retries.perTryTimeout")
	retryOn := rp.GetRetryOn()
	if retryOn == "" {
		retryOn = "Istio's default"
	}
	promise := fmt.Sprintf("cuts each of up to %d tries at %s and retries it (retryOn %s)", a+1, t, retryOn)
	if a <= 0 || t <= 0 {
		return // no retries (the webhook refuses perTryTimeout then), or no per-try timeout
	}
	if !retriesPerTryTimeout(rp.GetRetryOn()) {
		d.notChecked(r.resource(), src, promise,
			"retryOn has none of 5xx, gateway-error and reset, so Envoy does not retry a try its per-try timeout ended: every slow try is a 504 (the timeout check judges a route's own timeout)")
		return
	}
	route := r.hr.GetTimeout().AsDuration() // 0: none (virtual_service.proto, HTTPRoute.timeout)
	if route > 0 && t >= route {
		// Istio passes both through unchanged (route.go setTimeout,
		// retry.go ConvertPolicy), and Envoy ignores a per-try timeout
		// that is not below the route's (router.cc FilterUtility::finalTimeout).
		d.notChecked(r.resource(), src, promise,
			fmt.Sprintf("the route's timeout %s is not longer than the per-try timeout, so Envoy ignores the per-try timeout and the timeout check judges the route", route))
		return
	}
	if t < minPerTry {
		d.notChecked(r.resource(), src, promise,
			fmt.Sprintf("a per-try timeout under %s is within the local runtime's own jitter", minPerTry))
		return
	}
	dst := d.destService(r.hr)
	if dst == nil {
		d.notChecked(r.resource(), src, promise, "the route has no destination in the namespace")
		return
	}
	base := envoyBackoffBase
	if b := rp.GetBackoff(); b != nil {
		base = b.AsDuration() // Istio's backoff is Envoy's base interval (retry.go ConvertPolicy)
	}
	// Try k starts at most (k-1)·T plus k-1 back-offs after the request,
	// and a fast answer comes within T: the tries that surely fit.
	tries := a + 1
	bound := time.Duration(tries)*t + backoffCeilings(a, base)
	if route > 0 {
		for tries > 0 && time.Duration(tries)*t+backoffCeilings(tries-1, base) > route {
			tries--
		}
		bound = min(bound, route)
	}
	if tries < 2 {
		d.notChecked(r.resource(), src, promise,
			fmt.Sprintf("the route's timeout %s leaves room for one try of %s and its back-off only", route, t))
		return
	}
	if bound > maxPerTryDuration {
		d.notChecked(r.resource(), src, promise,
			fmt.Sprintf("its tries could take %s, longer than the derived load holds a request (%s)", bound, maxPerTryDuration))
		return
	}
	p := slowShare
	expected := 1 - math.Pow(p, float64(tries))
	without := 1 - p
	min := expected - (expected-without)/3 // the retries check's margin
	n := max(minRequests, shareRequests(min, d.opt.Alpha, d.opt.Power, min-without))
	load := d.opt.load(d.callerFor(r.service), n)
	r.req.onto(&load)
	load.Timeout = (bound + 2*time.Second).String()
	expect := []map[string]any{
		{"successRate": map[string]any{"min": round(min), "confidence": 1 - d.opt.Alpha}},
		{"attempts": map[string]any{"service": dst.Name, "min": 2, "max": a + 1}},
		{"retries": map[string]any{"service": dst.Name, "min": 1}},
		{"latency": map[string]any{"p99": map[string]string{"max": (bound + perTryLatencySlack).String()}}},
	}
	// An exponential service time with mean T/ln(1/p) exceeds T with
	// probability p, each answer independently of the others.
	slow := registry.Latency{Mean: unitsDuration(time.Duration(float64(t) / math.Log(1/p))), Dist: "exponential"}
	d.add(Check{
		Name: r.name("per-try-timeout"), Resource: r.resource(),
		Promise: promise + fmt.Sprintf(": with %.0f%% of answers slower than %s, success ≥ %.1f%% (1-p^%d = %.2f%%), at most %d attempts, p99 within %s",
			100*p, t, 100*min, tries, 100*expected, a+1, bound+perTryLatencySlack),
		Source: src,
		Scenario: d.scenario(r, load, expect, func(s *registry.Service) {
			if s.Name == dst.Name {
				for i := range s.Versions {
					s.Versions[i].Latency = slow
				}
			}
		}, nil),
	})
}
