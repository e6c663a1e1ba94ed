// Package h1 serves HTTP/1.1 for the sidecar's data path, and hands
// HTTP/2 connections to net/http.
//
// net/http's server costs a hop more than its own work: a background read
// goroutine per request (to see the client go away), a read that finds
// nothing after each request, and a deadline reset around it. A sidecar
// serves one request and sends one per hop, so that overhead is a large
// share of its CPU (docs/performance.md). This server reads and answers
// requests on the connection's own goroutine and watches for the client
// only when a request runs long (watchAfter). It keeps net/http's request
// and ResponseWriter types, so handlers are the same for both servers, and
// follows net/http's framing rules (server.go's chunkWriter.writeHeader)
// for what it writes.
package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server serves HTTP/1.1 itself and HTTP/2 (by ALPN over TLS, or by the
// prior-knowledge preface in cleartext) through a net/http Server it runs.
// It has the subset of http.Server's API the sidecar uses.
type Server struct {
	Handler           http.Handler
	Protocols         *http.Protocols // nil: HTTP/1 and HTTP/2 over TLS, as net/http
	ReadHeaderTimeout time.Duration
	ErrorLog          *log.Logger
	// ConnContext derives a connection's context, as http.Server's; it
	// is given the connection as accepted for both protocols.
	ConnContext func(context.Context, net.Conn) context.Context

	initOnce sync.Once
	h2       *http.Server
	handoff  chan net.Conn
	done     chan struct{}

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	shutdown  atomic.Bool
	noKeep    atomic.Bool
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// ErrServerClosed is what Serve returns after Close or Shutdown.
var ErrServerClosed = http.ErrServerClosed

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.handoff = make(chan net.Conn)
		s.done = make(chan struct{})
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[*conn]struct{}{}
		s.h2 = &http.Server{
			Handler:           s.Handler,
			Protocols:         s.Protocols,
			ReadHeaderTimeout: s.ReadHeaderTimeout,
			ErrorLog:          s.ErrorLog,
			ConnContext: func(ctx context.Context, c net.Conn) context.Context {
				if p, ok := c.(*prefaced); ok {
					c = p.Conn
				}
				if s.ConnContext != nil {
					return s.ConnContext(ctx, c)
				}
				return ctx
			},
		}
		go func() { _ = s.h2.Serve(handoffListener{s}) }()
	})
}

func (s *Server) protocols() *http.Protocols {
	if s.Protocols != nil {
		return s.Protocols
	}
	p := &http.Protocols{}
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	return p
}

// Serve accepts connections on l until it fails or the server closes.
func (s *Server) Serve(l net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		rwc, err := l.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return ErrServerClosed
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http's Serve does (5 ms doubling to 1 s) for the errors
			// it calls temporary.
			if retryAccept(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := &conn{s: s, rwc: rwc}
		if !s.track(c) {
			rwc.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

// retryAccept reports whether accept failed for a reason that passes:
// out of descriptors or buffers, or a connection gone before it was taken.
func retryAccept(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// handOff gives an HTTP/2 connection to net/http's server.
func (s *Server) handOff(c net.Conn) {
	select {
	case s.handoff <- c:
	case <-s.done:
		c.Close()
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.init()
	s.stop()
	s.mu.Lock()
	for c := range s.conns {
		c.rwc.Close()
	}
	s.mu.Unlock()
	err := s.h2.Close()
	s.wg.Wait()
	return err
}

// Shutdown closes the listeners and idle connections, then waits for the
// requests in flight to end, as http.Server's Shutdown does.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.stop()
	h2 := make(chan error, 1)
	go func() { h2 <- s.h2.Shutdown(ctx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		for c := range s.conns {
			if c.idle.Load() {
				c.rwc.Close()
			}
		}
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return <-h2
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (s *Server) stop() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.shutdown.Store(true)
		close(s.done)
		for l := range s.listeners {
			l.Close()
		}
		s.mu.Unlock()
	})
}

// SetKeepAlivesEnabled(false) answers every request after it with
// "Connection: close", as http.Server's does; for draining.
func (s *Server) SetKeepAlivesEnabled(v bool) {
	s.init()
	s.noKeep.Store(!v)
	s.h2.SetKeepAlivesEnabled(v)
}

// handoffListener feeds net/http's server the HTTP/2 connections.
type handoffListener struct{ s *Server }

func (l handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.s.handoff:
		return c, nil
	case <-l.s.done:
		return nil, net.ErrClosed
	}
}
func (l handoffListener) Close() error   { return nil }
func (l handoffListener) Addr() net.Addr { return &net.TCPAddr{} }

// prefaced is a cleartext connection whose first bytes were read to find
// the HTTP/2 preface; reads give them back first.
type prefaced struct {
	net.Conn
	r *bufio.Reader
}

func (p *prefaced) Read(b []byte) (int, error) { return p.r.Read(b) }

// h2Preface opens an HTTP/2 connection with prior knowledge (RFC 9113
// section 3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// isH2Preface reads as far as it takes to tell whether the connection
// opens with the HTTP/2 preface, as net/http's maybeServeUnencryptedHTTP2.
func isH2Preface(br *bufio.Reader) bool {
	for n := 1; n <= len(h2Preface); n++ {
		b, err := br.Peek(n)
		if err != nil || b[n-1] != h2Preface[n-1] {
			return false
		}
	}
	return true
}

// tlsRecordLooksLikeHTTP is net/http's test for a plaintext request sent
// to a TLS port (server.go tlsRecordHeaderLooksLikeHTTP).
func tlsRecordLooksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// isCommonNetReadError is net/http's: errors that get no answer.
func isCommonNetReadError(err error) bool {
	if err == io.EOF {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "read"
}

// handshake completes a TLS connection's handshake within the header
// timeout; it reports false when the connection is done with.
func (s *Server) handshake(ctx context.Context, tc *tls.Conn) bool {
	if d := s.ReadHeaderTimeout; d > 0 {
		_ = tc.SetDeadline(time.Now().Add(d))
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && tlsRecordLooksLikeHTTP(re.RecordHeader) {
			_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
			re.Conn.Close()
		}
		return false
	}
	_ = tc.SetDeadline(time.Time{})
	return true
}
