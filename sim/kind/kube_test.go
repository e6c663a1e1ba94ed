package kind

import (
	"context"
	telemetryv1 "istio.io/client-go/pkg/apis/telemetry/v1"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/runtime"
)

// An entry the load cannot be sent to is refused before the cluster is
// asked anything (the kubeconfig here names no cluster at all).
func TestKubeRefusesABadEntry(t *testing.T) {
	for _, entry := range []string{"127.0.0.1:8080", "https://gw:443", "http://", "http://gw:80/prefix", "://x"} {
		k := Kube{Kubeconfig: "/nonexistent", AppImage: "app", Entry: entry}
		_, err := k.Start(context.Background(), runtime.Spec{Topology: registry.DefaultTopology()})
		require.Error(t, err, entry)
		assert.Contains(t, err.Error(), "not an http://HOST:PORT URL", entry)
	}
	for _, entry := range []string{"", "http://127.0.0.1:30080", "http://gw.example:80/"} {
		assert.NoError(t, checkEntry(entry), entry)
	}
}

// Through a direct entry the kube runtime holds the kind runtime's rate;
// through a port forward, less.
func TestKubeRateFollowsTheEntry(t *testing.T) {
	assert.Equal(t, Runtime{}.MaxRate(), Kube{Entry: "http://127.0.0.1:1"}.MaxRate())
	assert.Less(t, Kube{}.MaxRate(), Runtime{}.MaxRate())
}

// Both cluster runtimes ramp their warm-ups up for longer than the
// default, which runtimes that ask for nothing get.
func TestClusterRuntimesWarmUpLonger(t *testing.T) {
	for _, rt := range []runtime.Runtime{Runtime{}, Kube{}} {
		assert.Equal(t, 3*time.Second, runtime.Warmup(rt), rt.Name())
		assert.Greater(t, runtime.Warmup(rt), runtime.DefaultWarmup)
	}
	var plain struct{ runtime.Runtime }
	assert.Equal(t, runtime.DefaultWarmup, runtime.Warmup(plain))
}

// A bad certificate (topology cert) cannot be given to a pod whose
// certificate pilot-agent gets from istiod's CA: both cluster runtimes
// refuse it before anything is made (the kubeconfig names no cluster, and
// no image is looked for).
func TestClusterRuntimesRefuseABadCertificate(t *testing.T) {
	topo := registry.DefaultTopology()
	topo.Services[1].Versions[0].Cert = "foreign"
	for _, rt := range []runtime.Runtime{Runtime{}, Kube{Kubeconfig: "/nonexistent", AppImage: "app"}} {
		_, err := rt.Start(context.Background(), runtime.Spec{Topology: topo})
		require.ErrorIs(t, err, runtime.ErrUnsupported, rt.Name())
		assert.Contains(t, err.Error(), "istiod's CA", rt.Name())
	}
}

// Tracing (a Telemetry resource, meshConfig tracing) is refused by both
// cluster runtimes before anything is made: no collector runs there.
func TestClusterRuntimesRefuseTracing(t *testing.T) {
	tel := &telemetryv1.Telemetry{}
	tel.Name, tel.Namespace = "mesh-default", "istio-system"
	for name, cfg := range map[string]meshconfig.Config{
		"telemetry":  {Telemetries: []*telemetryv1.Telemetry{tel}},
		"meshConfig": {Mesh: meshconfig.MeshSettings{Tracing: &meshconfig.Tracing{DefaultProviders: []string{"zipkin"}}}},
	} {
		for _, rt := range []runtime.Runtime{Runtime{}, Kube{Kubeconfig: "/nonexistent", AppImage: "app"}} {
			_, err := rt.Start(context.Background(), runtime.Spec{Topology: registry.DefaultTopology(), Config: cfg})
			require.ErrorIs(t, err, runtime.ErrUnsupported, "%s on %s", name, rt.Name())
			assert.Contains(t, err.Error(), "no trace collector", rt.Name())
		}
	}
}
