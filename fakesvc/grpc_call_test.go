package fakesvc

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/sim/registry"
)

// grpcCallee serves cfg on a real h2c listener and returns a gRPC call of it.
func grpcCallee(t *testing.T, cfg Config) Call {
	t.Helper()
	_, addr := startH2C(t, cfg)
	host, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	port, err := strconv.Atoi(p)
	require.NoError(t, err)
	return Call{Service: host, Port: port, Protocol: CallGRPC}
}

// The caller's deadline goes out as grpc-timeout: the callee sees it (less
// the time on the way), a callee slower than it ends the call
// DEADLINE_EXCEEDED at the deadline, and the caller answers 504.
func TestGRPCCallDeadline(t *testing.T) {
	fast := grpcCallee(t, Config{Service: "payment", Version: "v1"})
	_, ts := start(t, Config{Service: "order", Calls: []Call{fast}, GRPCCall: registry.GRPCCall{Deadline: units.Duration(100 * time.Millisecond)}})
	resp, r := post(t, http.DefaultClient, ts.URL+"/orders", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, r.Calls, 1)
	left, err := time.ParseDuration(r.Calls[0].Deadline)
	require.NoError(t, err, "the callee saw no deadline: %q", r.Calls[0].Deadline)
	assert.LessOrEqual(t, left, 100*time.Millisecond)
	assert.Greater(t, left, 50*time.Millisecond)

	_, ts = start(t, Config{Service: "order", Calls: []Call{fast}})
	_, r = post(t, http.DefaultClient, ts.URL+"/orders", nil)
	assert.Empty(t, r.Calls[0].Deadline, "no deadline set, none seen")

	slow := grpcCallee(t, Config{Service: "payment", Version: "v2", Latency: registry.Latency{Mean: units.Duration(time.Hour)}})
	_, ts = start(t, Config{Service: "order", Calls: []Call{slow}, GRPCCall: registry.GRPCCall{Deadline: units.Duration(100 * time.Millisecond)}})
	began := time.Now()
	resp, r = post(t, http.DefaultClient, ts.URL+"/orders", nil)
	took := time.Since(began)
	assert.Equal(t, http.StatusGatewayTimeout, resp.StatusCode, "DEADLINE_EXCEEDED is 504")
	require.Len(t, r.Calls, 1)
	assert.Equal(t, int(codes.DeadlineExceeded), *r.Calls[0].GRPCStatus)
	assert.GreaterOrEqual(t, took, 100*time.Millisecond)
	assert.Less(t, took, 5*time.Second)
}

// A Stream caller asks for Count replies Interval apart and counts what it
// got: all of them, or those before its deadline ended the stream.
func TestGRPCCallStream(t *testing.T) {
	callee := grpcCallee(t, Config{Service: "payment", Version: "v1"})
	stream := registry.GRPCCall{Method: registry.GRPCMethodStream, Count: 5, Interval: units.Duration(20 * time.Millisecond)}
	_, ts := start(t, Config{Service: "order", Calls: []Call{callee}, GRPCCall: stream})
	resp, r := post(t, http.DefaultClient, ts.URL+"/orders", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, r.Calls, 1)
	require.NotNil(t, r.Calls[0].Messages)
	assert.Equal(t, 5, *r.Calls[0].Messages)
	assert.Equal(t, "v1", r.Calls[0].Version)

	stream.Count, stream.Interval, stream.Deadline = 10, units.Duration(50*time.Millisecond), units.Duration(120*time.Millisecond)
	_, ts = start(t, Config{Service: "order", Calls: []Call{callee}, GRPCCall: stream})
	resp, r = post(t, http.DefaultClient, ts.URL+"/orders", nil)
	assert.Equal(t, http.StatusGatewayTimeout, resp.StatusCode)
	require.NotNil(t, r.Calls[0].Messages)
	assert.Contains(t, []int{2, 3}, *r.Calls[0].Messages, "replies at 0, 50 and 100ms come before a 120ms deadline")

	_, ts = start(t, Config{Service: "order", Calls: []Call{callee}})
	_, r = post(t, http.DefaultClient, ts.URL+"/orders", nil)
	assert.Nil(t, r.Calls[0].Messages, "a unary call counts no messages")
}

// The container runtimes' flags give an instance the same GRPCCall.
func TestGRPCCallFlags(t *testing.T) {
	g := registry.GRPCCall{Deadline: units.Duration(100 * time.Millisecond), Method: registry.GRPCMethodStream, Count: 10, Interval: units.Duration(100 * time.Millisecond)}
	f, err := ParseFlags("fakesvc", append([]string{"-service", "order"}, GRPCCallArgs(g)...), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, g, f.Config.GRPCCall)
	assert.Empty(t, GRPCCallArgs(registry.GRPCCall{}))
	for _, bad := range [][]string{{"-grpc-method", "Bidi"}, {"-grpc-deadline", "-1s"}, {"-grpc-stream-count", "1001"}} {
		_, err := ParseFlags("fakesvc", append([]string{"-service", "order"}, bad...), io.Discard)
		assert.Error(t, err, "%v", bad)
	}
}
