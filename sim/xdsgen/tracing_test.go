package xdsgen_test

import (
	"net/netip"
	"testing"
	"time"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tracecfg "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	uuidv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/request_id/uuid/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"
	meshapi "istio.io/api/mesh/v1alpha1"
	telemetryapi "istio.io/api/telemetry/v1alpha1"
	typev1beta1 "istio.io/api/type/v1beta1"
	telemetryv1 "istio.io/client-go/pkg/apis/telemetry/v1"

	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// listenerHCM is one HTTP connection manager and its listener's name.
type listenerHCM struct {
	listener string
	hcm      *hcm.HttpConnectionManager
}

// allHCMs are the HTTP connection managers of listeners, in order.
func allHCMs(t *testing.T, ls []*listener.Listener) []listenerHCM {
	t.Helper()
	var out []listenerHCM
	for _, l := range ls {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				if f.GetName() != "envoy.filters.network.http_connection_manager" {
					continue
				}
				m := &hcm.HttpConnectionManager{}
				require.NoError(t, f.GetTypedConfig().UnmarshalTo(m))
				out = append(out, listenerHCM{l.GetName(), m})
			}
		}
	}
	return out
}

// hcmsOf are the HTTP connection managers of listeners by listener name
// (the inbound listener's chains share one name and one tracing: the
// last wins).
func hcmsOf(t *testing.T, ls []*listener.Listener) map[string]*hcm.HttpConnectionManager {
	t.Helper()
	out := map[string]*hcm.HttpConnectionManager{}
	for _, h := range allHCMs(t, ls) {
		out[h.listener] = h.hcm
	}
	return out
}

var collector = xdsgen.DefaultCollector(netip.MustParseAddrPort("127.0.0.9:19411"))

var zipkinProvider = &meshapi.MeshConfig_ExtensionProvider{Name: "zipkin", Provider: &meshapi.MeshConfig_ExtensionProvider_Zipkin{
	Zipkin: &meshapi.MeshConfig_ExtensionProvider_ZipkinTracingProvider{Service: "zipkin.istio-system.svc.cluster.local", Port: 9411},
}}

func telemetry(ns, name string, selector map[string]string, rule *telemetryapi.Tracing) *telemetryv1.Telemetry {
	t := &telemetryv1.Telemetry{}
	t.Name, t.Namespace = name, ns
	if selector != nil {
		t.Spec.Selector = &typev1beta1.WorkloadSelector{MatchLabels: selector}
	}
	t.Spec.Tracing = []*telemetryapi.Tracing{rule}
	return t
}

// Istio 1.31's default install: enableTracing true (DefaultMeshConfig),
// no Telemetry and no tracing provider, so every HCM takes the legacy
// path (tracing.go configureTracingFromTelemetry): sampling at
// PILOT_TRACE_SAMPLING's 1%, client and overall 100%, no provider (the
// bootstrap's, if any), Istio's service tags and the RBAC dry-run tags;
// and the UUID request ID that samples by x-request-id.
func TestTracingDefaults(t *testing.T) {
	reg := defaultRegistry(t)
	g := xdsgen.New(reg, meshconfig.Config{})
	ms := hcmsOf(t, g.ForSidecar(pod(t, reg, "order-v1-0")).Listeners)
	require.Contains(t, ms, "0.0.0.0_80")
	require.Contains(t, ms, istionames.VirtualInboundListener)
	for name, m := range ms {
		tr := m.GetTracing()
		require.NotNil(t, tr, name)
		assert.Equal(t, 1.0, tr.GetRandomSampling().GetValue(), name) // PILOT_TRACE_SAMPLING (pilot/pkg/features/telemetry.go)
		assert.Equal(t, 100.0, tr.GetClientSampling().GetValue(), name)
		assert.Equal(t, 100.0, tr.GetOverallSampling().GetValue(), name)
		assert.Nil(t, tr.GetProvider(), name)
		assert.Nil(t, tr.GetSpawnUpstreamSpan(), name)
		var tags []string
		literal := map[string]string{}
		for _, c := range tr.GetCustomTags() {
			tags = append(tags, c.GetTag())
			if c.GetLiteral() != nil {
				literal[c.GetTag()] = c.GetLiteral().GetValue()
			}
		}
		assert.Equal(t, []string{
			"istio.authorization.dry_run.allow_policy.name", "istio.authorization.dry_run.allow_policy.result",
			"istio.authorization.dry_run.deny_policy.name", "istio.authorization.dry_run.deny_policy.result",
			"istio.canonical_revision", "istio.canonical_service", "istio.cluster_id", "istio.mesh_id", "istio.namespace",
		}, tags, "sorted by tag")
		// The injector's canonical labels (app, version), the mesh ID
		// (trust domain) and cluster ID (Kubernetes) it sets.
		assert.Equal(t, map[string]string{
			"istio.canonical_revision": "v1", "istio.canonical_service": "order",
			"istio.cluster_id": "Kubernetes", "istio.mesh_id": "cluster.local", "istio.namespace": "default",
		}, literal)
		requireUUIDRequestID(t, m)
	}
}

func requireUUIDRequestID(t *testing.T, m *hcm.HttpConnectionManager) {
	t.Helper()
	u := &uuidv3.UuidRequestIdConfig{}
	require.NoError(t, m.GetRequestIdExtension().GetTypedConfig().UnmarshalTo(u))
	assert.True(t, u.GetUseRequestIdForTraceSampling().GetValue())
}

// enableTracing: false leaves every HCM without tracing; a Telemetry with
// disableSpanReporting on one side leaves that side without.
func TestTracingOff(t *testing.T) {
	reg := defaultRegistry(t)
	var cfg meshconfig.Config
	cfg.Mesh.Tracing = &meshconfig.Tracing{Disabled: true}
	for name, m := range hcmsOf(t, xdsgen.New(reg, cfg).ForSidecar(pod(t, reg, "order-v1-0")).Listeners) {
		assert.Nil(t, m.GetTracing(), name)
		requireUUIDRequestID(t, m)
	}

	cfg.Mesh.Tracing = &meshconfig.Tracing{Providers: []*meshapi.MeshConfig_ExtensionProvider{zipkinProvider}, DefaultProviders: []string{"zipkin"}}
	cfg.Telemetries = []*telemetryv1.Telemetry{telemetry("default", "server-off", nil, &telemetryapi.Tracing{
		Match:                &telemetryapi.Tracing_TracingSelector{Mode: telemetryapi.WorkloadMode_SERVER},
		DisableSpanReporting: wrapperspb.Bool(true),
	})}
	ms := hcmsOf(t, xdsgen.New(reg, cfg, xdsgen.WithCollector(collector)).ForSidecar(pod(t, reg, "order-v1-0")).Listeners)
	assert.Nil(t, ms[istionames.VirtualInboundListener].GetTracing(), "SERVER side off")
	assert.NotNil(t, ms["0.0.0.0_80"].GetTracing(), "CLIENT side on")
}

// A mesh-wide Telemetry at 10% to a Zipkin provider: the tracer config
// istiod gives a 1.31 proxy (zipkinConfig: the collector as an HttpService
// to outbound|9411||zipkin.istio-system.svc.cluster.local, /api/v2/spans,
// 5s, v2 JSON, 128-bit trace IDs, no shared span context, B3), and the
// collector's cluster and endpoint in every proxy's resources.
func TestTracingTelemetryToZipkin(t *testing.T) {
	reg := defaultRegistry(t)
	var cfg meshconfig.Config
	cfg.Mesh.Tracing = &meshconfig.Tracing{Providers: []*meshapi.MeshConfig_ExtensionProvider{zipkinProvider}}
	cfg.Telemetries = []*telemetryv1.Telemetry{
		telemetry(meshconfig.RootNamespace, "mesh-default", nil, &telemetryapi.Tracing{
			Providers:                []*telemetryapi.ProviderRef{{Name: "zipkin"}},
			RandomSamplingPercentage: wrapperspb.Double(10),
		}),
		// Another workload's: no effect on order's sidecar.
		telemetry("default", "payment", map[string]string{"app": "payment"}, &telemetryapi.Tracing{RandomSamplingPercentage: wrapperspb.Double(50)}),
	}
	g := xdsgen.New(reg, cfg, xdsgen.WithCollector(collector))
	r := g.ForSidecar(pod(t, reg, "order-v1-0"))
	ms := hcmsOf(t, r.Listeners)
	for _, name := range []string{"0.0.0.0_80", istionames.VirtualInboundListener} {
		tr := ms[name].GetTracing()
		require.NotNil(t, tr, name)
		assert.Equal(t, 10.0, tr.GetRandomSampling().GetValue(), name)
		assert.Nil(t, tr.GetSpawnUpstreamSpan(), "a sidecar spawns no upstream span")
		requireZipkin(t, tr)
	}

	name := "outbound|9411||zipkin.istio-system.svc.cluster.local"
	var found bool
	for _, c := range r.Clusters {
		found = found || c.GetName() == name
	}
	assert.True(t, found, "the collector's cluster")
	var ep string
	for _, cla := range r.Endpoints {
		if cla.GetClusterName() == name {
			sa := cla.GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
			ep = netip.AddrPortFrom(netip.MustParseAddr(sa.GetAddress()), uint16(sa.GetPortValue())).String()
		}
	}
	assert.Equal(t, "127.0.0.9:19411", ep, "the collector's endpoint")

	// The gateway takes the client side, and starts a child span for its
	// upstream call (startChildSpan := proxy.Type == model.Router).
	gw := g.ForGateway(xdsgen.Gateway{Name: "istio-ingressgateway", Namespace: meshconfig.RootNamespace, Port: 8080, Labels: map[string]string{"istio": "ingressgateway"}})
	tr := hcmsOf(t, gw.Listeners)["0.0.0.0_8080"].GetTracing()
	require.NotNil(t, tr)
	assert.True(t, tr.GetSpawnUpstreamSpan().GetValue())
	requireZipkin(t, tr)
	for _, c := range tr.GetCustomTags() {
		if c.GetTag() == "istio.canonical_service" {
			assert.Equal(t, "istio-ingressgateway", c.GetLiteral().GetValue(), "the Deployment's name without an app label")
		}
	}
}

func requireZipkin(t *testing.T, tr *hcm.HttpConnectionManager_Tracing) {
	t.Helper()
	require.Equal(t, xdsgen.ZipkinTracer, tr.GetProvider().GetName())
	z := &tracecfg.ZipkinConfig{}
	require.NoError(t, tr.GetProvider().GetTypedConfig().UnmarshalTo(z))
	uri := z.GetCollectorService().GetHttpUri()
	assert.Equal(t, "http://zipkin.istio-system.svc.cluster.local/api/v2/spans", uri.GetUri())
	assert.Equal(t, "outbound|9411||zipkin.istio-system.svc.cluster.local", uri.GetCluster())
	assert.Equal(t, 5*time.Second, uri.GetTimeout().AsDuration())
	assert.Equal(t, tracecfg.ZipkinConfig_HTTP_JSON, z.GetCollectorEndpointVersion())
	assert.True(t, z.GetTraceId_128Bit())
	assert.False(t, z.GetSharedSpanContext().GetValue())
	require.NotNil(t, z.GetSharedSpanContext())
	assert.Equal(t, tracecfg.ZipkinConfig_USE_B3, z.GetTraceContextOption())
	assert.Empty(t, z.GetCollectorCluster(), "1.29+ proxies get collector_service, not the legacy fields")
}

// A provider whose service the mesh does not have gets no tracing, as
// istiod's LookupCluster failure does ("Not able to configure requested
// tracing provider"); with the collector in the mesh it does.
func TestTracingProviderNeedsTheCollector(t *testing.T) {
	reg := defaultRegistry(t)
	var cfg meshconfig.Config
	cfg.Mesh.Tracing = &meshconfig.Tracing{Providers: []*meshapi.MeshConfig_ExtensionProvider{zipkinProvider}, DefaultProviders: []string{"zipkin"}}
	p := pod(t, reg, "order-v1-0")
	without := hcmsOf(t, xdsgen.New(reg, cfg).ForSidecar(p).Listeners)["0.0.0.0_80"]
	assert.Nil(t, without.GetTracing())
	with := hcmsOf(t, xdsgen.New(reg, cfg, xdsgen.WithCollector(collector)).ForSidecar(p).Listeners)["0.0.0.0_80"]
	require.NotNil(t, with.GetTracing())
	assert.Equal(t, 1.0, with.GetTracing().GetRandomSampling().GetValue(), "no Telemetry sampling: PILOT_TRACE_SAMPLING")
}

// defaultConfig.tracing in the legacy path: its sampling, custom tags
// (after Istio's, sorted) and max path tag length.
func TestTracingProxyConfig(t *testing.T) {
	reg := defaultRegistry(t)
	var cfg meshconfig.Config
	cfg.Mesh.Tracing = &meshconfig.Tracing{Proxy: &meshapi.Tracing{
		Sampling: 25, MaxPathTagLength: 99,
		CustomTags: map[string]*meshapi.Tracing_CustomTag{
			"zz-user": {Type: &meshapi.Tracing_CustomTag_Header{Header: &meshapi.Tracing_RequestHeader{Name: "x-user", DefaultValue: "-"}}},
		},
	}}
	tr := hcmsOf(t, xdsgen.New(reg, cfg).ForSidecar(pod(t, reg, "order-v1-0")).Listeners)["0.0.0.0_80"].GetTracing()
	require.NotNil(t, tr)
	assert.Equal(t, 25.0, tr.GetRandomSampling().GetValue())
	assert.Equal(t, uint32(99), tr.GetMaxPathTagLength().GetValue())
	tags := tr.GetCustomTags()
	require.Len(t, tags, 10)
	last := tags[len(tags)-1]
	assert.Equal(t, "zz-user", last.GetTag())
	assert.Equal(t, "x-user", last.GetRequestHeader().GetName())
}

// The collector a runtime serves is the Service the first Zipkin provider
// names outside the mesh's own services, on the provider's port.
func TestCollectorFor(t *testing.T) {
	reg := defaultRegistry(t)
	provider := func(service string, port uint32) *meshapi.MeshConfig_ExtensionProvider {
		return &meshapi.MeshConfig_ExtensionProvider{Name: service, Provider: &meshapi.MeshConfig_ExtensionProvider_Zipkin{
			Zipkin: &meshapi.MeshConfig_ExtensionProvider_ZipkinTracingProvider{Service: service, Port: port},
		}}
	}
	c, ok := xdsgen.CollectorFor(meshconfig.Tracing{Providers: []*meshapi.MeshConfig_ExtensionProvider{zipkinProvider}}, reg)
	require.True(t, ok)
	assert.Equal(t, xdsgen.Collector{Name: "zipkin", Namespace: "istio-system", Port: 9411}, c)

	c, ok = xdsgen.CollectorFor(meshconfig.Tracing{Providers: []*meshapi.MeshConfig_ExtensionProvider{
		provider("payment.default.svc.cluster.local", 80), // a mesh service: not ours to serve
		provider("zipkin", 9411),                          // not a Service hostname
		provider("observability/jaeger.observability.svc.cluster.local", 9412),
	}}, reg)
	require.True(t, ok)
	assert.Equal(t, xdsgen.Collector{Name: "jaeger", Namespace: "observability", Port: 9412}, c)

	_, ok = xdsgen.CollectorFor(meshconfig.Tracing{}, reg)
	assert.False(t, ok, "no provider, no collector")
}
