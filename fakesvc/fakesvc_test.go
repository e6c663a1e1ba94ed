package fakesvc

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/sim/registry"
)

// start serves a new fakesvc on a 127.0.0.1 httptest listener.
func start(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts
}

// hostPort splits an httptest URL into host and port.
func hostPort(t *testing.T, rawURL string) (string, int) {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	p, err := strconv.Atoi(u.Port())
	require.NoError(t, err)
	return u.Hostname(), p
}

// post sends a POST with the given headers and decodes the Reply.
func post(t *testing.T, c *http.Client, rawURL string, hdr map[string]string) (*http.Response, Reply) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, nil)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var r Reply
	require.NoError(t, json.Unmarshal(body, &r), "body %q", body)
	return resp, r
}

func TestReplyEchoesIdentityAndPeer(t *testing.T) {
	_, ts := start(t, Config{Service: "payment", Version: "v2", Pod: "payment-v2-0", Namespace: "shop"})
	xfcc := `By=spiffe://cluster.local/ns/default/sa/payment;Hash=abc;Subject="";URI=spiffe://cluster.local/ns/default/sa/order`
	resp, r := post(t, ts.Client(), ts.URL+"/pay", map[string]string{
		"x-forwarded-client-cert": xfcc,
		"x-envoy-attempt-count":   "2",
		"x-request-id":            "rid-1",
	})

	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Equal(t, "payment", resp.Header.Get("x-fakesvc-service"))
	assert.Equal(t, "v2", resp.Header.Get("x-fakesvc-version"))
	assert.Equal(t, "payment-v2-0", resp.Header.Get("x-fakesvc-pod"))
	assert.Equal(t, Reply{
		Service: "payment", Version: "v2", Pod: "payment-v2-0", Namespace: "shop",
		Peer: "spiffe://cluster.local/ns/default/sa/order", Code: 200, Attempt: "2", RequestID: "rid-1",
	}, r)
}

func TestReplyWithoutXFCCHasNoPeerAndDefaultNamespace(t *testing.T) {
	_, ts := start(t, Config{Service: "order", Version: "v1", Pod: "order-0"})
	_, r := post(t, ts.Client(), ts.URL+"/orders", nil)
	assert.Empty(t, r.Peer)
	assert.Equal(t, "default", r.Namespace)
	assert.Equal(t, 200, r.Code)
}

func TestPeerFromXFCC(t *testing.T) {
	for name, tc := range map[string]struct {
		in   []string
		want string
	}{
		"none":          {nil, ""},
		"no uri":        {[]string{`By=spiffe://a;Hash=abc`}, ""},
		"quoted uri":    {[]string{`Hash=abc;URI="spiffe://cluster.local/ns/x/sa/y"`}, "spiffe://cluster.local/ns/x/sa/y"},
		"lowercase key": {[]string{`uri=spiffe://a/b`}, "spiffe://a/b"},
		"quoted commas": {[]string{`By=spiffe://p;Subject="CN=a,O=b;c";URI=spiffe://q`}, "spiffe://q"},
		"last element wins": {
			[]string{`By=spiffe://gw;URI=spiffe://client`, `By=spiffe://payment;URI=spiffe://order`},
			"spiffe://order",
		},
		"last element in one value": {
			[]string{`By=spiffe://gw;URI=spiffe://client,By=spiffe://payment;URI=spiffe://order`},
			"spiffe://order",
		},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, peerFromXFCC(tc.in))
		})
	}
}

func TestHealthz(t *testing.T) {
	_, ts := start(t, Config{
		Service: "payment", Version: "v1", Pod: "p",
		Latency:   registry.Latency{Mean: units.Duration(time.Hour)},
		ErrorRate: 1,
	})
	resp, err := ts.Client().Get(ts.URL + "/healthz")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok", string(body))
	assert.Equal(t, "payment", resp.Header.Get("x-fakesvc-service"))
}

func TestErrorRate(t *testing.T) {
	t.Run("always", func(t *testing.T) {
		_, ts := start(t, Config{Service: "payment", ErrorRate: 1, ErrorStatus: 500})
		for range 50 {
			resp, r := post(t, ts.Client(), ts.URL, nil)
			require.Equal(t, 500, resp.StatusCode)
			require.Equal(t, 500, r.Code)
			require.NotEmpty(t, r.Error)
		}
	})
	t.Run("never", func(t *testing.T) {
		_, ts := start(t, Config{Service: "payment", ErrorRate: 0, ErrorStatus: 500})
		for range 200 {
			resp, _ := post(t, ts.Client(), ts.URL, nil)
			require.Equal(t, 200, resp.StatusCode)
		}
	})
	t.Run("default status", func(t *testing.T) {
		_, ts := start(t, Config{Service: "payment", ErrorRate: 1})
		resp, r := post(t, ts.Client(), ts.URL, nil)
		assert.Equal(t, 503, resp.StatusCode)
		assert.Equal(t, 503, r.Code)
	})
	t.Run("share", func(t *testing.T) {
		_, ts := start(t, Config{Service: "payment", ErrorRate: 0.3, ErrorStatus: 503, Seed: 42})
		const n = 2000
		failed := 0
		for range n {
			resp, _ := post(t, ts.Client(), ts.URL, nil)
			switch resp.StatusCode {
			case 503:
				failed++
			case 200:
			default:
				t.Fatalf("unexpected status %d", resp.StatusCode)
			}
		}
		share := float64(failed) / n
		assert.GreaterOrEqual(t, share, 0.25)
		assert.LessOrEqual(t, share, 0.35)
	})
}

func TestInjectedErrorMakesNoCalls(t *testing.T) {
	var mu sync.Mutex
	hits := 0
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	t.Cleanup(down.Close)
	host, port := hostPort(t, down.URL)
	_, ts := start(t, Config{Service: "order", ErrorRate: 1, Calls: []Call{{Service: host, Port: port}}})
	resp, r := post(t, ts.Client(), ts.URL, nil)
	assert.Equal(t, 503, resp.StatusCode)
	assert.Empty(t, r.Calls)
	mu.Lock()
	defer mu.Unlock()
	assert.Zero(t, hits)
}

// forwardProxy is a tiny HTTP forward proxy that records what it received and
// sends every request to backend, as a sidecar routing by Host would.
type forwardProxy struct {
	backend *url.URL
	mu      sync.Mutex
	hosts   []string
	urls    []string
	headers []http.Header
	methods []string
}

func (p *forwardProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.hosts = append(p.hosts, r.Host)
	p.urls = append(p.urls, r.URL.String())
	p.headers = append(p.headers, r.Header.Clone())
	p.methods = append(p.methods, r.Method)
	p.mu.Unlock()

	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.backend.String()+r.URL.Path, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	out.Header.Set("x-forwarded-client-cert", "By=spiffe://cluster.local/ns/default/sa/payment;URI=spiffe://cluster.local/ns/default/sa/order")
	tr := &http.Transport{} // no Proxy: straight to the backend
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// throughProxy starts payment, a forward proxy to it, and order, which
// calls payment through the proxy.
func throughProxy(t *testing.T) (order *httptest.Server, fp *forwardProxy) {
	t.Helper()
	_, payment := start(t, Config{Service: "payment", Version: "v1", Pod: "payment-v1-0"})
	bu, err := url.Parse(payment.URL)
	require.NoError(t, err)
	fp = &forwardProxy{backend: bu}
	proxy := httptest.NewServer(fp)
	t.Cleanup(proxy.Close)
	_, order = start(t, Config{
		Service: "order", Version: "v1", Pod: "order-v1-0",
		Calls: []Call{{Service: "payment", Path: "/pay"}},
		Proxy: proxy.Listener.Addr().String(),
	})
	return order, fp
}

func TestCallThroughProxy(t *testing.T) {
	order, fp := throughProxy(t)
	resp, r := post(t, order.Client(), order.URL+"/orders", map[string]string{
		"x-request-id":     "req-42",
		"end-user":         "jason",
		"x-meshbench-user": "tester",
		"x-b3-traceid":     "80f198ee56343ba864fe8b2a57d3eff7",
		"traceparent":      "00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01",
		"authorization":    "secret", // not propagated
	})

	require.Equal(t, http.StatusOK, resp.StatusCode)
	fp.mu.Lock()
	defer fp.mu.Unlock()
	require.Len(t, fp.hosts, 1)
	assert.Equal(t, "payment.default.svc.cluster.local:80", fp.hosts[0])
	assert.Equal(t, "http://payment.default.svc.cluster.local:80/pay", fp.urls[0])
	h := fp.headers[0]
	assert.Equal(t, "req-42", h.Get("x-request-id"))
	assert.Equal(t, "jason", h.Get("end-user"))
	assert.Equal(t, "tester", h.Get("x-meshbench-user"))
	assert.Equal(t, "80f198ee56343ba864fe8b2a57d3eff7", h.Get("x-b3-traceid"))
	assert.Equal(t, "00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01", h.Get("traceparent"))
	assert.Empty(t, h.Get("authorization"))

	assert.Equal(t, "order", r.Service)
	assert.Equal(t, 200, r.Code)
	require.Len(t, r.Calls, 1)
	assert.Equal(t, Reply{
		Service: "payment", Version: "v1", Pod: "payment-v1-0", Namespace: "default",
		Peer: "spiffe://cluster.local/ns/default/sa/order", Code: 200, RequestID: "req-42",
	}, r.Calls[0])
}

// A request of any method is answered as a POST is, and the calls it
// makes have its method, with no body: GET, PUT, DELETE, OPTIONS, PATCH;
// HEAD's answers have a status only.
func TestCallsCarryTheRequestMethod(t *testing.T) {
	order, fp := throughProxy(t)
	methods := []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodPatch, http.MethodHead, http.MethodPost}
	for _, m := range methods {
		req, err := http.NewRequest(m, order.URL+"/orders", nil)
		require.NoError(t, err)
		resp, err := order.Client().Do(req)
		require.NoError(t, err, m)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err, m)
		assert.Equal(t, http.StatusOK, resp.StatusCode, m)
		if m == http.MethodHead {
			assert.Empty(t, body)
			continue
		}
		var r Reply
		require.NoError(t, json.Unmarshal(body, &r), "%s: body %q", m, body)
		require.Len(t, r.Calls, 1, m)
		assert.Equal(t, Reply{
			Service: "payment", Version: "v1", Pod: "payment-v1-0", Namespace: "default",
			Peer: "spiffe://cluster.local/ns/default/sa/order", Code: 200,
		}, r.Calls[0], m)
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	assert.Equal(t, methods, fp.methods, "each call with its request's method")
}

func TestCallsInOrderAndDirect(t *testing.T) {
	_, a := start(t, Config{Service: "a", Version: "v1", Pod: "a-0"})
	_, b := start(t, Config{Service: "b", Version: "v1", Pod: "b-0"})
	ah, ap := hostPort(t, a.URL)
	bh, bp := hostPort(t, b.URL)
	_, front := start(t, Config{Service: "front", Calls: []Call{{Service: ah, Port: ap}, {Service: bh, Port: bp, Path: "/x"}}})
	resp, r := post(t, front.Client(), front.URL, nil)
	require.Equal(t, 200, resp.StatusCode)
	require.Len(t, r.Calls, 2)
	assert.Equal(t, "a", r.Calls[0].Service)
	assert.Equal(t, "b", r.Calls[1].Service)
}

func TestFailingDownstream(t *testing.T) {
	t.Run("500 upstream", func(t *testing.T) {
		_, payment := start(t, Config{Service: "payment", ErrorRate: 1, ErrorStatus: 500})
		host, port := hostPort(t, payment.URL)
		_, order := start(t, Config{Service: "order", Calls: []Call{{Service: host, Port: port, Path: "/pay"}}})
		resp, r := post(t, order.Client(), order.URL, nil)
		assert.Equal(t, 500, resp.StatusCode)
		assert.Equal(t, 500, r.Code)
		assert.NotEmpty(t, r.Error)
		require.Len(t, r.Calls, 1)
		assert.Equal(t, "payment", r.Calls[0].Service)
		assert.Equal(t, 500, r.Calls[0].Code)
	})
	t.Run("4xx upstream is passed on", func(t *testing.T) {
		_, payment := start(t, Config{Service: "payment", ErrorRate: 1, ErrorStatus: 429})
		host, port := hostPort(t, payment.URL)
		_, order := start(t, Config{Service: "order", Calls: []Call{{Service: host, Port: port}}})
		resp, r := post(t, order.Client(), order.URL, nil)
		assert.Equal(t, 429, resp.StatusCode)
		require.Len(t, r.Calls, 1)
		assert.Equal(t, 429, r.Calls[0].Code)
	})
	t.Run("non-JSON 503", func(t *testing.T) {
		envoy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no healthy upstream", http.StatusServiceUnavailable)
		}))
		t.Cleanup(envoy.Close)
		host, port := hostPort(t, envoy.URL)
		_, order := start(t, Config{Service: "order", Calls: []Call{{Service: host, Port: port}}})
		resp, r := post(t, order.Client(), order.URL, nil)
		assert.Equal(t, 503, resp.StatusCode)
		require.Len(t, r.Calls, 1)
		assert.Equal(t, host, r.Calls[0].Service)
		assert.Equal(t, 503, r.Calls[0].Code)
		assert.Contains(t, r.Calls[0].Error, "no healthy upstream")
	})
	t.Run("refused connection", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := ln.Addr().(*net.TCPAddr).Port
		require.NoError(t, ln.Close())
		_, order := start(t, Config{Service: "order", Calls: []Call{
			{Service: "127.0.0.1", Port: port, Path: "/pay"},
			{Service: "127.0.0.1", Port: port, Path: "/never"},
		}})
		resp, r := post(t, order.Client(), order.URL, nil)
		assert.Equal(t, 502, resp.StatusCode)
		assert.Equal(t, 502, r.Code)
		assert.NotEmpty(t, r.Error)
		require.Len(t, r.Calls, 1, "calls stop at the first failure")
		assert.Equal(t, "127.0.0.1", r.Calls[0].Service)
		assert.Equal(t, 0, r.Calls[0].Code)
		assert.NotEmpty(t, r.Calls[0].Error)
	})
}

// timedPost measures one request's round trip.
func timedPost(t *testing.T, c *http.Client, rawURL string) time.Duration {
	t.Helper()
	t0 := time.Now()
	resp, _ := post(t, c, rawURL, nil)
	require.Equal(t, 200, resp.StatusCode)
	return time.Since(t0)
}

func TestSetLatencyWhileServing(t *testing.T) {
	s, ts := start(t, Config{Service: "payment"})
	c := ts.Client()
	timedPost(t, c, ts.URL) // no latency: just check it answers

	// Load in the background while the settings change under it.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL, nil)
				if resp, err := c.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
			}
		})
	}
	for range 20 {
		require.NoError(t, s.SetLatency(registry.Latency{Mean: units.Duration(time.Millisecond)}))
		require.NoError(t, s.SetErrors(0, 0))
		require.NoError(t, s.SetLatency(registry.Latency{}))
	}
	require.NoError(t, s.SetLatency(registry.Latency{Mean: units.Duration(30 * time.Millisecond), Dist: "fixed"}))
	for range 3 {
		assert.GreaterOrEqual(t, timedPost(t, c, ts.URL), 30*time.Millisecond)
	}
	cancel()
	wg.Wait()

	require.NoError(t, s.SetErrors(1, 500))
	resp, _ := post(t, c, ts.URL, nil)
	assert.Equal(t, 500, resp.StatusCode)
}

func TestLatencyHonoursCancellation(t *testing.T) {
	s, err := New(Config{Service: "payment", Latency: registry.Latency{Mean: units.Duration(time.Hour)}})
	require.NoError(t, err)
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/pay", nil)
	done := make(chan struct{})
	go func() {
		s.ServeHTTP(httptest.NewRecorder(), req)
		close(done)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ServeHTTP kept sleeping after the request was cancelled")
	}
}

func TestSetterValidation(t *testing.T) {
	s, err := New(Config{Service: "payment"})
	require.NoError(t, err)
	defer s.Close()
	assert.Error(t, s.SetLatency(registry.Latency{Dist: "pareto"}))
	assert.Error(t, s.SetErrors(1.5, 500))
	assert.Error(t, s.SetErrors(-0.1, 500))
	assert.Error(t, s.SetErrors(0.5, 200))
	assert.NoError(t, s.SetLatency(registry.Latency{Dist: "Normal"}))
	assert.NoError(t, s.SetErrors(0.5, 0))
	assert.Equal(t, 503, s.settings.Load().errorStatus)
	assert.Equal(t, "normal", s.settings.Load().latency.Dist)
}

func TestNewValidation(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no service":     {},
		"rate above 1":   {Service: "a", ErrorRate: 1.01},
		"negative rate":  {Service: "a", ErrorRate: -1},
		"bad status":     {Service: "a", ErrorStatus: 200},
		"unknown dist":   {Service: "a", Latency: registry.Latency{Dist: "lognormal"}},
		"negative mean":  {Service: "a", Latency: registry.Latency{Mean: -1}},
		"call no name":   {Service: "a", Calls: []Call{{Port: 80}}},
		"call bad port":  {Service: "a", Calls: []Call{{Service: "b", Port: 70000}}},
		"proxy no port":  {Service: "a", Proxy: "127.0.0.1"},
		"negative sdev":  {Service: "a", Latency: registry.Latency{StdDev: -1, Dist: "normal"}},
		"nan error rate": {Service: "a", ErrorRate: nan()},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(cfg)
			assert.Error(t, err)
		})
	}
	for _, d := range []string{"", "fixed", "normal", "exponential", "uniform"} {
		_, err := New(Config{Service: "a", Latency: registry.Latency{Dist: d}})
		assert.NoError(t, err, d)
	}
}

func nan() float64 {
	z := 0.0
	return z / z
}

func TestURLs(t *testing.T) {
	direct, err := New(Config{Service: "order", Namespace: "shop", Calls: []Call{{Service: "payment"}}})
	require.NoError(t, err)
	assert.Equal(t, "http://payment:80/", direct.url(direct.calls[0]))
	meshed, err := New(Config{Service: "order", Namespace: "shop", Proxy: "127.0.0.1:15001",
		Calls: []Call{{Service: "payment", Port: 9090, Path: "pay"}}})
	require.NoError(t, err)
	assert.Equal(t, "http://payment.shop.svc.cluster.local:9090/pay", meshed.url(meshed.calls[0]))
}

func TestParseCalls(t *testing.T) {
	got, err := ParseCalls("payment:80/pay, other:8080/x/y ,bare,,named/p")
	require.NoError(t, err)
	assert.Equal(t, []Call{
		{Service: "payment", Port: 80, Path: "/pay"},
		{Service: "other", Port: 8080, Path: "/x/y"},
		{Service: "bare"},
		{Service: "named", Path: "/p"},
	}, got)
	none, err := ParseCalls("")
	require.NoError(t, err)
	assert.Empty(t, none)
	for _, bad := range []string{":80/x", "a:b/x", "a:0", "a:70000", "/x"} {
		_, err := ParseCalls(bad)
		assert.Error(t, err, bad)
	}
	assert.Equal(t, "bare:80/", Call{Service: "bare"}.String())
}

func TestSampleLatencyMeans(t *testing.T) {
	const n = 5000
	mean := 20 * time.Millisecond
	for _, l := range []registry.Latency{
		{Mean: units.Duration(mean)},
		{Mean: units.Duration(mean), Dist: "fixed"},
		{Mean: units.Duration(mean), StdDev: units.Duration(5 * time.Millisecond), Dist: "normal"},
		{Mean: units.Duration(mean), Dist: "exponential"},
		{Mean: units.Duration(mean), StdDev: units.Duration(10 * time.Millisecond), Dist: "uniform"},
	} {
		t.Run(l.Dist, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var sum time.Duration
			for range n {
				d := sampleLatency(l, r)
				require.GreaterOrEqual(t, d, time.Duration(0))
				sum += d
			}
			got := float64(sum) / n
			assert.InEpsilon(t, float64(mean), got, 0.10, "mean %v", time.Duration(got))
		})
	}
	t.Run("clamped at zero", func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, l := range []registry.Latency{
			{Mean: units.Duration(time.Millisecond), StdDev: units.Duration(10 * time.Millisecond), Dist: "normal"},
			{Mean: units.Duration(time.Millisecond), StdDev: units.Duration(10 * time.Millisecond), Dist: "uniform"},
		} {
			zeros := 0
			for range 1000 {
				d := sampleLatency(l, r)
				require.GreaterOrEqual(t, d, time.Duration(0))
				if d == 0 {
					zeros++
				}
			}
			assert.Positive(t, zeros, l.Dist)
		}
	})
	t.Run("uniform bounds", func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		l := registry.Latency{Mean: units.Duration(mean), StdDev: units.Duration(5 * time.Millisecond), Dist: "uniform"}
		for range 1000 {
			d := sampleLatency(l, r)
			require.GreaterOrEqual(t, d, 15*time.Millisecond)
			require.LessOrEqual(t, d, 25*time.Millisecond)
		}
	})
}

func TestSeedIsReproducible(t *testing.T) {
	seq := func(seed int64) []bool {
		s, err := New(Config{Service: "a", ErrorRate: 0.5, Seed: seed})
		require.NoError(t, err)
		defer s.Close()
		st := s.settings.Load()
		out := make([]bool, 64)
		for i := range out {
			_, out[i] = s.draw(st)
		}
		return out
	}
	assert.Equal(t, seq(7), seq(7))
	assert.NotEqual(t, seq(7), seq(8))
}
