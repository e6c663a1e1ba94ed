package xdsserver

import (
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

// A relay stands between the snapshot cache and one ADS stream's response
// channel: it hands the stream each response premarshaled (marshal.go),
// in the order the cache answered, and never one of a watch already
// cancelled, as the cache itself
// guarantees (its cancel and its answers take the same lock).
type relay struct {
	in       chan cache.Response
	out      chan cache.Response
	marshals *marshalCache

	mu   sync.Mutex
	live map[*discovery.DiscoveryRequest]bool // watches not answered nor cancelled

	watches    int // not cancelled; guarded by Server.relayMu
	stop, done chan struct{}
}

func (r *relay) run() {
	defer close(r.done)
	for {
		select {
		case resp := <-r.in:
			r.forward(resp)
		case <-r.stop:
			return
		}
	}
}

// forward sends a live watch's response on. The send holds r.mu so that a
// cancel waits for it; it cannot block: the stream's channel holds one
// response per type (sotw/v3/ads.go), and each watch answers once.
func (r *relay) forward(resp cache.Response) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.live[resp.GetRequest()] {
		return
	}
	delete(r.live, resp.GetRequest())
	r.out <- r.marshals.premarshal(resp)
}

// relayWatch opens a watch on c whose answer reaches out through the
// stream's relay.
func (s *Server) relayWatch(c cache.Cache, req *cache.Request, sub cache.Subscription, out chan cache.Response) (func(), error) {
	s.relayMu.Lock()
	r := s.relays[out]
	if r == nil {
		r = &relay{
			// Room for a live and a cancelled watch's answer per type.
			in:  make(chan cache.Response, 2*types.UnknownType),
			out: out, marshals: s.marshals,
			live: map[*discovery.DiscoveryRequest]bool{},
			stop: make(chan struct{}), done: make(chan struct{}),
		}
		s.relays[out] = r
		go r.run()
	}
	r.watches++
	s.relayMu.Unlock()
	r.mu.Lock()
	r.live[req] = true
	r.mu.Unlock()

	var once sync.Once
	release := func() {
		r.mu.Lock()
		delete(r.live, req)
		r.mu.Unlock()
		s.relayMu.Lock()
		r.watches--
		last := r.watches == 0
		if last {
			delete(s.relays, out)
		}
		s.relayMu.Unlock()
		if last {
			close(r.stop)
			<-r.done
		}
	}
	cancel, err := c.CreateWatch(req, sub, r.in)
	if err != nil {
		release()
		return nil, err
	}
	return func() {
		once.Do(func() {
			if cancel != nil {
				cancel()
			}
			release()
		})
	}, nil
}
