package fakesvc

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/sim/registry"
)

// startTCP serves a TCP instance on a 127.0.0.1 listener and returns its address.
func startTCP(t *testing.T, cfg Config) string {
	t.Helper()
	cfg.TCP = true
	s, err := New(cfg)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tl := s.Listener(l)
	srv := &http.Server{Handler: s, ReadHeaderTimeout: time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(tl) }()
	t.Cleanup(func() { _ = srv.Close(); <-done; s.Close() })
	return l.Addr().String()
}

// exchange sends one line and reads everything the service answers.
func exchange(t *testing.T, addr, line string) ([]byte, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = io.WriteString(c, line+"\n")
	require.NoError(t, err)
	return io.ReadAll(c)
}

// The TCP echo answers a line with its Reply as one JSON line, after its
// latency, and closes.
func TestTCPEchoAnswersWithItsIdentity(t *testing.T) {
	addr := startTCP(t, Config{Service: "db", Version: "v2", Pod: "db-v2-0", Latency: registry.Latency{Mean: units.Duration(40 * time.Millisecond)}})
	start := time.Now()
	b, err := exchange(t, addr, "req-1")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 40*time.Millisecond, "the latency before the answer")
	var r Reply
	require.NoError(t, json.Unmarshal(b, &r), string(b))
	assert.Equal(t, Reply{Service: "db", Version: "v2", Pod: "db-v2-0", Namespace: "default", Code: 200, RequestID: "req-1"}, r)
	assert.Equal(t, byte('\n'), b[len(b)-1])
}

// An injected error closes the connection without an answer.
func TestTCPEchoErrorClosesUnanswered(t *testing.T) {
	addr := startTCP(t, Config{Service: "db", Version: "v1", ErrorRate: 1})
	b, _ := exchange(t, addr, "req-1")
	assert.Empty(t, b)
}

// A TCP call without a sidecar goes to a pod as Resolve picks it; through
// a sidecar it is a CONNECT naming the service's address and port; a
// connection closed unanswered fails the call.
func TestTCPCall(t *testing.T) {
	ok := startTCP(t, Config{Service: "db", Version: "v1", Pod: "db-v1-0"})
	bad := startTCP(t, Config{Service: "db", Version: "v1", Pod: "db-v1-1", ErrorRate: 1})

	direct, err := New(Config{Service: "order", Resolve: func(service string, port int) (string, error) {
		assert.Equal(t, "db", service)
		assert.Equal(t, 5432, port)
		return ok, nil
	}})
	require.NoError(t, err)
	defer direct.Close()
	r, code, err := direct.callTCP(context.Background(), Call{Service: "db", Port: 5432, Protocol: CallTCP}, http.Header{"X-Request-Id": {"id-7"}})
	require.NoError(t, err)
	assert.Equal(t, 200, code)
	assert.Equal(t, "db-v1-0", r.Pod)
	assert.Equal(t, "id-7", r.RequestID)

	// A CONNECT proxy standing in for the sidecar: it checks the target
	// and splices to the unanswering pod.
	targets := make(chan string, 1)
	proxy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer proxy.Close()
	go func() {
		c, err := proxy.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		targets <- req.Method + " " + req.Host
		up, err := net.Dial("tcp", bad)
		if err != nil {
			return
		}
		defer up.Close()
		_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() { _, _ = io.Copy(up, c) }()
		_, _ = io.Copy(c, up)
	}()
	via, err := New(Config{Service: "order", Proxy: proxy.Addr().String()})
	require.NoError(t, err)
	defer via.Close()
	r, code, err = via.callTCP(context.Background(), Call{Service: "db", Port: 5432, Protocol: CallTCP, Addr: "10.96.0.2"}, http.Header{})
	require.Error(t, err)
	assert.Zero(t, code)
	assert.Contains(t, r.Error, "connection closed without an answer")
	assert.Equal(t, "CONNECT 10.96.0.2:5432", <-targets)
}

// tcp:// calls parse and print back, the address optional.
func TestParseTCPCalls(t *testing.T) {
	cs, err := ParseCalls("tcp://db:5432@10.96.0.2,tcp://cache")
	require.NoError(t, err)
	require.Equal(t, []Call{{Service: "db", Port: 5432, Protocol: CallTCP, Addr: "10.96.0.2"}, {Service: "cache", Protocol: CallTCP}}, cs)
	assert.Equal(t, "tcp://db:5432@10.96.0.2", cs[0].String())
	_, err = ParseCalls("tcp://db:5432@db.local")
	assert.ErrorContains(t, err, "is not an IP address")
}
