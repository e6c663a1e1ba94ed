package chaos

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/meshconfig"
)

func TestPauseAcceptsButAnswersNothingUntilResumed(t *testing.T) {
	b := newBench(t, meshconfig.Config{})
	rb := b.inject(Pause{}, b.target(Selector{Service: "payment"}))
	in, err := b.in.hooks.InboundAddr("payment-v1-1")
	require.NoError(t, err)
	c, err := net.DialTimeout("tcp", in, time.Second)
	require.NoError(t, err, "a paused pod still accepts")
	c.Close()
	short := &http.Client{Transport: &http.Transport{}, Timeout: 300 * time.Millisecond}
	defer short.CloseIdleConnections()
	require.Error(t, b.order(short).err, "nothing answers")

	// A request sent while paused is answered once the pod resumes.
	done := make(chan result, 1)
	go func() { done <- b.order(nil) }()
	select {
	case r := <-done:
		t.Fatalf("answered while paused: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	b.rollback(rb)
	r := <-done
	require.Equal(t, 200, r.code)
	require.GreaterOrEqual(t, r.latency, 300*time.Millisecond)
	allOK(t, b.orders(30))
	b.assertClean()
}
