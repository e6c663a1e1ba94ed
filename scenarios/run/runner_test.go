package run

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/local"
	"github.com/meshbench/meshbench/sim/meshmetrics"
	"github.com/meshbench/meshbench/sim/runtime"
)

// scenarioYAML is a canary scenario whose mesh sends `actual` to v2 while the
// expectation says `expected`; N = 100/s × 6 s = 600 requests, enough to
// tell 80/20 from 90/10 (p ≈ 1e-16) and a rate the mesh serves even under
// the race detector on a busy machine. The timeout is generous for the same
// reason: a slow machine may queue requests, and none may be lost.
func scenarioYAML(actualV2, expectedV2 int) string {
	return fmt.Sprintf(`name: split-test
seed: 7
mesh:
  - apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: payment}
    spec:
      host: payment
      subsets:
        - {name: v1, labels: {version: v1}}
        - {name: v2, labels: {version: v2}}
  - apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: payment}
    spec:
      hosts: [payment]
      http:
        - route:
            - {destination: {host: payment, subset: v1}, weight: %d}
            - {destination: {host: payment, subset: v2}, weight: %d}
load: {target: order, rate: 100/s, duration: 6s, timeout: 30s}
expect:
  - split: {service: payment, weights: {v1: %d, v2: %d}, confidence: 0.999}
  - successRate: {min: 0.999}
`, 100-actualV2, actualV2, 100-expectedV2, expectedV2)
}

// countBound runs the load to its count however slow the machine: the
// phases of these tests are bounded by count, not by time.
var countBound = Options{Runtime: local.Runtime{}, LoadTimeLimit: 5 * time.Minute}

func loadString(t *testing.T, src string) *spec.Scenario {
	t.Helper()
	sc, err := spec.LoadFS(fstest.MapFS{"s.yaml": {Data: []byte(src)}}, "s.yaml", "s.yaml")
	require.NoError(t, err)
	return sc
}

// recordingRuntime is the real local runtime; it keeps the meshes it starts
// so a test can look at what they bound once they are gone.
type recordingRuntime struct {
	local.Runtime
	mu     sync.Mutex
	meshes []runtime.Mesh
	addrs  []netip.Addr
}

func (r *recordingRuntime) Start(ctx context.Context, spec runtime.Spec) (runtime.Mesh, error) {
	m, err := r.Runtime.Start(ctx, spec)
	if err == nil {
		r.mu.Lock()
		r.meshes = append(r.meshes, m)
		for _, p := range m.Pods() {
			r.addrs = append(r.addrs, netip.MustParseAddr(p.IP))
		}
		r.addrs = append(r.addrs, netip.MustParseAddrPort(strings.TrimPrefix(m.Entry().URL, "http://")).Addr())
		r.mu.Unlock()
	}
	return m, err
}

// listening returns the TCP sockets in LISTEN state on the given addresses, from /proc/net/tcp.
func listening(t *testing.T, addrs []netip.Addr) []string {
	t.Helper()
	want := map[netip.Addr]bool{}
	for _, a := range addrs {
		want[a] = true
	}
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Skipf("cannot read /proc/net/tcp: %v", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != "0A" { // 0A is TCP_LISTEN
			continue
		}
		var ip uint32
		var port int
		if _, err := fmt.Sscanf(fields[1], "%08X:%04X", &ip, &port); err != nil {
			continue
		}
		// /proc/net/tcp prints the address in host (little-endian) order.
		a := netip.AddrFrom4([4]byte{byte(ip), byte(ip >> 8), byte(ip >> 16), byte(ip >> 24)})
		if want[a] {
			out = append(out, fmt.Sprintf("%s:%d", a, port))
		}
	}
	return out
}

func TestSplitCheckFailsOn80_20WhenExpecting90_10(t *testing.T) {
	res, err := Run(context.Background(), loadString(t, scenarioYAML(20, 10)), countBound)
	require.NoError(t, err)
	require.Equal(t, 600, res.Load.Requests)
	split := res.Checks[0]
	assert.Equal(t, "split", split.Kind)
	assert.False(t, split.Passed, split.Summary)
	assert.GreaterOrEqual(t, split.N, 590)
	require.NotNil(t, split.PValue)
	// Far outside chance: p < 1e-4 misses an 80/20 split at N=600 only when
	// v2 gets 88 or fewer of its expected 120 (P = 0.04%, binomial); the
	// 1e-6 this asserted before missed at 95 or fewer (P = 0.5%), and a
	// CI run drew one.
	assert.Less(t, *split.PValue, 1e-4, "an 80/20 split is far outside chance for 90/10 at N=600")
	assert.True(t, res.Checks[1].Passed, res.Checks[1].Summary)
	assert.False(t, res.Passed)
}

func TestSplitCheckPassesOnTrue90_10(t *testing.T) {
	res, err := Run(context.Background(), loadString(t, scenarioYAML(10, 10)), countBound)
	require.NoError(t, err)
	require.Equal(t, 600, res.Load.Requests)
	for _, c := range res.Checks {
		assert.True(t, c.Passed, c.Summary)
	}
	// 0.05 is four standard deviations of the share at N=600.
	assert.InDelta(t, 0.10, float64(res.Split["payment"]["v2"])/float64(res.Load.Requests), 0.05)
	// Every response was routed under the config the run waited for.
	assert.Equal(t, map[string]int{"1": res.Load.Requests}, res.ConfigVersions)
}

func TestRunLeavesNoGoroutineAndNoListener(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rt := &recordingRuntime{}
	sc := loadString(t, strings.Replace(scenarioYAML(10, 10), "rate: 100/s, duration: 6s", "rate: 200/s, duration: 1s", 1))
	res, err := Run(context.Background(), sc, Options{Runtime: rt, LoadTimeLimit: countBound.LoadTimeLimit})
	require.NoError(t, err)
	require.Equal(t, 200, res.Load.Requests)
	require.Len(t, rt.meshes, 1)
	assert.Empty(t, listening(t, rt.addrs), "listeners left behind")
}

func TestSIGINTDuringLoadTearsDownEverything(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rt := &recordingRuntime{}
	sc := loadString(t, strings.Replace(scenarioYAML(10, 10), "duration: 6s", "duration: 60s", 1))
	// The same wiring as cmd/meshbench: the run's context ends on SIGINT.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, sc, Options{Runtime: rt})
		done <- err
	}()
	// Interrupt once load flows: the gateway has answered requests.
	require.Eventually(t, func() bool {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		if len(rt.meshes) == 0 {
			return false
		}
		hops, err := meshmetrics.Scrape(context.Background(), rt.meshes[0].MetricsEndpoints(), 1)
		return err == nil && len(hops) > 0 && hops[0].Requests > 50
	}, 2*time.Minute, 20*time.Millisecond) // the mesh starts slowly on a busy machine
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGINT))
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(2 * time.Minute):
		t.Fatal("run did not stop after SIGINT")
	}
	assert.Empty(t, listening(t, rt.addrs), "listeners left behind")
}
