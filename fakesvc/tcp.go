package fakesvc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Raw TCP services (Config.TCP) and calls of protocol tcp.
//
// The echo protocol, one exchange per connection: the caller writes one
// line (the request id, at most 4 KiB, then "\n"); the service sleeps its
// sampled latency, then answers one line, its Reply as JSON (service,
// version, pod, namespace, code 200, the request id), and closes. An
// injected error (ErrorRate) answers nothing: the connection is closed
// (reset where the socket allows it) after the latency, which the caller
// sees as a failed call. ErrorStatus does not apply to TCP.

// CallTCP is Call.Protocol for a raw TCP call.
const CallTCP = "tcp"

const (
	// maxTCPLine bounds the request line a TCP service reads.
	maxTCPLine = 4 << 10
	// tcpReadTimeout bounds how long a TCP service waits for the line.
	tcpReadTimeout = 30 * time.Second
)

// tcpListener serves the TCP echo on every connection of l; Accept gives
// the HTTP server nothing, so that the app's one listener serves a TCP
// port as a whole (Listener).
type tcpListener struct {
	net.Listener
	s    *Server
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

func (s *Server) tcpListener(l net.Listener) net.Listener {
	t := &tcpListener{Listener: l, s: s, done: make(chan struct{})}
	t.wg.Add(1)
	go t.acceptLoop()
	return t
}

func (t *tcpListener) acceptLoop() {
	defer t.wg.Done()
	for {
		c, err := t.Listener.Accept()
		if err != nil {
			t.Close()
			return
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.s.serveTCP(t.done, c)
		}()
	}
}

func (t *tcpListener) Accept() (net.Conn, error) {
	<-t.done
	return nil, net.ErrClosed
}

func (t *tcpListener) Close() error {
	var err error
	t.once.Do(func() {
		close(t.done)
		err = t.Listener.Close()
	})
	return err
}

// serveTCP answers one connection as the echo protocol says.
func (s *Server) serveTCP(done <-chan struct{}, c net.Conn) {
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-done: // the pod is killed: its connections end
			c.Close()
		case <-ctx.Done():
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(tcpReadTimeout))
	line, err := bufio.NewReaderSize(io.LimitReader(c, maxTCPLine), maxTCPLine).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	st := s.settings.Load()
	delay, fail := s.draw(st)
	if !pause(ctx, delay) {
		return
	}
	if fail {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // an RST, where the socket has one
		}
		return
	}
	reply := Reply{Service: s.service, Version: s.version, Pod: s.pod, Namespace: s.namespace, Code: http.StatusOK, RequestID: strings.TrimSpace(line)}
	body, _ := json.Marshal(reply)
	_, _ = c.Write(append(body, '\n'))
}

// callTCP makes one TCP call: a connection to the service (through the
// sidecar, as a CONNECT tunnel to the service's address; without one, to
// a pod as a ClusterIP would pick it), the request id as the line, and
// the answer's Reply. A connection closed without an answer fails the call.
func (s *Server) callTCP(ctx context.Context, c Call, hdr http.Header) (Reply, int, error) {
	fail := func(err error) (Reply, int, error) {
		return Reply{Service: c.Service, Error: err.Error()}, 0, err
	}
	conn, err := s.dialTCP(ctx, c)
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if _, err := io.WriteString(conn, hdr.Get("X-Request-Id")+"\n"); err != nil {
		return fail(err)
	}
	line, err := bufio.NewReaderSize(io.LimitReader(conn, maxBody), 4096).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return fail(fmt.Errorf("connection closed without an answer: %w", err))
	}
	var sub Reply
	if json.Unmarshal([]byte(line), &sub) != nil || sub.Service == "" {
		return Reply{Service: c.Service, Code: http.StatusBadGateway, Error: fmt.Sprintf("an answer that is not the TCP echo's: %q", snippet([]byte(line)))}, http.StatusBadGateway, nil
	}
	if sub.Code == 0 {
		sub.Code = http.StatusOK
	}
	return sub, sub.Code, nil
}

// dialTCP connects to a TCP service. Through a sidecar: an HTTP/1.1
// CONNECT to its capture listener naming the service's address (Call.Addr,
// its VIP as cluster DNS answers it) and port, which the sidecar hands to
// its outbound TCP listener for that destination, as iptables and
// original_dst would (sim/sidecar/tcpconnect.go).
func (s *Server) dialTCP(ctx context.Context, c Call) (net.Conn, error) {
	switch {
	case s.proxy != "":
		network, addr := "tcp", s.proxy
		if p, ok := strings.CutPrefix(s.proxy, "unix:"); ok {
			network, addr = "unix", p
		}
		if c.Addr == "" {
			return nil, fmt.Errorf("tcp call %s: the service's address is unknown", c.Service)
		}
		conn, err := s.dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if d, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(d)
		}
		target := net.JoinHostPort(c.Addr, strconv.Itoa(c.Port))
		if _, err := fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target); err != nil {
			conn.Close()
			return nil, err
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("CONNECT %s: %w", target, err)
		}
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			conn.Close()
			return nil, fmt.Errorf("CONNECT %s: the sidecar answered %d %q", target, resp.StatusCode, strings.TrimSpace(string(body)))
		}
		return &bufConn{Conn: conn, r: br}, nil
	case s.resolve != nil:
		to, err := s.resolve(c.Service, c.Port)
		if err != nil {
			return nil, err
		}
		return s.dialer.DialContext(ctx, "tcp", to)
	}
	return s.dialer.DialContext(ctx, "tcp", net.JoinHostPort(c.Service, strconv.Itoa(c.Port)))
}

// bufConn reads what the CONNECT answer's reader already holds first.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(b []byte) (int, error) { return c.r.Read(b) }
