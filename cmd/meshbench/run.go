package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/catalog"
	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/docker"
	"github.com/meshbench/meshbench/sim/kind"
	"github.com/meshbench/meshbench/sim/local"
	"github.com/meshbench/meshbench/sim/runtime"
)

// resolve loads scenarios by catalog name or file path; no arguments means the whole catalog.
func resolve(args []string) ([]*spec.Scenario, error) {
	if len(args) == 0 {
		return catalog.All()
	}
	var out []*spec.Scenario
	var errs []error
	for _, a := range args {
		var sc *spec.Scenario
		var err error
		if strings.HasSuffix(a, ".yaml") || strings.HasSuffix(a, ".yml") || strings.ContainsRune(a, os.PathSeparator) {
			sc, err = spec.LoadFile(a)
		} else {
			sc, err = catalog.Load(a)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, sc)
	}
	return out, errors.Join(errs...)
}

// runtimeFlags are the flags that pick and set up a runtime.
type runtimeFlags struct {
	name, kubeconfig, context, image, entry string
	cluster                                 string
	keep                                    bool
	dataPlane                               string
}

func (f *runtimeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.name, "runtime", "local", "where the mesh runs: local (loopback, this process), docker (containers), kind (a kind cluster with the real istiod; make kind-images first) or kube (an existing cluster running Istio, in a namespace of its own)")
	fs.BoolVar(&f.keep, "keep", false, "kind: leave the cluster running after the run, for debugging (meshbench down deletes it)")
	fs.StringVar(&f.cluster, "cluster", "", "kind: run in this cluster, one an earlier -keep run left (meshbench-…), instead of creating one; what earlier scenarios made there is removed first, and it is left running")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kube: the cluster's kubeconfig (default $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&f.context, "context", "", "kube: the kubeconfig context (default its current one)")
	fs.StringVar(&f.entry, "entry", "", "kube: the ingress gateway's http://HOST:PORT where this machine reaches it directly (a LoadBalancer address); default a port forward to the gateway pod")
	fs.StringVar(&f.dataPlane, "data-plane", "builtin", "local: builtin (every call through the pod's sidecar) or grpc (gRPC calls proxyless, with grpc-go's own xDS client; the sidecar keeps the inbound side and the HTTP calls)")
	fs.StringVar(&f.image, "image", "", "kube: the app image, holding this static meshbench binary at /meshbench, that the cluster's nodes can pull")
}

func (f *runtimeFlags) runtime() (runtime.Runtime, error) {
	if f.name != "kube" && (f.kubeconfig != "" || f.context != "" || f.image != "" || f.entry != "") {
		return nil, fmt.Errorf("-kubeconfig, -context, -image and -entry are for -runtime kube")
	}
	if f.name != "kind" && (f.keep || f.cluster != "") {
		return nil, fmt.Errorf("-keep and -cluster are for -runtime kind")
	}
	switch f.dataPlane {
	case "builtin":
	case "grpc":
		if f.name != "local" {
			return nil, fmt.Errorf("-data-plane grpc runs on -runtime local only")
		}
	default:
		return nil, fmt.Errorf("unknown data plane %q (builtin, grpc)", f.dataPlane)
	}
	switch f.name {
	case "local":
		return local.Runtime{ProxylessGRPC: f.dataPlane == "grpc"}, nil
	case "docker":
		return docker.Runtime{}, nil
	case "kind":
		return kind.Runtime{Keep: f.keep, Cluster: f.cluster}, nil
	case "kube":
		if f.image == "" {
			return nil, fmt.Errorf("-runtime kube needs -image: the app image the cluster's nodes pull (build it with make kind-images or docker build FROM scratch with bin/meshbench at /meshbench)")
		}
		return kind.Kube{Kubeconfig: f.kubeconfig, Context: f.context, AppImage: f.image, Entry: f.entry}, nil
	default:
		return nil, fmt.Errorf("unknown runtime %q (local, docker, kind, kube)", f.name)
	}
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "runs", "folder under which each run writes its reports")
	var rf runtimeFlags
	rf.register(fs)
	verbose := fs.Bool("v", false, "log the mesh's events (xDS ACKs and NACKs, ...) to stderr")
	dir := fs.String("dir", "", "write the reports into this folder instead of a new timestamped one under -out")
	traces := tracesFlag(fs)
	parallel := parallelFlag(fs)
	if err := fs.Parse(args); err != nil {
		return badInput(err)
	}
	rt, err := rf.runtime()
	if err != nil {
		return badInput(err)
	}
	if err := checkParallel(parallel, rt); err != nil {
		return badInput(err)
	}
	tuneGC(rt)
	fwd, err := forwarderFor(*traces)
	if err != nil {
		return badInput(err)
	}
	scs, err := resolve(fs.Args())
	if err != nil {
		return badInput(err)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	suiteDir := filepath.Join(*out, time.Now().UTC().Format("20060102-150405"))
	if *dir != "" {
		suiteDir = *dir
	}
	suite := &reports.Suite{Schema: reports.SchemaVersion, Started: time.Now().UTC()}
	sr := suiteRun{rt: rt, log: log, fwd: fwd, dir: suiteDir, parallel: *parallel.n, rateBudget: *parallel.rateBudget, stdout: stdout, stderr: stderr}
	failed, err := sr.run(ctx, scs, suite)
	if err != nil {
		return err
	}
	suite.Duration = time.Since(suite.Started).Seconds()
	if _, err := reports.WriteSuite(suiteDir, suite); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%d of %d scenarios passed; reports in %s\n", len(scs)-failed, len(scs), suiteDir)
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d scenario(s) failed", failed)}
	}
	return nil
}

// isTerminal reports whether w is a character device, as a terminal is;
// the live progress line is drawn only there.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// printWarnings writes what the scenario's files may say but likely did
// not mean, one "warning: file:line: field: message" a line.
func printWarnings(w io.Writer, sc *spec.Scenario) {
	for _, line := range sc.Warnings.Lines() {
		fmt.Fprintf(w, "  warning: %s\n", line)
	}
}

// printResult writes the short human summary of one scenario.
func printResult(w io.Writer, r *reports.Result) {
	if r.Error != "" {
		fmt.Fprintf(w, "  ✗ run failed: %s\n", r.Error)
		return
	}
	if r.Load.Note != "" {
		fmt.Fprintf(w, "  note: %s\n", r.Load.Note)
	}
	fmt.Fprintf(w, "  load: %d requests at %.0f/s (asked %.0f/s), success %.2f%%, latency p50 %.2fms p99 %.2fms max %.2fms\n",
		r.Load.Requests, r.Load.AchievedRate, r.Load.TargetRate, 100*r.Status.SuccessRate, r.Latency.P50, r.Latency.P99, r.Latency.Max)
	for _, c := range r.Checks {
		mark := "✓"
		if !c.Passed {
			mark = "✗"
		}
		fmt.Fprintf(w, "  %s %s: %s\n", mark, c.Name, c.Summary)
	}
}

func cmdList(stdout io.Writer) error {
	scs, err := catalog.All()
	if err != nil {
		return err
	}
	for _, sc := range scs {
		fmt.Fprintf(stdout, "%-24s %s\n", sc.Name, sc.Description)
	}
	return nil
}

func cmdValidate(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return badInput(errors.New("validate: name at least one scenario file"))
	}
	scs, err := resolve(args)
	if err != nil {
		return badInput(err)
	}
	for _, sc := range scs {
		fmt.Fprintf(stdout, "%s: ok (%s)\n", sc.Path, sc.Name)
		printWarnings(stdout, sc)
	}
	return nil
}
