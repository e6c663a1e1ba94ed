package expect

import (
	"time"

	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/sim/meshmetrics"
)

// Outcome is what a run measured, filled once by the run and read by
// every Judge.
type Outcome struct {
	// Samples are the measured requests of the load, in send order.
	Samples []Sample
	// Latency summarises every sample's latency (exact percentiles, from
	// the intended send time); VariantLatency each variant's.
	Latency        reports.Latency
	VariantLatency map[string]reports.Latency
	// Mesh are the sidecars' counters over the run.
	Mesh meshmetrics.Counters
	// Proxyless are the services whose callers call them proxyless: no
	// sidecar on the caller's side counts their retries or sets flags.
	Proxyless map[string]bool
	// Steps are a load plan's per-step figures; nil without a plan.
	Steps []reports.Step
	// Faults are the chaos windows and the steady-state samples, for
	// latencyShift; nil without chaos.
	Faults *Faults
}

// Sample is one request of the load and what its answer echoed.
type Sample struct {
	Variant string
	Code    int
	// OK is a 2xx or 3xx answer without a transport error.
	OK bool
	// Intended is when the pacer meant to send the request; Latency counts
	// from it.
	Intended time.Time
	Latency  time.Duration
	// Versions maps each service that answered to the version that served it.
	Versions map[string]string
	// Attempts maps each service that answered to the x-envoy-attempt-count it saw.
	Attempts map[string]int
	// Messages maps each service called with a gRPC stream to the replies
	// it delivered; Deadlines each service that answered under a gRPC
	// deadline to the time it had left.
	Messages  map[string]int
	Deadlines map[string]time.Duration
	// Flags maps each service called to the Envoy response flags its
	// caller's sidecar set on the answer.
	Flags map[string][]string
}

// Faults are what the chaos phases showed.
type Faults struct {
	// Windows are when each fault was in place.
	Windows []Window
	// Steady are the samples of each steady-state phase that ran; empty
	// when the scenario has no steady state.
	Steady [][]Sample
}

// Window is when one chaos step's fault was in place; a zero Start never
// went in, a zero End is still in place.
type Window struct {
	Step       string
	Start, End time.Time
}

// ofVariant is the samples of one load variant, or all of them for "".
func (o *Outcome) ofVariant(variant string) []Sample {
	if variant == "" {
		return o.Samples
	}
	var out []Sample
	for _, s := range o.Samples {
		if s.Variant == variant {
			out = append(out, s)
		}
	}
	return out
}

// variantSuffix names a check's variant, " (jason)", or nothing.
func variantSuffix(variant string) string {
	if variant == "" {
		return ""
	}
	return " (" + variant + ")"
}
