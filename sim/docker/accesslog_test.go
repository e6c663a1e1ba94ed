package docker_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/controlplane"
	"github.com/meshbench/meshbench/sim/docker"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/runtime"
)

// meshConfig.accessLogFile on docker: each proxy's container appends to its
// own file in the run's access-log folder (bind-mounted), a line per
// request it passed, and the last lines are written as the proxies stop:
// the gateway and payment one each, order two (in from the gateway, out
// to payment).
func TestAccessLogOneFilePerProxy(t *testing.T) {
	needEngine(t)
	topo := registry.Topology{Services: []registry.Service{
		{Name: "order", Path: "/orders", Versions: []registry.Version{{Name: "v1"}}, Calls: []string{"payment"}},
		{Name: "payment", Versions: []registry.Version{{Name: "v1"}}},
	}}
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

	lines := func(proxy string) []string {
		b, err := os.ReadFile(filepath.Join(dir, proxy+".log"))
		require.NoError(t, err, proxy)
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	gw := lines(controlplane.Gateway.Name)
	require.Len(t, gw, n)
	assert.Contains(t, gw[0], `"POST /orders HTTP/1.1" 200 - via_upstream`)
	assert.Len(t, lines("order-v1-0"), 2*n)
	pay := lines("payment-v1-0")
	require.Len(t, pay, n)
	assert.Contains(t, pay[0], " inbound|")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 3, "one file per proxy")
}
