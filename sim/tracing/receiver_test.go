package tracing

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	zipkinmodel "github.com/openzipkin/zipkin-go/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

func sampleSpans() []Span {
	return []Span{
		{TraceID: "463ac35c9f6413ad48485a3953bb6124", ID: "a2fb4a1d1a96d312", Name: "egress payment", Kind: Client,
			Timestamp: 1_700_000_000_000_000, Duration: 1500,
			LocalEndpoint: &Endpoint{ServiceName: "order.default", IPv4: "10.0.0.1"},
			Tags:          map[string]string{"http.status_code": "503", "error": "true"},
			Annotations:   []Annotation{{Timestamp: 1_700_000_000_000_100, Value: "retry"}}},
		{TraceID: "463ac35c9f6413ad48485a3953bb6124", ID: "a2fb4a1d1a96d312", Name: "ingress", Kind: Server, Shared: true,
			Timestamp: 1_700_000_000_000_200, Duration: 1000,
			LocalEndpoint: &Endpoint{ServiceName: "payment.default", IPv4: "10.0.0.2", Port: 8080}},
		{TraceID: "48485a3953bb6124", ID: "0000000000000001", ParentID: "a2fb4a1d1a96d312", Name: "egress x", Kind: Client,
			Timestamp: 1_700_000_000_000_300, Duration: 10},
	}
}

func post(t *testing.T, url, ctype, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(url, ctype, strings.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	return resp
}

func TestReceiver(t *testing.T) {
	rc := NewReceiver(4)
	srv := httptest.NewServer(rc)
	defer srv.Close()
	var buf bytes.Buffer
	require.NoError(t, WriteZipkin(&buf, sampleSpans()))
	assert.Equal(t, http.StatusAccepted, post(t, srv.URL+ZipkinPath, "application/json", buf.String()).StatusCode)
	assert.Equal(t, sampleSpans(), rc.Spans())

	// Past the cap: kept up to it, the rest counted.
	assert.Equal(t, http.StatusAccepted, post(t, srv.URL+ZipkinPath, "application/json", buf.String()).StatusCode)
	assert.Len(t, rc.Spans(), 4)
	assert.Equal(t, 2, rc.Dropped())

	assert.Equal(t, http.StatusBadRequest, post(t, srv.URL+ZipkinPath, "application/json", `[{"traceId":"xyz","id":"1"}]`).StatusCode)
	assert.Equal(t, http.StatusBadRequest, post(t, srv.URL+ZipkinPath, "application/json", `{`).StatusCode)
	assert.Equal(t, http.StatusUnsupportedMediaType, post(t, srv.URL+ZipkinPath, "application/x-protobuf", "").StatusCode)
	assert.Equal(t, http.StatusNotFound, post(t, srv.URL+"/v1/traces", "application/json", "[]").StatusCode)
	resp, err := http.Get(srv.URL + ZipkinPath)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

// The Zipkin v2 array is what Jaeger's Zipkin import reads: an array of
// objects with hex ids, kind, µs timestamps and string tags.
func TestZipkinJaegerShape(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteZipkin(&buf, sampleSpans()))
	var raw []map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &raw))
	require.Len(t, raw, 3)
	first := raw[0]
	assert.Equal(t, "463ac35c9f6413ad48485a3953bb6124", first["traceId"])
	assert.Equal(t, "CLIENT", first["kind"])
	assert.Equal(t, float64(1_700_000_000_000_000), first["timestamp"])
	assert.Equal(t, map[string]any{"http.status_code": "503", "error": "true"}, first["tags"])
	assert.Equal(t, map[string]any{"serviceName": "order.default", "ipv4": "10.0.0.1"}, first["localEndpoint"])
	assert.NotContains(t, first, "parentId")
	assert.Equal(t, true, raw[1]["shared"])
	assert.Equal(t, "a2fb4a1d1a96d312", raw[2]["parentId"])
	back, err := ReadZipkin(&buf)
	require.NoError(t, err)
	assert.Equal(t, sampleSpans(), back)

	buf.Reset()
	require.NoError(t, WriteZipkin(&buf, nil))
	assert.Equal(t, "[]\n", buf.String())
}

// zipkin-go's model (what the reports read) takes the array as written.
func TestZipkinGoReadsIt(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteZipkin(&buf, sampleSpans()))
	var spans []zipkinmodel.SpanModel
	require.NoError(t, json.Unmarshal(buf.Bytes(), &spans))
	require.Len(t, spans, 3)
	assert.Equal(t, "463ac35c9f6413ad48485a3953bb6124", spans[0].TraceID.String())
	assert.Equal(t, zipkinmodel.Client, spans[0].Kind)
	assert.Equal(t, 1500*time.Microsecond, spans[0].Duration)
	assert.True(t, spans[1].Shared)
	require.NotNil(t, spans[2].ParentID)
	assert.Equal(t, "a2fb4a1d1a96d312", spans[2].ParentID.String())
	assert.Equal(t, "order.default", spans[0].LocalEndpoint.ServiceName)
}

func FuzzReadZipkin(f *testing.F) {
	var buf bytes.Buffer
	_ = WriteZipkin(&buf, sampleSpans())
	f.Add(buf.String())
	f.Add(`[{"traceId":"0","id":"1"}]`)
	f.Fuzz(func(t *testing.T, body string) {
		spans, err := ReadZipkin(strings.NewReader(body))
		if err != nil {
			return
		}
		// What is taken writes out and reads back, and converts to OTLP.
		var out bytes.Buffer
		if err := WriteZipkin(&out, spans); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadZipkin(&out); err != nil {
			t.Fatalf("re-read: %v", err)
		}
		if _, err := ToOTLP(spans); err != nil {
			t.Fatalf("OTLP: %v", err)
		}
	})
}

func TestOTLPJSON(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteOTLP(&buf, sampleSpans()))
	// OTLP/JSON: hex ids and integer enums, not protojson's base64 and names.
	assert.Contains(t, buf.String(), `"traceId":"463ac35c9f6413ad48485a3953bb6124"`)
	assert.Contains(t, buf.String(), `"traceId":"000000000000000048485a3953bb6124"`)
	assert.Contains(t, buf.String(), `"parentSpanId":"a2fb4a1d1a96d312"`)
	assert.Contains(t, buf.String(), `"kind":3`)

	td, err := ReadOTLP(&buf)
	require.NoError(t, err)
	require.Len(t, td.GetResourceSpans(), 3) // "", order.default, payment.default
	var spans []*tracepb.Span
	services := map[string]int{}
	for _, rs := range td.GetResourceSpans() {
		svc := rs.GetResource().GetAttributes()[0].GetValue().GetStringValue()
		for _, ss := range rs.GetScopeSpans() {
			services[svc] += len(ss.GetSpans())
			spans = append(spans, ss.GetSpans()...)
		}
	}
	assert.Equal(t, map[string]int{"": 1, "order.default": 1, "payment.default": 1}, services)
	var client *tracepb.Span
	for _, s := range spans {
		if s.GetName() == "egress payment" {
			client = s
		}
	}
	require.NotNil(t, client)
	assert.Equal(t, tracepb.Span_SPAN_KIND_CLIENT, client.GetKind())
	assert.Equal(t, uint64(1_700_000_000_000_000_000), client.GetStartTimeUnixNano())
	assert.Equal(t, uint64(1_700_000_000_001_500_000), client.GetEndTimeUnixNano())
	assert.Equal(t, tracepb.Status_STATUS_CODE_ERROR, client.GetStatus().GetCode())
	assert.Equal(t, "retry", client.GetEvents()[0].GetName())
	assert.Len(t, client.GetTraceId(), 16)
	assert.Len(t, client.GetSpanId(), 8)
}

func TestForwarder(t *testing.T) {
	rc := NewReceiver(0)
	var mu sync.Mutex
	var otlpBodies [][]byte
	mux := http.NewServeMux()
	mux.Handle(ZipkinPath, rc)
	mux.HandleFunc(OTLPPath, func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(r.Body)
		mu.Lock()
		otlpBodies = append(otlpBodies, buf.Bytes())
		mu.Unlock()
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	f, err := NewForwarder(srv.URL+ZipkinPath, nil)
	require.NoError(t, err)
	require.NoError(t, f.Send(context.Background(), sampleSpans()))
	assert.Equal(t, sampleSpans(), rc.Spans())

	f, err = NewForwarder(srv.URL+OTLPPath, nil)
	require.NoError(t, err)
	require.NoError(t, f.Send(context.Background(), sampleSpans()))
	require.Len(t, otlpBodies, 1)
	td, err := ReadOTLP(bytes.NewReader(otlpBodies[0]))
	require.NoError(t, err)
	assert.Len(t, td.GetResourceSpans(), 3)

	f, err = NewForwarder(srv.URL+"/api/v2/nothing"+ZipkinPath+"x", nil)
	assert.Nil(t, f)
	assert.ErrorContains(t, err, "must end in")
	_, err = NewForwarder("ftp://x/api/v2/spans", nil)
	assert.Error(t, err)
	f, err = NewForwarder(srv.URL+"/bad"+ZipkinPath, nil)
	require.NoError(t, err)
	assert.ErrorContains(t, f.Send(context.Background(), sampleSpans()), "404")
}

func TestReporterBatches(t *testing.T) {
	rc := NewReceiver(0)
	srv := httptest.NewServer(rc)
	defer srv.Close()
	var mu sync.Mutex
	var batches []int
	post := func(ctx context.Context, body []byte) error {
		spans, err := ReadZipkin(bytes.NewReader(body))
		if err != nil {
			return err
		}
		mu.Lock()
		batches = append(batches, len(spans))
		mu.Unlock()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+ZipkinPath, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
	// An interval far longer than the test: only min_flush and Close flush.
	r := NewReporter(post, ReporterOptions{MinFlush: 5, FlushInterval: time.Hour, Queue: 100})
	s := sampleSpans()[0]
	for range 12 {
		r.Report(s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, rc.Wait(ctx, func(ss []Span) bool { return len(ss) == 10 }))
	r.Close()
	assert.Len(t, rc.Spans(), 12)
	assert.Equal(t, []int{5, 5, 2}, batches)
	assert.Equal(t, int64(12), r.Sent())
	r.Report(s) // after Close: queued, never sent
	assert.Equal(t, int64(0), r.Dropped())
}

func TestReporterDropsWhenFull(t *testing.T) {
	block := make(chan struct{})
	r := NewReporter(func(ctx context.Context, _ []byte) error {
		<-block
		return nil
	}, ReporterOptions{MinFlush: 1, FlushInterval: time.Hour, Queue: 2})
	s := sampleSpans()[0]
	for range 10 {
		r.Report(s)
	}
	// One span is being posted, two wait in the queue; at least 7 were dropped.
	assert.GreaterOrEqual(t, r.Dropped(), int64(7))
	close(block)
	r.Close()
	assert.Equal(t, int64(10), r.Dropped()+r.Sent())
}
