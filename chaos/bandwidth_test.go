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
		return ms(median(rs) - median(before))
	}
	// payment's answer, with the peer metadata headers its sidecar adds, is
	// about 3KB: some 750ms at 4KB/s.
	slow, fast := added(4), added(8)
	t.Logf("4KB/s added %.0fms, 8KB/s %.0fms: ratio %.2f", slow, fast, slow/fast)
	require.Greater(t, slow, 200.0, "4KB/s added %.0fms", slow)
	require.InDelta(t, 2.0, slow/fast, 0.8, "halving the rate doubles the added time: 4KB/s %.0fms, 8KB/s %.0fms", slow, fast)
	after := b.orders(10)
	allOK(t, after)
	requireShift(t, before, after, 0, 15*time.Millisecond)
	b.assertClean()
}
