package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"time"

	"github.com/meshbench/meshbench/derive"
	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/spec"
)

// cmdCheck derives scenarios from a team's own Istio YAML and runs them,
// or, with -o, writes them for the team to keep.
func cmdCheck(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	write := fs.String("o", "", "write the derived scenarios into this folder (and in its mesh/ folder the resources they apply), and run nothing")
	out := fs.String("out", "runs", "folder under which the run writes its reports")
	dir := fs.String("dir", "", "write the reports into this folder instead of a new timestamped one under -out")
	var opt derive.Options
	fs.IntVar(&opt.Replicas, "replicas", 2, "pods per inferred version")
	fs.Float64Var(&opt.Alpha, "alpha", derive.DefaultAlpha, "each statistical check's false-failure rate")
	fs.Float64Var(&opt.Power, "power", derive.DefaultPower, "the chance that a check catches a deviation of -shift from its promise")
	fs.Float64Var(&opt.Shift, "shift", derive.DefaultShift, "the smallest deviation of a share (a weight, an abort percentage) a check must catch")
	fs.IntVar(&opt.Rate, "rate", derive.DefaultRate, "requests per second of each derived load")
	verbose := fs.Bool("v", false, "print every inferred service, version and check with its source line")
	var rf runtimeFlags
	rf.register(fs)
	fs.IntVar(&opt.MaxRate, "max-rate", derive.DefaultMaxRate, "a derived load that would run longer than 10 s at -rate runs faster, up to this many requests per second (never below -rate); the checks whose window is time (outlier detection) keep -rate")
	parallel := parallelFlagUsage(fs, 0, "run up to N scenarios at once, each in a mesh of its own, the longest first; verdicts print in order. "+
		"Default: on the local runtime 2 per CPU, at most 4; elsewhere 1 (kind and kube take only 1)")
	if err := fs.Parse(args); err != nil {
		return badInput(err)
	}
	if fs.NArg() == 0 {
		return badInput(errors.New("check: name at least one file or folder of Istio YAML (- for stdin)"))
	}
	rt, err := rf.runtime()
	if err != nil {
		return badInput(err)
	}
	autoParallel(parallel.n, rt)
	if err := checkParallel(parallel, rt); err != nil {
		return badInput(err)
	}
	tuneGC(rt)
	inputs, err := derive.ReadPaths(fs.Args(), stdin)
	if err != nil {
		return badInput(err)
	}
	plan, err := derive.Derive(inputs, opt)
	if err != nil {
		return badInput(err)
	}
	for _, n := range plan.Notes {
		fmt.Fprintf(stdout, "note: %s: %s\n", n.Source, n.Text)
	}
	if *verbose {
		printPlan(stdout, plan)
	}

	scDir := *write
	suiteDir := filepath.Join(*out, time.Now().UTC().Format("20060102-150405"))
	if *dir != "" {
		suiteDir = *dir
	}
	if scDir == "" {
		scDir = filepath.Join(suiteDir, "derived")
	}
	files, err := plan.Write(scDir)
	if err != nil {
		return err
	}
	// Every derived scenario is read back as `meshbench run` reads it,
	// before anything starts.
	var scs []*spec.Scenario
	var errs []error
	for _, f := range files {
		sc, err := spec.LoadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		scs = append(scs, sc)
	}
	if err := errors.Join(errs...); err != nil {
		return badInput(inputErrors(errs, filepath.Join(scDir, filepath.FromSlash(derive.MeshFile)), plan))
	}
	if *write != "" {
		for _, c := range plan.Checks {
			if c.Scenario != nil {
				fmt.Fprintf(stdout, "%s: %s (%s: %s)\n", filepath.Join(scDir, c.Name+".yaml"), c.Source, c.Resource, c.Promise)
			}
		}
		printNotChecked(stdout, plan)
		fmt.Fprintf(stdout, "%d scenarios in %s; run them with meshbench run %s\n", len(files), scDir, filepath.Join(scDir, "*.yaml"))
		return nil
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	suite := &reports.Suite{Schema: reports.SchemaVersion, Started: time.Now().UTC()}
	for _, it := range plan.Inventory() {
		suite.Inferred = append(suite.Inferred, reports.Inferred{Kind: it.Kind, Name: it.Name, Source: it.Source.String(), Detail: it.Detail})
	}
	for _, c := range plan.Checks {
		if c.Scenario == nil {
			suite.NotChecked = append(suite.NotChecked, reports.NotChecked{Resource: c.Resource, Source: c.Source.String(), Promise: c.Promise, Why: c.NotChecked})
		}
	}
	// The reports have a section per resource.
	for _, g := range plan.ByResource() {
		res := reports.Resource{Resource: g.Resource, Source: g.Source.String()}
		for _, c := range g.Checks {
			if c.Scenario != nil {
				res.Checks = append(res.Checks, reports.ResourceCheck{Scenario: c.Name, Source: c.Source.String(), Promise: c.Promise})
			}
		}
		suite.Resources = append(suite.Resources, res)
	}
	sr := suiteRun{rt: rt, log: log, dir: suiteDir, parallel: *parallel.n, rateBudget: *parallel.rateBudget, stdout: stdout, stderr: stderr}
	failed, err := sr.run(ctx, scs, suite)
	if err != nil {
		return err
	}
	printNotChecked(stdout, plan)
	suite.Duration = time.Since(suite.Started).Seconds()
	if _, err := reports.WriteSuite(suiteDir, suite); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%d of %d promises held, %d not checked; reports in %s\n", len(scs)-failed, len(scs), len(suite.NotChecked), suiteDir)
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d promise(s) failed", failed)}
	}
	return nil
}

// printPlan writes every inferred service, version and check with its
// source line.
func printPlan(w io.Writer, p *derive.Plan) {
	fmt.Fprintf(w, "inferred (namespace %s; the load is sent by %s):\n", p.Topology.Namespace, p.Topology.Client)
	for _, it := range p.Inventory() {
		indent := "  "
		if it.Kind == "version" {
			indent = "    "
		}
		fmt.Fprintf(w, "%s%s %s  %s  %s\n", indent, it.Kind, it.Name, it.Source, it.Detail)
	}
}

// printNotChecked lists the promises that no scenario exercises.
func printNotChecked(w io.Writer, p *derive.Plan) {
	for _, c := range p.Checks {
		if c.Scenario == nil {
			fmt.Fprintf(w, "  - not checked: %s: %s %s: %s\n", c.Source, c.Resource, c.Promise, c.NotChecked)
		}
	}
}

// inputErrors points what the scenarios' loader found in the written mesh
// file at the input's file and line, where the user can mend it, each
// once (every derived scenario applies the same mesh).
func inputErrors(errs []error, meshFile string, plan *derive.Plan) error {
	var out spec.Errors
	seen := map[string]bool{}
	var other []error
	for _, err := range errs {
		var es spec.Errors
		if !errors.As(err, &es) {
			other = append(other, err)
			continue
		}
		for _, e := range es {
			if e.File == meshFile {
				if src, ok := plan.MeshSource(e.Line); ok {
					e = &spec.Error{File: src.File, Line: src.Line, Field: meshField.ReplaceAllString(e.Field, ""), Msg: e.Msg}
				}
			}
			if !seen[e.Error()] {
				seen[e.Error()] = true
				out = append(out, e)
			}
		}
	}
	if len(out) == 0 {
		return errors.Join(other...)
	}
	return errors.Join(append([]error{out}, other...)...)
}

// meshField is the prefix of a field in a scenario's mesh entry.
var meshField = regexp.MustCompile(`^mesh\[\d+\]\.`)
