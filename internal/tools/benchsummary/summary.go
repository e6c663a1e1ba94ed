package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/meshbench/meshbench/reports"
)

// The goals of issue #14, which the summary quotes beside each figure.
const (
	goalSidecarVsRProxy = 0.7   // sidecar pair / ReverseProxy pair, p50 and p99
	goalReqPerCore      = 20000 // requests/s per sidecar-core
	goalHeapMiB         = 10    // heap per sidecar at 1,000 rps
	goalPushSeconds     = 1     // push to full ACK at 1,000 services × 3 pods, 100 sidecars
	goalCatalogSeconds  = 90
	goalKneeRate        = 4000 // requests/s the canary path holds with p99 ≤ 20 ms
)

const (
	hopBench        = "BenchmarkSidecarHop"
	throughputBench = "BenchmarkSidecarThroughput"
	heapBench       = "BenchmarkSidecarHeap"
	pushBench       = "BenchmarkPushToFullACK"
)

type inputs struct {
	dir, base, knee string
	parallel        int
}

// summary collects the text and the failed scenarios as it goes.
type summary struct {
	w      io.Writer
	in     inputs
	failed int
}

func (s *summary) p(format string, a ...any) { fmt.Fprintf(s.w, format, a...) }

// write writes the whole summary to w and returns how many scenarios failed.
func write(w io.Writer, in inputs) int {
	s := &summary{w: w, in: in}
	s.p("# make bench\n\n")
	s.sidecar()
	s.heap()
	s.push()
	s.kneeSection()
	s.suite("Benchmark scenarios", scenariosDir, 0)
	s.suite("Catalog wall time", catalogDir, s.in.parallel)
	return s.failed
}

// bench reads one go test -bench output file of the run folder.
func (s *summary) bench(name string) (benchRuns, error) {
	f, err := os.Open(filepath.Join(s.in.dir, name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseBench(f)
}

func (s *summary) sidecar() {
	base := s.in.base
	if base == "" {
		base = "the baseline"
	}
	s.p("## Sidecar hop and throughput: before (%s) and after\n\n", base)
	after, err := s.bench(sidecarNewFile)
	if err != nil {
		s.p("Not measured: %v\n\n", err)
		return
	}
	before, err := s.bench(sidecarBaseFile)
	if err != nil {
		before = benchRuns{}
		s.p("No baseline: %v\n\n", err)
	}
	notes := 0
	for _, b := range []string{hopBench, throughputBench} {
		if before[b] == nil {
			s.p("- %s gave no %s (it lacks the benchmark, or failed to build or run): after only.\n", base, b)
			notes++
		}
		if after[b] == nil {
			s.p("- The working tree gave no %s.\n", b)
			notes++
		}
	}
	if notes > 0 {
		s.p("\n")
	}
	s.p("| figure (median) | before | after | goal |\n|---|--:|--:|--:|\n")
	rows := []struct {
		bench, unit, goal string
	}{
		{hopBench, "sidecar/rproxy-p50", fmt.Sprintf("≤ %.1f", goalSidecarVsRProxy)},
		{hopBench, "sidecar/rproxy-p99", fmt.Sprintf("≤ %.1f", goalSidecarVsRProxy)},
		{hopBench, "sidecar-added-p50-µs", ""},
		{hopBench, "sidecar-added-p99-µs", ""},
		{hopBench, "mtls-added-p50-µs", ""},
		{throughputBench, "req/s/sidecar-core", fmt.Sprintf("≥ %d", goalReqPerCore)},
		{throughputBench, "allocs/sidecar-hop", ""},
	}
	for _, r := range rows {
		s.p("| %s | %s | %s | %s |\n", r.unit, medianCell(before, r.bench, r.unit), medianCell(after, r.bench, r.unit), r.goal)
	}
	s.p("\n")
	if st, err := os.ReadFile(filepath.Join(s.in.dir, benchstatFile)); err == nil {
		s.p("benchstat %s %s:\n\n```\n%s```\n\n", sidecarBaseFile, sidecarNewFile, st)
	} else {
		s.p("No benchstat: %v\n\n", err)
	}
}

// medianCell is a benchmark unit's median over its runs, "–" without one.
func medianCell(b benchRuns, bench, unit string) string {
	m, n := b.median(bench, unit)
	if n == 0 {
		return "–"
	}
	if math.Abs(m) >= 1000 { // %g would switch to an exponent at 1e4
		return fmt.Sprintf("%.0f (n=%d)", m, n)
	}
	return fmt.Sprintf("%.4g (n=%d)", m, n)
}

func (s *summary) heap() {
	s.p("## Heap per sidecar at 1,000 requests/s\n\n")
	b, err := s.bench(heapFile)
	if err != nil || b[heapBench] == nil {
		s.p("Not measured (%s: %v).\n\n", heapFile, err)
		return
	}
	m, n := b.median(heapBench, "heap-MiB/sidecar")
	lo, hi := b.spread(heapBench, "heap-MiB/sidecar")
	with, _ := b.median(heapBench, "with-sidecars-heap-MiB")
	without, _ := b.median(heapBench, "without-sidecars-heap-MiB")
	s.p("%.2f MiB per sidecar, median of %d (%.2f–%.2f); live heap %.1f MiB with the sidecar pair, %.1f MiB without. Goal ≤ %d MiB.\n\n",
		m, n, lo, hi, with, without, goalHeapMiB)
}

func (s *summary) push() {
	s.p("## xDS push: 1,000 services × 3 pods to 100 sidecars, to full ACK\n\n")
	b, err := s.bench(pushFile)
	if err != nil || b[pushBench] == nil {
		s.p("Not measured (%s: %v).\n\n", pushFile, err)
		return
	}
	ns, n := b.median(pushBench, "ns/op")
	lo, hi := b.spread(pushBench, "ns/op")
	heap, _ := b.median(pushBench, "cp-heap-MiB")
	s.p("%.2f s per push to full ACK, translation included, median of %d (%.2f–%.2f s); control plane heap %.0f MiB after it. Goal < %d s.\n\n",
		ns/1e9, n, lo/1e9, hi/1e9, heap, goalPushSeconds)
}

func (s *summary) kneeSection() {
	s.p("## The knee of the canary path (%s)\n\n", s.in.knee)
	r, err := s.scenario(scenariosDir, s.in.knee)
	if err != nil {
		s.p("Not measured: %v\n\n", err)
		return
	}
	if r.Error != "" {
		s.p("The run failed: %s\n\n", r.Error)
		return
	}
	var capacity *reports.Check
	for i, c := range r.Checks {
		if c.Kind == "capacity" {
			capacity = &r.Checks[i]
			break
		}
	}
	if capacity == nil {
		s.p("The scenario has no capacity check.\n\n")
	} else {
		s.p("Capacity check (%s): %s. Goal: %d/s with p99 ≤ 20 ms.\n\n", verdict(capacity.Passed), capacity.Summary, goalKneeRate)
	}
	s.p("| step | req/s asked | achieved | p50 ms | p99 ms | success |\n|--:|--:|--:|--:|--:|--:|\n")
	for _, st := range r.Steps {
		s.p("| %d | %.0f | %.0f | %.2f | %.2f | %.2f%% |\n", st.Index, st.TargetRate, st.AchievedRate, st.Latency.P50, st.Latency.P99, 100*st.SuccessRate)
	}
	s.p("\n")
}

// suite says how many scenarios of the run folder's sub-folder sub passed
// and in what wall time; parallel, when set, is how many could run at once
// (-parallel; the run's -rate-budget may have kept it to fewer).
func (s *summary) suite(title, sub string, parallel int) {
	s.p("## %s\n\n", title)
	suite, err := readSuite(filepath.Join(s.in.dir, sub, reports.SuiteFile))
	if err != nil {
		s.p("Not measured: %v\n\n", err)
		return
	}
	passed := 0
	var failed []string
	for _, r := range suite.Scenarios {
		if r.Passed {
			passed++
		} else {
			failed = append(failed, r.Scenario)
		}
	}
	s.failed += len(failed)
	at := ""
	if parallel > 0 {
		at = fmt.Sprintf(", up to %d at once", parallel)
	}
	s.p("%d of %d scenarios passed in %.0f s%s (the run's own wall time, build excluded).", passed, len(suite.Scenarios), suite.Duration, at)
	if sub == catalogDir {
		s.p(" Goal ≤ %d s.", goalCatalogSeconds)
	}
	s.p("\n")
	if len(failed) > 0 {
		s.p("Failed: %s.\n", strings.Join(failed, ", "))
	}
	s.p("\n")
}

func verdict(passed bool) string {
	if passed {
		return "passed"
	}
	return "failed"
}

// scenario is the result of the scenario named name in the suite of the
// run folder's sub-folder sub.
func (s *summary) scenario(sub, name string) (*reports.Result, error) {
	path := filepath.Join(s.in.dir, sub, reports.SuiteFile)
	suite, err := readSuite(path)
	if err != nil {
		return nil, err
	}
	for _, r := range suite.Scenarios {
		if r.Scenario == name {
			return r, nil
		}
	}
	return nil, fmt.Errorf("%s has no scenario %s", path, name)
}

func readSuite(path string) (*reports.Suite, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s reports.Suite
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}
