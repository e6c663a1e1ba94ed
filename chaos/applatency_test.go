package chaos

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
)

func TestAppLatencyMovesTheMedianAndIsUndone(t *testing.T) {
	b := newBench(t, meshconfig.Config{})
	before := b.orders(40)
	rb := b.inject(AppLatency{Latency: registry.Latency{Mean: units.Duration(100 * time.Millisecond)}}, b.target(Selector{Service: "payment"}))
	during := b.orders(40)
	allOK(t, during)
	requireShift(t, before, during, 100*time.Millisecond, 15*time.Millisecond)
	b.rollback(rb)
	after := b.orders(40)
	allOK(t, after)
	requireShift(t, before, after, 0, 15*time.Millisecond)
	b.assertClean()
}

func TestAppChangesStackAndUnstackInAnyOrder(t *testing.T) {
	b := newBench(t, meshconfig.Config{})
	before := b.orders(30)
	tg := b.target(Selector{Service: "payment"})
	slow := b.inject(AppLatency{Latency: registry.Latency{Mean: units.Duration(100 * time.Millisecond)}}, tg)
	failing := b.inject(AppErrors{Rate: 1, Status: 500}, tg)
	for _, r := range b.orders(10) {
		require.Equal(t, 500, r.code)
		requireShift(t, before, []result{r, r}, 100*time.Millisecond, 40*time.Millisecond)
	}
	b.rollback(slow) // the first taken off first: the errors stay, the latency goes
	for _, r := range b.orders(10) {
		require.Equal(t, 500, r.code)
	}
	b.rollback(failing)
	allOK(t, b.orders(30))
	b.assertClean()
}
