package sidecar

import (
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
)

// stallRelay listens on a pod's endpoint and holds every connection it
// accepts, as a silent network does: the client's SYN is answered (the
// kernel does that) but its TLS ClientHello gets nothing back. Once healed,
// it relays the held connections and every later one to target.
type stallRelay struct {
	t        *testing.T
	l        net.Listener
	target   string
	accepted atomic.Int64
	healed   chan struct{}
	heal     func()
	wg       sync.WaitGroup
}

func newStallRelay(t *testing.T, addr, target string) *stallRelay {
	l, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	s := &stallRelay{t: t, l: l, target: target, healed: make(chan struct{})}
	var once sync.Once
	s.heal = func() { once.Do(func() { close(s.healed) }) }
	closed := make(chan struct{})
	t.Cleanup(func() {
		close(closed)
		_ = l.Close()
		s.wg.Wait()
	})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				select {
				case <-closed:
					return
				case <-s.healed:
				}
				up, err := net.Dial("tcp", s.target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() {
					<-closed
					_ = c.Close()
					_ = up.Close()
				}()
				go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	return s
}

// A connect that hangs is taken over by the next request rather than
// opened again, as in Envoy's pool (connectgate.go): 15 requests that each
// time out while payment v1's endpoint holds their connect open one
// connection between them, where Go's Transport alone opens 15. When the
// network heals, that connection completes and the next request opens at
// most one more.
func TestAHangingConnectIsTakenOverNotOpenedAgain(t *testing.T) {
	const timeout = 100 * time.Millisecond
	cfg := meshconfig.Config{
		VirtualServices:  []*networkingv1.VirtualService{rigVS(&networking.HTTPRoute{Route: rigRoute("v1"), Timeout: durationpb.New(timeout)})},
		DestinationRules: []*networkingv1.DestinationRule{rigDR(nil, "v1", "v2")},
	}
	m := newRig(t, rigOpts{
		topo: rigTopology(registry.Version{Name: "v1"}, registry.Version{Name: "v2"}),
		cfg:  cfg, dead: []string{"payment-v1-0"}, seed: 7,
	})
	relay := newStallRelay(t, m.inbound("payment-v1-0"), m.inbound("payment-v2-0"))

	const n = 15
	for range n {
		r := m.call()
		require.Equal(t, http.StatusGatewayTimeout, r.code, r.body)
		require.Equal(t, "UT", r.flags)
	}
	assert.EqualValues(t, 1, relay.accepted.Load(), "connections opened for %d requests whose connect hung", n)

	relay.heal()
	r := m.call()
	assert.Equal(t, http.StatusOK, r.code, r.body)
	assert.Equal(t, 1, m.apps["payment-v2-0"].count(), "relayed to v2's sidecar")
	// The connection that hung completes at the heal and goes to the
	// transport's idle pool. A request that comes in between the connect's
	// end and the pool's taking it opens one more (a window Envoy's
	// single-threaded pool does not have): at most one, where Go's
	// Transport alone completes all 15.
	assert.LessOrEqual(t, relay.accepted.Load(), int64(2), "connections opened by the first request after the heal")
}
