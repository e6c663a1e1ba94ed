package reports

import (
	"fmt"
	"strconv"
)

// stepRow is one step of a load plan as the reports show it.
type stepRow struct {
	Index, Window, Target, Achieved, Requests, Success string
	P50, P90, P99, P999                                string
	// Over is set when the step's p99 is above a capacity check's bound.
	Over bool
}

// p99Bound is the tightest p99 bound (ms) of r's capacity checks, or 0.
func p99Bound(r *Result) float64 {
	bound := 0.0
	for _, c := range r.Checks {
		if b, ok := c.Expected["p99"]; ok && c.Kind == "capacity" && b > 0 && (bound == 0 || b < bound) {
			bound = b
		}
	}
	return bound
}

// stepRows formats r's steps, marking those whose p99 is above bound.
func stepRows(r *Result, bound float64) []stepRow {
	rows := make([]stepRow, len(r.Steps))
	for i, s := range r.Steps {
		rows[i] = stepRow{
			Index: strconv.Itoa(s.Index), Window: fmt.Sprintf("%s–%s s", num(s.Start), num(s.End)),
			Target: num(s.TargetRate), Achieved: num(s.AchievedRate), Requests: strconv.Itoa(s.Requests),
			Success: pctString(s.SuccessRate),
			P50:     fmtNum(s.Latency.P50), P90: fmtNum(s.Latency.P90), P99: fmtNum(s.Latency.P99), P999: fmtNum(s.Latency.P999),
			Over: bound > 0 && !(s.Latency.P99 <= bound),
		}
	}
	return rows
}

// firstBreak says at which step p99 first exceeds bound; "" when it
// never does or there is no bound.
func firstBreak(r *Result, bound float64) string {
	if bound <= 0 || len(r.Steps) == 0 {
		return ""
	}
	for _, s := range r.Steps {
		if !(s.Latency.P99 <= bound) {
			return fmt.Sprintf("p99 first exceeds the capacity bound of %s ms at step %d (%s req/s): %s ms.", fmtNum(bound), s.Index, num(s.TargetRate), fmtNum(s.Latency.P99))
		}
	}
	return fmt.Sprintf("p99 stays within the capacity bound of %s ms at every step.", fmtNum(bound))
}
