package local

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/runtimetest"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/runtime"
)

// A request through ingress → order → payment is one trace: a span per
// proxy hop (the gateway's server span and the client span it spawns for
// its call, order's inbound and outbound, payment's inbound), each linked
// to the one before, as Jaeger would draw it. The
// spans reach the collector the runtime serves for the provider, through
// the cluster istiod's config names, and land in the run folder.
func TestOneRequestIsOneTraceWithASpanPerHop(t *testing.T) {
	topo := runtimetest.OrderPayment()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := Runtime{}.Start(ctx, runtime.Spec{Topology: topo, Config: runtimetest.ZipkinMesh(100), Seed: 1, TraceDir: dir})
	require.NoError(t, err)
	c := &http.Client{Transport: &http.Transport{}}
	code, r := order(t, c, m, nil)
	require.Equal(t, 200, code, "%+v", r)
	c.CloseIdleConnections()
	require.NoError(t, m.Stop(context.Background()), "stopping flushes the proxies' spans")

	// Service names are Envoy's --service-cluster as pilot-agent sets it:
	// <canonical service>.<namespace> (tracing.go's serviceName).
	spans := runtimetest.OneTrace(t, dir,
		"istio-ingressgateway.istio-system/SERVER", "istio-ingressgateway.istio-system/CLIENT",
		"order.default/SERVER", "order.default/CLIENT", "payment.default/SERVER")
	for _, s := range spans {
		if s.LocalEndpoint.ServiceName == "payment.default" {
			assert.Equal(t, "200", s.Tags["http.status_code"])
			assert.Equal(t, "payment", s.Tags["istio.canonical_service"], "istiod's custom tags ride on the span")
		}
	}
}

// With no tracing provider (Istio 1.31's default install) nothing is
// collected and the run folder gets no trace files.
func TestNoProviderNoCollectorNoFiles(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := Runtime{}.Start(ctx, runtime.Spec{Topology: registry.DefaultTopology(), Seed: 1, TraceDir: dir})
	require.NoError(t, err)
	assert.Nil(t, m.(*Mesh).collector)
	c := &http.Client{Transport: &http.Transport{}}
	code, _ := order(t, c, m, nil)
	require.Equal(t, 200, code)
	c.CloseIdleConnections()
	require.NoError(t, m.Stop(context.Background()))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries)
}
