package local

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/runtimetest"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/runtime"
)

// meshConfig.accessLogFile: each proxy writes its own file in the given
// folder, a line per request it passed: the gateway and payment one each,
// order two (in from the gateway, out to payment).
func TestAccessLogOneFilePerProxy(t *testing.T) {
	topo := runtimetest.OrderPayment()
	var cfg meshconfig.Config
	cfg.Mesh.AccessLog = meshconfig.AccessLog{File: "/dev/stdout"}
	dir := filepath.Join(t.TempDir(), "access-logs")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := Runtime{}.Start(ctx, runtime.Spec{Topology: topo, Config: cfg, Seed: 1, AccessLogDir: dir})
	require.NoError(t, err)
	c := &http.Client{Transport: &http.Transport{}}
	const n = 5
	for range n {
		code, r := order(t, c, m, nil)
		require.Equal(t, 200, code, "%+v", r)
	}
	c.CloseIdleConnections()
	require.NoError(t, m.Stop(context.Background()))

	runtimetest.AccessLogs(t, dir, Gateway.Name, n)
}

// Without accessLogFile no file is made.
func TestAccessLogOffByDefault(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "access-logs")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := Runtime{}.Start(ctx, runtime.Spec{Topology: registry.DefaultTopology(), Seed: 1, AccessLogDir: dir})
	require.NoError(t, err)
	c := &http.Client{Transport: &http.Transport{}}
	code, _ := order(t, c, m, nil)
	require.Equal(t, 200, code)
	c.CloseIdleConnections()
	require.NoError(t, m.Stop(context.Background()))
	assert.NoDirExists(t, dir)
}
