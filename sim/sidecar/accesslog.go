package sidecar

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/meshbench/meshbench/sim/accesslog"
)

// The file access logger (envoy.access_loggers.file) of an HCM or a
// tcp_proxy: its format parsed once when config arrives (sim/accesslog),
// one line per request written after the response ends, or per TCP
// connection at its end, through a buffered writer per file.

const fileAccessLogName = "envoy.access_loggers.file"

// accessLogFlushInterval is how often buffered lines reach the file.
// Envoy's --file-flush-interval-msec defaults to 10s (docs
// operations/cli.rst); a second shows lines sooner, and close flushes all.
const accessLogFlushInterval = time.Second

// accessLogConf is one compiled access_log entry; file is resolved when
// the listener is applied (openAccessLogs).
type accessLogConf struct {
	path   string
	format *accesslog.Format
	file   *logFile
}

// compileAccessLogs reads an HCM's or tcp_proxy's access_log. The file
// logger is the one implemented; a filter on it, another logger, or a
// format with an operator not implemented is refused, naming it.
func compileAccessLogs(als []*accesslogv3.AccessLog) ([]*accessLogConf, error) {
	var out []*accessLogConf
	for _, al := range als {
		if al.GetName() != fileAccessLogName {
			return nil, fmt.Errorf("unsupported access logger %q", al.GetName())
		}
		if al.GetFilter() != nil {
			return nil, fmt.Errorf("access log filters are not supported (%s)", al.GetName())
		}
		fl := &filev3.FileAccessLog{}
		if err := al.GetTypedConfig().UnmarshalTo(fl); err != nil {
			return nil, fmt.Errorf("access log %s: %w", al.GetName(), err)
		}
		f, err := compileLogFormat(fl)
		if err != nil {
			return nil, fmt.Errorf("access log %s: %w", fl.GetPath(), err)
		}
		out = append(out, &accessLogConf{path: fl.GetPath(), format: f})
	}
	return out, nil
}

// compileLogFormat parses log_format: an inline text format or JSON
// labels; none is Envoy's own default format, which istiod never leaves
// unset and the sidecar does not implement.
func compileLogFormat(fl *filev3.FileAccessLog) (*accesslog.Format, error) {
	sf := fl.GetLogFormat()
	switch {
	case sf == nil:
		return nil, fmt.Errorf("an access log without log_format (Envoy's default format) is not supported")
	case sf.GetOmitEmptyValues():
		return nil, fmt.Errorf("omit_empty_values is not supported")
	case len(sf.GetFormatters()) > 0:
		return nil, fmt.Errorf("formatter extensions are not supported (%s)", sf.GetFormatters()[0].GetName())
	case sf.GetJsonFormat() != nil:
		labels := map[string]string{}
		for k, v := range sf.GetJsonFormat().GetFields() {
			sv, ok := v.GetKind().(*structpb.Value_StringValue)
			if !ok {
				raw, _ := protojson.Marshal(v)
				return nil, fmt.Errorf("JSON label %q: only string values are supported (it is %s)", k, raw)
			}
			labels[k] = sv.StringValue
		}
		return accesslog.ParseJSON(labels)
	case sf.GetTextFormatSource().GetInlineString() != "":
		return accesslog.ParseText(sf.GetTextFormatSource().GetInlineString())
	default:
		return compileDeprecatedTextFormat(sf)
	}
}

// compileDeprecatedTextFormat reads text_format, deprecated for
// text_format_source but still honoured by Envoy.
func compileDeprecatedTextFormat(sf *core.SubstitutionFormatString) (*accesslog.Format, error) {
	//lint:ignore SA1019 Envoy still reads the deprecated field.
	if t := sf.GetTextFormat(); t != "" {
		return accesslog.ParseText(t)
	}
	return nil, fmt.Errorf("only inline text and JSON access log formats are supported")
}

// logFiles are the open access log files, by path, with what is being
// logged: close waits for lines still being written.
type logFiles struct {
	open func(path string) (io.Writer, error)

	mu     sync.Mutex
	files  map[string]*logFile
	active int           // exchanges that will write a line
	closed bool          // no more lines
	idle   chan struct{} // closed when active reaches 0 after close
	stop   chan struct{} // ends the flusher
}

// logFile is one file's buffered writer.
type logFile struct {
	mu  sync.Mutex
	w   *bufio.Writer
	dst io.Writer
}

// openFile opens the access log file of path (Config.OpenAccessLog, or as
// Envoy opens it: appending, created if absent), once per path.
func (lf *logFiles) openFile(path string) (*logFile, error) {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if f := lf.files[path]; f != nil {
		return f, nil
	}
	open := lf.open
	if open == nil {
		open = accesslog.OpenAppend
	}
	dst, err := open(path)
	if err != nil {
		return nil, fmt.Errorf("access log %s: %w", path, err)
	}
	if lf.files == nil {
		lf.files = map[string]*logFile{}
		lf.stop = make(chan struct{})
		go lf.flushEvery(accessLogFlushInterval, lf.stop)
	}
	f := &logFile{w: bufio.NewWriterSize(dst, 64<<10), dst: dst}
	lf.files[path] = f
	return f, nil
}

func (lf *logFiles) flushEvery(d time.Duration, stop chan struct{}) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			lf.flush()
		}
	}
}

func (lf *logFiles) flush() {
	lf.mu.Lock()
	files := make([]*logFile, 0, len(lf.files))
	for _, f := range lf.files {
		files = append(files, f)
	}
	lf.mu.Unlock()
	for _, f := range files {
		f.mu.Lock()
		_ = f.w.Flush()
		f.mu.Unlock()
	}
}

// begin says an exchange will log; false once closed.
func (lf *logFiles) begin() bool {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.closed {
		return false
	}
	lf.active++
	return true
}

func (lf *logFiles) end() {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	lf.active--
	if lf.active == 0 && lf.idle != nil {
		close(lf.idle)
		lf.idle = nil
	}
}

// close waits (up to wait) for lines being made, then flushes and closes
// every file.
func (lf *logFiles) close(wait time.Duration) {
	lf.mu.Lock()
	lf.closed = true
	var idle chan struct{}
	if lf.active > 0 {
		idle = make(chan struct{})
		lf.idle = idle
	}
	lf.mu.Unlock()
	if idle != nil {
		select {
		case <-idle:
		case <-time.After(wait):
		}
	}
	lf.flush()
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.stop != nil {
		close(lf.stop)
		lf.stop = nil
	}
	for _, f := range lf.files {
		f.mu.Lock()
		if c, ok := f.dst.(io.Closer); ok && f.dst != os.Stdout && f.dst != os.Stderr {
			_ = c.Close()
		}
		f.mu.Unlock()
	}
	lf.files = nil
}

func (f *logFile) write(line []byte) {
	f.mu.Lock()
	_, _ = f.w.Write(line)
	f.mu.Unlock()
}

// openAccessLogs resolves the files of a listener's access logs.
func (s *Sidecar) openAccessLogs(lc *listenerConf) error {
	chains := lc.chains
	if lc.defaultChain != nil {
		chains = append(chains[:len(chains):len(chains)], *lc.defaultChain)
	}
	for _, c := range chains {
		als := c.accessLogs
		if c.tcp != nil {
			als = append(als[:len(als):len(als)], c.tcp.accessLogs...)
		}
		for _, al := range als {
			f, err := s.logFiles.openFile(al.path)
			if err != nil {
				return err
			}
			al.file = f
		}
	}
	return nil
}

// logBufs are line buffers, so that a line costs no allocation of its own.
var logBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeLogs formats e into each access log.
func writeLogs(als []*accessLogConf, e *accesslog.Entry) {
	bp := logBufs.Get().(*[]byte)
	for _, al := range als {
		if al.file == nil {
			continue
		}
		b := al.format.Append((*bp)[:0], e)
		al.file.write(b)
		*bp = b
	}
	logBufs.Put(bp)
}

// exchangeLog is what an exchange on a logging chain keeps for its line.
type exchangeLog struct {
	als      []*accessLogConf
	r        *http.Request
	w        *countingWriter
	body     *countingBody
	upstream string // the last attempt's host
	cluster  string
	route    string
	details  string // response code details of a local reply
}

// countingWriter counts the body bytes sent downstream (BYTES_SENT).
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// Unwrap lets http.NewResponseController reach Flush and Hijack.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// countingBody counts the request body bytes read (BYTES_RECEIVED).
type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	c.n += int64(n)
	return n, err
}

// startLog wraps w and r's body to count bytes when the chain logs, and
// returns the writer to use.
func (s *Sidecar) startLog(w http.ResponseWriter, r *http.Request, x *exchange, als []*accessLogConf) http.ResponseWriter {
	if len(als) == 0 || !s.logFiles.begin() {
		return w
	}
	l := &exchangeLog{als: als, r: r, w: &countingWriter{ResponseWriter: w}}
	if r.Body != nil && r.Body != http.NoBody {
		l.body = &countingBody{ReadCloser: r.Body}
		r.Body = l.body
	}
	x.log = l
	return l.w
}

// writeLog writes the exchange's line, once the response has ended.
func (s *Sidecar) writeLog(x *exchange) {
	l := x.log
	defer s.logFiles.end()
	r := l.r
	e := &accesslog.Entry{
		Start: x.start, Duration: time.Since(x.start),
		Method: r.Method, Path: r.URL.RequestURI(), Authority: r.Host, Protocol: r.Proto,
		ReqHeader: r.Header, RespHeader: l.w.Header(),
		Code: x.code, Flags: x.flags, CodeDetails: codeDetails(x),
		BytesSent:    l.w.n,
		UpstreamHost: l.upstream, UpstreamCluster: l.cluster, RouteName: l.route,
		DownstreamRemote: r.RemoteAddr,
	}
	if x.upstream.header != nil {
		// The request as the router sent it: x-request-id made, the
		// route's header edits done, as Envoy's formatter sees it.
		e.ReqHeader = x.upstream.header
	}
	if l.body != nil {
		e.BytesReceived = l.body.n
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		e.DownstreamLocal = a.String()
	}
	if r.TLS != nil {
		e.ServerName = r.TLS.ServerName
	}
	writeLogs(l.als, e)
}

// codeDetails is %RESPONSE_CODE_DETAILS%: the reason Envoy's
// StreamInfo::ResponseCodeDetails gives for the flags the sidecar set
// (envoy/stream_info/stream_info.h ResponseCodeDetailValues), or
// via_upstream for a response the upstream sent.
func codeDetails(x *exchange) string {
	if x.log.details != "" {
		return x.log.details
	}
	// Of several flags (UF,URX) the first names what happened.
	for f := range strings.SplitSeq(x.flags, ",") {
		if d, ok := flagDetails[f]; ok {
			return d
		}
	}
	if x.code != 0 {
		return "via_upstream"
	}
	return ""
}

var flagDetails = map[string]string{
	flagNoRoute:             "route_not_found",
	flagNoCluster:           "cluster_not_found",
	flagNoHealthy:           "no_healthy_upstream",
	flagUpstreamTimeout:     "response_timeout",
	flagOverflow:            "upstream_reset_before_response_started{overflow}",
	flagConnectFailure:      "upstream_reset_before_response_started{connection_failure}",
	flagUpstreamTermination: "upstream_reset_before_response_started{connection_termination}",
	flagFaultInjected:       "fault_filter_abort",
	flagDownstreamCancel:    "downstream_remote_disconnect",
	flagStreamIdle:          "stream_idle_timeout",
}

// connLog is what a tcp_proxy connection keeps for its line.
type connLog struct {
	start                            time.Time
	info                             *connInfo
	down                             net.Conn
	cluster, upstream, upstreamLocal string
}

// writeConnLog writes a TCP connection's line at its end: HTTP operators
// print "-", RESPONSE_CODE 0, as Envoy's formatter does on tcp_proxy.
func (s *Sidecar) writeConnLog(als []*accessLogConf, c *connLog, flags string, sent, received int64) {
	defer s.logFiles.end()
	e := &accesslog.Entry{
		Start: c.start, Duration: time.Since(c.start), Flags: flags,
		BytesSent: sent, BytesReceived: received,
		UpstreamHost: c.upstream, UpstreamCluster: c.cluster, UpstreamLocal: c.upstreamLocal,
		DownstreamRemote: c.down.RemoteAddr().String(), DownstreamLocal: c.down.LocalAddr().String(),
	}
	if c.info != nil {
		e.ServerName = c.info.sni
		if c.info.dst.IsValid() {
			e.DownstreamLocal = c.info.dst.String()
		}
	}
	writeLogs(als, e)
}
