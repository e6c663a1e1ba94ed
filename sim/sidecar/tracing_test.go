package sidecar

import (
	"bytes"
	"context"
	"fmt"
	metadatav3 "github.com/envoyproxy/go-control-plane/envoy/type/metadata/v3"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	trace "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tracingv3 "github.com/envoyproxy/go-control-plane/envoy/type/tracing/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/stat/distuv"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/tracing"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

const collectorCluster = "zipkin"

// istioTracing is the HCM tracing istiod sends for a Zipkin provider
// (pilot/pkg/networking/core/tracing.go: random_sampling from the
// Telemetry or meshConfig, trace_id_128bit, collector_endpoint
// /api/v2/spans, the istio.* custom tags), at the given sampling.
func istioTracing(t *testing.T, percent float64, edit ...func(*trace.ZipkinConfig)) *hcm.HttpConnectionManager_Tracing {
	z := &trace.ZipkinConfig{
		CollectorCluster: collectorCluster, CollectorEndpoint: tracing.ZipkinPath, TraceId_128Bit: true,
		CollectorEndpointVersion: trace.ZipkinConfig_HTTP_JSON, SharedSpanContext: wrapperspb.Bool(false),
		CollectorHostname: "zipkin.istio-system",
	}
	for _, e := range edit {
		e(z)
	}
	tc, err := anypb.New(z)
	require.NoError(t, err)
	return &hcm.HttpConnectionManager_Tracing{
		RandomSampling: &typev3.Percent{Value: percent},
		Provider:       &trace.Tracing_Http{Name: zipkinTracerName, ConfigType: &trace.Tracing_Http_TypedConfig{TypedConfig: tc}},
		CustomTags: []*tracingv3.CustomTag{
			{Tag: "istio.mesh_id", Type: &tracingv3.CustomTag_Literal_{Literal: &tracingv3.CustomTag_Literal{Value: "cluster.local"}}},
			{Tag: "istio.canonical_service", Type: &tracingv3.CustomTag_Environment_{Environment: &tracingv3.CustomTag_Environment{Name: "MESHBENCH_TEST_UNSET_VAR", DefaultValue: "svc"}}},
			{Tag: "x-test", Type: &tracingv3.CustomTag_RequestHeader{RequestHeader: &tracingv3.CustomTag_Header{Name: "x-test", DefaultValue: "none"}}},
		},
	}
}

// withTracing sets tr on every HTTP connection manager and adds the
// collector's cluster, a STATIC one at addr.
func withTracing(t *testing.T, addr string, tr *hcm.HttpConnectionManager_Tracing) func(*xdsgen.Resources) {
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	return func(res *xdsgen.Resources) {
		for _, l := range res.Listeners {
			for _, fc := range l.GetFilterChains() {
				for _, f := range fc.GetFilters() {
					if f.GetName() != wellknown.HTTPConnectionManager {
						continue
					}
					m := &hcm.HttpConnectionManager{}
					require.NoError(t, f.GetTypedConfig().UnmarshalTo(m))
					m.Tracing = proto.Clone(tr).(*hcm.HttpConnectionManager_Tracing)
					a, err := anypb.New(m)
					require.NoError(t, err)
					f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: a}
				}
			}
		}
		sock := &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{Address: host, PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(p)}}}}
		res.Clusters = append(res.Clusters, &cluster.Cluster{
			Name: collectorCluster, ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
			ConnectTimeout: durationpb.New(time.Second), LbPolicy: cluster.Cluster_ROUND_ROBIN,
			LoadAssignment: &endpoint.ClusterLoadAssignment{ClusterName: collectorCluster, Endpoints: []*endpoint.LocalityLbEndpoints{{
				LbEndpoints: []*endpoint.LbEndpoint{{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: sock}}}},
			}}},
		})
	}
}

// headerLog records the headers payment's app got, by x-request-id.
type headerLog struct {
	mu   sync.Mutex
	byID map[string]http.Header
}

func (h *headerLog) handle(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.byID[r.Header.Get("x-request-id")] = r.Header.Clone()
	h.mu.Unlock()
	_, _ = w.Write([]byte("paid"))
}

func (h *headerLog) get(id string) http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byID[id]
}

// tracingRig is the two-sidecar rig (the test → order's outbound sidecar
// → payment's inbound sidecar → payment's app) with a real Zipkin
// receiver as the collector cluster and tr on every HCM.
func tracingRig(t *testing.T, tr *hcm.HttpConnectionManager_Tracing) (*rig, *tracing.Receiver, *headerLog) {
	rc := tracing.NewReceiver(0)
	var hosts sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hosts.Store(r.Host, true)
		rc.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	hl := &headerLog{byID: map[string]http.Header{}}
	m := newRig(t, rigOpts{topo: rigTopology(registry.Version{Name: "v1"}), tracingFlush: 50 * time.Millisecond, handlers: map[string]func(http.ResponseWriter, *http.Request){"payment-v1-0": hl.handle}})
	v := m.publish(withTracing(t, srv.Listener.Addr().String(), tr))
	m.converge(v)
	t.Cleanup(func() {
		// Every POST named collector_hostname as its Host.
		hosts.Range(func(k, _ any) bool {
			assert.Equal(t, "zipkin.istio-system", k)
			return true
		})
	})
	return m, rc, hl
}

func spansOf(spans []tracing.Span, requestID string) []tracing.Span {
	var out []tracing.Span
	for _, s := range spans {
		if s.Tags["guid:x-request-id"] == requestID {
			out = append(out, s)
		}
	}
	return out
}

func waitSpans(t *testing.T, rc *tracing.Receiver, requestID string, n int) []tracing.Span {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rigWait)
	defer cancel()
	require.NoError(t, rc.Wait(ctx, func(ss []tracing.Span) bool { return len(spansOf(ss, requestID)) >= n }),
		"spans of %s: %+v", requestID, spansOf(rc.Spans(), requestID))
	return spansOf(rc.Spans(), requestID)
}

func byKind(t *testing.T, spans []tracing.Span) (client, server tracing.Span) {
	t.Helper()
	require.Len(t, spans, 2)
	for _, s := range spans {
		switch s.Kind {
		case tracing.Client:
			client = s
		case tracing.Server:
			server = s
		}
	}
	require.NotEmpty(t, client.ID, "a CLIENT span")
	require.NotEmpty(t, server.ID, "a SERVER span")
	return client, server
}

// A request through two sidecars at 100% sampling makes a CLIENT span on
// the caller's sidecar and a SERVER span on the callee's, in one trace,
// the server's the child of the client's, with Envoy's and the HCM's tags;
// the app gets the B3 headers of the server span.
func TestTracingTwoSidecars(t *testing.T) {
	m, rc, hl := tracingRig(t, istioTracing(t, 100))
	r := m.call("x-test", "hello", "user-agent", "tracing-test")
	require.Equal(t, http.StatusOK, r.code, r.body)
	client, server := byKind(t, waitSpans(t, rc, r.id, 2))

	assert.Len(t, client.TraceID, 32, "trace_id_128bit")
	assert.Equal(t, client.TraceID, server.TraceID)
	assert.Empty(t, client.ParentID, "the caller sent no context: a root span")
	assert.Equal(t, client.ID, server.ParentID, "shared_span_context false: the server span is the client's child")
	assert.NotEqual(t, client.ID, server.ID)
	assert.False(t, server.Shared)
	assert.Equal(t, "order.default", client.LocalEndpoint.ServiceName)
	assert.Equal(t, "payment.default", server.LocalEndpoint.ServiceName)
	assert.Equal(t, rigPaymentHost+":80/*", client.Name, "istiod's route decorator names the span (route.go GetRouteOperation)")
	assert.Equal(t, rigPaymentHost+":80/*", server.Name, "and the inbound route's (TraceOperation of the service's host and port)")
	assert.LessOrEqual(t, client.Timestamp, server.Timestamp)
	assert.GreaterOrEqual(t, client.Duration, server.Duration)

	for _, s := range []tracing.Span{client, server} {
		assert.Equal(t, "proxy", s.Tags["component"])
		assert.Equal(t, "GET", s.Tags["http.method"])
		assert.Equal(t, "200", s.Tags["http.status_code"])
		assert.Equal(t, "-", s.Tags["response_flags"])
		assert.Equal(t, "HTTP/1.1", s.Tags["http.protocol"])
		assert.Equal(t, "tracing-test", s.Tags["user_agent"])
		assert.Equal(t, "4", s.Tags["response_size"])
		assert.Equal(t, "cluster.local", s.Tags["istio.mesh_id"])
		assert.Equal(t, "svc", s.Tags["istio.canonical_service"])
		assert.Equal(t, "hello", s.Tags["x-test"])
		assert.NotContains(t, s.Tags, "error")
		assert.Equal(t, s.Tags["upstream_cluster"], s.Tags["upstream_cluster.name"])
		assert.NotEmpty(t, s.Tags["peer.address"])
	}
	assert.Equal(t, "http://"+rigPaymentHost+"/pay", client.Tags["http.url"])
	assert.Equal(t, "outbound|80||"+rigPaymentHost, client.Tags["upstream_cluster"])
	assert.True(t, strings.HasPrefix(server.Tags["upstream_cluster"], "inbound|"), server.Tags["upstream_cluster"])
	assert.Equal(t, m.pods[0].NodeID(), client.Tags["node_id"])

	// The collected spans come out as OTLP/JSON that protojson reads back.
	var otlp bytes.Buffer
	require.NoError(t, tracing.WriteOTLP(&otlp, []tracing.Span{client, server}))
	td, err := tracing.ReadOTLP(&otlp)
	require.NoError(t, err)
	assert.Len(t, td.GetResourceSpans(), 2, "one resource per service")

	// The spans sent are counted on each proxy's stats.
	m.eventuallyCounter(rigCaller, "envoy_tracing_zipkin_spans_sent", nil, 1)
	assert.Zero(t, m.metric(rigCaller, "meshbench_tracing_zipkin_spans_dropped", nil))

	// The app got the server span's context, to pass on.
	h := hl.get(r.id)
	require.NotNil(t, h)
	assert.Equal(t, server.TraceID, h.Get("x-b3-traceid"))
	assert.Equal(t, server.ID, h.Get("x-b3-spanid"))
	assert.Equal(t, client.ID, h.Get("x-b3-parentspanid"))
	assert.Equal(t, "1", h.Get("x-b3-sampled"))
	assert.Empty(t, h.Get("traceparent"), "USE_B3: no traceparent")

	// A caller's own context: the client span is its child, in its trace.
	const parentTrace, parentSpan = "463ac35c9f6413ad48485a3953bb6124", "a2fb4a1d1a96d312"
	r = m.call("x-b3-traceid", parentTrace, "x-b3-spanid", parentSpan)
	require.Equal(t, http.StatusOK, r.code)
	client, server = byKind(t, waitSpans(t, rc, r.id, 2))
	assert.Equal(t, parentTrace, client.TraceID)
	assert.Equal(t, parentTrace, server.TraceID)
	assert.Equal(t, parentSpan, client.ParentID)
	assert.Equal(t, client.ID, server.ParentID)
}

// With shared_span_context (Zipkin's default), the SERVER span shares the
// CLIENT span's id and is marked shared; with USE_B3_WITH_W3C_PROPAGATION
// a traceparent comes in and goes out.
func TestTracingSharedSpanAndW3C(t *testing.T) {
	m, rc, hl := tracingRig(t, istioTracing(t, 0, func(z *trace.ZipkinConfig) {
		z.SharedSpanContext = nil
		z.TraceContextOption = trace.ZipkinConfig_USE_B3_WITH_W3C_PROPAGATION
	}))
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r := m.call("traceparent", tp)
	require.Equal(t, http.StatusOK, r.code)
	client, server := byKind(t, waitSpans(t, rc, r.id, 2))
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", client.TraceID, "the traceparent's trace, sampled by its flags at random_sampling 0")
	assert.Equal(t, "00f067aa0ba902b7", client.ParentID)
	assert.Equal(t, client.ID, server.ID)
	assert.True(t, server.Shared)
	assert.Equal(t, client.ParentID, server.ParentID)
	h := hl.get(r.id)
	require.NotNil(t, h)
	assert.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-"+server.ID+"-01", h.Get("traceparent"))
}

// At random_sampling 0, an incoming x-b3-sampled decides: 0 is not
// traced (and goes on as 0), 1 is; with no decision nothing is.
func TestTracingIncomingSampledAtZero(t *testing.T) {
	m, rc, hl := tracingRig(t, istioTracing(t, 0))
	no := m.call("x-b3-sampled", "0")
	none := m.call()
	yes := m.call("x-b3-sampled", "1")
	for _, r := range []rigResp{no, none, yes} {
		require.Equal(t, http.StatusOK, r.code)
	}
	waitSpans(t, rc, yes.id, 2)
	// Each sidecar reports its spans in order: those of earlier requests
	// would have come first.
	assert.Empty(t, spansOf(rc.Spans(), no.id))
	assert.Empty(t, spansOf(rc.Spans(), none.id))
	assert.Equal(t, "0", hl.get(no.id).Get("x-b3-sampled"), "a decision not to sample is passed on")
	assert.Equal(t, "0", hl.get(none.id).Get("x-b3-sampled"))
	assert.NotEmpty(t, hl.get(none.id).Get("x-b3-traceid"), "an unsampled trace still has ids")
	assert.Equal(t, "1", hl.get(yes.id).Get("x-b3-sampled"))

	// Malformed B3 is not traced and passes as it came (Envoy's NullSpan).
	bad := m.call("x-b3-traceid", "XYZ", "x-b3-spanid", "a2fb4a1d1a96d312", "x-b3-sampled", "1")
	require.Equal(t, http.StatusOK, bad.code)
	assert.Equal(t, "XYZ", hl.get(bad.id).Get("x-b3-traceid"))

	// x-client-trace-id forces a trace at client_sampling (default 100%).
	forced := m.call("x-client-trace-id", "abc")
	waitSpans(t, rc, forced.id, 2)
	assert.Empty(t, spansOf(rc.Spans(), bad.id))
}

// At random_sampling 10%, the share of requests traced is within a
// two-sided exact binomial bound at α = 0.001.
func TestTracingRandomSamplingShare(t *testing.T) {
	if testing.Short() {
		t.Skip("5,000 requests")
	}
	m, rc, hl := tracingRig(t, istioTracing(t, 10))
	const n = 5000
	ids := make([]string, 0, n)
	for range n {
		r := m.call()
		require.Equal(t, http.StatusOK, r.code)
		ids = append(ids, r.id)
	}
	sampled := 0
	for _, id := range ids {
		if hl.get(id).Get("x-b3-sampled") == "1" {
			sampled++
		}
	}
	b := distuv.Binomial{N: n, P: 0.1}
	pLow, pHigh := b.CDF(float64(sampled)), 1-b.CDF(float64(sampled-1))
	assert.Greater(t, 2*min(pLow, pHigh), 0.001, "%d of %d sampled at 10%%", sampled, n)
	// Each sampled request makes two spans, which all reach the collector.
	ctx, cancel := context.WithTimeout(context.Background(), rigWait)
	defer cancel()
	require.NoError(t, rc.Wait(ctx, func(ss []tracing.Span) bool { return len(ss) >= 2*sampled }))
	assert.Len(t, rc.Spans(), 2*sampled)
}

// A provider the sidecar cannot run is NACKed by name, never ignored.
func TestTracingUnknownProviderNacked(t *testing.T) {
	m := newRig(t, rigOpts{topo: rigTopology(registry.Version{Name: "v1"})})
	tr := istioTracing(t, 100)
	otel, err := anypb.New(&trace.OpenTelemetryConfig{})
	require.NoError(t, err)
	tr.Provider = &trace.Tracing_Http{Name: "envoy.tracers.opentelemetry", ConfigType: &trace.Tracing_Http_TypedConfig{TypedConfig: otel}}
	bad := m.publish(withTracing(t, "127.0.0.1:9411", tr))
	err = m.waitConverged(bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `tracing provider "envoy.tracers.opentelemetry" (type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig) is not supported`)
}

func TestCompileTracingRefuses(t *testing.T) {
	dd, err := anypb.New(&trace.DatadogConfig{})
	require.NoError(t, err)
	for name, edit := range map[string]func(*hcm.HttpConnectionManager_Tracing){
		"datadog": func(tr *hcm.HttpConnectionManager_Tracing) {
			tr.Provider = &trace.Tracing_Http{Name: "envoy.tracers.datadog", ConfigType: &trace.Tracing_Http_TypedConfig{TypedConfig: dd}}
		},
		"zipkin name, datadog config": func(tr *hcm.HttpConnectionManager_Tracing) {
			tr.Provider.ConfigType = &trace.Tracing_Http_TypedConfig{TypedConfig: dd}
		},
		"route metadata tag": func(tr *hcm.HttpConnectionManager_Tracing) {
			tr.CustomTags = append(tr.CustomTags, &tracingv3.CustomTag{Tag: "m", Type: &tracingv3.CustomTag_Metadata_{Metadata: &tracingv3.CustomTag_Metadata{
				Kind: &metadatav3.MetadataKind{Kind: &metadatav3.MetadataKind_Route_{Route: &metadatav3.MetadataKind_Route{}}}}}})
		},
		"operation": func(tr *hcm.HttpConnectionManager_Tracing) { tr.Operation = "%REQ(:path)%" },
		"verbose":   func(tr *hcm.HttpConnectionManager_Tracing) { tr.Verbose = true },
	} {
		t.Run(name, func(t *testing.T) {
			tr := istioTracing(t, 1)
			edit(tr)
			_, err := compileTracing(&hcm.HttpConnectionManager{Tracing: tr})
			assert.Error(t, err)
		})
	}
	for name, edit := range map[string]func(*trace.ZipkinConfig){
		"proto":      func(z *trace.ZipkinConfig) { z.CollectorEndpointVersion = trace.ZipkinConfig_HTTP_PROTO },
		"no cluster": func(z *trace.ZipkinConfig) { z.CollectorCluster = "" },
		//lint:ignore SA1019 the deprecated field is what is refused
		"split spans":       func(z *trace.ZipkinConfig) { z.SplitSpansForRequest = true },
		"collector_service": func(z *trace.ZipkinConfig) { z.CollectorService = &core.HttpService{} },
		"collector_service headers": func(z *trace.ZipkinConfig) {
			z.CollectorService = &core.HttpService{HttpUri: &core.HttpUri{Uri: "http://zipkin/api/v2/spans"},
				RequestHeadersToAdd: []*core.HeaderValueOption{{Header: &core.HeaderValue{Key: "x-token", Value: "t"}}}}
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := compileTracing(&hcm.HttpConnectionManager{Tracing: istioTracing(t, 1, edit)})
			assert.Error(t, err)
		})
	}
	tc, err := compileTracing(&hcm.HttpConnectionManager{Tracing: istioTracing(t, 12.5)})
	require.NoError(t, err)
	assert.Equal(t, uint32(125_000), tc.random)
	assert.Equal(t, uint32(1_000_000), tc.client, "client_sampling defaults to 100%")
	assert.Equal(t, uint32(1_000_000), tc.overall)
	assert.Equal(t, 256, tc.maxPathTag)
	assert.Equal(t, "zipkin.istio-system", tc.zipkin.dest.hostname)
	// istiod's shape for 1.29+ proxies (tracing.go zipkinConfig): the
	// collector_service's URI gives the path and Host, its http_uri the
	// cluster and each POST's timeout.
	tc, err = compileTracing(&hcm.HttpConnectionManager{Tracing: istioTracing(t, 1, func(z *trace.ZipkinConfig) {
		z.CollectorCluster, z.CollectorEndpoint, z.CollectorHostname = "", "", ""
		z.CollectorService = &core.HttpService{HttpUri: &core.HttpUri{
			Uri:              "http://zipkin.istio-system.svc.cluster.local/api/v2/spans",
			HttpUpstreamType: &core.HttpUri_Cluster{Cluster: "outbound|9411||zipkin.istio-system.svc.cluster.local"},
			Timeout:          durationpb.New(5 * time.Second),
		}}
	})})
	require.NoError(t, err)
	assert.Equal(t, zipkinDest{cluster: "outbound|9411||zipkin.istio-system.svc.cluster.local", endpoint: "/api/v2/spans",
		hostname: "zipkin.istio-system.svc.cluster.local", timeout: 5 * time.Second}, tc.zipkin.dest)
	tc, err = compileTracing(&hcm.HttpConnectionManager{})
	assert.NoError(t, err)
	assert.Nil(t, tc, "no tracing, no tracer")
}

// tracingRigVS is tracingRig with payment's VirtualService routes and
// payment's app answering with handle.
func tracingRigVS(t *testing.T, tr *hcm.HttpConnectionManager_Tracing, handle func(http.ResponseWriter, *http.Request), routes ...*networking.HTTPRoute) (*rig, *tracing.Receiver) {
	rc := tracing.NewReceiver(0)
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	m := newRig(t, rigOpts{topo: rigTopology(registry.Version{Name: "v1"}), tracingFlush: 50 * time.Millisecond, handlers: map[string]func(http.ResponseWriter, *http.Request){"payment-v1-0": handle}})
	m.cfg.VirtualServices = []*networkingv1.VirtualService{rigVS(routes...)}
	m.converge(m.publish(withTracing(t, srv.Listener.Addr().String(), tr)))
	return m, rc
}

// Fault injection and timeouts show in the span's response_flags and error.
func TestTracingFaultsAndTimeouts(t *testing.T) {
	slow := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-r.Context().Done() // held until the caller's sidecar times out
			return
		}
		_, _ = w.Write([]byte("ok"))
	}
	m, rc := tracingRigVS(t, istioTracing(t, 100), slow,
		&networking.HTTPRoute{
			Match: []*networking.HTTPMatchRequest{{Uri: &networking.StringMatch{MatchType: &networking.StringMatch_Exact{Exact: "/pay"}}}},
			Route: rigRoute(""),
			Fault: &networking.HTTPFaultInjection{
				Delay: &networking.HTTPFaultInjection_Delay{HttpDelayType: &networking.HTTPFaultInjection_Delay_FixedDelay{FixedDelay: durationpb.New(time.Millisecond)}, Percentage: &networking.Percent{Value: 100}},
				Abort: &networking.HTTPFaultInjection_Abort{ErrorType: &networking.HTTPFaultInjection_Abort_HttpStatus{HttpStatus: 503}, Percentage: &networking.Percent{Value: 100}},
			},
		},
		&networking.HTTPRoute{Route: rigRoute(""), Timeout: durationpb.New(50 * time.Millisecond)},
	)
	r := m.call()
	require.Equal(t, http.StatusServiceUnavailable, r.code)
	spans := waitSpans(t, rc, r.id, 1)
	require.Len(t, spans, 1, "the abort never reaches payment")
	assert.Equal(t, tracing.Client, spans[0].Kind)
	assert.Equal(t, "DI,FI", spans[0].Tags["response_flags"])
	assert.Equal(t, "503", spans[0].Tags["http.status_code"])
	assert.Equal(t, "true", spans[0].Tags["error"])

	id := fmt.Sprintf("rz-timeout-%d", m.nextID.Add(1))
	to := m.get("", "/slow", "x-request-id", id)
	require.Equal(t, http.StatusGatewayTimeout, to.code)
	client := waitSpans(t, rc, id, 1)[0]
	assert.Equal(t, tracing.Client, client.Kind)
	assert.Equal(t, "UT", client.Tags["response_flags"])
	assert.Equal(t, "504", client.Tags["http.status_code"])
	assert.Equal(t, "true", client.Tags["error"])
}

// Retries: without spawn_upstream_span the hop's span counts them
// (retry.count, with URX); with it each attempt is a CLIENT span of its
// own, the child of the hop's SERVER span, retry.count on each retry, and
// payment's spans are children of the attempts.
func TestTracingRetries(t *testing.T) {
	for _, spawn := range []bool{false, true} {
		t.Run(fmt.Sprintf("spawn_upstream_span=%v", spawn), func(t *testing.T) {
			tr := istioTracing(t, 100)
			tr.SpawnUpstreamSpan = wrapperspb.Bool(spawn)
			m, rc := tracingRigVS(t, tr, rigFail(http.StatusServiceUnavailable),
				&networking.HTTPRoute{Route: rigRoute(""), Retries: &networking.HTTPRetry{Attempts: 2, RetryOn: "5xx"}})
			r := m.call()
			require.Equal(t, http.StatusServiceUnavailable, r.code)
			if !spawn {
				// Order's CLIENT span, and payment's SERVER span per attempt.
				spans := waitSpans(t, rc, r.id, 4)
				var client []tracing.Span
				for _, s := range spans {
					if s.Kind == tracing.Client {
						client = append(client, s)
					}
				}
				require.Len(t, client, 1)
				assert.Equal(t, "2", client[0].Tags["retry.count"])
				assert.Equal(t, "URX", client[0].Tags["response_flags"])
				for _, s := range spans {
					if s.Kind == tracing.Server {
						assert.Equal(t, client[0].ID, s.ParentID)
					}
				}
				return
			}
			// Order: a SERVER span and 3 attempt spans; payment: a SERVER
			// span and one attempt span per request it got.
			hop := waitSpans(t, rc, r.id, 1)
			ctx, cancel := context.WithTimeout(context.Background(), rigWait)
			defer cancel()
			trace := hop[0].TraceID
			inTrace := func(ss []tracing.Span) []tracing.Span {
				var out []tracing.Span
				for _, s := range ss {
					if s.TraceID == trace {
						out = append(out, s)
					}
				}
				return out
			}
			require.NoError(t, rc.Wait(ctx, func(ss []tracing.Span) bool { return len(inTrace(ss)) >= 10 }))
			spans := inTrace(rc.Spans())
			assert.Len(t, spans, 10)
			var orderServer tracing.Span
			attempts := map[string]tracing.Span{}
			for _, s := range spans {
				if s.LocalEndpoint.ServiceName == "order.default" {
					if s.Kind == tracing.Server {
						orderServer = s
					} else {
						attempts[s.ID] = s
					}
				}
			}
			require.Len(t, attempts, 3)
			retries := map[string]int{}
			for _, a := range attempts {
				assert.Equal(t, orderServer.ID, a.ParentID)
				assert.Equal(t, "router outbound|80||"+rigPaymentHost+" egress", a.Name)
				assert.Equal(t, "503", a.Tags["http.status_code"])
				retries[a.Tags["retry.count"]]++
			}
			assert.Equal(t, map[string]int{"": 1, "1": 1, "2": 1}, retries)
			for _, s := range spans {
				if s.LocalEndpoint.ServiceName == "payment.default" && s.Kind == tracing.Server {
					assert.Contains(t, attempts, s.ParentID, "payment's hop is the child of one attempt")
				}
			}
		})
	}
}

// A request not sampled costs reading its headers and the B3 ids it sends
// on (Envoy sends them unsampled too): one string and one value slice.
func TestTracingNotSampledAllocs(t *testing.T) {
	s := &Sidecar{}
	tc := &tracingConf{random: 0, client: 1_000_000, overall: 1_000_000, maxPathTag: 256}
	r := httptest.NewRequest(http.MethodGet, "http://payment/pay", nil)
	r.Header.Set("x-request-id", "abc")
	w := httptest.NewRecorder()
	x := &exchange{reporter: "source"}
	out := make(http.Header, 8)
	allocs := testing.AllocsPerRun(100, func() {
		s.startTrace(w, r, x, tc)
		injectTrace(out, x.trace, x.trace.ctx)
	})
	assert.Equal(t, 2.0, allocs)
	assert.Equal(t, "0", out.Get("x-b3-sampled"))
	assert.Len(t, out.Get("x-b3-traceid"), 16, "trace_id_128bit false: 64-bit ids")
}

// Configs that send to one collector share its reporter, the one a config
// keeps after its first span.
func TestReporterKeptOnTheTracingConfig(t *testing.T) {
	s := &Sidecar{}
	d := zipkinDest{cluster: "outbound|9411||zipkin.istio-system.svc.cluster.local", endpoint: "/api/v2/spans"}
	a, b := &tracingConf{zipkin: zipkinConf{dest: d}}, &tracingConf{zipkin: zipkinConf{dest: d}}
	ra := s.reporterOf(a)
	if ra == nil || s.reporterOf(a) != ra || s.reporterOf(b) != ra || s.reporterFor(d) != ra {
		t.Fatal("configs with one destination do not share its reporter")
	}
	other := &tracingConf{zipkin: zipkinConf{dest: zipkinDest{cluster: d.cluster, endpoint: "/other"}}}
	if s.reporterOf(other) == ra {
		t.Fatal("another destination got the same reporter")
	}
	s.closeTracers()
}
