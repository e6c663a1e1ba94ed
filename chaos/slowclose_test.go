package chaos

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/meshconfig"
)

// closeDelay measures, on a Connection: close request to addr, the time
// from the end of the answer's first read to the server's close.
func closeDelay(t *testing.T, addr string) time.Duration {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("GET /pay HTTP/1.1\r\nHost: payment\r\nConnection: close\r\n\r\n"))
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 64<<10)
	n, err := c.Read(buf)
	require.NoError(t, err)
	require.Contains(t, string(buf[:n]), "200 OK")
	got := time.Now()
	_, err = io.Copy(io.Discard, c)
	require.NoError(t, err)
	return time.Since(got)
}

func TestSlowCloseDelaysTheServersClose(t *testing.T) {
	b := newBench(t, meshconfig.Config{})
	in, err := b.in.hooks.InboundAddr("payment-v1-0")
	require.NoError(t, err)
	base := closeDelay(t, in)

	rb := b.inject(SlowClose{Delay: 300 * time.Millisecond}, b.target(Selector{Pod: "payment-v1-0"}))
	addr := b.in.proxies["payment-v1-0"].proxy.Listen
	slow := closeDelay(t, addr)
	t.Logf("close %v after the answer (%v without the fault)", slow, base)
	require.InDelta(t, 300, ms(slow-base), 100, "close came %v after the answer (%v without the fault)", slow, base)
	allOK(t, b.orders(20))

	b.rollback(rb)
	b.assertClean()
	require.Less(t, closeDelay(t, in), 100*time.Millisecond)
}
