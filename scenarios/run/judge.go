package run

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/meshbench/meshbench/internal/stats"
	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/check"
	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/meshmetrics"
)

// meshCounters are the sidecars' counters the checks read, and the
// services no sidecar counts for.
type meshCounters struct {
	*meshmetrics.Counters
	// proxyless are the services whose callers call them proxyless (gRPC
	// services with -data-plane grpc): no sidecar on the caller's side
	// counts their retries or sets response flags (proxyless_checks.go).
	proxyless map[string]bool
}

func newMeshCounters() *meshCounters { return &meshCounters{Counters: meshmetrics.NewCounters()} }

// judge evaluates every expectation of the scenario.
func judge(res *reports.Result, samples []sample, sc *spec.Scenario, mc *meshCounters) {
	res.Passed = true
	for _, e := range sc.Expect {
		var c reports.Check
		switch {
		case e.Split != nil:
			counts := map[string]int{}
			for _, s := range samples {
				if (e.Split.Variant == "" || s.variant == e.Split.Variant) && s.ok() {
					if v, ok := s.versions[e.Split.Service]; ok {
						counts[v]++
					}
				}
			}
			c = check.SplitWithin(e.Split.Service, e.Split.Weights, counts, orDefault(e.Split.Confidence), e.Split.Tolerance)
			if e.Split.Variant != "" {
				c.Name += " (" + e.Split.Variant + ")"
			}
		case e.SuccessRate != nil:
			n, ok := 0, 0
			for _, s := range samples {
				if e.SuccessRate.Variant == "" || s.variant == e.SuccessRate.Variant {
					n++
					if s.ok() {
						ok++
					}
				}
			}
			c = check.SuccessRate(ok, n, e.SuccessRate.Min, orDefault(e.SuccessRate.Confidence))
			if e.SuccessRate.Variant != "" {
				c.Name += " (" + e.SuccessRate.Variant + ")"
			}
		case e.Latency != nil:
			ms := func(d units.Duration) float64 { return float64(d.D().Microseconds()) / 1000 }
			minMs, maxMs := map[string]float64{}, map[string]float64{}
			for k, b := range e.Latency.Stats {
				if b.Min > 0 {
					minMs[k] = ms(b.Min)
				}
				if b.Max > 0 {
					maxMs[k] = ms(b.Max)
				}
			}
			sel, lat := samples, res.Latency
			if e.Latency.Variant != "" {
				sel = ofVariant(samples, e.Latency.Variant)
				lat = latencyOf(sel)
			}
			c = check.LatencyWithin(lat, minMs, maxMs, len(sel))
			c.Name += variantSuffix(e.Latency.Variant)
		case e.Status != nil:
			n, k := 0, 0
			for _, s := range samples {
				if e.Status.Variant == "" || s.variant == e.Status.Variant {
					n++
					if s.code == e.Status.Code {
						k++
					}
				}
			}
			name := fmt.Sprintf("status %d share", e.Status.Code) + variantSuffix(e.Status.Variant)
			if e.Status.Share != nil {
				c = check.Share(name, k, n, *e.Status.Share, orDefault(e.Status.Confidence))
			} else {
				share := 0.0
				if n > 0 {
					share = float64(k) / float64(n)
				}
				c = check.Bounds(name, check.KindStatus, share, e.Status.Min, e.Status.Max, n, fmt.Sprintf("share of %d (%d of %d)", e.Status.Code, k, n))
			}
		case e.Retries != nil && mc.proxyless[e.Retries.Service]:
			c = serverSideRetries(e.Retries, samples)
		case e.ResponseFlags != nil && mc.proxyless[e.ResponseFlags.Service]:
			c = refuseFlags(e.ResponseFlags)
		case e.Retries != nil:
			c = check.Bounds("retries to "+e.Retries.Service, "retries", mc.Retries[e.Retries.Service], e.Retries.Min, e.Retries.Max, len(samples), "retries")
		case e.Ejections != nil:
			c = check.Bounds("ejections of "+e.Ejections.Service, "ejections", mc.Ejections[e.Ejections.Service], e.Ejections.Min, e.Ejections.Max, len(samples), "ejections")
		case e.Overflows != nil:
			c = check.Bounds("overflows to "+e.Overflows.Service, "overflows", mc.Overflows[e.Overflows.Service], e.Overflows.Min, e.Overflows.Max, len(samples), "requests refused (UO)")
		case e.ResponseFlags != nil:
			f := e.ResponseFlags
			name := fmt.Sprintf("flag %s to %s", f.Flag, f.Service)
			if f.Variant == "" {
				c = check.Bounds(name, "responseFlags", mc.Flags[f.Service][f.Flag], f.Min, f.Max, len(samples), "responses flagged "+f.Flag)
				break
			}
			// The sidecars' counters do not know the variant: count the
			// variant's requests whose call to the service was flagged.
			sel, n := ofVariant(samples, f.Variant), 0
			for _, s := range sel {
				if slices.Contains(s.flags[f.Service], f.Flag) {
					n++
				}
			}
			c = check.Bounds(name+variantSuffix(f.Variant), "responseFlags", float64(n), f.Min, f.Max, len(sel), "requests whose call was flagged "+f.Flag)
		case e.Attempts != nil:
			most := 0
			sel := samples
			if e.Attempts.Variant != "" {
				sel = ofVariant(samples, e.Attempts.Variant)
			}
			for _, s := range sel {
				most = max(most, s.attempts[e.Attempts.Service])
			}
			c = check.Bounds("attempts at "+e.Attempts.Service+variantSuffix(e.Attempts.Variant), "attempts", float64(most), e.Attempts.Min, e.Attempts.Max, len(sel), "attempts at most (x-envoy-attempt-count)")
		case e.Messages != nil:
			c = messagesCheck(e.Messages, samples)
		case e.Deadline != nil:
			c = deadlineCheck(e.Deadline, samples)
		case e.Capacity != nil:
			c = capacityCheck(e.Capacity, res.Steps)
		case e.Security != nil:
			sec := e.Security
			c = check.Bounds(fmt.Sprintf("%s requests to %s", sec.Policy, sec.Service), "security", mc.Security[sec.Service][sec.Policy], sec.Min, sec.Max, len(samples), "requests and TCP connections received with connection_security_policy="+sec.Policy)
		case e.Rotations != nil:
			c = check.Bounds("certificate rotations", "rotations", mc.Rotations, e.Rotations.Min, e.Rotations.Max, len(samples), "certificate rotations seen by the proxies")
		default:
			continue
		}
		res.Checks = append(res.Checks, c)
		res.Passed = res.Passed && c.Passed
	}
}

// ofVariant is the samples of one load variant.
func ofVariant(samples []sample, variant string) []sample {
	var out []sample
	for _, s := range samples {
		if s.variant == variant {
			out = append(out, s)
		}
	}
	return out
}

// variantSuffix names a check's variant, " (jason)", or nothing.
func variantSuffix(variant string) string {
	if variant == "" {
		return ""
	}
	return " (" + variant + ")"
}

func orDefault(c float64) float64 {
	if c == 0 {
		return spec.DefaultConfidence
	}
	return c
}

// finish adds what the phases showed to the result.
func (cr *chaosRun) finish(res *reports.Result) {
	if res == nil {
		return
	}
	zero := cr.t0
	if len(cr.main) > 0 {
		zero = cr.main[0].intended // the timeline's second 0
	}
	offset := cr.t0.Sub(zero).Seconds()
	at := func(t time.Time) float64 { return math.Round(t.Sub(zero).Seconds()*1000) / 1000 }
	for _, w := range cr.windows {
		fw := reports.FaultWindow{Name: w.Step, Kind: string(w.Kind), Target: w.Target, Detail: w.Detail, Mechanism: w.Mechanism, Error: w.Err}
		if !w.Start.IsZero() {
			fw.Start, fw.End = at(w.Start), at(w.End)
		}
		res.Faults = append(res.Faults, fw)
	}
	for _, p := range cr.reactions {
		p.Second += offset
		p.Second = math.Round(p.Second*1000) / 1000
		res.Reactions = append(res.Reactions, p)
	}
	var checks []reports.Check
	if len(cr.sc.Chaos) > 0 {
		checks = append(checks, cr.faultsCheck())
	}
	if ss := cr.sc.SteadyState; ss != nil {
		for _, ph := range []struct {
			name string
			p    *phaseResult
		}{{"before", cr.before}, {"after", cr.after}} {
			if ph.p == nil {
				continue
			}
			checks = append(checks, steadyChecks("steady state "+ph.name+" the faults: ", ph.p, cr.sc)...)
		}
	}
	for _, e := range cr.sc.Expect {
		if e.LatencyShift != nil {
			checks = append(checks, cr.latencyShift(e.LatencyShift))
		}
	}
	for _, c := range checks {
		res.Checks = append(res.Checks, c)
		res.Passed = res.Passed && c.Passed
	}
}

// faultsCheck passes when every fault went in and came out as scheduled.
func (cr *chaosRun) faultsCheck() reports.Check {
	c := reports.Check{Name: "faults injected and removed", Kind: "chaos", N: len(cr.windows)}
	var bad []string
	if cr.injectErr != nil {
		bad = append(bad, cr.injectErr.Error())
	}
	for _, w := range cr.windows {
		if w.Err != "" {
			bad = append(bad, fmt.Sprintf("%s (%s on %s): %s", w.Step, w.Kind, w.Target, w.Err))
		}
	}
	if cr.closeErr != nil {
		bad = append(bad, "cleaning up: "+cr.closeErr.Error())
	}
	c.Passed = len(bad) == 0
	if c.Passed {
		c.Summary = fmt.Sprintf("%d fault windows put in place and taken off as scheduled", len(cr.windows))
	} else {
		c.Summary = strings.Join(bad, "; ")
	}
	return c
}

// steadyChecks judges the steady-state expectations on one phase.
func steadyChecks(prefix string, p *phaseResult, sc *scenario) []reports.Check {
	s := *sc
	s.Expect = sc.SteadyState.Expect
	s.Load.Rate, s.Load.Duration, s.Load.Plan = sc.SteadyState.Rate, sc.SteadyState.Duration, nil
	r := &reports.Result{Latency: latencyOf(p.samples)}
	judge(r, p.samples, &s.Scenario, p.counters)
	for i := range r.Checks {
		r.Checks[i].Name = prefix + r.Checks[i].Name
	}
	return r.Checks
}

// latencyShift compares a statistic of the requests sent while the named
// fault (or any fault) was in place with the steady state's, or, without a
// steady state, with the main phase's requests sent while no fault was.
func (cr *chaosRun) latencyShift(e *spec.LatencyShiftExpect) reports.Check {
	label := "any fault"
	if e.Fault != "" {
		label = e.Fault
	}
	name := label
	if e.Settle > 0 {
		name += " (after " + e.Settle.String() + " to settle)"
	}
	c := reports.Check{Name: fmt.Sprintf("%s shift during %s", e.Stat, name), Kind: "latencyShift", Test: "difference of sample statistics; 99% distribution-free intervals"}
	type span struct{ from, to time.Time }
	var during, all []span
	for _, w := range cr.windows {
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
	var win, base []sample
	for _, s := range cr.main {
		if in(s.intended, during) {
			win = append(win, s)
		}
	}
	baseline := "the steady-state phases"
	if cr.before != nil || cr.after != nil {
		for _, p := range []*phaseResult{cr.before, cr.after} {
			if p != nil {
				base = append(base, p.samples...)
			}
		}
	} else {
		baseline = "the requests sent while no fault was in place"
		for _, s := range cr.main {
			if !in(s.intended, all) {
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

func latencies(ss []sample) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = s.latency
	}
	return out
}

// perSecond takes the statistic of each second of samples (by intended
// send time; seconds with fewer than 10 samples are left out) and returns
// the median over the seconds with the lowest and highest.
func perSecond(ss []sample, name string) (med, lo, hi float64) {
	buckets := map[int64][]time.Duration{}
	for _, s := range ss {
		k := s.intended.Unix()
		buckets[k] = append(buckets[k], s.latency)
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

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// shiftConfidence is the confidence of the intervals a latency shift check
// reports around each side's statistic.
const shiftConfidence = 0.99

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
