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
	"slices"
	"strings"
	"time"

	"github.com/meshbench/meshbench/chaos"
	"github.com/meshbench/meshbench/internal/upstate"
	"github.com/meshbench/meshbench/observe"
	"github.com/meshbench/meshbench/reports"
	scenariorun "github.com/meshbench/meshbench/scenarios/run"
	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/runtime"
	"github.com/meshbench/meshbench/sim/tracing"
)

// upScrapeInterval is the prometheus.yml's scrape interval under up: short
// enough to watch a canary or a fault move live (Istio's addon scrapes
// every 15 s).
const upScrapeInterval = 5 * time.Second

// cmdUp brings a scenario's mesh up and keeps it running in the
// foreground, printing where to reach it, until Ctrl-C, SIGTERM or
// `meshbench down`; then it tears everything down.
func cmdUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "runs", "folder under which the prometheus.yml and the Grafana dashboard are written (in up-<time>)")
	withChaos := fs.Bool("chaos", false, "play the scenario's chaos schedule over and over (one round per load duration) until stopped")
	verbose := fs.Bool("v", false, "log the mesh's events (xDS ACKs and NACKs, ...) to stderr")
	tracesEndpoint := fs.String("traces-endpoint", "", "also send the spans, as they arrive, to this collector: a Zipkin v2 URL (http://HOST:9411/api/v2/spans; Jaeger and Tempo take it) or an OTLP/HTTP one (http://HOST:4318/v1/traces); local and docker runtimes")
	var rf runtimeFlags
	rf.register(fs)
	if err := fs.Parse(args); err != nil {
		return badInput(err)
	}
	if fs.NArg() != 1 {
		return badInput(errors.New("up: name one scenario or scenario file"))
	}
	rt, err := rf.runtime()
	if err != nil {
		return badInput(err)
	}
	scs, err := resolve(fs.Args())
	if err != nil {
		return badInput(err)
	}
	sc := scs[0]
	if *withChaos && len(sc.Chaos) == 0 {
		return badInput(fmt.Errorf("up: -chaos: %s has no chaos schedule", sc.Path))
	}
	traced := sc.Config.Mesh.Tracing != nil && len(sc.Config.Mesh.Tracing.Providers) > 0
	fwd, err := forwarderFor(*tracesEndpoint)
	if err != nil {
		return badInput(err)
	}
	if fwd != nil {
		switch {
		case !traced:
			return badInput(fmt.Errorf("up: -traces-endpoint: %s names no tracing provider in its meshConfig: the proxies send no spans", sc.Path))
		case rt.Name() != "local" && rt.Name() != "docker":
			return badInput(fmt.Errorf("up: -traces-endpoint: on the %s runtime the spans go to the cluster's own collector", rt.Name()))
		}
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	fmt.Fprintf(stdout, "▶ %s — %s\n", sc.Name, sc.Description)
	printWarnings(stdout, sc)
	dir := filepath.Join(*out, "up-"+time.Now().UTC().Format("20060102-150405"))
	// Access logs and spans, when the scenario's meshConfig asks for them,
	// go into the same folder as under run (spans when the mesh stops).
	mesh, err := scenariorun.StartMesh(ctx, sc, scenariorun.Options{Runtime: rt, Log: log,
		AccessLogDir: filepath.Join(dir, reports.AccessLogDir), TraceDir: dir})
	if ctx.Err() != nil {
		if mesh != nil {
			_ = mesh.Stop(context.WithoutCancel(ctx))
		}
		return &exitError{code: 1, err: errors.New("interrupted: mesh torn down")}
	}
	if err != nil {
		return err
	}
	var stopTraces func() // after the mesh's Stop: the proxies' last spans go too
	defer func() {
		if err := mesh.Stop(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintln(stderr, "meshbench: stopping the mesh:", err)
		}
		fmt.Fprintln(stdout, "mesh torn down")
		if stopTraces != nil {
			stopTraces()
		}
	}()
	if fwd != nil {
		src, ok := mesh.(traceSource)
		if !ok || src.TraceReceiver() == nil {
			return fmt.Errorf("up: -traces-endpoint: the %s runtime's mesh serves no trace collector", rt.Name())
		}
		stopTraces = forwardLive(src.TraceReceiver(), fwd, stdout, stderr)
	}

	ns := sc.MeshTopology().Namespace
	targets := observe.Targets(mesh, ns)
	files, err := writeObserveFiles(dir, sc.Name, targets)
	if err != nil {
		return err
	}
	st := upstate.State{Started: time.Now().UTC(), Scenario: sc.Name, Runtime: rt.Name(), Gateway: mesh.Entry().URL, Proxies: mesh.MetricsEndpoints(), Files: files}
	statePath, err := upstate.Write(upstate.Dir(), st)
	if err != nil {
		return fmt.Errorf("recording the running up: %w", err)
	}
	st.Path = statePath
	defer func() {
		if err := st.Remove(); err != nil {
			fmt.Fprintln(stderr, "meshbench:", err)
		}
	}()
	printUp(stdout, mesh, rt.Name(), sc, fs.Arg(0), targets, files)
	if sc.Config.Mesh.AccessLog.File != "" {
		fmt.Fprintf(stdout, "access logs: %s/<proxy>.log\n", filepath.Join(dir, reports.AccessLogDir))
	}
	if traced {
		fmt.Fprintf(stdout, "traces:  sampled spans go to %s and %s when the mesh stops (send x-b3-sampled: 1 to trace a request)\n",
			filepath.Join(dir, tracing.ZipkinFile), filepath.Join(dir, tracing.OTLPFile))
		if fwd != nil {
			fmt.Fprintf(stdout, "         and to %s as they arrive\n", fwd)
		}
	}

	if *withChaos {
		stopChaos, err := chaosLoop(ctx, mesh, sc, rt.Name(), ns, slog.New(slog.NewTextHandler(stderr, nil)))
		if err != nil {
			return err
		}
		defer stopChaos()
		fmt.Fprintf(stdout, "chaos: %d step(s) on a loop, a round every %s\n", len(sc.Chaos), sc.Load.Duration.D())
	}
	fmt.Fprintf(stdout, "running (pid %d); Ctrl-C or `meshbench down` stops it\n", os.Getpid())
	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping: tearing the mesh down")
	return nil
}

// writeObserveFiles writes prometheus.yml and the Grafana dashboard into
// dir and returns their paths.
func writeObserveFiles(dir, scenario string, targets []observe.Target) ([]string, error) {
	prom, err := observe.PrometheusConfig(targets, upScrapeInterval)
	if err != nil {
		return nil, err
	}
	dash, err := observe.Dashboard("meshbench: " + scenario)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for name, b := range map[string][]byte{"prometheus.yml": prom, "grafana-dashboard.json": dash} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return nil, err
		}
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return paths, nil
}

// printUp says where everything of the running mesh is.
func printUp(w io.Writer, mesh runtime.Mesh, rtName string, sc *spec.Scenario, arg string, targets []observe.Target, files []string) {
	host, path := sc.LoadTarget()
	entry := mesh.Entry().URL
	fmt.Fprintf(w, "mesh up, config version %s\n", mesh.Version())
	fmt.Fprintf(w, "gateway: %s\n", entry)
	fmt.Fprintf(w, "  try:   curl -H 'Host: %s' %s%s\n", host, entry, path)
	fmt.Fprintln(w, "proxies (Prometheus stats):")
	width := 0
	for _, t := range targets {
		width = max(width, len(t.Pod))
	}
	for _, t := range targets {
		fmt.Fprintf(w, "  %-*s  %s\n", width, t.Pod, t.URL)
	}
	pod := ""
	for _, t := range targets {
		if t.Namespace == sc.MeshTopology().Namespace {
			pod = t.Pod
			break
		}
	}
	switch rtName {
	case "kind", "kube":
		// The proxies' config is the real istiod's, in the cluster.
		if c, ok := mesh.(interface{ Cluster() string }); ok && c.Cluster() != "" {
			fmt.Fprintf(w, "cluster: kind export kubeconfig --name %s   (kubectl then reaches it)\n", c.Cluster())
		}
		fmt.Fprintf(w, "xDS:     kubectl -n %s exec deploy/<workload> -c istio-proxy -- pilot-agent request GET config_dump   (istiod's config as the proxy holds it)\n", sc.MeshTopology().Namespace)
	default:
		fmt.Fprintf(w, "xDS:     meshbench xds -proxy %s %s   (any proxy above; -type clusters|listeners|routes|endpoints)\n", pod, quoteArg(arg))
	}
	for _, f := range files {
		switch {
		case strings.HasSuffix(f, "prometheus.yml"):
			fmt.Fprintf(w, "prometheus.yml: %s   (prometheus --config.file=%s)\n", f, f)
		default:
			fmt.Fprintf(w, "dashboard:      %s   (Grafana: Dashboards → New → Import)\n", f)
		}
	}
}

func quoteArg(s string) string {
	if strings.ContainsAny(s, " '\"$\\") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}

// chaosLoop plays the scenario's chaos schedule in rounds, each as long as
// the scenario's load (the time base of its schedule), until ctx ends or
// stop is called; stop takes off every fault in place.
func chaosLoop(ctx context.Context, mesh runtime.Mesh, sc *spec.Scenario, rtName, ns string, log *slog.Logger) (stop func(), err error) {
	in, err := chaos.For(mesh, rtName, ns, sc.Config)
	if err != nil {
		return nil, err
	}
	round := sc.Load.Duration.D()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; ctx.Err() == nil; i++ {
			log.Info("chaos round starts", "round", i)
			r := chaos.Start(ctx, in, sc.Steps(), chaos.Options{Seed: uint64(sc.RunSeed()) + uint64(i), Log: log.With("component", "chaos")})
			t := time.NewTimer(round)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			r.Stop()
		}
	}()
	return func() {
		cancel()
		<-done
		cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer ccancel()
		if err := in.Close(cctx); err != nil {
			log.Warn("chaos: taking faults off", "err", err)
		}
	}, nil
}
