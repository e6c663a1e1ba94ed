package xdsserver_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"strconv"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
	"github.com/meshbench/meshbench/sim/xdsserver"
)

// Scale of BenchmarkPushToFullACK: 1,000 services of 3 pods, 100 of the
// pods with a connected sidecar (the others are out of the mesh, as the
// proxies istiod pushes to are the connected ones).
const (
	scaleServices = 1000
	scalePods     = 3
	scaleSidecars = 100
)

// scaleRegistry is the benchmark's mesh: services svc-0000… with one
// version of 3 pods; the first ceil(100/3) services' pods have sidecars.
func scaleRegistry(b *testing.B) (*registry.Registry, []*registry.Pod) {
	b.Helper()
	no := false
	topo := registry.Topology{}
	for i := range scaleServices {
		v := registry.Version{Name: "v1", Replicas: scalePods}
		if i*scalePods >= scaleSidecars {
			v.Sidecar = &no
		}
		topo.Services = append(topo.Services, registry.Service{Name: fmt.Sprintf("svc-%04d", i), Versions: []registry.Version{v}})
	}
	next := netip.MustParseAddr("10.0.0.0")
	reg, err := registry.New(topo, func() (netip.Addr, error) {
		next = next.Next()
		return next, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	var sidecars []*registry.Pod
	for _, p := range reg.Pods {
		p.AppAddr = netip.AddrPortFrom(p.IP, 40000).String()
		if p.Sidecar && len(sidecars) < scaleSidecars {
			sidecars = append(sidecars, p)
		}
	}
	return reg, sidecars
}

// push translates the mesh for every sidecar and publishes it as version.
func push(b *testing.B, s *xdsserver.Server, reg *registry.Registry, sidecars []*registry.Pod, version string) map[string]xdsgen.Resources {
	gen := xdsgen.New(reg, meshconfig.Config{})
	out := make(map[string]xdsgen.Resources, len(sidecars))
	for _, p := range sidecars {
		res := gen.ForSidecar(p)
		snap, err := res.Snapshot(version)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.SetSnapshot(context.Background(), p.NodeID(), snap); err != nil {
			b.Fatal(err)
		}
		out[p.NodeID()] = res
	}
	return out
}

// ackingClient is an ADS client that subscribes to the four types, by
// name for EDS and RDS as Envoy does, and ACKs every response.
func ackingClient(b *testing.B, addr, node string, res xdsgen.Resources) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	b.Cleanup(func() {
		cancel()
		<-done
		_ = conn.Close()
	})
	n := &core.Node{Id: node}
	names := map[string][]string{
		resource.ClusterType:  nil,
		resource.ListenerType: nil,
		resource.EndpointType: nil,
		resource.RouteType:    nil,
	}
	for _, e := range res.Endpoints {
		names[resource.EndpointType] = append(names[resource.EndpointType], e.GetClusterName())
	}
	for _, r := range res.Routes {
		names[resource.RouteType] = append(names[resource.RouteType], r.GetName())
	}
	for _, t := range xdsserver.TypeURLs {
		if err := st.Send(&discovery.DiscoveryRequest{Node: n, TypeUrl: t, ResourceNames: names[t]}); err != nil {
			b.Fatal(err)
		}
	}
	go func() {
		defer close(done)
		for {
			r, err := st.Recv()
			if err != nil {
				return
			}
			ack := &discovery.DiscoveryRequest{Node: n, TypeUrl: r.GetTypeUrl(), VersionInfo: r.GetVersionInfo(), ResponseNonce: r.GetNonce(), ResourceNames: names[r.GetTypeUrl()]}
			if st.Send(ack) != nil {
				return
			}
		}
	}()
}

// BenchmarkPushToFullACK measures one config push at scale: translating
// the mesh (1,000 services × 3 pods) for 100 sidecars, publishing it, and
// every sidecar's ADS stream receiving and ACKing all four types. It
// reports the control plane's live heap after the push (cp-heap-MiB).
func BenchmarkPushToFullACK(b *testing.B) {
	reg, sidecars := scaleRegistry(b)
	s := xdsserver.New(slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := s.Start(ctx, "127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Stop)
	nodes := make([]string, len(sidecars))
	t0 := time.Now()
	first := push(b, s, reg, sidecars, "1")
	b.Logf("first translation and publish: %v", time.Since(t0))
	for i, p := range sidecars {
		nodes[i] = p.NodeID()
		ackingClient(b, s.Addr(), p.NodeID(), first[p.NodeID()])
	}
	if err := s.WaitConverged(ctx, nodes, "1"); err != nil {
		b.Fatal(err)
	}
	b.Logf("first push to full ACK: %v", time.Since(t0))
	b.ResetTimer()
	for i := range b.N {
		v := strconv.Itoa(i + 2)
		push(b, s, reg, sidecars, v)
		if err := s.WaitConverged(ctx, nodes, v); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "cp-heap-MiB")
}
