package reports

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// zspan is a span for the tree tests, written out as Zipkin v2 JSON.
type zspan struct {
	trace, id, parent string
	service, ip, kind string
	shared            bool
	start, dur        int // µs from an arbitrary epoch
	tags              string
}

const zepoch = 1773500970000000 // 2026-03-14T15:09:30Z in µs

func zipkinJSON(spans ...zspan) string {
	var parts []string
	for _, s := range spans {
		trace := s.trace
		if trace == "" {
			trace = "463ac35c9f6413ad48485a3953bb6124"
		}
		ip := s.ip
		if ip == "" {
			ip = "10.0.0.1"
		}
		js := fmt.Sprintf(`{"traceId":%q,"id":%q`, trace, s.id)
		if s.parent != "" {
			js += fmt.Sprintf(`,"parentId":%q`, s.parent)
		}
		js += fmt.Sprintf(`,"name":"x","kind":%q,"timestamp":%d,"duration":%d,"localEndpoint":{"serviceName":%q,"ipv4":%q}`,
			s.kind, zepoch+s.start, s.dur, s.service, ip)
		if s.shared {
			js += `,"shared":true`
		}
		if s.tags != "" {
			js += `,"tags":{` + s.tags + `}`
		}
		parts = append(parts, js+"}")
	}
	return "[\n" + strings.Join(parts, ",\n") + "\n]\n"
}

// rowsOf writes a trace's spans as the waterfall orders them:
// "depth service kind id".
func rowsOf(tr *Trace) []string {
	var rows []string
	for _, s := range tr.Spans {
		rows = append(rows, fmt.Sprintf("%d %s %s %s", s.Depth, s.Service, s.Kind, s.ID))
	}
	return rows
}

func TestTraceTrees(t *testing.T) {
	tests := []struct {
		name     string
		spans    []zspan
		rows     []string // depth-first, "depth service kind id"
		roots    int
		orphans  int
		duration time.Duration
		skew     map[string]time.Duration // span id → how far it was moved
	}{{
		name: "Istio: every hop a client span of the caller and a server span of the callee, each with its own id",
		spans: []zspan{
			{id: "a1", service: "gateway", kind: "CLIENT", start: 0, dur: 2000},
			{id: "b1", parent: "a1", service: "order", ip: "10.0.0.5", kind: "SERVER", start: 200, dur: 1600},
			{id: "c1", parent: "b1", service: "order", ip: "10.0.0.5", kind: "CLIENT", start: 400, dur: 1000},
			{id: "d1", parent: "c1", service: "payment", ip: "10.0.0.7", kind: "SERVER", start: 600, dur: 600},
		},
		rows:     []string{"0 gateway CLIENT 00000000000000a1", "1 order SERVER 00000000000000b1", "2 order CLIENT 00000000000000c1", "3 payment SERVER 00000000000000d1"},
		roots:    1,
		duration: 2000 * time.Microsecond,
	}, {
		name: "shared span context: a server reuses its client's id; the callee's next client hangs under the server on its host",
		spans: []zspan{
			// In file order the server comes first: order must not matter.
			{id: "a1", service: "order", ip: "10.0.0.5", kind: "SERVER", shared: true, start: 200, dur: 1600},
			{id: "a1", service: "gateway", kind: "CLIENT", start: 0, dur: 2000},
			{id: "c1", parent: "a1", service: "order", ip: "10.0.0.5", kind: "CLIENT", start: 400, dur: 1000},
			{id: "c1", parent: "a1", service: "payment", ip: "10.0.0.7", kind: "SERVER", shared: true, start: 600, dur: 600},
		},
		rows:     []string{"0 gateway CLIENT 00000000000000a1", "1 order SERVER 00000000000000a1", "2 order CLIENT 00000000000000c1", "3 payment SERVER 00000000000000c1"},
		roots:    1,
		duration: 2000 * time.Microsecond,
	}, {
		name: "a shared server whose client was not reported is a root of its own",
		spans: []zspan{
			{id: "a1", service: "order", kind: "SERVER", shared: true, start: 0, dur: 900},
			{id: "c1", parent: "a1", service: "order", kind: "CLIENT", start: 100, dur: 500},
		},
		rows:     []string{"0 order SERVER 00000000000000a1", "1 order CLIENT 00000000000000c1"},
		roots:    1,
		orphans:  1,
		duration: 900 * time.Microsecond,
	}, {
		name: "missing parents: each orphan roots its own subtree, after the real root",
		spans: []zspan{
			{id: "a1", service: "gateway", kind: "CLIENT", start: 0, dur: 3000},
			{id: "e1", parent: "ff", service: "payment", kind: "SERVER", start: 900, dur: 300},
			{id: "b1", parent: "a1", service: "order", kind: "SERVER", start: 100, dur: 2000},
			{id: "e2", parent: "e1", service: "payment", kind: "CLIENT", start: 1000, dur: 100},
			{id: "f1", parent: "fe", service: "ledger", kind: "SERVER", start: 2500, dur: 1000},
		},
		rows: []string{"0 gateway CLIENT 00000000000000a1", "1 order SERVER 00000000000000b1",
			"0 payment SERVER 00000000000000e1", "1 payment CLIENT 00000000000000e2", "0 ledger SERVER 00000000000000f1"},
		roots:    3,
		orphans:  2,
		duration: 3500 * time.Microsecond, // the ledger orphan ends last
	}, {
		name: "clock skew: a child that starts before its parent is drawn from the parent's start",
		spans: []zspan{
			{id: "a1", service: "gateway", kind: "CLIENT", start: 1000, dur: 2000},
			{id: "b1", parent: "a1", service: "order", kind: "SERVER", start: 700, dur: 2500}, // 300 µs early
			{id: "c1", parent: "b1", service: "order", kind: "CLIENT", start: 900, dur: 400},  // after b1's clock, before its drawn start
		},
		rows:     []string{"0 gateway CLIENT 00000000000000a1", "1 order SERVER 00000000000000b1", "2 order CLIENT 00000000000000c1"},
		roots:    1,
		duration: 2500 * time.Microsecond, // b1 moved to 0 and lasting 2.5 ms
		skew:     map[string]time.Duration{"00000000000000b1": 300 * time.Microsecond, "00000000000000c1": 100 * time.Microsecond},
	}, {
		name: "a parent cycle, which only bad input holds, is cut",
		spans: []zspan{
			{id: "a1", parent: "b1", service: "x", kind: "CLIENT", start: 0, dur: 10},
			{id: "b1", parent: "a1", service: "y", kind: "SERVER", start: 1, dur: 5},
		},
		rows:     []string{"0 x CLIENT 00000000000000a1", "1 y SERVER 00000000000000b1"},
		roots:    1,
		orphans:  1,
		duration: 10 * time.Microsecond,
	}, {
		name: "children in start order, retries included",
		spans: []zspan{
			{id: "c1", service: "order", kind: "CLIENT", start: 0, dur: 9000},
			{id: "d3", parent: "c1", service: "payment", kind: "SERVER", start: 7000, dur: 1400},
			{id: "d1", parent: "c1", service: "payment", kind: "SERVER", start: 200, dur: 1400},
			{id: "d2", parent: "c1", service: "payment", kind: "SERVER", start: 3500, dur: 1400},
		},
		rows:     []string{"0 order CLIENT 00000000000000c1", "1 payment SERVER 00000000000000d1", "1 payment SERVER 00000000000000d2", "1 payment SERVER 00000000000000d3"},
		roots:    1,
		duration: 9000 * time.Microsecond,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts, err := DecodeTraces(strings.NewReader(zipkinJSON(tc.spans...)), "t.json")
			require.NoError(t, err)
			require.Len(t, ts.List, 1)
			tr := ts.List[0]
			assert.Equal(t, "463ac35c9f6413ad48485a3953bb6124", tr.ID)
			assert.Equal(t, tc.rows, rowsOf(tr))
			assert.Len(t, tr.Roots, tc.roots)
			assert.Equal(t, tc.orphans, countOrphans(tr))
			assert.Equal(t, tc.duration, tr.Duration)
			for _, s := range tr.Spans {
				assert.Equal(t, tc.skew[s.ID], s.Skew, "skew of %s", s.ID)
				if s.Parent != nil {
					assert.GreaterOrEqual(t, s.Offset, s.Parent.Offset, "%s is drawn inside its parent's start", s.ID)
					assert.Contains(t, s.Parent.Children, s)
				}
			}
		})
	}
}

func TestDecodeTracesGroupsAndSorts(t *testing.T) {
	js := zipkinJSON(
		zspan{trace: "bb", id: "2", service: "order", kind: "SERVER", start: 5000, dur: 100},
		zspan{trace: "aa", id: "1", service: "gateway", kind: "CLIENT", start: 0, dur: 7000, tags: `"http.status_code":"503","response_flags":"URX"`},
		zspan{trace: "bb", id: "3", parent: "2", service: "order", kind: "CLIENT", start: 5010, dur: 50},
	)
	ts, err := DecodeTraces(strings.NewReader(js), "t.json")
	require.NoError(t, err)
	require.Len(t, ts.List, 2)
	assert.Equal(t, 3, ts.Spans)
	assert.Equal(t, "00000000000000aa", ts.List[0].ID, "64-bit trace ids are written as 16 hex digits")
	assert.Equal(t, "00000000000000bb", ts.List[1].ID)
	assert.Equal(t, 503, ts.List[0].Status)
	assert.Equal(t, "URX", ts.List[0].Flags)
	assert.Equal(t, ts.List[0], ts.Slowest())
	assert.Same(t, ts.List[1], ts.Trace("00000000000000bb"))
	assert.Nil(t, ts.Trace("cc"))
}

func TestDecodeTracesErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", "t.json:1: want a JSON array of Zipkin v2 spans"},
		{"not an array", `{"traceId":"1"}`, "t.json:1: want a JSON array of Zipkin v2 spans, found {"},
		{"a span with no id", "[\n{\"traceId\":\"a\",\"id\":\"1\"},\n  {\"traceId\":\"a\"}\n]", "t.json:3: span 2: valid span id required"},
		{"a span with no trace id", "[\n{\"id\":\"1\"}\n]", "t.json:2: span 1: traceId: valid traceId required"},
		{"a field of the wrong type", "[\n\n{\"traceId\":\"a\",\"id\":\"1\",\"duration\":\"slow\"}]", "t.json:3: span 1: json: cannot unmarshal string"},
		{"bad hex", "[{\"traceId\":\"a\",\"id\":\"xyz\"}]", "t.json:1: span 1: strconv.ParseUint"},
		{"syntax", "[\n{\"traceId\":\"a\",\n\"id\":\"1\",,}]", "t.json:3: span 1: invalid character ','"},
		{"unterminated", "[\n{\"traceId\":\"a\",\"id\":\"1\"}\n", "t.json:3: unterminated array"},
		{"trailing data", "[]\n[]", "t.json:2: data after the array of spans"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeTraces(strings.NewReader(tc.in), "t.json")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	ts, err := DecodeTraces(strings.NewReader("[]"), "t.json")
	require.NoError(t, err)
	assert.Empty(t, ts.List)
	assert.Nil(t, ts.Slowest())
}

func TestLoadTraces(t *testing.T) {
	dir := t.TempDir()
	ts, err := LoadTraces(dir)
	require.NoError(t, err, "no traces file is no traces, not an error")
	assert.Nil(t, ts)

	require.NoError(t, os.WriteFile(filepath.Join(dir, TracesFile), []byte("[\n{]"), 0o644))
	_, err = LoadTraces(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dir, TracesFile)+":2:")

	ts = loadFixtureTraces(t)
	assert.Len(t, ts.List, 4)
	assert.Equal(t, 18, ts.Spans)
}

// loadFixtureTraces reads testdata/traces.zipkin.json: four requests
// through ingress → order → payment as Istio's Envoys report them (see
// TestFixtureTraces).
func loadFixtureTraces(t *testing.T) *Traces {
	t.Helper()
	ts, err := LoadTraces("testdata")
	require.NoError(t, err)
	require.NotNil(t, ts)
	return ts
}

// Fixture trace ids.
const (
	fixFast    = "4bf92f3577b34da6a3ce929d0e0e4736"
	fixSlow    = "0af7651916cd43dd8448eb211c80319c"
	fixRetried = "a3ce929d0e0e47364bf92f3577b34da6"
	fixTimeout = "5b8efff798038103d269b633813fc60c"
)

func TestFixtureTraces(t *testing.T) {
	ts := loadFixtureTraces(t)
	ids := []string{}
	for _, tr := range ts.List {
		ids = append(ids, tr.ID)
	}
	assert.Equal(t, []string{fixFast, fixSlow, fixRetried, fixTimeout}, ids)
	fast := ts.Trace(fixFast)
	assert.Equal(t, []string{
		"0 istio-ingressgateway.istio-system CLIENT 0000000000001001",
		"1 order.default SERVER 0000000000001002",
		"2 order.default CLIENT 0000000000001003",
		"3 payment.default SERVER 0000000000001004",
	}, rowsOf(fast), "one span per proxy hop, parent links intact")
	assert.Equal(t, 2110*time.Microsecond, fast.Duration)
	assert.Equal(t, 200, fast.Status)

	retried := ts.Trace(fixRetried)
	assert.Equal(t, 503, retried.Status)
	assert.Len(t, retried.Spans, 6, "three attempts at payment under one client span")
	client := retried.Spans[2]
	assert.Equal(t, "URX", client.Tags[tagResponseFlags])
	assert.Len(t, client.Annotations, 2)
	assert.Equal(t, 3, retriesTo(retried, "payment"), "two retry annotations and URX")

	timeout := ts.Trace(fixTimeout)
	assert.Equal(t, 504, timeout.Status)
	assert.Equal(t, 45660*time.Microsecond, timeout.Duration, "payment's span outlives the client that timed out")
	assert.Equal(t, fixSlow, ts.Slowest().ID)
}

func TestTraceForCheck(t *testing.T) {
	ts := loadFixtureTraces(t)
	tests := []struct {
		check     Check
		trace     string
		whyPrefix string
	}{
		{Check{Name: "latency", Kind: "latency"}, fixSlow, "the slowest of 4 sampled traces (48.7 ms)"},
		{Check{Name: "p99 shift during slow-payment", Kind: "latencyShift"}, fixSlow, "the slowest"},
		{Check{Name: "success rate", Kind: "successRate"}, fixTimeout, "the slowest trace whose root failed (2 of 4"},
		{Check{Name: "status 503 share", Kind: "status"}, fixRetried, "the slowest trace whose root answered 503 (1 of 4"},
		{Check{Name: "status 404 share (canary)", Kind: "status"}, "", "no sampled trace answered 404"},
		{Check{Name: "flag URX to payment", Kind: "responseFlags"}, fixRetried, "the slowest trace with a span to payment flagged URX"},
		{Check{Name: "flag UT to payment (v2)", Kind: "responseFlags"}, fixTimeout, "the slowest trace with a span to payment flagged UT"},
		{Check{Name: "flag UT to order", Kind: "responseFlags"}, "", "no sampled span to order is flagged UT"},
		{Check{Name: "overflows to payment", Kind: "overflows"}, "", "no sampled span to payment is flagged UO"},
		{Check{Name: "retries to payment", Kind: "retries"}, fixRetried, "the trace with the most retries to payment (3)"},
		{Check{Name: "retries to payment (at the server)", Kind: "retries"}, fixRetried, "the trace with the most retries to payment"},
		{Check{Name: "attempts at payment (v2)", Kind: "attempts"}, fixRetried, "the trace with the most retries to payment"},
		{Check{Name: "retries to order", Kind: "retries"}, "", "no sampled trace shows a retry to order"},
		{Check{Name: "split payment", Kind: "split"}, "", "a split is a share of many requests"},
		{Check{Name: "ejections of payment", Kind: "ejections"}, "", "ejections are counted per host"},
		{Check{Name: "STRICT requests to payment", Kind: "security"}, "", "a security check is judged over the run"},
	}
	for _, tc := range tests {
		t.Run(tc.check.Name, func(t *testing.T) {
			id, why := ts.ForCheck(tc.check)
			assert.Equal(t, tc.trace, id)
			assert.True(t, strings.HasPrefix(why, tc.whyPrefix), "why: %q", why)
		})
	}
	var none *Traces
	id, why := none.ForCheck(Check{Kind: "latency"})
	assert.Empty(t, id)
	assert.Equal(t, "no sampled traces", why)
}

func TestTraceRefs(t *testing.T) {
	ts := loadFixtureTraces(t)
	r := &Result{Checks: []Check{
		{Name: "split payment", Kind: "split", Passed: false},
		{Name: "success rate", Kind: "successRate", Passed: true},
		{Name: "status 503 share", Kind: "status", Passed: false},
	}}
	assert.Equal(t, &TraceRefs{File: TracesFile, Traces: 4, Spans: 18, Slowest: fixSlow, Checks: []CheckTrace{
		{Check: "split payment", Index: 0, Why: "a split is a share of many requests; no single trace fails it"},
		{Check: "status 503 share", Index: 2, Trace: fixRetried, Why: "the slowest trace whose root answered 503 (1 of 4 sampled traces match)"},
	}}, ts.Refs(r), "passed checks get no entry")
	var none *Traces
	assert.Nil(t, none.Refs(r))
}

// FuzzDecodeTraces feeds DecodeTraces arbitrary files: it returns an error
// or traces whose trees are sound, every span drawn once, below its parent
// and no earlier than it.
func FuzzDecodeTraces(f *testing.F) {
	fixture, err := os.ReadFile(filepath.Join("testdata", TracesFile))
	require.NoError(f, err)
	f.Add(fixture)
	f.Add([]byte(zipkinJSON(
		zspan{id: "a1", service: "gateway", kind: "CLIENT", start: 1000, dur: 2000},
		zspan{id: "a1", service: "order", kind: "SERVER", shared: true, start: 900, dur: 1000},
		zspan{id: "b1", parent: "a1", service: "order", kind: "CLIENT", start: 950, dur: 100},
		zspan{id: "c1", parent: "c2", service: "x", kind: "CLIENT", start: 0, dur: 1},
		zspan{id: "c2", parent: "c1", service: "y", kind: "CLIENT", start: 0, dur: 1},
	)))
	f.Add([]byte(`[{"traceId":"1","id":"1","parentId":"1","annotations":[{"timestamp":1,"value":"retry"}]}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := DecodeTraces(bytes.NewReader(data), "f.json")
		if err != nil {
			require.True(t, strings.HasPrefix(err.Error(), "reports: f.json"), "error names the file: %v", err)
			return
		}
		n := 0
		for _, tr := range ts.List {
			seen := map[*Span]bool{}
			for _, s := range tr.Spans {
				require.False(t, seen[s], "span %s listed twice", s.ID)
				seen[s] = true
				if s.Parent == nil {
					require.Equal(t, 0, s.Depth)
					continue
				}
				require.Equal(t, s.Parent.Depth+1, s.Depth)
				require.GreaterOrEqual(t, s.Offset, s.Parent.Offset)
				require.GreaterOrEqual(t, s.Duration, time.Duration(0))
			}
			n += len(tr.Spans)
			if len(tr.Spans) > 0 {
				p := waterfallPlot(tr, "fuzz")
				require.Len(t, p.Series, min(len(tr.Spans), wfMaxRows))
			}
		}
		require.Equal(t, ts.Spans, n, "every span is in a tree")
	})
}
