package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/meshbench/meshbench/sim/tracing"
)

// tracesFlag registers -traces-endpoint: a user's collector that each
// scenario's spans are sent to after its run, beside the run folder's files.
func tracesFlag(fs *flag.FlagSet) *string {
	return fs.String("traces-endpoint", "", "also send each run's spans to this collector: a Zipkin v2 URL (http://HOST:9411/api/v2/spans; Jaeger and Tempo take it) or an OTLP/HTTP one (http://HOST:4318/v1/traces)")
}

// forwarderFor is the forwarder of a -traces-endpoint; nil for none.
func forwarderFor(endpoint string) (*tracing.Forwarder, error) {
	if endpoint == "" {
		return nil, nil
	}
	return tracing.NewForwarder(endpoint, &http.Client{Timeout: 30 * time.Second})
}

// forwardTraces sends the spans in a scenario's run folder, if any, and
// says how many went; a collector that fails is reported, not fatal: the
// files stay in the folder.
func forwardTraces(ctx context.Context, fwd *tracing.Forwarder, dir string, stdout, stderr io.Writer) {
	f, err := os.Open(filepath.Join(dir, tracing.ZipkinFile))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		fmt.Fprintln(stderr, "meshbench: traces:", err)
		return
	}
	defer f.Close()
	spans, err := tracing.ReadZipkin(f)
	if err == nil {
		err = fwd.Send(ctx, spans)
	}
	if err != nil {
		fmt.Fprintln(stderr, "meshbench: sending traces:", err)
		return
	}
	fmt.Fprintf(stdout, "  traces: %d spans sent to %s\n", len(spans), fwd)
}
