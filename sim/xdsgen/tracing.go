package xdsgen

import (
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tracecfg "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	uuidv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/request_id/uuid/v3"
	metadatav3 "github.com/envoyproxy/go-control-plane/envoy/type/metadata/v3"
	tracingtype "github.com/envoyproxy/go-control-plane/envoy/type/tracing/v3"
	xdstype "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	meshapi "istio.io/api/mesh/v1alpha1"
	telemetryapi "istio.io/api/telemetry/v1alpha1"
	telemetryv1 "istio.io/client-go/pkg/apis/telemetry/v1"

	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
)

// This file gives every HTTP connection manager the tracing istiod gives
// it (pilot/pkg/networking/core/tracing.go configureTracingFromTelemetry,
// and pilot/pkg/model/telemetry.go Telemetries.Tracing for the Telemetry
// resources), for a proxy of Istio 1.31.

// ZipkinTracer is the name of Envoy's Zipkin tracer (tracing.go envoyZipkin).
const ZipkinTracer = "envoy.tracers.zipkin"

// ZipkinSpansPath is where a Zipkin provider without a path sends spans:
// Zipkin's v2 API (tracing.go zipkinConfig, "envoy deprecated v1 support").
const ZipkinSpansPath = "/api/v2/spans"

// DefaultTraceSampling is PILOT_TRACE_SAMPLING's default, 1% (pilot/pkg/
// features/telemetry.go; the istio-discovery chart's traceSampling: 1.0):
// the sampling of a mesh whose defaultConfig.tracing.sampling is unset.
const DefaultTraceSampling = 1.0

// zipkinTimeout is the collector timeout istiod sets when the provider
// gives none, "as Envoy requires a timeout to be set" (zipkinConfig).
const zipkinTimeout = 5 * time.Second

// Collector is a trace collector the mesh can reach as a Kubernetes
// Service would be: istiod names its cluster outbound|<port>||<host>
// (model.LookupCluster) and every sidecar gets that cluster. The runtime
// that runs one tells the generator with WithCollector.
type Collector struct {
	// Name and Namespace of its Service, e.g. zipkin and istio-system.
	Name, Namespace string
	// Port is the service port, e.g. 9411.
	Port int
	// Endpoint is where the collector listens.
	Endpoint netip.AddrPort
}

// DefaultCollector is Istio's Zipkin addon (samples/addons/extras/zipkin.yaml):
// Service zipkin in istio-system on port 9411, at endpoint.
func DefaultCollector(endpoint netip.AddrPort) Collector {
	return Collector{Name: "zipkin", Namespace: meshconfig.RootNamespace, Port: 9411, Endpoint: endpoint}
}

// CollectorFor is the collector the mesh's tracing providers send to: the
// Service of the first Zipkin provider that names one outside the mesh's
// own services, as name.namespace.svc.<cluster domain> (an Istio
// provider's service, optionally namespace/hostname) on the provider's
// port. A runtime that finds one serves a collector there, as Istio's
// Zipkin addon serves zipkin.istio-system:9411; Endpoint is left for it.
func CollectorFor(t meshconfig.Tracing, reg *registry.Registry) (Collector, bool) {
	for _, p := range t.Providers {
		z := p.GetZipkin()
		if z == nil {
			continue
		}
		_, host, qualified := strings.Cut(z.GetService(), "/")
		if !qualified {
			host = z.GetService()
		}
		if _, ok := reg.Service(host); ok {
			continue
		}
		rest, ok := strings.CutSuffix(host, ".svc."+istionames.ClusterDomain)
		name, ns, ok2 := strings.Cut(rest, ".")
		if !ok || !ok2 || name == "" || ns == "" || strings.Contains(ns, ".") {
			continue
		}
		return Collector{Name: name, Namespace: ns, Port: int(z.GetPort())}, true
	}
	return Collector{}, false
}

// FQDN is the collector Service's hostname.
func (c Collector) FQDN() string {
	return c.Name + "." + c.Namespace + ".svc." + istionames.ClusterDomain
}

// ClusterName is the collector's outbound cluster.
func (c Collector) ClusterName() string {
	return istionames.ClusterName(istionames.OutboundDirection, c.Port, "", c.FQDN())
}

// Option changes what a Generator builds.
type Option func(*Generator)

// WithCollector makes a trace collector part of the mesh: its cluster and
// endpoint go to every proxy, and tracing providers naming its host use it.
func WithCollector(c Collector) Option {
	return func(g *Generator) { g.collector = &c }
}

// collectorResources is the collector's outbound cluster, shaped as any
// Kubernetes service's without a DestinationRule, and its endpoint.
func (g *Generator) collectorResources(sidecar bool) (*cluster.Cluster, *endpoint.ClusterLoadAssignment) {
	c := g.collector
	s := registry.ServiceInfo{Service: registry.Service{Name: c.Name, Port: c.Port, TargetPort: int(c.Endpoint.Port()), Protocol: "http"}, Namespace: c.Namespace}
	name := c.ClusterName()
	cla := &endpoint.ClusterLoadAssignment{
		ClusterName: name,
		Endpoints: []*endpoint.LocalityLbEndpoints{{LbEndpoints: []*endpoint.LbEndpoint{{
			HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
				Address: socketAddress(c.Endpoint.Addr().String(), int(c.Endpoint.Port())),
			}},
			HealthStatus: core.HealthStatus_HEALTHY,
			// A workload istiod knows nothing of but its cluster, with no
			// sidecar: no tlsMode, so plain text (AppendLbEndpointMetadata).
			Metadata: &core.Metadata{FilterMetadata: map[string]*structpb.Struct{
				"istio": mustStruct(map[string]any{"workload": ";;;;" + ClusterID}),
			}},
		}}}},
	}
	return outboundCluster(name, s, nil, sidecar), cla
}

// listenerClass is istiod's networking.ListenerClass: which side of the
// proxy an HCM serves. Outbound and gateway HCMs take a Telemetry's CLIENT
// settings, inbound ones its SERVER settings.
type listenerClass int

const (
	classInbound listenerClass = iota
	classOutbound
	classGateway
)

// tracedProxy is what istiod knows of a proxy that shapes its tracing.
type tracedProxy struct {
	namespace string
	labels    map[string]string // after injection
	router    bool              // a gateway (model.Router)
}

// sidecarProxy is the pod's proxy, with the labels Istio's injector adds.
func sidecarProxy(p *registry.Pod) tracedProxy {
	return tracedProxy{namespace: p.Namespace, labels: InjectedLabels(p.Labels, p.Workload)}
}

// gatewayProxy is the ingress gateway's proxy.
func gatewayProxy(gw Gateway) tracedProxy {
	return tracedProxy{namespace: gw.Namespace, labels: InjectedLabels(gw.Labels, gw.Name), router: true}
}

// Labels the injector puts on a pod for Istio's canonical service.
const (
	CanonicalNameLabel     = "service.istio.io/canonical-name"
	CanonicalRevisionLabel = "service.istio.io/canonical-revision"
)

// InjectedLabels are a pod's labels with the canonical service labels
// Istio's injector adds (istio-discovery files/injection-template.yaml:
// canonical-name from the label itself, app.kubernetes.io/name, app, or
// the Deployment's name; canonical-revision from the label,
// app.kubernetes.io/version, version, or "latest").
func InjectedLabels(labels map[string]string, deployment string) map[string]string {
	out := make(map[string]string, len(labels)+2)
	for k, v := range labels {
		out[k] = v
	}
	first := func(keys []string, def string) string {
		for _, k := range keys {
			if v := labels[k]; v != "" {
				return v
			}
		}
		return def
	}
	out[CanonicalNameLabel] = first([]string{CanonicalNameLabel, "app.kubernetes.io/name", "app"}, deployment)
	out[CanonicalRevisionLabel] = first([]string{CanonicalRevisionLabel, "app.kubernetes.io/version", "version"}, "latest")
	return out
}

// Node metadata the injector gives every sidecar: ISTIO_META_MESH_ID is
// the trust domain and ISTIO_META_CLUSTER_ID "Kubernetes" unless the
// install names them (injection-template.yaml).
const (
	MeshID    = istionames.ClusterDomain
	ClusterID = "Kubernetes"
)

// tracingSpec is one side's merged Telemetry tracing (model.TracingSpec).
type tracingSpec struct {
	provider        *meshapi.MeshConfig_ExtensionProvider
	disabled        bool
	sampling        *float64
	customTags      map[string]*telemetryapi.Tracing_CustomTag
	enableIstioTags bool
}

// telemetryTracing merges the Telemetry tracing that applies to a proxy,
// as Telemetries.Tracing does: nil when no Telemetry configures tracing
// and the mesh has no default tracing provider (the legacy path).
func (g *Generator) telemetryTracing(px tracedProxy) (client, server *tracingSpec) {
	mt := g.cfg.Mesh.TracingOrDefault()
	rules := g.applicableTracing(px)
	if len(rules) == 0 && len(mt.DefaultProviders) == 0 {
		return nil, nil
	}
	client = &tracingSpec{enableIstioTags: true}
	server = &tracingSpec{enableIstioTags: true}
	if len(mt.DefaultProviders) > 0 {
		// "for now, use only the first provider"
		client.provider = mt.Provider(mt.DefaultProviders[0])
		server.provider = client.provider
	}
	for _, m := range rules {
		specs := []*tracingSpec{client, server}
		switch m.GetMatch().GetMode() {
		case telemetryapi.WorkloadMode_CLIENT:
			specs = specs[:1]
		case telemetryapi.WorkloadMode_SERVER:
			specs = specs[1:]
		}
		for _, s := range specs {
			if ps := m.GetProviders(); len(ps) > 0 {
				s.provider = mt.Provider(ps[0].GetName())
			}
			if d := m.GetDisableSpanReporting(); d != nil {
				s.disabled = d.GetValue()
			}
			if m.GetCustomTags() != nil {
				s.customTags = m.GetCustomTags()
			}
			if r := m.GetRandomSamplingPercentage(); r != nil {
				v := r.GetValue()
				s.sampling = &v
			}
			if e := m.GetEnableIstioTags(); e != nil {
				s.enableIstioTags = e.GetValue()
			}
		}
	}
	// No provider: no tracing on that side.
	for _, s := range []*tracingSpec{client, server} {
		if s.provider == nil {
			s.disabled = true
		}
	}
	return client, server
}

// applicableTracing lists the tracing rules of the Telemetries that apply
// to a proxy, later ones overriding earlier ones (applicableTelemetries):
// the root namespace's namespace-wide one, the proxy namespace's, then
// those of its namespace whose selector matches the proxy, by name.
func (g *Generator) applicableTracing(px tracedProxy) []*telemetryapi.Tracing {
	var rules []*telemetryapi.Tracing
	namespaceWide := func(ns string) {
		for _, t := range g.telemetries() {
			if t.Namespace == ns && len(t.Spec.GetSelector().GetMatchLabels()) == 0 {
				rules = append(rules, t.Spec.GetTracing()...)
				return
			}
		}
	}
	namespaceWide(meshconfig.RootNamespace)
	if px.namespace != meshconfig.RootNamespace {
		namespaceWide(px.namespace)
	}
	for _, t := range g.telemetries() {
		sel := t.Spec.GetSelector().GetMatchLabels()
		if t.Namespace == px.namespace && len(sel) > 0 && registry.Selects(sel, px.labels) {
			rules = append(rules, t.Spec.GetTracing()...)
		}
	}
	return rules
}

// telemetries are the Telemetry resources in name order (istiod orders by
// creation time, then name; scenario resources have no creation time).
func (g *Generator) telemetries() []*telemetryv1.Telemetry {
	out := slices.Clone(g.cfg.Telemetries)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// hcmTracing is the tracing of an HCM of class c on proxy px, and the
// request ID extension istiod sets with it (listener_builder.go
// buildHTTPConnectionManager: BuildUUIDRequestIDExtension).
func (g *Generator) hcmTracing(px tracedProxy, c listenerClass) (*hcm.HttpConnectionManager_Tracing, *hcm.RequestIDExtension) {
	mt := g.cfg.Mesh.TracingOrDefault()
	proxyTracing := mt.Proxy
	client, server := g.telemetryTracing(px)
	if client == nil {
		// "If there is no telemetry config defined, fallback to legacy
		// mesh config": the provider is the bootstrap's.
		if mt.Disabled {
			return nil, requestIDExtension()
		}
		t := &hcm.HttpConnectionManager_Tracing{}
		setSampling(t, proxySampling(proxyTracing))
		enable := proxyTracing.GetEnableIstioTags() == nil || proxyTracing.GetEnableIstioTags().GetValue()
		t.CustomTags = customTags(px, enable, nil, proxyTracing)
		if n := proxyTracing.GetMaxPathTagLength(); n != 0 {
			t.MaxPathTagLength = wrapperspb.UInt32(n)
		}
		return t, requestIDExtension()
	}
	spec := server
	if c != classInbound {
		spec = client
	}
	if spec.disabled {
		return nil, requestIDExtension()
	}
	t := g.providerTracing(px, spec.provider)
	if t == nil {
		// istiod logs "Not able to configure requested tracing provider".
		return nil, requestIDExtension()
	}
	sampling := proxySampling(proxyTracing)
	if spec.sampling != nil {
		sampling = *spec.sampling
	}
	setSampling(t, sampling)
	t.CustomTags = customTags(px, spec.enableIstioTags, spec.customTags, proxyTracing)
	if t.MaxPathTagLength == nil && proxyTracing.GetMaxPathTagLength() != 0 {
		t.MaxPathTagLength = wrapperspb.UInt32(proxyTracing.GetMaxPathTagLength())
	}
	return t, requestIDExtension()
}

// requestIDExtension is Envoy's UUID request ID, which decides sampling
// from x-request-id (requestidextension.UUIDRequestIDExtension; the
// Telemetry field that turns that off is refused by the loader).
func requestIDExtension() *hcm.RequestIDExtension {
	return &hcm.RequestIDExtension{TypedConfig: mustAny(&uuidv3.UuidRequestIdConfig{
		UseRequestIdForTraceSampling: wrapperspb.Bool(true),
	})}
}

// providerTracing is configureFromProviderConfig for a Zipkin provider:
// nil when the provider's service is not in the mesh (LookupCluster fails).
func (g *Generator) providerTracing(px tracedProxy, p *meshapi.MeshConfig_ExtensionProvider) *hcm.HttpConnectionManager_Tracing {
	z := p.GetZipkin()
	if z == nil {
		return nil
	}
	hostname, clusterName, ok := g.lookupCluster(z.GetService(), int(z.GetPort()))
	if !ok {
		return nil
	}
	t := &hcm.HttpConnectionManager_Tracing{}
	if px.router {
		// A gateway starts a child span for its upstream call
		// (startChildSpan := proxy.Type == model.Router).
		t.SpawnUpstreamSpan = wrapperspb.Bool(true)
	}
	t.Provider = &tracecfg.Tracing_Http{
		Name:       ZipkinTracer,
		ConfigType: &tracecfg.Tracing_Http_TypedConfig{TypedConfig: mustAny(ZipkinConfig(hostname, clusterName, z))},
	}
	if n := z.GetMaxTagLength(); n != 0 {
		t.MaxPathTagLength = wrapperspb.UInt32(n)
	}
	return t
}

// ZipkinConfig is the tracer config istiod builds for a Zipkin provider and
// a proxy of Istio 1.29 or later: the collector as an HttpService (with
// timeout and headers), B3 or B3 with W3C propagation, v2 JSON, 128-bit
// trace IDs unless enable64bitTraceId (tracing.go zipkinConfig).
func ZipkinConfig(hostname, clusterName string, z *meshapi.MeshConfig_ExtensionProvider_ZipkinTracingProvider) *tracecfg.ZipkinConfig {
	path := z.GetPath()
	if path == "" {
		path = ZipkinSpansPath
	}
	timeout := z.GetTimeout()
	if timeout == nil {
		timeout = durationpb.New(zipkinTimeout)
	}
	svc := &core.HttpService{HttpUri: &core.HttpUri{
		Uri:              "http://" + hostname + path,
		HttpUpstreamType: &core.HttpUri_Cluster{Cluster: clusterName},
		Timeout:          timeout,
	}}
	for _, h := range z.GetHeaders() {
		svc.RequestHeadersToAdd = append(svc.RequestHeadersToAdd, &core.HeaderValueOption{
			AppendAction: core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
			Header:       &core.HeaderValue{Key: h.GetName(), Value: h.GetValue()},
		})
	}
	option := tracecfg.ZipkinConfig_USE_B3
	if z.GetTraceContextOption() == meshapi.MeshConfig_ExtensionProvider_ZipkinTracingProvider_USE_B3_WITH_W3C_PROPAGATION {
		option = tracecfg.ZipkinConfig_USE_B3_WITH_W3C_PROPAGATION
	}
	return &tracecfg.ZipkinConfig{
		CollectorEndpointVersion: tracecfg.ZipkinConfig_HTTP_JSON,
		TraceId_128Bit:           !z.GetEnable_64BitTraceId(),
		SharedSpanContext:        wrapperspb.Bool(false),
		CollectorService:         svc,
		TraceContextOption:       option,
	}
}

// lookupCluster is model.LookupCluster: the service is a hostname, or
// namespace/hostname, of a Service in the mesh: the collector's or a
// registry service's.
func (g *Generator) lookupCluster(service string, port int) (hostname, clusterName string, ok bool) {
	ns, host, qualified := strings.Cut(service, "/")
	if !qualified {
		host, ns = service, ""
	}
	if c := g.collector; c != nil && host == c.FQDN() && (ns == "" || ns == c.Namespace) {
		return host, istionames.ClusterName(istionames.OutboundDirection, port, "", host), true
	}
	for _, s := range g.reg.Services {
		if host == s.FQDN() && (ns == "" || ns == s.Namespace) {
			return host, istionames.ClusterName(istionames.OutboundDirection, port, "", host), true
		}
	}
	return "", "", false
}

// proxySampling is proxyConfigSamplingValue: defaultConfig.tracing.sampling
// unless unset (0), PILOT_TRACE_SAMPLING otherwise; above 100 it is 1.
func proxySampling(t *meshapi.Tracing) float64 {
	s := t.GetSampling()
	switch {
	case s == 0:
		return DefaultTraceSampling
	case s > 100:
		return 1
	}
	return s
}

// setSampling is configureSampling: the random share as given, client
// and overall sampling always 100%.
func setSampling(t *hcm.HttpConnectionManager_Tracing, random float64) {
	t.ClientSampling = &xdstype.Percent{Value: 100}
	t.OverallSampling = &xdstype.Percent{Value: 100}
	t.RandomSampling = &xdstype.Percent{Value: random}
}

// customTags is configureCustomTags: Istio's service tags and the RBAC
// dry-run tags when enabled, then the Telemetry's tags if it has any,
// else defaultConfig.tracing.custom_tags; sorted by tag.
func customTags(px tracedProxy, istioTags bool, telemetryTags map[string]*telemetryapi.Tracing_CustomTag, proxy *meshapi.Tracing) []*tracingtype.CustomTag {
	var tags []*tracingtype.CustomTag
	if istioTags {
		tags = append(serviceTags(px), dryRunPolicyTags()...)
	}
	if len(telemetryTags) == 0 {
		for name, t := range proxy.GetCustomTags() {
			if ct := proxyCustomTag(name, t); ct != nil {
				tags = append(tags, ct)
			}
		}
	} else {
		for name, t := range telemetryTags {
			if ct := proxyCustomTag(name, telemetryCustomTag(t)); ct != nil {
				tags = append(tags, ct)
			}
		}
	}
	sort.Slice(tags, func(i, j int) bool { return tags[i].Tag < tags[j].Tag })
	return tags
}

// serviceTags are buildServiceTags: the proxy's canonical service and
// revision, mesh, namespace and cluster, as literals.
func serviceTags(px tracedProxy) []*tracingtype.CustomTag {
	literal := func(tag, v string) *tracingtype.CustomTag {
		return &tracingtype.CustomTag{Tag: tag, Type: &tracingtype.CustomTag_Literal_{Literal: &tracingtype.CustomTag_Literal{Value: v}}}
	}
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	return []*tracingtype.CustomTag{
		literal("istio.canonical_revision", or(px.labels[CanonicalRevisionLabel], "latest")),
		literal("istio.canonical_service", or(px.labels[CanonicalNameLabel], "unknown")),
		literal("istio.mesh_id", MeshID),
		literal("istio.namespace", or(px.namespace, "default")),
		literal("istio.cluster_id", ClusterID),
	}
}

// dryRunPolicyTags are optionalPolicyTags: the names and results of
// dry-run AuthorizationPolicies, from the RBAC filter's request metadata
// (keys from pilot/pkg/security/authz/model/model.go).
func dryRunPolicyTags() []*tracingtype.CustomTag {
	tag := func(name, key string) *tracingtype.CustomTag {
		return &tracingtype.CustomTag{Tag: name, Type: &tracingtype.CustomTag_Metadata_{Metadata: &tracingtype.CustomTag_Metadata{
			Kind: &metadatav3.MetadataKind{Kind: &metadatav3.MetadataKind_Request_{Request: &metadatav3.MetadataKind_Request{}}},
			MetadataKey: &metadatav3.MetadataKey{
				Key:  wellknown.HTTPRoleBasedAccessControl,
				Path: []*metadatav3.MetadataKey_PathSegment{{Segment: &metadatav3.MetadataKey_PathSegment_Key{Key: key}}},
			},
		}}}
	}
	return []*tracingtype.CustomTag{
		tag("istio.authorization.dry_run.allow_policy.name", "istio_dry_run_allow_shadow_effective_policy_id"),
		tag("istio.authorization.dry_run.allow_policy.result", "istio_dry_run_allow_shadow_engine_result"),
		tag("istio.authorization.dry_run.deny_policy.name", "istio_dry_run_deny_shadow_effective_policy_id"),
		tag("istio.authorization.dry_run.deny_policy.result", "istio_dry_run_deny_shadow_engine_result"),
	}
}

// proxyCustomTag is one defaultConfig.tracing.custom_tags entry
// (buildCustomTagsFromProxyConfig).
func proxyCustomTag(name string, t *meshapi.Tracing_CustomTag) *tracingtype.CustomTag {
	switch {
	case t.GetLiteral() != nil:
		return &tracingtype.CustomTag{Tag: name, Type: &tracingtype.CustomTag_Literal_{Literal: &tracingtype.CustomTag_Literal{Value: t.GetLiteral().GetValue()}}}
	case t.GetHeader() != nil:
		return &tracingtype.CustomTag{Tag: name, Type: &tracingtype.CustomTag_RequestHeader{RequestHeader: &tracingtype.CustomTag_Header{Name: t.GetHeader().GetName(), DefaultValue: t.GetHeader().GetDefaultValue()}}}
	case t.GetEnvironment() != nil:
		return &tracingtype.CustomTag{Tag: name, Type: &tracingtype.CustomTag_Environment_{Environment: &tracingtype.CustomTag_Environment{Name: t.GetEnvironment().GetName(), DefaultValue: t.GetEnvironment().GetDefaultValue()}}}
	}
	return nil
}

// telemetryCustomTag is one Telemetry customTags entry
// (buildCustomTagsFromProvider), in defaultConfig's shape, which has the
// same three kinds (formatter tags are refused by the loader).
func telemetryCustomTag(t *telemetryapi.Tracing_CustomTag) *meshapi.Tracing_CustomTag {
	switch {
	case t.GetLiteral() != nil:
		return &meshapi.Tracing_CustomTag{Type: &meshapi.Tracing_CustomTag_Literal{Literal: &meshapi.Tracing_Literal{Value: t.GetLiteral().GetValue()}}}
	case t.GetHeader() != nil:
		return &meshapi.Tracing_CustomTag{Type: &meshapi.Tracing_CustomTag_Header{Header: &meshapi.Tracing_RequestHeader{Name: t.GetHeader().GetName(), DefaultValue: t.GetHeader().GetDefaultValue()}}}
	case t.GetEnvironment() != nil:
		return &meshapi.Tracing_CustomTag{Type: &meshapi.Tracing_CustomTag_Environment{Environment: &meshapi.Tracing_Environment{Name: t.GetEnvironment().GetName(), DefaultValue: t.GetEnvironment().GetDefaultValue()}}}
	}
	return nil
}

// withTracing sets the tracing and request ID extension of every HTTP
// connection manager of ls, inbound ones (on the 15006 listener) with the
// server side's, the others with the client side's.
func (g *Generator) withTracing(ls []*listener.Listener, px tracedProxy) []*listener.Listener {
	for _, l := range ls {
		c := classOutbound
		switch {
		case px.router:
			c = classGateway
		case l.GetName() == istionames.VirtualInboundListener:
			c = classInbound
		}
		t, reqID := g.hcmTracing(px, c)
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				if f.GetName() != wellknown.HTTPConnectionManager || f.GetTypedConfig() == nil {
					continue
				}
				m := &hcm.HttpConnectionManager{}
				if f.GetTypedConfig().UnmarshalTo(m) != nil {
					continue
				}
				m.Tracing, m.RequestIdExtension = t, reqID
				f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: mustAny(m)}
			}
		}
	}
	return ls
}
