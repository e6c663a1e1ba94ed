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
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	xds "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
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
	// grpcCache serves proxyless gRPC clients (grpc.go): non-ADS mode.
	grpcCache cache.SnapshotCache
	log       *slog.Logger

	mu       sync.Mutex
	addr     string
	grpc     *grpc.Server
	done     chan struct{}
	acked    map[string]map[string]string // node → type URL → last ACKed version
	nacks    []Nack
	changed  chan struct{} // closed and replaced on every ACK or NACK
	snapshot map[string]string
	sent     map[sentKey]string // response nonce on a stream → version sent, to attribute NACKs
	// wantsSecrets records the nodes that subscribed to SDS: they must ACK
	// the secrets too before they have converged. A proxy asks for secrets
	// right after the CDS and LDS that name them, on the same stream, so the
	// subscription is seen before the last ACK of a version.
	wantsSecrets map[string]bool

	tokens    *Tokens      // nil: every stream is served (tests of the transport alone)
	streams   sync.Map     // stream id → *streamAuth
	outsiders atomic.Int64 // requests refused by authorize
	// seen is what each proxyless node's streams asked for and were sent,
	// by type (grpc.go): their convergence follows the resource chain.
	seen map[string]map[int64]map[string]*seenType

	// marshals holds the wire bytes of the sidecars' published resources,
	// and relays hand them to each stream (marshal.go, relay.go).
	marshals *marshalCache
	relayMu  sync.Mutex
	relays   map[chan cache.Response]*relay
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
	s.grpcCache = cache.NewSnapshotCache(false, cache.IDHash{}, nil)
	s.sent = map[sentKey]string{}
	s.wantsSecrets = map[string]bool{}
	s.marshals = newMarshalCache()
	s.relays = map[chan cache.Response]*relay{}
	return s
}

// holdNacked wraps the snapshot cache so that a NACK does not get the
// refused snapshot sent straight back: the watch waits for the next
// version, as istiod does. Without it the cache sees the proxy on an older
// version and answers at once, and proxy and server loop.
type holdNacked struct {
	cache.Cache
	s *Server
}

func (h holdNacked) CreateWatch(req *cache.Request, sub cache.Subscription, out chan cache.Response) (func(), error) {
	if req.GetErrorDetail() != nil {
		h.s.mu.Lock()
		refused := h.s.sent[sentKey{req.GetNode().GetId(), req.GetResponseNonce()}]
		h.s.mu.Unlock()
		// Hold only when the refused version is still the newest; a newer one is sent at once.
		if snap, err := h.s.cacheFor(req.GetNode()).GetSnapshot(req.GetNode().GetId()); err == nil && refused != "" && snap.GetVersion(req.GetTypeUrl()) == refused {
			r := proto.Clone(req).(*discovery.DiscoveryRequest)
			r.VersionInfo = refused
			req = r
		}
	}
	if IsProxyless(req.GetNode()) {
		return h.Cache.CreateWatch(req, sub, out)
	}
	return h.s.relayWatch(h.Cache, req, sub, out)
}

// SplitAddr splits a listen address into a network and an address:
// "unix:///path" (as gRPC spells it) or "unix:/path" is a Unix socket,
// anything else host:port on TCP.
func SplitAddr(addr string) (network, address string) {
	if p, ok := strings.CutPrefix(addr, "unix://"); ok {
		return "unix", p
	}
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		return "unix", p
	}
	return "tcp", addr
}

// Start listens on addr (host:port, port 0 picking one, or a Unix socket
// "unix:///path") and serves ADS until Stop.
// It may be called again after Stop, on the same address, to model a control
// plane that comes back.
func (s *Server) Start(ctx context.Context, addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grpc != nil {
		return errors.New("xds server already running")
	}
	network, address := SplitAddr(addr)
	if network == "unix" {
		// A socket left by a server that was stopped is in the way.
		if err := os.Remove(address); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("xds listen: %w", err)
		}
	}
	lis, err := (&net.ListenConfig{}).Listen(ctx, network, address)
	if err != nil {
		return fmt.Errorf("xds listen: %w", err)
	}
	s.addr = lis.Addr().String()
	if network == "unix" {
		s.addr = "unix://" + address
	}
	g := grpc.NewServer()
	srv := xds.NewServer(context.Background(), holdNacked{s.mux(), s}, xds.CallbackFuncs{
		StreamOpenFunc: s.onStreamOpen, StreamClosedFunc: s.onStreamClosed,
		StreamRequestFunc: s.onRequest, StreamResponseFunc: s.onResponse,
	})
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
	s.marshals.publish(node, snap)
	return s.cache.SetSnapshot(ctx, node, snap)
}

// HasSnapshot reports whether a snapshot is published for node, in either
// the sidecars' or the proxyless clients' cache.
func (s *Server) HasSnapshot(node string) bool {
	if _, err := s.cache.GetSnapshot(node); err == nil {
		return true
	}
	_, err := s.grpcCache.GetSnapshot(node)
	return err == nil
}

// ClearSnapshot forgets a node.
func (s *Server) ClearSnapshot(node string) {
	s.cache.ClearSnapshot(node)
	s.grpcCache.ClearSnapshot(node)
	s.marshals.publish(node, nil)
	s.mu.Lock()
	delete(s.snapshot, node)
	delete(s.acked, node)
	s.mu.Unlock()
}

// sentKey names a response: nonces count per stream, and each node has one stream.
type sentKey struct {
	node  string
	nonce string
}

func (s *Server) onResponse(_ context.Context, stream int64, req *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent[sentKey{req.GetNode().GetId(), resp.GetNonce()}] = resp.GetVersionInfo()
	if IsProxyless(req.GetNode()) {
		s.noteProxylessResponse(req.GetNode().GetId(), stream, resp)
	}
}

func (s *Server) onRequest(streamID int64, req *discovery.DiscoveryRequest) error {
	node, err := s.authorize(streamID, nodeID(req.GetNode()))
	if err != nil {
		return err
	}
	if req.GetTypeUrl() == resource.SecretType && len(req.GetResourceNames()) > 0 && node != "" {
		s.mu.Lock()
		s.wantsSecrets[node] = true
		s.mu.Unlock()
	}
	if node != "" && IsProxyless(req.GetNode()) {
		s.mu.Lock()
		s.noteProxylessRequest(node, streamID, req)
		s.mu.Unlock()
	}
	if node == "" || req.GetResponseNonce() == "" {
		return nil // the first request of a type carries no nonce: nothing to ACK yet
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := sentKey{node, req.GetResponseNonce()}
	if d := req.GetErrorDetail(); d == nil {
		defer delete(s.sent, key) // a NACK's entry is still read by CreateWatch
	}
	if d := req.GetErrorDetail(); d != nil {
		n := Nack{Node: node, TypeURL: req.GetTypeUrl(), Version: req.GetVersionInfo(), Nonce: req.GetResponseNonce(), Reason: d.GetMessage(), Refused: s.sent[key]}
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
	return s.waitFor(ctx, "config "+version, func() ([]string, error) {
		var missing []string
		for _, n := range nodes {
			if _, err := s.grpcCache.GetSnapshot(n); err == nil {
				if !s.proxylessConverged(n, version) {
					missing = append(missing, n+" (proxyless: its listeners' chain)")
				}
				continue
			}
			for _, t := range s.typesOf(n) {
				if s.acked[n][t] != version {
					missing = append(missing, n+" "+shortType(t))
				}
			}
		}
		for i := range s.nacks {
			if contains(nodes, s.nacks[i].Node) && s.nacks[i].Refused == version {
				return nil, fmt.Errorf("%s rejected config %s (%s): %s", s.nacks[i].Node, version, shortType(s.nacks[i].TypeURL), s.nacks[i].Reason)
			}
		}
		return missing, nil
	})
}

// WaitInitialized blocks until node, since it was last cleared
// (ClearSnapshot), has ACKed some version of every type it is sent, its
// secrets included: its proxy has initialized, as Envoy's init manager
// does once CDS, LDS and what they name are in, which is what Istio's
// readiness probe waits for before the pod's endpoint turns ready
// (pilot-agent's /healthz/ready asks Envoy's /ready for LIVE).
func (s *Server) WaitInitialized(ctx context.Context, node string) error {
	return s.waitFor(ctx, node+"'s first config", func() ([]string, error) {
		var missing []string
		for _, t := range s.typesOf(node) {
			if s.acked[node][t] == "" {
				missing = append(missing, node+" "+shortType(t))
			}
		}
		return missing, nil
	})
}

// typesOf lists the types a sidecar node must ACK; s.mu held.
func (s *Server) typesOf(node string) []string {
	if s.wantsSecrets[node] {
		return append(append([]string(nil), TypeURLs...), resource.SecretType)
	}
	return TypeURLs
}

// waitFor re-evaluates pending, under s.mu, at every ACK or NACK until it
// reports nothing missing or an error, or ctx ends.
func (s *Server) waitFor(ctx context.Context, what string, pending func() ([]string, error)) error {
	for {
		s.mu.Lock()
		missing, err := pending()
		ch := s.changed
		s.mu.Unlock()
		if err != nil {
			return err
		}
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			sort.Strings(missing)
			return fmt.Errorf("%s not ACKed by %d proxies/types (first: %s): %w", what, len(missing), missing[0], ctx.Err())
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
