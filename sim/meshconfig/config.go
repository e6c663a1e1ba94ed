// Package meshconfig holds the Istio resources a scenario applies to the mesh,
// as the istio.io/client-go types, each with the place it was read from.
package meshconfig

import (
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	meshapi "istio.io/api/mesh/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	telemetryv1 "istio.io/client-go/pkg/apis/telemetry/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Config is the set of Istio resources in force.
type Config struct {
	VirtualServices  []*networkingv1.VirtualService
	DestinationRules []*networkingv1.DestinationRule
	Gateways         []*networkingv1.Gateway
	// Security resources (security.istio.io).
	PeerAuthentications   []*securityv1.PeerAuthentication
	AuthorizationPolicies []*securityv1.AuthorizationPolicy
	// Gateway API routes for mesh traffic (GAMMA: a Service as parentRef),
	// which istiod turns into VirtualServices (sim/xdsgen gamma.go).
	HTTPRoutes []*gatewayv1.HTTPRoute
	GRPCRoutes []*gatewayv1.GRPCRoute
	// Telemetries are telemetry.istio.io Telemetry resources; only their
	// tracing is translated (sim/xdsgen tracing.go).
	Telemetries []*telemetryv1.Telemetry
	// Mesh holds mesh-wide settings.
	Mesh MeshSettings
	// Origin maps "Kind/namespace/name" to "file:line" where the resource was read.
	Origin map[string]string
}

// Key names a resource in Origin.
func Key(kind, namespace, name string) string { return kind + "/" + namespace + "/" + name }

// MeshSettings are the mesh-wide settings of Istio's MeshConfig (and install
// profile) that change what istiod generates.
type MeshSettings struct {
	// DefaultHTTPRetryPolicy is meshConfig.defaultHttpRetryPolicy: the retry
	// policy of routes that set none. Nil means Istio's built-in default.
	DefaultHTTPRetryPolicy *networking.HTTPRetry
	// Retry503ByDefault restores the default of Istio before 1.24 (the 1.23
	// compatibility profile, EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY=false): the
	// default retry policy also retries 503.
	Retry503ByDefault bool
	// CertTTL is the lifetime of workload certificates (0: Istio's 24h).
	CertTTL time.Duration
	// AccessLog is meshConfig's access logging (accessLogFile,
	// accessLogEncoding, accessLogFormat); off when File is empty.
	AccessLog AccessLog
	// Tracing is meshConfig's tracing: enableTracing, defaultConfig.tracing
	// and the tracing extension providers; nil is Istio's default (a
	// pointer keeps MeshSettings comparable with its zero value).
	Tracing *Tracing
}

// TracingOrDefault is the mesh's tracing settings, Istio's default when
// the scenario sets none.
func (s MeshSettings) TracingOrDefault() Tracing {
	if s.Tracing == nil {
		return Tracing{}
	}
	return *s.Tracing
}

// Tracing holds the meshConfig fields that decide the HTTP connection
// managers' tracing. The zero value is Istio 1.31's default install:
// tracing enabled (DefaultMeshConfig in pkg/config/mesh/mesh.go), no
// defaultConfig.tracing (the istio-discovery chart's global.proxy.tracer
// is "none", so its configmap.yaml writes no tracer), no extension
// provider for tracing and no defaultProviders.tracing.
type Tracing struct {
	// Disabled is enableTracing: false.
	Disabled bool
	// Proxy is defaultConfig.tracing: sampling (0: PILOT_TRACE_SAMPLING,
	// 1%), the zipkin address, custom_tags, max_path_tag_length.
	Proxy *meshapi.Tracing
	// Providers are the extensionProviders of kind zipkin.
	Providers []*meshapi.MeshConfig_ExtensionProvider
	// DefaultProviders is defaultProviders.tracing: provider names.
	DefaultProviders []string
}

// Provider is the extension provider of that name, or nil.
func (t Tracing) Provider(name string) *meshapi.MeshConfig_ExtensionProvider {
	for _, p := range t.Providers {
		if p.GetName() == name {
			return p
		}
	}
	return nil
}

// AccessLog is the file access log of meshConfig: every proxy writes one
// line per request (per connection on TCP) to File, in Format, as Envoy's
// file access logger.
type AccessLog struct {
	// File is meshConfig.accessLogFile, e.g. /dev/stdout; empty: no log.
	File string
	// JSON is accessLogEncoding: JSON (TEXT, the default, when false).
	JSON bool
	// Format is accessLogFormat: a text format string, or for JSON an
	// object of labels to command operators; empty: Istio's default.
	Format string
}

// RootNamespace is Istio's default meshConfig.rootNamespace.
const RootNamespace = "istio-system"

// DeepCopy copies every resource, so that a change to the copy never reaches c.
func (c Config) DeepCopy() Config {
	out := c
	out.VirtualServices = deepCopyAll(c.VirtualServices)
	out.DestinationRules = deepCopyAll(c.DestinationRules)
	out.Gateways = deepCopyAll(c.Gateways)
	out.PeerAuthentications = deepCopyAll(c.PeerAuthentications)
	out.AuthorizationPolicies = deepCopyAll(c.AuthorizationPolicies)
	out.HTTPRoutes = deepCopyAll(c.HTTPRoutes)
	out.GRPCRoutes = deepCopyAll(c.GRPCRoutes)
	out.Telemetries = deepCopyAll(c.Telemetries)
	if t := c.Mesh.Tracing; t != nil {
		cp := *t
		cp.Proxy = proto.CloneOf(t.Proxy)
		cp.Providers = make([]*meshapi.MeshConfig_ExtensionProvider, len(t.Providers))
		for i, p := range t.Providers {
			cp.Providers[i] = proto.CloneOf(p)
		}
		cp.DefaultProviders = slices.Clone(t.DefaultProviders)
		out.Mesh.Tracing = &cp
	}
	if c.Origin != nil {
		out.Origin = make(map[string]string, len(c.Origin))
		for k, v := range c.Origin {
			out.Origin[k] = v
		}
	}
	return out
}

func deepCopyAll[T interface{ DeepCopy() T }](in []T) []T {
	if in == nil {
		return nil
	}
	out := make([]T, len(in))
	for i, v := range in {
		out[i] = v.DeepCopy()
	}
	return out
}
