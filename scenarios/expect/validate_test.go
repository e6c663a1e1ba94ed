package expect

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		src  string
		env  func(*testEnv)
		want []string
	}{
		{"- split: {service: payment, weights: {v1: 90, v2: 10}, variant: jason}", nil, nil},
		{"- split: {weights: {v3: -1}, tolerance: 100, confidence: 1.5, variant: bob}", nil, []string{
			"split: split.service is required (services: order, payment)",
			"split.weights.v3: weight -1 must be a number >= 0",
			"split.weights: the weights sum to 0; they are shares of the responses",
			"split.tolerance: tolerance 100 must be percentage points, 0 <= tolerance < 100",
			"split.confidence: confidence 1.5 is not in (0,1); default 0.999",
			`split.variant: variant "bob" is not a load variant (variants: jason, others)`,
		}},
		{"- split: {service: payment, weights: {v3: 0}}", nil, []string{
			`split.weights.v3: payment has no version "v3" (versions: v1, v2)`,
			"split.weights: the weights sum to 0; they are shares of the responses",
		}},
		{"- successRate: {confidence: 0.9}", nil, []string{"successRate: successRate.min is required, in (0,1], like 0.999"}},
		{"- successRate: {min: 1.5, variant: jason}", func(e *testEnv) { e.present["successRate.min"] = true }, []string{"successRate.min: min 1.5 is not in (0,1]"}},
		{"- successRate: {min: 0.9, variant: jason}", func(e *testEnv) { e.variants = nil }, []string{`successRate.variant: variant "jason": load has no variants`}},
		{"- successRate: {min: 0.9, after: 2s}", nil, nil},
		{"- latency: {p95: {max: 1s}, p99: {min: 2s, max: 1s}, p50: {}}", nil, []string{
			`latency.p50: p50 needs max, min or both, like {max: 250ms} or {min: 1900ms, max: 2500ms}`,
			`latency.p95: unknown latency statistic "p95" (did you mean "p90"?); want one of p50, p90, p99, p999, max, mean (or variant)`,
			"latency.p99: p99: min 2s is above max 1s",
		}},
		{"- latency: {variant: jason}", nil, []string{"latency: latency needs at least one of p50, p90, p99, p999, max, mean"}},
		{"- status: {code: 600, share: 0.5, max: 1}", nil, []string{
			"status.code: status code 600 is not in [100, 599]",
			"status: set either share (a binomial test) or min/max bounds, not both",
		}},
		{"- status: {code: 504, min: 0.5, max: 0.2}", nil, []string{"status: min 0.5 is above max 0.2"}},
		{"- retries: {service: billing, variant: jason}", nil, []string{
			"retries.service: service \"billing\" matches no service in the topology (services: order, payment)",
			"retries: set min, max or both",
			"retries.variant: retries counts the sidecars' counters, which do not know the load's variants; a variant applies to split, successRate, latency, status, attempts and responseFlags",
		}},
		{"- ejections: {min: -1}", nil, []string{"ejections: service is required (services: order, payment)", "ejections.min: min -1 is not in [0, +Inf]"}},
		{"- overflows: {service: payment, min: 1}", nil, nil},
		{"- rotations: {min: 3, max: 1}", nil, []string{"rotations: min 3 is above max 1"}},
		{"- responseFlags: {service: payment, flag: URR, min: 1, variant: jason}", nil, []string{
			`responseFlags.flag: unknown response flag "URR" (did you mean "URX"?); want one of UH, UF, UO, NR, URX, NC, DC, UT, UR, DI, FI`,
		}},
		{"- attempts: {service: payment, max: 3, variant: bob}", nil, []string{`attempts.variant: variant "bob" is not a load variant (variants: jason, others)`}},
		{"- security: {service: payment, policy: mtls, min: 1}", nil, []string{`security.policy: policy "mtls" is not mutual_tls, none or any`}},
		{"- messages: {service: payment}", nil, []string{"messages: set min, max or both"}},
		{"- deadline: {service: payment, min: 2s, max: 1s}", nil, []string{"deadline.min: min 2s is more than max 1s"}},
		{"- deadline: {}", nil, []string{"deadline: service is required (services: order, payment)", "deadline: set min, max or both"}},
		{"- capacity: {min: 900/s, successRate: 1.5}", func(e *testEnv) { e.planned, e.peak, e.present["capacity.successRate"] = true, 800, true }, []string{
			"capacity.min: min 900/s is above the plan's highest rate (800/s): the check could never pass",
			"capacity.successRate: successRate 1.5 is not in (0,1]",
		}},
		{"- capacity: {p99: 20ms}", nil, []string{
			"capacity: capacity judges the steps of a load plan: set load.plan (steps or ramp) instead of a constant rate",
			"capacity: capacity.min is required: the rate the steps must hold, like 800/s",
		}},
		{"- latencyShift: {fault: slwo, stat: p95, min: 100ms, max: 50ms}", func(e *testEnv) { e.steps, e.named = 2, []string{"slow"} }, []string{
			`latencyShift.stat: unknown statistic "p95" (did you mean "p90"?); want one of p50, p90, p99, mean`,
			"latencyShift: min 100ms is above max 50ms",
			`latencyShift.fault: no chaos step is named "slwo" (named steps: slow)`,
		}},
		{"- latencyShift: {fault: slow}", nil, []string{
			"latencyShift: set min, max or both: the bounds of the shift, like {min: 80ms, max: 150ms}",
			"latencyShift: latencyShift compares the requests sent during faults with the others; the scenario has no chaos",
			`latencyShift.fault: no chaos step is named "slow" (no step has a name)`,
		}},
	} {
		env := newEnv()
		if c.env != nil {
			c.env(env)
		}
		assert.Equal(t, c.want, validate(t, env, c.src), c.src)
	}
}

// Defaults come before Validate: a latencyShift without stat compares medians.
func TestLatencyShiftDefaultsToMedian(t *testing.T) {
	e, err := decode(t, "- latencyShift: {max: 10ms}")
	assert.NoError(t, err)
	e.Default()
	assert.Equal(t, "p50", e.Kind.(*LatencyShift).Stat)
	var _ SteadyStateRefuser = e.Kind.(*LatencyShift)
	var _ SteadyStateRefuser = new(Capacity)
}
