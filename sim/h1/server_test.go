package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serve runs a Server for h on a loopback port until the test ends.
func serve(t *testing.T, h http.Handler, protos *http.Protocols) (*Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &Server{Handler: h, Protocols: protos, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(l)
	}()
	t.Cleanup(func() {
		_ = s.Close()
		<-done
	})
	return s, l.Addr().String()
}

// exchange sends raw requests on one connection and reads as many
// answers; it reports whether the server closed the connection after.
func exchange(t *testing.T, addr string, raw string, methods ...string) ([]*http.Response, []string, bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, raw)
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	br := bufio.NewReader(c)
	var resps []*http.Response
	var bodies []string
	for _, m := range methods {
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			b = append(b, " ERROR: "+err.Error()...)
		}
		resps, bodies = append(resps, resp), append(bodies, string(b))
	}
	// A connection kept open answers one more request.
	_, err = io.WriteString(c, "GET /probe HTTP/1.1\r\nHost: a\r\n\r\n")
	if err != nil {
		return resps, bodies, true
	}
	probe, err := http.ReadResponse(br, nil)
	if err != nil {
		return resps, bodies, true
	}
	probe.Body.Close()
	return resps, bodies, false
}

// The answers must be net/http's own, framing and all: each case goes to
// both servers, and the status, header (Date aside), body, trailers and
// whether the connection stays open must agree.
func TestAnswersAsNetHTTPDoes(t *testing.T) {
	big := strings.Repeat("x", 3000)
	cases := []struct {
		name    string
		raw     string
		methods []string
		h       http.HandlerFunc
	}{
		{"small body gets a length and a sniffed type", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", []string{"GET"},
			func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello") }},
		{"large body is chunked", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", []string{"GET"},
			func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, big) }},
		{"flushed body is chunked", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", []string{"GET"},
			func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "a")
				w.(http.Flusher).Flush()
				_, _ = io.WriteString(w, "b")
			}},
		{"declared length", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", []string{"GET"},
			func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "3000")
				w.Header().Set("Content-Type", "application/x-thing")
				_, _ = io.WriteString(w, big)
			}},
		{"short of its declared length closes", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", []string{"GET"},
			func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "10")
				_, _ = io.WriteString(w, "abc")
			}},
		{"trailers by prefix and declared", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", []string{"GET"},
			func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "X-Declared")
				w.WriteHeader(http.StatusOK)
				_, _ = io.WriteString(w, "body")
				w.Header().Set("X-Declared", "1")
				w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
			}},
		{"header changes after WriteHeader are not sent", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", []string{"GET"},
			func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Before", "1")
				w.WriteHeader(http.StatusAccepted)
				w.Header().Set("X-After", "1")
			}},
		{"no content", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", []string{"GET"},
			func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }},
		{"not modified drops the type", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", []string{"GET"},
			func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusNotModified)
			}},
		{"HEAD gets the length it would have", "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", []string{"HEAD"},
			func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello") }},
		{"keep-alive: two requests on one connection",
			"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody", []string{"GET", "POST"},
			func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				_, _ = io.WriteString(w, r.URL.Path+":"+string(b))
			}},
		{"a body left unread is drained", "POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbodyGET /2 HTTP/1.1\r\nHost: a\r\n\r\n", []string{"POST", "GET"},
			func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.URL.Path) }},
		{"a chunked request", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n", []string{"POST"},
			func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				_, _ = w.Write(b)
			}},
		{"Connection: close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", []string{"GET"},
			func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "bye") }},
		{"HTTP/1.0 closes", "GET / HTTP/1.0\r\n\r\n", []string{"GET"},
			func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "old") }},
		{"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n", []string{"GET", "GET"},
			func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "old") }},
		{"handler asks to close", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", []string{"GET"},
			func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Connection", "close") }},
		{"identity transfer encoding", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", []string{"GET"},
			func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Transfer-Encoding", "identity")
				_, _ = io.WriteString(w, big)
			}},
		{"OPTIONS * is the server's", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", []string{"OPTIONS"},
			func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }},
		{"missing Host", "GET / HTTP/1.1\r\n\r\n", []string{"GET"}, func(http.ResponseWriter, *http.Request) {}},
		{"unsupported transfer encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", []string{"POST"}, func(http.ResponseWriter, *http.Request) {}},
		{"unknown expectation", "POST / HTTP/1.1\r\nHost: a\r\nExpect: tea\r\nContent-Length: 1\r\n\r\nx", []string{"POST"}, func(http.ResponseWriter, *http.Request) {}},
		{"header too large", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("y", http.DefaultMaxHeaderBytes+5000) + "\r\n\r\n", []string{"GET"}, func(http.ResponseWriter, *http.Request) {}},
		{"HTTP/2 over HTTP/1 framing", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", []string{"GET"}, func(http.ResponseWriter, *http.Request) {}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref := httptest.NewServer(tc.h)
			defer ref.Close()
			_, addr := serve(t, tc.h, nil)
			want, wantBodies, wantClosed := exchange(t, ref.Listener.Addr().String(), tc.raw, tc.methods...)
			got, gotBodies, gotClosed := exchange(t, addr, tc.raw, tc.methods...)
			for i := range want {
				assert.Equal(t, want[i].Status, got[i].Status)
				assert.Equal(t, fields(want[i].Header), fields(got[i].Header))
				assert.Equal(t, want[i].TransferEncoding, got[i].TransferEncoding)
				assert.Equal(t, want[i].ContentLength, got[i].ContentLength)
				assert.Equal(t, wantBodies[i], gotBodies[i])
				assert.Equal(t, want[i].Trailer, got[i].Trailer)
				assert.Equal(t, want[i].Close, got[i].Close, "Connection: close")
			}
			assert.Equal(t, wantClosed, gotClosed, "the connection closed after")
		})
	}
}

// fields is a header without its Date, as sorted lines.
func fields(h http.Header) []string {
	var out []string
	for k, vv := range h {
		if k == "Date" {
			continue
		}
		for _, v := range vv {
			out = append(out, k+": "+v)
		}
	}
	sort.Strings(out)
	return out
}

// A client that goes away mid-request cancels the request's context, as
// net/http's background read does, though this server looks only once a
// request has run watchAfter.
func TestClientGoneCancelsTheRequest(t *testing.T) {
	started, canceled := make(chan struct{}), make(chan struct{})
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			close(canceled)
		case <-time.After(10 * time.Second):
		}
	}), nil)
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	require.NoError(t, err)
	<-started
	require.NoError(t, c.Close())
	select {
	case <-canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the request's context was not canceled when its client left")
	}
}

// A pipelined request that arrives while the first is slow is not taken
// for the client leaving: both are answered, in order.
func TestSlowRequestKeepsThePipelinedNext(t *testing.T) {
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * watchAfter):
			}
		}
		_, _ = io.WriteString(w, r.URL.Path)
	}), nil)
	_, bodies, _ := exchange(t, addr, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "GET")
	assert.Equal(t, []string{"/slow", "/next"}, bodies)
}

// Expect: 100-continue gets its interim answer when the handler first
// reads the body, not before.
func TestExpectContinue(t *testing.T) {
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	}), nil)
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "HTTP/1.1 100 Continue\r\n", line)
	_, err = br.ReadString('\n')
	require.NoError(t, err)
	_, err = io.WriteString(c, "body")
	require.NoError(t, err)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	assert.Equal(t, "body", string(b))
}

// HTTP/2 goes to net/http's server: by the preface in cleartext, and by
// ALPN over TLS, where HTTP/1.1 stays here with the TLS state on the request.
func TestHTTP2IsHandedToNetHTTP(t *testing.T) {
	protos := &http.Protocols{}
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	protos.SetUnencryptedHTTP2(true)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
		if r.TLS != nil {
			_, _ = io.WriteString(w, " tls")
		}
	})
	_, addr := serve(t, h, protos)
	h2c := &http.Protocols{}
	h2c.SetUnencryptedHTTP2(true)
	get := func(c *http.Client, url string) string {
		resp, err := c.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	assert.Equal(t, "HTTP/2.0", get(&http.Client{Transport: &http.Transport{Protocols: h2c}}, "http://"+addr))
	assert.Equal(t, "HTTP/1.1", get(&http.Client{}, "http://"+addr))

	cert := httptest.NewTLSServer(h) // for its certificate
	cert.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tlsCfg := &tls.Config{Certificates: cert.TLS.Certificates, NextProtos: []string{"h2", "http/1.1"}}
	s := &Server{Handler: h, Protocols: protos}
	go func() { _ = s.Serve(tls.NewListener(l, tlsCfg)) }()
	defer s.Close()
	roots := cert.Client().Transport.(*http.Transport).TLSClientConfig
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: roots.Clone(), ForceAttemptHTTP2: true}}
	assert.Equal(t, "HTTP/2.0 tls", get(h2, "https://"+l.Addr().String()))
	h1only := &http.Client{Transport: &http.Transport{TLSClientConfig: roots.Clone()}}
	assert.Equal(t, "HTTP/1.1 tls", get(h1only, "https://"+l.Addr().String()))
}

// Hijack hands over the connection with what the client sent after the
// request still buffered.
func TestHijack(t *testing.T) {
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_ = brw.Flush()
		_, _ = io.Copy(c, brw)
	}), nil)
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nping")
	require.NoError(t, err)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	got := make([]byte, 4)
	_, err = io.ReadFull(br, got)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(got))
}

// Shutdown closes idle connections at once and waits for a request in
// flight, whose answer goes out whole and closes its connection.
func TestShutdownWaitsForRequestsInFlight(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	s, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		_, _ = io.WriteString(w, "done")
	}), nil)
	idle, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer idle.Close()
	_, _, _ = exchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET")
	_, err = io.WriteString(idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	require.NoError(t, err)
	idleResp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	require.NoError(t, err)
	idleResp.Body.Close()

	type result struct {
		bodies []string
		closed bool
	}
	slow := make(chan result)
	go func() {
		_, bodies, closed := exchange(t, addr, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n", "GET")
		slow <- result{bodies, closed}
	}()
	<-started
	shut := make(chan error)
	go func() { shut <- s.Shutdown(context.Background()) }()
	require.NoError(t, idle.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = idle.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the idle connection is closed")
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned with a request in flight: %v", err)
	default:
	}
	close(release)
	r := <-slow
	assert.Equal(t, []string{"done"}, r.bodies)
	assert.True(t, r.closed)
	require.NoError(t, <-shut)
}

// SetKeepAlivesEnabled(false) closes each connection after its answer,
// saying so, as a draining proxy does.
func TestKeepAlivesDisabled(t *testing.T) {
	s, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
	s.SetKeepAlivesEnabled(false)
	resps, _, closed := exchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET")
	assert.True(t, resps[0].Close, "Connection: close")
	assert.True(t, closed)
}

// emfileListener fails its first Accept as a process out of descriptors.
type emfileListener struct {
	net.Listener
	failed bool
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if !l.failed {
		l.failed = true
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// Out of descriptors, the server waits and accepts again, as net/http's
// does, rather than stop serving.
func TestAcceptRetriesWhenOutOfDescriptors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })}
	served := make(chan error, 1)
	go func() { served <- s.Serve(&emfileListener{Listener: l}) }()
	defer s.Close()
	_, bodies, _ := exchange(t, l.Addr().String(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET")
	assert.Equal(t, []string{"ok"}, bodies)
	require.NoError(t, s.Close())
	assert.ErrorIs(t, <-served, ErrServerClosed)
}
