package expect

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/meshbench/meshbench/internal/stats"
	"github.com/meshbench/meshbench/internal/suggest"
	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/reports"
)

// LatencyShift checks how far a latency statistic of the requests sent
// while a fault was in place moved from the baseline: the steady-state
// phases when the scenario has them, else the main phase's requests sent
// while no fault was in place. It proves that a fault was real.
type LatencyShift struct {
	// Fault names the chaos step whose windows count; default all of them.
	Fault string `yaml:"fault"`
	// Stat is p50 (default), p90, p99 or mean.
	Stat string `yaml:"stat"`
	// Min and Max bound the shift (window − baseline); at least one.
	Min *units.Duration `yaml:"min"`
	Max *units.Duration `yaml:"max"`
	// Settle leaves out the requests sent in the first part of each window.
	// A network fault on the local runtime moves a pod's endpoint to a proxy,
	// so callers open new connections through it, and every round trip of
	// their handshakes (TCP, TLS) pays the injected latency once more: a
	// burst at the window's start that a fault on an existing network path
	// would not have.
	Settle units.Duration `yaml:"settle"`
	// PerSecond compares the median, over the seconds of the window and of
	// the baseline, of the statistic taken second by second: a stall of the
	// machine in one second then cannot decide the check (a tail statistic
	// such as p99 is otherwise the first it moves).
	PerSecond bool `yaml:"perSecond"`
}

// ShiftStats are the statistics a LatencyShift may compare.
var ShiftStats = []string{"p50", "p90", "p99", "mean"}

// shiftConfidence is the confidence of the intervals a latency shift check
// reports around each side's statistic.
const shiftConfidence = 0.99

// Name is "latencyShift".
func (*LatencyShift) Name() string { return "latencyShift" }

// Default compares medians.
func (e *LatencyShift) Default() {
	if e.Stat == "" {
		e.Stat = "p50"
	}
}

// NotSteady: the shift is measured against the steady state.
func (*LatencyShift) NotSteady() string {
	return "latencyShift compares the faults with the steady state; it belongs in expect, not steadyState.expect"
}

// Validate checks the statistic, the bounds and the fault.
func (e *LatencyShift) Validate(env Env) {
	const p = "latencyShift"
	if !slices.Contains(ShiftStats, e.Stat) {
		env.At(p+".stat", "unknown statistic %q%s; want one of %s", e.Stat, suggest.Hint(e.Stat, ShiftStats), strings.Join(ShiftStats, ", "))
	}
	if e.Min == nil && e.Max == nil {
		env.At(p, "set min, max or both: the bounds of the shift, like {min: 80ms, max: 150ms}")
	}
	if e.Min != nil && e.Max != nil && *e.Min > *e.Max {
		env.At(p, "min %s is above max %s", e.Min, e.Max)
	}
	steps, named := env.Chaos()
	if steps == 0 {
		env.At(p, "latencyShift compares the requests sent during faults with the others; the scenario has no chaos")
	}
	if e.Fault != "" && !slices.Contains(named, e.Fault) {
		known := slices.Compact(slices.Sorted(slices.Values(named)))
		list := "no step has a name"
		if len(known) > 0 {
			list = "named steps: " + strings.Join(known, ", ")
		}
		env.At(p+".fault", "no chaos step is named %q (%s)", e.Fault, list)
	}
}

// Judge compares the statistic of the requests sent while the named fault
// (or any fault) was in place with the steady state's, or, without a
// steady state, with the main phase's requests sent while no fault was.
func (e *LatencyShift) Judge(out *Outcome) reports.Check {
	label := "any fault"
	if e.Fault != "" {
		label = e.Fault
	}
	name := label
	if e.Settle > 0 {
		name += " (after " + e.Settle.String() + " to settle)"
	}
	c := reports.Check{Name: fmt.Sprintf("%s shift during %s", e.Stat, name), Kind: "latencyShift", Test: "difference of sample statistics; 99% distribution-free intervals"}
	var faults Faults
	if out.Faults != nil {
		faults = *out.Faults
	}
	type span struct{ from, to time.Time }
	var during, all []span
	for _, w := range faults.Windows {
		if w.Start.IsZero() {
			continue
		}
		end := w.End
		if end.IsZero() {
			end = time.Now()
		}
		all = append(all, span{w.Start, end})
		if (e.Fault == "" || w.Step == e.Fault) && w.Start.Add(e.Settle.D()).Before(end) {
			during = append(during, span{w.Start.Add(e.Settle.D()), end})
		}
	}
	in := func(t time.Time, ss []span) bool {
		for _, s := range ss {
			if !t.Before(s.from) && t.Before(s.to) {
				return true
			}
		}
		return false
	}
	var win, base []Sample
	for _, s := range out.Samples {
		if in(s.Intended, during) {
			win = append(win, s)
		}
	}
	baseline := "the steady-state phases"
	if len(faults.Steady) > 0 {
		for _, p := range faults.Steady {
			base = append(base, p...)
		}
	} else {
		baseline = "the requests sent while no fault was in place"
		for _, s := range out.Samples {
			if !in(s.Intended, all) {
				base = append(base, s)
			}
		}
	}
	c.N = len(win)
	if len(win) == 0 || len(base) == 0 {
		c.Summary = fmt.Sprintf("nothing to compare: %d requests during %s, %d in %s", len(win), label, len(base), baseline)
		return c
	}
	var w, wlo, whi, b, blo, bhi float64
	if e.PerSecond {
		w, wlo, whi = perSecond(win, e.Stat)
		b, blo, bhi = perSecond(base, e.Stat)
		c.Name += " (median of seconds)"
		c.Test = "difference of the medians over seconds of the per-second statistic; ranges are the seconds' lowest and highest"
	} else {
		w, wlo, whi = stat(latencies(win), e.Stat)
		b, blo, bhi = stat(latencies(base), e.Stat)
	}
	shift := w - b
	c.Observed = map[string]float64{"window": w, "baseline": b, "shift": shift}
	c.Expected = map[string]float64{}
	ok := true
	var want []string
	if e.Min != nil {
		m := ms(e.Min.D())
		c.Expected["min"] = m
		ok = ok && shift >= m
		want = append(want, fmt.Sprintf(">= %gms", m))
	}
	if e.Max != nil {
		m := ms(e.Max.D())
		c.Expected["max"] = m
		ok = ok && shift <= m
		want = append(want, fmt.Sprintf("<= %gms", m))
	}
	c.Passed = ok
	what := fmt.Sprintf("%g%% CI", 100*shiftConfidence)
	if e.PerSecond {
		what = "seconds"
	}
	c.Summary = fmt.Sprintf("%s %.2fms during %s (N=%d, %s %.2f–%.2f) vs %.2fms in %s (N=%d, %.2f–%.2f): shift %+.2fms (%s %+.2f to %+.2f), want %s",
		e.Stat, w, label, len(win), what, wlo, whi, b, baseline, len(base), blo, bhi, shift, what, wlo-bhi, whi-blo, strings.Join(want, " and "))
	return c
}

func latencies(ss []Sample) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = s.Latency
	}
	return out
}

// perSecond takes the statistic of each second of samples (by intended
// send time; seconds with fewer than 10 samples are left out) and returns
// the median over the seconds with the lowest and highest.
func perSecond(ss []Sample, name string) (med, lo, hi float64) {
	buckets := map[int64][]time.Duration{}
	for _, s := range ss {
		k := s.Intended.Unix()
		buckets[k] = append(buckets[k], s.Latency)
	}
	var vals []float64
	for _, b := range buckets {
		if len(b) >= 10 {
			v, _, _ := stat(b, name)
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return stat(latencies(ss), name)
	}
	sort.Float64s(vals)
	n := len(vals)
	med = vals[n/2]
	if n%2 == 0 {
		med = (vals[n/2-1] + vals[n/2]) / 2
	}
	return med, vals[0], vals[n-1]
}

// stat is a statistic of latencies in ms, with its interval at
// shiftConfidence: for a quantile the distribution-free one of
// stats.QuantileCI, for the mean the normal one of stats.MeanCI.
func stat(ds []time.Duration, name string) (v, lo, hi float64) {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = ms(d)
	}
	sort.Float64s(xs)
	if name == "mean" {
		return stats.MeanCI(xs, 1-shiftConfidence)
	}
	q := map[string]float64{"p50": 0.5, "p90": 0.9, "p99": 0.99}[name]
	return stats.QuantileCI(xs, q, 1-shiftConfidence)
}
