package xdsgen

import (
	"fmt"
	"net/netip"
	"sort"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
)

// Resources is what one proxy receives: every xDS type it uses.
type Resources struct {
	Clusters  []*cluster.Cluster
	Endpoints []*endpoint.ClusterLoadAssignment
	Listeners []*listener.Listener
	Routes    []*route.RouteConfiguration
	// Secrets are set by the runtime, which holds the CA.
	Secrets []*tlsv3.Secret
}

// Snapshot packs the resources into a go-control-plane snapshot of one version.
func (r Resources) Snapshot(version string) (*cache.Snapshot, error) {
	conv := func(n int, at func(int) types.Resource) []types.Resource {
		out := make([]types.Resource, n)
		for i := range out {
			out[i] = at(i)
		}
		return out
	}
	s, err := cache.NewSnapshot(version, map[resource.Type][]types.Resource{
		resource.ClusterType:  conv(len(r.Clusters), func(i int) types.Resource { return r.Clusters[i] }),
		resource.EndpointType: conv(len(r.Endpoints), func(i int) types.Resource { return r.Endpoints[i] }),
		resource.ListenerType: conv(len(r.Listeners), func(i int) types.Resource { return r.Listeners[i] }),
		resource.RouteType:    conv(len(r.Routes), func(i int) types.Resource { return r.Routes[i] }),
		resource.SecretType:   conv(len(r.Secrets), func(i int) types.Resource { return r.Secrets[i] }),
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Gateway is an ingress gateway proxy: a sidecar in router mode.
type Gateway struct {
	Name      string // e.g. istio-ingressgateway
	Namespace string // e.g. istio-system
	IP        netip.Addr
	Port      int // HTTP server port, 8080 as Istio's default ingress gateway container port
	// Labels select the Gateway resources that bind to it (istio: ingressgateway).
	Labels map[string]string
}

// NodeID is router~IP~pod.namespace~namespace.svc.cluster.local, as Istio names a gateway node.
func (g Gateway) NodeID() string {
	return fmt.Sprintf("router~%s~%s-0.%s~%s.svc.%s", g.IP, g.Name, g.Namespace, g.Namespace, istionames.ClusterDomain)
}

// Generator translates one state of the mesh. It is immutable once built.
type Generator struct {
	reg *registry.Registry
	cfg meshconfig.Config
	// gamma are the VirtualServices istiod makes of the Gateway API routes (gamma.go).
	gamma []*networkingv1.VirtualService
	// collector is the trace collector in the mesh, if any (tracing.go).
	collector *Collector
	// shared are the parts every proxy gets alike, built on first use (shared.go).
	shared shared
}

// New returns a generator for the registry and Istio config.
func New(reg *registry.Registry, cfg meshconfig.Config, opts ...Option) *Generator {
	cfg.VirtualServices = resolveShortnames(cfg.VirtualServices)
	g := &Generator{reg: reg, cfg: cfg}
	for _, o := range opts {
		o(g)
	}
	g.gamma = g.GAMMAVirtualServices()
	return g
}

// ForSidecar builds what istiod sends the sidecar of pod p: outbound clusters
// for every service and DestinationRule subset, their endpoints, the
// per-port outbound listeners and routes, and the inbound listener and
// cluster to the app.
func (g *Generator) ForSidecar(p *registry.Pod) Resources {
	var r Resources
	r.Clusters, r.Endpoints = g.sharedOutboundClusters(true)
	g.addCollector(&r, true)
	svc, _ := g.reg.Service(p.Service)
	r.Clusters = append(r.Clusters, inboundCluster(p, svc))
	r.Listeners = append(r.Listeners, g.outboundListeners(p)...)
	r.Listeners = append(r.Listeners, virtualOutboundListener(), g.virtualInboundListener(p, svc))
	r.Listeners = g.withTracing(g.withAccessLog(r.Listeners), sidecarProxy(p))
	r.Routes = g.sharedOutboundRoutes()
	return r
}

// ForGateway builds what istiod sends an ingress gateway: outbound clusters
// and endpoints, a listener on the gateway port and its route configuration.
func (g *Generator) ForGateway(gw Gateway) Resources {
	var r Resources
	r.Clusters, r.Endpoints = g.sharedOutboundClusters(false)
	g.addCollector(&r, false)
	r.Listeners = g.withTracing(g.withAccessLog([]*listener.Listener{gatewayListener(gw)}), gatewayProxy(gw))
	r.Routes = []*route.RouteConfiguration{g.gatewayRoute(gw)}
	return r
}

// addCollector adds the trace collector's cluster and endpoint, if the
// mesh has one: istiod sends every proxy the clusters of every Service.
func (g *Generator) addCollector(r *Resources, sidecar bool) {
	if g.collector == nil {
		return
	}
	c, cla := g.collectorResources(sidecar)
	r.Clusters = append(r.Clusters, c)
	r.Endpoints = append(r.Endpoints, cla)
}

// destinationRule returns the DestinationRule for a service, if any. Istio
// merges several rules for one host only in limited cases; we take the first
// by name, which is what Istio does for conflicting rules (oldest wins, and
// our rules have no creation time).
// A rule for the exact host wins over a wildcard one, and the longest
// wildcard over shorter ones (pilot/pkg/model/push_context.go, most specific host).
func (g *Generator) destinationRule(s registry.ServiceInfo) *networkingv1.DestinationRule {
	var best *networkingv1.DestinationRule
	bestRank := -1
	for _, dr := range g.cfg.DestinationRules {
		h := dr.Spec.GetHost()
		rank := -1
		switch {
		case istionames.NamesService(h, dr.Namespace, s.Name, s.Namespace):
			rank = 1 << 20
		case istionames.CoversService(h, dr.Namespace, s.Name, s.Namespace):
			rank = len(h)
		}
		if rank > bestRank || rank == bestRank && rank >= 0 && dr.Name < best.Name {
			best, bestRank = dr, rank
		}
	}
	if bestRank < 0 {
		return nil
	}
	return best
}

// virtualServices returns the VirtualServices for a service bound to the given gateway
// ("mesh" for sidecars), in name order (Istio orders by creation time, then name).
func (g *Generator) virtualServices(s registry.ServiceInfo, gateway string) []*networkingv1.VirtualService {
	var out []*networkingv1.VirtualService
	for _, vs := range g.cfg.VirtualServices {
		if !boundTo(vs, gateway) {
			continue
		}
		for _, h := range vs.Spec.GetHosts() {
			if istionames.NamesService(h, vs.Namespace, s.Name, s.Namespace) {
				out = append(out, vs)
				break
			}
		}
	}
	if len(out) == 0 {
		// A wildcard host applies to a service no VirtualService names
		// exactly (route.go separateVSHostsAndServices).
		for _, vs := range g.cfg.VirtualServices {
			if !boundTo(vs, gateway) {
				continue
			}
			for _, h := range vs.Spec.GetHosts() {
				if istionames.CoversService(h, vs.Namespace, s.Name, s.Namespace) {
					out = append(out, vs)
					break
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if gateway == "mesh" {
		// istiod selects the Gateway API routes of the proxy's namespace
		// before any VirtualService (model/virtualservice.go
		// SelectVirtualServices, gwMatch first), so for a host that has
		// both, the route wins on sidecars.
		var gamma []*networkingv1.VirtualService
		for _, vs := range g.gamma {
			if istionames.NamesService(vs.Spec.GetHosts()[0], vs.Namespace, s.Name, s.Namespace) {
				gamma = append(gamma, vs)
			}
		}
		out = append(gamma, out...)
	}
	return out
}

// boundTo reports whether a VirtualService applies to a gateway. Unset
// gateways mean "mesh": every sidecar (networking/v1alpha3/virtual_service.proto, field gateways).
func boundTo(vs *networkingv1.VirtualService, gateway string) bool {
	gws := vs.Spec.GetGateways()
	if len(gws) == 0 {
		return gateway == "mesh"
	}
	for _, gw := range gws {
		if gw == gateway || (gateway != "mesh" && lastPart(gw) == gateway) {
			return true
		}
	}
	return false
}

func lastPart(s string) string {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return s[i+1:]
		}
	}
	return s
}
