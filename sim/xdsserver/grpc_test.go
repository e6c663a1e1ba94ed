package xdsserver_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	stream "github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshbench/meshbench/fakesvc"
	"github.com/meshbench/meshbench/internal/istiotest"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
	"github.com/meshbench/meshbench/sim/xdsserver"
)

// proxylessMesh is order → payment (gRPC; v1 ×2, v2 ×1) with every payment
// pod's fakesvc serving on its loopback address, a control plane that
// authenticates, and the proxyless snapshot of order's pod.
type proxylessMesh struct {
	reg    *registry.Registry
	srv    *xdsserver.Server
	tokens *xdsserver.Tokens
	order  *registry.Pod
	node   string
}

func startProxylessMesh(t *testing.T) *proxylessMesh {
	t.Helper()
	leakOpt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leakOpt) })
	base := netip.AddrFrom4([4]byte{127, byte(64 + rand.IntN(160)), byte(rand.IntN(256)), 0})
	next := base
	topo := registry.WithDefaults(registry.Topology{Services: []registry.Service{
		{Name: "order", Versions: []registry.Version{{Name: "v1"}}, Calls: []string{"payment"}},
		{Name: "payment", Protocol: "grpc", Versions: []registry.Version{{Name: "v1", Replicas: 2}, {Name: "v2"}}},
	}})
	reg, err := registry.New(topo, func() (netip.Addr, error) {
		next = next.Next()
		return next, nil
	})
	require.NoError(t, err)
	for _, p := range reg.PodsOf("payment") {
		app, err := fakesvc.New(fakesvc.Config{Service: p.Service, Version: p.Version, Pod: p.Name})
		require.NoError(t, err)
		lis, err := net.Listen("tcp", netip.AddrPortFrom(p.IP, uint16(p.Port)).String())
		require.NoError(t, err)
		hs := &http.Server{Handler: app, Protocols: fakesvc.Protocols(), ReadHeaderTimeout: 5 * time.Second}
		done := make(chan struct{})
		go func() { defer close(done); _ = hs.Serve(app.Listener(lis)) }()
		t.Cleanup(func() { _ = hs.Close(); <-done; app.Close() })
	}
	tokens, err := xdsserver.NewTokens()
	require.NoError(t, err)
	srv := xdsserver.New(slog.New(slog.DiscardHandler))
	srv.Authenticate(tokens)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, srv.Start(ctx, "unix://"+filepath.Join(t.TempDir(), "xds.sock")))
	t.Cleanup(srv.Stop)
	order, _ := reg.Pod("order-v1-0")
	// The proxyless client is a node of its own beside the pod's sidecar.
	return &proxylessMesh{reg: reg, srv: srv, tokens: tokens, order: order, node: "grpc~" + order.IP.String() + "~order-v1-0.default~default.svc.cluster.local"}
}

func subsetsAndRoute(weights map[string]int32) meshconfig.Config {
	d := istiotest.DestinationRule("default", "payment", &networking.DestinationRule{Host: "payment", Subsets: istiotest.VersionSubsets("v1", "v2")})
	hr := &networking.HTTPRoute{}
	for _, s := range []string{"v1", "v2"} {
		if weights[s] > 0 {
			hr.Route = append(hr.Route, &networking.HTTPRouteDestination{Destination: &networking.Destination{Host: "payment", Subset: s}, Weight: weights[s]})
		}
	}
	v := istiotest.VirtualService("default", "payment", &networking.VirtualService{Hosts: []string{"payment"}, Http: []*networking.HTTPRoute{hr}})
	return meshconfig.Config{DestinationRules: []*networkingv1.DestinationRule{d}, VirtualServices: []*networkingv1.VirtualService{v}}
}

func (m *proxylessMesh) publish(t *testing.T, cfg meshconfig.Config, version string) {
	t.Helper()
	snap, err := xdsgen.New(m.reg, cfg).ForProxyless(m.order).Snapshot(version)
	require.NoError(t, err)
	require.NoError(t, m.srv.SetProxylessSnapshot(context.Background(), m.node, snap))
}

// dial is grpc-go's xDS resolver with the node's bootstrap, as fakesvc's
// proxyless calls dial.
func (m *proxylessMesh) dial(t *testing.T, token string) *grpc.ClientConn {
	t.Helper()
	bs, err := fakesvc.Bootstrap{Server: m.srv.Addr(), Token: token, NodeID: m.node,
		Metadata: map[string]string{xdsserver.GeneratorMetadataKey: xdsserver.GeneratorGRPC}}.JSON()
	require.NoError(t, err)
	cc, err := fakesvc.DialProxyless(bs, "payment.default.svc.cluster.local", 80)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func versionOf(t *testing.T, cc *grpc.ClientConn) string {
	t.Helper()
	v, err := tryVersion(cc)
	require.NoError(t, err)
	return v
}

// tryVersion makes one call and returns the version that answered it.
func tryVersion(cc *grpc.ClientConn) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := &wrapperspb.BytesValue{}
	if err := cc.Invoke(ctx, fakesvc.GRPCUnaryMethod, wrapperspb.Bytes(nil), out, grpc.WaitForReady(true)); err != nil {
		return "", err
	}
	var r fakesvc.Reply
	if err := json.Unmarshal(out.GetValue(), &r); err != nil {
		return "", err
	}
	return r.Version, nil
}

// grpc-go asks for the listener of its target, then the route it names,
// then only the clusters that route names, each by name: a snapshot that
// holds every service's resources (as istiod builds them) serves it, and
// it ACKs every type, so a run can wait for it as for a sidecar. A new
// version moves its calls.
func TestProxylessClientServedByName(t *testing.T) {
	m := startProxylessMesh(t)
	m.publish(t, subsetsAndRoute(map[string]int32{"v2": 100}), "1")
	cc := m.dial(t, m.tokens.Issue(m.node))
	cc.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, m.srv.WaitConverged(ctx, []string{m.node}, "1"))
	for range 5 {
		assert.Equal(t, "v2", versionOf(t, cc))
	}
	m.publish(t, subsetsAndRoute(map[string]int32{"v1": 100}), "2")
	require.NoError(t, m.srv.WaitConverged(ctx, []string{m.node}, "2"))
	// grpc-go ACKs the last endpoints as it parses them, before its
	// resolver and balancers switch over (docs/fidelity.md): a call or two
	// may still take the old route, or fail UNAVAILABLE "unknown cluster
	// selected for RPC" while its cluster manager has not yet built the new
	// route's cluster. grpc-go exposes no event for its picker's switch,
	// and such a failure is immediate: a failed call waits 5 ms before the
	// next. Bounded by calls (at most 200, about a second of failures).
	switched := false
	for range 200 {
		v, err := tryVersion(cc)
		if err != nil {
			require.Equal(t, codes.Unavailable, status.Code(err), err)
			require.Contains(t, err.Error(), "unknown cluster selected for RPC")
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if v == "v1" {
			switched = true
			break
		}
	}
	require.True(t, switched, "no call took the new route")
	for range 5 {
		assert.Equal(t, "v1", versionOf(t, cc))
	}
	assert.Empty(t, m.srv.Nacks())
	assert.Zero(t, m.srv.Outsiders())
}

// A proxyless client without the node's token is refused, never served.
func TestProxylessClientNeedsItsToken(t *testing.T) {
	m := startProxylessMesh(t)
	m.publish(t, subsetsAndRoute(map[string]int32{"v2": 100}), "1")
	cc := m.dial(t, m.tokens.Issue("sidecar~10.0.0.9~someone-else.default~default.svc.cluster.local"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := cc.Invoke(ctx, fakesvc.GRPCUnaryMethod, wrapperspb.Bytes(nil), &wrapperspb.BytesValue{})
	require.Error(t, err)
	assert.Contains(t, []codes.Code{codes.Unavailable, codes.DeadlineExceeded}, status.Code(err), err)
	assert.Positive(t, m.srv.Outsiders())
	assert.Empty(t, m.srv.Acked(m.node, resource.ListenerType))
}

// Why proxyless nodes have a cache of their own: in ADS mode
// go-control-plane answers a CDS request only when it names every cluster
// of the snapshot, and grpc-go names only its route's. The same request
// to the non-ADS cache is answered with the clusters it names.
func TestADSCacheStallsOnRequestsByName(t *testing.T) {
	reg := newMesh(t).reg
	order, _ := reg.Pod("order-v1-0")
	snap, err := xdsgen.New(reg, meshconfig.Config{}).ForProxyless(order).Snapshot("1")
	require.NoError(t, err)
	node := &core.Node{Id: "n", Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{
		xdsserver.GeneratorMetadataKey: structpb.NewStringValue(xdsserver.GeneratorGRPC)}}}
	req := &discovery.DiscoveryRequest{Node: node, TypeUrl: resource.ClusterType, ResourceNames: []string{"outbound|80||payment.default.svc.cluster.local"}}
	for _, ads := range []bool{true, false} {
		c := cache.NewSnapshotCache(ads, cache.IDHash{}, nil)
		require.NoError(t, c.SetSnapshot(context.Background(), "n", snap))
		out := make(chan cache.Response, 1)
		cancel, err := c.CreateWatch(proto.Clone(req).(*discovery.DiscoveryRequest), stream.NewSotwSubscription(req.ResourceNames, false), out)
		require.NoError(t, err)
		select {
		case r := <-out:
			assert.False(t, ads, "the ADS cache answered a request naming one cluster of many")
			dr, err := r.GetDiscoveryResponse()
			require.NoError(t, err)
			assert.Len(t, dr.GetResources(), 1)
		default:
			// A watch answers synchronously when it can (cache/v3/simple.go CreateWatch).
			assert.True(t, ads, "the non-ADS cache did not answer")
		}
		if cancel != nil {
			cancel()
		}
	}
}
