package tracing

import (
	"net/http"
	"strings"
)

// Sampling is a trace context's sampling state: unset when the caller
// made no decision (B3 allows ids without x-b3-sampled).
type Sampling uint8

const (
	SamplingUnset Sampling = iota
	SamplingYes
	SamplingNo
)

// TraceID is a 64- or 128-bit trace id; Hi is 0 for a 64-bit one unless
// Is128 says the id came as 32 digits.
type TraceID struct {
	Hi, Lo uint64
	Is128  bool
}

// String is the id as 16 or 32 lower-case hex digits.
func (t TraceID) String() string {
	if t.Is128 {
		return hexID(t.Hi) + hexID(t.Lo)
	}
	return hexID(t.Lo)
}

// IsZero reports an invalid (all-zero) id.
func (t TraceID) IsZero() bool { return t.Hi == 0 && t.Lo == 0 }

// Context is the trace context a request carries: whose span it is a
// child of.
type Context struct {
	TraceID  TraceID
	SpanID   uint64
	ParentID uint64 // 0: none
	Sampled  Sampling
	Debug    bool // x-b3-flags: 1, which implies sampled
}

// Valid reports whether the context has ids, not only a sampling decision.
func (c Context) Valid() bool { return !c.TraceID.IsZero() && c.SpanID != 0 }

// Canonical header keys, so that lookups in an http.Header do not
// canonicalise (allocate) each time.
var (
	keyTraceID      = http.CanonicalHeaderKey("x-b3-traceid")
	keySpanID       = http.CanonicalHeaderKey("x-b3-spanid")
	keyParentSpanID = http.CanonicalHeaderKey("x-b3-parentspanid")
	keySampled      = http.CanonicalHeaderKey("x-b3-sampled")
	keyFlags        = http.CanonicalHeaderKey("x-b3-flags")
	keyB3           = http.CanonicalHeaderKey("b3")
	keyTraceparent  = http.CanonicalHeaderKey("traceparent")
)

// Header names, lower case as they go on the wire.
const (
	HeaderTraceID      = "x-b3-traceid"
	HeaderSpanID       = "x-b3-spanid"
	HeaderParentSpanID = "x-b3-parentspanid"
	HeaderSampled      = "x-b3-sampled"
	HeaderFlags        = "x-b3-flags"
	HeaderB3           = "b3"
	HeaderTraceparent  = "traceparent"
)

func first(h http.Header, key string) (string, bool) {
	if vs := h[key]; len(vs) > 0 {
		return vs[0], true
	}
	return "", false
}

// FromB3 reads the B3 headers of a request, as Envoy's Zipkin extractor
// does (source/extensions/tracers/zipkin/span_context_extractor.cc): the
// single b3 header first, else x-b3-traceid and x-b3-spanid with the
// optional parent, sampled and flags. found is false when no B3 header is
// there at all; a context with a sampling decision and no ids (a bare
// x-b3-sampled or b3: 0) is found but not Valid. Malformed ids are an
// error; nothing allocates.
func FromB3(h http.Header) (c Context, found bool, err error) {
	if v, ok := first(h, keyB3); ok {
		c, err = ParseB3Single(v)
		return c, true, err
	}
	if v, ok := first(h, keySampled); ok {
		found = true
		switch v {
		case "1", "true", "d":
			c.Sampled = SamplingYes
		case "0", "false":
			c.Sampled = SamplingNo
		default:
			return Context{}, true, errorf("x-b3-sampled %q is not 0 or 1", v)
		}
	}
	if v, ok := first(h, keyFlags); ok {
		found = true
		if v == "1" {
			c.Debug, c.Sampled = true, SamplingYes
		}
	}
	tid, hasT := first(h, keyTraceID)
	sid, hasS := first(h, keySpanID)
	if !hasT && !hasS {
		return c, found, nil
	}
	found = true
	if !hasT || !hasS {
		return Context{}, true, errorf("x-b3-traceid and x-b3-spanid come together")
	}
	if c.TraceID, err = parseTraceID(tid); err != nil {
		return Context{}, true, err
	}
	if c.SpanID, err = parseSpanID(sid); err != nil {
		return Context{}, true, err
	}
	if p, ok := first(h, keyParentSpanID); ok {
		if c.ParentID, err = parseSpanID(p); err != nil {
			return Context{}, true, err
		}
	}
	return c, true, nil
}

// ParseB3Single parses the single b3 header
// (github.com/openzipkin/b3-propagation: traceid-spanid[-sampled[-parentspanid]],
// or a bare sampling state 0, 1 or d).
func ParseB3Single(v string) (Context, error) {
	var c Context
	switch v {
	case "0":
		c.Sampled = SamplingNo
		return c, nil
	case "1":
		c.Sampled = SamplingYes
		return c, nil
	case "d":
		c.Sampled, c.Debug = SamplingYes, true
		return c, nil
	}
	tid, rest, ok := strings.Cut(v, "-")
	if !ok {
		return Context{}, errorf("b3 %q: want traceid-spanid", v)
	}
	var err error
	if c.TraceID, err = parseTraceID(tid); err != nil {
		return Context{}, err
	}
	sid, rest, more := strings.Cut(rest, "-")
	if c.SpanID, err = parseSpanID(sid); err != nil {
		return Context{}, err
	}
	if !more {
		return c, nil
	}
	sampled, parent, hasParent := strings.Cut(rest, "-")
	switch sampled {
	case "1":
		c.Sampled = SamplingYes
	case "0":
		c.Sampled = SamplingNo
	case "d":
		c.Sampled, c.Debug = SamplingYes, true
	default:
		return Context{}, errorf("b3 %q: sampling state %q is not 0, 1 or d", v, sampled)
	}
	if hasParent {
		if c.ParentID, err = parseSpanID(parent); err != nil {
			return Context{}, err
		}
	}
	return c, nil
}

// FormatB3Single is the single b3 header of c.
func FormatB3Single(c Context) string {
	s := c.TraceID.String() + "-" + hexID(c.SpanID)
	switch {
	case c.Debug:
		s += "-d"
	case c.Sampled == SamplingYes:
		s += "-1"
	case c.Sampled == SamplingNo:
		s += "-0"
	default:
		return s
	}
	if c.ParentID != 0 {
		s += "-" + hexID(c.ParentID)
	}
	return s
}

// SetB3 sets the multi B3 headers of c on h, as Envoy's Zipkin tracer
// injects them (zipkin_core_types.cc Span::injectContext: trace id, span
// id, parent span id when there is one, sampled 1 or 0). The ids share
// one string and the values one slice: two allocations in all.
func SetB3(h http.Header, c Context) {
	var buf [64]byte
	n := 0
	if c.TraceID.Is128 {
		n += putHex(buf[n:], c.TraceID.Hi)
	}
	n += putHex(buf[n:], c.TraceID.Lo)
	tEnd := n
	n += putHex(buf[n:], c.SpanID)
	sEnd := n
	if c.ParentID != 0 {
		n += putHex(buf[n:], c.ParentID)
	}
	ids := string(buf[:n])
	vals := make([]string, 3)
	vals[0], vals[1], vals[2] = ids[:tEnd], ids[tEnd:sEnd], ids[sEnd:]
	h[keyTraceID] = vals[0:1:1]
	h[keySpanID] = vals[1:2:2]
	if c.ParentID != 0 {
		h[keyParentSpanID] = vals[2:3:3]
	} else {
		delete(h, keyParentSpanID)
	}
	if c.Sampled == SamplingYes {
		h[keySampled] = sampledOne
	} else {
		h[keySampled] = sampledZero
	}
	delete(h, keyB3)
	delete(h, keyFlags)
}

const hexDigits = "0123456789abcdef"

// putHex writes v as 16 lower-case hex digits into b.
func putHex(b []byte, v uint64) int {
	for i := 15; i >= 0; i-- {
		b[i] = hexDigits[v&0xf]
		v >>= 4
	}
	return 16
}

// Shared header values: nothing writes into a header value slice in place.
var sampledOne, sampledZero = []string{"1"}, []string{"0"}

// FromTraceparent reads a request's W3C traceparent (found false without one).
func FromTraceparent(h http.Header) (Context, bool, error) {
	v, ok := first(h, keyTraceparent)
	if !ok {
		return Context{}, false, nil
	}
	c, err := ParseTraceparent(v)
	return c, true, err
}

// ParseTraceparent parses a W3C traceparent header (Trace Context Level 1,
// §3.2): version-traceid-parentid-flags, two, 32, 16 and two lower-case
// hex digits. Version ff is invalid; version 00 is exactly 55 characters;
// a later version may carry more after a dash. All-zero ids are invalid.
func ParseTraceparent(v string) (Context, error) {
	if len(v) < 55 {
		return Context{}, errorf("traceparent %q: too short", v)
	}
	version := v[0:2]
	if !isHex(version) || version == "ff" {
		return Context{}, errorf("traceparent %q: bad version", v)
	}
	if version == "00" && len(v) != 55 {
		return Context{}, errorf("traceparent %q: version 00 is 55 characters", v)
	}
	if len(v) > 55 && v[55] != '-' {
		return Context{}, errorf("traceparent %q: bad field after flags", v)
	}
	if v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return Context{}, errorf("traceparent %q: want version-traceid-parentid-flags", v)
	}
	var c Context
	var err error
	if c.TraceID, err = parseTraceID(v[3:35]); err != nil {
		return Context{}, err
	}
	if c.SpanID, err = parseSpanID(v[36:52]); err != nil {
		return Context{}, err
	}
	flags, ok := parseHex64(v[53:55])
	if !ok {
		return Context{}, errorf("traceparent %q: bad flags", v)
	}
	c.Sampled = SamplingNo
	if flags&1 == 1 {
		c.Sampled = SamplingYes
	}
	return c, nil
}

// FormatTraceparent is the version 00 traceparent of c; a 64-bit trace id
// is left-padded with zeros to 128 bits, as the spec asks of systems with
// shorter ids (§3.2.2.3).
func FormatTraceparent(c Context) string {
	flags := "00"
	if c.Sampled == SamplingYes {
		flags = "01"
	}
	return "00-" + hexID(c.TraceID.Hi) + hexID(c.TraceID.Lo) + "-" + hexID(c.SpanID) + "-" + flags
}

// SetTraceparent sets c's traceparent on h.
func SetTraceparent(h http.Header, c Context) {
	h[keyTraceparent] = []string{FormatTraceparent(c)}
}

func parseTraceID(s string) (TraceID, error) {
	var t TraceID
	var ok bool
	switch len(s) {
	case 16:
		t.Lo, ok = parseHex64(s)
	case 32:
		var okHi bool
		t.Hi, okHi = parseHex64(s[:16])
		t.Lo, ok = parseHex64(s[16:])
		ok = ok && okHi
		t.Is128 = true
	}
	if !ok {
		return TraceID{}, errorf("trace id %q: want 16 or 32 hex digits", s)
	}
	if t.IsZero() {
		return TraceID{}, errorf("trace id %q is all zeros", s)
	}
	return t, nil
}

func parseSpanID(s string) (uint64, error) {
	v, ok := parseHex64(s)
	if !ok || len(s) != 16 {
		return 0, errorf("span id %q: want 16 hex digits", s)
	}
	if v == 0 {
		return 0, errorf("span id %q is all zeros", s)
	}
	return v, nil
}

// parseHex64 parses up to 16 lower-case hex digits (B3 and W3C both ask
// for lower case; upper case is refused, as the W3C spec says).
func parseHex64(s string) (uint64, bool) {
	if s == "" || len(s) > 16 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}
