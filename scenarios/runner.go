package scenarios

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	goruntime "runtime"
	"slices"
	"strconv"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/check"
	"github.com/meshbench/meshbench/sim/registry"
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
}

// Run brings the scenario's mesh up, waits until every proxy has ACKed its
// config, drives the load, judges the expectations and tears the mesh down,
// on every path. A run that cannot happen returns an error; a check that
// fails is in the result.
func Run(ctx context.Context, sc *Scenario, opts Options) (*reports.Result, error) {
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
func StartMesh(ctx context.Context, sc *Scenario, opts Options) (runtime.Mesh, error) {
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
func Drive(ctx context.Context, mesh runtime.Mesh, sc *Scenario, opts Options) (*reports.Result, error) {
	return drive(ctx, mesh, sc, opts, newResult(sc, opts))
}

// MeshTopology is the topology the scenario's mesh runs: its own or the
// default sample, with defaults filled in.
func (s *Scenario) MeshTopology() registry.Topology {
	topo := registry.DefaultTopology()
	if s.Topology != nil {
		topo = *s.Topology
	}
	return registry.WithDefaults(topo)
}

// LoadTarget is where the scenario's load goes through the gateway: the
// Host it names (the target service's FQDN) and the path (the load's own,
// else the service's).
func (s *Scenario) LoadTarget() (host, path string) {
	topo := s.MeshTopology()
	svc := registry.ServiceInfo{Service: registry.Service{Name: s.Load.Target}, Namespace: topo.Namespace}
	path = s.Load.Path
	if path == "" {
		if info, ok := (&registry.Registry{Services: servicesOf(topo)}).Service(s.Load.Target); ok {
			path = info.Path
		}
	}
	return svc.FQDN(), path
}

// RunSeed is the scenario's seed; 1 when it gives none.
func (s *Scenario) RunSeed() int64 {
	if s.Seed == 0 {
		return 1
	}
	return s.Seed
}

func logger(opts Options, sc *Scenario) *slog.Logger {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return log.With("scenario", sc.Name)
}

func newResult(sc *Scenario, opts Options) *reports.Result {
	return &reports.Result{
		Schema: reports.SchemaVersion, Scenario: sc.Name, Description: sc.Description, File: sc.Path,
		Warnings: sc.Warnings.Lines(), Started: time.Now().UTC(),
		Environment: reports.Environment{
			Runtime: opts.Runtime.Name(), DataPlane: opts.Runtime.DataPlane(),
			GoVersion: goruntime.Version(), OS: goruntime.GOOS, Arch: goruntime.GOARCH, CPUs: goruntime.NumCPU(), Seed: sc.RunSeed(),
		},
	}
}

// drive is Drive into res.
func drive(ctx context.Context, mesh runtime.Mesh, sc *Scenario, opts Options, res *reports.Result) (*reports.Result, error) {
	log := logger(opts, sc)
	topo := sc.MeshTopology()
	version := mesh.Version()
	log.Info("mesh converged; load starts", "config_version", version, "entry", mesh.Entry().URL)
	// The counters the checks read are what this run moved: a proxy that
	// outlives a scenario (a reused kind cluster's gateway) keeps counting.
	before, err := snapshotMetrics(ctx, mesh.MetricsEndpoints())
	if err != nil {
		log.Warn("reading the sidecars' metrics before the load", "err", err)
	}

	l := sc.Load
	_, l.Path = sc.LoadTarget()
	if l.Method == "" {
		l.Method = "POST"
	}
	if l.Timeout == 0 {
		l.Timeout = DefaultTimeout
	}
	l.timeLimit = opts.LoadTimeLimit
	run := *sc
	run.Load = l
	note := capRate(&run, opts.Runtime)
	l = run.Load
	warm(ctx, mesh.Entry().URL, &run, topo.Namespace)
	var pr *progress
	if opts.Progress != nil {
		pr = &progress{}
		stopProgress := showProgress(opts.Progress, pr, l.Duration.D())
		defer stopProgress()
	}
	// Steady-state phases and faults on their schedule around the load (chaos_run.go).
	samples, took, finishChaos := runLoad(ctx, mesh, &run, topo.Namespace, opts, pr)
	defer finishChaos(res)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("run interrupted: %w", err)
	}
	summarise(res, samples, took, &run, mesh.Entry().URL)
	res.Load.Note = note
	res.Timeline = timeline(samples, splitService(sc))
	counters := newMeshCounters()
	if after, err := snapshotMetrics(ctx, mesh.MetricsEndpoints()); err != nil {
		log.Warn("reading the sidecars' metrics", "err", err)
	} else {
		res.Hops, counters = summarize(after.since(before), took.Seconds())
	}
	counters.proxyless = proxylessCallees(opts.Runtime, topo)
	judge(res, samples, &run, counters)
	res.Duration = time.Since(res.Started).Seconds()
	return res, nil
}

// showProgress redraws one line twice a second until the returned func is called.
func showProgress(w io.Writer, pr *progress, total time.Duration) func() {
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case now := <-t.C:
				n := pr.requests.Load()
				rate := float64(n-last) / now.Sub(lastAt).Seconds()
				last, lastAt = n, now
				fmt.Fprintf(w, "\r\033[K  %4.1fs/%s  %d requests  %.0f/s  %d errors", now.Sub(start).Seconds(), total, n, rate, pr.errors.Load())
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// WarmupDuration is how long load runs, unmeasured, before the measured
// phase: connection pools and TLS sessions fill up first, so the first
// second of a run does not measure handshakes.
const WarmupDuration = time.Second

// warmupFrom is the share of the load's rate the warm-up starts at.
const warmupFrom = 0.2

// WarmupRequests is how many requests the warm-up of a load at perSecond
// sends (a load with variants sends it per variant, give or take one).
func WarmupRequests(perSecond float64) int {
	_, n := ramp(warmupFrom, perSecond, WarmupDuration)
	return n
}

// warm ramps the load from a fifth of its rate to the full rate over
// WarmupDuration and drops the samples. It returns once every warm-up
// request has its answer, so the measured phase starts on an empty pipe:
// no queue built during the warm-up is carried into the measurement, and
// the connection pools are as large as the measured rate needs (on kind, a
// warm-up at a fifth of the rate left the first measured seconds queueing
// behind new mTLS connections: p50 0.5-4 s at 200/s, 25 ms after a ramp).
func warm(ctx context.Context, url string, sc *Scenario, ns string) (drained time.Time) {
	w := *sc
	w.Load.Duration = units.Duration(WarmupDuration)
	w.Load.rampFrom = warmupFrom
	if p := w.Load.Plan; p != nil {
		// A plan warms up to its first rate: the pools grow as its
		// first step needs, and the later steps show what more load does.
		w.Load.Rate, w.Load.Plan = p.firstRate(), nil
	}
	_, _ = attack(ctx, url, &w, ns)
	return time.Now()
}

// splitService is the service whose versions the timeline follows: the
// first split expectation's, else the last service that has several versions.
func splitService(sc *Scenario) string {
	for _, e := range sc.Expect {
		if e.Split != nil {
			return e.Split.Service
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

func servicesOf(t registry.Topology) []registry.ServiceInfo {
	var out []registry.ServiceInfo
	for _, s := range t.Services {
		out = append(out, registry.ServiceInfo{Service: s, Namespace: t.Namespace})
	}
	return out
}

// summarise fills the load, latency, status and split parts of the result.
func summarise(res *reports.Result, samples []sample, took time.Duration, sc *Scenario, url string) {
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
		res.Steps = steps(samples, l.windows())
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

// judge evaluates every expectation of the scenario.
func judge(res *reports.Result, samples []sample, sc *Scenario, mc *meshCounters) {
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
			c = check.Bounds("retries to "+e.Retries.Service, "retries", mc.retries[e.Retries.Service], e.Retries.Min, e.Retries.Max, len(samples), "retries")
		case e.Ejections != nil:
			c = check.Bounds("ejections of "+e.Ejections.Service, "ejections", mc.ejections[e.Ejections.Service], e.Ejections.Min, e.Ejections.Max, len(samples), "ejections")
		case e.Overflows != nil:
			c = check.Bounds("overflows to "+e.Overflows.Service, "overflows", mc.overflows[e.Overflows.Service], e.Overflows.Min, e.Overflows.Max, len(samples), "requests refused (UO)")
		case e.ResponseFlags != nil:
			f := e.ResponseFlags
			name := fmt.Sprintf("flag %s to %s", f.Flag, f.Service)
			if f.Variant == "" {
				c = check.Bounds(name, "responseFlags", mc.flags[f.Service][f.Flag], f.Min, f.Max, len(samples), "responses flagged "+f.Flag)
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
			c = check.Bounds(fmt.Sprintf("%s requests to %s", sec.Policy, sec.Service), "security", mc.security[sec.Service][sec.Policy], sec.Min, sec.Max, len(samples), "requests and TCP connections received with connection_security_policy="+sec.Policy)
		case e.Rotations != nil:
			c = check.Bounds("certificate rotations", "rotations", mc.rotations, e.Rotations.Min, e.Rotations.Max, len(samples), "certificate rotations seen by the proxies")
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
		return DefaultConfidence
	}
	return c
}

// capRate lowers the load's rate to what the runtime holds, if it says
// (runtime.RateLimiter), and lengthens the load so that the same number of
// requests is sent: the checks keep their power. Scenarios with steady-state
// phases or a chaos schedule keep their rate: their timing is the point.
func capRate(sc *Scenario, rt runtime.Runtime) string {
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
