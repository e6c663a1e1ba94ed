package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/reports"
)

// report html draws the traces of the run folder RESULT.json is in.
func TestReportHTMLDrawsTheRunsTraces(t *testing.T) {
	const slowest = "0af7651916cd43dd8448eb211c80319c" // in reports/testdata/traces.zipkin.json
	dir := t.TempDir()
	r := &reports.Result{Scenario: "traced", Checks: []reports.Check{{Name: "latency", Kind: "latency", Summary: "p99 too high"}}}
	var b strings.Builder
	require.NoError(t, reports.WriteJSON(&b, r))
	result := filepath.Join(dir, reports.ResultFile)
	require.NoError(t, os.WriteFile(result, []byte(b.String()), 0o644))
	traces, err := os.ReadFile(filepath.Join("..", "..", "reports", "testdata", reports.TracesFile))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, reports.TracesFile), traces, 0o644))

	code, _, stderr := runCLI(t, "report", "html", result)
	require.Equal(t, 0, code, stderr)
	html, err := os.ReadFile(filepath.Join(dir, reports.HTMLFile))
	require.NoError(t, err)
	assert.Contains(t, string(html), `<a class="trace-link" href="#trace-`+slowest+`">`)
	assert.Contains(t, string(html), `id="trace-`+slowest+`"`)

	// A broken traces file: the report is still written, without traces.
	require.NoError(t, os.WriteFile(filepath.Join(dir, reports.TracesFile), []byte("[{"), 0o644))
	code, _, stderr = runCLI(t, "report", "html", result)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "report html: no traces drawn: reports: "+filepath.Join(dir, reports.TracesFile)+":1:")
	html, err = os.ReadFile(filepath.Join(dir, reports.HTMLFile))
	require.NoError(t, err)
	assert.NotContains(t, string(html), `id="trace-`)
}
