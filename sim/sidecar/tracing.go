package sidecar

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	trace "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshbench/meshbench/sim/tracing"
)

// Distributed tracing as Envoy's HCM and Zipkin tracer do it: the
// sampling decision, the span of each request (SERVER on the inbound
// side, CLIENT on the outbound), the B3 headers of the request that goes
// upstream, and spans batched to the collector cluster off the request
// path. docs/fidelity.md ("Tracing") lists where it differs.

const zipkinTracerName = "envoy.tracers.zipkin"

// tracingConf is a compiled HttpConnectionManager.Tracing with a Zipkin provider.
type tracingConf struct {
	// Sampling, per million (Percent 0-100 → 0-1e6); each defaults to 100%
	// (http_connection_manager.proto, Tracing).
	random, client, overall uint32
	customTags              []customTag
	spawnUpstream           bool
	maxPathTag              int
	zipkin                  zipkinConf
	// reporter is the sidecar's reporter for zipkin.dest, kept here once
	// looked up, so that a sampled span takes no lock.
	reporter atomic.Pointer[tracing.Reporter]
}

// zipkinConf is a compiled envoy.config.trace.v3.ZipkinConfig: where the
// spans go and how ids and contexts are made.
type zipkinConf struct {
	dest     zipkinDest
	trace128 bool
	shared   bool // shared_span_context, default true
	w3c      bool // trace_context_option USE_B3_WITH_W3C_PROPAGATION
}

// zipkinDest is where a batch of spans is POSTed: a cluster, a path and a Host.
type zipkinDest struct {
	cluster, endpoint, hostname string
	timeout                     time.Duration // 0: none
}

type customTagKind uint8

const (
	tagLiteral customTagKind = iota
	tagEnvironment
	tagRequestHeader
	tagRequestMetadata
)

type customTag struct {
	name  string
	kind  customTagKind
	value string // the literal, or the environment's value read at config time
	// header (canonical) and def for a request_header tag.
	header, def string
}

func percentPerMil(p *typev3.Percent) uint32 {
	if p == nil {
		return 1_000_000
	}
	v := min(max(p.GetValue(), 0), 100)
	return uint32(v * 10_000)
}

// compileTracing reads an HCM's tracing (nil: not traced). Envoy traces
// nothing without a provider ("If not specified, no tracing will be
// performed", http_connection_manager.proto). A provider other than
// Zipkin, and any field the sidecar cannot act on, is refused by name.
func compileTracing(m *hcm.HttpConnectionManager) (*tracingConf, error) {
	t := m.GetTracing()
	if t == nil || t.GetProvider() == nil {
		return nil, nil
	}
	tc := &tracingConf{
		random: percentPerMil(t.GetRandomSampling()), client: percentPerMil(t.GetClientSampling()),
		overall:       percentPerMil(t.GetOverallSampling()),
		spawnUpstream: t.GetSpawnUpstreamSpan().GetValue(), maxPathTag: 256,
	}
	if n := t.GetMaxPathTagLength(); n != nil {
		tc.maxPathTag = int(n.GetValue())
	}
	if t.GetVerbose() {
		// Envoy's verbose tracing annotates spans with stream events
		// (http_connection_manager.proto Tracing.verbose); istiod never
		// sets it, and the sidecar would write none.
		return nil, errors.New("tracing verbose (span annotations of stream events) is not supported")
	}
	if t.GetOperation() != "" || t.GetUpstreamOperation() != "" {
		return nil, errors.New("tracing operation and upstream_operation (format strings) are not supported")
	}
	for _, ct := range t.GetCustomTags() {
		c := customTag{name: ct.GetTag()}
		switch {
		case ct.GetLiteral() != nil:
			c.kind, c.value = tagLiteral, ct.GetLiteral().GetValue()
		case ct.GetEnvironment() != nil:
			// Envoy reads the variable once, when the config loads
			// (source/common/tracing/custom_tag_impl.cc EnvironmentCustomTag).
			e := ct.GetEnvironment()
			c.kind, c.value = tagEnvironment, e.GetDefaultValue()
			if v, ok := os.LookupEnv(e.GetName()); ok {
				c.value = v
			}
		case ct.GetRequestHeader() != nil:
			h := ct.GetRequestHeader()
			c.kind, c.header, c.def = tagRequestHeader, http.CanonicalHeaderKey(h.GetName()), h.GetDefaultValue()
		case ct.GetMetadata() != nil:
			// istiod tags every span with the RBAC filter's dry-run results
			// (tracing.go dryRunPolicyTraceTag: request metadata of
			// envoy.filters.http.rbac). Envoy tags the metadata's value,
			// else default_value, else nothing (custom_tag_impl.cc
			// MetadataCustomTag). The sidecar's RBAC writes no dynamic
			// metadata (its shadow rules only count), so the default
			// stands (docs/fidelity.md).
			md := ct.GetMetadata()
			if md.GetKind().GetRequest() == nil {
				return nil, fmt.Errorf("tracing custom tag %q: only request metadata tags are supported, not %T", ct.GetTag(), md.GetKind().GetKind())
			}
			c.kind, c.value = tagRequestMetadata, md.GetDefaultValue()
		default:
			return nil, fmt.Errorf("tracing custom tag %q: unsupported type %T", ct.GetTag(), ct.GetType())
		}
		tc.customTags = append(tc.customTags, c)
	}
	p := t.GetProvider()
	z := &trace.ZipkinConfig{}
	if p.GetName() != zipkinTracerName || p.GetTypedConfig() == nil || !p.GetTypedConfig().MessageIs(z) {
		return nil, fmt.Errorf("tracing provider %q (%s) is not supported: only %s with envoy.config.trace.v3.ZipkinConfig",
			p.GetName(), p.GetTypedConfig().GetTypeUrl(), zipkinTracerName)
	}
	if err := p.GetTypedConfig().UnmarshalTo(z); err != nil {
		return nil, fmt.Errorf("tracing provider %s: %v", zipkinTracerName, err)
	}
	zc, err := compileZipkin(z)
	if err != nil {
		return nil, err
	}
	tc.zipkin = zc
	return tc, nil
}

// compileZipkin reads a ZipkinConfig (config/trace/v3/zipkin.proto).
func compileZipkin(z *trace.ZipkinConfig) (zipkinConf, error) {
	zc := zipkinConf{
		dest:     zipkinDest{cluster: z.GetCollectorCluster(), endpoint: z.GetCollectorEndpoint(), hostname: z.GetCollectorHostname()},
		trace128: z.GetTraceId_128Bit(), shared: z.GetSharedSpanContext() == nil || z.GetSharedSpanContext().GetValue(),
	}
	if cs := z.GetCollectorService(); cs != nil {
		d, err := collectorService(cs)
		if err != nil {
			return zc, err
		}
		zc.dest = d
	}
	switch {
	//lint:ignore SA1019 a deprecated field set must still be refused, not ignored
	case z.GetSplitSpansForRequest():
		return zc, errors.New("zipkin split_spans_for_request is not supported: use the HCM's spawn_upstream_span")
	case z.GetCollectorEndpointVersion() != trace.ZipkinConfig_HTTP_JSON:
		return zc, fmt.Errorf("zipkin collector_endpoint_version %s is not supported: only HTTP_JSON", z.GetCollectorEndpointVersion())
	case zc.dest.cluster == "" || zc.dest.endpoint == "":
		return zc, errors.New("zipkin needs collector_cluster and collector_endpoint")
	}
	switch z.GetTraceContextOption() {
	case trace.ZipkinConfig_USE_B3:
	case trace.ZipkinConfig_USE_B3_WITH_W3C_PROPAGATION:
		zc.w3c = true
	default:
		return zc, fmt.Errorf("zipkin trace_context_option %s is not supported", z.GetTraceContextOption())
	}
	if zc.dest.hostname == "" {
		// "Defaults to collector_cluster" (zipkin.proto collector_hostname).
		zc.dest.hostname = zc.dest.cluster
	}
	return zc, nil
}

// collectorService reads a ZipkinConfig's collector_service, which takes
// the place of collector_cluster, collector_endpoint and
// collector_hostname: the cluster is http_uri's, the path and Host come
// from its URI, and its timeout bounds each POST (zipkin.proto
// collector_service; Envoy's FAQ "How do I configure the Zipkin collector
// with custom headers and full URIs?"). istiod sets it for proxies of
// 1.29 and later (pilot/pkg/networking/core/tracing.go zipkinConfig).
func collectorService(cs *corev3.HttpService) (zipkinDest, error) {
	if len(cs.GetRequestHeadersToAdd()) > 0 {
		return zipkinDest{}, errors.New("zipkin collector_service request_headers_to_add is not supported")
	}
	hu := cs.GetHttpUri()
	u, err := url.Parse(hu.GetUri())
	if err != nil || u.Host == "" {
		return zipkinDest{}, fmt.Errorf("zipkin collector_service uri %q: want scheme://host/path", hu.GetUri())
	}
	d := zipkinDest{cluster: hu.GetCluster(), endpoint: u.EscapedPath(), hostname: u.Host, timeout: hu.GetTimeout().AsDuration()}
	if d.endpoint == "" {
		d.endpoint = "/"
	}
	return d, nil
}

// traceState is one traced request's span as it is made. It exists only
// on a chain with tracing: a request on a chain without it costs nothing.
type traceState struct {
	conf    *tracingConf
	ctx     tracing.Context // this span's: its id, parent and decision
	shared  bool            // a SERVER span sharing its caller's span id
	kind    tracing.Kind
	name    string
	cluster string
	request *http.Request
	w       *countingWriter
	body    *countingBody
}

var (
	headerClientTraceID = http.CanonicalHeaderKey("x-client-trace-id")
	headerDecoratorOp   = http.CanonicalHeaderKey("x-envoy-decorator-operation")
)

// startTrace makes the sampling decision and the span's context, as
// Envoy does:
//
//   - ConnectionManagerUtility::mutateTracingRequestHeader
//     (source/common/http/conn_manager_utility.cc): x-client-trace-id
//     forces a trace with probability client_sampling, else
//     random_sampling draws; overall_sampling then caps either.
//   - The Zipkin driver (source/extensions/tracers/zipkin/
//     zipkin_tracer_impl.cc Driver::startSpan, SpanContextExtractor::
//     extractSampled) takes an incoming x-b3-sampled, b3 or x-b3-flags
//     decision over the HCM's; with trace_context_option
//     USE_B3_WITH_W3C_PROPAGATION a request without B3 is read from its
//     traceparent.
//   - Tracer::startSpan (zipkin/tracer.cc): an egress span is a child of
//     the incoming context; an ingress one shares the caller's span id
//     when shared_span_context, else is its child.
//
// It returns the ResponseWriter to answer through (counting bytes).
func (s *Sidecar) startTrace(w http.ResponseWriter, r *http.Request, x *exchange, tc *tracingConf) http.ResponseWriter {
	in, found, err := tracing.FromB3(r.Header)
	if err != nil {
		// Envoy's extractor throws on malformed B3, and the driver
		// answers with a NullSpan (Driver::startSpan catches
		// ExtractorException): the request is not traced, its headers
		// pass as they came.
		return w
	}
	if !found && tc.zipkin.w3c {
		if c, ok, err := tracing.FromTraceparent(r.Header); ok && err == nil {
			in, found = c, true
		}
	}
	sampled := in.Sampled
	if sampled == tracing.SamplingUnset {
		traced := false
		if _, ok := r.Header[headerClientTraceID]; ok && s.chance(tc.client) {
			traced = true
		} else if s.chance(tc.random) {
			traced = true
		}
		if traced && !s.chance(tc.overall) {
			traced = false
		}
		sampled = tracing.SamplingNo
		if traced {
			sampled = tracing.SamplingYes
		}
	}
	ts := &x.traceBuf
	*ts = traceState{conf: tc, request: r}
	ts.ctx.Sampled, ts.ctx.Debug = sampled, in.Debug
	// The HCM's span is SERVER on the inbound side, CLIENT on the outbound;
	// with spawn_upstream_span the proxy is a hop of its own, its
	// downstream span SERVER and each attempt a CLIENT child
	// (http_connection_manager.proto spawn_upstream_span; zipkin/tracer.cc
	// Tracer::startSpan).
	if x.reporter == "destination" || tc.spawnUpstream {
		ts.kind = tracing.Server
	} else {
		ts.kind = tracing.Client
	}
	switch {
	case !in.Valid():
		ts.ctx.TraceID = s.newTraceID(tc.zipkin.trace128)
		ts.ctx.SpanID = s.newSpanID()
	case ts.kind == tracing.Server && tc.zipkin.shared:
		ts.ctx.TraceID, ts.ctx.SpanID, ts.ctx.ParentID = in.TraceID, in.SpanID, in.ParentID
		ts.shared = true
	default:
		ts.ctx.TraceID, ts.ctx.SpanID, ts.ctx.ParentID = in.TraceID, s.newSpanID(), in.SpanID
	}
	// The Zipkin driver names a span after the request's host
	// (Driver::startSpan passes trace_context.host()); a route decorator
	// renames it (ConnectionManagerImpl::ActiveStream::traceRequest), as
	// does an ingress request's x-envoy-decorator-operation.
	ts.name = r.Host
	if ts.kind == tracing.Server {
		if op := headerValue(r.Header, headerDecoratorOp); op != "" {
			ts.name = op
		}
	}
	x.trace = ts
	if sampled != tracing.SamplingYes {
		return w
	}
	ts.w = &countingWriter{ResponseWriter: w}
	if r.Body != nil && r.Body != http.NoBody {
		ts.body = &countingBody{ReadCloser: r.Body}
		r.Body = ts.body
	}
	return ts.w
}

func (s *Sidecar) newSpanID() uint64 {
	for {
		if v := rand.Uint64(); v != 0 {
			return v
		}
	}
}

func (s *Sidecar) newTraceID(is128 bool) tracing.TraceID {
	t := tracing.TraceID{Lo: s.newSpanID(), Is128: is128}
	if is128 {
		t.Hi = rand.Uint64()
	}
	return t
}

// injectTrace puts the span's context on the request going upstream, as
// the Zipkin tracer's injectContext does: x-b3-traceid, x-b3-spanid,
// x-b3-parentspanid and x-b3-sampled, and traceparent too with
// USE_B3_WITH_W3C_PROPAGATION.
func injectTrace(h http.Header, ts *traceState, c tracing.Context) {
	tracing.SetB3(h, c)
	if ts.conf.zipkin.w3c {
		tracing.SetTraceparent(h, c)
	}
}

// attemptSpan is one upstream attempt's CLIENT span, under
// spawn_upstream_span: the router's upstream request span (Envoy's
// UpstreamRequest: "router <cluster> egress", retry.count on a retry).
type attemptSpan struct {
	ctx     tracing.Context
	start   time.Time
	attempt int
}

// startAttempt makes an attempt's span and sends its context upstream
// instead of the HCM span's.
func (s *Sidecar) startAttempt(x *exchange, h http.Header, attempt int) attemptSpan {
	ts := x.trace
	as := attemptSpan{ctx: ts.ctx, start: time.Now(), attempt: attempt}
	as.ctx.ParentID, as.ctx.SpanID = ts.ctx.SpanID, s.newSpanID()
	injectTrace(h, ts, as.ctx)
	return as
}

// endAttempt reports an attempt's span once its answer's headers came or
// it failed.
func (s *Sidecar) endAttempt(x *exchange, as attemptSpan, h *host, resp *http.Response, f failure) {
	ts := x.trace
	if as.ctx.Sampled != tracing.SamplingYes {
		return
	}
	tags := map[string]string{
		"component": "proxy", "upstream_address": h.addr,
		"upstream_cluster": orDash(ts.cluster), "upstream_cluster.name": orDash(ts.cluster),
		"http.protocol": envoyProtocol(ts.request),
	}
	if as.attempt > 1 {
		tags["retry.count"] = strconv.Itoa(as.attempt - 1)
	}
	switch {
	case f != noFailure:
		tags["error"], tags["response_flags"] = "true", f.flag()
		tags["http.status_code"] = "0"
	default:
		tags["http.status_code"] = strconv.Itoa(resp.StatusCode)
		if resp.StatusCode >= 500 {
			tags["error"] = "true"
		}
	}
	s.reporterOf(ts.conf).Report(tracing.Span{
		TraceID: as.ctx.TraceID.String(), ID: hexSpanID(as.ctx.SpanID), ParentID: hexSpanID(as.ctx.ParentID),
		Name: "router " + ts.cluster + " egress", Kind: tracing.Client,
		Timestamp: as.start.UnixMicro(), Duration: max(time.Since(as.start).Microseconds(), 1),
		LocalEndpoint: s.localEndpoint(), Tags: tags,
	})
}

// envoyProtocol is a request's protocol as Envoy's http.protocol tag writes it.
func envoyProtocol(r *http.Request) string {
	switch r.ProtoMajor {
	case 2:
		return "HTTP/2"
	case 3:
		return "HTTP/3"
	}
	if r.ProtoMinor == 0 {
		return "HTTP/1.0"
	}
	return "HTTP/1.1"
}

// finishTrace reports a sampled request's span with Envoy's standard tags
// (HttpTracerUtility::finalizeDownstreamSpan, source/common/tracing/
// http_tracer_impl.cc) and the HCM's custom tags.
func (s *Sidecar) finishTrace(x *exchange, end time.Time) {
	ts := x.trace
	if ts.ctx.Sampled != tracing.SamplingYes {
		return
	}
	r := ts.request
	scheme := "http"
	if v := headerValue(r.Header, headerForwardedProto); v != "" {
		scheme = v
	}
	path := r.URL.RequestURI()
	if len(path) > ts.conf.maxPathTag {
		path = path[:ts.conf.maxPathTag]
	}
	reqID := headerValue(r.Header, headerRequestIDKey)
	if x.upstream.header != nil {
		reqID = headerValue(x.upstream.header, headerRequestIDKey)
	}
	peerAddr, _, _ := net.SplitHostPort(r.RemoteAddr)
	tags := map[string]string{
		"component":             "proxy",
		"node_id":               s.cfg.NodeID,
		"zone":                  "",
		"guid:x-request-id":     reqID,
		"http.url":              scheme + "://" + r.Host + path,
		"http.method":           r.Method,
		"downstream_cluster":    "-",
		"user_agent":            orDash(r.UserAgent()),
		"http.protocol":         envoyProtocol(r),
		"peer.address":          peerAddr,
		"request_size":          "0",
		"response_size":         strconv.FormatInt(ts.w.n, 10),
		"http.status_code":      strconv.Itoa(x.code),
		"response_flags":        x.flags,
		"upstream_cluster":      orDash(ts.cluster),
		"upstream_cluster.name": orDash(ts.cluster),
	}
	if ts.body != nil {
		tags["request_size"] = strconv.FormatInt(ts.body.n, 10)
	}
	if x.code == 0 || x.code >= 500 {
		// Envoy tags error on a 5xx or a stream without a response code.
		tags["error"] = "true"
	}
	if x.grpc && x.grpcStatus != "" {
		tags["grpc.status_code"] = x.grpcStatus
	}
	if x.retries > 0 && !ts.conf.spawnUpstream {
		// Not an Envoy tag: without spawn_upstream_span, Envoy shows no
		// retry on the span; we name the count (docs/fidelity.md).
		tags["retry.count"] = strconv.Itoa(x.retries)
	}
	for _, c := range ts.conf.customTags {
		switch c.kind {
		case tagRequestHeader:
			v := headerValue(r.Header, c.header)
			if v == "" {
				v = c.def
			}
			if v != "" {
				tags[c.name] = v
			}
		case tagRequestMetadata:
			if c.value != "" {
				tags[c.name] = c.value
			}
		default:
			tags[c.name] = c.value
		}
	}
	span := tracing.Span{
		TraceID: ts.ctx.TraceID.String(), ID: hexSpanID(ts.ctx.SpanID), Name: ts.name, Kind: ts.kind,
		Timestamp: x.start.UnixMicro(), Duration: max(end.Sub(x.start).Microseconds(), 1),
		Debug: ts.ctx.Debug, Shared: ts.shared, LocalEndpoint: s.localEndpoint(), Tags: tags,
	}
	if ts.ctx.ParentID != 0 {
		span.ParentID = hexSpanID(ts.ctx.ParentID)
	}
	s.reporterOf(ts.conf).Report(span)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func hexSpanID(v uint64) string {
	return tracing.Context{TraceID: tracing.TraceID{Lo: v}}.TraceID.String()
}

// localEndpoint is the span's localEndpoint: Envoy's Zipkin tracer names
// the service by the node's cluster (local_info.clusterName(), which
// Istio sets to <app>.<namespace>) and the proxy's address.
func (s *Sidecar) localEndpoint() *tracing.Endpoint {
	name := s.cfg.App + "." + s.cfg.Namespace
	if s.cfg.Node != nil && s.cfg.Node.GetCluster() != "" {
		name = s.cfg.Node.GetCluster()
	}
	ep := &tracing.Endpoint{ServiceName: name}
	if s.cfg.IP.Is4() {
		ep.IPv4 = s.cfg.IP.String()
	} else if s.cfg.IP.IsValid() {
		ep.IPv6 = s.cfg.IP.String()
	}
	return ep
}

// tracers are the sidecar's span reporters, one per collector destination,
// made on the first span.
type tracers struct {
	mu     sync.Mutex
	closed bool
	by     map[zipkinDest]*tracing.Reporter
}

// reporterOf is the reporter of a tracing config's destination.
func (s *Sidecar) reporterOf(c *tracingConf) *tracing.Reporter {
	if r := c.reporter.Load(); r != nil {
		return r
	}
	r := s.reporterFor(c.zipkin.dest)
	c.reporter.Store(r)
	return r
}

func (s *Sidecar) reporterFor(d zipkinDest) *tracing.Reporter {
	s.tracers.mu.Lock()
	defer s.tracers.mu.Unlock()
	if r := s.tracers.by[d]; r != nil {
		return r
	}
	r := tracing.NewReporter(func(ctx context.Context, body []byte) error { return s.postSpans(ctx, d, body) },
		tracing.ReporterOptions{FlushInterval: s.cfg.TracingFlushInterval})
	if s.tracers.closed {
		r.Close() // spans after Close are dropped
	}
	if s.tracers.by == nil {
		s.tracers.by = map[zipkinDest]*tracing.Reporter{}
	}
	s.tracers.by[d] = r
	return r
}

// registerTracingMetrics exports the reporters' counts: Envoy's
// tracing.zipkin.spans_sent (zipkin_tracer_impl.h ZIPKIN_TRACER_STATS),
// and the spans dropped by a full queue or a failed POST, which Envoy
// counts per report (reports_dropped, reports_failed) and we per span.
func (s *Sidecar) registerTracingMetrics(reg *prometheus.Registry) {
	sum := func(f func(*tracing.Reporter) int64) func() float64 {
		return func() float64 {
			s.tracers.mu.Lock()
			defer s.tracers.mu.Unlock()
			var n int64
			for _, r := range s.tracers.by {
				n += f(r)
			}
			return float64(n)
		}
	}
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "envoy_tracing_zipkin_spans_sent", Help: "Spans the Zipkin collector took."}, sum((*tracing.Reporter).Sent)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "meshbench_tracing_zipkin_spans_dropped", Help: "Spans dropped: the report queue was full."}, sum((*tracing.Reporter).Dropped)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "meshbench_tracing_zipkin_spans_failed", Help: "Spans in batches the collector did not take."}, sum((*tracing.Reporter).Failed)),
	)
}

// closeTracers flushes what is queued, as Envoy's reporter flushes on
// shutdown, and stops.
func (s *Sidecar) closeTracers() {
	s.tracers.mu.Lock()
	s.tracers.closed = true
	rs := make([]*tracing.Reporter, 0, len(s.tracers.by))
	for _, r := range s.tracers.by {
		rs = append(rs, r)
	}
	s.tracers.mu.Unlock()
	for _, r := range rs {
		r.Close()
	}
}

// postSpans sends one batch to the collector cluster as Envoy's Zipkin
// reporter does (ReporterImpl::flushSpans): POST collector_endpoint, Host
// collector_hostname, application/json, through the cluster's balancer
// and connections like any request.
func (s *Sidecar) postSpans(ctx context.Context, d zipkinDest, body []byte) error {
	u := s.state.Load().clusters[d.cluster]
	if u == nil || !u.warm.Load() {
		return fmt.Errorf("zipkin collector cluster %q is not known", d.cluster)
	}
	h := u.pick(nil, 1, "", false)
	if h == nil {
		return fmt.Errorf("zipkin collector cluster %q has no healthy host", d.cluster)
	}
	t, scheme := u.transportFor(h, false)
	if d.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, scheme+"://"+h.addr+d.endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Host = d.hostname
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		// Envoy counts a report the collector did not answer 202 as
		// dropped (ReporterImpl::onSuccess).
		return fmt.Errorf("zipkin collector: %s", resp.Status)
	}
	return nil
}
