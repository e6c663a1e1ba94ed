package run

import (
	"context"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/meshbench/meshbench/chaos"
	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/sim/meshmetrics"
	"github.com/meshbench/meshbench/sim/runtime"
)

// mainPhase drives the main load phase of a run with steadyState or chaos:
// the faults on their schedule (every fault taken off before it returns,
// on every path, Ctrl-C included) while the sidecars' counters are sampled
// every second. It returns the phase's samples and duration; finish (in
// the judge phase) adds to the result what the phases showed: the fault
// windows, the mesh's reactions, the steady-state checks, the latencyShift
// checks and whether every fault went in and out as scheduled.
//
// The checks of expect read the sidecars' counters at the end of the run,
// so retries, ejections and the like count the steady-state phases too.
func (cr *chaosRun) mainPhase(ctx context.Context, mesh runtime.Mesh, ns string, opts Options, pr *progress) ([]sample, time.Duration) {
	sc := cr.sc
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
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
	samples, took := attackWithProgress(ctx, mesh.Entry().URL, sc, ns, pr)
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
	return samples, took
}

// chaosRun is what the phases of a run with chaos or a steady state showed.
type chaosRun struct {
	sc            *scenario
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
	counters *meshmetrics.Counters
}

// steadyPhase drives the steady-state load and reads the counters it moved.
func steadyPhase(ctx context.Context, mesh runtime.Mesh, sc *scenario, ns string) *phaseResult {
	ss := sc.SteadyState
	s := *sc
	s.Load.Rate, s.Load.Duration, s.Load.Plan = ss.Rate, ss.Duration, nil
	s0, err0 := meshmetrics.Read(ctx, mesh.MetricsEndpoints())
	samples, took := attack(ctx, mesh.Entry().URL, &s, ns)
	s1, err1 := meshmetrics.Read(ctx, mesh.MetricsEndpoints())
	pr := &phaseResult{samples: samples, took: took, counters: meshmetrics.NewCounters()}
	if err0 == nil && err1 == nil {
		_, pr.counters = meshmetrics.Summarize(s1.Since(s0), 0)
	}
	return pr
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
			fams, err := meshmetrics.Fetch(ctx, c, url)
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
			rc.retries = sum(meshmetrics.UpstreamRetries, false)
			rc.ejections = sum(meshmetrics.EjectionsEnforced, false)
			rc.overflows = sum(meshmetrics.PendingOverflow, false)
			rc.ejected = sum(meshmetrics.EjectionsActive, true)
			for _, m := range fams[meshmetrics.RequestsTotal].GetMetric() {
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
