package docker_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/runtimetest"
	"github.com/meshbench/meshbench/sim/controlplane"
	"github.com/meshbench/meshbench/sim/docker"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/runtime"
)

// meshConfig.accessLogFile on docker: each proxy's container appends to its
// own file in the run's access-log folder (bind-mounted), a line per
// request it passed, and the last lines are written as the proxies stop:
// the gateway and payment one each, order two (in from the gateway, out
// to payment).
func TestAccessLogOneFilePerProxy(t *testing.T) {
	needEngine(t)
	topo := runtimetest.OrderPayment()
	var cfg meshconfig.Config
	cfg.Mesh.AccessLog = meshconfig.AccessLog{File: "/dev/stdout"}
	dir := filepath.Join(t.TempDir(), "access-logs")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := docker.Runtime{Binary: binary}.Start(ctx, runtime.Spec{Topology: topo, Config: cfg, Seed: 1, AccessLogDir: dir})
	require.NoError(t, err)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = m.Stop(context.Background())
		}
	})
	const n = 5
	for range n {
		code, err := order(t, m)
		require.NoError(t, err)
		require.Equal(t, 200, code)
	}
	require.NoError(t, m.Stop(context.Background()))
	stopped = true

	runtimetest.AccessLogs(t, dir, controlplane.Gateway.Name, n)
}
