package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	goruntime "runtime"
	"time"

	"github.com/meshbench/meshbench/reports"
	scenariorun "github.com/meshbench/meshbench/scenarios/run"
	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/kind"
	"github.com/meshbench/meshbench/sim/local"
	"github.com/meshbench/meshbench/sim/runtime"
	"github.com/meshbench/meshbench/sim/tracing"
)

// parallelFlags are -parallel and -rate-budget of a command that runs
// several scenarios.
type parallelFlags struct {
	n, rateBudget *int
}

// parallelFlag registers -parallel and -rate-budget.
func parallelFlag(fs *flag.FlagSet) parallelFlags {
	return parallelFlagUsage(fs, 1, "local and docker: run up to N scenarios at once, each in a mesh of its own, the longest first; verdicts print in order. "+
		"They share the machine's cores: keep latency checks well clear of what the meshes at once leave (see -rate-budget)")
}

// parallelFlagUsage registers -parallel, with its default and usage, and
// -rate-budget.
func parallelFlagUsage(fs *flag.FlagSet, def int, usage string) parallelFlags {
	return parallelFlags{
		n: fs.Int("parallel", def, usage),
		rateBudget: fs.Int("rate-budget", defaultRateBudget(), "with -parallel: start a scenario only while the peak request rates (per second) of those running, its own included, "+
			"add up to at most this; one that asks for more runs alone. Default: 500/s per CPU. 0: no budget"),
	}
}

// autoParallel is check's -parallel when none is given: on the local
// runtime two scenarios per CPU, at most 4 (the derived loads are small,
// and the schedule's rate budget and CPU gate keep them from crowding
// each other); one at a time elsewhere (containers and clusters weigh
// more than a loopback mesh; kind and kube run one at a time anyway).
func autoParallel(n *int, rt runtime.Runtime) {
	if *n != 0 {
		return
	}
	*n = 1
	if _, ok := rt.(local.Runtime); ok {
		*n = min(4, 2*goruntime.NumCPU())
	}
}

// checkParallel refuses a -parallel the runtime cannot honour: kind and
// kube run a command's scenarios one after another in one cluster.
func checkParallel(f parallelFlags, rt runtime.Runtime) error {
	n := *f.n
	if n < 1 || n > 16 {
		return fmt.Errorf("-parallel %d is not in 1..16", n)
	}
	if *f.rateBudget < 0 {
		return fmt.Errorf("-rate-budget %d is negative", *f.rateBudget)
	}
	switch rt.(type) {
	case kind.Runtime, kind.Kube:
		if n > 1 {
			return errors.New("-parallel is for -runtime local and docker: kind and kube run one scenario at a time in one cluster")
		}
	}
	return nil
}

// suiteRun runs a command's scenarios on one runtime and writes each one's
// reports under dir.
type suiteRun struct {
	rt  runtime.Runtime
	log *slog.Logger
	// fwd, when set, posts each scenario's traces to a user's collector.
	fwd *tracing.Forwarder
	dir string
	// parallel is how many scenarios run at once (1: one after another,
	// with a live progress line on a terminal).
	parallel int
	// rateBudget caps the peak request rates of the scenarios running at
	// once, added up (schedule); 0: no cap.
	rateBudget     int
	stdout, stderr io.Writer
}

// run runs scs, printing each one's verdict lines in order, and adds their
// results to suite. It returns how many failed.
func (s suiteRun) run(ctx context.Context, scs []*spec.Scenario, suite *reports.Suite) (int, error) {
	next := func() runtime.Runtime { return s.rt }
	if kr, ok := s.rt.(kind.Runtime); ok && len(scs) > 1 {
		// The command's scenarios share one cluster, deleted at the end
		// (Ctrl-C included) unless -keep.
		sess := kind.NewSession(kr)
		defer func() {
			if err := sess.Close(context.Background()); err != nil {
				fmt.Fprintf(s.stderr, "deleting kind cluster %s: %v\n", sess.Cluster(), err)
			}
		}()
		next = func() runtime.Runtime { return sess.Runtime() }
	}
	if s.parallel <= 1 {
		var progress io.Writer
		if isTerminal(s.stderr) {
			progress = s.stderr
		}
		for _, sc := range scs {
			res, err := s.one(ctx, next(), sc, progress, s.stdout, nil)
			if err != nil || ctx.Err() != nil {
				return failedOf(suite), s.stopped(ctx, err)
			}
			suite.Scenarios = append(suite.Scenarios, res)
		}
		return failedOf(suite), nil
	}
	// Each scenario writes its lines into a buffer of its own, printed in
	// the command's order once every earlier one is printed.
	type outcome struct {
		res  *reports.Result
		err  error
		out  bytes.Buffer
		done chan struct{}
	}
	outs := make([]*outcome, len(scs))
	for i := range outs {
		outs[i] = &outcome{done: make(chan struct{})}
	}
	// A failure to write stops what has not started and tears down what
	// runs; every goroutine has ended when run returns.
	runCtx, cancel := context.WithCancel(ctx)
	jobs := make([]job, len(scs))
	for i, sc := range scs {
		jobs[i] = job{rate: sc.PeakRate(), length: sc.LoadLength()}
	}
	launched := make(chan struct{})
	defer func() {
		cancel()
		<-launched
	}()
	go func() {
		defer close(launched)
		sched := schedule{limit: s.parallel, budget: s.rateBudget, maxBusy: maxBusyToStart,
			busy: func(ctx context.Context) (float64, error) { return busyShare(ctx, busyWindow) }}
		notStarted := sched.run(runCtx, jobs, func(i int, warmed func()) {
			o := outs[i]
			defer close(o.done)
			o.res, o.err = s.one(runCtx, next(), scs[i], nil, &o.out, warmed)
		})
		for _, i := range notStarted {
			close(outs[i].done)
		}
	}()
	for i := range scs {
		o := outs[i]
		<-o.done
		if ctx.Err() != nil {
			return failedOf(suite), s.stopped(ctx, nil)
		}
		if _, err := o.out.WriteTo(s.stdout); err != nil {
			return failedOf(suite), err
		}
		if o.err != nil {
			return failedOf(suite), o.err
		}
		suite.Scenarios = append(suite.Scenarios, o.res)
	}
	return failedOf(suite), nil
}

// stopped is the command's error once the runs are over: an interrupt
// wins, since the mesh was torn down half way.
func (s suiteRun) stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return &exitError{code: 1, err: errors.New("interrupted: mesh torn down")}
	}
	return err
}

// one runs sc, printing its header and verdict lines to w, and writes its
// reports.
func (s suiteRun) one(ctx context.Context, rt runtime.Runtime, sc *spec.Scenario, progress, w io.Writer, warmed func()) (*reports.Result, error) {
	fmt.Fprintf(w, "▶ %s — %s\n", sc.Name, sc.Description)
	printWarnings(w, sc)
	dir := filepath.Join(s.dir, sc.Name)
	res, err := scenariorun.Run(ctx, sc, scenariorun.Options{Runtime: rt, Log: s.log, Progress: progress,
		AccessLogDir: filepath.Join(dir, reports.AccessLogDir), TraceDir: dir, Warmed: warmed})
	if ctx.Err() != nil {
		return nil, nil
	}
	if err != nil {
		res = &reports.Result{Schema: reports.SchemaVersion, Scenario: sc.Name, Description: sc.Description, File: sc.Path, Started: time.Now().UTC(), Error: err.Error()}
	}
	if _, err := reports.WriteRun(dir, res); err != nil {
		return nil, err
	}
	printResult(w, res)
	if s.fwd != nil {
		forwardTraces(ctx, s.fwd, dir, w, s.stderr)
	}
	return res, nil
}

// failedOf counts the suite's failed scenarios.
func failedOf(suite *reports.Suite) int {
	n := 0
	for _, r := range suite.Scenarios {
		if !reports.Verdict(r) {
			n++
		}
	}
	return n
}
