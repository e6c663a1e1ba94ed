package fidelity

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/meshbench/meshbench/scenarios/catalog"
	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/sidecar"
	"github.com/meshbench/meshbench/sim/xdsserver"
)

// istiodFor runs istiod's translation of a scenario for the sidecar of
// its caller pod, as the oracle does, and returns it with the registry;
// pods are addressed from after base on.
func istiodFor(t *testing.T, sc *spec.Scenario, base netip.Addr) (Side, *registry.Registry, *registry.Pod) {
	t.Helper()
	topo := registry.DefaultTopology()
	if sc.Topology != nil {
		topo = *sc.Topology
	}
	next := base
	reg, err := registry.New(topo, func() (netip.Addr, error) {
		next = next.Next()
		return next, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pod := callerPod(t, reg)
	text, n, err := istioYAML(sc.Config)
	if err != nil {
		t.Fatal(err)
	}
	cfgs, err := istioConfigs(text, n)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return istioSide(t, reg, cfgs, sc.Config, pod), reg, pod
}

// snapshotOf is istiod's output, unmodified, as one xDS snapshot.
func snapshotOf(t *testing.T, side Side, version string) *cache.Snapshot {
	t.Helper()
	res := map[resource.Type][]types.Resource{}
	for _, c := range side.Clusters {
		res[resource.ClusterType] = append(res[resource.ClusterType], c)
	}
	for _, e := range side.Endpoints {
		res[resource.EndpointType] = append(res[resource.EndpointType], e)
	}
	for _, l := range side.Listeners {
		res[resource.ListenerType] = append(res[resource.ListenerType], l)
	}
	for _, r := range side.Routes {
		res[resource.RouteType] = append(res[resource.RouteType], r)
	}
	snap, err := cache.NewSnapshot(version, res)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// freeLoopback picks a 127.x address whose sidecar ports are free.
func freeLoopback(t *testing.T) netip.Addr {
	t.Helper()
	for range 50 {
		a := netip.AddrFrom4([4]byte{127, byte(64 + rand.IntN(160)), byte(rand.IntN(256)), byte(1 + rand.IntN(250))})
		free := true
		for _, port := range []int{15001, 15006, 15090, 8080} {
			l, err := net.Listen("tcp", net.JoinHostPort(a.String(), strconv.Itoa(port)))
			if err != nil {
				free = false
				break
			}
			_ = l.Close()
		}
		if free {
			return a
		}
	}
	t.Fatal("no free loopback address")
	return netip.Addr{}
}

// TestIstiodConfigAccepted serves, for every catalog scenario, the xDS
// istiod generates for the caller pod's sidecar, unmodified, over a real
// ADS stream to a builtin sidecar in interception mode, and requires an
// ACK of every type: nothing istiod sends for the catalog may be refused.
func TestIstiodConfigAccepted(t *testing.T) {
	all, err := catalog.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range all {
		t.Run(sc.Name, func(t *testing.T) {
			side, _, pod := istiodFor(t, sc, netip.MustParseAddr("10.0.0.0"))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srv := xdsserver.New(nil)
			if err := srv.Start(ctx, "127.0.0.1:0"); err != nil {
				t.Fatal(err)
			}
			defer srv.Stop()
			node := pod.Name + "." + pod.Namespace
			if err := srv.SetSnapshot(ctx, node, snapshotOf(t, side, "istiod-1")); err != nil {
				t.Fatal(err)
			}
			ip := freeLoopback(t)
			sc, err := sidecar.Start(sidecar.Config{
				NodeID: node, IP: ip, XDS: srv.Addr(), Intercept: true, InterceptBindIP: ip,
				Workload: pod.Workload, Namespace: pod.Namespace, App: pod.Labels["app"], Version: pod.Labels["version"],
			})
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			for {
				for _, n := range srv.Nacks() {
					t.Fatalf("the sidecar NACKed istiod's %s: %s", n.TypeURL, n.Reason)
				}
				done := true
				for _, typ := range xdsserver.TypeURLs {
					if srv.Acked(node, typ) != "istiod-1" {
						done = false
					}
				}
				if done {
					return
				}
				select {
				case <-ctx.Done():
					for _, typ := range xdsserver.TypeURLs {
						t.Logf("%s: acked %q", typ, srv.Acked(node, typ))
					}
					t.Fatal("the sidecar did not ACK every type in time")
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
	}
}
