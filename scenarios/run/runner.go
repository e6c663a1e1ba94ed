// Package run drives a scenario through a mesh as an ordered list of
// phases (start, converge, warm, steady-before, load with chaos,
// steady-after, scrape, judge) and returns its result. The traffic is
// traffic.go, the judging judge.go; the sidecars' counters are read with
// package meshmetrics.
package run

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	goruntime "runtime"
	"strconv"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/expect"
	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/meshmetrics"
	"github.com/meshbench/meshbench/sim/runtime"
)

// Options say where and how to run a scenario.
type Options struct {
	Runtime runtime.Runtime
	Log     *slog.Logger
	// Progress, when set, receives a live progress line (elapsed, requests,
	// current rate, errors) while load runs; the CLI sets it for a terminal.
	Progress io.Writer
	// LoadTimeLimit bounds how long each load phase may take to send its
	// rate × duration requests; 0 means three times its duration. A test
	// on a slow machine (the race detector, other builds) sets it generous,
	// so that its load is bounded by count, not by time.
	LoadTimeLimit time.Duration
	// AccessLogDir is where each proxy's access log goes when the scenario
	// sets meshConfig.accessLogFile (runtime.Spec.AccessLogDir); the CLI
	// sets <run folder>/<scenario>/access-logs.
	AccessLogDir string
	// TraceDir is where the run's spans go when its mesh's tracing names a
	// collector (runtime.Spec.TraceDir); the CLI sets the scenario's run
	// folder, where the reports read them.
	TraceDir string
	// BeforeLoad, when set, is called as the measured load phase starts:
	// after the warm-up has drained (every warm-up request answered) and
	// a steady state's first phase, before the first measured request.
	// The load waits until it returns. A test reads the mesh's counters
	// there to tell the load's requests from the warm-up's.
	BeforeLoad func()
	// Warmed, when set, is called once the warm-up has drained: the mesh
	// is up and its load about to run at full rate. A suite running
	// scenarios side by side starts the next one then, so that no two
	// meshes start and warm up at once.
	Warmed func()
}

// Run brings the scenario's mesh up, waits until every proxy has ACKed its
// config, drives the load, judges the expectations and tears the mesh down,
// on every path. sc is a scenario as spec loads it, its defaults filled
// in. A run that cannot happen returns an error; a check that fails is in
// the result.
func Run(ctx context.Context, sc *spec.Scenario, opts Options) (*reports.Result, error) {
	res := newResult(sc, opts)
	mesh, err := StartMesh(ctx, sc, opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := mesh.Stop(context.Background()); err != nil {
			logger(opts, sc).Warn("mesh stop", "err", err)
		}
	}()
	return drive(ctx, mesh, sc, opts, res)
}

// StartMesh brings the scenario's mesh up on opts.Runtime, within the
// runtime's start limit, and returns once every proxy has ACKed the
// scenario's config. The caller stops the mesh.
func StartMesh(ctx context.Context, sc *spec.Scenario, opts Options) (runtime.Mesh, error) {
	startCtx, cancel := context.WithTimeout(ctx, runtime.StartLimit(opts.Runtime))
	defer cancel()
	mesh, err := opts.Runtime.Start(startCtx, runtime.Spec{Topology: sc.MeshTopology(), Config: sc.Config, Seed: sc.RunSeed(), Log: logger(opts, sc), AccessLogDir: opts.AccessLogDir, TraceDir: opts.TraceDir})
	if err != nil {
		return nil, fmt.Errorf("start mesh: %w", err)
	}
	return mesh, nil
}

// Drive runs the scenario's load through a mesh StartMesh brought up and
// judges the expectations, as Run does; the mesh is left running.
func Drive(ctx context.Context, mesh runtime.Mesh, sc *spec.Scenario, opts Options) (*reports.Result, error) {
	return drive(ctx, mesh, sc, opts, newResult(sc, opts))
}

func logger(opts Options, sc *spec.Scenario) *slog.Logger {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return log.With("scenario", sc.Name)
}

func newResult(sc *spec.Scenario, opts Options) *reports.Result {
	return &reports.Result{
		Schema: reports.SchemaVersion, Scenario: sc.Name, Description: sc.Description, File: sc.Path,
		Warnings: sc.Warnings.Lines(), Started: time.Now().UTC(),
		Environment: reports.Environment{
			Runtime: opts.Runtime.Name(), DataPlane: opts.Runtime.DataPlane(),
			GoVersion: goruntime.Version(), OS: goruntime.GOOS, Arch: goruntime.GOARCH, CPUs: goruntime.NumCPU(), Seed: sc.RunSeed(),
		},
	}
}

// scenario is a scenario as a run drives it: the spec as loaded, and how its load phases are paced beyond what the
// file says.
type scenario struct {
	spec.Scenario
	// timeLimit is Options.LoadTimeLimit, for the run's load phases.
	timeLimit time.Duration
	// rampFrom, when above 0, makes the phase a linear ramp from this share
	// of each stream's rate up to the full rate (the warm-up), not a
	// constant rate.
	rampFrom float64
}

// run is one scenario run, which its phases fill in one after the other.
type run struct {
	ctx  context.Context
	mesh runtime.Mesh
	spec *spec.Scenario
	sc   *scenario // what the phases drive
	opts Options
	log  *slog.Logger
	ns   string
	res  *reports.Result

	before   meshmetrics.Snapshot // the counters at the start
	note     string               // on the load's rate, if the runtime capped it
	progress *progress
	chaos    *chaosRun // nil without steadyState and chaos
	samples  []sample  // of the main load phase
	took     time.Duration
	counters *meshmetrics.Counters // what the sidecars counted in the run
	// proxyless are the services whose callers call them proxyless
	// (proxyless_checks.go).
	proxyless map[string]bool
}

// phases are the steps of a run once its mesh is up (StartMesh), in order.
var phases = []struct {
	name string
	do   func(*run) error
}{
	{"converge", (*run).converge},
	{"warm", (*run).warm},
	{"steady-before", (*run).steadyBefore},
	{"load", (*run).load},
	{"steady-after", (*run).steadyAfter},
	{"scrape", (*run).scrape},
	{"judge", (*run).judge},
}

// drive is Drive into res: every phase in order.
func drive(ctx context.Context, mesh runtime.Mesh, sc *spec.Scenario, opts Options, res *reports.Result) (*reports.Result, error) {
	r := &run{ctx: ctx, mesh: mesh, spec: sc, opts: opts, log: logger(opts, sc), ns: sc.MeshTopology().Namespace, res: res}
	for _, p := range phases {
		if err := p.do(r); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// converge notes the config version every proxy ACKed (StartMesh waited
// for it), reads the counters the run starts from, and settles what the
// phases drive: the load as spec loaded it (its defaults filled in there)
// at the rate the runtime holds.
func (r *run) converge() error {
	r.log.Info("mesh converged; load starts", "config_version", r.mesh.Version(), "entry", r.mesh.Entry().URL)
	// The counters the checks read are what this run moved: a proxy that
	// outlives a scenario (a reused kind cluster's gateway) keeps counting.
	var err error
	if r.before, err = meshmetrics.Read(r.ctx, r.mesh.MetricsEndpoints()); err != nil {
		r.log.Warn("reading the sidecars' metrics before the load", "err", err)
	}
	r.sc = &scenario{Scenario: *r.spec, timeLimit: r.opts.LoadTimeLimit}
	r.note = capRate(r.sc, r.opts.Runtime)
	return nil
}

// warm runs the unmeasured warm-up (warm).
func (r *run) warm() error {
	warm(r.ctx, r.mesh.Entry().URL, r.sc, r.ns, runtime.Warmup(r.opts.Runtime))
	if r.opts.Warmed != nil {
		r.opts.Warmed()
	}
	return nil
}

// steadyBefore runs the first steady-state phase, if the scenario has one.
func (r *run) steadyBefore() error {
	if r.sc.SteadyState != nil || len(r.sc.Chaos) > 0 {
		r.chaos = &chaosRun{sc: r.sc}
	}
	if r.sc.SteadyState != nil {
		r.chaos.before = steadyPhase(r.ctx, r.mesh, r.sc, r.ns)
	}
	return nil
}

// load drives the measured load, with the faults on their schedule when
// the scenario has chaos or a steady state (chaos_run.go).
func (r *run) load() error {
	if r.opts.BeforeLoad != nil {
		r.opts.BeforeLoad()
	}
	if r.opts.Progress != nil {
		r.progress = &progress{}
		stop := showProgress(r.opts.Progress, r.progress, r.sc.Load.Duration.D())
		defer stop()
	}
	if r.chaos == nil {
		r.samples, r.took = attackWithProgress(r.ctx, r.mesh.Entry().URL, r.sc, r.ns, r.progress)
		return nil
	}
	r.samples, r.took = r.chaos.mainPhase(r.ctx, r.mesh, r.ns, r.opts, r.progress)
	return nil
}

// steadyAfter runs the second steady-state phase, unless the run was interrupted.
func (r *run) steadyAfter() error {
	if r.sc.SteadyState != nil && r.ctx.Err() == nil {
		r.chaos.after = steadyPhase(r.ctx, r.mesh, r.sc, r.ns)
	}
	return nil
}

// scrape sums the load's samples up and reads what the sidecars counted
// since the run started.
func (r *run) scrape() error {
	if err := r.ctx.Err(); err != nil {
		return fmt.Errorf("run interrupted: %w", err)
	}
	summarise(r.res, r.samples, r.took, r.sc, r.mesh.Entry().URL)
	r.res.Load.Note = r.note
	r.res.Timeline = timeline(r.samples, splitService(r.spec))
	r.counters = meshmetrics.NewCounters()
	if after, err := meshmetrics.Read(r.ctx, r.mesh.MetricsEndpoints()); err != nil {
		r.log.Warn("reading the sidecars' metrics", "err", err)
	} else {
		r.res.Hops, r.counters = meshmetrics.Summarize(after.Since(r.before), r.took.Seconds())
	}
	r.proxyless = proxylessCallees(r.opts.Runtime, r.spec.MeshTopology())
	return nil
}

// judge judges the expectations on the run's outcome, with what the
// steady-state phases and the faults showed (judge.go).
func (r *run) judge() error {
	out := outcome(r.samples, r.counters, r.proxyless)
	out.Steps = r.res.Steps
	if r.chaos != nil {
		out.Faults = r.chaos.faults()
	}
	judge(r.res, r.sc.Expect, out, r.chaos)
	r.res.Duration = time.Since(r.res.Started).Seconds()
	return nil
}

// WarmupDuration is how long load runs, unmeasured, before the measured
// phase, on runtimes that ask for no other (runtime.Warmup): connection
// pools and TLS sessions fill up first, so the first second of a run does
// not measure handshakes.
const WarmupDuration = runtime.DefaultWarmup

// warmupFrom is the share of the load's rate the warm-up starts at.
const warmupFrom = 0.2

// WarmupRequests is how many requests the warm-up of a load at perSecond
// sends (a load with variants sends it per variant, give or take one).
func WarmupRequests(perSecond float64) int {
	_, n := ramp(warmupFrom, perSecond, WarmupDuration)
	return n
}

// warm ramps the load from a fifth of its rate to the full rate over d
// (the runtime's runtime.Warmup) and drops the samples. It returns once every warm-up
// request has its answer, so the measured phase starts on an empty pipe:
// no queue built during the warm-up is carried into the measurement, and
// the connection pools are as large as the measured rate needs (on kind, a
// warm-up at a fifth of the rate left the first measured seconds queueing
// behind new mTLS connections: p50 0.5-4 s at 200/s, 25 ms after a ramp).
func warm(ctx context.Context, url string, sc *scenario, ns string, d time.Duration) (drained time.Time) {
	w := *sc
	w.Load.Duration = units.Duration(d)
	w.rampFrom = warmupFrom
	if p := w.Load.Plan; p != nil {
		// A plan warms up to its first rate: the pools grow as its
		// first step needs, and the later steps show what more load does.
		w.Load.Rate, w.Load.Plan = firstRate(p), nil
	}
	_, _ = attack(ctx, url, &w, ns)
	return time.Now()
}

// splitService is the service whose versions the timeline follows: the
// first split expectation's, else the last service that has several versions.
func splitService(sc *spec.Scenario) string {
	for _, e := range sc.Expect {
		if s, ok := e.Kind.(*expect.Split); ok {
			return s.Service
		}
	}
	if sc.Topology != nil {
		for i := len(sc.Topology.Services) - 1; i >= 0; i-- {
			if len(sc.Topology.Services[i].Versions) > 1 {
				return sc.Topology.Services[i].Name
			}
		}
	}
	return ""
}

// summarise fills the load, latency, status and split parts of the result.
func summarise(res *reports.Result, samples []sample, took time.Duration, sc *scenario, url string) {
	l := sc.Load
	res.Load = reports.Load{
		Target: l.Target, URL: url + l.Path, TargetRate: l.Rate.PerSecond(),
		Duration: took.Seconds(), Requests: len(samples),
	}
	if len(samples) > 1 {
		span := samples[len(samples)-1].intended.Sub(samples[0].intended).Seconds()
		if span > 0 {
			res.Load.AchievedRate = float64(len(samples)-1) / span
		}
	}
	if p := l.Plan; p != nil {
		res.Load.TargetRate = p.Requests() / p.Length().Seconds()
		res.Load.Plan = p.String()
		res.Steps = steps(samples, l.Windows())
	}
	res.Latency = latencyOf(samples)
	res.Status = reports.Status{Codes: map[string]int{}}
	res.Split = map[string]map[string]int{}
	res.Pods = map[string]map[string]int{}
	res.ConfigVersions = map[string]int{}
	okCount := 0
	for _, s := range samples {
		res.Status.Codes[strconv.Itoa(s.code)]++
		if s.err != "" {
			if res.Status.Errors == nil {
				res.Status.Errors = map[string]int{}
			}
			res.Status.Errors[describeErr(s.err)]++
		}
		if s.ok() {
			okCount++
		}
		for svc, v := range s.versions {
			if res.Split[svc] == nil {
				res.Split[svc] = map[string]int{}
				res.Pods[svc] = map[string]int{}
			}
			res.Split[svc][v]++
			res.Pods[svc][s.pods[svc]]++
		}
		if s.config != "" {
			res.ConfigVersions[s.config]++
		}
	}
	if len(samples) > 0 {
		res.Status.SuccessRate = float64(okCount) / float64(len(samples))
		if took > 0 {
			res.Load.Throughput = float64(okCount) / took.Seconds()
		}
	}
}

// latencyOf gives exact percentiles from an HDR histogram of the samples'
// latencies measured from their intended send times.
func latencyOf(samples []sample) reports.Latency {
	h := hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
	for _, s := range samples {
		_ = h.RecordValue(max(s.latency.Microseconds(), 1))
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	if h.TotalCount() == 0 {
		return reports.Latency{}
	}
	return reports.Latency{
		Min: ms(h.Min()), P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)), P99: ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max()), Mean: h.Mean() / 1000,
	}
}

// capRate lowers the load's rate to what the runtime holds, if it says
// (runtime.RateLimiter), and lengthens the load so that the same number of
// requests is sent: the checks keep their power. Scenarios with steady-state
// phases or a chaos schedule keep their rate: their timing is the point.
func capRate(sc *scenario, rt runtime.Runtime) string {
	lim, ok := rt.(runtime.RateLimiter)
	if !ok {
		return ""
	}
	l := &sc.Load
	if p := l.Plan; p != nil {
		// A plan asks where load starts to break things: lowering its
		// rates would answer another question, so they run as asked.
		if limit := lim.MaxRate(); limit > 0 && p.Peak() > limit {
			return fmt.Sprintf("the %s runtime holds about %.0f requests/s; the plan's steps above it (up to %.0f/s) run as asked and measure the runtime too", rt.Name(), limit, p.Peak())
		}
		return ""
	}
	asked, limit := l.Rate.PerSecond(), lim.MaxRate()
	if asked <= limit || limit <= 0 {
		return ""
	}
	capped := units.Rate{Freq: int(limit), Per: time.Second}
	if len(sc.Chaos) > 0 || sc.SteadyState != nil {
		// Faults and steady-state phases are scheduled in time: the phases
		// keep their length and send fewer requests.
		n := int(math.Round(limit * l.Duration.D().Seconds()))
		note := fmt.Sprintf("the %s runtime holds %.0f requests/s: %.0f/s for %s asked, run at %.0f/s for the same %s (%d requests; faults and steady-state phases are scheduled in time)",
			rt.Name(), limit, asked, l.Duration.D(), limit, l.Duration.D(), n)
		l.Rate = capped
		if ss := sc.SteadyState; ss != nil && ss.Rate.PerSecond() > limit {
			c := *ss
			c.Rate = capped
			sc.SteadyState = &c
		}
		return note
	}
	d := time.Duration(float64(l.Duration.D()) * asked / limit).Round(time.Millisecond)
	note := fmt.Sprintf("the %s runtime holds %.0f requests/s: %.0f/s for %s asked, run at %.0f/s for %s (the same requests)",
		rt.Name(), limit, asked, l.Duration.D(), limit, d)
	l.Rate = capped
	l.Duration = units.Duration(d)
	return note
}

// timeline buckets the samples by the second they were meant to be sent.
func timeline(samples []sample, splitService string) []reports.TimelinePoint {
	if len(samples) == 0 {
		return nil
	}
	start := samples[0].intended
	var points []reports.TimelinePoint
	var hist *hdrhistogram.Histogram
	flush := func() {
		if hist == nil {
			return
		}
		p := &points[len(points)-1]
		p.P50 = float64(hist.ValueAtQuantile(50)) / 1000
		p.P99 = float64(hist.ValueAtQuantile(99)) / 1000
		p.Max = float64(hist.Max()) / 1000
	}
	for _, s := range samples {
		sec := int(s.intended.Sub(start) / time.Second)
		if len(points) == 0 || points[len(points)-1].Second != sec {
			flush()
			points = append(points, reports.TimelinePoint{Second: sec})
			hist = hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
		}
		p := &points[len(points)-1]
		p.Requests++
		if !s.ok() {
			p.Errors++
		} else if v, ok := s.versions[splitService]; ok && splitService != "" {
			if p.Versions == nil {
				p.Versions = map[string]int{}
			}
			p.Versions[splitService+"/"+v]++
		}
		_ = hist.RecordValue(max(s.latency.Microseconds(), 1))
	}
	flush()
	return points
}
