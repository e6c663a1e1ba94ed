package expect

import (
	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/check"
)

// Attempts bounds the x-envoy-attempt-count a service saw on the requests
// it answered, as echoed in the load's response bodies.
type Attempts struct {
	Count `yaml:",inline"`
}

// Name is "attempts".
func (*Attempts) Name() string { return "attempts" }

// Validate checks the service, the bounds and the variant.
func (e *Attempts) Validate(env Env) {
	count(env, "attempts", e.Service, e.Min, e.Max)
	variant(env, "attempts.variant", e.Variant)
}

// Judge bounds the most attempts any request's call of the service took.
func (e *Attempts) Judge(out *Outcome) reports.Check {
	sel, most := out.ofVariant(e.Variant), 0
	for _, s := range sel {
		most = max(most, s.Attempts[e.Service])
	}
	return check.Bounds("attempts at "+e.Service+variantSuffix(e.Variant), "attempts", float64(most), e.Min, e.Max, len(sel), "attempts at most (x-envoy-attempt-count)")
}
