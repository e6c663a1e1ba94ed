package chaos

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/meshconfig"
)

func TestRestartIsGoneThenBackWithTheSameIdentity(t *testing.T) {
	b := newBench(t, meshconfig.Config{})
	before := podNamed(b.mesh, "payment-v2-0")
	in, err := b.in.hooks.InboundAddr("payment-v2-0")
	require.NoError(t, err)
	r := Start(context.Background(), b.in, []Step{{
		Faults: []Fault{Restart{Delay: 600 * time.Millisecond, NotReadyAfter: 0}},
		Target: Selector{Pod: "payment-v2-0"},
	}}, Options{})
	require.Eventually(t, func() bool { return len(r.Active()) == 1 }, 5*time.Second, 10*time.Millisecond)
	_, err = net.DialTimeout("tcp", in, time.Second)
	require.Error(t, err, "gone")
	require.Eventually(t, func() bool { return len(r.Active()) == 0 }, 5*time.Second, 10*time.Millisecond)
	ws := r.Stop()
	require.Len(t, ws, 1)
	require.Empty(t, ws[0].Err)
	gone := ws[0].End.Sub(ws[0].Start)
	t.Logf("gone for %v", gone)
	require.InDelta(t, 600, ms(gone), 200, "gone for %v", gone)
	after := podNamed(b.mesh, "payment-v2-0")
	require.Equal(t, before, after, "same name, address, labels")
	c, err := net.DialTimeout("tcp", in, time.Second)
	require.NoError(t, err, "back")
	c.Close()
	allOK(t, b.orders(30))
	b.assertClean()
}
