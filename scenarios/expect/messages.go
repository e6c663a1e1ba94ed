package expect

import (
	"fmt"

	"github.com/meshbench/meshbench/reports"
)

// Messages bounds the replies each server-streaming gRPC call of a
// service delivered before it ended: the fewest of any request at least
// Min, the most at most Max.
type Messages struct {
	Count `yaml:",inline"`
}

// Name is "messages".
func (*Messages) Name() string { return "messages" }

// Validate checks the service, the bounds and the variant.
func (e *Messages) Validate(env Env) {
	count(env, "messages", e.Service, e.Min, e.Max)
	variant(env, "messages.variant", e.Variant)
}

// Judge: of the requests whose call of the service was a stream, the
// fewest replies delivered must be at least Min, the most at most Max.
func (e *Messages) Judge(out *Outcome) reports.Check {
	sel := out.ofVariant(e.Variant)
	c := reports.Check{Name: "stream messages from " + e.Service + variantSuffix(e.Variant), Kind: "messages", Test: "fewest and most per request within [min, max]"}
	n, fewest, most := 0, 0, 0
	for _, s := range sel {
		m, ok := s.Messages[e.Service]
		if !ok {
			continue
		}
		if n == 0 || m < fewest {
			fewest = m
		}
		most = max(most, m)
		n++
	}
	c.N = n
	if n == 0 {
		c.Summary = fmt.Sprintf("no streaming call of %s among %d requests", e.Service, len(sel))
		return c
	}
	c.Observed = map[string]float64{"fewest": float64(fewest), "most": float64(most)}
	c.Passed = (e.Min == nil || float64(fewest) >= *e.Min) && (e.Max == nil || float64(most) <= *e.Max)
	c.Summary = fmt.Sprintf("%d to %d messages per stream%s; N=%d", fewest, most, wantRange(e.Min, e.Max), n)
	return c
}

// wantRange is " (want 1–3)", " (want >= 1)", " (want <= 3)" or "".
func wantRange(lo, hi *float64) string {
	switch {
	case lo != nil && hi != nil:
		return fmt.Sprintf(" (want %g–%g)", *lo, *hi)
	case lo != nil:
		return fmt.Sprintf(" (want >= %g)", *lo)
	case hi != nil:
		return fmt.Sprintf(" (want <= %g)", *hi)
	}
	return ""
}
