package fakesvc

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/sim/registry"
)

// startH2C serves a fakesvc on a real listener that takes HTTP/1.1 and
// HTTP/2 with prior knowledge, as the runtimes serve the apps.
func startH2C(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s, err := New(cfg)
	require.NoError(t, err)
	ts := httptest.NewUnstartedServer(s)
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	ts.Config.Protocols = &p
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts.Listener.Addr().String()
}

func dialGRPC(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func decodeReply(t *testing.T, m *wrapperspb.BytesValue) Reply {
	t.Helper()
	var r Reply
	require.NoError(t, json.Unmarshal(m.GetValue(), &r))
	return r
}

// The echo service answers a unary call with the instance's identity and
// the request's mesh headers, on the port of the HTTP API, which still
// answers HTTP/1.1.
func TestGRPCUnaryEcho(t *testing.T) {
	_, addr := startH2C(t, Config{Service: "payment", Version: "v2", Pod: "payment-v2-0"})
	cc := dialGRPC(t, addr)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-request-id", "r1", "x-envoy-attempt-count", "2")
	out := &wrapperspb.BytesValue{}
	var hdr metadata.MD
	require.NoError(t, cc.Invoke(ctx, GRPCUnaryMethod, wrapperspb.Bytes(nil), out, grpc.Header(&hdr)))
	r := decodeReply(t, out)
	assert.Equal(t, "payment", r.Service)
	assert.Equal(t, "v2", r.Version)
	assert.Equal(t, "r1", r.RequestID)
	assert.Equal(t, "2", r.Attempt)
	assert.Equal(t, []string{"v2"}, hdr.Get(HeaderVersion))

	resp, err := http.Post("http://"+addr+"/pay", "text/plain", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "HTTP/1.1 on the same port")
}

// The server-streaming method sends count replies, interval apart.
func TestGRPCServerStream(t *testing.T) {
	_, addr := startH2C(t, Config{Service: "payment", Version: "v1"})
	cc := dialGRPC(t, addr)
	st, err := cc.NewStream(context.Background(), &grpc.StreamDesc{ServerStreams: true}, GRPCStreamMethod)
	require.NoError(t, err)
	req, err := json.Marshal(EchoRequest{Count: 4, Interval: "1ms"})
	require.NoError(t, err)
	require.NoError(t, st.SendMsg(wrapperspb.Bytes(req)))
	require.NoError(t, st.CloseSend())
	n := 0
	for {
		m := &wrapperspb.BytesValue{}
		err := st.RecvMsg(m)
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		assert.Equal(t, "payment", decodeReply(t, m).Service)
		n++
	}
	assert.Equal(t, 4, n)
}

// An injected error is the configured gRPC status, UNAVAILABLE by default;
// the rate is the instance's error rate.
func TestGRPCInjectedErrors(t *testing.T) {
	for _, c := range []struct {
		code int
		want codes.Code
	}{{0, codes.Unavailable}, {int(codes.ResourceExhausted), codes.ResourceExhausted}} {
		_, addr := startH2C(t, Config{Service: "payment", ErrorRate: 1, GRPCCode: c.code})
		err := dialGRPC(t, addr).Invoke(context.Background(), GRPCUnaryMethod, wrapperspb.Bytes(nil), &wrapperspb.BytesValue{})
		assert.Equal(t, c.want, status.Code(err))
	}
	_, err := New(Config{Service: "payment", GRPCCode: 17})
	assert.Error(t, err)
}

// The service time applies to gRPC calls, and a deadline shorter than it
// ends the call with DEADLINE_EXCEEDED.
func TestGRPCLatencyAndDeadline(t *testing.T) {
	_, addr := startH2C(t, Config{Service: "payment", Latency: registry.Latency{Mean: units.Duration(time.Hour)}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := dialGRPC(t, addr).Invoke(ctx, GRPCUnaryMethod, wrapperspb.Bytes(nil), &wrapperspb.BytesValue{})
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err))
}

// A call of protocol grpc reaches the callee's echo service; its status
// becomes the caller's answer as its HTTP equivalent.
func TestGRPCCallFromHTTP(t *testing.T) {
	_, down := startH2C(t, Config{Service: "payment", Version: "v1"})
	host, portStr, err := net.SplitHostPort(down)
	require.NoError(t, err)
	port, err := strconv.Atoi(portStr)
	require.NoError(t, err)
	_, ts := start(t, Config{Service: "order", Calls: []Call{{Service: host, Port: port, Protocol: CallGRPC}}})
	resp, r := post(t, http.DefaultClient, ts.URL+"/orders", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, r.Calls, 1)
	assert.Equal(t, "payment", r.Calls[0].Service)
	require.NotNil(t, r.Calls[0].GRPCStatus)
	assert.Equal(t, 0, *r.Calls[0].GRPCStatus)

	_, bad := startH2C(t, Config{Service: "payment", ErrorRate: 1})
	_, bp, _ := net.SplitHostPort(bad)
	bport, _ := strconv.Atoi(bp)
	_, ts2 := start(t, Config{Service: "order", Calls: []Call{{Service: host, Port: bport, Protocol: CallGRPC}}})
	resp, r = post(t, http.DefaultClient, ts2.URL+"/orders", nil)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "UNAVAILABLE is 503")
	require.Len(t, r.Calls, 1)
	assert.Equal(t, int(codes.Unavailable), *r.Calls[0].GRPCStatus)
}

func TestParseGRPCCalls(t *testing.T) {
	got, err := ParseCalls("grpc://echo:9000,payment")
	require.NoError(t, err)
	assert.Equal(t, []Call{{Service: "echo", Port: 9000, Protocol: CallGRPC}, {Service: "payment"}}, got)
	assert.Equal(t, "grpc://echo:9000/", got[0].String())
}
