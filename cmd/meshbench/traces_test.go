package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/tracing"
)

// A run of a traced scenario leaves its spans in the run folder, sends the
// same spans to -traces-endpoint (a real Zipkin v2 collector here), and
// the HTML report draws the slowest trace.
func TestRunSendsTracesToTheEndpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a scenario")
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	col := tracing.ServeCollector(lis, 0)
	defer col.Close()
	dir := t.TempDir()
	endpoint := "http://" + lis.Addr().String() + tracing.ZipkinPath
	code, out, stderr := runCLI(t, "run", "-dir", dir, "-traces-endpoint", endpoint, "tracing-10pct-to-zipkin")
	require.Equal(t, 0, code, "%s\n%s", out, stderr)
	assert.Contains(t, out, "spans sent to "+endpoint)

	f, err := os.Open(filepath.Join(dir, "tracing-10pct-to-zipkin", tracing.ZipkinFile))
	require.NoError(t, err)
	defer f.Close()
	written, err := tracing.ReadZipkin(f)
	require.NoError(t, err)
	require.NotEmpty(t, written)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, col.Wait(ctx, func(s []tracing.Span) bool { return len(s) == len(written) }), "every span of the folder reached the endpoint")
	html, err := os.ReadFile(filepath.Join(dir, "tracing-10pct-to-zipkin", "report.html"))
	require.NoError(t, err)
	assert.Contains(t, string(html), `id="trace-`, "the report draws a waterfall")
}

func TestTracesEndpointIsCheckedBeforeTheRun(t *testing.T) {
	code, _, stderr := runCLI(t, "run", "-dir", t.TempDir(), "-traces-endpoint", "http://127.0.0.1:9411/spans", "canary-90-10")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "/api/v2/spans")
}
