package expect

import (
	"fmt"

	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/check"
)

// Status checks the share of the load's responses that have Code: either
// a target Share judged by an exact two-sided binomial test at
// Confidence, or bounds Min and Max on the observed share.
type Status struct {
	Code       int      `yaml:"code"`
	Share      *float64 `yaml:"share"`
	Min        *float64 `yaml:"min"`
	Max        *float64 `yaml:"max"`
	Confidence float64  `yaml:"confidence"`
	Variant    string   `yaml:"variant"`
}

// Name is "status".
func (*Status) Name() string { return "status" }

// Default sets the default confidence.
func (e *Status) Default() { e.Confidence = orDefault(e.Confidence) }

// Validate checks the code, the share or the bounds, and the variant.
func (e *Status) Validate(env Env) {
	const p = "status"
	if e.Code < 100 || e.Code > 599 {
		env.At(p+".code", "status code %d is not in [100, 599]", e.Code)
	}
	if e.Share != nil {
		if *e.Share < 0 || *e.Share > 1 {
			env.At(p+".share", "share %g is not in [0, 1]", *e.Share)
		}
		if e.Min != nil || e.Max != nil {
			env.At(p, "set either share (a binomial test) or min/max bounds, not both")
		}
		confidence(env, p+".confidence", e.Confidence)
	} else {
		bounds(env, p, e.Min, e.Max, 1)
	}
	variant(env, p+".variant", e.Variant)
}

// Judge tests or bounds the share of answers with the code.
func (e *Status) Judge(out *Outcome) reports.Check {
	sel, k := out.ofVariant(e.Variant), 0
	for _, s := range sel {
		if s.Code == e.Code {
			k++
		}
	}
	n := len(sel)
	name := fmt.Sprintf("status %d share", e.Code) + variantSuffix(e.Variant)
	if e.Share != nil {
		return check.Share(name, k, n, *e.Share, orDefault(e.Confidence))
	}
	share := 0.0
	if n > 0 {
		share = float64(k) / float64(n)
	}
	return check.Bounds(name, check.KindStatus, share, e.Min, e.Max, n, fmt.Sprintf("share of %d (%d of %d)", e.Code, k, n))
}
