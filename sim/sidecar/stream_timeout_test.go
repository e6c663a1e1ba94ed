package sidecar

import (
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshbench/meshbench/fakesvc"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
)

// tickingApp answers at once and then writes one chunk every gap, n in
// all, until its caller goes away: a stream longer than a route timeout.
// grpc makes each chunk a gRPC message and the end a grpc-status trailer;
// it ignores grpc-timeout, so that only the sidecars bound the stream.
func tickingApp(n int, gap time.Duration, grpc bool) func(http.ResponseWriter, *http.Request) {
	msg, _ := proto.Marshal(wrapperspb.Bytes([]byte(`{"service":"payment","version":"v1"}`)))
	frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
	frame = append(frame, msg...)
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if grpc {
			w.Header().Set("content-type", "application/grpc")
			w.Header().Set("trailer", "grpc-status")
		}
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		t := time.NewTicker(gap)
		defer t.Stop()
		for i := range n {
			if i > 0 {
				select {
				case <-r.Context().Done():
					return
				case <-t.C:
				}
			}
			if grpc {
				_, _ = w.Write(frame)
			} else {
				_, _ = io.WriteString(w, "tick\n")
			}
			_ = rc.Flush()
		}
		if grpc {
			w.Header().Set("grpc-status", "0")
		}
	}
}

// A route timeout covers the whole stream, until the response is complete
// (router.cc: response_timeout_ armed in onRequestComplete, fired in
// onResponseTimeout). Once the response has started, the local reply it
// would send becomes a reset of the downstream stream
// (FilterManager::sendLocalReply, "Prior headers have already been sent"),
// flagged UT, with the 200 the upstream sent. The body is not ended as if
// it were whole: a caller must see the cut.
func TestRouteTimeoutResetsAStartedStream(t *testing.T) {
	route := &networking.HTTPRoute{Route: rigRoute(""), Timeout: durationpb.New(300 * time.Millisecond)}
	m := newRig(t, rigOpts{
		topo:     rigTopology(registry.Version{Name: "v1"}),
		cfg:      meshconfig.Config{VirtualServices: []*networkingv1.VirtualService{rigVS(route)}},
		handlers: map[string]func(http.ResponseWriter, *http.Request){"payment-v1-0": tickingApp(10, 100*time.Millisecond, false)},
	})
	start := time.Now()
	resp, err := m.client.Get("http://" + rigPaymentHost + "/pay")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the headers went out before the timeout")
	body, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	require.Error(t, err, "the stream was ended as if whole, after %q", body)
	got := strings.Count(string(body), "tick")
	assert.GreaterOrEqual(t, got, 1)
	assert.Less(t, got, 10)
	assert.Less(t, took, 2*time.Second)
	m.eventuallyCounter(rigCaller, "istio_requests_total", map[string]string{
		"reporter": "source", "response_code": "200", "response_flags": "UT",
	}, 1)
}

// A gRPC server stream cut by a route timeout: the caller gets the
// messages sent before it, then the reset, which grpc-go reports as
// INTERNAL "stream terminated by RST_STREAM" (http2_client.go
// handleRSTStream, http2ErrConvTab: NO_ERROR, Envoy's code, and
// INTERNAL_ERROR, Go's, are both INTERNAL). The calling sidecar's timer
// and the server's sidecar's (the grpc-timeout it was told, less the time
// on the way) end it within a millisecond of each other, either flagging
// it; without a timeout the stream is whole.
func TestRouteTimeoutCutsAGRPCStream(t *testing.T) {
	for _, c := range []struct {
		name    string
		timeout time.Duration
	}{{"timeout 300ms", 300 * time.Millisecond}, {"timeout 0s", 0}} {
		t.Run(c.name, func(t *testing.T) {
			route := &networking.HTTPRoute{Route: rigRoute(""), Timeout: durationpb.New(c.timeout)}
			m := newRig(t, rigOpts{
				topo:     grpcTopology(registry.Version{Name: "v1"}),
				cfg:      meshconfig.Config{VirtualServices: []*networkingv1.VirtualService{rigVS(route)}},
				h2c:      true,
				handlers: map[string]func(http.ResponseWriter, *http.Request){"payment-v1-0": tickingApp(10, 100*time.Millisecond, true)},
			})
			ctx, cancel := context.WithTimeout(context.Background(), rigWait)
			defer cancel()
			st, err := grpcCaller(t, m).NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, fakesvc.GRPCStreamMethod)
			require.NoError(t, err)
			require.NoError(t, st.SendMsg(wrapperspb.Bytes(nil)))
			require.NoError(t, st.CloseSend())
			n := 0
			for {
				if err = st.RecvMsg(&wrapperspb.BytesValue{}); err != nil {
					break
				}
				n++
			}
			if c.timeout == 0 {
				assert.ErrorIs(t, err, io.EOF)
				assert.Equal(t, 10, n)
				return
			}
			assert.Equal(t, codes.Internal, status.Code(err), "%v", err)
			assert.Contains(t, status.Convert(err).Message(), "RST_STREAM", "the stream was ended, not reset")
			assert.GreaterOrEqual(t, n, 1)
			assert.Less(t, n, 10)
			// No grpc-status came: Istio's stats filter infers UNKNOWN from
			// the 200 (Grpc::Common::getGrpcStatus, httpToGrpcStatus).
			m.eventuallyCounter(rigCaller, "istio_requests_total", map[string]string{
				"reporter": "source", "request_protocol": "grpc", "response_code": "200", "grpc_response_status": "2",
			}, 1)
		})
	}
}
