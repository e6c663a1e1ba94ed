package sidecar

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
)

// grpc-timeout as Grpc::Common::getGrpcTimeout reads it and toGrpcTimeout
// writes it (source/common/grpc/common.cc).
func TestGRPCTimeoutHeader(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"100m", 100 * time.Millisecond, true},
		{"3S", 3 * time.Second, true},
		{"2M", 2 * time.Minute, true},
		{"1H", time.Hour, true},
		{"99999u", 100 * time.Millisecond, true}, // rounded up to whole ms
		{"1500000n", 2 * time.Millisecond, true},
		{"12345678m", 12345678 * time.Millisecond, true},
		{"123456789m", 0, false}, // more than 8 digits
		{"10", 0, false},
		{"m", 0, false},
		{"-5m", 0, false},
		{"5x", 0, false},
		{"", 0, false},
	} {
		got, ok := parseGRPCTimeout(c.in)
		assert.Equal(t, c.ok, ok, c.in)
		assert.Equal(t, c.want, got, c.in)
	}
	assert.Equal(t, "250m", formatGRPCTimeout(250*time.Millisecond))
	assert.Equal(t, "99999999m", formatGRPCTimeout(99999999*time.Millisecond))
	assert.Equal(t, "100000S", formatGRPCTimeout(100000000*time.Millisecond))
	assert.Equal(t, "0m", formatGRPCTimeout(0))
}

// The router's timeout for a request (FilterUtility::finalTimeout) and the
// connection manager's stream bound (refreshDurationTimeout), for the
// route shapes Istio sends and for Envoy's own defaults.
func TestGRPCDeadlineTimeouts(t *testing.T) {
	ms := func(n int) *durationpb.Duration { return durationpb.New(time.Duration(n) * time.Millisecond) }
	hdr := func(v string) http.Header {
		h := http.Header{}
		if v != "" {
			h.Set("grpc-timeout", v)
		}
		return h
	}
	outbound := func(timeout int) *compiledRoute { // route.go setTimeout
		//lint:ignore SA1019 the field Istio sets
		return &compiledRoute{timeout: time.Duration(timeout) * time.Millisecond, deadlines: compileGRPCTimeouts(&route.RouteAction{Timeout: ms(timeout), MaxGrpcTimeout: ms(timeout)})}
	}
	inbound := &compiledRoute{deadlines: compileGRPCTimeouts(&route.RouteAction{Timeout: ms(0), MaxStreamDuration: &route.RouteAction_MaxStreamDuration{MaxStreamDuration: ms(0), GrpcTimeoutHeaderMax: ms(0)}})}
	plain := &compiledRoute{timeout: 15 * time.Second, deadlines: compileGRPCTimeouts(&route.RouteAction{})}

	for _, c := range []struct {
		name          string
		cr            *compiledRoute
		grpc          bool
		header        string
		router, whole time.Duration
	}{
		{"outbound, no route timeout: the caller's deadline", outbound(0), true, "300m", 300 * time.Millisecond, 0},
		{"outbound, no route timeout, no deadline: none", outbound(0), true, "", 0, 0},
		{"outbound, a deadline over the route timeout is capped", outbound(100), true, "10S", 100 * time.Millisecond, 0},
		{"outbound, a deadline under the route timeout wins", outbound(100), true, "40m", 40 * time.Millisecond, 0},
		{"outbound, no deadline: the route timeout", outbound(100), true, "", 100 * time.Millisecond, 0},
		{"outbound, HTTP ignores grpc-timeout", outbound(100), false, "40m", 100 * time.Millisecond, 0},
		{"inbound: the stream is bounded by the caller's deadline", inbound, true, "250m", 0, 250 * time.Millisecond},
		{"inbound, no deadline: no bound", inbound, true, "", 0, 0},
		{"no max_grpc_timeout: grpc-timeout is not read", plain, true, "40m", 15 * time.Second, 0},
	} {
		assert.Equal(t, c.router, c.cr.routerTimeout(c.grpc, hdr(c.header)), c.name)
		assert.Equal(t, c.whole, c.cr.streamDuration(hdr(c.header)), c.name)
	}
	// What the upstream is told: the per-try timeout, never past the time left.
	assert.Equal(t, 50*time.Millisecond, expectedTimeout(300*time.Millisecond, 50*time.Millisecond, 10*time.Millisecond))
	assert.Equal(t, 20*time.Millisecond, expectedTimeout(300*time.Millisecond, 50*time.Millisecond, 280*time.Millisecond))
	assert.Equal(t, 290*time.Millisecond, expectedTimeout(300*time.Millisecond, 0, 10*time.Millisecond))
	assert.Equal(t, time.Millisecond, expectedTimeout(300*time.Millisecond, 0, 400*time.Millisecond))
	assert.Zero(t, expectedTimeout(0, 0, 10*time.Millisecond))
}

// slowGRPCApp answers nothing for two seconds, or until its caller goes
// away, and reports the grpc-timeout it was sent.
func slowGRPCApp(seen chan<- string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("grpc-timeout")
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
		w.Header().Set("content-type", "application/grpc")
		w.Header().Set("grpc-status", "0")
	}
}

// grpcRequest is a gRPC call's request, an empty message, sent by a client
// that does not enforce its own deadline: the deadline is the header's.
func grpcRequest(t *testing.T, url, grpcTimeout string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte{0, 0, 0, 0, 0}))
	require.NoError(t, err)
	req.Header.Set("content-type", "application/grpc")
	req.Header.Set("te", "trailers")
	req.Header.Set("grpc-timeout", grpcTimeout)
	return req
}

// h2cDirect speaks HTTP/2 with prior knowledge to the address of its URL.
func h2cDirect(t *testing.T) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: rigWait}
}

// A gRPC caller's deadline bounds its call in the sidecars, as Envoy does
// under Istio's routes: the calling sidecar tells the server the time the
// route leaves (the route timeout caps the caller's 10 s), and the server's
// sidecar ends a stream that outlives its grpc-timeout with
// DEADLINE_EXCEEDED (onStreamMaxDurationReached), though the app never
// answers and the caller never gives up.
func TestGRPCDeadlineBoundsTheCall(t *testing.T) {
	seen := make(chan string, 8)
	topo := grpcTopology(registry.Version{Name: "v1"})
	route := &networking.HTTPRoute{Route: rigRoute(""), Timeout: durationpb.New(80 * time.Millisecond)}
	m := newRig(t, rigOpts{topo: topo, cfg: meshconfig.Config{VirtualServices: []*networkingv1.VirtualService{rigVS(route)}},
		h2c: true, handlers: map[string]func(http.ResponseWriter, *http.Request){"payment-v1-0": slowGRPCApp(seen)}})

	t.Run("through the calling sidecar", func(t *testing.T) {
		start := time.Now()
		resp, err := h2cClient(t, m).Do(grpcRequest(t, "http://"+rigPaymentHost+"/meshbench.Echo/Unary", "10S"))
		require.NoError(t, err)
		defer resp.Body.Close()
		took := time.Since(start)
		got := <-seen
		d, ok := parseGRPCTimeout(got)
		require.True(t, ok, "the server got grpc-timeout %q", got)
		assert.LessOrEqual(t, d, 80*time.Millisecond, "the server was told the caller's 10S, not the 80ms the route leaves")
		assert.Greater(t, d, time.Duration(0))
		assert.Less(t, took, 2*time.Second, "nothing ended the call")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		_, _ = bytes.NewBuffer(nil).ReadFrom(resp.Body)
		status := resp.Header.Get("grpc-status") + resp.Trailer.Get("grpc-status")
		assert.Contains(t, []string{"14", "4"}, status, "UNAVAILABLE from the caller's route timeout, or DEADLINE_EXCEEDED from the server's sidecar")
	})

	t.Run("at the server's sidecar", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), rigWait)
		defer cancel()
		start := time.Now()
		resp, err := h2cDirect(t).Do(grpcRequest(t, "http://"+m.inbound("payment-v1-0")+"/meshbench.Echo/Unary", "150m").WithContext(ctx))
		require.NoError(t, err)
		defer resp.Body.Close()
		took := time.Since(start)
		assert.Equal(t, "150m", <-seen, "the stream bound is not the router's: the header goes on as it came")
		assert.GreaterOrEqual(t, took, 150*time.Millisecond)
		assert.Less(t, took, 2*time.Second, "the server's sidecar did not end the stream")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "4", resp.Header.Get("grpc-status"), "DEADLINE_EXCEEDED, trailers-only")
		assert.Equal(t, "downstream duration timeout", resp.Header.Get("grpc-message"))
	})
}
