package xdsgen

import (
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// shared holds what every sidecar (or every gateway) of one push receives
// alike: the outbound clusters, their endpoints and the outbound routes.
// They are translated once per Generator and handed to each proxy, as
// istiod keeps the CDS, EDS and RDS it built for a push in its XdsCache and
// serves them to every proxy whose config is identical
// (pilot/pkg/model/xds_cache.go XdsCacheImpl: cds, eds, rds). Callers get
// fresh slices of shared messages: never change a message, clone it first
// (controlplane.redirect does).
type shared struct {
	sidecar, gateway outbound
	routesOnce       sync.Once
	routes           []*route.RouteConfiguration
}

type outbound struct {
	once      sync.Once
	clusters  []*cluster.Cluster
	endpoints []*endpoint.ClusterLoadAssignment
}

// sharedOutboundClusters is outboundClusters(sidecar), translated once.
func (g *Generator) sharedOutboundClusters(sidecar bool) ([]*cluster.Cluster, []*endpoint.ClusterLoadAssignment) {
	o := &g.shared.gateway
	if sidecar {
		o = &g.shared.sidecar
	}
	o.once.Do(func() { o.clusters, o.endpoints = g.outboundClusters(sidecar) })
	return slices.Clone(o.clusters), slices.Clone(o.endpoints)
}

// sharedOutboundRoutes is outboundRoutes(), translated once.
func (g *Generator) sharedOutboundRoutes() []*route.RouteConfiguration {
	g.shared.routesOnce.Do(func() { g.shared.routes = g.outboundRoutes() })
	return slices.Clone(g.shared.routes)
}

// Clone deep-copies every message, for a caller that changes what the
// generator may share between proxies.
func (r Resources) Clone() Resources {
	return Resources{Clusters: cloneAll(r.Clusters), Endpoints: cloneAll(r.Endpoints), Listeners: cloneAll(r.Listeners),
		Routes: cloneAll(r.Routes), Secrets: cloneAll(r.Secrets)}
}

func cloneAll[M proto.Message](ms []M) []M {
	out := make([]M, len(ms))
	for i, m := range ms {
		out[i] = proto.Clone(m).(M)
	}
	return out
}
