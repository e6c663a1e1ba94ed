package expect

import (
	"time"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/check"
)

// SuccessRate checks that at least Min of the requests succeeded.
type SuccessRate struct {
	// Min is the lowest acceptable success rate, in (0,1].
	Min float64 `yaml:"min"`
	// Confidence of the statistical test, in (0,1); default 0.999.
	Confidence float64 `yaml:"confidence"`
	// Variant restricts the check to one load variant's requests.
	Variant string `yaml:"variant"`
	// After restricts the check to the requests the load meant to send at
	// least this long after its measured start (the first request's
	// intended send time): what holds once a mesh has reacted, such as the
	// success rate after outlier detection ejected a failing pod.
	After units.Duration `yaml:"after"`
}

// Name is "successRate".
func (*SuccessRate) Name() string { return "successRate" }

// Default sets the default confidence.
func (e *SuccessRate) Default() { e.Confidence = orDefault(e.Confidence) }

// Validate checks min, the confidence and the variant (a negative after
// is refused where durations are decoded).
func (e *SuccessRate) Validate(env Env) {
	const p = "successRate"
	if e.Min <= 0 || e.Min > 1 {
		if !env.Has(p + ".min") {
			env.At(p, "successRate.min is required, in (0,1], like 0.999")
		} else {
			env.At(p+".min", "min %g is not in (0,1]", e.Min)
		}
	}
	confidence(env, p+".confidence", e.Confidence)
	variant(env, p+".variant", e.Variant)
}

// Judge tests the share of successful answers against Min.
func (e *SuccessRate) Judge(out *Outcome) reports.Check {
	sel, ok := out.ofVariant(e.Variant), 0
	if e.After > 0 {
		sel = sentAfter(sel, out.Samples, e.After.D())
	}
	for _, s := range sel {
		if s.OK {
			ok++
		}
	}
	c := check.SuccessRate(ok, len(sel), e.Min, orDefault(e.Confidence))
	if e.After > 0 {
		c.Name += " after " + e.After.String()
	}
	c.Name += variantSuffix(e.Variant)
	return c
}

// sentAfter is the samples of sel intended to be sent at least d after
// the load's start: the earliest intended send time of all its samples.
func sentAfter(sel, all []Sample, d time.Duration) []Sample {
	var start time.Time
	for _, s := range all {
		if start.IsZero() || s.Intended.Before(start) {
			start = s.Intended
		}
	}
	from := start.Add(d)
	var out []Sample
	for _, s := range sel {
		if !s.Intended.Before(from) {
			out = append(out, s)
		}
	}
	return out
}
