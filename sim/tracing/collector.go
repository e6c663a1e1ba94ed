package tracing

import (
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// File names of a run's traces in its folder: the Zipkin v2 array (what
// Jaeger imports and the HTML report reads) and the same spans as OTLP/JSON.
const (
	ZipkinFile = "traces.zipkin.json"
	OTLPFile   = "traces.otlp.json"
)

// Collector is a Receiver served on a listener of the mesh's own: the
// Zipkin service that istiod's tracing providers name
// (zipkin.istio-system:9411 in Istio's addon), standing in for it.
type Collector struct {
	*Receiver
	srv  *http.Server
	done chan struct{}
	addr net.Addr
}

// ServeCollector serves a Receiver keeping up to limit spans on lis.
func ServeCollector(lis net.Listener, limit int) *Collector {
	c := &Collector{Receiver: NewReceiver(limit), done: make(chan struct{}), addr: lis.Addr()}
	c.srv = &http.Server{Handler: c.Receiver, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(c.done)
		_ = c.srv.Serve(lis)
	}()
	return c
}

// Addr is where the collector listens.
func (c *Collector) Addr() net.Addr { return c.addr }

// Close stops serving; the spans stay readable.
func (c *Collector) Close() error {
	err := c.srv.Close()
	<-c.done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// WriteFiles writes spans into dir as ZipkinFile and OTLPFile; with no
// spans it writes nothing, so a run without tracing has no trace files.
func WriteFiles(dir string, spans []Span) error {
	if len(spans) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, write := range map[string]func(*os.File) error{
		ZipkinFile: func(f *os.File) error { return WriteZipkin(f, spans) },
		OTLPFile:   func(f *os.File) error { return WriteOTLP(f, spans) },
	} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		err = write(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}
