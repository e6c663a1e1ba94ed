// Package tracing is trace context and spans as Envoy's Zipkin tracer
// makes them: the Zipkin v2 span model, the B3 and W3C trace-context
// headers, a receiver of Zipkin v2 JSON, writers of Zipkin v2 and
// OTLP/JSON, a batching reporter and a forwarder to a user's collector.
// It knows nothing of the proxy that makes the spans.
package tracing

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

// Kind is a span's kind (Zipkin v2: CLIENT, SERVER, PRODUCER, CONSUMER).
type Kind string

const (
	Client Kind = "CLIENT"
	Server Kind = "SERVER"
)

// Endpoint is a Zipkin v2 endpoint.
type Endpoint struct {
	ServiceName string `json:"serviceName,omitempty"`
	IPv4        string `json:"ipv4,omitempty"`
	IPv6        string `json:"ipv6,omitempty"`
	Port        int    `json:"port,omitempty"`
}

// Annotation is a Zipkin v2 annotation: an event at a time (µs since the epoch).
type Annotation struct {
	Timestamp int64  `json:"timestamp"`
	Value     string `json:"value"`
}

// Span is a Zipkin v2 span (zipkin-api zipkin2-api.yaml, definitions.Span).
// Ids are lower-case hex: traceId 16 or 32 digits, id and parentId 16.
type Span struct {
	TraceID        string            `json:"traceId"`
	ID             string            `json:"id"`
	ParentID       string            `json:"parentId,omitempty"`
	Name           string            `json:"name,omitempty"`
	Kind           Kind              `json:"kind,omitempty"`
	Timestamp      int64             `json:"timestamp,omitempty"` // µs since the epoch
	Duration       int64             `json:"duration,omitempty"`  // µs
	Debug          bool              `json:"debug,omitempty"`
	Shared         bool              `json:"shared,omitempty"`
	LocalEndpoint  *Endpoint         `json:"localEndpoint,omitempty"`
	RemoteEndpoint *Endpoint         `json:"remoteEndpoint,omitempty"`
	Annotations    []Annotation      `json:"annotations,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
}

// Validate checks what a Zipkin v2 collector requires of a span: hex ids
// of the right lengths.
func (s *Span) Validate() error {
	switch {
	case !isHex(s.TraceID) || (len(s.TraceID) != 16 && len(s.TraceID) != 32):
		return errors.New("traceId must be 16 or 32 lower-case hex digits, got " + strconv.Quote(s.TraceID))
	case !isHex(s.ID) || len(s.ID) != 16:
		return errors.New("id must be 16 lower-case hex digits, got " + strconv.Quote(s.ID))
	case s.ParentID != "" && (!isHex(s.ParentID) || len(s.ParentID) != 16):
		return errors.New("parentId must be 16 lower-case hex digits, got " + strconv.Quote(s.ParentID))
	case s.Timestamp < 0 || s.Duration < 0:
		return errors.New("timestamp and duration must not be negative")
	case s.Kind != "" && s.Kind != Client && s.Kind != Server && s.Kind != "PRODUCER" && s.Kind != "CONSUMER":
		return errors.New("unknown span kind " + strconv.Quote(string(s.Kind)))
	}
	return nil
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// WriteZipkin writes spans as a Zipkin v2 JSON array, the body of POST
// /api/v2/spans and what Jaeger's Zipkin import reads.
func WriteZipkin(w io.Writer, spans []Span) error {
	if spans == nil {
		spans = []Span{}
	}
	enc := json.NewEncoder(w)
	return enc.Encode(spans)
}

// ReadZipkin reads a Zipkin v2 JSON array of spans, each validated.
func ReadZipkin(r io.Reader) ([]Span, error) {
	var spans []Span
	if err := json.NewDecoder(r).Decode(&spans); err != nil {
		return nil, err
	}
	for i := range spans {
		if err := spans[i].Validate(); err != nil {
			return nil, errors.New("span " + strconv.Itoa(i) + ": " + err.Error())
		}
	}
	return spans, nil
}

// hexID is a 64-bit id as 16 lower-case hex digits.
func hexID(v uint64) string {
	var b [8]byte
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
	return hex.EncodeToString(b[:])
}
