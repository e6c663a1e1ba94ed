package scenarios

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/meshbench/meshbench/chaos"
	"github.com/meshbench/meshbench/internal/stats"
	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/sim/runtime"
)

// runLoad drives a scenario's load. Without steadyState and chaos it is the
// plain attack. With them it runs a steady-state phase, then the main phase
// with the faults on their schedule (every fault taken off before it
// returns, on every path, Ctrl-C included) while the sidecars' counters are
// sampled every second, then a second steady-state phase. It returns the
// main phase's samples and duration, and finish, which adds to the result
// what the phases showed: the fault windows, the mesh's reactions, the
// steady-state checks, the latencyShift checks and whether every fault went
// in and out as scheduled.
//
// The checks of expect read the sidecars' counters at the end of the run,
// so retries, ejections and the like count the steady-state phases too.
func runLoad(ctx context.Context, mesh runtime.Mesh, sc *Scenario, ns string, opts Options, pr *progress) ([]sample, time.Duration, func(*reports.Result)) {
	url := mesh.Entry().URL
	if sc.SteadyState == nil && len(sc.Chaos) == 0 {
		samples, took := attackWithProgress(ctx, url, sc, ns, pr)
		return samples, took, func(*reports.Result) {}
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cr := &chaosRun{sc: sc}
	if ss := sc.SteadyState; ss != nil {
		cr.before = steadyPhase(ctx, mesh, sc, ns)
	}

	var runner *chaos.Runner
	var in chaos.Injector
	if len(sc.Chaos) > 0 {
		var err error
		if in, err = chaos.For(mesh, opts.Runtime.Name(), ns, sc.Config); err != nil {
			cr.injectErr = err
		}
	}
	sampler := startReactions(ctx, mesh)
	if in != nil {
		runner = chaos.Start(ctx, in, sc.Steps(), chaos.Options{Seed: uint64(sc.Seed), Log: log.With("component", "chaos")})
		cr.t0 = runner.T0()
	} else {
		cr.t0 = time.Now()
	}
	samples, took := attackWithProgress(ctx, url, sc, ns, pr)
	if runner != nil {
		cr.windows = runner.Stop()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		if err := in.Close(cctx); err != nil {
			cr.closeErr = err
		}
		cancel()
	}
	cr.reactions = sampler.stop()
	cr.main = samples

	if sc.SteadyState != nil && ctx.Err() == nil {
		cr.after = steadyPhase(ctx, mesh, sc, ns)
	}
	return samples, took, cr.finish
}

// chaosRun is what the phases of a run with chaos or a steady state showed.
type chaosRun struct {
	sc            *Scenario
	t0            time.Time
	before, after *phaseResult
	main          []sample
	windows       []chaos.Window
	reactions     []reports.ReactionPoint
	injectErr     error
	closeErr      error
}

// phaseResult is one steady-state phase: its samples and the sidecars'
// counters over it.
type phaseResult struct {
	samples  []sample
	took     time.Duration
	counters *meshCounters
}

// steadyPhase drives the steady-state load and reads the counters it moved.
func steadyPhase(ctx context.Context, mesh runtime.Mesh, sc *Scenario, ns string) *phaseResult {
	ss := sc.SteadyState
	s := *sc
	s.Load.Rate, s.Load.Duration, s.Load.Plan = ss.Rate, ss.Duration, nil
	s0, err0 := snapshotMetrics(ctx, mesh.MetricsEndpoints())
	samples, took := attack(ctx, mesh.Entry().URL, &s, ns)
	s1, err1 := snapshotMetrics(ctx, mesh.MetricsEndpoints())
	pr := &phaseResult{samples: samples, took: took, counters: newMeshCounters()}
	if err0 == nil && err1 == nil {
		_, pr.counters = summarize(s1.since(s0), 0)
	}
	return pr
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
func steadyChecks(prefix string, p *phaseResult, sc *Scenario) []reports.Check {
	s := *sc
	s.Expect = sc.SteadyState.Expect
	s.Load.Rate, s.Load.Duration, s.Load.Plan = sc.SteadyState.Rate, sc.SteadyState.Duration, nil
	r := &reports.Result{Latency: latencyOf(p.samples)}
	judge(r, p.samples, &s, p.counters)
	for i := range r.Checks {
		r.Checks[i].Name = prefix + r.Checks[i].Name
	}
	return r.Checks
}

// latencyShift compares a statistic of the requests sent while the named
// fault (or any fault) was in place with the steady state's, or, without a
// steady state, with the main phase's requests sent while no fault was.
func (cr *chaosRun) latencyShift(e *LatencyShiftExpect) reports.Check {
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

// reactions samples the sidecars' counters every second during the main
// phase and turns them into per-second changes.
type reactions struct {
	stopCh chan struct{}
	done   chan struct{}
	points []reports.ReactionPoint
}

// reactionCounts are one proxy's counters that show the mesh reacting.
type reactionCounts struct {
	retries, ejections, overflows, ejected float64
	flags                                  map[string]float64
}

func startReactions(ctx context.Context, mesh runtime.Mesh) *reactions {
	r := &reactions{stopCh: make(chan struct{}), done: make(chan struct{})}
	start := time.Now()
	client := &http.Client{Timeout: 900 * time.Millisecond, Transport: &http.Transport{}}
	prev := readReactions(ctx, client, mesh.MetricsEndpoints())
	go func() {
		defer close(r.done)
		defer client.CloseIdleConnections()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-r.stopCh:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				cur := readReactions(ctx, client, mesh.MetricsEndpoints())
				r.points = append(r.points, delta(prev, cur, now.Sub(start).Seconds()))
				prev = cur
			}
		}
	}()
	return r
}

func (r *reactions) stop() []reports.ReactionPoint {
	close(r.stopCh)
	<-r.done
	return r.points
}

// delta sums, over the proxies, what their counters did since prev.
func delta(prev, cur map[string]reactionCounts, second float64) reports.ReactionPoint {
	p := reports.ReactionPoint{Second: second}
	d := func(a, b float64) int {
		if a < b { // the proxy restarted: its counters began again
			return int(a)
		}
		return int(a - b)
	}
	names := make([]string, 0, len(cur))
	for n := range cur {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c, b := cur[n], prev[n]
		p.Retries += d(c.retries, b.retries)
		p.Ejections += d(c.ejections, b.ejections)
		p.Overflows += d(c.overflows, b.overflows)
		p.Ejected += int(c.ejected)
		for f, v := range c.flags {
			if x := d(v, b.flags[f]); x > 0 {
				if p.Flags == nil {
					p.Flags = map[string]int{}
				}
				p.Flags[f] += x
			}
		}
	}
	return p
}

// readReactions scrapes every proxy; one that does not answer (a killed
// pod) is left out.
func readReactions(ctx context.Context, c *http.Client, endpoints map[string]string) map[string]reactionCounts {
	out := map[string]reactionCounts{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, url := range endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fams, err := fetchMetrics(ctx, c, url)
			if err != nil {
				return
			}
			rc := reactionCounts{flags: map[string]float64{}}
			sum := func(metric string, gauge bool) float64 {
				t := 0.0
				for _, m := range fams[metric].GetMetric() {
					if gauge {
						t += m.GetGauge().GetValue()
					} else {
						t += m.GetCounter().GetValue()
					}
				}
				return t
			}
			rc.retries = sum("envoy_cluster_upstream_rq_retry", false)
			rc.ejections = sum("envoy_cluster_outlier_detection_ejections_enforced_total", false)
			rc.overflows = sum("envoy_cluster_upstream_rq_pending_overflow", false)
			rc.ejected = sum("envoy_cluster_outlier_detection_ejections_active", true)
			for _, m := range fams["istio_requests_total"].GetMetric() {
				if label(m, "reporter") != "source" {
					continue
				}
				if f := label(m, "response_flags"); f != "" && f != "-" {
					for _, one := range strings.Split(f, ",") {
						rc.flags[one] += m.GetCounter().GetValue()
					}
				}
			}
			mu.Lock()
			out[name] = rc
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
