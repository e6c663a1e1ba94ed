package check

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/meshbench/meshbench/reports"
)

// KindCapacity is the kind of a capacity check.
const KindCapacity = "capacity"

// CapacityTest is what Capacity does.
const CapacityTest = "highest step rate at and below which every step held: p99 <= bound, and success rate by a one-sided exact binomial test"

// Capacity judges the steps of a load plan: a step holds when it has
// requests, its p99 is at most p99Ms (0: no bound) and its success rate is
// not shown below minSuccess (0: no bound) by SuccessRate's test at
// confidence. The capacity is the highest step rate at and below which
// every step held, so one step that broke at a lower rate caps it even if
// a higher step held again. The check passes when the capacity is at least
// minRate.
//
// Observed holds "capacity" (requests per second, 0 when the lowest step
// broke) and, when a step broke, "firstBreakStep" and "firstBreakRate":
// the first step in time that did not hold. Expected holds "min" and the
// bounds that were set ("p99" in ms, "successRate").
func Capacity(steps []reports.Step, p99Ms, minSuccess, minRate, confidence float64) reports.Check {
	c := reports.Check{Name: "capacity", Kind: KindCapacity, Test: CapacityTest}
	if minSuccess > 0 {
		if _, ok := alphaOf(confidence); !ok {
			return fail(c, fmt.Sprintf("invalid confidence %v, want 0 < confidence < 1", confidence))
		}
		c.Confidence = confidence
	}
	switch {
	case math.IsNaN(p99Ms) || p99Ms < 0 || math.IsNaN(minSuccess) || minSuccess < 0 || minSuccess > 1 || !(minRate > 0):
		return fail(c, fmt.Sprintf("invalid bounds: p99 %v ms, success rate %v, min %v/s", p99Ms, minSuccess, minRate))
	case p99Ms == 0 && minSuccess == 0:
		return fail(c, "no bound: set p99, successRate or both")
	}
	c.Expected = map[string]float64{"min": minRate}
	if p99Ms > 0 {
		c.Expected["p99"] = p99Ms
	}
	if minSuccess > 0 {
		c.Expected["successRate"] = minSuccess
	}
	if len(steps) == 0 {
		return fail(c, "no steps: capacity judges a steps or ramp plan")
	}
	var firstBreak *reports.Step
	why := ""
	broken := map[int]bool{}
	for i := range steps {
		st := &steps[i]
		c.N += max(st.Requests, 0)
		if reason := breaks(*st, p99Ms, minSuccess, confidence); reason != "" {
			broken[i] = true
			if firstBreak == nil {
				firstBreak, why = st, reason
			}
		}
	}
	capacity := capacityOf(steps, broken)
	c.Observed = map[string]float64{"capacity": capacity}
	c.Passed = capacity >= minRate
	held := fmt.Sprintf("held up to %s/s", fmtNum(capacity, 1))
	if capacity == 0 {
		held = "no step held"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (want >= %s/s)", held, fmtNum(minRate, 1))
	if firstBreak != nil {
		c.Observed["firstBreakStep"] = float64(firstBreak.Index)
		c.Observed["firstBreakRate"] = firstBreak.TargetRate
		fmt.Fprintf(&b, "; first broke at step %d, %s/s: %s", firstBreak.Index, fmtNum(firstBreak.TargetRate, 1), why)
	} else {
		fmt.Fprintf(&b, "; every step held")
	}
	c.Summary = b.String()
	return c
}

// breaks says why a step did not hold, or "" when it held.
func breaks(st reports.Step, p99Ms, minSuccess, confidence float64) string {
	if st.Requests <= 0 {
		return "no requests"
	}
	var why []string
	// A NaN p99 compares false and breaks the step.
	if p99Ms > 0 && !(st.Latency.P99 <= p99Ms) {
		why = append(why, fmt.Sprintf("p99 %s ms > %s ms", fmtNum(st.Latency.P99, 3), fmtNum(p99Ms, 3)))
	}
	if minSuccess > 0 {
		if sr := SuccessRate(st.Successes, st.Requests, minSuccess, confidence); !sr.Passed {
			why = append(why, fmt.Sprintf("success %d/%d below %s (p=%s)", st.Successes, st.Requests, fmtPct(minSuccess), fmtP(pval(sr))))
		}
	}
	return strings.Join(why, " and ")
}

func pval(c reports.Check) float64 {
	if c.PValue == nil {
		return 0
	}
	return *c.PValue
}

// capacityOf is the highest step rate at and below which no step broke;
// 0 when a step at the lowest rate broke.
func capacityOf(steps []reports.Step, broken map[int]bool) float64 {
	order := make([]int, len(steps))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return steps[order[a]].TargetRate < steps[order[b]].TargetRate })
	capacity := 0.0
	for k, i := range order {
		if broken[i] {
			return capacity
		}
		// Every step at this rate must hold before the rate counts.
		if k+1 == len(order) || steps[order[k+1]].TargetRate > steps[i].TargetRate {
			capacity = steps[i].TargetRate
		}
	}
	return capacity
}
