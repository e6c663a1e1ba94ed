package expect

import (
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
}

// Name is "successRate".
func (*SuccessRate) Name() string { return "successRate" }

// Default sets the default confidence.
func (e *SuccessRate) Default() { e.Confidence = orDefault(e.Confidence) }

// Validate checks min, the confidence and the variant.
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
	for _, s := range sel {
		if s.OK {
			ok++
		}
	}
	c := check.SuccessRate(ok, len(sel), e.Min, orDefault(e.Confidence))
	c.Name += variantSuffix(e.Variant)
	return c
}
