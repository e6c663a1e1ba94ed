// Package accesslog is Envoy's file access log format, as Istio configures
// it with meshConfig.accessLogFile: the defaults istiod sends, and a parser
// and formatter of the command operators the builtin sidecar implements
// (Envoy's source/common/formatter/substitution_formatter.cc and
// stream_info_formatter.cc, docs configuration/observability/access_log/usage).
// A format is parsed once, when config arrives; formatting a line appends
// to a caller's buffer.
package accesslog

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultText is Istio's default text format: EnvoyTextLogFormat in
// istio/istio pilot/pkg/model/telemetry_logging.go ("format for envoy text
// based access logs for Istio 1.9 onwards"), which istiod sends when
// accessLogEncoding is TEXT and accessLogFormat is empty.
const DefaultText = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% " +
	"%PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% " +
	"%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% " +
	"\"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% " +
	"%DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" " +
	"\"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" " +
	"%UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% " +
	"%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"

// DefaultJSON is Istio's default JSON labels: EnvoyJSONLogFormatIstio in
// istio/istio pilot/pkg/model/telemetry_logging.go, which istiod sends as
// the json_format when accessLogEncoding is JSON and accessLogFormat is empty.
var DefaultJSON = map[string]string{
	"start_time":                        "%START_TIME%",
	"route_name":                        "%ROUTE_NAME%",
	"method":                            "%REQ(:METHOD)%",
	"path":                              "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
	"protocol":                          "%PROTOCOL%",
	"response_code":                     "%RESPONSE_CODE%",
	"response_flags":                    "%RESPONSE_FLAGS%",
	"response_code_details":             "%RESPONSE_CODE_DETAILS%",
	"connection_termination_details":    "%CONNECTION_TERMINATION_DETAILS%",
	"bytes_received":                    "%BYTES_RECEIVED%",
	"bytes_sent":                        "%BYTES_SENT%",
	"duration":                          "%DURATION%",
	"upstream_service_time":             "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
	"x_forwarded_for":                   "%REQ(X-FORWARDED-FOR)%",
	"user_agent":                        "%REQ(USER-AGENT)%",
	"request_id":                        "%REQ(X-REQUEST-ID)%",
	"authority":                         "%REQ(:AUTHORITY)%",
	"upstream_host":                     "%UPSTREAM_HOST%",
	"upstream_cluster":                  "%UPSTREAM_CLUSTER_RAW%",
	"upstream_local_address":            "%UPSTREAM_LOCAL_ADDRESS%",
	"downstream_local_address":          "%DOWNSTREAM_LOCAL_ADDRESS%",
	"downstream_remote_address":         "%DOWNSTREAM_REMOTE_ADDRESS%",
	"requested_server_name":             "%REQUESTED_SERVER_NAME%",
	"upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
}

// TextFormat is what istiod makes of accessLogFormat under TEXT encoding:
// the string with a newline added if missing (fileAccessLogFormat in
// telemetry_logging.go: "Istio will insert a newline ('\n') on all formats
// (if missing)"), or DefaultText when empty.
func TextFormat(format string) string {
	if format == "" {
		return DefaultText
	}
	if !strings.HasSuffix(format, "\n") {
		format += "\n"
	}
	return format
}

// Entry is what one request (or one TCP connection) gives the formatter.
// A zero or empty field prints as Envoy prints an absent value: "-".
type Entry struct {
	Start    time.Time
	Duration time.Duration
	// Method, Path (with query), Authority and Protocol ("HTTP/1.1") of the
	// downstream request; all empty for a TCP connection.
	Method, Path, Authority, Protocol string
	// ReqHeader and RespHeader are the request's headers (as the router
	// sent them upstream) and the response's, keyed canonically.
	ReqHeader, RespHeader http.Header
	// Code is the response code (0: none sent, as Envoy prints it).
	Code int
	// Flags are Envoy's response flags ("-": none).
	Flags       string
	CodeDetails string
	// BytesReceived and BytesSent count body bytes (TCP: the stream's).
	BytesReceived, BytesSent                     int64
	UpstreamHost, UpstreamCluster, UpstreamLocal string
	DownstreamLocal, DownstreamRemote            string
	ServerName, RouteName                        string
}

// Format is a parsed format: text, or JSON labels.
type Format struct {
	text []part
	json []jsonField // sorted by key
}

type jsonField struct {
	key   string
	parts []part
}

// part is a literal or one command operator.
type part struct {
	lit string
	op  opKind
	// hdr and alt are REQ/RESP's header and fallback header (canonical, or
	// a pseudo-header such as ":path"); max truncates the value (0: no limit).
	hdr, alt string
	max      int
}

type opKind int

const (
	opLiteral opKind = iota
	opStartTime
	opDuration
	opReq
	opResp
	opProtocol
	opResponseCode
	opResponseFlags
	opResponseCodeDetails
	opConnectionTerminationDetails
	opUpstreamTransportFailureReason
	opBytesReceived
	opBytesSent
	opUpstreamHost
	opUpstreamCluster
	opUpstreamLocalAddress
	opDownstreamLocalAddress
	opDownstreamRemoteAddress
	opRequestedServerName
	opRouteName
)

// operators are the command operators implemented, by name; any other is
// refused (as Envoy refuses an operator it does not know).
var operators = map[string]opKind{
	"START_TIME":                        opStartTime,
	"DURATION":                          opDuration,
	"REQ":                               opReq,
	"RESP":                              opResp,
	"PROTOCOL":                          opProtocol,
	"RESPONSE_CODE":                     opResponseCode,
	"RESPONSE_FLAGS":                    opResponseFlags,
	"RESPONSE_CODE_DETAILS":             opResponseCodeDetails,
	"CONNECTION_TERMINATION_DETAILS":    opConnectionTerminationDetails,
	"UPSTREAM_TRANSPORT_FAILURE_REASON": opUpstreamTransportFailureReason,
	"BYTES_RECEIVED":                    opBytesReceived,
	"BYTES_SENT":                        opBytesSent,
	"UPSTREAM_HOST":                     opUpstreamHost,
	"UPSTREAM_CLUSTER":                  opUpstreamCluster,
	"UPSTREAM_CLUSTER_RAW":              opUpstreamCluster,
	"UPSTREAM_LOCAL_ADDRESS":            opUpstreamLocalAddress,
	"DOWNSTREAM_LOCAL_ADDRESS":          opDownstreamLocalAddress,
	"DOWNSTREAM_REMOTE_ADDRESS":         opDownstreamRemoteAddress,
	"REQUESTED_SERVER_NAME":             opRequestedServerName,
	"ROUTE_NAME":                        opRouteName,
}

// Operators lists the command operators implemented, sorted.
func Operators() []string {
	out := make([]string, 0, len(operators))
	for k := range operators {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// numeric operators print as JSON numbers when they are a label's whole
// value (Envoy's JSON formatter keeps the type of a sole operator).
var numeric = map[opKind]bool{opResponseCode: true, opDuration: true, opBytesReceived: true, opBytesSent: true}

// commandRE is a command operator as Envoy's SubstitutionFormatParser reads
// it: %NAME%, %NAME(args)% or %NAME(args):max%.
var commandRE = regexp.MustCompile(`^%([A-Z0-9_]+)(?:\(([^)]*)\))?(?::([0-9]+))?%`)

// ParseText parses a text format string.
func ParseText(s string) (*Format, error) {
	parts, err := parseParts(s)
	if err != nil {
		return nil, err
	}
	return &Format{text: parts}, nil
}

// ParseJSON parses JSON labels: an object of label to format string.
func ParseJSON(labels map[string]string) (*Format, error) {
	f := &Format{}
	for k, v := range labels {
		parts, err := parseParts(v)
		if err != nil {
			return nil, fmt.Errorf("label %q: %w", k, err)
		}
		f.json = append(f.json, jsonField{key: k, parts: parts})
	}
	slices.SortFunc(f.json, func(a, b jsonField) int { return strings.Compare(a.key, b.key) })
	return f, nil
}

// ParseJSONText parses accessLogFormat under JSON encoding: a JSON object
// whose values are format strings (nested objects and other types are
// not implemented and refused).
func ParseJSONText(s string) (*Format, error) {
	var raw map[string]any
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	labels := make(map[string]string, len(raw))
	for k, v := range raw {
		sv, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("label %q: only string values are supported (it is %T)", k, v)
		}
		labels[k] = sv
	}
	return ParseJSON(labels)
}

// parseParts splits a format string into literals and operators.
func parseParts(s string) ([]part, error) {
	var parts []part
	lit := strings.Builder{}
	for i := 0; i < len(s); {
		if s[i] != '%' {
			lit.WriteByte(s[i])
			i++
			continue
		}
		m := commandRE.FindStringSubmatch(s[i:])
		if m == nil {
			// A lone % is literal text.
			lit.WriteByte('%')
			i++
			continue
		}
		p, err := parseOperator(m[1], m[2], m[3], strings.Contains(m[0], "("))
		if err != nil {
			return nil, err
		}
		if lit.Len() > 0 {
			parts = append(parts, part{lit: lit.String()})
			lit.Reset()
		}
		parts = append(parts, p)
		i += len(m[0])
	}
	if lit.Len() > 0 {
		parts = append(parts, part{lit: lit.String()})
	}
	return parts, nil
}

// parseOperator reads one operator; args is what its parentheses hold.
func parseOperator(name, args, max string, hasArgs bool) (part, error) {
	k, ok := operators[name]
	if !ok {
		return part{}, fmt.Errorf("unsupported access log command operator %%%s%%", name)
	}
	p := part{op: k}
	if max != "" {
		n, err := strconv.Atoi(max)
		if err != nil {
			return part{}, fmt.Errorf("%%%s%%: bad length %q", name, max)
		}
		p.max = n
	}
	switch {
	case k == opReq || k == opResp:
		if args == "" {
			return part{}, fmt.Errorf("%%%s%% needs a header name: %%%s(name)%%", name, name)
		}
		hdr, alt, _ := strings.Cut(args, "?")
		p.hdr, p.alt = headerKey(hdr), headerKey(alt)
	case hasArgs:
		// e.g. START_TIME(%s): a custom time format is not implemented.
		return part{}, fmt.Errorf("%%%s(%s)%%: arguments to %s are not supported", name, args, name)
	}
	return p, nil
}

// headerKey is a header name as looked up: pseudo-headers lower-case, the
// rest canonical.
func headerKey(h string) string {
	if h == "" {
		return ""
	}
	if strings.HasPrefix(h, ":") {
		return strings.ToLower(h)
	}
	return http.CanonicalHeaderKey(h)
}

// Append formats e and appends the line to buf: a text format as given
// (Istio's ends in a newline), JSON labels as one object and a newline.
func (f *Format) Append(buf []byte, e *Entry) []byte {
	if f.json == nil {
		for i := range f.text {
			buf = f.text[i].appendText(buf, e)
		}
		return buf
	}
	buf = append(buf, '{')
	for i, fl := range f.json {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendQuote(buf, fl.key)
		buf = append(buf, ':')
		buf = fl.appendJSON(buf, e)
	}
	return append(buf, '}', '\n')
}

// appendJSON writes a label's value: a sole operator keeps its type (a
// number, or null when absent); anything else is a string.
func (fl *jsonField) appendJSON(buf []byte, e *Entry) []byte {
	if len(fl.parts) == 1 && fl.parts[0].op != opLiteral {
		p := &fl.parts[0]
		v, ok := p.value(e)
		switch {
		case !ok:
			return append(buf, "null"...)
		case numeric[p.op]:
			return append(buf, v...)
		}
		return appendJSONString(buf, v)
	}
	var s []byte
	for i := range fl.parts {
		s = fl.parts[i].appendText(s, e)
	}
	return appendJSONString(buf, string(s))
}

func appendJSONString(buf []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(buf, b...)
}

func (p *part) appendText(buf []byte, e *Entry) []byte {
	if p.op == opLiteral {
		return append(buf, p.lit...)
	}
	v, ok := p.value(e)
	if !ok {
		return append(buf, '-')
	}
	return append(buf, v...)
}

// value is the operator's value for e, truncated to max; false when
// absent.
func (p *part) value(e *Entry) (string, bool) {
	v := p.raw(e)
	if v == "" {
		return "", false
	}
	if p.max > 0 && len(v) > p.max {
		v = v[:p.max]
	}
	return v, true
}

func (p *part) raw(e *Entry) string {
	switch p.op {
	case opStartTime:
		if e.Start.IsZero() {
			return ""
		}
		// Envoy's default START_TIME format, %Y-%m-%dT%H:%M:%E3SZ in UTC
		// (AccessLogDateTimeFormatter::fromTime).
		return e.Start.UTC().Format("2006-01-02T15:04:05.000Z")
	case opDuration:
		return strconv.FormatInt(e.Duration.Milliseconds(), 10)
	case opReq:
		return header(e, e.ReqHeader, p.hdr, p.alt, true)
	case opResp:
		return header(e, e.RespHeader, p.hdr, p.alt, false)
	case opProtocol:
		return e.Protocol
	case opResponseCode:
		return strconv.Itoa(e.Code)
	case opResponseFlags:
		if e.Flags == "" {
			return "-"
		}
		return e.Flags
	case opResponseCodeDetails:
		return e.CodeDetails
	case opBytesReceived:
		return strconv.FormatInt(e.BytesReceived, 10)
	case opBytesSent:
		return strconv.FormatInt(e.BytesSent, 10)
	case opUpstreamHost:
		return e.UpstreamHost
	case opUpstreamCluster:
		return e.UpstreamCluster
	case opUpstreamLocalAddress:
		return e.UpstreamLocal
	case opDownstreamLocalAddress:
		return e.DownstreamLocal
	case opDownstreamRemoteAddress:
		return e.DownstreamRemote
	case opRequestedServerName:
		return e.ServerName
	case opRouteName:
		return e.RouteName
	}
	// CONNECTION_TERMINATION_DETAILS and UPSTREAM_TRANSPORT_FAILURE_REASON:
	// nothing the sidecar does sets them.
	return ""
}

// header is REQ(hdr?alt) or RESP(hdr?alt): the first value of hdr, or of
// alt when hdr is absent. Request pseudo-headers come from the entry.
func header(e *Entry, h http.Header, hdr, alt string, req bool) string {
	for _, k := range [2]string{hdr, alt} {
		if k == "" {
			continue
		}
		if req && strings.HasPrefix(k, ":") {
			if v := pseudo(e, k); v != "" {
				return v
			}
			continue
		}
		if vs := h[k]; len(vs) > 0 && vs[0] != "" {
			return vs[0]
		}
	}
	return ""
}

func pseudo(e *Entry, k string) string {
	switch k {
	case ":method":
		return e.Method
	case ":path":
		return e.Path
	case ":authority":
		return e.Authority
	}
	return ""
}

// OpenAppend opens an access log file for appending, creating it, as
// Envoy's file access logger does. It lives here, not in the sidecar, so
// that the sidecar's package keeps no code that writes files: its keys
// stay in memory (TestNoPrivateKeyWrittenToDisk).
func OpenAppend(path string) (io.Writer, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
}
