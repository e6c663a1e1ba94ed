package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/check"
)

// Lines as go test -bench writes them, among the lines it writes around them.
const (
	sidecarNew = `goos: linux
pkg: github.com/meshbench/meshbench/sim/sidecar
BenchmarkSidecarHop-2   	    2000	    900000 ns/op	 150.0 sidecar-added-p50-µs	 0.60 sidecar/rproxy-p50	 0.65 sidecar/rproxy-p99
BenchmarkSidecarHop-2   	    2000	    950000 ns/op	 170.0 sidecar-added-p50-µs	 0.70 sidecar/rproxy-p50	 0.75 sidecar/rproxy-p99
BenchmarkSidecarHop-2   	    2000	    990000 ns/op	 190.0 sidecar-added-p50-µs	 0.80 sidecar/rproxy-p50	 0.85 sidecar/rproxy-p99
BenchmarkSidecarThroughput-2	2000	    100000 ns/op	 21000 req/s/sidecar-core	 300.0 allocs/sidecar-hop
--- BENCH: BenchmarkSidecarThroughput-2
    bench_test.go:1: a log line 12 34
PASS
ok  	github.com/meshbench/meshbench/sim/sidecar	12.3s
`
	sidecarBase = `BenchmarkSidecarHop-2   	    2000	    990000 ns/op	 200.0 sidecar-added-p50-µs	 0.90 sidecar/rproxy-p50	 1.00 sidecar/rproxy-p99
PASS
`
	heap = `BenchmarkSidecarHeap-2	1	8000000000 ns/op	 7.0 heap-MiB/sidecar	 20.0 with-sidecars-heap-MiB	 6.0 without-sidecars-heap-MiB
BenchmarkSidecarHeap-2	1	8000000000 ns/op	 1.5 heap-MiB/sidecar	 9.0 with-sidecars-heap-MiB	 6.0 without-sidecars-heap-MiB
BenchmarkSidecarHeap-2	1	8000000000 ns/op	 0.5 heap-MiB/sidecar	 7.0 with-sidecars-heap-MiB	 6.0 without-sidecars-heap-MiB
`
	push = `BenchmarkPushToFullACK-2	5	2500000000 ns/op	 310.0 cp-heap-MiB
BenchmarkPushToFullACK-2	5	3500000000 ns/op	 320.0 cp-heap-MiB
`
)

func TestParseBench(t *testing.T) {
	b, err := parseBench(strings.NewReader(sidecarNew))
	require.NoError(t, err)
	assert.Len(t, b, 2, "only result lines count")
	m, n := b.median(hopBench, "sidecar/rproxy-p50")
	assert.Equal(t, 3, n)
	assert.InDelta(t, 0.70, m, 1e-9)
	lo, hi := b.spread(hopBench, "sidecar-added-p50-µs")
	assert.Equal(t, []float64{150, 190}, []float64{lo, hi})
	m, n = b.median(throughputBench, "req/s/sidecar-core")
	assert.Equal(t, 1, n)
	assert.InDelta(t, 21000, m, 1e-9)
	_, n = b.median(heapBench, "heap-MiB/sidecar")
	assert.Zero(t, n)

	p, err := parseBench(strings.NewReader(push))
	require.NoError(t, err)
	m, _ = p.median(pushBench, "ns/op")
	assert.InDelta(t, 3e9, m, 1e-3, "the median of an even count is the mean of the middle two")
}

// runFolder lays out a make bench run folder: benchmark outputs, the knee
// scenario's result.json and the catalog's suite.json, written by the
// reports package itself.
func runFolder(t *testing.T, catalogPassed bool, kneeMin float64) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		sidecarNewFile:  sidecarNew,
		sidecarBaseFile: sidecarBase,
		benchstatFile:   "                  │ sidecar-base.txt │ sidecar-new.txt │\n",
		heapFile:        heap,
		pushFile:        push,
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	step := func(i int, rate, p50, p99 float64) reports.Step {
		n := int(rate * 3)
		return reports.Step{Index: i, Start: float64(3 * (i - 1)), End: float64(3 * i), TargetRate: rate, AchievedRate: rate,
			Requests: n, Successes: n, SuccessRate: 1, Latency: reports.Latency{P50: p50, P99: p99}}
	}
	steps := []reports.Step{step(1, 500, 1.2, 6), step(2, 1000, 2.1, 14), step(3, 1500, 480, 2100)}
	knee := &reports.Result{Scenario: "canary-knee", Steps: steps,
		Checks: []reports.Check{check.Capacity(steps, 20, 0.999, kneeMin, 0.95)}}
	knee.Passed = knee.Checks[0].Passed
	bench := &reports.Suite{Duration: 40.2, Scenarios: []*reports.Result{knee}}
	_, err := reports.WriteSuite(filepath.Join(dir, scenariosDir), bench)
	require.NoError(t, err)
	catalog := &reports.Suite{Duration: 84.4, Scenarios: []*reports.Result{
		{Scenario: "canary-90-10", Passed: true, Checks: []reports.Check{}},
		{Scenario: "retries", Passed: catalogPassed, Checks: []reports.Check{}},
	}}
	_, err = reports.WriteSuite(filepath.Join(dir, catalogDir), catalog)
	require.NoError(t, err)
	return dir
}

func TestSummaryHasEveryFigure(t *testing.T) {
	dir := runFolder(t, true, 1000)
	var b bytes.Buffer
	failed := write(&b, inputs{dir: dir, base: "32a0baa", knee: "canary-knee", parallel: 3})
	got := b.String()
	assert.Zero(t, failed, got)
	for _, want := range []string{
		"before (32a0baa) and after",
		"32a0baa gave no BenchmarkSidecarThroughput",
		"| sidecar/rproxy-p50 | 0.9 (n=1) | 0.7 (n=3) | ≤ 0.7 |",
		"| req/s/sidecar-core | – | 21000 (n=1) | ≥ 20000 |",
		"│ sidecar-base.txt │ sidecar-new.txt │",
		"1.50 MiB per sidecar, median of 3 (0.50–7.00)",
		"3.00 s per push to full ACK, translation included, median of 2 (2.50–3.50 s); control plane heap 315 MiB",
		"Capacity check (passed): held up to 1000/s",
		"first broke at step 3, 1500/s",
		"| 2 | 1000 | 1000 | 2.10 | 14.00 | 100.00% |",
		"| 3 | 1500 | 1500 | 480.00 | 2100.00 | 100.00% |",
		"1 of 1 scenarios passed in 40 s (the run's own wall time, build excluded).\n",
		"2 of 2 scenarios passed in 84 s, up to 3 at once (the run's own wall time, build excluded). Goal ≤ 90 s.",
	} {
		assert.Contains(t, got, want)
	}
	assert.NotContains(t, got, "gave no BenchmarkSidecarHop")
	assert.NotContains(t, got, "Not measured")
}

func TestSummaryCountsFailedScenarios(t *testing.T) {
	dir := runFolder(t, false, 2000)
	var b bytes.Buffer
	assert.Equal(t, 2, write(&b, inputs{dir: dir, knee: "canary-knee"}))
	got := b.String()
	assert.Contains(t, got, "Capacity check (failed): held up to 1000/s (want >= 2000/s)")
	assert.Contains(t, got, "0 of 1 scenarios passed")
	assert.Contains(t, got, "Failed: canary-knee.")
	assert.Contains(t, got, "1 of 2 scenarios passed")
	assert.Contains(t, got, "Failed: retries.")
}

func TestSummarySaysWhatIsMissing(t *testing.T) {
	var b bytes.Buffer
	assert.Zero(t, write(&b, inputs{dir: t.TempDir(), knee: "canary-knee"}))
	assert.Equal(t, 6, strings.Count(b.String(), "Not measured"), b.String())

	b.Reset()
	write(&b, inputs{dir: runFolder(t, true, 1000), knee: "another-knee"})
	assert.Contains(t, b.String(), "has no scenario another-knee")
}
