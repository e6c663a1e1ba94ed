package xdsgen

import (
	"net"
	"strconv"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/registry"
)

// Proxyless gRPC: what istiod's grpcgen generator sends a client whose
// node metadata says GENERATOR=grpc (pilot/pkg/networking/grpcgen,
// read at istio/istio 86c9f01fd73). grpc-go's xDS client asks for
// resources by name, one type at a time: LDS for the dial target
// "<host>:<port>", the RDS the listener names, the CDS clusters its routes
// name and the EDS those clusters name. The shapes differ from a sidecar's:
//   - LDS: an ApiListener per service port, named as the client asked
//     (FQDN:port, or a same-namespace short name), whose HTTP connection
//     manager names RDS "outbound|<port>||<fqdn>" (lds.go
//     buildOutboundListeners, clusterKey) and has the fault and router
//     filters only (supportedFilters).
//   - RDS: one RouteConfiguration per service port, named by that cluster
//     key, holding the sidecar's virtual host for the service alone
//     (rds.go buildHTTPRoute, filterVirtualHostsForHostname), with domains
//     that carry the port (SidecarIgnorePort is false for proxyless,
//     httproute.go generateVirtualHostDomains) and each route's timeout
//     also as max_stream_duration, the only one grpc-go reads (route.go
//     setTimeout; gRFC A31).
//   - CDS: bare EDS clusters, with only what grpcgen applies of a
//     DestinationRule: LEAST_REQUEST or a ring hash, and
//     http2MaxRequests as max_requests (cds.go applyTrafficPolicy,
//     gRFC A32); no outlier detection, no connect timeout, and no TLS
//     unless the rule says ISTIO_MUTUAL (which meshbench refuses for
//     proxyless callers: grpc-go would need certificate providers).
//   - EDS: the same ClusterLoadAssignments as a sidecar's; the locality
//     carries a LoadBalancingWeight, without which grpc-go drops it
//     (endpoint_builder.go).
// Nothing here speaks gRPC: the xDS server serves the snapshot.

// GeneratorMetadataKey and GeneratorGRPC are the node metadata by which
// istiod picks the grpcgen generator for a node (pilot/pkg/model/context.go
// NodeMetadata.Generator; pkg/istio-agent/grpcxds writes it into the
// bootstrap of a proxyless pod).
const (
	GeneratorMetadataKey = "GENERATOR"
	GeneratorGRPC        = "grpc"
)

// ProxylessListenerName is the LDS name a grpc-go client asks for when it
// dials xds:///<host>:<port>.
func ProxylessListenerName(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// ProxylessRouteName is the RDS name grpcgen's listeners give: the
// service's default cluster key (lds.go clusterKey).
func ProxylessRouteName(s registry.ServiceInfo) string {
	return istionames.ClusterName(istionames.OutboundDirection, s.Port, "", s.FQDN())
}

// ForProxyless builds what istiod's grpcgen sends a proxyless gRPC client
// in pod p: listeners, routes, clusters and endpoints for every service.
// grpc-go asks for a subset by name, and the server answers with what it
// asked for.
func (g *Generator) ForProxyless(p *registry.Pod) Resources {
	var r Resources
	for _, s := range g.reg.Services {
		for _, name := range proxylessHostNames(s, p.Namespace) {
			r.Listeners = append(r.Listeners, proxylessListener(ProxylessListenerName(name, s.Port), ProxylessRouteName(s)))
		}
		r.Routes = append(r.Routes, g.proxylessRoute(s))
		cs, eps := g.proxylessClusters(s)
		r.Clusters = append(r.Clusters, cs...)
		r.Endpoints = append(r.Endpoints, eps...)
	}
	return r
}

// proxylessHostNames are the names a client may dial a service by: the
// FQDN, and from the service's own namespace the short forms grpcgen
// expands to it (lds.go tryFindFQDN: "foo", "foo.ns", "foo.ns.svc").
func proxylessHostNames(s registry.ServiceInfo, callerNamespace string) []string {
	names := []string{s.FQDN()}
	if callerNamespace == s.Namespace {
		names = append(names, s.Name, s.Name+"."+s.Namespace, s.Name+"."+s.Namespace+".svc")
	}
	return names
}

// proxylessListener is grpcgen's outbound ApiListener (lds.go buildOutboundListeners).
func proxylessListener(name, rds string) *listener.Listener {
	m := &hcm.HttpConnectionManager{
		// supportedFilters: the fault filter, then the router.
		HttpFilters: []*hcm.HttpFilter{
			{Name: FaultFilter, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&faultv3.HTTPFault{})}},
			{Name: wellknown.Router, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})}},
		},
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			RouteConfigName: rds,
			ConfigSource:    &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}},
		}},
	}
	return &listener.Listener{Name: name, ApiListener: &listener.ApiListener{ApiListener: mustAny(m)}}
}

// proxylessRoute is grpcgen's RDS for one service port (rds.go buildHTTPRoute).
func (g *Generator) proxylessRoute(s registry.ServiceInfo) *route.RouteConfiguration {
	vh := proto.Clone(g.virtualHost(s, "mesh", s.Port)).(*route.VirtualHost)
	vh.Domains = proxylessDomains(s)
	for _, rt := range vh.GetRoutes() {
		if a := rt.GetRoute(); a != nil {
			// route.go setTimeout: for proxyless gRPC the timeout (0s: none)
			// is also max_stream_duration, "grpc's xDS impl will not read
			// the deprecated value".
			a.MaxStreamDuration = &route.RouteAction_MaxStreamDuration{MaxStreamDuration: a.GetTimeout()}
		}
	}
	return &route.RouteConfiguration{Name: ProxylessRouteName(s), VirtualHosts: []*route.VirtualHost{vh}}
}

// proxylessDomains are generateVirtualHostDomains with the port kept
// (SidecarIgnorePort is false for proxyless): each name with and without
// ":<port>", the FQDN's absolute form, and the same-namespace short names
// (GenerateAltVirtualHosts, generateAltVirtualHostsForKubernetesService).
func proxylessDomains(s registry.ServiceInfo) []string {
	var out []string
	for _, h := range []string{s.FQDN(), s.FQDN() + ".", s.Name, s.Name + "." + s.Namespace + ".svc", s.Name + "." + s.Namespace} {
		out = append(out, h, ProxylessListenerName(h, s.Port))
	}
	return out
}

// proxylessClusters are grpcgen's clusters of one service: the default
// one and one per DestinationRule subset (cds.go clusterBuilder.build),
// with the sidecars' endpoints.
func (g *Generator) proxylessClusters(s registry.ServiceInfo) ([]*cluster.Cluster, []*endpoint.ClusterLoadAssignment) {
	dr := g.destinationRule(s)
	var policy *networking.TrafficPolicy
	if dr != nil {
		policy = dr.Spec.GetTrafficPolicy()
	}
	name := istionames.ClusterName(istionames.OutboundDirection, s.Port, "", s.FQDN())
	cs := []*cluster.Cluster{proxylessCluster(name, policy)}
	eps := []*endpoint.ClusterLoadAssignment{g.loadAssignment(name, s, nil, policy)}
	if dr != nil {
		for _, sub := range dr.Spec.GetSubsets() {
			name := istionames.ClusterName(istionames.OutboundDirection, s.Port, sub.GetName(), s.FQDN())
			sp := mergeSubsetPolicy(policy, sub.GetTrafficPolicy())
			cs = append(cs, proxylessCluster(name, sp))
			eps = append(eps, g.loadAssignment(name, s, sub.GetLabels(), sp))
		}
	}
	return cs, eps
}

// proxylessCluster is cds.go edsCluster with applyLoadBalancing and
// applyCircuitBreakers.
func proxylessCluster(name string, p *networking.TrafficPolicy) *cluster.Cluster {
	c := &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{
			ServiceName: name,
			EdsConfig:   &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}},
		},
	}
	if lb := p.GetLoadBalancer(); lb != nil {
		switch {
		case lb.GetConsistentHash() != nil:
			applyRingHash(c, lb.GetConsistentHash())
		case lb.GetSimple() == networking.LoadBalancerSettings_LEAST_REQUEST:
			c.LbPolicy = cluster.Cluster_LEAST_REQUEST
			// ROUND_ROBIN and UNSPECIFIED are grpc-go's default; others are
			// dropped with a warning by grpcgen.
		}
	}
	// gRFC A32: only max_requests, from http2MaxRequests.
	if n := p.GetConnectionPool().GetHttp().GetHttp2MaxRequests(); n > 0 {
		c.CircuitBreakers = &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{{MaxRequests: wrapperspb.UInt32(uint32(n))}}}
	}
	return c
}

// HasClientTLS reports whether the DestinationRule of s asks for TLS
// (SIMPLE, MUTUAL or ISTIO_MUTUAL) at host or subset level: grpcgen turns
// ISTIO_MUTUAL into xDS certificate providers (cds.go applyTLS), which
// only a client with xDS credentials acts on.
func (g *Generator) HasClientTLS(s registry.ServiceInfo) bool {
	dr := g.destinationRule(s)
	if dr == nil {
		return false
	}
	tls := func(t *networking.ClientTLSSettings) bool {
		return t != nil && t.GetMode() != networking.ClientTLSSettings_DISABLE
	}
	if tls(dr.Spec.GetTrafficPolicy().GetTls()) {
		return true
	}
	for _, sub := range dr.Spec.GetSubsets() {
		if tls(sub.GetTrafficPolicy().GetTls()) {
			return true
		}
	}
	return false
}
