package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"
)

// Client sends HTTP/1.1 requests on the caller's goroutine over a pool of
// connections per address. net/http's Transport runs a read and a write
// goroutine per connection and hands each request and response between
// them and the caller; a hop pays for those hand-offs and for the read
// each idle connection keeps waiting (docs/performance.md). Requests,
// responses and their framing are net/http's own (Request.Write,
// ReadResponse).
//
// The pool opens connections as Envoy's does: a new connection only when
// the requests waiting for one outnumber the connections being opened
// (ConnPoolImplBase::shouldCreateNewConnection, conn_pool_base.cc); a
// request that gives up leaves its connection to finish opening for the
// next; a failed connect fails the waiting requests it was opened for
// (purgePendingStreams).
//
// A request whose body is not in memory (no GetBody) is not this client's:
// it writes a request whole before it reads the answer, where net/http's
// writes and reads at once.
type Client struct {
	// Dial opens a connection to addr, TLS included where it applies. It
	// is not given the request's context: a connect outlives a request
	// that gives up, for the next one.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// IdleTimeout closes a connection idle this long (0: never).
	IdleTimeout time.Duration

	mu    sync.Mutex
	pools map[string]*pool
}

var aLongTimeAgo = time.Unix(1, 0)

func (c *Client) pool(addr string) *pool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pools[addr]
	if p == nil {
		if c.pools == nil {
			c.pools = map[string]*pool{}
		}
		p = &pool{c: c, addr: addr}
		c.pools[addr] = p
	}
	return p
}

// CloseIdleConnections closes the connections no request holds; those in
// use close when their requests end.
func (c *Client) CloseIdleConnections() {
	c.mu.Lock()
	pools := make([]*pool, 0, len(c.pools))
	for _, p := range c.pools {
		pools = append(pools, p)
	}
	c.mu.Unlock()
	for _, p := range pools {
		p.closeIdle()
	}
}

// RoundTrip sends req to req.URL.Host and reads the answer's header.
func (c *Client) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return nil, errors.New("h1: a request body must be replayable (GetBody)")
	}
	ctx := req.Context()
	p := c.pool(req.URL.Host)
	for sent := 0; ; sent++ {
		pc, err := p.get(ctx)
		if err != nil {
			return nil, err
		}
		if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.GotConn != nil {
			trace.GotConn(httptrace.GotConnInfo{Conn: pc.conn, Reused: pc.reused})
		}
		out := req
		if sent > 0 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				pc.close()
				return nil, err
			}
			r := *req
			r.Body = body
			out = &r
		}
		resp, err := pc.roundTrip(ctx, out)
		if err == nil {
			resp.Request = req
			return resp, nil
		}
		if sent == 0 && pc.reused && ctx.Err() == nil && pc.nothingRead() && (pc.nothingWritten() || idempotent(req)) {
			// A kept-alive connection the server closed as it was
			// taken: net/http's Transport sends the request again on
			// another (shouldRetryRequest).
			continue
		}
		return nil, err
	}
}

// idempotent is net/http's Request.isReplayable test of the method.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}

// pool is the connections to one address.
type pool struct {
	c    *Client
	addr string

	mu         sync.Mutex
	idle       []*pconn // most recently used last
	waiters    []*waiter
	connecting int
}

type waiter struct {
	ch chan connResult // buffered: the pool never blocks handing over
}

type connResult struct {
	pc  *pconn
	err error
}

// get takes an idle connection, or waits for one: freed by another
// request or newly opened.
func (p *pool) get(ctx context.Context) (*pconn, error) {
	p.mu.Lock()
	for len(p.idle) > 0 {
		pc := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if pc.takeIdle() {
			p.mu.Unlock()
			if pc.br.Buffered() > 0 || peerGone(pc.conn) {
				pc.close()
				p.mu.Lock()
				continue
			}
			return pc, nil
		}
	}
	w := &waiter{ch: make(chan connResult, 1)}
	p.waiters = append(p.waiters, w)
	if len(p.waiters) > p.connecting {
		p.connecting++
		go p.connect()
	}
	p.mu.Unlock()
	select {
	case r := <-w.ch:
		return r.pc, r.err
	case <-ctx.Done():
		p.mu.Lock()
		if p.dropWaiter(w) {
			p.mu.Unlock()
			return nil, ctx.Err()
		}
		p.mu.Unlock()
		// Handed a connection as it gave up: it goes to the next.
		if r := <-w.ch; r.pc != nil {
			p.put(r.pc)
		}
		return nil, ctx.Err()
	}
}

func (p *pool) dropWaiter(w *waiter) bool {
	for i, x := range p.waiters {
		if x == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			return true
		}
	}
	return false
}

func (p *pool) connect() {
	conn, err := p.c.Dial(context.Background(), "tcp", p.addr)
	p.mu.Lock()
	p.connecting--
	if err != nil {
		// The requests waiting beyond what the other connects will
		// carry fail with it, oldest first.
		for len(p.waiters) > p.connecting {
			w := p.waiters[0]
			p.waiters = p.waiters[1:]
			w.ch <- connResult{err: err}
		}
		p.mu.Unlock()
		return
	}
	pc := &pconn{p: p, conn: conn}
	pc.read.r, pc.written.w = conn, conn
	pc.br = bufio.NewReaderSize(&pc.read, 4<<10)
	pc.bw = bufio.NewWriterSize(&pc.written, 4<<10)
	p.putLocked(pc)
	p.mu.Unlock()
}

// put gives back a connection that may carry another request.
func (p *pool) put(pc *pconn) {
	p.mu.Lock()
	p.putLocked(pc)
	p.mu.Unlock()
}

func (p *pool) putLocked(pc *pconn) {
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		w.ch <- connResult{pc: pc}
		return
	}
	pc.setIdle()
	p.idle = append(p.idle, pc)
}

func (p *pool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, pc := range idle {
		if pc.takeIdle() {
			pc.close()
		}
	}
}

// removeIdle takes a connection out of the idle list, when its idle
// timer ends it.
func (p *pool) removeIdle(pc *pconn) {
	p.mu.Lock()
	for i, x := range p.idle {
		if x == pc {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			break
		}
	}
	p.mu.Unlock()
}

// pconn is one connection of a pool.
type pconn struct {
	p       *pool
	conn    net.Conn
	read    countingReader // what this request's answer read
	written countingWriter // what this request wrote
	br      *bufio.Reader
	bw      *bufio.Writer
	reused  bool // it carried a request before this one

	mu        sync.Mutex
	idleNow   bool
	idleTimer *time.Timer
}

// countingReader counts what a request's answer read from the connection.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// countingWriter counts what a request wrote to the connection.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (pc *pconn) nothingRead() bool    { return pc.read.n == 0 && pc.br.Buffered() == 0 }
func (pc *pconn) nothingWritten() bool { return pc.written.n == 0 }

func (pc *pconn) setIdle() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.idleNow = true
	if d := pc.p.c.IdleTimeout; d > 0 {
		if pc.idleTimer == nil {
			pc.idleTimer = time.AfterFunc(d, pc.idleExpired)
		} else {
			pc.idleTimer.Reset(d)
		}
	}
}

// takeIdle claims an idle connection; false if its idle timeout took it.
func (pc *pconn) takeIdle() bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if !pc.idleNow {
		return false
	}
	pc.idleNow = false
	if pc.idleTimer != nil {
		pc.idleTimer.Stop()
	}
	pc.reused = true
	return true
}

func (pc *pconn) idleExpired() {
	pc.mu.Lock()
	idle := pc.idleNow
	pc.idleNow = false
	pc.mu.Unlock()
	if idle {
		pc.p.removeIdle(pc)
		pc.conn.Close()
	}
}

func (pc *pconn) close() { pc.conn.Close() }

// roundTrip writes req and reads its answer's header; the context's end
// interrupts either through the connection's deadline.
func (pc *pconn) roundTrip(ctx context.Context, req *http.Request) (*http.Response, error) {
	pc.read.n, pc.written.n = 0, 0
	stop := context.AfterFunc(ctx, func() { _ = pc.conn.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		pc.close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if err := req.Write(pc.bw); err != nil {
		return fail(err)
	}
	if err := pc.bw.Flush(); err != nil {
		return fail(err)
	}
	var resp *http.Response
	for {
		var err error
		resp, err = http.ReadResponse(pc.br, req)
		if err != nil {
			return fail(err)
		}
		// 1xx answers other than 101 come before the final one and are
		// skipped, as the Transport does.
		if resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	reuse := !resp.Close && !req.Close && resp.StatusCode != http.StatusSwitchingProtocols
	if resp.Body == http.NoBody {
		pc.end(stop, reuse)
		return resp, nil
	}
	resp.Body = &body{pc: pc, rc: resp.Body, ctx: ctx, stop: stop, reuse: reuse}
	return resp, nil
}

// end gives the connection back, or closes it, once its answer is read.
func (pc *pconn) end(stop func() bool, reuse bool) {
	if stop() && reuse {
		pc.p.put(pc)
		return
	}
	pc.close()
}

// body is an answer's body: at its end the connection goes back to the
// pool; closed before its end, the connection is closed.
type body struct {
	pc    *pconn
	rc    io.ReadCloser
	ctx   context.Context
	stop  func() bool
	reuse bool

	done atomic.Bool
}

// Read is not locked against Close: a Close from another goroutine ends
// a Read that waits, by closing the connection, as with net/http.
func (b *body) Read(p []byte) (int, error) {
	if b.done.Load() {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.rc.Read(p)
	if err == nil {
		return n, nil
	}
	reuse := err == io.EOF && b.reuse
	if b.done.CompareAndSwap(false, true) {
		b.pc.end(b.stop, reuse)
	}
	if err != io.EOF && b.ctx.Err() != nil {
		err = b.ctx.Err()
	}
	return n, err
}

func (b *body) Close() error {
	if b.done.CompareAndSwap(false, true) {
		b.pc.end(b.stop, false)
	}
	return nil
}
