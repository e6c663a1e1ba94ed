package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// watchAfter is how long a request runs before its connection is watched
// for the client going away. net/http watches from the start of every
// request with a goroutine and a read; most hops end well within this, so
// only the slow ones pay for it, and a client that leaves is seen at most
// this late (docs/fidelity.md).
const watchAfter = 2 * time.Millisecond

// maxHeaderBytes is net/http's DefaultMaxHeaderBytes; net/http reads up to
// 4096 bytes past it before it answers 431 (initialReadLimitSize).
const maxHeaderBytes = http.DefaultMaxHeaderBytes + 4096

// maxPostHandlerReadBytes is how much of a body the handler left unread
// the server reads to keep the connection, as net/http.
const maxPostHandlerReadBytes = 256 << 10

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

type conn struct {
	s          *Server
	rwc        net.Conn
	lr         limitedReader
	br         *bufio.Reader
	bw         *bufio.Writer
	ctx        context.Context
	remoteAddr string
	tlsState   *tls.ConnectionState
	idle       atomic.Bool
	hijacked   bool
	werr       error // the first write error: the connection is done

	body reqBody
	res  response

	// Watching for the client going away while a request runs.
	watchMu  sync.Mutex
	watch    *time.Timer
	armed    bool          // a request runs: the timer is for it
	watching bool          // the timer fired during this request
	watchOn  bool          // a read is waiting on the connection
	watchEnd chan struct{} // closed when that read returns
	cancel   context.CancelFunc
}

// limitedReader bounds the request header's size, as net/http's connReader.
type limitedReader struct {
	r      io.Reader
	remain int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.remain {
		p = p[:l.remain]
	}
	n, err := l.r.Read(p)
	l.remain -= int64(n)
	return n, err
}

const unlimited = 1 << 62

func (c *conn) serve() {
	s := c.s
	handedOff := false
	defer func() {
		if err := recover(); err != nil && err != http.ErrAbortHandler && s.ErrorLog != nil {
			buf := make([]byte, 64<<10)
			buf = buf[:runtime.Stack(buf, false)]
			s.ErrorLog.Printf("h1: panic serving %v: %v\n%s", c.remoteAddr, err, buf)
		}
		if c.cancel != nil {
			c.cancel()
		}
		if !c.hijacked && !handedOff {
			c.stopWatch()
			c.rwc.Close()
			if c.br != nil {
				c.br.Reset(nil)
				readerPool.Put(c.br)
				c.bw.Reset(nil)
				writerPool.Put(c.bw)
			}
		}
		s.untrack(c)
	}()
	if ra := c.rwc.RemoteAddr(); ra != nil {
		c.remoteAddr = ra.String()
	}
	ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, c.rwc.LocalAddr())
	if s.ConnContext != nil {
		ctx = s.ConnContext(ctx, c.rwc)
	}
	c.ctx = ctx
	protos := s.protocols()
	if tc, ok := c.rwc.(*tls.Conn); ok {
		if !s.handshake(ctx, tc) {
			return
		}
		cs := tc.ConnectionState()
		if cs.NegotiatedProtocol == "h2" {
			handedOff = true
			s.handOff(tc)
			return
		}
		c.tlsState = &cs
	}
	c.lr = limitedReader{r: c.rwc, remain: unlimited}
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(&c.lr)
	c.bw = writerPool.Get().(*bufio.Writer)
	c.bw.Reset(c.rwc)
	if c.tlsState == nil && protos.UnencryptedHTTP2() {
		if d := s.ReadHeaderTimeout; d > 0 {
			_ = c.rwc.SetReadDeadline(time.Now().Add(d))
		}
		if isH2Preface(c.br) {
			_ = c.rwc.SetReadDeadline(time.Time{})
			handedOff = true
			s.handOff(&prefaced{Conn: c.rwc, r: c.br})
			return
		}
	}
	if !protos.HTTP1() {
		return
	}
	for c.serveOne() {
	}
}

// serveOne reads one request and answers it; it reports whether the
// connection stays open for another.
func (c *conn) serveOne() bool {
	s := c.s
	c.lr.remain = maxHeaderBytes
	if c.br.Buffered() == 0 {
		// Idle until the next request; Shutdown closes idle connections.
		c.idle.Store(true)
		if s.shutdown.Load() {
			return false
		}
		_, err := c.br.Peek(1)
		c.idle.Store(false)
		if err != nil {
			return false
		}
	}
	if d := s.ReadHeaderTimeout; d > 0 {
		_ = c.rwc.SetReadDeadline(time.Now().Add(d))
	}
	req, err := http.ReadRequest(c.br)
	hitLimit := c.lr.remain <= 0
	c.lr.remain = unlimited
	if s.ReadHeaderTimeout > 0 {
		_ = c.rwc.SetReadDeadline(time.Time{})
	}
	if err == nil {
		err = validate(req)
	}
	if err != nil {
		c.refuse(err, hitLimit)
		return false
	}
	ctx, cancel := context.WithCancel(c.ctx)
	c.cancel = cancel
	req = req.WithContext(ctx)
	req.RemoteAddr = c.remoteAddr
	req.TLS = c.tlsState

	w := &c.res
	w.reset(c, req)
	if req.Body != nil && req.Body != http.NoBody {
		c.body.reset(c, req.Body)
		req.Body = &c.body
	} else {
		c.body.reset(c, nil)
	}
	if expect := req.Header.Get("Expect"); expect != "" {
		if strings.EqualFold(expect, "100-continue") {
			if req.ProtoAtLeast(1, 1) && req.ContentLength != 0 {
				c.body.continuePending.Store(true)
			}
		} else {
			w.status = http.StatusExpectationFailed
			w.wroteHeader = true
			w.closeAfter = true
			w.finish()
			return false
		}
	}
	var h http.Handler = s.Handler
	if req.RequestURI == "*" && req.Method == http.MethodOptions {
		h = globalOptions // as net/http's serverHandler
	}
	c.armWatch()
	h.ServeHTTP(w, req)
	c.stopWatch()
	cancel()
	c.cancel = nil
	if c.hijacked {
		return false
	}
	w.finish()
	if !w.reusable() {
		if w.c.body.spoilt || w.c.body.closed && !w.c.body.eof {
			c.closeWriteAndWait()
		}
		return false
	}
	return !s.shutdown.Load()
}

// globalOptions answers "OPTIONS *" as net/http's server does
// (globalOptionsHandler), before any handler.
var globalOptions = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "0")
	if r.ContentLength != 0 {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 4<<10))
	}
})

// validate holds a request to net/http's server's checks (server.go
// readRequest and http1ServerSupportsRequest).
func validate(req *http.Request) error {
	if req.ProtoMajor != 1 && (req.ProtoMajor != 2 || req.ProtoMinor != 0 || req.Method != "PRI" || req.RequestURI != "*") {
		return statusError{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
	}
	if req.ProtoAtLeast(1, 1) && req.Host == "" && req.Method != http.MethodConnect {
		return statusError{http.StatusBadRequest, "missing required Host header"}
	}
	if req.Host != "" && !httpguts.ValidHostHeader(req.Host) {
		return statusError{http.StatusBadRequest, "malformed Host header"}
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return statusError{http.StatusBadRequest, "invalid header name"}
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return statusError{http.StatusBadRequest, "invalid header value"}
			}
		}
	}
	return nil
}

type statusError struct {
	code int
	text string
}

func (e statusError) Error() string { return http.StatusText(e.code) + ": " + e.text }

// refuse answers a request that could not be read as net/http's server
// does, and the connection closes.
func (c *conn) refuse(err error, hitLimit bool) {
	const errorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
	var se statusError
	switch {
	case hitLimit:
		const publicErr = "431 Request Header Fields Too Large"
		_, _ = io.WriteString(c.rwc, "HTTP/1.1 "+publicErr+errorHeaders+publicErr)
		c.closeWriteAndWait()
	case strings.Contains(err.Error(), "unsupported transfer encoding"):
		code := http.StatusNotImplemented
		_, _ = fmt.Fprintf(c.rwc, "HTTP/1.1 %d %s%sUnsupported transfer encoding", code, http.StatusText(code), errorHeaders)
	case isCommonNetReadError(err):
	case errors.As(err, &se):
		_, _ = fmt.Fprintf(c.rwc, "HTTP/1.1 %d %s: %s%s%d %s: %s", se.code, http.StatusText(se.code), se.text, errorHeaders, se.code, http.StatusText(se.code), se.text)
	default:
		const publicErr = "400 Bad Request"
		_, _ = io.WriteString(c.rwc, "HTTP/1.1 "+publicErr+errorHeaders+publicErr)
	}
}

// closeWriteAndWait half-closes the connection and lingers before it is
// closed, so that the client reads the answer before a reset for the bytes
// it sent that were not read (net/http's rstAvoidanceDelay).
func (c *conn) closeWriteAndWait() {
	_ = c.bw.Flush()
	if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	time.Sleep(rstAvoidanceDelay)
}

const rstAvoidanceDelay = 500 * time.Millisecond

// armWatch starts the timer after which the connection is read for the
// client going away.
func (c *conn) armWatch() {
	c.watchMu.Lock()
	c.armed, c.watching = true, false
	if c.watch == nil {
		c.watch = time.AfterFunc(watchAfter, c.startWatch)
	} else {
		c.watch.Reset(watchAfter)
	}
	c.watchMu.Unlock()
}

// startWatch runs once a request has run watchAfter: when its body is
// read to the end, a read waits on the connection; an error there (the
// client closed it) cancels the request's context, as net/http's
// background read does. Data there is the next request, kept.
func (c *conn) startWatch() {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	if !c.armed {
		return // a late timer: its request is over
	}
	c.watching = true
	c.watchLocked()
}

// watchLocked starts the read once the body is read; c.watchMu held.
func (c *conn) watchLocked() {
	if !c.body.eof || c.watchOn || c.hijacked {
		return // the body's end starts it (reqBody.Read)
	}
	c.watchOn = true
	c.watchEnd = make(chan struct{})
	go func(end chan struct{}, cancel context.CancelFunc) {
		defer close(end)
		if _, err := c.br.Peek(1); err != nil && !isTimeout(err) {
			cancel()
		}
	}(c.watchEnd, c.cancel)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// stopWatch ends the watch for the request: the timer, and a read in
// progress, which a past deadline interrupts.
func (c *conn) stopWatch() {
	c.watchMu.Lock()
	if c.watch != nil {
		c.watch.Stop()
	}
	c.armed, c.watching = false, false
	on, end := c.watchOn, c.watchEnd
	c.watchOn = false
	c.watchMu.Unlock()
	if on {
		_ = c.rwc.SetReadDeadline(time.Unix(1, 0))
		<-end
		_ = c.rwc.SetReadDeadline(time.Time{})
	}
}

// reqBody is a request's body: it records its end, sends 100 Continue
// before the first read when asked, and refuses reads after Close.
type reqBody struct {
	c               *conn
	rc              io.ReadCloser
	mu              sync.Mutex
	eof             bool // under c.watchMu once the handler runs
	closed          bool
	spoilt          bool // drain gave up on it
	continuePending atomic.Bool
}

func (b *reqBody) reset(c *conn, rc io.ReadCloser) {
	b.c, b.rc, b.eof, b.closed, b.spoilt = c, rc, rc == nil, false, false
	b.continuePending.Store(false)
}

func (b *reqBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.continuePending.Load() {
		b.c.res.writeContinue()
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		c := b.c
		c.watchMu.Lock()
		b.eof = true
		if c.armed && c.watching {
			c.watchLocked()
		}
		c.watchMu.Unlock()
	}
	return n, err
}

func (b *reqBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// drain reads what the handler left of the body, up to net/http's limit;
// it reports whether the connection can read the next request.
func (b *reqBody) drain() bool {
	if b.rc == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.c.watchMu.Lock()
	eof := b.eof
	b.c.watchMu.Unlock()
	switch {
	case eof:
		return true
	case b.closed, b.spoilt, b.continuePending.Load():
		// Closed before its end (net/http closes the connection then
		// too), or never sent: the client waits for 100 Continue.
		return false
	}
	_, err := io.CopyN(io.Discard, b.rc, maxPostHandlerReadBytes+1)
	if err != io.EOF {
		b.spoilt = true
		return false
	}
	b.c.watchMu.Lock()
	b.eof = true
	b.c.watchMu.Unlock()
	return true
}
