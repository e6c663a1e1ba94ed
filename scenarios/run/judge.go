package run

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/expect"
	"github.com/meshbench/meshbench/sim/meshmetrics"
)

// outcome is what the checks of one load phase read: its samples, their
// latency overall and per variant, the sidecars' counters over the phase
// (none: nil) and the services called proxyless.
func outcome(samples []sample, counters *meshmetrics.Counters, proxyless map[string]bool) *expect.Outcome {
	out := &expect.Outcome{
		Samples: measured(samples), Latency: latencyOf(samples),
		VariantLatency: map[string]reports.Latency{}, Proxyless: proxyless,
	}
	if counters != nil {
		out.Mesh = *counters
	}
	variants := map[string][]sample{}
	for _, s := range samples {
		if s.variant != "" {
			variants[s.variant] = append(variants[s.variant], s)
		}
	}
	for v, ss := range variants {
		out.VariantLatency[v] = latencyOf(ss)
	}
	return out
}

// measured is the sample as the checks read it.
func (s sample) measured() expect.Sample {
	return expect.Sample{
		Variant: s.variant, Code: s.code, OK: s.ok(), Intended: s.intended, Latency: s.latency,
		Versions: s.versions, Attempts: s.attempts, Messages: s.messages, Deadlines: s.deadlines, Flags: s.flags,
	}
}

func measured(samples []sample) []expect.Sample {
	out := make([]expect.Sample, len(samples))
	for i, s := range samples {
		out[i] = s.measured()
	}
	return out
}

// judge judges every expectation on the main phase's outcome, in one
// pass. The result lists the checks of what the faults did after the
// others: the faults check and the steady-state phases' checks (cr, nil
// without chaos or steady state), then the latency shifts.
func judge(res *reports.Result, es []expect.Expectation, out *expect.Outcome, cr *chaosRun) {
	res.Passed = true
	var shifts []reports.Check
	for _, e := range es {
		c := e.Judge(out)
		if _, ok := e.Kind.(*expect.LatencyShift); ok {
			shifts = append(shifts, c)
			continue
		}
		addCheck(res, c)
	}
	if cr != nil {
		cr.finish(res)
	}
	for _, c := range shifts {
		addCheck(res, c)
	}
}

func addCheck(res *reports.Result, c reports.Check) {
	res.Checks = append(res.Checks, c)
	res.Passed = res.Passed && c.Passed
}

// faults are the fault windows and the steady-state phases' samples, for
// the checks that compare them (latencyShift).
func (cr *chaosRun) faults() *expect.Faults {
	f := &expect.Faults{}
	for _, w := range cr.windows {
		f.Windows = append(f.Windows, expect.Window{Step: w.Step, Start: w.Start, End: w.End})
	}
	for _, p := range []*phaseResult{cr.before, cr.after} {
		if p != nil {
			f.Steady = append(f.Steady, measured(p.samples))
		}
	}
	return f
}

// finish adds what the phases showed to the result: the fault windows,
// the mesh's reactions, whether every fault went in and out as scheduled,
// and the steady-state checks.
func (cr *chaosRun) finish(res *reports.Result) {
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
	if len(cr.sc.Chaos) > 0 {
		addCheck(res, cr.faultsCheck())
	}
	if ss := cr.sc.SteadyState; ss != nil {
		for _, ph := range []struct {
			name string
			p    *phaseResult
		}{{"before", cr.before}, {"after", cr.after}} {
			if ph.p == nil {
				continue
			}
			for _, c := range steadyChecks("steady state "+ph.name+" the faults: ", ph.p, ss.Expect) {
				addCheck(res, c)
			}
		}
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

// steadyChecks judges the steady-state expectations on one phase's own
// outcome. No service counts as called proxyless there: the phase reads
// the sidecars' counters as they are.
func steadyChecks(prefix string, p *phaseResult, es []expect.Expectation) []reports.Check {
	out := outcome(p.samples, p.counters, nil)
	checks := make([]reports.Check, len(es))
	for i, e := range es {
		checks[i] = e.Judge(out)
		checks[i].Name = prefix + checks[i].Name
	}
	return checks
}
