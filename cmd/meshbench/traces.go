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

// traceSource is a mesh that serves the collector its tracing names (the
// local and docker runtimes), whose spans can be read as they arrive.
type traceSource interface {
	TraceReceiver() *tracing.Receiver
}

// forwardLive sends the spans rc takes to fwd as they arrive, one POST per
// batch, until stop is called; stop sends what came since (spans the
// proxies flushed as the mesh stopped included, when called after the
// mesh's Stop) and says how many went. A collector that fails is reported
// once, not fatal: the spans stay in the run folder's files.
func forwardLive(rc *tracing.Receiver, fwd *tracing.Forwarder, stdout, stderr io.Writer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	next, sent, failed := 0, 0, 0 // next: the first span not yet taken
	flush := func(ctx context.Context) {
		batch := rc.SpansFrom(next)
		if len(batch) == 0 {
			return
		}
		next += len(batch)
		if err := fwd.Send(ctx, batch); err != nil {
			if failed == 0 {
				fmt.Fprintln(stderr, "meshbench: sending traces:", err)
			}
			failed += len(batch)
			return
		}
		sent += len(batch)
	}
	go func() {
		defer close(done)
		for {
			if rc.Wait(ctx, func(s []tracing.Span) bool { return len(s) > next }) != nil {
				return
			}
			flush(ctx)
		}
	}()
	return func() {
		cancel()
		<-done
		fctx, fcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer fcancel()
		flush(fctx)
		fmt.Fprintf(stdout, "traces: %d spans sent to %s", sent, fwd)
		if failed > 0 {
			fmt.Fprintf(stdout, " (%d not taken)", failed)
		}
		if d := rc.Dropped(); d > 0 {
			fmt.Fprintf(stdout, " (%d past the collector's cap, neither kept nor sent)", d)
		}
		fmt.Fprintln(stdout)
	}
}
