package reports

// Traces come from the run folder's traces.zipkin.json: a Zipkin v2 JSON
// array of spans, the shape Envoy's Zipkin tracer posts and Jaeger imports.
//
// The JSON of one span is decoded by github.com/openzipkin/zipkin-go/model,
// OpenZipkin's own Go model of the v2 format: a standard-library-only
// package that knows the hex ids (64- and 128-bit trace ids), the
// microsecond timestamps and the kinds, so no field mapping is ours to get
// wrong. What it does not do is build trees, and Zipkin's tree rules
// (shared server spans, headless traces) live in its Java and JavaScript
// code only; that part, and the small model the report draws from, are here.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	zipkin "github.com/openzipkin/zipkin-go/model"
)

// TracesFile is the Zipkin v2 JSON array of a run's sampled spans, in the
// run folder beside result.json.
const TracesFile = "traces.zipkin.json"

// maxTracesBytes bounds the traces file LoadTraces reads: about a million
// spans, far beyond what a run samples.
const maxTracesBytes = 512 << 20

// Tags that Envoy's Zipkin tracer sets on every HTTP span (Envoy
// source/common/tracing/common_values.h: Tracing::Tags) and that Istio adds
// as custom tags (istio/istio pilot/pkg/networking/core/tracing.go).
const (
	tagStatusCode       = "http.status_code"
	tagResponseFlags    = "response_flags"
	tagUpstreamCluster  = "upstream_cluster"
	tagError            = "error"
	tagCanonicalService = "istio.canonical_service"
	// tagRetryCount is not Envoy's: our sidecar names a request's retries
	// with it (docs/fidelity.md), where Envoy's span shows none.
	tagRetryCount = "retry.count"
)

// Traces are the sampled traces of one run.
type Traces struct {
	// File is the name the spans were read from, for messages.
	File string
	// List holds every trace, by start time (then id).
	List  []*Trace
	Spans int
	byID  map[string]*Trace
}

// Trace is one trace: its spans as a tree.
type Trace struct {
	ID string
	// Roots are the spans with no parent in the file: the trace's own
	// root, and the root of each subtree whose parent was not sampled or
	// not reported. The first is the earliest.
	Roots []*Span
	// Spans lists every span depth-first from the roots, children by
	// start time: the waterfall's row order.
	Spans    []*Span
	Start    time.Time
	Duration time.Duration
	// Status is the first root's http.status_code (0 when it has none),
	// Flags its response_flags: what the caller of the whole trace saw.
	Status int
	Flags  string
}

// Span is one span of a trace, with its place in the tree.
type Span struct {
	ID, ParentID string
	Name         string
	Kind         string // CLIENT, SERVER, PRODUCER, CONSUMER or empty
	Service      string // localEndpoint.serviceName
	IP           string // localEndpoint.ipv4 (or ipv6)
	Shared       bool
	Start        time.Time
	Duration     time.Duration
	Tags         map[string]string
	Annotations  []Annotation
	// Line is where the span starts in the file.
	Line    int
	traceID string

	Parent   *Span
	Children []*Span
	Depth    int
	// Orphan is set on a root whose parentId names a span not in the file.
	Orphan bool
	// Offset is where the waterfall draws the span, from the trace's start.
	// A span that starts before its parent (clocks of two hosts disagree)
	// is drawn from its parent's start, clamped as trace UIs draw it, and
	// Skew says by how much it was moved. (Zipkin's UI, skew.js
	// correctForClockSkew, and Jaeger's query service go further and shift
	// a server's subtree by the skew they infer from its client span; we
	// only clamp, and the waterfall says so.)
	Offset time.Duration
	Skew   time.Duration
}

// Annotation is a timestamped event on a span (a retry, a timeout).
type Annotation struct {
	Time  time.Time
	Value string
}

// Status returns the span's http.status_code tag, 0 when it has none.
func (s *Span) Status() int {
	n, _ := strconv.Atoi(s.Tags[tagStatusCode])
	return n
}

// Failed reports whether the span's answer was not a success: a status
// outside 2xx and 3xx (a run's own definition of success), an error tag,
// or no status at all on a span that has response flags.
func (s *Span) Failed() bool {
	if s.Tags[tagError] == "true" {
		return true
	}
	code := s.Status()
	if code == 0 {
		f := s.Tags[tagResponseFlags]
		return f != "" && f != "-"
	}
	return code < 200 || code >= 400
}

// hasFlag reports whether the span's response_flags (comma separated, as
// Envoy's access log writes them) hold flag.
func (s *Span) hasFlag(flag string) bool {
	for f := range strings.SplitSeq(s.Tags[tagResponseFlags], ",") {
		if f == flag {
			return true
		}
	}
	return false
}

// Trace returns the trace with that id, or nil.
func (t *Traces) Trace(id string) *Trace {
	if t == nil {
		return nil
	}
	return t.byID[id]
}

// Slowest returns the longest trace, or nil when there is none.
func (t *Traces) Slowest() *Trace {
	if t == nil {
		return nil
	}
	var slow *Trace
	for _, tr := range t.List {
		if slow == nil || tr.Duration > slow.Duration {
			slow = tr
		}
	}
	return slow
}

// LoadTraces reads dir/traces.zipkin.json. It returns nil and no error
// when the run folder has no traces file, so that a caller can pass its
// result straight on: every reader of *Traces accepts nil.
func LoadTraces(dir string) (*Traces, error) {
	path := filepath.Join(dir, TracesFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	defer f.Close()
	return DecodeTraces(f, path)
}

// DecodeTraces reads a Zipkin v2 JSON array of spans from r and builds its
// traces. name is the file's name for error messages, which say
// "name:line: ...".
func DecodeTraces(r io.Reader, name string) (*Traces, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxTracesBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reports: read %s: %w", name, err)
	}
	if len(data) > maxTracesBytes {
		return nil, fmt.Errorf("reports: %s: larger than %d MiB", name, maxTracesBytes>>20)
	}
	spans, err := decodeSpans(data, name)
	if err != nil {
		return nil, err
	}
	return buildTraces(spans, name), nil
}

// decodeSpans decodes the array element by element, so that an error
// names the line of the span it is in.
func decodeSpans(data []byte, name string) ([]*Span, error) {
	at := func(off int64) string { return fmt.Sprintf("%s:%d", name, lineAt(data, off)) }
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("reports: %s: %s", at(jsonErrorOffset(err, dec, len(data))), jsonMessage(err, "want a JSON array of Zipkin v2 spans"))
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("reports: %s: want a JSON array of Zipkin v2 spans, found %v", at(dec.InputOffset()), tok)
	}
	var spans []*Span
	for dec.More() {
		start := skipSpace(data, dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("reports: %s: span %d: %s", at(jsonErrorOffset(err, dec, len(data))), len(spans)+1, jsonMessage(err, ""))
		}
		var m zipkin.SpanModel
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("reports: %s: span %d: %v", at(start), len(spans)+1, err)
		}
		if m.TraceID.Empty() {
			return nil, fmt.Errorf("reports: %s: span %d: traceId: %v", at(start), len(spans)+1, zipkin.ErrValidTraceIDRequired)
		}
		s := spanOf(&m)
		s.Line = lineAt(data, start)
		spans = append(spans, s)
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return nil, fmt.Errorf("reports: %s: %s", at(jsonErrorOffset(err, dec, len(data))), jsonMessage(err, "unterminated array"))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("reports: %s: data after the array of spans", at(dec.InputOffset()))
	}
	return spans, nil
}

func spanOf(m *zipkin.SpanModel) *Span {
	s := &Span{
		ID: m.ID.String(), Name: m.Name, Kind: string(m.Kind), Shared: m.Shared,
		Start: m.Timestamp, Duration: m.Duration, Tags: m.Tags,
	}
	if s.Duration < 0 { // a duration past 292 years wraps in zipkin-go's µs → ns conversion
		s.Duration = 0
	}
	if m.ParentID != nil && *m.ParentID != 0 {
		s.ParentID = m.ParentID.String()
	}
	if e := m.LocalEndpoint; e != nil {
		s.Service = e.ServiceName
		s.IP = ipString(e.IPv4, e.IPv6)
	}
	for _, a := range m.Annotations {
		s.Annotations = append(s.Annotations, Annotation{Time: a.Timestamp, Value: a.Value})
	}
	sort.SliceStable(s.Annotations, func(i, j int) bool { return s.Annotations[i].Time.Before(s.Annotations[j].Time) })
	s.traceID = m.TraceID.String()
	return s
}

func ipString(v4, v6 net.IP) string {
	if len(v4) > 0 {
		return v4.String()
	}
	if len(v6) > 0 {
		return v6.String()
	}
	return ""
}

// buildTraces groups spans by trace id and builds each tree.
func buildTraces(spans []*Span, name string) *Traces {
	t := &Traces{File: name, Spans: len(spans), byID: map[string]*Trace{}}
	for _, s := range spans {
		tr := t.byID[s.traceID]
		if tr == nil {
			tr = &Trace{ID: s.traceID}
			t.byID[s.traceID] = tr
			t.List = append(t.List, tr)
		}
		tr.Spans = append(tr.Spans, s)
	}
	for _, tr := range t.List {
		tr.build()
	}
	sort.SliceStable(t.List, func(i, j int) bool {
		a, b := t.List[i], t.List[j]
		if !a.Start.Equal(b.Start) {
			return a.Start.Before(b.Start)
		}
		return a.ID < b.ID
	})
	return t
}

// build links tr.Spans into a tree by Zipkin's rules (zipkin2.internal.
// SpanNode.Builder in openzipkin/zipkin):
//   - a shared span is a server that reused its client's span id (Envoy's
//     ZipkinConfig.shared_span_context, on by default: envoy
//     api/envoy/config/trace/v3/zipkin.proto), so its parent is the
//     non-shared span with its own id. Istio turns sharing off and asks for
//     128-bit trace ids (istio/istio pilot/pkg/networking/core/tracing.go,
//     zipkinConfig: SharedSpanContext false, TraceId_128Bit true), so its
//     server spans have ids of their own and the next rule links them;
//   - any other span's parent is the shared span with its parentId on the
//     same host (a server span whose service went on to call out), else
//     the span with that id.
//
// Where Zipkin hangs a span whose parent is missing under the trace's
// root, it becomes a root of its own subtree here (as Jaeger shows it), so
// the gap stays visible.
func (tr *Trace) build() {
	spans := tr.Spans
	sort.SliceStable(spans, func(i, j int) bool { return spanBefore(spans[i], spans[j]) })
	byID := map[string]*Span{}
	shared := map[string][]*Span{}
	for _, s := range spans {
		if s.Shared {
			shared[s.ID] = append(shared[s.ID], s)
		} else if byID[s.ID] == nil {
			byID[s.ID] = s
		}
	}
	for _, s := range spans {
		var p *Span
		if s.Shared {
			p = byID[s.ID]
		}
		if p == nil && s.ParentID != "" {
			for _, c := range shared[s.ParentID] {
				if c.Service == s.Service && c.IP == s.IP {
					p = c
					break
				}
			}
			if p == nil {
				p = byID[s.ParentID]
			}
			if p == nil && len(shared[s.ParentID]) > 0 {
				p = shared[s.ParentID][0]
			}
		}
		// A shared span's parent is its client, even with no parentId.
		s.Orphan = p == nil && (s.Shared || s.ParentID != "")
		if p != s {
			s.Parent = p
		}
	}
	breakCycles(spans)
	tr.Roots, tr.Spans = nil, nil
	for _, s := range spans {
		if s.Parent == nil {
			tr.Roots = append(tr.Roots, s)
		} else {
			s.Parent.Children = append(s.Parent.Children, s)
		}
	}
	if len(tr.Roots) == 0 {
		return
	}
	tr.Start = tr.Roots[0].Start
	for _, r := range tr.Roots {
		if !r.Start.IsZero() && (tr.Start.IsZero() || r.Start.Before(tr.Start)) {
			tr.Start = r.Start
		}
	}
	var end time.Duration
	var walk func(s *Span, depth int, from time.Duration)
	walk = func(s *Span, depth int, from time.Duration) {
		s.Depth = depth
		s.Offset = from
		if !s.Start.IsZero() {
			at := s.Start.Sub(tr.Start)
			if at < from {
				s.Skew = from - at
			} else {
				s.Offset = at
			}
		}
		end = max(end, s.Offset+s.Duration)
		tr.Spans = append(tr.Spans, s)
		for _, c := range s.Children {
			walk(c, depth+1, s.Offset)
		}
	}
	for _, r := range tr.Roots {
		walk(r, 0, 0)
	}
	tr.Duration = end
	root := tr.Roots[0]
	tr.Status = root.Status()
	tr.Flags = root.Tags[tagResponseFlags]
}

// spanBefore orders spans by start time, a client before the server that
// shares its id, then by id.
func spanBefore(a, b *Span) bool {
	if !a.Start.Equal(b.Start) {
		return a.Start.Before(b.Start)
	}
	if a.Shared != b.Shared {
		return !a.Shared
	}
	return a.ID < b.ID
}

// breakCycles makes a root of the first span (in order) on any parent
// cycle, which only malformed input can hold.
func breakCycles(spans []*Span) {
	state := map[*Span]int{} // 0 unseen, 1 on the current path, 2 done
	for _, s := range spans {
		var path []*Span
		for p := s; p != nil && state[p] == 0; p = p.Parent {
			state[p] = 1
			path = append(path, p)
			if p.Parent != nil && state[p.Parent] == 1 {
				p.Parent.Parent = nil // p.Parent closes the cycle: cut above it
				p.Parent.Orphan = true
			}
		}
		for _, p := range path {
			state[p] = 2
		}
	}
}

// lineAt is the 1-based line of byte offset off in data.
func lineAt(data []byte, off int64) int {
	off = min(max(off, 0), int64(len(data)))
	return bytes.Count(data[:off], []byte{'\n'}) + 1
}

// skipSpace returns the offset of the first byte at or after off that is
// neither white space nor the comma between array elements.
func skipSpace(data []byte, off int64) int64 {
	for off < int64(len(data)) && strings.IndexByte(" \t\r\n,", data[off]) >= 0 {
		off++
	}
	return off
}

// jsonErrorOffset is where a JSON decoding error happened: the end of
// the data for an early end.
func jsonErrorOffset(err error, dec *json.Decoder, size int) int64 {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return syn.Offset
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return int64(size)
	}
	return dec.InputOffset()
}

func jsonMessage(err error, eofMessage string) string {
	if (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) && eofMessage != "" {
		return eofMessage
	}
	return err.Error()
}
