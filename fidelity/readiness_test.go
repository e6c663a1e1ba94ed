package fidelity

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"istio.io/istio/pilot/cmd/pilot-agent/status/ready"
	"istio.io/istio/pilot/cmd/pilot-agent/status/util"

	"github.com/meshbench/meshbench/sim/ca"
	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/sidecar"
	"github.com/meshbench/meshbench/sim/xdsgen"
	"github.com/meshbench/meshbench/sim/xdsserver"
)

// TestPilotAgentReadinessAcceptsOurAdmin runs pilot-agent's own readiness
// probe (pilot/cmd/pilot-agent/status/ready, what its :15020/healthz/ready
// answers with, and kubelet reads through :15021) against the builtin
// sidecar's Envoy admin API: it must fail while no config is in, and pass
// once CDS and LDS are applied and the server is LIVE.
func TestPilotAgentReadinessAcceptsOurAdmin(t *testing.T) {
	base := [4]byte{127, byte(64 + rand.IntN(160)), byte(rand.IntN(256)), 0}
	next := byte(0)
	reg, err := registry.New(registry.Topology{Services: []registry.Service{
		{Name: "order", Versions: []registry.Version{{Name: "v1"}}, Calls: []string{"payment"}, Path: "/orders"},
		{Name: "payment", Versions: []registry.Version{{Name: "v1"}}, Path: "/pay"},
	}}, func() (netip.Addr, error) { next++; a := base; a[3] = next; return netip.AddrFrom4(a), nil })
	if err != nil {
		t.Fatal(err)
	}
	pod, _ := reg.Pod("order-v1-0")
	authority, err := ca.New(istionames.TrustDomain, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := authority.WorkloadID(pod.Namespace, pod.ServiceAccount)
	cert, err := authority.Issue(id)
	if err != nil {
		t.Fatal(err)
	}
	xds := xdsserver.New(nil)
	if err := xds.Start(context.Background(), "unix://"+t.TempDir()+"/xds.sock"); err != nil {
		t.Fatal(err)
	}
	defer xds.Stop()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	md, _ := structpb.NewStruct(map[string]any{"NAMESPACE": pod.Namespace, "WORKLOAD_NAME": pod.Workload})
	s, err := sidecar.Start(sidecar.Config{
		NodeID: pod.NodeID(), IP: pod.IP, XDS: xds.Addr(), Workload: pod.Workload, Namespace: pod.Namespace,
		Node: &core.Node{Id: pod.NodeID(), Metadata: md}, NodeOnFirstMessageOnly: true,
		Admin: "127.0.0.1:" + strconv.Itoa(port),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	probe := &ready.Probe{LocalHostAddr: "127.0.0.1", AdminPort: uint16(port)}
	if err := probe.Check(); err == nil {
		t.Fatal("pilot-agent's probe passed before any config arrived")
	} else {
		t.Logf("before config: %v", err)
	}

	res := xdsgen.New(reg, meshconfig.Config{}).ForSidecar(pod)
	res.Secrets = xdsgen.Secrets(cert.CertPEM, cert.KeyPEM, authority.RootPEM())
	snap, err := res.Snapshot("1")
	if err != nil {
		t.Fatal(err)
	}
	if err := xds.SetSnapshot(context.Background(), pod.NodeID(), snap); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := probe.Check()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pilot-agent's probe never passed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, err := util.GetUpdateStatusStats("127.0.0.1", uint16(port))
	if err != nil {
		t.Fatal(err)
	}
	if st.CDSUpdatesSuccess == 0 || st.LDSUpdatesSuccess == 0 || st.CDSUpdatesRejection != 0 || st.LDSUpdatesRejection != 0 {
		t.Fatalf("update stats as pilot-agent reads them: %s", st)
	}
}
