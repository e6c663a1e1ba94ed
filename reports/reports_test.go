package reports

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func pf(x float64) *float64 { return &x }

// fixture is a fixed result: two checks, one passing and one failing, a
// split, status codes and transport errors.
func fixture() *Result {
	return &Result{
		Schema:      SchemaVersion,
		Scenario:    "canary-90-10",
		Description: "Shift 10% of payment traffic to v2.",
		File:        "scenarios/canary-90-10.yaml",
		Started:     time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC),
		Duration:    31.25,
		Environment: Environment{
			Runtime: "local", DataPlane: "envoy-sim", GoVersion: "go1.26.0",
			OS: "linux", Arch: "amd64", CPUs: 8, Seed: 42,
		},
		Load: Load{
			Target: "frontend", URL: "http://127.0.0.1:15001/checkout",
			TargetRate: 200, AchievedRate: 199.8, Throughput: 199.5,
			Duration: 25, Requests: 4995,
		},
		Latency: Latency{P50: 1.234, P90: 2.5, P99: 7.891, P999: 15.5, Max: 22.75, Mean: 1.5},
		Status: Status{
			SuccessRate: 0.998,
			Codes:       map[string]int{"200": 4985, "503": 7, "0": 3},
			Errors:      map[string]int{"connection reset by peer": 3},
		},
		Split: map[string]map[string]int{
			"payment": {"v1": 4400, "v2": 595},
			"catalog": {"v1": 4995},
		},
		Checks: []Check{
			{
				Name: "success rate", Kind: "successRate", Passed: true,
				Summary:    "4985/4995 ok = 99.8% (99.9% Wilson CI 99.56%–99.91%); H0 rate >= 99%: p=1 >= alpha=0.001",
				Test:       "one-sided exact binomial test, H0: rate >= min",
				N:          4995,
				PValue:     pf(1),
				Confidence: 0.999,
				Observed:   map[string]float64{"rate": 0.998},
				Expected:   map[string]float64{"rate": 0.99},
			},
			{
				Name: "split payment", Kind: "split", Passed: false,
				Summary:    "payment: v1 88.1% (want 90), v2 11.9% (want 10); N=4995, chi2=19.83, p=8.46e-06 < alpha=0.001 | skewed",
				Test:       "Pearson chi-square goodness of fit, df=k-1",
				N:          4995,
				PValue:     pf(8.46e-06),
				Confidence: 0.999,
				Observed:   map[string]float64{"v1": 88.088, "v2": 11.912},
				Expected:   map[string]float64{"v1": 90, "v2": 10},
			},
		},
		Passed: false,
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./reports/ -update to create the golden files")
	assert.Equal(t, string(want), string(got), "%s differs; rerun with -update if the change is intended", path)
}

func TestJSONGolden(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteJSON(&b, fixture()))
	golden(t, "result.json", b.Bytes())
}

func TestMarkdownGolden(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, Markdown(&b, fixture()))
	golden(t, "summary.md", b.Bytes())
	assert.Contains(t, b.String(), `\| skewed`, "pipes in cells are escaped")
}

func TestJUnitGolden(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, JUnit(&b, "meshbench", fixture()))
	golden(t, "junit.xml", b.Bytes())
}

func TestMarkdownSeveral(t *testing.T) {
	ok := fixture()
	ok.Scenario = "baseline"
	ok.Checks = ok.Checks[:1]
	ok.Passed = true
	broken := &Result{Scenario: "broken", Error: "sidecar did not start"}
	var b bytes.Buffer
	require.NoError(t, Markdown(&b, ok, fixture(), broken))
	out := b.String()
	assert.True(t, strings.HasPrefix(out, "# meshbench: 1 of 3 scenarios passed\n"), out)
	assert.Contains(t, out, "| baseline | PASS | 1/1 |")
	assert.Contains(t, out, "| canary-90-10 | FAIL | 1/2 |")
	assert.Contains(t, out, "## broken: FAIL")
	assert.Contains(t, out, "**Run error:** sidecar did not start")

	// Stable across calls despite map iteration order.
	for range 20 {
		var again bytes.Buffer
		require.NoError(t, Markdown(&again, ok, fixture(), broken))
		require.Equal(t, out, again.String())
	}
}

func TestJSONRoundTrip(t *testing.T) {
	in := fixture()
	var b bytes.Buffer
	require.NoError(t, WriteJSON(&b, in))
	out, err := ReadJSON(&b)
	require.NoError(t, err)
	assert.Equal(t, in, out)
}

func TestWriteJSONSetsSchema(t *testing.T) {
	in := fixture()
	in.Schema = ""
	var b bytes.Buffer
	require.NoError(t, WriteJSON(&b, in))
	assert.Empty(t, in.Schema, "the caller's result is not modified")
	out, err := ReadJSON(&b)
	require.NoError(t, err)
	assert.Equal(t, SchemaVersion, out.Schema)
}

func TestReadJSONRejectsSchema(t *testing.T) {
	_, err := ReadJSON(strings.NewReader(`{"schema": "other/v9", "scenario": "x"}`))
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrSchema)
	assert.Contains(t, err.Error(), `"other/v9"`)
	assert.Contains(t, err.Error(), SchemaVersion)

	_, err = ReadJSON(strings.NewReader(`{"scenario": "x"}`))
	assert.ErrorIs(t, err, ErrSchema)

	_, err = ReadJSON(strings.NewReader(`not json`))
	assert.Error(t, err)
	assert.False(t, errors.Is(err, ErrSchema))
}

func TestJUnitParses(t *testing.T) {
	broken := &Result{Scenario: "broken", Duration: 1.5, Error: "sidecar did not start"}
	var b bytes.Buffer
	require.NoError(t, JUnit(&b, "suite", fixture(), broken))

	var doc JUnitTestSuites
	require.NoError(t, xml.Unmarshal(b.Bytes(), &doc))
	assert.Equal(t, "suite", doc.Name)
	assert.Equal(t, 3, doc.Tests)
	assert.Equal(t, 1, doc.Failures)
	assert.Equal(t, 1, doc.Errors)
	assert.Equal(t, "32.750", doc.Time)
	require.Len(t, doc.Suites, 2)

	s := doc.Suites[0]
	assert.Equal(t, "canary-90-10", s.Name)
	assert.Equal(t, 2, s.Tests)
	assert.Equal(t, 1, s.Failures)
	assert.Equal(t, 0, s.Errors)
	assert.Equal(t, "31.250", s.Time)
	require.Len(t, s.TestCases, 2)
	failures := 0
	for _, tc := range s.TestCases {
		assert.Equal(t, "meshbench.canary-90-10", tc.ClassName)
		if tc.Failure != nil {
			failures++
			assert.Equal(t, "split payment", tc.Name)
			assert.Equal(t, fixture().Checks[1].Summary, tc.Failure.Message)
			assert.Contains(t, tc.Failure.Text, "\ntest: Pearson chi-square")
		}
	}
	assert.Equal(t, 1, failures)

	s = doc.Suites[1]
	assert.Equal(t, 1, s.Tests)
	assert.Equal(t, 1, s.Errors)
	require.Len(t, s.TestCases, 1)
	assert.Equal(t, "run", s.TestCases[0].Name)
	require.NotNil(t, s.TestCases[0].Error)
	assert.Equal(t, "sidecar did not start", s.TestCases[0].Error.Message)
}

func TestJUnitOddText(t *testing.T) {
	r := &Result{Scenario: "odd", Error: "bad \x00\x1b byte \xff and ]]> end"}
	r.Checks = []Check{{Name: "a<b", Summary: "x \x01 & y"}}
	var b bytes.Buffer
	require.NoError(t, JUnit(&b, "s", r))
	var doc JUnitTestSuites
	require.NoError(t, xml.Unmarshal(b.Bytes(), &doc), b.String())
	require.Len(t, doc.Suites[0].TestCases, 2)
	assert.Equal(t, "a<b", doc.Suites[0].TestCases[0].Name)
	assert.Equal(t, "bad \uFFFD\uFFFD byte \uFFFD and ]]> end", doc.Suites[0].TestCases[1].Error.Text)
}

func TestWriteRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runs", "canary")
	paths, err := WriteRun(dir, fixture())
	require.NoError(t, err)
	assert.Equal(t, []string{
		filepath.Join(dir, "result.json"),
		filepath.Join(dir, "summary.md"),
		filepath.Join(dir, "junit.xml"),
		filepath.Join(dir, "report.html"),
		filepath.Join(dir, "smp.json"),
	}, paths)
	st, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), st.Mode().Perm()&0o755)

	f, err := os.Open(paths[0])
	require.NoError(t, err)
	defer f.Close()
	got, err := ReadJSON(f)
	require.NoError(t, err)
	assert.Equal(t, fixture(), got)

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 5, "no temporary files left behind")

	_, err = WriteRun(dir, nil)
	assert.Error(t, err)
}

func TestWriteSuite(t *testing.T) {
	second := fixture()
	second.Scenario = "second"
	second.Schema = ""
	s := &Suite{Started: time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC), Duration: 70, Scenarios: []*Result{fixture(), second}}
	dir := t.TempDir()
	paths, err := WriteSuite(dir, s)
	require.NoError(t, err)
	assert.Equal(t, []string{
		filepath.Join(dir, "suite.json"),
		filepath.Join(dir, "summary.md"),
		filepath.Join(dir, "junit.xml"),
		filepath.Join(dir, "index.html"),
	}, paths)
	assert.Empty(t, s.Schema, "the caller's suite is not modified")

	data, err := os.ReadFile(paths[0])
	require.NoError(t, err)
	var got Suite
	require.NoError(t, json.Unmarshal(data, &got))
	assert.Equal(t, SchemaVersion, got.Schema)
	require.Len(t, got.Scenarios, 2)
	assert.Equal(t, SchemaVersion, got.Scenarios[1].Schema)
	assert.Equal(t, "second", got.Scenarios[1].Scenario)

	md, err := os.ReadFile(paths[1])
	require.NoError(t, err)
	assert.Contains(t, string(md), "## canary-90-10: FAIL")
	assert.Contains(t, string(md), "## second: FAIL")

	x, err := os.ReadFile(paths[2])
	require.NoError(t, err)
	var doc JUnitTestSuites
	require.NoError(t, xml.Unmarshal(x, &doc))
	assert.Len(t, doc.Suites, 2)
	assert.Equal(t, 2, doc.Failures)

	_, err = WriteSuite(dir, &Suite{Scenarios: []*Result{nil}})
	assert.Error(t, err)
}

// meshbench check's promises that no scenario exercised are skipped
// testcases in junit.xml and listed, with what it inferred, in summary.md
// and index.html.
func TestWriteSuiteNotCheckedAndInferred(t *testing.T) {
	s := &Suite{
		Scenarios:  []*Result{fixture()},
		NotChecked: []NotChecked{{Resource: "DestinationRule default/payment", Source: "dr.yaml:9", Promise: "connection pool limits", Why: "not derived | yet"}},
		Inferred:   []Inferred{{Kind: "service", Name: "payment", Source: "dr.yaml:5"}},
	}
	dir := t.TempDir()
	_, err := WriteSuite(dir, s)
	require.NoError(t, err)

	x, err := os.ReadFile(filepath.Join(dir, JUnitFile))
	require.NoError(t, err)
	var doc JUnitTestSuites
	require.NoError(t, xml.Unmarshal(x, &doc))
	require.Len(t, doc.Suites, 2)
	nc := doc.Suites[1]
	assert.Equal(t, "not-checked", nc.Name)
	require.Len(t, nc.TestCases, 1)
	assert.Equal(t, "dr.yaml:9: DestinationRule default/payment connection pool limits", nc.TestCases[0].Name)
	require.NotNil(t, nc.TestCases[0].Skipped)
	assert.Equal(t, "not checked: not derived | yet", nc.TestCases[0].Skipped.Message)
	assert.Equal(t, doc.Suites[0].Tests+1, doc.Tests, "the skipped promise counts as a test")

	md, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	require.NoError(t, err)
	assert.Contains(t, string(md), "| dr.yaml:9 | DestinationRule default/payment | connection pool limits | not derived \\| yet |")
	assert.Contains(t, string(md), "| service | payment | dr.yaml:5 |")

	html, err := os.ReadFile(filepath.Join(dir, IndexFile))
	require.NoError(t, err)
	assert.Contains(t, string(html), "<td>dr.yaml:9</td>")
	assert.Contains(t, string(html), "<td>dr.yaml:5</td>")
}
