package tracing

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// OTLPPath is where an OTLP/HTTP collector takes traces.
const OTLPPath = "/v1/traces"

// ToOTLP converts spans to OTLP TracesData: one ResourceSpans per local
// service (resource attribute service.name), tags as string attributes,
// annotations as events, error=true as an ERROR status.
func ToOTLP(spans []Span) (*tracepb.TracesData, error) {
	byService := map[string][]*tracepb.Span{}
	for i := range spans {
		s := &spans[i]
		o, err := otlpSpan(s)
		if err != nil {
			return nil, fmt.Errorf("span %d: %w", i, err)
		}
		svc := ""
		if s.LocalEndpoint != nil {
			svc = s.LocalEndpoint.ServiceName
		}
		byService[svc] = append(byService[svc], o)
	}
	td := &tracepb.TracesData{}
	services := make([]string, 0, len(byService))
	for svc := range byService {
		services = append(services, svc)
	}
	sort.Strings(services)
	for _, svc := range services {
		td.ResourceSpans = append(td.ResourceSpans, &tracepb.ResourceSpans{
			Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{stringAttr("service.name", svc)}},
			ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "meshbench"}, Spans: byService[svc]}},
		})
	}
	return td, nil
}

func otlpSpan(s *Span) (*tracepb.Span, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	tid, _ := hex.DecodeString(s.TraceID)
	if len(tid) == 8 {
		tid = append(make([]byte, 8), tid...) // a 64-bit id, left-padded to 16 bytes
	}
	sid, _ := hex.DecodeString(s.ID)
	o := &tracepb.Span{
		TraceId: tid, SpanId: sid, Name: s.Name,
		StartTimeUnixNano: uint64(s.Timestamp) * 1000,
		EndTimeUnixNano:   uint64(s.Timestamp+s.Duration) * 1000,
	}
	if s.ParentID != "" {
		o.ParentSpanId, _ = hex.DecodeString(s.ParentID)
	}
	switch s.Kind {
	case Server:
		o.Kind = tracepb.Span_SPAN_KIND_SERVER
	case Client:
		o.Kind = tracepb.Span_SPAN_KIND_CLIENT
	}
	keys := make([]string, 0, len(s.Tags))
	for k := range s.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o.Attributes = append(o.Attributes, stringAttr(k, s.Tags[k]))
	}
	for _, a := range s.Annotations {
		o.Events = append(o.Events, &tracepb.Span_Event{TimeUnixNano: uint64(a.Timestamp) * 1000, Name: a.Value})
	}
	if s.Tags["error"] == "true" {
		o.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}
	}
	return o, nil
}

func stringAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// OTLP/JSON differs from protojson's mapping in two ways
// (opentelemetry-proto docs/specification.md, "JSON Protobuf Encoding"):
// trace and span ids are hex strings, not base64, and enums are integers.
var idFields = map[string]bool{"traceId": true, "spanId": true, "parentSpanId": true}

// WriteOTLP writes spans as an OTLP/JSON ExportTraceServiceRequest (the
// body of POST /v1/traces, and of a TracesData file).
func WriteOTLP(w io.Writer, spans []Span) error {
	td, err := ToOTLP(spans)
	if err != nil {
		return err
	}
	b, err := protojson.MarshalOptions{UseEnumNumbers: true}.Marshal(td)
	if err != nil {
		return err
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return err
	}
	if err := recodeIDs(doc, func(s string) (string, error) {
		raw, err := base64.StdEncoding.DecodeString(s)
		return hex.EncodeToString(raw), err
	}); err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(doc)
}

// ReadOTLP reads OTLP/JSON traces (hex ids) back into TracesData with protojson.
func ReadOTLP(r io.Reader) (*tracepb.TracesData, error) {
	var doc any
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return nil, err
	}
	if err := recodeIDs(doc, func(s string) (string, error) {
		raw, err := hex.DecodeString(s)
		return base64.StdEncoding.EncodeToString(raw), err
	}); err != nil {
		return nil, err
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	td := &tracepb.TracesData{}
	return td, protojson.Unmarshal(b, td)
}

// recodeIDs rewrites every id field of a decoded JSON document in place.
func recodeIDs(v any, recode func(string) (string, error)) error {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && idFields[k] {
				r, err := recode(s)
				if err != nil {
					return fmt.Errorf("%s %q: %w", k, s, err)
				}
				x[k] = r
				continue
			}
			if err := recodeIDs(e, recode); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := recodeIDs(e, recode); err != nil {
				return err
			}
		}
	}
	return nil
}
