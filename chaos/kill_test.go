package chaos

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/runtime"
)

func podNamed(m runtime.Mesh, name string) runtime.Pod {
	for _, p := range m.Pods() {
		if p.Name == name {
			return p
		}
	}
	return runtime.Pod{}
}

func TestKillDropsListenersAndConnectionsAndComesBack(t *testing.T) {
	b := newBench(t, meshconfig.Config{})
	in, err := b.in.hooks.InboundAddr("payment-v1-0")
	require.NoError(t, err)
	// An open keep-alive connection to the pod, one answer already read.
	conn, err := net.Dial("tcp", in)
	require.NoError(t, err)
	defer conn.Close()
	rd := bufio.NewReader(conn)
	_, err = conn.Write([]byte("GET /pay HTTP/1.1\r\nHost: payment\r\n\r\n"))
	require.NoError(t, err)
	resp, err := http.ReadResponse(rd, nil)
	require.NoError(t, err)
	resp.Body.Close()

	rb := b.inject(Kill{NotReadyAfter: 300 * time.Millisecond}, b.target(Selector{Pod: "payment-v1-0"}))
	require.False(t, podNamed(b.mesh, "payment-v1-0").Ready)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(2*time.Second)))
	_, err = rd.ReadByte()
	require.Error(t, err, "the open connection is dropped")
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "dropped at once, not timed out: %v", err)
	_, err = net.DialTimeout("tcp", in, time.Second)
	require.Error(t, err, "nothing listens on the dead pod")

	// Once the endpoint leaves EDS, every call goes to the other pods.
	require.Eventually(t, func() bool {
		r := b.order(nil)
		return r.code == 200
	}, 5*time.Second, 50*time.Millisecond)
	for _, r := range b.orders(30) {
		require.Equal(t, 200, r.code)
		require.NotEqual(t, "payment-v1-0", r.reply.Calls[0].Pod)
	}

	b.rollback(rb)
	p := podNamed(b.mesh, "payment-v1-0")
	require.True(t, p.Ready)
	require.Equal(t, in, net.JoinHostPort(p.IP, "8080"), "same address")
	served := map[string]bool{}
	for _, r := range b.orders(60) {
		require.Equal(t, 200, r.code)
		served[r.reply.Calls[0].Pod] = true
	}
	require.True(t, served["payment-v1-0"], "the pod serves again: %v", served)
	b.assertClean()
}
