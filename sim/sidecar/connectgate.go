package sidecar

import (
	"context"
	"errors"
	"net"
	"net/http/httptrace"
	"sync"
)

// connectGate gives a transport Envoy's rule for opening connections, which
// Go's Transport does not have. Envoy opens a new upstream connection only
// when the requests waiting for one outnumber what the connections being
// opened will carry (ConnPoolImplBase::shouldCreateNewConnection,
// source/common/conn_pool/conn_pool_base.cc: pending_streams_.size() >
// connecting_stream_capacity_), and a request that gives up leaves its
// connection to finish opening for the next one (the router cancels with
// CancelPolicy::Default, envoy/common/conn_pool.h: "canceled streams allow a
// pending connection to complete and become available for a future
// stream"). Go's Transport starts a dial for every request that finds no
// idle connection and lets it run on after the request is gone: across a
// 3 s partition at 200 requests/s, a sidecar had 550 connects in SYN
// back-off, which all completed, TLS handshakes and all, the moment the
// partition healed, and stalled every pod for a second.
//
// The gate sits in the transport's dial function. A dial for a request
// that is still waiting takes over a connect whose own request has gone (or,
// over HTTP/2, any connect: one connection carries every stream) and waits
// for it; the connection it opens goes to the transport's idle pool, which
// hands it to the first request waiting there. Only when no connect is free
// does the dial open a connection of its own.
type connectGate struct {
	// multiplexed: a connection carries any number of requests (HTTP/2).
	multiplexed bool

	mu         sync.Mutex
	connecting map[string][]*connect // by address
}

// connect is one connection being opened.
type connect struct {
	owner *connWaiter // the request it is opened for now
	done  chan struct{}
	err   error // set before done is closed
}

// connWaiter is a request waiting for a connection: released once it has
// one or has given up. It is also the request's context, which answers
// connWaiterKey with the waiter, so that waiting costs no context of its
// own; its done channel is made only when a dial waits on it.
type connWaiter struct {
	context.Context
	mu       sync.Mutex
	released bool
	done     chan struct{}
	trace    httptrace.ClientTrace
}

func (w *connWaiter) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.released {
		w.released = true
		if w.done != nil {
			close(w.done)
		}
	}
}

func (w *connWaiter) waiting() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.released
}

// ended is closed once the waiter is released.
func (w *connWaiter) ended() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done == nil {
		w.done = make(chan struct{})
		if w.released {
			close(w.done)
		}
	}
	return w.done
}

func (w *connWaiter) Value(key any) any {
	if key == (connWaiterKey{}) {
		return w
	}
	return w.Context.Value(key)
}

type connWaiterKey struct{}

// wait marks ctx's request as waiting for a connection until the
// transport gives it one (httptrace's GotConn) or release is called, and
// returns the context to send the request with.
func (w *connWaiter) wait(ctx context.Context) context.Context {
	w.Context = ctx
	w.trace.GotConn = func(httptrace.GotConnInfo) { w.release() }
	return httptrace.WithClientTrace(w, &w.trace)
}

// errHandedOver ends a dial whose request got a connection another way;
// the transport drops it, as it drops any dial whose request is served.
var errHandedOver = errors.New("sidecar: the request got a connection opened for another")

// dial opens a connection to addr with open, or waits for one being opened.
// The transport gives it the request's context without its cancellation
// (it keeps dialing after the request is gone), so the request's own end
// is read from its connWaiter.
func (g *connectGate) dial(ctx context.Context, network, addr string, open func(context.Context, string, string) (net.Conn, error)) (net.Conn, error) {
	w, _ := ctx.Value(connWaiterKey{}).(*connWaiter)
	if w == nil {
		return open(ctx, network, addr)
	}
	for {
		if !w.waiting() {
			// The transport starts a dial before it has looked for an idle
			// connection to hand over; this request got one meanwhile.
			return nil, errHandedOver
		}
		g.mu.Lock()
		c := g.free(addr)
		if c == nil {
			c = &connect{owner: w, done: make(chan struct{})}
			if g.connecting == nil {
				g.connecting = map[string][]*connect{}
			}
			g.connecting[addr] = append(g.connecting[addr], c)
			g.mu.Unlock()
			conn, err := open(ctx, network, addr)
			g.finish(addr, c, err)
			return conn, err
		}
		c.owner = w
		g.mu.Unlock()
		select {
		case <-w.ended():
			return nil, errHandedOver
		case <-c.done:
			if c.err != nil {
				// Envoy fails the requests pending on a pool whose
				// connect failed (ConnPoolImplBase::onConnectionEvent,
				// purgePendingStreams) rather than connect again.
				return nil, c.err
			}
			// Its connection went to the pool's first waiter, maybe not
			// this request: look again.
		}
	}
}

// free returns a connect to addr a waiting request may take over; g.mu is held.
func (g *connectGate) free(addr string) *connect {
	for _, c := range g.connecting[addr] {
		if g.multiplexed || !c.owner.waiting() {
			return c
		}
	}
	return nil
}

func (g *connectGate) finish(addr string, c *connect, err error) {
	g.mu.Lock()
	cs := g.connecting[addr]
	for i, x := range cs {
		if x == c {
			cs = append(cs[:i:i], cs[i+1:]...)
			break
		}
	}
	if len(cs) == 0 {
		delete(g.connecting, addr)
	} else {
		g.connecting[addr] = cs
	}
	c.err = err
	g.mu.Unlock()
	close(c.done)
}
