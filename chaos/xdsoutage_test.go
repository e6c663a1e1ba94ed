package chaos

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/local"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/xdsserver"
)

func TestControlPlaneOutageKeepsTrafficAndProxiesReconnect(t *testing.T) {
	b := newBench(t, meshconfig.Config{})
	xds := b.mesh.(*local.Mesh).XDS().Addr()
	rb := b.inject(ControlPlaneOutage{}, Target{In: b.in})
	_, err := dialXDS(xds)
	require.Error(t, err, "the xDS server is down")
	allOK(t, b.orders(40)) // the sidecars serve with the config they have
	// A push made now cannot reach them.
	v, err := b.mesh.Apply(context.Background(), meshconfig.Config{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	require.Error(t, b.mesh.WaitConverged(ctx, v), "converged without a control plane")
	cancel()

	b.rollback(rb) // returns once every proxy reconnected and ACKed
	c, err := dialXDS(xds)
	require.NoError(t, err)
	c.Close()
	for _, r := range b.orders(20) {
		require.Equal(t, 200, r.code)
		require.Equal(t, b.mesh.Version(), r.reply.Calls[0].ConfigVersion)
	}
	b.assertClean()
}

// dialXDS connects to the control plane's socket (Unix or TCP).
func dialXDS(addr string) (net.Conn, error) {
	network, address := xdsserver.SplitAddr(addr)
	return net.DialTimeout(network, address, time.Second)
}
