package h1

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// bufferBeforeChunking is how much body a response holds before its
// header goes out: a handler that ends within it gets a Content-Length,
// as with net/http (bufferBeforeChunkingSize).
const bufferBeforeChunking = 2048

// response is the http.ResponseWriter of one request; a connection reuses
// its one for each request in turn.
type response struct {
	c   *conn
	req *http.Request

	header   http.Header // the handler's
	snapshot http.Header // the header as of WriteHeader, once touched after
	status   int

	wroteHeader bool // a final status is set
	committed   bool // the header is in the connection's buffer
	chunked     bool
	closeAfter  bool
	handlerDone bool

	// Taken from the request before the handler may change its header.
	isHEAD, wants10KeepAlive, wantsClose bool

	contentLength int64 // -1: unknown
	written       int64
	buf           []byte // body held before commit
	bufArr        [bufferBeforeChunking]byte
	declared      []string // trailer names declared by the Trailer header

	continueMu sync.Mutex // orders 100 Continue against the final header
}

func (w *response) reset(c *conn, req *http.Request) {
	if w.header == nil {
		w.header = http.Header{}
	} else {
		clear(w.header)
	}
	conn := req.Header.Get("Connection")
	*w = response{
		c: c, req: req, header: w.header, contentLength: -1,
		isHEAD:           req.Method == http.MethodHead,
		wants10KeepAlive: req.ProtoMajor == 1 && req.ProtoMinor == 0 && httpguts.HeaderValuesContainsToken([]string{conn}, "keep-alive"),
		wantsClose:       req.Close || httpguts.HeaderValuesContainsToken([]string{conn}, "close"),
	}
	w.buf = w.bufArr[:0]
}

func (w *response) Header() http.Header {
	if w.wroteHeader && !w.committed && w.snapshot == nil {
		// The header as it was at WriteHeader is what goes out; later
		// changes count only as trailers (net/http's cw.header).
		w.snapshot = w.header.Clone()
	}
	return w.header
}

func (w *response) WriteHeader(code int) {
	if w.c.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return
	}
	w.wroteHeader, w.status = true, code
	if cl := w.header.Get("Content-Length"); cl != "" {
		if v, err := strconv.ParseInt(cl, 10, 64); err == nil && v >= 0 {
			w.contentLength = v
		} else {
			w.header.Del("Content-Length")
		}
	}
}

// writeInformational sends a 1xx answer at once.
func (w *response) writeInformational(code int) {
	w.continueMu.Lock()
	defer w.continueMu.Unlock()
	if code == http.StatusContinue {
		w.c.body.continuePending.Store(false)
	}
	bw := w.c.bw
	writeStatusLine(bw, w.req.ProtoAtLeast(1, 1), code)
	for k, vv := range w.header {
		if k == "Content-Length" || k == "Transfer-Encoding" || strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		writeField(bw, k, vv)
	}
	_, _ = bw.WriteString("\r\n")
	w.c.noteErr(bw.Flush())
}

// writeContinue sends 100 Continue before the body is first read, unless
// the final answer went first. The body's lock is held.
func (w *response) writeContinue() {
	w.continueMu.Lock()
	defer w.continueMu.Unlock()
	if !w.c.body.continuePending.Swap(false) || w.committed {
		return
	}
	_, _ = w.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	w.c.noteErr(w.c.bw.Flush())
}

func (w *response) Write(p []byte) (int, error) {
	if w.c.hijacked {
		return 0, http.ErrHijacked
	}
	if w.c.werr != nil {
		return 0, w.c.werr
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.contentLength != -1 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	n := len(p)
	if !w.committed {
		if len(w.buf)+len(p) <= cap(w.buf) {
			w.buf = append(w.buf, p...)
			return n, nil
		}
		// As net/http's bufio.Writer: the buffer is topped up and goes
		// out with the header, or p goes whole when nothing was held;
		// either way the header's content sniffing sees it.
		if len(w.buf) > 0 {
			room := cap(w.buf) - len(w.buf)
			w.buf = append(w.buf, p[:room]...)
			p = p[room:]
		} else {
			w.buf, p = p, nil
		}
		w.commit(false)
	}
	w.writeBody(p)
	if w.c.werr != nil {
		return 0, w.c.werr
	}
	return n, nil
}

func (w *response) writeBody(p []byte) {
	if w.isHEAD || len(p) == 0 {
		return
	}
	bw := w.c.bw
	if w.chunked {
		var hex [16]byte
		_, _ = bw.Write(strconv.AppendInt(hex[:0], int64(len(p)), 16))
		_, _ = bw.WriteString("\r\n")
		_, _ = bw.Write(p)
		_, err := bw.WriteString("\r\n")
		w.c.noteErr(err)
		return
	}
	_, err := bw.Write(p)
	w.c.noteErr(err)
}

func (w *response) Flush() { _ = w.FlushError() }

func (w *response) FlushError() error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false)
	}
	w.c.noteErr(w.c.bw.Flush())
	return w.c.werr
}

// Hijack gives the handler the connection, as net/http's does: what was
// written goes out first, and the reader keeps what is buffered.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	c.stopWatch()
	c.watchMu.Lock()
	c.hijacked = true
	c.watchMu.Unlock()
	if w.wroteHeader && !w.committed {
		w.commit(false)
	}
	if err := c.bw.Flush(); err != nil {
		return nil, nil, err
	}
	return c.rwc, bufio.NewReadWriter(c.br, c.bw), nil
}

// finish ends the response after the handler returned.
func (w *response) finish() {
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(true)
	}
	bw := w.c.bw
	if w.chunked {
		_, _ = bw.WriteString("0\r\n")
		w.writeTrailers()
		_, _ = bw.WriteString("\r\n")
	}
	w.c.noteErr(bw.Flush())
	if !w.closeAfter && !w.c.body.drain() {
		w.closeAfter = true
	}
}

func (w *response) writeTrailers() {
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			writeField(w.c.bw, name, vv)
		}
	}
	for _, k := range w.declared {
		if vv := w.header[k]; len(vv) > 0 {
			writeField(w.c.bw, k, vv)
		}
	}
}

// reusable reports whether the connection may read another request, as
// net/http's shouldReuseConnection.
func (w *response) reusable() bool {
	if w.closeAfter || w.c.werr != nil {
		return false
	}
	return w.isHEAD || w.contentLength == -1 || !bodyAllowedForStatus(w.status) || w.contentLength == w.written
}

func (c *conn) noteErr(err error) {
	if err != nil && c.werr == nil {
		c.werr = err
	}
}

// Header fields the framing rules drop from the handler's header.
const (
	skipContentLength = 1 << iota
	skipTransferEncoding
	skipConnection
	skipContentType
)

// commit writes the status line and header, then the body held so far.
// final is set when the handler has returned. It follows net/http's
// chunkWriter.writeHeader rule by rule.
func (w *response) commit(final bool) {
	c := w.c
	w.continueMu.Lock()
	w.committed = true
	if c.body.continuePending.Swap(false) {
		w.closeAfter = true // the client never sent its body
	}
	w.continueMu.Unlock()

	p := w.buf
	h := w.snapshot
	if h == nil {
		h = w.header
	}
	keepAlives := !c.s.noKeep.Load()
	bodyAllowed := bodyAllowedForStatus(w.status)
	var skip int

	trailers := false
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			trailers = true
			break
		}
	}
	for _, v := range h["Trailer"] {
		trailers = true
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				w.declared = append(w.declared, http.CanonicalHeaderKey(f))
			}
		}
	}
	te := first(h, "Transfer-Encoding")
	hasTE := te != ""

	var setCL []byte
	var clBuf [20]byte
	if final && !trailers && !hasTE && bodyAllowed && !has(h, "Content-Length") && (!w.isHEAD || len(p) > 0) {
		w.contentLength = int64(len(p))
		setCL = strconv.AppendInt(clBuf[:0], int64(len(p)), 10)
	}
	if w.wants10KeepAlive && keepAlives && first(h, "Content-Length") != "" && first(h, "Connection") == "keep-alive" {
		w.closeAfter = false
	}
	hasCL := w.contentLength != -1
	setConn := ""
	if w.wants10KeepAlive && (w.isHEAD || hasCL || !bodyAllowed) {
		if !has(h, "Connection") {
			setConn = "keep-alive"
		}
	} else if !w.req.ProtoAtLeast(1, 1) || w.wantsClose {
		w.closeAfter = true
	}
	if first(h, "Connection") == "close" || !keepAlives {
		w.closeAfter = true
	}
	// What is left of the request's body is read now, before the answer,
	// or the connection closes after it.
	if w.req.ContentLength != 0 && !w.closeAfter && !c.body.drain() {
		w.closeAfter = true
	}

	setCT := ""
	if bodyAllowed {
		if !has(h, "Content-Type") && first(h, "Content-Encoding") == "" && !hasTE && len(p) > 0 {
			setCT = http.DetectContentType(p)
		}
	} else {
		skip |= skipContentLength | skipTransferEncoding
		if w.status == http.StatusNotModified {
			skip |= skipContentType
		}
	}
	var date []byte
	if !has(h, "Date") {
		date = httpDate()
	}
	if hasCL && hasTE && te != "identity" {
		skip |= skipContentLength
		hasCL = false
	}
	setTE := false
	switch {
	case w.isHEAD || !bodyAllowed || w.status == http.StatusNoContent:
		skip |= skipTransferEncoding
	case hasCL:
		skip |= skipTransferEncoding
	case w.req.ProtoAtLeast(1, 1):
		if hasTE && te == "identity" {
			w.closeAfter = true
			skip |= skipTransferEncoding
		} else {
			w.chunked, setTE = true, true
			if hasTE && te == "chunked" {
				skip |= skipTransferEncoding
			}
		}
	default:
		w.closeAfter = true
		skip |= skipTransferEncoding
	}
	if w.chunked {
		skip |= skipContentLength
	}
	if w.closeAfter && (!keepAlives || !hasToken(first(h, "Connection"), "close")) && !isProtocolSwitch(w.status, h) {
		skip |= skipConnection
		if w.req.ProtoAtLeast(1, 1) {
			setConn = "close"
		}
	}

	bw := c.bw
	writeStatusLine(bw, w.req.ProtoAtLeast(1, 1), w.status)
	for k, vv := range h {
		if skipped(k, skip) || strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		writeField(bw, k, vv)
	}
	// In net/http's extraHeader order.
	if setCT != "" {
		writeField1(bw, "Content-Type", setCT)
	}
	if setConn != "" {
		writeField1(bw, "Connection", setConn)
	}
	if setTE {
		writeField1(bw, "Transfer-Encoding", "chunked")
	}
	if date != nil {
		_, _ = bw.WriteString("Date: ")
		_, _ = bw.Write(date)
		_, _ = bw.WriteString("\r\n")
	}
	if setCL != nil {
		_, _ = bw.WriteString("Content-Length: ")
		_, _ = bw.Write(setCL)
		_, _ = bw.WriteString("\r\n")
	}
	_, err := bw.WriteString("\r\n")
	c.noteErr(err)
	w.buf = w.bufArr[:0]
	w.writeBody(p)
}

func skipped(k string, skip int) bool {
	switch k {
	case "Content-Length":
		return skip&skipContentLength != 0
	case "Transfer-Encoding":
		return skip&skipTransferEncoding != 0
	case "Connection":
		return skip&skipConnection != 0
	case "Content-Type":
		return skip&skipContentType != 0
	}
	return false
}

func first(h http.Header, k string) string {
	if vv := h[k]; len(vv) > 0 {
		return vv[0]
	}
	return ""
}

func has(h http.Header, k string) bool {
	_, ok := h[k]
	return ok
}

func hasToken(v, token string) bool {
	return httpguts.HeaderValuesContainsToken([]string{v}, token)
}

func isProtocolSwitch(code int, h http.Header) bool {
	return code == http.StatusSwitchingProtocols && first(h, "Upgrade") != "" &&
		httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade")
}

// bodyAllowedForStatus is net/http's: 1xx, 204 and 304 have no body.
func bodyAllowedForStatus(status int) bool {
	switch {
	case status >= 100 && status <= 199, status == http.StatusNoContent, status == http.StatusNotModified:
		return false
	}
	return true
}

func writeStatusLine(bw *bufio.Writer, is11 bool, code int) {
	if is11 {
		_, _ = bw.WriteString("HTTP/1.1 ")
	} else {
		_, _ = bw.WriteString("HTTP/1.0 ")
	}
	var b [3]byte
	_, _ = bw.Write(strconv.AppendInt(b[:0], int64(code), 10))
	_ = bw.WriteByte(' ')
	if text := http.StatusText(code); text != "" {
		_, _ = bw.WriteString(text)
	} else {
		_, _ = bw.WriteString("status code ")
		_, _ = bw.Write(strconv.AppendInt(b[:0], int64(code), 10))
	}
	_, _ = bw.WriteString("\r\n")
}

// newlineToSpace is net/http's header value cleaning (headerNewlineToSpace).
var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")

func writeField(bw *bufio.Writer, k string, vv []string) {
	for _, v := range vv {
		writeField1(bw, k, v)
	}
}

func writeField1(bw *bufio.Writer, k, v string) {
	if strings.ContainsAny(v, "\r\n") {
		v = newlineToSpace.Replace(v)
	}
	_, _ = bw.WriteString(k)
	_, _ = bw.WriteString(": ")
	_, _ = bw.WriteString(strings.TrimSpace(v))
	_, _ = bw.WriteString("\r\n")
}

// httpDate is the Date header's value, made once a second.
func httpDate() []byte {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.b
	}
	d := &cachedDate{sec: sec, b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	dateCache.Store(d)
	return d.b
}

type cachedDate struct {
	sec int64
	b   []byte
}

var dateCache atomic.Pointer[cachedDate]
