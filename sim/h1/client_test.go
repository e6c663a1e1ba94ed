package h1

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// connCounter is a net/http test server that counts the connections it
// accepted and tells when one closes.
type connCounter struct {
	*httptest.Server
	opened atomic.Int64
	closed chan struct{}
}

func newConnCounter(t *testing.T, h http.HandlerFunc) *connCounter {
	cc := &connCounter{closed: make(chan struct{}, 100)}
	cc.Server = httptest.NewUnstartedServer(h)
	cc.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			cc.opened.Add(1)
		case http.StateClosed:
			cc.closed <- struct{}{}
		}
	}
	cc.Start()
	t.Cleanup(cc.Close)
	return cc
}

func dialer() func(context.Context, string, string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext
}

func get(t *testing.T, c *Client, ctx context.Context, url string) (string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := c.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// A connection whose answer was read to its end carries the next request.
func TestClientReusesAConnection(t *testing.T) {
	srv := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.URL.Path) })
	c := &Client{Dial: dialer()}
	for _, p := range []string{"/a", "/b", "/c"} {
		body, err := get(t, c, context.Background(), srv.URL+p)
		require.NoError(t, err)
		assert.Equal(t, p, body)
	}
	assert.Equal(t, int64(1), srv.opened.Load())
}

// A request body goes out with its length, and again on a new connection
// when the server closed the kept-alive one before it answered.
func TestClientResendsOnAConnectionTheServerClosed(t *testing.T) {
	var served atomic.Int64
	srv := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	})
	c := &Client{Dial: dialer()}
	_, err := get(t, c, context.Background(), srv.URL)
	require.NoError(t, err)
	srv.CloseClientConnections()
	<-srv.closed
	req, err := http.NewRequest(http.MethodPut, srv.URL, strings.NewReader("payload"))
	require.NoError(t, err)
	resp, err := c.RoundTrip(req)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "payload", string(b))
	assert.Equal(t, int64(2), served.Load(), "each request served once")
	assert.Equal(t, int64(2), srv.opened.Load())
}

// Envoy's rule: a connect starts only for requests beyond those the
// connects under way will carry, and a request that gives up leaves its
// connect to finish for the next, which gets its connection.
func TestClientLeavesAConnectForTheNextRequest(t *testing.T) {
	srv := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	release := make(chan struct{})
	var dials atomic.Int64
	c := &Client{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		<-release
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	impatient, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error)
	go func() {
		_, err := get(t, c, impatient, srv.URL)
		gaveUp <- err
	}()
	for dials.Load() == 0 {
		time.Sleep(time.Millisecond) // the first connect has started
	}
	cancel()
	assert.ErrorIs(t, <-gaveUp, context.Canceled)
	next := make(chan string)
	go func() {
		body, err := get(t, c, context.Background(), srv.URL)
		assert.NoError(t, err)
		next <- body
	}()
	close(release)
	assert.Equal(t, "ok", <-next)
	assert.Equal(t, int64(1), dials.Load(), "the second request took over the first one's connect")
}

// A failed connect fails the request waiting on it with the dial's error,
// which the sidecar reads as a connect failure.
func TestClientFailedConnectFailsItsRequest(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	c := &Client{Dial: dialer()}
	_, err = get(t, c, context.Background(), "http://"+addr)
	var op *net.OpError
	require.ErrorAs(t, err, &op)
	assert.Equal(t, "dial", op.Op)
}

// The request's context bounds the wait for the answer and the reading
// of its body.
func TestClientContextEndsTheExchange(t *testing.T) {
	srv := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			_, _ = io.WriteString(w, "first")
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	})
	c := &Client{Dial: dialer()}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := get(t, c, ctx, srv.URL+"/hang")
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	ctx, cancel = context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/stream", nil)
	require.NoError(t, err)
	resp, err := c.RoundTrip(req)
	require.NoError(t, err)
	buf := make([]byte, 5)
	_, err = io.ReadFull(resp.Body, buf)
	require.NoError(t, err)
	cancel()
	_, err = resp.Body.Read(buf)
	assert.ErrorIs(t, err, context.Canceled)
}

// A connection idle for IdleTimeout is closed.
func TestClientClosesIdleConnections(t *testing.T) {
	srv := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {})
	c := &Client{Dial: dialer(), IdleTimeout: 20 * time.Millisecond}
	_, err := get(t, c, context.Background(), srv.URL)
	require.NoError(t, err)
	select {
	case <-srv.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the idle connection was not closed")
	}
}

// A body that is not in memory is refused: the client writes a request
// whole before it reads the answer.
func TestClientRefusesABodyItCannotReplay(t *testing.T) {
	c := &Client{Dial: dialer()}
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:1", io.NopCloser(strings.NewReader("x")))
	require.NoError(t, err)
	req.GetBody = nil
	_, err = c.RoundTrip(req)
	require.Error(t, err)
	assert.False(t, errors.Is(err, context.Canceled))
}
