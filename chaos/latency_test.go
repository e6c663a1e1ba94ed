package chaos

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/meshconfig"
)

func TestLatencyMovesTheMedianByTheInjectedAmount(t *testing.T) {
	b := newBench(t, meshconfig.Config{})
	before := b.orders(40)
	allOK(t, before)

	rb := b.inject(Latency{Latency: 100 * time.Millisecond}, b.target(Selector{Service: "payment"}))
	addr := b.in.proxies["payment-v1-0"].proxy.Listen
	during := b.orders(40)
	allOK(t, during)
	requireShift(t, before, during, 100*time.Millisecond, 15*time.Millisecond)

	b.rollback(rb)
	after := b.orders(40)
	allOK(t, after)
	requireShift(t, before, after, 0, 15*time.Millisecond)
	b.assertClean()
	_, err := net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, err, "the fault's proxy still listens on %s", addr)
}

func TestLatencyFromOnePeerLeavesOtherCallersAlone(t *testing.T) {
	b := newBench(t, meshconfig.Config{})
	before := b.orders(30)
	// On order's inbound side, only for the traffic from payment (which
	// never calls order): the gateway's requests to order are untouched.
	rb := b.inject(Latency{Latency: 100 * time.Millisecond}, b.target(Selector{Service: "order"}, Selector{Service: "payment"}))
	during := b.orders(30)
	allOK(t, during)
	requireShift(t, before, during, 0, 15*time.Millisecond)
	b.rollback(rb)
	b.assertClean()
}

func TestLatencyRampsWithoutGaps(t *testing.T) {
	steps, err := Ramp(Latency{Latency: 50 * time.Millisecond}, Latency{Latency: 200 * time.Millisecond, Jitter: 30 * time.Millisecond}, 4)
	require.NoError(t, err)
	var got []time.Duration
	for _, s := range steps {
		got = append(got, s.(Latency).Latency)
	}
	require.Equal(t, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond, 200 * time.Millisecond}, got)
	require.Equal(t, 30*time.Millisecond, steps[3].(Latency).Jitter)
	_, err = Ramp(Pause{}, Pause{}, 2)
	require.Error(t, err)
}
