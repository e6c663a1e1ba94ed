package expect

import (
	"fmt"
	"time"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/reports"
)

// Deadline bounds the time a caller's gRPC deadline left the calls
// Service answered when they reached it: every answered call must carry a
// deadline (grpc-timeout), none more than Max nor less than Min. A mesh
// that dropped the caller's grpc-timeout on the way leaves the service
// without one.
type Deadline struct {
	Service string         `yaml:"service"`
	Min     units.Duration `yaml:"min"`
	Max     units.Duration `yaml:"max"`
	Variant string         `yaml:"variant"`
}

// Name is "deadline".
func (*Deadline) Name() string { return "deadline" }

// Validate checks the service, the bounds and the variant.
func (e *Deadline) Validate(env Env) {
	const p = "deadline"
	service(env, p, e.Service)
	if e.Min == 0 && e.Max == 0 {
		env.At(p, "set min, max or both")
	}
	if e.Max > 0 && e.Min > e.Max {
		env.At(p+".min", "min %s is more than max %s", e.Min.D(), e.Max.D())
	}
	variant(env, p+".variant", e.Variant)
}

// Judge: every call the service answered reached it with a deadline, the
// longest at most Max, the shortest at least Min.
func (e *Deadline) Judge(out *Outcome) reports.Check {
	sel := out.ofVariant(e.Variant)
	c := reports.Check{Name: "deadline at " + e.Service + variantSuffix(e.Variant), Kind: "deadline", Test: "every answered call carried a deadline within [min, max]"}
	n, none := 0, 0
	var shortest, longest time.Duration
	for _, s := range sel {
		if _, answered := s.Versions[e.Service]; !answered {
			continue
		}
		n++
		d, ok := s.Deadlines[e.Service]
		if !ok {
			none++
			continue
		}
		if n-none == 1 || d < shortest {
			shortest = d
		}
		longest = max(longest, d)
	}
	c.N = n
	switch {
	case n == 0:
		c.Summary = fmt.Sprintf("%s answered none of %d requests", e.Service, len(sel))
		return c
	case none > 0:
		c.Observed = map[string]float64{"withoutDeadline": float64(none)}
		c.Summary = fmt.Sprintf("%d of %d calls reached %s without a deadline (grpc-timeout)", none, n, e.Service)
		return c
	}
	c.Observed = map[string]float64{"shortestMs": ms(shortest), "longestMs": ms(longest)}
	c.Passed = (e.Max == 0 || longest <= e.Max.D()) && shortest >= e.Min.D()
	want := ""
	switch {
	case e.Min > 0 && e.Max > 0:
		want = fmt.Sprintf(" (want %s–%s)", e.Min.D(), e.Max.D())
	case e.Max > 0:
		want = fmt.Sprintf(" (want <= %s)", e.Max.D())
	case e.Min > 0:
		want = fmt.Sprintf(" (want >= %s)", e.Min.D())
	}
	c.Summary = fmt.Sprintf("every call carried a deadline; %s left %s to %s%s; N=%d", e.Service, shortest.Round(100*time.Microsecond), longest.Round(100*time.Microsecond), want, n)
	return c
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
