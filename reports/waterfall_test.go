package reports

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tracedResult is the synthetic canary run with three failed checks: a
// latency limit (drawn with the slowest trace), a status share (the 503
// trace) and the split (which no trace can show).
func tracedResult() *Result {
	r := synthResult(synthOptions{Seed: 1})
	r.Checks = append(r.Checks,
		Check{Name: "latency", Kind: "latency", Passed: false, Summary: "p99 48.7ms <= 20 FAIL; N=24000"},
		Check{Name: "status 503 share", Kind: "status", Passed: false, Summary: "0.4% 503 (want 0)"},
	)
	r.Checks[0].Passed = false // the split
	r.Passed = false
	return r
}

func TestHTMLWaterfalls(t *testing.T) {
	ts := loadFixtureTraces(t)
	r := tracedResult()
	r.Traces = ts.Refs(r)
	var b strings.Builder
	require.NoError(t, HTMLWithTraces(&b, r, ts))
	html := b.String()

	// The slowest trace (which the latency check also points at) and the
	// 503 trace, each drawn once.
	for _, id := range []string{fixSlow, fixRetried} {
		assert.Equal(t, 1, strings.Count(html, `<figure class="plot wide" id="trace-`+id+`">`), "one waterfall of %s", id)
		assert.Contains(t, html, `data-plot="trace-`+id+`"`)
	}
	assert.NotContains(t, html, `id="trace-`+fixFast+`"`)
	assert.Contains(t, html, "The slowest of 4 sampled traces; shows the failed check &#34;latency&#34;")

	// The check rows link to them; the split says why it has no trace.
	assert.Contains(t, html, `<a class="trace-link" href="#trace-`+fixSlow+`">trace `+fixSlow+`</a>`)
	assert.Contains(t, html, `<a class="trace-link" href="#trace-`+fixRetried+`">trace `+fixRetried+`</a>`)
	assert.Contains(t, html, "no trace: a split is a share of many requests; no single trace fails it")

	// One series per span, indented by depth, with its kind, status and flags.
	retried := section(t, html, "trace-"+fixRetried)
	assert.Contains(t, retried, `data-series="6"`)
	assert.Equal(t, 6, strings.Count(retried, `<g class="series span `))
	for _, d := range []string{"depth-0 kind-client failed", "depth-1 kind-server failed", "depth-2 kind-client failed", "depth-3 kind-server failed"} {
		assert.Contains(t, retried, `class="series span `+d+`"`)
	}
	assert.Equal(t, 3, strings.Count(retried, `class="series span depth-3 kind-server failed"`), "three attempts at payment")
	assert.Contains(t, retried, ">503 · URX</text>")
	assert.Contains(t, retried, `class="span-svc">istio-ingressgateway.istio-system</text>`)
	// Deeper spans start further right.
	xs := regexp.MustCompile(`<text x="([0-9.]+)" y="[0-9.]+" text-anchor="start" class="span-svc">`).FindAllStringSubmatch(retried, -1)
	require.Len(t, xs, 6)
	assert.Equal(t, []string{"8", "22", "36", "50", "50", "50"}, []string{xs[0][1], xs[1][1], xs[2][1], xs[3][1], xs[4][1], xs[5][1]})
	// The two retries as markers on the order → payment client span.
	assert.Equal(t, 2, strings.Count(retried, `class="annotation"`))
	assert.Contains(t, retried, "<title>retry 1: 503 from payment-v2-0 after 25 ms back-off at 2.31 ms</title>")
	// The tooltip carries every tag.
	assert.Contains(t, retried, "upstream_cluster: outbound|80|v2|payment.default.svc.cluster.local")

	slow := section(t, html, "trace-"+fixSlow)
	assert.Contains(t, slow, "Trace "+fixSlow+" — 48.7 ms, 4 spans")
	assert.NotContains(t, slow, `class="annotation"`)

	assert.NotContains(t, html, "<script", "no JavaScript")
}

// section returns the <figure> with that id.
func section(t *testing.T, html, id string) string {
	t.Helper()
	i := strings.Index(html, `id="`+id+`"`)
	require.GreaterOrEqual(t, i, 0, "no element %s", id)
	j := strings.Index(html[i:], "</figure>")
	require.GreaterOrEqual(t, j, 0)
	return html[i : i+j]
}

func TestWaterfallClampsSkew(t *testing.T) {
	ts, err := DecodeTraces(strings.NewReader(zipkinJSON(
		zspan{id: "a1", service: "gateway", kind: "CLIENT", start: 1000, dur: 2000},
		zspan{id: "b1", parent: "a1", service: "order", kind: "SERVER", start: 700, dur: 1000},
		zspan{id: "c1", parent: "ff0", service: "payment", kind: "SERVER", start: 1500, dur: 0},
	)), "t.json")
	require.NoError(t, err)
	p := waterfallPlot(ts.List[0], "test")
	require.Len(t, p.Series, 3)
	gw, order, orphan := p.Series[0].Rects[0], p.Series[1].Rects[0], p.Series[2].Rects[0]
	assert.Equal(t, gw.X, order.X, "the early child starts where its parent does")
	assert.Contains(t, order.Title, "started 0.3 ms before its parent (clock skew)")
	assert.Equal(t, px(1), orphan.W, "a zero-length span is still a visible bar")
	assert.Contains(t, orphan.Title, "parent 0000000000000ff0 not in the trace")
	assert.Contains(t, p.Caption, "1 span(s) whose parent was not reported drawn as roots of their own")
	assert.Contains(t, p.Caption, "1 span(s) started before their parent (clock skew) and are drawn from the parent's start")
}

func TestWaterfallRowLimit(t *testing.T) {
	spans := []zspan{{id: "a1", service: "order", kind: "CLIENT", start: 0, dur: 1000000}}
	for i := range wfMaxRows + 50 {
		spans = append(spans, zspan{id: fmt.Sprintf("%x", 0x1000+i), parent: "a1", service: "payment", kind: "SERVER", start: 10 * i, dur: 5})
	}
	ts, err := DecodeTraces(strings.NewReader(zipkinJSON(spans...)), "t.json")
	require.NoError(t, err)
	p := waterfallPlot(ts.List[0], "test")
	assert.Len(t, p.Series, wfMaxRows)
	assert.Contains(t, p.Caption, fmt.Sprintf("the first %d of %d spans drawn", wfMaxRows, wfMaxRows+51))
}

func TestWriteRunWithTraces(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("testdata", TracesFile))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, TracesFile), data, 0o644))
	r := tracedResult()
	_, err = WriteRun(dir, r)
	require.NoError(t, err)

	raw, err := os.ReadFile(filepath.Join(dir, ResultFile))
	require.NoError(t, err)
	var doc struct {
		Traces json.RawMessage `json:"traces"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	assert.JSONEq(t, `{"file":"traces.zipkin.json","traces":4,"spans":18,"slowest":"`+fixSlow+`","checks":[
		{"check":"split payment","index":0,"why":"a split is a share of many requests; no single trace fails it"},
		{"check":"latency","index":3,"trace":"`+fixSlow+`","why":"the slowest of 4 sampled traces (48.7 ms)"},
		{"check":"status 503 share","index":4,"trace":"`+fixRetried+`","why":"the slowest trace whose root answered 503 (1 of 4 sampled traces match)"}]}`,
		string(doc.Traces))
	html, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	require.NoError(t, err)
	assert.Contains(t, string(html), `id="trace-`+fixSlow+`"`)
	md, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	require.NoError(t, err)
	assert.Contains(t, string(md), "**Traces** (4 sampled in `traces.zipkin.json`):\n\n- slowest: `"+fixSlow+"`\n"+
		"- split payment: no trace — a split is a share of many requests; no single trace fails it\n"+
		"- latency: `"+fixSlow+"` — the slowest of 4 sampled traces (48.7 ms)\n")

	// A run folder without traces: no traces section at all.
	plain := t.TempDir()
	r = tracedResult()
	_, err = WriteRun(plain, r)
	require.NoError(t, err)
	raw, err = os.ReadFile(filepath.Join(plain, ResultFile))
	require.NoError(t, err)
	assert.NotContains(t, string(raw), `"traces"`)
	html, err = os.ReadFile(filepath.Join(plain, HTMLFile))
	require.NoError(t, err)
	assert.NotContains(t, string(html), `id="traces"`)

	// A broken traces file: the reports are written, and say why there are no traces.
	broken := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(broken, TracesFile), []byte("[\n{\"traceId\":\"1\"}]"), 0o644))
	r = tracedResult()
	_, err = WriteRun(broken, r)
	require.NoError(t, err)
	require.NotNil(t, r.Traces)
	assert.Contains(t, r.Traces.Error, TracesFile+":2: span 1: valid span id required")
	html, err = os.ReadFile(filepath.Join(broken, HTMLFile))
	require.NoError(t, err)
	assert.Contains(t, string(html), "No traces drawn: reports: "+filepath.Join(broken, TracesFile)+":2:")
}

// sidecarTags are the tags our sidecar (sim/sidecar/tracing.go) writes on
// every downstream span, Envoy's standard ones: a span of a run has
// these, plus those of its outcome, and no annotations.
func sidecarTags(status, flags string, extra string) string {
	tags := fmt.Sprintf(`"component":"proxy","node_id":"sidecar~10.0.0.1~order-v1-0.default~default.svc.cluster.local","zone":"","guid:x-request-id":"5c0e","http.url":"http://order/orders","http.method":"POST","downstream_cluster":"-","user_agent":"-","http.protocol":"HTTP/1.1","peer.address":"10.0.0.9","request_size":"0","response_size":"0","http.status_code":%q,"response_flags":%q,"upstream_cluster":"outbound|80||payment.default.svc.cluster.local","upstream_cluster.name":"outbound|80||payment.default.svc.cluster.local","istio.canonical_service":"order"`, status, flags)
	if extra != "" {
		tags += "," + extra
	}
	return tags
}

// A run's trace as our sidecar writes it has no annotations: the markers
// come from its tags. The gateway spawns a span per attempt
// (spawn_upstream_span), the second tagged retry.count 1; order's sidecar
// spawns none, so its client span names its two retries with retry.count
// and ends in an upstream timeout (UT, 504). Retries are amber markers,
// flags and the error tag red ones, at the end of the span's bar, and the
// legend says so, with no word of annotations.
func TestWaterfallMarkersFromSidecarTags(t *testing.T) {
	attempt := func(status, extra string) string {
		return fmt.Sprintf(`"http.status_code":%q,"error":"true","upstream_cluster":"outbound|80||order.default.svc.cluster.local"`, status) + extra
	}
	ts, err := DecodeTraces(strings.NewReader(zipkinJSON(
		zspan{id: "a1", service: "istio-ingressgateway.istio-system", kind: "SERVER", start: 0, dur: 9000, tags: sidecarTags("503", "URX", `"error":"true"`)},
		zspan{id: "a2", parent: "a1", service: "istio-ingressgateway.istio-system", kind: "CLIENT", start: 100, dur: 3000, tags: attempt("503", "")},
		zspan{id: "a3", parent: "a1", service: "istio-ingressgateway.istio-system", kind: "CLIENT", start: 3200, dur: 5500, tags: attempt("503", `,"retry.count":"1"`)},
		zspan{id: "b1", parent: "a3", service: "order.default", kind: "SERVER", start: 3300, dur: 5300, tags: sidecarTags("504", "-", `"error":"true"`)},
		zspan{id: "b2", parent: "b1", service: "order.default", kind: "CLIENT", start: 3400, dur: 5100, tags: sidecarTags("504", "UT", `"error":"true","retry.count":"2"`)},
		zspan{id: "c1", parent: "b2", service: "payment.default", kind: "SERVER", start: 3500, dur: 1500, tags: sidecarTags("200", "-", "")},
	)), "t.json")
	require.NoError(t, err)
	p := waterfallPlot(ts.List[0], "test")
	require.Len(t, p.Series, 6)

	count := map[string]int{}
	var titles []string
	for _, ser := range p.Series {
		bar := ser.Rects[0]
		for _, m := range ser.Paths {
			assert.NotEqual(t, "annotation", m.Class, "a sidecar's span has no annotations")
			count[m.Class]++
			titles = append(titles, m.Title)
		}
		if len(ser.Paths) > 0 {
			assert.True(t, strings.HasPrefix(ser.Paths[0].D, fmt.Sprintf("M%s ", bar.X+bar.W)), "%s: the first marker at the bar's end: %s", ser.Name, ser.Paths[0].D)
		}
	}
	assert.Equal(t, 2, count["tag-marker "+markerRetry], "the gateway's second attempt and order's client span")
	assert.Equal(t, 5, count["tag-marker "+markerFail], "every span but payment's")
	assert.Contains(t, titles, "retry.count 2: retried 2 time(s)")
	assert.Contains(t, titles, "retry.count 1: retried 1 time(s)")
	assert.Contains(t, titles, "status 504: UT (upstream request timeout), error")
	assert.Contains(t, titles, "status 503: URX (upstream retry limit exceeded), error")
	assert.Contains(t, titles, "status 503: error")
	// The trace picker counts the same retries.
	assert.Equal(t, 2, retriesTo(ts.List[0], "payment"), "order's retry.count")
	assert.Equal(t, 1, retriesTo(ts.List[0], "order"), "the gateway's second attempt, counted once")

	var legend []string
	for _, l := range p.Legend {
		legend = append(legend, l.Label)
	}
	assert.Contains(t, legend, "retried (retry.count tag)")
	assert.Contains(t, legend, "response flags (UT, URX…) or error tag")
	for _, l := range legend {
		assert.NotContains(t, l, "annotation")
	}

	// A successful trace has no marker and no marker in its legend.
	ok, err := DecodeTraces(strings.NewReader(zipkinJSON(
		zspan{id: "a1", service: "order.default", kind: "CLIENT", start: 0, dur: 2000, tags: sidecarTags("200", "-", "")},
		zspan{id: "b1", parent: "a1", service: "payment.default", kind: "SERVER", start: 100, dur: 1500, tags: sidecarTags("200", "-", "")},
	)), "ok.json")
	require.NoError(t, err)
	p = waterfallPlot(ok.List[0], "test")
	for _, ser := range p.Series {
		assert.Empty(t, ser.Paths)
	}
	assert.Len(t, p.Legend, 3, "client, server, failed")
}
