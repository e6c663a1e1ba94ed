package expect

import (
	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/check"
)

// Capacity asks of a steps or ramp plan for the highest step rate at and
// below which every step's p99 and success rate held; the check passes
// when that rate is at least Min.
type Capacity struct {
	// P99 is the highest acceptable p99 of a step; 0: no latency bound.
	P99 units.Duration `yaml:"p99"`
	// SuccessRate is the lowest acceptable success rate of a step, judged
	// like successRate (one-sided exact binomial test); 0: no bound.
	SuccessRate float64 `yaml:"successRate"`
	// Min is the capacity the check asks for; required.
	Min units.Rate `yaml:"min"`
	// Confidence of the success rate test; default 0.999.
	Confidence float64 `yaml:"confidence"`
}

// Name is "capacity".
func (*Capacity) Name() string { return "capacity" }

// Default sets the default confidence.
func (e *Capacity) Default() { e.Confidence = orDefault(e.Confidence) }

// NotSteady: the steady-state phases run at one rate.
func (*Capacity) NotSteady() string {
	return "capacity judges the steps of a load plan; it belongs in expect, not steadyState.expect (the steady-state phases run at one rate)"
}

// Validate checks that the load has a plan the bounds can be judged on.
func (e *Capacity) Validate(env Env) {
	const p = "capacity"
	planned, peak := env.Plan()
	if !planned {
		env.At(p, "capacity judges the steps of a load plan: set load.plan (steps or ramp) instead of a constant rate")
	}
	if e.Min.Per == 0 {
		env.At(p, "capacity.min is required: the rate the steps must hold, like 800/s")
	} else if planned && peak > 0 && e.Min.PerSecond() > peak {
		env.At(p+".min", "min %s is above the plan's highest rate (%g/s): the check could never pass", e.Min, peak)
	}
	if e.P99 == 0 && e.SuccessRate == 0 {
		env.At(p, "capacity sets p99, successRate or both: what a step must hold")
	}
	if env.Has(p+".successRate") && !(e.SuccessRate > 0 && e.SuccessRate <= 1) {
		env.At(p+".successRate", "successRate %g is not in (0,1]", e.SuccessRate)
	}
	confidence(env, p+".confidence", e.Confidence)
}

// Judge finds the capacity of the plan's steps.
func (e *Capacity) Judge(out *Outcome) reports.Check {
	return check.Capacity(out.Steps, ms(e.P99.D()), e.SuccessRate, e.Min.PerSecond(), orDefault(e.Confidence))
}
