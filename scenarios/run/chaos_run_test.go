package run

import (
	"context"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/meshbench/meshbench/sim/local"
	"github.com/meshbench/meshbench/sim/xdsserver"
)

const chaosYAML = `name: chaos-test
seed: 3
topology:
  services:
    - {name: order, path: /orders, calls: [payment], versions: [{name: v1}]}
    - {name: payment, path: /pay, versions: [{name: v1, replicas: 2}]}
steadyState:
  duration: 600ms
  expect:
    - successRate: {min: 0.99}
    - latency: {p50: {max: 50ms}}
load: {target: order, rate: 50/s, duration: 3s}
chaos:
  - name: slow
    fault: {type: latency, latency: 80ms}
    target: {service: payment}
    at: 1s
    for: 1s
expect:
  - successRate: {min: 0.99}
  # Up to 350ms: beside other packages on two cores, requests queue
  # behind the fault (one CI run, then under -race: +267ms).
  - latencyShift: {fault: slow, stat: p50, settle: 300ms, min: 50ms, max: 350ms}
  # Must fail: the fault added 80ms, not 500ms.
  - latencyShift: {fault: slow, stat: p50, settle: 300ms, min: 500ms}
`

func TestChaosRunRecordsWindowsReactionsAndChecks(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rt := &recordingRuntime{}
	res, err := Run(context.Background(), loadString(t, chaosYAML), Options{Runtime: rt})
	require.NoError(t, err)
	assert.Empty(t, listening(t, rt.addrs), "listeners left behind")

	require.Len(t, res.Faults, 1)
	w := res.Faults[0]
	assert.Equal(t, "slow", w.Name)
	assert.Equal(t, "latency", w.Kind)
	assert.Equal(t, "payment-v1-0,payment-v1-1", w.Target)
	assert.Empty(t, w.Error)
	assert.GreaterOrEqual(t, len(res.Reactions), 2, "a point a second")
	assert.InDelta(t, 1.0, w.End-w.Start, 0.3, "the window lasts its 1s: %+v", w)

	checks := map[string]bool{}
	for _, c := range res.Checks {
		checks[c.Name] = c.Passed
		t.Log(c.Name, c.Passed, c.Summary)
	}
	assert.True(t, checks["faults injected and removed"])
	assert.True(t, checks["steady state before the faults: success rate"])
	assert.True(t, checks["steady state after the faults: latency"])
	assert.False(t, res.Passed, "the 500ms shift must fail")
	if raceDetector {
		// Under the race detector, beside make test's other -race packages
		// on two cores, the run's goroutines fall behind: one CI run put
		// the window at 1.342s and the fault's median shift at +675ms. The
		// timings are asserted in the plain run; this one is for races.
		return
	}
	assert.InDelta(t, 1.0, w.Start, 0.3, "%+v", w)
	assert.InDelta(t, 2.0, w.End, 0.3, "%+v", w)
	var shifts []bool
	for _, c := range res.Checks {
		if c.Kind == "latencyShift" {
			shifts = append(shifts, c.Passed)
		}
	}
	assert.Equal(t, []bool{true, false}, shifts, "the 80ms fault moves the median by about 80ms, not 500ms")
}

func TestSIGINTInTheMiddleOfFaultsLeavesNoFaultGoroutineOrPort(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rt := &recordingRuntime{}
	sc := loadString(t, strings.NewReplacer(
		"duration: 3s", "duration: 60s",
		"at: 1s\n    for: 1s", "at: 0s\n    for: 50s\n  - {fault: {type: pause}, target: {pod: payment-v1-1}}\n  - {fault: {type: xdsOutage}, at: 500ms}",
	).Replace(chaosYAML))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, sc, Options{Runtime: rt})
		done <- err
	}()
	// Interrupt once the faults are in: a proxy listens in front of each
	// payment pod, beyond the pods' own listeners, and the control plane is down.
	var before int
	require.Eventually(t, func() bool {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		if len(rt.meshes) == 0 {
			return false
		}
		if before == 0 {
			before = len(listening(t, rt.addrs))
		}
		if len(listening(t, rt.addrs)) < before+2 {
			return false
		}
		c, err := dialXDS(rt.meshes[0].(*local.Mesh).XDS().Addr(), 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 30*time.Second, 20*time.Millisecond)
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGINT))
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop after SIGINT")
	}
	assert.Empty(t, listening(t, rt.addrs), "listeners left behind")
}

// dialXDS connects to the control plane's socket (Unix or TCP).
func dialXDS(addr string, timeout time.Duration) (net.Conn, error) {
	network, address := xdsserver.SplitAddr(addr)
	return net.DialTimeout(network, address, timeout)
}
