package xdsserver

import (
	"context"
	"fmt"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// Proxyless gRPC clients (grpc-go's xds package) ask for resources by
// name, one type at a time, and only for what they use: the listener of
// the target they dial, the route it names, the clusters of that route.
// go-control-plane's snapshot cache in ADS mode answers a request only
// when it names every resource of the type in the node's snapshot
// (cache/v3/simple.go, the ADS superset check), so such a client would
// wait forever on a snapshot that holds more; and one pod may open one
// stream per target, each naming a different subset. They are served from
// a second cache in non-ADS mode instead, which answers each request with
// the named resources the snapshot holds, and the streams are routed to
// it by the node metadata istiod reads to pick its grpcgen generator.

// GeneratorMetadataKey and GeneratorGRPC are the node metadata of a
// proxyless gRPC client, as Istio's agent writes them into its bootstrap
// (pkg/istio-agent/grpcxds; pilot/pkg/model/context.go Generator).
const (
	GeneratorMetadataKey = "GENERATOR"
	GeneratorGRPC        = "grpc"
)

// IsProxyless reports whether a node is a proxyless gRPC client.
func IsProxyless(n *core.Node) bool {
	return n.GetMetadata().GetFields()[GeneratorMetadataKey].GetStringValue() == GeneratorGRPC
}

// cacheFor is the snapshot cache that serves node.
func (s *Server) cacheFor(n *core.Node) cache.SnapshotCache {
	if IsProxyless(n) {
		return s.grpcCache
	}
	return s.cache
}

// mux routes each request to the cache of its node's kind.
func (s *Server) mux() cache.Cache {
	return &cache.MuxCache{
		Classify: func(r *cache.Request) string {
			if IsProxyless(r.GetNode()) {
				return GeneratorGRPC
			}
			return "envoy"
		},
		ClassifyDelta: func(r *cache.DeltaRequest) string {
			if IsProxyless(r.GetNode()) {
				return GeneratorGRPC
			}
			return "envoy"
		},
		Caches: map[string]cache.Cache{GeneratorGRPC: s.grpcCache, "envoy": s.cache},
	}
}

// SetProxylessSnapshot publishes the snapshot of a proxyless gRPC client.
// Snapshot.Consistent does not follow the RDS names inside ApiListeners,
// so the references are checked here: every route a listener names, every
// cluster a route names and every EDS name a cluster names must be in it.
func (s *Server) SetProxylessSnapshot(ctx context.Context, node string, snap *cache.Snapshot) error {
	if err := proxylessConsistent(snap); err != nil {
		return fmt.Errorf("snapshot for %s is inconsistent: %w", node, err)
	}
	s.mu.Lock()
	s.snapshot[node] = snap.GetVersion(resource.ListenerType)
	s.mu.Unlock()
	return s.grpcCache.SetSnapshot(ctx, node, snap)
}

func proxylessConsistent(snap *cache.Snapshot) error {
	has := func(typ, name string) bool {
		_, ok := snap.GetResources(typ)[name]
		return ok
	}
	for name, r := range snap.GetResources(resource.ListenerType) {
		l, ok := r.(*listener.Listener)
		if !ok || l.GetApiListener() == nil {
			return fmt.Errorf("listener %s is not an ApiListener", name)
		}
		m := &hcm.HttpConnectionManager{}
		if err := l.GetApiListener().GetApiListener().UnmarshalTo(m); err != nil {
			return fmt.Errorf("listener %s: %w", name, err)
		}
		if rds := m.GetRds().GetRouteConfigName(); rds != "" && !has(resource.RouteType, rds) {
			return fmt.Errorf("listener %s names route %s, which is missing", name, rds)
		}
	}
	for name, r := range snap.GetResources(resource.RouteType) {
		for _, vh := range r.(*route.RouteConfiguration).GetVirtualHosts() {
			for _, rt := range vh.GetRoutes() {
				a := rt.GetRoute()
				names := []string{a.GetCluster()}
				for _, w := range a.GetWeightedClusters().GetClusters() {
					names = append(names, w.GetName())
				}
				for _, c := range names {
					if c != "" && !has(resource.ClusterType, c) {
						return fmt.Errorf("route %s names cluster %s, which is missing", name, c)
					}
				}
			}
		}
	}
	for name, r := range snap.GetResources(resource.ClusterType) {
		c := r.(*cluster.Cluster)
		if c.GetType() != cluster.Cluster_EDS {
			continue
		}
		eds := c.GetEdsClusterConfig().GetServiceName()
		if eds == "" {
			eds = name
		}
		if !has(resource.EndpointType, eds) {
			return fmt.Errorf("cluster %s names endpoints %s, which are missing", name, eds)
		}
	}
	return nil
}

// Convergence of a proxyless client. An Envoy-style proxy has the config
// of a version once it has ACKed every type at it. grpc-go has not: it
// ACKs the route first and only then asks for the clusters the new route
// names (at the same version), and its resolver keeps the old route until
// those clusters and their endpoints have come (gRFC A74), so calls after
// four ACKs may still go by the old route. A proxyless node has converged
// at a version when, on each of its streams, its last request of every
// type ACKs that version with the nonce of the last response sent, that
// response held every name the request asks for, and the request asks for
// the whole chain its listeners name: their routes, those routes'
// clusters and those clusters' endpoints, as the snapshot has them.

// seenType is what one stream last asked for and was sent, of one type.
type seenType struct {
	reqNonce, reqVersion string
	reqNames             []string
	sentNonce            string
	sentNames            map[string]bool
}

func (s *Server) seenOf(node string, stream int64, typeURL string) *seenType {
	if s.seen == nil {
		s.seen = map[string]map[int64]map[string]*seenType{}
	}
	if s.seen[node] == nil {
		s.seen[node] = map[int64]map[string]*seenType{}
	}
	if s.seen[node][stream] == nil {
		s.seen[node][stream] = map[string]*seenType{}
	}
	st := s.seen[node][stream][typeURL]
	if st == nil {
		st = &seenType{}
		s.seen[node][stream][typeURL] = st
	}
	return st
}

// noteProxylessRequest records a proxyless node's request; s.mu is held.
func (s *Server) noteProxylessRequest(node string, stream int64, req *discovery.DiscoveryRequest) {
	st := s.seenOf(node, stream, req.GetTypeUrl())
	st.reqNonce, st.reqNames = req.GetResponseNonce(), req.GetResourceNames()
	st.reqVersion = req.GetVersionInfo()
	if req.GetErrorDetail() != nil {
		st.reqVersion = "" // a NACK converges on nothing
	}
}

// noteProxylessResponse records what a proxyless node was sent; s.mu is held.
func (s *Server) noteProxylessResponse(node string, stream int64, resp *discovery.DiscoveryResponse) {
	st := s.seenOf(node, stream, resp.GetTypeUrl())
	st.sentNonce, st.sentNames = resp.GetNonce(), map[string]bool{}
	for _, a := range resp.GetResources() {
		if m, err := a.UnmarshalNew(); err == nil {
			st.sentNames[cache.GetResourceName(m)] = true
		}
	}
}

// forgetStream drops a closed stream's record.
func (s *Server) forgetStream(stream int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for node, streams := range s.seen {
		delete(streams, stream)
		if len(streams) == 0 {
			delete(s.seen, node)
		}
	}
}

// proxylessConverged reports whether a proxyless node has version; s.mu is held.
func (s *Server) proxylessConverged(node, version string) bool {
	snap, err := s.grpcCache.GetSnapshot(node)
	if err != nil || snap.GetVersion(resource.ListenerType) != version || len(s.seen[node]) == 0 {
		return false
	}
	for _, types := range s.seen[node] {
		done := func(typeURL string, need []string) ([]string, bool) {
			st := types[typeURL]
			if st == nil || st.reqVersion != version || st.reqNonce != st.sentNonce {
				return nil, false
			}
			asked := map[string]bool{}
			for _, n := range st.reqNames {
				if !st.sentNames[n] {
					return nil, false
				}
				asked[n] = true
			}
			for _, n := range need {
				if !asked[n] {
					return nil, false
				}
			}
			return st.reqNames, true
		}
		lds, ok := done(resource.ListenerType, nil)
		if !ok {
			return false
		}
		rds, ok := done(resource.RouteType, referenced(snap, resource.ListenerType, lds))
		if !ok {
			return false
		}
		cds, ok := done(resource.ClusterType, referenced(snap, resource.RouteType, rds))
		if !ok {
			return false
		}
		if _, ok := done(resource.EndpointType, referenced(snap, resource.ClusterType, cds)); !ok {
			return false
		}
	}
	return true
}

// referenced lists the resources of the next type that the named
// resources of typeURL name: a listener's RDS, a route's clusters, a
// cluster's EDS name.
func referenced(snap cache.ResourceSnapshot, typeURL string, names []string) []string {
	var out []string
	res := snap.GetResources(typeURL)
	for _, n := range names {
		switch r := res[n].(type) {
		case *listener.Listener:
			m := &hcm.HttpConnectionManager{}
			if r.GetApiListener().GetApiListener().UnmarshalTo(m) == nil && m.GetRds().GetRouteConfigName() != "" {
				out = append(out, m.GetRds().GetRouteConfigName())
			}
		case *route.RouteConfiguration:
			for _, vh := range r.GetVirtualHosts() {
				for _, rt := range vh.GetRoutes() {
					if c := rt.GetRoute().GetCluster(); c != "" {
						out = append(out, c)
					}
					for _, w := range rt.GetRoute().GetWeightedClusters().GetClusters() {
						out = append(out, w.GetName())
					}
				}
			}
		case *cluster.Cluster:
			if r.GetType() == cluster.Cluster_EDS {
				eds := r.GetEdsClusterConfig().GetServiceName()
				if eds == "" {
					eds = n
				}
				out = append(out, eds)
			}
		}
	}
	return out
}
