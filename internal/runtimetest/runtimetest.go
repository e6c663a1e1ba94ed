// Package runtimetest holds what the runtimes' tests share: the smallest
// mesh a request crosses every kind of hop in (gateway → order → payment),
// and checks of what a run folder holds afterwards (one request's trace,
// one access log per proxy), so that every runtime is held to the same.
package runtimetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	meshapi "istio.io/api/mesh/v1alpha1"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/tracing"
)

// OrderPayment is one order pod calling one payment pod: a request through
// the gateway crosses four proxy hops (the gateway, order's inbound and
// outbound, payment's inbound).
func OrderPayment() registry.Topology {
	return registry.Topology{Services: []registry.Service{
		{Name: "order", Path: "/orders", Versions: []registry.Version{{Name: "v1"}}, Calls: []string{"payment"}},
		{Name: "payment", Versions: []registry.Version{{Name: "v1"}}},
	}}
}

// AccessLogs asserts that dir holds one access log per proxy of
// OrderPayment after n requests through gateway: a line per request it
// passed, the gateway and payment one each, order two (in from the
// gateway, out to payment).
func AccessLogs(t *testing.T, dir, gateway string, n int) {
	t.Helper()
	lines := func(proxy string) []string {
		b, err := os.ReadFile(filepath.Join(dir, proxy+".log"))
		require.NoError(t, err, proxy)
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	gw := lines(gateway)
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

// OneTrace reads dir's traces (both files must be there) and asserts that
// they are one trace with 128-bit ids, one root, every other span's parent
// present and started no later than it, and one span of each hop
// ("<localEndpoint service>/<kind>", e.g. "order.default/SERVER") and none
// besides. The gateway's service is its node cluster as pilot-agent sets
// --service-cluster, istio-ingressgateway.istio-system; a router spawns an
// upstream span (spawn_upstream_span, as istiod sets it for a Router), so
// it has a SERVER span and a CLIENT child for its call. It returns the
// spans.
func OneTrace(t *testing.T, dir string, hops ...string) []tracing.Span {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, tracing.ZipkinFile))
	require.NoError(t, err)
	defer f.Close()
	spans, err := tracing.ReadZipkin(f)
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, tracing.OTLPFile))
	require.NoError(t, err, "the OTLP/JSON copy is written too")

	byID := map[string]tracing.Span{}
	traces := map[string]bool{}
	count := map[string]int{}
	for _, s := range spans {
		traces[s.TraceID] = true
		byID[s.ID] = s
		if s.LocalEndpoint != nil {
			count[s.LocalEndpoint.ServiceName+"/"+string(s.Kind)]++
		}
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
		if assert.True(t, ok, "span %s (%s) has its parent %s", s.ID, s.Kind, s.ParentID) {
			assert.LessOrEqual(t, p.Timestamp, s.Timestamp, "a child starts after its parent")
		}
	}
	assert.Equal(t, 1, roots, "one root span")
	for _, hop := range hops {
		assert.Equal(t, 1, count[hop], "one span of %s: %v", hop, count)
	}
	assert.Len(t, spans, len(hops), "no span besides the hops': %v", count)
	return spans
}

// ZipkinMesh is a mesh config whose tracing goes to Istio's Zipkin addon
// (meshConfig extensionProviders and defaultProviders.tracing) at sampling
// percent.
func ZipkinMesh(sampling float64) meshconfig.Config {
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
