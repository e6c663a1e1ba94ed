package tracing

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Envoy's Zipkin reporter sends a batch once min_flush_spans spans are
// buffered or every flush interval, whichever comes first: runtime keys
// tracing.zipkin.min_flush_spans, default 5, and
// tracing.zipkin.flush_interval_ms, default 5000 (source/extensions/
// tracers/zipkin/zipkin_tracer_impl.cc, ReporterImpl::reportSpan and
// enableTimer).
const (
	DefaultMinFlush      = 5
	DefaultFlushInterval = 5 * time.Second
	// DefaultQueue bounds the spans waiting to be sent; past it spans are
	// dropped and counted, so a dead collector never grows the proxy.
	DefaultQueue = 10_000
)

// Reporter batches spans off the request path and hands each batch, as a
// Zipkin v2 JSON array, to post. Report never blocks.
type Reporter struct {
	post     func(ctx context.Context, body []byte) error
	minFlush int
	interval time.Duration

	queue   chan Span
	dropped atomic.Int64
	failed  atomic.Int64
	sent    atomic.Int64
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// ReporterOptions override the defaults (zero values take them).
type ReporterOptions struct {
	MinFlush      int
	FlushInterval time.Duration
	Queue         int
}

// NewReporter starts a reporter; Close flushes and stops it.
func NewReporter(post func(ctx context.Context, body []byte) error, o ReporterOptions) *Reporter {
	if o.MinFlush <= 0 {
		o.MinFlush = DefaultMinFlush
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	r := &Reporter{post: post, minFlush: o.MinFlush, interval: o.FlushInterval,
		queue: make(chan Span, o.Queue), stop: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r
}

// Report queues a span, or drops and counts it when the queue is full.
func (r *Reporter) Report(s Span) {
	select {
	case r.queue <- s:
	default:
		r.dropped.Add(1)
	}
}

// Dropped is how many spans found the queue full; Failed how many were
// in batches the collector did not take; Sent how many it took.
func (r *Reporter) Dropped() int64 { return r.dropped.Load() }
func (r *Reporter) Failed() int64  { return r.failed.Load() }
func (r *Reporter) Sent() int64    { return r.sent.Load() }

// Close sends what is queued and stops; later Reports are dropped.
func (r *Reporter) Close() {
	r.once.Do(func() { close(r.stop) })
	<-r.done
}

func (r *Reporter) run() {
	defer close(r.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t := time.NewTicker(r.interval)
	defer t.Stop()
	var batch []Span
	flush := func() {
		if len(batch) == 0 {
			return
		}
		var buf bytes.Buffer
		_ = WriteZipkin(&buf, batch)
		// Envoy's collector request times out after 5 s (ReporterImpl::flushSpans).
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		if err := r.post(pctx, buf.Bytes()); err != nil {
			r.failed.Add(int64(len(batch)))
		} else {
			r.sent.Add(int64(len(batch)))
		}
		pcancel()
		batch = batch[:0]
	}
	for {
		select {
		case s := <-r.queue:
			batch = append(batch, s)
			if len(batch) >= r.minFlush {
				flush()
			}
		case <-t.C:
			flush()
		case <-r.stop:
			for {
				select {
				case s := <-r.queue:
					batch = append(batch, s)
				default:
					flush()
					return
				}
			}
		}
	}
}
