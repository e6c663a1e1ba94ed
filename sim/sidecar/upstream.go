package sidecar

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/meshbench/meshbench/sim/h1"
)

// upstream is a cluster at run time. It lives across config updates so that
// load-balancer state, outlier state, circuit breakers and pooled
// connections survive a push.
type upstream struct {
	name  string
	conf  atomic.Pointer[clusterConf]
	hosts atomic.Pointer[hostSet]
	warm  atomic.Bool // has endpoints from EDS (or is static)
	// transport speaks HTTP/1.1, h2transport HTTP/2 with prior knowledge (h2c).
	transport, h2transport *http.Transport
	// client speaks HTTP/1.1 for requests whose body is in memory, on
	// the caller's goroutine (sim/h1); transport takes the others.
	client *h1.Client
	// tlsTransport carries mTLS to endpoints the cluster's TLS applies to.
	tlsTransport atomic.Pointer[tlsTransports]
	tlsFor       func(*upstreamTLS) *tls.Config
	rr           atomic.Uint64
	rng          *rand.Rand // on a splitMix: safe for concurrent use, no lock
	metrics      *metrics

	// Circuit breaker state: requests in flight, waiting for a connection, and retries in flight.
	active, pending, retries atomic.Int64
	slotsMu                  sync.Mutex
	slots                    chan struct{} // connection slots when max_connections is finite
	slotsCap                 uint64

	// The hosts of an ORIGINAL_DST cluster, by address (tcpproxy.go).
	odMu    sync.Mutex
	odHosts map[string]*odHost

	ejected atomic.Int64 // hosts ejected now
	stop    chan struct{}
	done    chan struct{}
}

// hostSet is the hosts of a cluster with their consistent-hash ring.
type hostSet struct {
	hosts []*host
	ring  []ringEntry
}

type ringEntry struct {
	hash uint64
	host *host
}

// host is one endpoint with its live request count and outlier state.
type host struct {
	endpointInfo
	active atomic.Int64
	out    atomic.Bool // ejected by outlier detection
	cert   atomic.Pointer[hostCert]

	mu           sync.Mutex
	cons5xx      uint32
	consGateway  uint32
	numEjections uint32
	ejectedAt    time.Time
}

func newUpstream(c *clusterConf, seed uint64, m *metrics, tlsFor func(*upstreamTLS) *tls.Config) *upstream {
	u := &upstream{name: c.name, rng: rand.New(newSplitMix(seed)), metrics: m, tlsFor: tlsFor, stop: make(chan struct{}), done: make(chan struct{})}
	u.conf.Store(c)
	u.transport = newTransport(c, nil, false)
	u.client = newClient(c, nil)
	u.h2transport = newTransport(c, nil, true)
	h2Protocols(u.h2transport, nil)
	u.setTLS(c)
	u.hosts.Store(&hostSet{})
	if !c.eds {
		u.setEndpoints(c.static)
	}
	go u.outlierLoop()
	return u
}

// newTransport makes a transport for a cluster; multiplexed when it speaks
// HTTP/2, whose connections carry any number of requests.
func newTransport(c *clusterConf, tlsCfg *tls.Config, multiplexed bool) *http.Transport {
	d := dialerFor(c)
	gate := &connectGate{multiplexed: multiplexed}
	open := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if path, ok := pipes.Load(addr); ok {
			return d.DialContext(ctx, "unix", path.(string))
		}
		return d.DialContext(ctx, network, addr)
	}
	t := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return gate.dial(ctx, network, addr, open)
		},
		// Envoy pools connections per host without a small idle cap.
		MaxIdleConnsPerHost: 1024,
		// Envoy's upstream idle_timeout default is 1h (HttpProtocolOptions).
		IdleConnTimeout:    time.Hour,
		DisableCompression: true,
	}
	if c.idleTimeout > 0 {
		t.IdleConnTimeout = c.idleTimeout
	}
	if tlsCfg != nil {
		openTLS := dialTLS(d, tlsCfg)
		t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return gate.dial(ctx, network, addr, openTLS)
		}
	}
	return t
}

// newClient is newTransport's HTTP/1.1 client for requests whose body is
// in memory: the same dialer, pipes and TLS, and Envoy's rule for opening
// connections in its own pool (h1.Client) instead of the connectGate.
func newClient(c *clusterConf, tlsCfg *tls.Config) *h1.Client {
	d := dialerFor(c)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if path, ok := pipes.Load(addr); ok {
			return d.DialContext(ctx, "unix", path.(string))
		}
		return d.DialContext(ctx, network, addr)
	}
	if tlsCfg != nil {
		dial = dialTLS(d, tlsCfg) // as newTransport's DialTLSContext: no pipes
	}
	// Envoy's upstream idle_timeout default is 1h (HttpProtocolOptions).
	idle := time.Hour
	if c.idleTimeout > 0 {
		idle = c.idleTimeout
	}
	return &h1.Client{Dial: dial, IdleTimeout: idle}
}

// tlsTransports are a cluster's TLS transports: HTTP/1.1, and HTTP/2 by ALPN.
type tlsTransports struct {
	h1, h2 *http.Transport
	client *h1.Client
}

func (t *tlsTransports) closeIdle() {
	t.h1.CloseIdleConnections()
	t.h2.CloseIdleConnections()
	t.client.CloseIdleConnections()
}

// setTLS makes the TLS transports match the cluster's TLS settings.
func (u *upstream) setTLS(c *clusterConf) {
	var next *tlsTransports
	if c.tls != nil && u.tlsFor != nil {
		cfg := u.tlsFor(c.tls)
		h2cfg := cfg.Clone()
		h2cfg.NextProtos = h2ALPN(cfg.NextProtos)
		next = &tlsTransports{h1: newTransport(c, cfg, false), h2: newTransport(c, h2cfg, true), client: newClient(c, cfg)}
		h2Protocols(next.h2, h2cfg)
	}
	if old := u.tlsTransport.Swap(next); old != nil {
		old.closeIdle()
	}
}

// transportFor picks the transport and URL scheme for a host, over HTTP/2 when h2.
func (u *upstream) transportFor(h *host, h2 bool) (*http.Transport, string) {
	if t := u.tlsTransportFor(h); t != nil {
		if h2 {
			return t.h2, "https"
		}
		return t.h1, "https"
	}
	if h2 {
		return u.h2transport, "http"
	}
	return u.transport, "http"
}

// clientFor is transportFor's HTTP/1.1 client for a request whose body is
// in memory.
func (u *upstream) clientFor(h *host) (*h1.Client, string) {
	if t := u.tlsTransportFor(h); t != nil {
		return t.client, "https"
	}
	return u.client, "http"
}

// tlsTransportFor is the cluster's TLS transports if its TLS applies to h.
func (u *upstream) tlsTransportFor(h *host) *tlsTransports {
	c := u.conf.Load()
	if t := u.tlsTransport.Load(); t != nil && c.tls != nil && (!c.tlsByMatch || h.tlsMode == "istio") {
		return t
	}
	return nil
}

// setEndpoints replaces the hosts, keeping the live state of hosts that stay.
func (u *upstream) setEndpoints(eps []endpointInfo) {
	old := map[string]*host{}
	for _, h := range u.hosts.Load().hosts {
		old[h.addr] = h
	}
	hs := make([]*host, 0, len(eps))
	ejected := int64(0)
	for _, e := range eps {
		h, ok := old[e.addr]
		if !ok {
			h = &host{endpointInfo: e}
		} else if h.endpointInfo != e {
			n := &host{endpointInfo: e}
			h.mu.Lock()
			n.cons5xx, n.consGateway, n.numEjections, n.ejectedAt = h.cons5xx, h.consGateway, h.numEjections, h.ejectedAt
			h.mu.Unlock()
			n.out.Store(h.out.Load())
			h = n
		}
		if h.out.Load() {
			ejected++
		}
		hs = append(hs, h)
	}
	set := &hostSet{hosts: hs}
	if c := u.conf.Load(); c.ringSize > 0 && len(hs) > 0 {
		set.ring = buildRing(hs, c.ringSize)
	}
	u.hosts.Store(set)
	u.ejected.Store(ejected)
	u.warm.Store(true)
}

// buildRing places each host ceil(size/len) times on a ring by xxHash, as
// Envoy's ring hash balancer does with equal weights.
func buildRing(hs []*host, size uint64) []ringEntry {
	per := (size + uint64(len(hs)) - 1) / uint64(len(hs))
	ring := make([]ringEntry, 0, per*uint64(len(hs)))
	for _, h := range hs {
		for i := uint64(0); i < per; i++ {
			ring = append(ring, ringEntry{hash: xxhash.Sum64String(h.addr + "_" + strconv.FormatUint(i, 10)), host: h})
		}
	}
	sort.Slice(ring, func(i, j int) bool { return ring[i].hash < ring[j].hash })
	return ring
}

func (u *upstream) intn(n int) int { return u.rng.IntN(n) }

// splitMix is SplitMix64 (Steele, Lea and Flood, "Fast splittable
// pseudorandom number generators", OOPSLA 2014): a draw adds the golden
// gamma to the state with one atomic add and mixes the sum, so that a
// cluster's draws (a LEAST_REQUEST pick makes two) take no lock and stay
// reproducible from its seed. A rand.Rand holds nothing but its source,
// and the package's own top-level functions share one over a concurrent
// source (math/rand/v2 globalRand), as the upstream shares its rng.
type splitMix struct{ state atomic.Uint64 }

func newSplitMix(seed uint64) *splitMix {
	s := &splitMix{}
	s.state.Store(seed ^ 0x6d657368)
	return s
}

func (s *splitMix) Uint64() uint64 {
	z := s.state.Add(0x9e3779b97f4a7c15)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// usable reports whether a host may be picked outside panic mode.
func usable(h *host) bool { return !h.unhealthy && !h.out.Load() }

// candidates returns the hosts the balancer may choose from: the usable
// ones, or all of them in panic mode, when the usable share falls below the
// healthy panic threshold (Envoy's load balancer overview, "Panic threshold").
func (u *upstream) candidates(set *hostSet) []*host {
	hs := set.hosts
	n := 0
	for _, h := range hs {
		if usable(h) {
			n++
		}
	}
	if n == len(hs) {
		return hs
	}
	if t := u.conf.Load().panicThreshold; t > 0 && float64(n)*100/float64(len(hs)) < t {
		return hs
	}
	out := make([]*host, 0, n)
	for _, h := range hs {
		if usable(h) {
			out = append(out, h)
		}
	}
	return out
}

// pick chooses a host with the cluster's load-balancing policy, skipping
// hosts for which skip returns true up to maxTries selections (Envoy's
// host_selection_retry_max_attempts); after that the last pick stands.
// hashKey, when set, selects on the consistent-hash ring.
func (u *upstream) pick(skip func(*host) bool, maxTries int, hashKey string, hasKey bool) *host {
	set := u.hosts.Load()
	hs := u.candidates(set)
	if len(hs) == 0 {
		return nil
	}
	maxTries = max(maxTries, 1)
	var h *host
	for try := 0; try < maxTries; try++ {
		h = nil // each selection attempt picks anew (Envoy's chooseHost loop)
		if len(set.ring) > 0 && hasKey {
			h = ringPick(set.ring, xxhash.Sum64String(hashKey), try, len(hs) != len(set.hosts))
		}
		if h == nil {
			h = u.pickOnce(hs)
		}
		if skip == nil || !skip(h) {
			return h
		}
	}
	return h
}

// ringPick walks the ring from the key's hash to the first usable host. A
// selection retry (attempt > 0) starts attempt entries further on, as
// Envoy's Ring::chooseHost does, so previous_hosts can move to another host.
func ringPick(ring []ringEntry, key uint64, attempt int, filter bool) *host {
	i := sort.Search(len(ring), func(i int) bool { return ring[i].hash >= key }) + attempt
	for n := 0; n < len(ring); n++ {
		e := ring[(i+n)%len(ring)]
		if !filter || usable(e.host) {
			return e.host
		}
	}
	return nil
}

func (u *upstream) pickOnce(hs []*host) *host {
	if len(hs) == 1 {
		return hs[0]
	}
	switch u.conf.Load().lb {
	case cluster.Cluster_RANDOM, cluster.Cluster_RING_HASH, cluster.Cluster_MAGLEV:
		// A hashing balancer without a hash key picks at random, as Envoy does.
		return hs[u.intn(len(hs))]
	case cluster.Cluster_LEAST_REQUEST:
		// Envoy's least request with equal weights is power of two choices:
		// two random hosts, the one with fewer active requests wins (choice_count 2).
		a, b := hs[u.intn(len(hs))], hs[u.intn(len(hs))]
		if b.active.Load() < a.active.Load() {
			return b
		}
		return a
	default:
		return hs[u.rr.Add(1)%uint64(len(hs))]
	}
}

func (u *upstream) close() {
	select {
	case <-u.stop:
	default:
		close(u.stop)
	}
	<-u.done
	u.transport.CloseIdleConnections()
	u.h2transport.CloseIdleConnections()
	u.client.CloseIdleConnections()
	if t := u.tlsTransport.Load(); t != nil {
		t.closeIdle()
	}
}

// pipes maps the host names that stand for Pipe endpoints (Unix sockets) in
// upstream URLs to their paths: net/http dials host:port, so a Pipe gets a
// host of its own that the transport's dialer turns back into the path.
var pipes sync.Map

// pipeHost is the URL host of a Pipe endpoint.
func pipeHost(path string) string {
	sum := sha256.Sum256([]byte(path))
	h := "pipe-" + hex.EncodeToString(sum[:8]) + ".invalid:1"
	pipes.Store(h, path)
	return h
}
