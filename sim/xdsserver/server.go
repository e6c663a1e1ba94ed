// Package xdsserver serves per-node xDS snapshots over ADS on a loopback gRPC
// listener, with go-control-plane's snapshot cache and server, and keeps
// track of what every node has ACKed or NACKed so that a run can wait for
// convergence before it measures.
package xdsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	xds "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
)

// TypeURLs are the xDS types every proxy in the mesh receives.
var TypeURLs = []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType}

// Nack is a proxy's refusal of a config version, with Envoy's error detail.
type Nack struct {
	Node    string
	TypeURL string
	Version string // the version the proxy still runs
	Refused string // the snapshot version it refused
	Nonce   string
	Reason  string
}

// Server is the control plane's transport. It never knows where config comes from.
type Server struct {
	cache cache.SnapshotCache
	log   *slog.Logger

	mu       sync.Mutex
	addr     string
	grpc     *grpc.Server
	done     chan struct{}
	acked    map[string]map[string]string // node → type URL → last ACKed version
	nacks    []Nack
	changed  chan struct{} // closed and replaced on every ACK or NACK
	snapshot map[string]string
}

// New returns a server with an ADS snapshot cache; Start binds it. A nil log discards.
func New(log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		log:      log,
		acked:    map[string]map[string]string{},
		changed:  make(chan struct{}),
		snapshot: map[string]string{},
	}
	// ADS mode: answer EDS and RDS only when the request names every resource
	// of the node's snapshot, as Envoy does after CDS and LDS; per-node
	// snapshots hold exactly what that node asks for.
	s.cache = cache.NewSnapshotCache(true, cache.IDHash{}, nil)
	return s
}

// Start listens on addr (host:port; port 0 picks one) and serves ADS until Stop.
// It may be called again after Stop, on the same address, to model a control
// plane that comes back.
func (s *Server) Start(ctx context.Context, addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grpc != nil {
		return errors.New("xds server already running")
	}
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("xds listen: %w", err)
	}
	s.addr = lis.Addr().String()
	g := grpc.NewServer()
	srv := xds.NewServer(context.Background(), s.cache, xds.CallbackFuncs{StreamRequestFunc: s.onRequest})
	discovery.RegisterAggregatedDiscoveryServiceServer(g, srv)
	s.grpc = g
	done := make(chan struct{})
	s.done = done
	go func() {
		defer close(done)
		_ = g.Serve(lis)
	}()
	return nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Stop closes every stream and the listener at once (a crashed istiod, not a drained one).
func (s *Server) Stop() {
	s.mu.Lock()
	g, done := s.grpc, s.done
	s.grpc = nil
	s.mu.Unlock()
	if g == nil {
		return
	}
	g.Stop()
	<-done
}

// SetSnapshot publishes a node's snapshot; the node's open watches answer at once.
func (s *Server) SetSnapshot(ctx context.Context, node string, snap *cache.Snapshot) error {
	if err := snap.Consistent(); err != nil {
		return fmt.Errorf("snapshot for %s is inconsistent: %w", node, err)
	}
	s.mu.Lock()
	s.snapshot[node] = snap.GetVersion(resource.ListenerType)
	s.mu.Unlock()
	return s.cache.SetSnapshot(ctx, node, snap)
}

// ClearSnapshot forgets a node.
func (s *Server) ClearSnapshot(node string) {
	s.cache.ClearSnapshot(node)
	s.mu.Lock()
	delete(s.snapshot, node)
	delete(s.acked, node)
	s.mu.Unlock()
}

func (s *Server) onRequest(streamID int64, req *discovery.DiscoveryRequest) error {
	node := nodeID(req.GetNode())
	if node == "" || req.GetResponseNonce() == "" {
		return nil // the first request of a type carries no nonce: nothing to ACK yet
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := req.GetErrorDetail(); d != nil {
		n := Nack{Node: node, TypeURL: req.GetTypeUrl(), Version: req.GetVersionInfo(), Nonce: req.GetResponseNonce(), Reason: d.GetMessage(), Refused: s.snapshot[node]}
		s.nacks = append(s.nacks, n)
		s.log.Warn("xds NACK", "node", node, "type", shortType(n.TypeURL), "refused", n.Refused, "keeps_version", n.Version, "reason", n.Reason)
	} else {
		if s.acked[node] == nil {
			s.acked[node] = map[string]string{}
		}
		s.acked[node][req.GetTypeUrl()] = req.GetVersionInfo()
		s.log.Debug("xds ACK", "node", node, "type", shortType(req.GetTypeUrl()), "version", req.GetVersionInfo())
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

func nodeID(n *core.Node) string { return n.GetId() }

func shortType(url string) string {
	for i := len(url) - 1; i >= 0; i-- {
		if url[i] == '.' {
			return url[i+1:]
		}
	}
	return url
}

// Nacks returns every NACK seen so far.
func (s *Server) Nacks() []Nack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Nack(nil), s.nacks...)
}

// Acked returns the version a node last ACKed for a type.
func (s *Server) Acked(node, typeURL string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked[node][typeURL]
}

// WaitConverged blocks until every node has ACKed version for every type.
// A NACK of that version by any of them ends the wait with an error naming it.
func (s *Server) WaitConverged(ctx context.Context, nodes []string, version string) error {
	for {
		s.mu.Lock()
		var missing []string
		for _, n := range nodes {
			for _, t := range TypeURLs {
				if s.acked[n][t] != version {
					missing = append(missing, n+" "+shortType(t))
				}
			}
		}
		var nacked *Nack
		for i := range s.nacks {
			if contains(nodes, s.nacks[i].Node) && s.nacks[i].Refused == version {
				nacked = &s.nacks[i]
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if nacked != nil {
			return fmt.Errorf("%s rejected config %s (%s): %s", nacked.Node, version, shortType(nacked.TypeURL), nacked.Reason)
		}
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			sort.Strings(missing)
			return fmt.Errorf("config %s not ACKed by %d proxies/types (first: %s): %w", version, len(missing), missing[0], ctx.Err())
		case <-ch:
		}
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
