package chaos

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/meshconfig"
)

func TestBlackholeAcceptsAndNeverAnswers(t *testing.T) {
	b := newBench(t, meshconfig.Config{})
	rb := b.inject(Blackhole{}, b.target(Selector{Pod: "payment-v1-0"}))
	addr := b.in.proxies["payment-v1-0"].proxy.Listen
	start := time.Now()
	body, err := rawGet(t, addr, 500*time.Millisecond, false)
	require.True(t, errors.Is(err, os.ErrDeadlineExceeded), "want no answer and no close, got %q, %v", body, err)
	require.Empty(t, body)
	require.GreaterOrEqual(t, time.Since(start), 450*time.Millisecond)

	b.rollback(rb)
	allOK(t, b.orders(30))
	b.assertClean()
	_, err = net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, err)
}
