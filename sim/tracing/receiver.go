package tracing

import (
	"context"
	"net/http"
	"strings"
	"sync"
)

// ZipkinPath is where a Zipkin v2 collector takes spans.
const ZipkinPath = "/api/v2/spans"

// maxBody bounds one POST's body: Envoy's batches are a few spans, a
// user's tracer may send more, nobody sends this much at once.
const maxBody = 8 << 20

// Receiver is a Zipkin v2 JSON collector: POST /api/v2/spans. It keeps up
// to a cap of spans, in arrival order, and counts those it dropped past it.
type Receiver struct {
	limit int

	mu      sync.Mutex
	spans   []Span
	dropped int
	// changed is closed and replaced whenever spans arrive, so that
	// Wait needs no polling.
	changed chan struct{}
}

// NewReceiver keeps up to limit spans (limit <= 0: 100,000).
func NewReceiver(limit int) *Receiver {
	if limit <= 0 {
		limit = 100_000
	}
	return &Receiver{limit: limit, changed: make(chan struct{})}
}

func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != ZipkinPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST spans here", http.StatusMethodNotAllowed)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		// Envoy's HTTP_PROTO version sends application/x-protobuf.
		http.Error(w, "only Zipkin v2 JSON is taken, not "+ct, http.StatusUnsupportedMediaType)
		return
	}
	spans, err := ReadZipkin(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "bad Zipkin v2 JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	rc.Add(spans)
	// Zipkin answers 202 Accepted.
	w.WriteHeader(http.StatusAccepted)
}

// Add keeps spans as if they had been POSTed.
func (rc *Receiver) Add(spans []Span) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	room := max(rc.limit-len(rc.spans), 0)
	if len(spans) > room {
		rc.dropped += len(spans) - room
		spans = spans[:room]
	}
	rc.spans = append(rc.spans, spans...)
	close(rc.changed)
	rc.changed = make(chan struct{})
}

// Spans is a copy of the spans kept.
func (rc *Receiver) Spans() []Span {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Span(nil), rc.spans...)
}

// SpansFrom is a copy of the spans kept from the i-th on (in arrival
// order), for a reader that takes them as they come.
func (rc *Receiver) SpansFrom(i int) []Span {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if i >= len(rc.spans) {
		return nil
	}
	return append([]Span(nil), rc.spans[max(i, 0):]...)
}

// Dropped is how many spans came past the cap.
func (rc *Receiver) Dropped() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.dropped
}

// Wait blocks until done holds of the spans kept, or ctx ends.
func (rc *Receiver) Wait(ctx context.Context, done func([]Span) bool) error {
	for {
		rc.mu.Lock()
		ok, ch := done(rc.spans), rc.changed
		rc.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
