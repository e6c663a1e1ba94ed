package docker_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/runtimetest"
	"github.com/meshbench/meshbench/sim/docker"
	"github.com/meshbench/meshbench/sim/runtime"
)

// A request through ingress → order → payment, in containers, is one trace
// with a span per proxy hop: the proxies send their spans to the collector
// the runtime serves on the network's host address, and the last ones as
// they stop.
func TestOneRequestIsOneTraceWithASpanPerHop(t *testing.T) {
	needEngine(t)
	topo := runtimetest.OrderPayment()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := docker.Runtime{Binary: binary}.Start(ctx, runtime.Spec{Topology: topo, Config: runtimetest.ZipkinMesh(100), Seed: 1, TraceDir: dir})
	require.NoError(t, err)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = m.Stop(context.Background())
		}
	})
	code, err := order(t, m)
	require.NoError(t, err)
	require.Equal(t, 200, code)
	require.NoError(t, m.Stop(context.Background()))
	stopped = true
	runtimetest.OneTrace(t, dir,
		"istio-ingressgateway.istio-system/SERVER", "istio-ingressgateway.istio-system/CLIENT",
		"order.default/SERVER", "order.default/CLIENT", "payment.default/SERVER")
}
