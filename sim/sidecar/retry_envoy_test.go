package sidecar

import (
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Envoy's JitteredExponentialBackOffStrategy (backoff_strategy.cc) doubles
// its interval after each back-off and takes the maximum once doubling
// would pass it; each back-off is drawn below that bound.
func TestBackoffCeilingsAsEnvoysCode(t *testing.T) {
	p := &retryPolicy{backoffBase: 25 * time.Millisecond, backoffMax: 250 * time.Millisecond}
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, p.backoffCeiling(n))
	}
	ms := time.Millisecond
	assert.Equal(t, []time.Duration{25 * ms, 50 * ms, 100 * ms, 200 * ms, 250 * ms, 250 * ms}, got)
	for n := 1; n <= 6; n++ {
		b := p.backoff(n, func() uint64 { return 1<<63 + 12345 })
		assert.Less(t, b, got[n-1])
	}
}

// FilterUtility::finalTimeout (router.cc) drops a per-try timeout at or
// above the global timeout; with no global timeout it stands.
func TestPerTryTimeoutArmedOnlyBelowTheGlobalTimeout(t *testing.T) {
	ms := time.Millisecond
	p := &retryPolicy{perTryTimeout: 100 * ms}
	assert.Equal(t, 100*ms, p.armedPerTry(0), "no global timeout")
	assert.Equal(t, 100*ms, p.armedPerTry(101*ms))
	assert.Zero(t, p.armedPerTry(100*ms), "equal to the global timeout")
	assert.Zero(t, p.armedPerTry(50*ms))
	var none *retryPolicy
	assert.Zero(t, none.armedPerTry(time.Second))
}

func testUpstream(t *testing.T, lb cluster.Cluster_LbPolicy, ring uint64, addrs ...string) *upstream {
	t.Helper()
	u := newUpstream(&clusterConf{name: "c", lb: lb, connectTimeout: time.Second, ringSize: ring}, 1, newMetrics(), nil)
	t.Cleanup(u.close)
	var eps []endpointInfo
	for _, a := range addrs {
		eps = append(eps, endpointInfo{addr: a, weight: 1})
	}
	u.setEndpoints(eps)
	return u
}

// host_selection_retry_max_attempts 5 (Istio's retry.go) gives 6 picks:
// ZoneAwareLoadBalancerBase::chooseHost tries hostSelectionRetryCount()+1 times.
func TestHostSelectionMakesRetryCountPlusOnePicks(t *testing.T) {
	u := testUpstream(t, cluster.Cluster_ROUND_ROBIN, 0, "10.0.0.1:80", "10.0.0.2:80")
	picks := 0
	u.pick(func(*host) bool { picks++; return true }, (&retryPolicy{hostSelectMax: 5}).hostPicks(), "", false)
	assert.Equal(t, 6, picks)
}

// previous_hosts on a ring-hash cluster moves to another host: a selection
// retry starts attempt entries further on the ring (Ring::chooseHost).
func TestRingHashSelectionRetryMovesToAnotherHost(t *testing.T) {
	u := testUpstream(t, cluster.Cluster_RING_HASH, 1024, "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80")
	moved := 0
	for i := range 50 {
		key := "user-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		first := u.pick(nil, 1, key, true)
		require.NotNil(t, first)
		next := u.pick(func(h *host) bool { return h == first }, 6, key, true)
		if next != first {
			moved++
		}
	}
	assert.Equal(t, 50, moved, "every retry of host selection left the host already tried")
}
