package sidecar

import (
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// upstream is a cluster at run time. It lives across config updates so that
// load-balancer state and pooled connections survive a push.
type upstream struct {
	name      string
	conf      atomic.Pointer[clusterConf]
	hosts     atomic.Pointer[[]*host]
	warm      atomic.Bool // has endpoints from EDS (or is static)
	transport *http.Transport
	rr        atomic.Uint64
	rngMu     sync.Mutex
	rng       *rand.Rand
}

// host is one endpoint with its live request count for LEAST_REQUEST.
type host struct {
	endpointInfo
	active atomic.Int64
}

func newUpstream(c *clusterConf, seed uint64) *upstream {
	u := &upstream{name: c.name, rng: rand.New(rand.NewPCG(seed, 0x6d657368))}
	u.conf.Store(c)
	u.transport = &http.Transport{
		DialContext: (&net.Dialer{Timeout: c.connectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		// Envoy pools connections per host without a small idle cap.
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     time.Hour, // Istio's idle_timeout default for upstream HTTP is 1h (DestinationRule idleTimeout)
		DisableCompression:  true,
		Proxy:               nil,
	}
	empty := []*host{}
	u.hosts.Store(&empty)
	if !c.eds {
		u.setEndpoints(c.static)
	}
	return u
}

// setEndpoints replaces the hosts, keeping live counters of hosts that stay.
func (u *upstream) setEndpoints(eps []endpointInfo) {
	old := map[string]*host{}
	for _, h := range *u.hosts.Load() {
		old[h.addr] = h
	}
	hs := make([]*host, 0, len(eps))
	for _, e := range eps {
		if h, ok := old[e.addr]; ok && h.endpointInfo == e {
			hs = append(hs, h)
			continue
		}
		hs = append(hs, &host{endpointInfo: e})
	}
	u.hosts.Store(&hs)
	u.warm.Store(true)
}

func (u *upstream) intn(n int) int {
	u.rngMu.Lock()
	defer u.rngMu.Unlock()
	return u.rng.IntN(n)
}

// pick chooses a host with the cluster's load-balancing policy, skipping
// hosts for which skip returns true up to maxTries selections (Envoy's
// host_selection_retry_max_attempts); after that the last pick stands.
func (u *upstream) pick(skip func(*host) bool, maxTries int) *host {
	hs := *u.hosts.Load()
	if len(hs) == 0 {
		return nil
	}
	if maxTries < 1 {
		maxTries = 1
	}
	var h *host
	for try := 0; try < maxTries; try++ {
		h = u.pickOnce(hs)
		if skip == nil || !skip(h) {
			return h
		}
	}
	return h
}

func (u *upstream) pickOnce(hs []*host) *host {
	if len(hs) == 1 {
		return hs[0]
	}
	switch u.conf.Load().lb {
	case cluster.Cluster_RANDOM:
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

func (u *upstream) close() { u.transport.CloseIdleConnections() }
