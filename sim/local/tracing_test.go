package local

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	meshapi "istio.io/api/mesh/v1alpha1"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/runtime"
	"github.com/meshbench/meshbench/sim/tracing"
)

// zipkinTracing is a mesh whose tracing goes to Istio's Zipkin addon
// (meshConfig extensionProviders and defaultProviders.tracing) at sampling
// percent.
func zipkinTracing(sampling float64) meshconfig.Config {
	var cfg meshconfig.Config
	cfg.Mesh.Tracing = &meshconfig.Tracing{
		Proxy: &meshapi.Tracing{Sampling: sampling},
		Providers: []*meshapi.MeshConfig_ExtensionProvider{{Name: "zipkin", Provider: &meshapi.MeshConfig_ExtensionProvider_Zipkin{
			Zipkin: &meshapi.MeshConfig_ExtensionProvider_ZipkinTracingProvider{Service: "zipkin.istio-system.svc.cluster.local", Port: 9411},
		}}},
		DefaultProviders: []string{"zipkin"},
	}
	return cfg
}

// A request through ingress → order → payment is one trace: a span per
// proxy hop (the gateway's, order's inbound and outbound, payment's
// inbound), each linked to the one before, as Jaeger would draw it. The
// spans reach the collector the runtime serves for the provider, through
// the cluster istiod's config names, and land in the run folder.
func TestOneRequestIsOneTraceWithASpanPerHop(t *testing.T) {
	topo := registry.Topology{Services: []registry.Service{
		{Name: "order", Path: "/orders", Versions: []registry.Version{{Name: "v1"}}, Calls: []string{"payment"}},
		{Name: "payment", Versions: []registry.Version{{Name: "v1"}}},
	}}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := Runtime{}.Start(ctx, runtime.Spec{Topology: topo, Config: zipkinTracing(100), Seed: 1, TraceDir: dir})
	require.NoError(t, err)
	c := &http.Client{Transport: &http.Transport{}}
	code, r := order(t, c, m, nil)
	require.Equal(t, 200, code, "%+v", r)
	c.CloseIdleConnections()
	require.NoError(t, m.Stop(context.Background()), "stopping flushes the proxies' spans")

	f, err := os.Open(filepath.Join(dir, tracing.ZipkinFile))
	require.NoError(t, err)
	defer f.Close()
	spans, err := tracing.ReadZipkin(f)
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, tracing.OTLPFile))
	require.NoError(t, err, "the OTLP/JSON copy is written too")

	byID := map[string]tracing.Span{}
	traces := map[string]bool{}
	hops := map[string]int{} // service/kind → spans
	for _, s := range spans {
		traces[s.TraceID] = true
		byID[s.ID] = s
		hops[s.LocalEndpoint.ServiceName+"/"+string(s.Kind)]++
	}
	require.Len(t, traces, 1, "one request, one trace: %+v", spans)
	for id := range traces {
		assert.Len(t, id, 32, "istiod asks for 128-bit trace ids (trace_id_128bit)")
	}
	roots := 0
	for _, s := range spans {
		if s.ParentID == "" {
			roots++
			continue
		}
		p, ok := byID[s.ParentID]
		if assert.True(t, ok, "span %s (%s %s) has its parent %s", s.ID, s.LocalEndpoint.ServiceName, s.Kind, s.ParentID) {
			assert.LessOrEqual(t, p.Timestamp, s.Timestamp, "a child starts after its parent")
		}
	}
	assert.Equal(t, 1, roots, "the gateway's span is the one root")
	// Service names are Envoy's --service-cluster as pilot-agent sets it:
	// <canonical service>.<namespace> (tracing.go's serviceName).
	for _, hop := range []string{"order.default/SERVER", "order.default/CLIENT", "payment.default/SERVER"} {
		assert.Equal(t, 1, hops[hop], "one span of %s: %v", hop, hops)
	}
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
