package chaos

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/meshconfig"
)

// rawGet sends one HTTP/1.1 request on a new connection to addr and reads
// until the server closes it or d passes.
func rawGet(t *testing.T, addr string, d time.Duration, close bool) ([]byte, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	defer c.Close()
	req := "GET /pay HTTP/1.1\r\nHost: payment\r\n"
	if close {
		req += "Connection: close\r\n"
	}
	_, err = c.Write([]byte(req + "\r\n"))
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(d)))
	return io.ReadAll(c)
}

func TestResetMakesTheCallerSeeAReset(t *testing.T) {
	b := newBench(t, meshconfig.Config{})
	rb := b.inject(Reset{}, b.target(Selector{Service: "payment", Version: "v2"}))
	addr := b.in.proxies["payment-v2-0"].proxy.Listen
	_, err := rawGet(t, addr, 2*time.Second, false)
	require.True(t, errors.Is(err, syscall.ECONNRESET), "want connection reset by peer, got %v", err)
	// Through the mesh: order's sidecar meets the reset on every connection
	// to v2 (during the TLS handshake: a connect failure, which Istio's
	// default retry policy retries on another pod), so no answer comes from v2.
	for _, r := range b.orders(60) {
		if r.code == 200 {
			require.NotEqual(t, "v2", r.reply.Calls[0].Version, "v2 answered through a reset")
		}
	}
	b.rollback(rb)
	after := b.orders(60)
	allOK(t, after)
	v2 := 0
	for _, r := range after {
		if r.reply.Calls[0].Version == "v2" {
			v2++
		}
	}
	require.Greater(t, v2, 0, "v2 answers again once the reset is gone")
	b.assertClean()
	_, err = net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, err)
	in, _ := b.in.hooks.InboundAddr("payment-v2-0")
	body, err := rawGet(t, in, 2*time.Second, true)
	require.NoError(t, err)
	require.Contains(t, string(body), "200 OK")
}
