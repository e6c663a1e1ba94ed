package chaos

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/meshconfig"
)

func TestBandwidthSlowsAnswersInProportionToTheLimit(t *testing.T) {
	b := newBench(t, meshconfig.Config{})
	before := b.orders(10)
	allOK(t, before)
	added := func(kbps int64) float64 {
		rb := b.inject(Bandwidth{KBps: kbps}, b.target(Selector{Service: "payment"}))
		rs := b.orders(6)
		allOK(t, rs)
		b.rollback(rb)
		return ms(slowest(rs) - median(before))
	}
	// The limit is on payment's inbound, where its sidecar answers the
	// caller's sidecar over HTTP/2. The first answer on a connection carries
	// the peer metadata headers in full, about 1.9KB: some 470ms at 4KB/s.
	// Later answers on the same connection name them from the HPACK dynamic
	// table (RFC 7541 §2.3.2) and are about 430B, so a median mixes two sizes
	// in proportions set by which connections the picks reuse. The slowest
	// answer is a first one: each injection starts new connections.
	slow, fast := added(4), added(8)
	t.Logf("4KB/s added %.0fms, 8KB/s %.0fms: ratio %.2f", slow, fast, slow/fast)
	require.Greater(t, slow, 200.0, "4KB/s added %.0fms", slow)
	require.InDelta(t, 2.0, slow/fast, 0.4, "halving the rate doubles the added time: 4KB/s %.0fms, 8KB/s %.0fms", slow, fast)
	after := b.orders(10)
	allOK(t, after)
	requireShift(t, before, after, 0, 15*time.Millisecond)
	b.assertClean()
}
