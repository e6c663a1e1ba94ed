package fakesvc

import (
	"bufio"
	"bytes"
	"net"
	"sync"
	"time"
)

// Listener returns l with the gRPC calls taken out: a connection that opens
// with the HTTP/2 preface goes to the instance's gRPC server, grpc-go's own
// HTTP/2 transport (which answers a failing call trailers-only, as every
// grpc-go server does: the status in the response headers, where Envoy's
// router judges retry_on's gRPC conditions), and every other connection is
// returned by Accept for the HTTP server. Closing it closes l and stops
// the gRPC server (GracefulStop is not waited for: a killed pod's calls end).
//
// A gRPC call that reaches ServeHTTP instead (HTTP/2 on a server that was
// not given this listener) is still served, by grpc-go's ServeHTTP
// transport, which always sends the status as trailers.
//
// A TCP instance (Config.TCP) serves every connection with the TCP echo
// instead, and the returned listener's Accept gives nothing until closed.
func (s *Server) Listener(l net.Listener) net.Listener {
	if s.tcp {
		return s.tcpListener(l)
	}
	gl := &queueListener{addr: l.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	w := &grpcSplit{Listener: l, s: s, grpcL: gl, http: make(chan net.Conn), done: make(chan struct{})}
	go func() { _ = s.grpc.Serve(gl) }()
	go w.acceptLoop()
	return w
}

var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// grpcSplit sorts connections by their first bytes.
type grpcSplit struct {
	net.Listener
	s     *Server
	grpcL *queueListener
	http  chan net.Conn
	done  chan struct{}
	once  sync.Once
	err   error
}

func (w *grpcSplit) acceptLoop() {
	for {
		c, err := w.Listener.Accept()
		if err != nil {
			w.err = err
			w.Close()
			return
		}
		go w.sort(c)
	}
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func (w *grpcSplit) sort(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(c, 4096)
	head, _ := br.Peek(len(h2Preface))
	_ = c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br}
	to := w.http
	if bytes.Equal(head, h2Preface) {
		to = w.grpcL.conns
	}
	select {
	case to <- pc:
	case <-w.done:
		c.Close()
	}
}

func (w *grpcSplit) Accept() (net.Conn, error) {
	select {
	case c := <-w.http:
		return c, nil
	case <-w.done:
		return nil, net.ErrClosed
	}
}

func (w *grpcSplit) Close() error {
	var err error
	w.once.Do(func() {
		close(w.done)
		err = w.Listener.Close()
		w.grpcL.Close()
		w.s.grpc.Stop()
	})
	return err
}

// queueListener is a net.Listener fed connections from a channel.
type queueListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (q *queueListener) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *queueListener) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *queueListener) Addr() net.Addr { return q.addr }
