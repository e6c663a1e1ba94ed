package chaos

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/meshconfig"
)

func TestDelayIsPushedAsAVirtualServiceFaultAndTakenOut(t *testing.T) {
	b := newBench(t, meshconfig.Config{})
	v0 := b.mesh.Version()
	before := b.orders(40)
	allOK(t, before)

	rb := b.inject(Delay{Delay: 100 * time.Millisecond, Percent: 100}, b.target(Selector{Service: "payment"}))
	require.NotEqual(t, v0, b.mesh.Version(), "a mesh fault is a push")
	cfg, err := b.in.layer.current()
	require.NoError(t, err)
	require.Len(t, cfg.VirtualServices, 1)
	require.Equal(t, ChaosVirtualService("payment"), cfg.VirtualServices[0].Name)
	during := b.orders(40)
	allOK(t, during)
	requireShift(t, before, during, 100*time.Millisecond, 15*time.Millisecond)
	for _, r := range during {
		require.Equal(t, "DI", r.reply.Calls[0].Flags, "order's sidecar marks the delayed call")
	}

	b.rollback(rb)
	after := b.orders(40)
	allOK(t, after)
	requireShift(t, before, after, 0, 15*time.Millisecond)
	for _, r := range after {
		require.Empty(t, r.reply.Calls[0].Flags)
		require.Equal(t, b.mesh.Version(), r.reply.Calls[0].ConfigVersion, "served under the config without the fault")
	}
	b.assertClean()
}
