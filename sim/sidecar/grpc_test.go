package sidecar

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshbench/meshbench/fakesvc"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
)

// grpcApps makes the given pods fakesvc instances, on the listeners the
// runtimes give them (fakesvc.Listener: gRPC calls to grpc-go's server),
// whose gRPC echo service fails with UNAVAILABLE at the pod's error rate.
func grpcApps(t *testing.T, o rigOpts, errorRates map[string]float64) rigOpts {
	t.Helper()
	o.handlers = map[string]func(http.ResponseWriter, *http.Request){}
	o.listeners = map[string]func(net.Listener) net.Listener{}
	o.h2c = true
	for pod, rate := range errorRates {
		app, err := fakesvc.New(fakesvc.Config{Service: "payment", Version: "v1", Pod: pod, ErrorRate: rate})
		require.NoError(t, err)
		t.Cleanup(app.Close)
		o.handlers[pod] = app.ServeHTTP
		o.listeners[pod] = app.Listener
	}
	return o
}

// grpcCaller is the caller's gRPC client: HTTP/2 to its sidecar's outbound
// listener, :authority payment's name and port.
func grpcCaller(t *testing.T, m *rig) *grpc.ClientConn {
	t.Helper()
	addr := m.proxies[rigCaller].OutboundAddr()
	cc, err := grpc.NewClient("passthrough:///"+rigPaymentHost+":80",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func grpcTopology(versions ...registry.Version) registry.Topology {
	topo := rigTopology(versions...)
	topo.Services[1].Protocol = "grpc"
	return topo
}

// A gRPC call through two sidecars: HTTP/2 all the way, the answer's
// grpc-status in istio_requests_total's grpc_response_status (numeric, ""
// for HTTP requests) with request_protocol grpc, as Istio's stats filter
// labels it; the status of a failing call, sent trailers-only by grpc-go,
// reaches the caller.
func TestGRPCStatusInMetrics(t *testing.T) {
	m := newRig(t, grpcApps(t, rigOpts{topo: grpcTopology(registry.Version{Name: "v1"})}, map[string]float64{"payment-v1-0": 0}))
	cc := grpcCaller(t, m)
	for range 3 {
		require.NoError(t, cc.Invoke(context.Background(), fakesvc.GRPCUnaryMethod, wrapperspb.Bytes(nil), &wrapperspb.BytesValue{}))
	}
	for _, c := range []struct{ pod, reporter string }{{rigCaller, "source"}, {"payment-v1-0", "destination"}} {
		// a sidecar records a request after its response is written
		m.eventuallyCounter(c.pod, "istio_requests_total", map[string]string{
			"reporter": c.reporter, "request_protocol": "grpc", "response_code": "200", "grpc_response_status": "0",
		}, 3)
	}

	m.apps["payment-v1-0"].srv.Close()
	err := cc.Invoke(context.Background(), fakesvc.GRPCUnaryMethod, wrapperspb.Bytes(nil), &wrapperspb.BytesValue{})
	assert.Equal(t, codes.Unavailable, status.Code(err), "a local reply to a gRPC call is UNAVAILABLE (httpToGrpcStatus of 503)")
	// Envoy's gRPC local reply is HTTP 200 with grpc-status
	m.eventuallyCounter(rigCaller, "istio_requests_total", map[string]string{
		"reporter": "source", "request_protocol": "grpc", "response_code": "200", "grpc_response_status": "14",
	}, 1)
}

// retry_on unavailable retries a call answered UNAVAILABLE: Envoy judges
// the grpc-status of the response headers, which is where a trailers-only
// answer carries it (retry_state_impl.cc wouldRetryFromHeaders,
// Grpc::Common::getGrpcStatus on the headers; router filter docs,
// x-envoy-retry-grpc-on). One pod always fails, one never: every call
// succeeds, and each that got UNAVAILABLE was retried once.
func TestGRPCRetryOnUnavailable(t *testing.T) {
	cfg := meshconfig.Config{
		DestinationRules: []*networkingv1.DestinationRule{rigDR(&networking.TrafficPolicy{LoadBalancer: rigLB(networking.LoadBalancerSettings_ROUND_ROBIN)})},
		VirtualServices: []*networkingv1.VirtualService{rigVS(&networking.HTTPRoute{
			Route:   rigRoute(""),
			Retries: &networking.HTTPRetry{Attempts: 2, RetryOn: "unavailable"},
		})},
	}
	m := newRig(t, grpcApps(t, rigOpts{topo: grpcTopology(registry.Version{Name: "v1", Replicas: 2}), cfg: cfg},
		map[string]float64{"payment-v1-0": 1, "payment-v1-1": 0}))
	cc := grpcCaller(t, m)
	const n = 10
	for i := range n {
		err := cc.Invoke(context.Background(), fakesvc.GRPCUnaryMethod, wrapperspb.Bytes(nil), &wrapperspb.BytesValue{})
		require.NoError(t, err, "call %d", i)
	}
	// a sidecar records a request after its response is written: the
	// caller's last record comes after every record of the pods'
	m.eventuallyCounter(rigCaller, "istio_requests_total", map[string]string{"reporter": "source", "grpc_response_status": "0"}, n)
	failed := m.metric("payment-v1-0", "istio_requests_total", map[string]string{"reporter": "destination", "grpc_response_status": "14"})
	assert.GreaterOrEqual(t, failed, 1.0, "round robin starts calls at the failing pod")
	assert.Equal(t, failed, m.metric(rigCaller, "envoy_cluster_upstream_rq_retry", rigCluster))
}
