package xdsserver

import (
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// The snapshot cache marshals every resource of every response anew
// (cache/v3/simple.go createResponse wraps each in a new cachedResource),
// so a cluster that 100 sidecars share was marshalled 100 times a push.
// istiod marshals a shared resource once and serves the bytes to every
// proxy (pilot/pkg/model/xds_cache.go XdsCacheImpl holds *discovery.Resource,
// its Any already marshalled). marshalCache does the same for the messages
// the translator shares between snapshots (xdsgen/shared.go): keyed by the
// message itself, marshalled on first use, dropped when no published
// snapshot holds it any more.
type marshalCache struct {
	mu      sync.Mutex
	entries map[types.Resource]*marshaled
	nodes   map[string]*cache.Snapshot // what each node's entries were counted from
}

type marshaled struct {
	refs  int // published snapshots that hold the message
	bytes func() ([]byte, error)
}

func newMarshalCache() *marshalCache {
	return &marshalCache{entries: map[types.Resource]*marshaled{}, nodes: map[string]*cache.Snapshot{}}
}

// publish counts the resources of node's new snapshot (nil: the node is
// gone) and releases those of its previous one.
func (m *marshalCache) publish(node string, snap *cache.Snapshot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	eachResource(snap, func(r types.Resource) {
		e := m.entries[r]
		if e == nil {
			e = &marshaled{bytes: sync.OnceValues(func() ([]byte, error) { return cache.MarshalResource(r) })}
			m.entries[r] = e
		}
		e.refs++
	})
	eachResource(m.nodes[node], func(r types.Resource) {
		if e := m.entries[r]; e != nil {
			if e.refs--; e.refs == 0 {
				delete(m.entries, r)
			}
		}
	})
	if snap == nil {
		delete(m.nodes, node)
	} else {
		m.nodes[node] = snap
	}
}

func eachResource(snap *cache.Snapshot, f func(types.Resource)) {
	if snap == nil {
		return
	}
	for _, rs := range snap.Resources {
		for _, item := range rs.Items {
			f(item.Resource)
		}
	}
}

// marshal returns the resource's wire bytes, once per published message.
func (m *marshalCache) marshal(r types.Resource) ([]byte, error) {
	m.mu.Lock()
	e := m.entries[r]
	m.mu.Unlock()
	if e == nil {
		return cache.MarshalResource(r)
	}
	return e.bytes()
}

// premarshaled is a snapshot cache response whose resources come from the
// marshal cache: the same DiscoveryResponse the cache would build, without
// marshalling again what another proxy was already sent.
type premarshaled struct {
	*cache.RawResponse
	resp *discovery.DiscoveryResponse
}

func (p *premarshaled) GetDiscoveryResponse() (*discovery.DiscoveryResponse, error) {
	return p.resp, nil
}

// premarshal converts a snapshot cache response; one it cannot convert
// (TTLs, heartbeats, a marshalling error) goes out as it is.
func (m *marshalCache) premarshal(resp cache.Response) cache.Response {
	raw, ok := resp.(*cache.RawResponse)
	if !ok || raw.Heartbeat {
		return resp
	}
	typeURL := raw.GetRequest().GetTypeUrl()
	rs := raw.GetRawResources()
	out := &discovery.DiscoveryResponse{VersionInfo: raw.Version, TypeUrl: typeURL, Resources: make([]*anypb.Any, 0, len(rs))}
	for _, r := range rs {
		if r.TTL != nil {
			return resp
		}
		b, err := m.marshal(r.Resource)
		if err != nil {
			return resp
		}
		out.Resources = append(out.Resources, &anypb.Any{TypeUrl: typeURL, Value: b})
	}
	return &premarshaled{RawResponse: raw, resp: out}
}
