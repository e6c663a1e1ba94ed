package run

import (
	"fmt"
	"time"

	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/spec"
)

// Checks of gRPC calls read from the load's answers: what each caller's
// reply body echoes of its callee's (fakesvc.Reply.Messages, Deadline).

// Check kinds of this file.
const (
	kindMessages = "messages"
	kindDeadline = "deadline"
)

// messagesCheck: of the requests whose call of the service was a stream,
// the fewest replies delivered must be at least Min, the most at most Max.
func messagesCheck(e *spec.CountExpect, samples []sample) reports.Check {
	sel := samples
	if e.Variant != "" {
		sel = ofVariant(samples, e.Variant)
	}
	c := reports.Check{Name: "stream messages from " + e.Service + variantSuffix(e.Variant), Kind: kindMessages, Test: "fewest and most per request within [min, max]"}
	n, fewest, most := 0, 0, 0
	for _, s := range sel {
		m, ok := s.messages[e.Service]
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

// deadlineCheck: every call the service answered reached it with a
// deadline, the longest at most Max, the shortest at least Min.
func deadlineCheck(e *spec.DeadlineExpect, samples []sample) reports.Check {
	sel := samples
	if e.Variant != "" {
		sel = ofVariant(samples, e.Variant)
	}
	c := reports.Check{Name: "deadline at " + e.Service + variantSuffix(e.Variant), Kind: kindDeadline, Test: "every answered call carried a deadline within [min, max]"}
	n, none := 0, 0
	var shortest, longest time.Duration
	for _, s := range sel {
		if _, answered := s.versions[e.Service]; !answered {
			continue
		}
		n++
		d, ok := s.deadlines[e.Service]
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
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
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
