package sidecar

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// Behaviour tests of the resilience features with real listeners, on the
// shared rig (rig_test.go): an xdsserver on its own 127.x address
// publishes what xdsgen generates for a small topology (order → payment);
// builtin sidecars, each on its pod's 127.x address, fetch it over ADS;
// every pod's app is an httptest server the test programs; the test itself is order's app and
// calls payment through order's sidecar (its 15001 listener, as an HTTP
// proxy). Each test names the Envoy or Istio semantic it checks.

// newRZMesh is the shared rig (rig_test.go) with handlers by pod name and
// the dead pods, which run nothing.
func newRZMesh(t *testing.T, topo registry.Topology, cfg meshconfig.Config, handlers map[string]func(http.ResponseWriter, *http.Request), dead ...string) *rig {
	t.Helper()
	return newRig(t, rigOpts{topo: topo, cfg: cfg, handlers: handlers, dead: dead, seed: 11})
}

// ---------------------------------------------------------------------------
// Retries

// retries.attempts 3 is Envoy's num_retries 3 (Istio's retry.go
// ConvertPolicy); Istio adds the previous_hosts retry host predicate
// (envoy.retry_host_predicates.previous_hosts) with
// host_selection_retry_max_attempts 5, so each retry goes to a host not yet
// tried; Istio turns on include_request_attempt_count, so each try carries
// x-envoy-attempt-count (router filter docs). Two pods answer 503, one 200:
// a request that starts at a failing pod tries the other failing pod, then
// succeeds on the third, which sees x-envoy-attempt-count 3. ROUND_ROBIN
// makes the first pick of each request deterministic.
func TestRetryThirdTrySucceedsOnAnotherHost(t *testing.T) {
	cfg := meshconfig.Config{
		DestinationRules: []*networkingv1.DestinationRule{rigDR(&networking.TrafficPolicy{LoadBalancer: rigLB(networking.LoadBalancerSettings_ROUND_ROBIN)})},
		VirtualServices: []*networkingv1.VirtualService{rigVS(&networking.HTTPRoute{
			Route:   rigRoute(""),
			Retries: &networking.HTTPRetry{Attempts: 3, RetryOn: "503"},
		})},
	}
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1", Replicas: 3}), cfg, map[string]func(http.ResponseWriter, *http.Request){
		"payment-v1-0": rigFail(http.StatusServiceUnavailable),
		"payment-v1-1": rigFail(http.StatusServiceUnavailable),
	})
	const n = 9
	var ids []string
	for i := range n {
		r := m.call()
		require.Equal(t, http.StatusOK, r.code, "request %d: %s %s", i, r.flags, r.body)
		assert.Equal(t, "payment-v1-2", r.body)
		ids = append(ids, r.id)
	}
	// Where each request went, try by try.
	tries := map[string]map[string]string{} // request id → attempt → pod
	for pod, app := range m.apps {
		for _, s := range app.requests() {
			if tries[s.id] == nil {
				tries[s.id] = map[string]string{}
			}
			_, dup := tries[s.id][s.attempt]
			require.False(t, dup, "request %s: attempt %s sent twice", s.id, s.attempt)
			tries[s.id][s.attempt] = pod
		}
	}
	third := 0
	for _, id := range ids {
		byAttempt := tries[id]
		pods := map[string]bool{}
		for a := 1; a <= len(byAttempt); a++ {
			pod, ok := byAttempt[strconv.Itoa(a)]
			require.True(t, ok, "request %s: attempts %v are not 1..n", id, byAttempt)
			assert.False(t, pods[pod], "request %s tried %s twice (previous_hosts): %v", id, pod, byAttempt)
			pods[pod] = true
		}
		last := byAttempt[strconv.Itoa(len(byAttempt))]
		assert.Equal(t, "payment-v1-2", last, "request %s ends at the healthy pod: %v", id, byAttempt)
		if len(byAttempt) == 3 {
			third++
		}
	}
	assert.Positive(t, third, "some request succeeded only at its third try: %v", tries)
	var retries float64
	for _, b := range tries {
		retries += float64(len(b) - 1)
	}
	assert.Equal(t, retries, m.metric(rigCaller, "envoy_cluster_upstream_rq_retry", rigCluster), "cluster.upstream_rq_retry counts every retry")
}

// previous_hosts under a balancer that may pick the same host again: with
// RANDOM over a failing and a healthy pod, a retry without the predicate
// would land on the failing pod half the time; with it, only when all 5 host
// selection attempts pick it (1/32). Envoy's chooseHost re-selects up to
// host_selection_retry_max_attempts times and keeps the last pick
// (route_components.proto RetryPolicy.host_selection_retry_max_attempts).
func TestRetryPreviousHostsUnderRandomBalancer(t *testing.T) {
	cfg := meshconfig.Config{
		DestinationRules: []*networkingv1.DestinationRule{rigDR(&networking.TrafficPolicy{LoadBalancer: rigLB(networking.LoadBalancerSettings_RANDOM)})},
		VirtualServices: []*networkingv1.VirtualService{rigVS(&networking.HTTPRoute{
			Route:   rigRoute(""),
			Retries: &networking.HTTPRetry{Attempts: 3, RetryOn: "5xx"},
		})},
	}
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1", Replicas: 2}), cfg, map[string]func(http.ResponseWriter, *http.Request){
		"payment-v1-0": rigFail(http.StatusServiceUnavailable),
	})
	const n = 100
	for i := range n {
		r := m.call()
		require.Equal(t, http.StatusOK, r.code, "request %d: %s", i, r.flags)
	}
	perID := map[string]int{}
	for _, s := range m.apps["payment-v1-0"].requests() {
		perID[s.id]++
	}
	again := 0
	for _, c := range perID {
		again += c - 1
	}
	// About 50 requests start at the failing pod; with previous_hosts about
	// 50/32 ≈ 1.6 of their retries go back to it, without it about 25.
	assert.Greater(t, len(perID), 20, "the failing pod got its share of first tries")
	assert.LessOrEqual(t, again, 8, "retries sent back to the failing pod")
}

// Istio's default retry policy (no retries in any VirtualService) is
// retry_on "connect-failure,refused-stream,unavailable,cancelled,
// retriable-status-codes" with num_retries 2 and previous_hosts
// (pilot/pkg/networking/core/route/retry/retry.go): a refused connection is
// retried, on the other pod but for the rare case where all 5 host
// selection attempts pick the refused one again, so every request succeeds.
func TestDefaultPolicyRetriesRefusedConnection(t *testing.T) {
	// payment-v1-0 runs nothing: connecting to it is refused.
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1", Replicas: 2}), meshconfig.Config{}, nil, "payment-v1-0")
	const n = 20
	for i := range n {
		r := m.call()
		require.Equal(t, http.StatusOK, r.code, "request %d: %s %s", i, r.flags, r.body)
		assert.Equal(t, "payment-v1-1", r.body)
	}
	seen := m.apps["payment-v1-1"].requests()
	require.Len(t, seen, n, "each request reached the live pod once")
	retried, retries := 0, 0
	for _, s := range seen {
		a, err := strconv.Atoi(s.attempt)
		require.NoError(t, err, "x-envoy-attempt-count %q", s.attempt)
		require.True(t, a >= 1 && a <= 3, "attempt %d: num_retries is 2", a)
		if a > 1 {
			retried++
			retries += a - 1
		}
	}
	assert.Positive(t, retried, "requests whose first try was refused arrive as a later attempt: %v", seen)
	assert.Equal(t, float64(retries), m.metric(rigCaller, "envoy_cluster_upstream_rq_retry", rigCluster))
}

// The same default policy has no retriable status codes, so a 503 from the
// app is not retried (Istio 1.24 and later). The 1.23 compatibility profile
// (EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY=false) adds retriable_status_codes
// [503] to it, and then the 503 is retried on the other pod.
func TestDefaultPolicyAnd503(t *testing.T) {
	handlers := map[string]func(http.ResponseWriter, *http.Request){"payment-v1-0": rigFail(http.StatusServiceUnavailable)}
	topo := rigTopology(registry.Version{Name: "v1", Replicas: 2})
	const n = 20

	t.Run("not retried", func(t *testing.T) {
		m := newRZMesh(t, topo, meshconfig.Config{}, handlers)
		codes := map[int]int{}
		for range n {
			r := m.call()
			codes[r.code]++
			if r.code == http.StatusServiceUnavailable {
				assert.Empty(t, r.flags, "the app's own 503, passed on as it is")
			}
		}
		assert.Positive(t, codes[http.StatusServiceUnavailable], "codes: %v", codes)
		assert.Equal(t, n, codes[http.StatusOK]+codes[http.StatusServiceUnavailable], "codes: %v", codes)
		assert.Equal(t, codes[http.StatusServiceUnavailable], m.apps["payment-v1-0"].count(), "each 503 is the only try of its request")
		for _, s := range append(m.apps["payment-v1-0"].requests(), m.apps["payment-v1-1"].requests()...) {
			assert.Equal(t, "1", s.attempt)
		}
		assert.Zero(t, m.metric(rigCaller, "envoy_cluster_upstream_rq_retry", rigCluster))
	})

	t.Run("retried under the 1.23 profile", func(t *testing.T) {
		m := newRZMesh(t, topo, meshconfig.Config{Mesh: meshconfig.MeshSettings{Retry503ByDefault: true}}, handlers)
		for i := range n {
			r := m.call()
			require.Equal(t, http.StatusOK, r.code, "request %d: %s", i, r.flags)
		}
		failedAt := map[string]int{} // request id → 503s
		for _, s := range m.apps["payment-v1-0"].requests() {
			failedAt[s.id]++
		}
		assert.Positive(t, len(failedAt), "some requests started at the failing pod")
		// Each 503 was retried: a request that failed k times succeeds at
		// attempt k+1 (usually 2; 3 when a retry picked the failing pod again).
		for _, s := range m.apps["payment-v1-1"].requests() {
			assert.Equal(t, strconv.Itoa(failedAt[s.id]+1), s.attempt, "request %s", s.id)
		}
		assert.Equal(t, float64(m.apps["payment-v1-0"].count()), m.metric(rigCaller, "envoy_cluster_upstream_rq_retry", rigCluster))
	})
}

// ---------------------------------------------------------------------------
// Outlier detection

// consecutive5xxErrors 3 is Envoy's consecutive_5xx 3 with enforcing 100
// (Istio's cluster_traffic_policy.go applyOutlierDetection): the host is
// ejected at its 3rd consecutive 5xx, at once, not at an interval tick;
// it comes back at the first interval tick after base_ejection_time × the
// number of times it was ejected (Envoy's outlier detection architecture
// docs). maxEjectionPercent 50 allows 1 of the 2 hosts out.
func TestOutlierEjectsAfterThird5xxAndReturns(t *testing.T) {
	const base = 300 * time.Millisecond
	cfg := meshconfig.Config{DestinationRules: []*networkingv1.DestinationRule{rigDR(&networking.TrafficPolicy{
		LoadBalancer: rigLB(networking.LoadBalancerSettings_ROUND_ROBIN),
		OutlierDetection: &networking.OutlierDetection{
			Consecutive_5XxErrors: wrapperspb.UInt32(3),
			Interval:              durationpb.New(100 * time.Millisecond),
			BaseEjectionTime:      durationpb.New(base),
			MaxEjectionPercent:    50,
		},
	})}}
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1", Replicas: 2}), cfg, map[string]func(http.ResponseWriter, *http.Request){
		"payment-v1-0": rigFail(http.StatusServiceUnavailable),
	})
	bad := m.apps["payment-v1-0"]
	// Round robin alternates: the bad pod's 3rd 503 comes within 6 requests.
	for i := 0; bad.count() < 3; i++ {
		require.Less(t, i, 10, "the bad pod got %d requests", bad.count())
		r := m.call()
		require.Contains(t, []int{200, 503}, r.code)
	}
	ejectedBy := time.Now()
	// Out of service: requests sent before the base ejection time can have
	// passed all go to the good pod.
	sent := 0
	for time.Since(ejectedBy) < base*3/4 && sent < 10 {
		r := m.call()
		require.Equal(t, http.StatusOK, r.code, "after the 3rd 5xx: %s", r.flags)
		assert.Equal(t, "payment-v1-1", r.body)
		sent++
	}
	assert.Positive(t, sent, "a request was sent while the host was ejected")
	assert.Equal(t, 3, bad.count(), "no request reached the ejected host")
	assert.Equal(t, 1.0, m.metric(rigCaller, "envoy_cluster_outlier_detection_ejections_enforced_total", map[string]string{
		"cluster_name": rigCluster["cluster_name"], "kind": "consecutive_5xx"}))
	assert.Equal(t, 1.0, m.metric(rigCaller, "envoy_cluster_outlier_detection_ejections_active", rigCluster))

	// Back in service after base_ejection_time: keep calling (paced, not
	// as synchronisation: the return is a timer in the sidecar) until it gets
	// a request again, for a bounded time.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for bad.count() == 3 {
		require.True(t, time.Now().Before(deadline), "the ejected host never came back")
		<-tick.C
		m.call()
	}
	back := time.Since(ejectedBy)
	assert.GreaterOrEqual(t, back, base-50*time.Millisecond, "back after base ejection time (less the 3rd response's own trip)")
	assert.Less(t, back, base+2*time.Second, "back at an interval tick after base ejection time (generous: noisy machines)")
	assert.Zero(t, m.metric(rigCaller, "envoy_cluster_outlier_detection_ejections_active", rigCluster))
}

// A caller that gives up resets the upstream request, and Envoy records no
// outlier result for a downstream reset (router.cc): the host that was
// still working on it is not ejected, however low the threshold.
func TestCallerThatGivesUpGetsNoHostEjected(t *testing.T) {
	cfg := meshconfig.Config{DestinationRules: []*networkingv1.DestinationRule{rigDR(&networking.TrafficPolicy{
		OutlierDetection: &networking.OutlierDetection{
			Consecutive_5XxErrors: wrapperspb.UInt32(1),
			Interval:              durationpb.New(time.Second),
			BaseEjectionTime:      durationpb.New(30 * time.Second),
			MaxEjectionPercent:    100,
		},
	})}}
	var first atomic.Bool
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1"}), cfg, map[string]func(http.ResponseWriter, *http.Request){
		"payment-v1-0": func(w http.ResponseWriter, r *http.Request) {
			if first.CompareAndSwap(false, true) {
				<-r.Context().Done() // slow for the caller that gives up
				return
			}
			w.WriteHeader(http.StatusOK)
		},
	})
	impatient := *m.client
	impatient.Timeout = 200 * time.Millisecond
	_, err := rigDo(&impatient, http.MethodGet, "http://"+rigPaymentHost+"/pay")
	require.Error(t, err)
	m.eventuallyCounter(rigCaller, "istio_requests_total", map[string]string{"response_flags": "DC"}, 1)
	r := m.call()
	assert.Equal(t, http.StatusOK, r.code, "the host is still in service: %s", r.flags)
	assert.Zero(t, m.metric(rigCaller, "envoy_cluster_outlier_detection_ejections_enforced_total", rigCluster))
}

// max_ejection_percent is strict: Envoy ejects a host only if the ejected
// share would stay within it, and ejects none when one host is already more
// than the limit, since always_eject_one_host defaults to false
// (envoy/config/cluster/v3/outlier_detection.proto). With 3 hosts, one is
// 33% > 10%: the failing pod is never ejected and keeps getting requests;
// the refusal counts in outlier_detection.ejections_overflow.
func TestOutlierMaxEjectionPercentIsStrict(t *testing.T) {
	cfg := meshconfig.Config{DestinationRules: []*networkingv1.DestinationRule{rigDR(&networking.TrafficPolicy{
		LoadBalancer: rigLB(networking.LoadBalancerSettings_ROUND_ROBIN),
		OutlierDetection: &networking.OutlierDetection{
			Consecutive_5XxErrors: wrapperspb.UInt32(3),
			Interval:              durationpb.New(100 * time.Millisecond),
			BaseEjectionTime:      durationpb.New(30 * time.Second),
			MaxEjectionPercent:    10,
		},
	})}}
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1", Replicas: 3}), cfg, map[string]func(http.ResponseWriter, *http.Request){
		"payment-v1-0": rigFail(http.StatusServiceUnavailable),
	})
	codes := map[int]int{}
	for range 30 {
		codes[m.call().code]++
	}
	// Round robin over 3 hosts: the failing one gets every third request, all 10.
	assert.Equal(t, map[int]int{200: 20, 503: 10}, codes)
	assert.Equal(t, 10, m.apps["payment-v1-0"].count(), "never ejected")
	assert.Zero(t, m.metric(rigCaller, "envoy_cluster_outlier_detection_ejections_enforced_total", rigCluster))
	// Each refusal resets the run (onConsecutiveErrorWorker), so the host
	// is detected again at its 3rd, 6th and 9th 503: three refusals.
	assert.Equal(t, 3.0, m.metric(rigCaller, "envoy_cluster_outlier_detection_ejections_overflow", rigCluster))
}

// ---------------------------------------------------------------------------
// Circuit breakers

// connectionPool.tcp.maxConnections 1 and http.http1MaxPendingRequests 1
// are Envoy's max_connections and max_pending_requests (Istio's
// applyConnectionPool): with the one connection busy and one request
// waiting for it, further requests are refused at once with 503 and flag UO
// (upstream_rq_pending_overflow; "Upstream overflow (circuit breaking)",
// Envoy access log response flags), and the default retry policy does not
// retry an overflow. The app holds every request until the test releases it.
func TestCircuitBreakerOverflowUO(t *testing.T) {
	release := make(chan struct{})
	cfg := meshconfig.Config{DestinationRules: []*networkingv1.DestinationRule{rigDR(&networking.TrafficPolicy{
		ConnectionPool: &networking.ConnectionPoolSettings{
			Tcp:  &networking.ConnectionPoolSettings_TCPSettings{MaxConnections: 1},
			Http: &networking.ConnectionPoolSettings_HTTPSettings{Http1MaxPendingRequests: 1},
		},
	})}}
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1"}), cfg, map[string]func(http.ResponseWriter, *http.Request){
		"payment-v1-0": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			_, _ = io.WriteString(w, "payment-v1-0")
		},
	})
	const n = 5
	results := make(chan rigResp, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- m.call()
		}()
	}
	var got []rigResp
	timeout := time.After(rigWait)
	// 1 request in the connection, 1 pending: the other 3 are refused
	// while the app still holds the first.
	for len(got) < n-2 {
		select {
		case r := <-results:
			got = append(got, r)
		case <-timeout:
			require.FailNow(t, "the overflowing requests were not refused", "got %v", got)
		}
	}
	for _, r := range got {
		assert.Equal(t, http.StatusServiceUnavailable, r.code)
		assert.Equal(t, "UO", r.flags)
	}
	// The request holding the connection reaches the app (it may still be
	// on its way when the others are refused); the pending one does not.
	select {
	case <-m.apps["payment-v1-0"].arrived:
	case <-time.After(rigWait):
		require.FailNow(t, "the request holding the connection never reached the app")
	}
	assert.Equal(t, 1, m.apps["payment-v1-0"].count(), "only the request holding the connection reached the app")
	close(release)
	wg.Wait()
	close(results)
	for r := range results {
		assert.Equal(t, http.StatusOK, r.code, "the request in the connection and the pending one complete: %s", r.flags)
	}
	assert.Equal(t, 2, m.apps["payment-v1-0"].count())
	assert.Equal(t, float64(n-2), m.metric(rigCaller, "envoy_cluster_upstream_rq_pending_overflow", rigCluster))
	assert.Zero(t, m.metric(rigCaller, "envoy_cluster_upstream_rq_retry", rigCluster))
}

// ---------------------------------------------------------------------------
// Fault injection and timeouts

// fault.abort at 100% is Envoy's HTTP fault filter abort (Istio's route.go
// TranslateFault): the filter runs before the router, so the request never
// reaches the app, the route's retry policy (5xx here) never sees it, and
// the reply is 503 with flag FI ("The request was aborted with a response
// code specified via fault injection").
func TestFaultAbortNeverReachesApp(t *testing.T) {
	cfg := meshconfig.Config{VirtualServices: []*networkingv1.VirtualService{rigVS(&networking.HTTPRoute{
		Route:   rigRoute(""),
		Retries: &networking.HTTPRetry{Attempts: 3, RetryOn: "5xx"},
		Fault: &networking.HTTPFaultInjection{Abort: &networking.HTTPFaultInjection_Abort{
			ErrorType:  &networking.HTTPFaultInjection_Abort_HttpStatus{HttpStatus: 503},
			Percentage: &networking.Percent{Value: 100},
		}},
	})}}
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1"}), cfg, nil)
	for range 10 {
		r := m.call()
		assert.Equal(t, http.StatusServiceUnavailable, r.code)
		assert.Equal(t, "FI", r.flags)
		assert.Equal(t, "fault filter abort", r.body)
	}
	assert.Zero(t, m.apps["payment-v1-0"].count(), "the app never sees an aborted request")
	assert.Zero(t, m.metric(rigCaller, "envoy_cluster_upstream_rq_retry", rigCluster))
}

// A fault abort without a percentage aborts nothing: Envoy reads the unset
// FractionalPercent as 0 (fault_config.cc), and Istio documents "if not
// specified, no requests will be aborted".
func TestFaultAbortWithoutPercentageAbortsNothing(t *testing.T) {
	cfg := meshconfig.Config{VirtualServices: []*networkingv1.VirtualService{rigVS(&networking.HTTPRoute{
		Route: rigRoute(""),
		Fault: &networking.HTTPFaultInjection{Abort: &networking.HTTPFaultInjection_Abort{
			ErrorType: &networking.HTTPFaultInjection_Abort_HttpStatus{HttpStatus: 503},
		}},
	})}}
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1"}), cfg, nil)
	for range 20 {
		r := m.call()
		assert.Equal(t, http.StatusOK, r.code, "flags %q", r.flags)
	}
	assert.Equal(t, 20, m.apps["payment-v1-0"].count())
}

// A delayed request whose caller gives up carries DI and DC together:
// Envoy's fault filter sets DelayInjected when the delay starts, and the
// downstream's reset adds DownstreamConnectionTermination.
func TestCancelledDelayedRequestIsFlaggedDIAndDC(t *testing.T) {
	cfg := meshconfig.Config{VirtualServices: []*networkingv1.VirtualService{rigVS(&networking.HTTPRoute{
		Route: rigRoute(""),
		Fault: &networking.HTTPFaultInjection{Delay: &networking.HTTPFaultInjection_Delay{
			HttpDelayType: &networking.HTTPFaultInjection_Delay_FixedDelay{FixedDelay: durationpb.New(30 * time.Second)},
			Percentage:    &networking.Percent{Value: 100},
		}},
	})}}
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1"}), cfg, nil)
	impatient := *m.client
	impatient.Timeout = 200 * time.Millisecond
	_, err := rigDo(&impatient, http.MethodGet, "http://"+rigPaymentHost+"/pay")
	require.Error(t, err, "the caller gives up during the delay")
	m.eventuallyCounter(rigCaller, "istio_requests_total", map[string]string{"response_flags": "DI,DC"}, 1)
	assert.Zero(t, m.apps["payment-v1-0"].count())
}

// A per-try timeout is a local reset (router.cc onPerTryTimeoutCommon), so
// retry_on reset retries it, as 5xx and gateway-error do.
func TestPerTryTimeoutIsRetriedUnderReset(t *testing.T) {
	cfg := meshconfig.Config{VirtualServices: []*networkingv1.VirtualService{rigVS(&networking.HTTPRoute{
		Route:   rigRoute(""),
		Retries: &networking.HTTPRetry{Attempts: 2, RetryOn: "reset", PerTryTimeout: durationpb.New(100 * time.Millisecond)},
	})}}
	var first atomic.Bool
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1"}), cfg, map[string]func(http.ResponseWriter, *http.Request){
		"payment-v1-0": func(w http.ResponseWriter, r *http.Request) {
			if first.CompareAndSwap(false, true) {
				<-r.Context().Done() // the first attempt outlives its per-try timeout
				return
			}
			w.WriteHeader(http.StatusOK)
		},
	})
	r := m.call()
	assert.Equal(t, http.StatusOK, r.code, "flags %q", r.flags)
	assert.Equal(t, 2, m.apps["payment-v1-0"].count())
	assert.Equal(t, 1.0, m.metric(rigCaller, "envoy_cluster_upstream_rq_retry", rigCluster))
}

// A per-try timeout not below the route's is ignored (router.cc
// FilterUtility::finalTimeout sets it to 0), so the route timeout ends the
// try: 504 UT, and no retry is sent or counted.
func TestPerTryTimeoutNotBelowTheRouteTimeoutIsIgnored(t *testing.T) {
	cfg := meshconfig.Config{VirtualServices: []*networkingv1.VirtualService{rigVS(&networking.HTTPRoute{
		Route:   rigRoute(""),
		Timeout: durationpb.New(100 * time.Millisecond),
		Retries: &networking.HTTPRetry{Attempts: 2, RetryOn: "reset", PerTryTimeout: durationpb.New(100 * time.Millisecond)},
	})}}
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1"}), cfg, map[string]func(http.ResponseWriter, *http.Request){
		"payment-v1-0": func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
	})
	r := m.call()
	assert.Equal(t, http.StatusGatewayTimeout, r.code)
	assert.Equal(t, "UT", r.flags)
	assert.Equal(t, 1, m.apps["payment-v1-0"].count())
	assert.Zero(t, m.metric(rigCaller, "envoy_cluster_upstream_rq_retry", rigCluster))
}

// An HTTP/1.1 upstream that closes its connection before answering is a
// stream reset with reason ConnectionTermination in Envoy's HTTP/1 codec:
// 503 with flag UC, not UR (a remote reset, HTTP/2 only). Istio's default
// retry policy does not retry it (no "reset" in its retry_on).
func TestUpstreamThatClosesBeforeAnsweringIsUC(t *testing.T) {
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1"}), meshconfig.Config{}, map[string]func(http.ResponseWriter, *http.Request){
		"payment-v1-0": func(w http.ResponseWriter, _ *http.Request) {
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
		},
	})
	r := m.call()
	assert.Equal(t, http.StatusServiceUnavailable, r.code)
	assert.Equal(t, "UC", r.flags)
	assert.Equal(t, 1, m.apps["payment-v1-0"].count(), "not retried by Istio's default policy")
}

// http[].timeout is Envoy's route timeout (RouteAction.timeout): when it
// passes, the router resets the upstream request and answers 504 with flag
// UT ("Upstream request timeout in addition to 504 response code"); the
// default retry policy does not retry a route timeout.
func TestRouteTimeout504UT(t *testing.T) {
	const timeout = 100 * time.Millisecond
	cancelled := make(chan struct{}, 1)
	cfg := meshconfig.Config{VirtualServices: []*networkingv1.VirtualService{rigVS(&networking.HTTPRoute{
		Route:   rigRoute(""),
		Timeout: durationpb.New(timeout),
	})}}
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1"}), cfg, map[string]func(http.ResponseWriter, *http.Request){
		// Answers only when its caller goes away.
		"payment-v1-0": func(_ http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
			cancelled <- struct{}{}
		},
	})
	r := m.call()
	assert.Equal(t, http.StatusGatewayTimeout, r.code)
	assert.Equal(t, "UT", r.flags)
	assert.Equal(t, "upstream request timeout", r.body)
	assert.GreaterOrEqual(t, r.took, timeout)
	assert.Less(t, r.took, timeout+2*time.Second, "answered at the timeout (generous: noisy machines)")
	select {
	case <-cancelled:
	case <-time.After(rigWait):
		require.FailNow(t, "the upstream request was not reset at the timeout")
	}
	assert.Equal(t, 1, m.apps["payment-v1-0"].count(), "a route timeout is not retried")
}

// ---------------------------------------------------------------------------
// Load balancing and mirroring

// consistentHash.httpHeaderName is Envoy's RING_HASH with a header hash
// policy (Istio's ApplyRingHashLoadBalancer and route.go
// ConsistentHashToHashPolicy): requests with the same header value go to
// the same host, and different values spread over the hosts. Istio puts the
// hash policy on a VirtualService's single-destination routes and, for a
// service without a VirtualService, on its default route
// (route/route.go buildSidecarVirtualHostForService).
func TestRingHashOnHeader(t *testing.T) {
	dr := rigDR(&networking.TrafficPolicy{
		LoadBalancer: &networking.LoadBalancerSettings{LbPolicy: &networking.LoadBalancerSettings_ConsistentHash{
			ConsistentHash: &networking.LoadBalancerSettings_ConsistentHashLB{
				HashKey: &networking.LoadBalancerSettings_ConsistentHashLB_HttpHeaderName{HttpHeaderName: "x-user"},
			},
		}},
	})
	sticky := func(t *testing.T, cfg meshconfig.Config) {
		m := newRZMesh(t, rigTopology(registry.Version{Name: "v1", Replicas: 3}), cfg, nil)
		hostOf := map[string]string{}
		used := map[string]bool{}
		for u := range 20 {
			user := fmt.Sprintf("user-%d", u)
			for range 5 {
				r := m.call("x-user", user)
				require.Equal(t, http.StatusOK, r.code)
				if prev, ok := hostOf[user]; ok {
					require.Equal(t, prev, r.body, "user %s moved", user)
				}
				hostOf[user] = r.body
				used[r.body] = true
			}
		}
		assert.Greater(t, len(used), 1, "20 users all hashed to one host: %v", hostOf)
	}
	t.Run("VirtualService route", func(t *testing.T) {
		sticky(t, meshconfig.Config{
			DestinationRules: []*networkingv1.DestinationRule{dr},
			VirtualServices:  []*networkingv1.VirtualService{rigVS(&networking.HTTPRoute{Route: rigRoute("")})},
		})
	})
	t.Run("default route", func(t *testing.T) {
		sticky(t, meshconfig.Config{DestinationRules: []*networkingv1.DestinationRule{dr}})
	})
}

// mirror (with mirrorPercentage 100) is Envoy's request_mirror_policies
// (Istio's route.go TranslateRequestMirrorPolicy): a copy of each request
// goes to the mirror cluster, fire and forget, and the answer comes from the
// route's destination. Envoy appends "-shadow" to the copy's Host/authority
// unless disable_shadow_host_suffix_append is set (route_components.proto
// RequestMirrorPolicy); Istio 1.28 and later set it by default
// (DISABLE_SHADOW_HOST_SUFFIX in pilot/pkg/features/pilot.go) and so does
// sim/xdsgen, so the copy keeps the Host; with it unset (Envoy's default,
// Istio's 1.27 and older profiles) the copy's Host is <host>-shadow.
func TestMirrorSendsShadowCopy(t *testing.T) {
	cfg := meshconfig.Config{
		DestinationRules: []*networkingv1.DestinationRule{rigDR(nil, "v1", "v2")},
		VirtualServices: []*networkingv1.VirtualService{rigVS(&networking.HTTPRoute{
			Route:            rigRoute("v1"),
			Mirror:           &networking.Destination{Host: "payment", Subset: "v2"},
			MirrorPercentage: &networking.Percent{Value: 100},
		})},
	}
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1"}, registry.Version{Name: "v2"}), cfg, map[string]func(http.ResponseWriter, *http.Request){
		// The shadow's answer is thrown away, whatever it is.
		"payment-v2-0": rigFail(http.StatusInternalServerError),
	})
	r := m.call()
	require.Equal(t, http.StatusOK, r.code)
	assert.Equal(t, "payment-v1-0", r.body, "the answer comes from the route's destination")
	var shadow rigSeen
	select {
	case shadow = <-m.apps["payment-v2-0"].arrived:
	case <-time.After(rigWait):
		require.FailNow(t, "no mirrored copy reached v2")
	}
	assert.Equal(t, r.id, shadow.id, "the copy is of the same request")
	// Istio sets disable_shadow_host_suffix_append (PILOT_DISABLE_SHADOW_HOST_SUFFIX
	// defaults to true, route.go TranslateRequestMirrorPolicy): the copy keeps the Host.
	assert.Equal(t, rigPaymentHost, shadow.host)
	primary := m.apps["payment-v1-0"].requests()
	require.Len(t, primary, 1)
	assert.Equal(t, rigPaymentHost, primary[0].host, "the primary keeps its Host")
	// The mirror's inbound sidecar reports the copy as payment's, as it
	// would any request (its inbound virtual host takes every Host): what
	// derive's mirror checks count with security {policy: any}.
	received := map[string]string{"reporter": "destination", "destination_service_name": "payment", "response_code": "500"}
	m.eventuallyCounter("payment-v2-0", "istio_requests_total", received, 1)

	// Envoy's default, disable_shadow_host_suffix_append false (what Istio
	// sends under the 1.27 and older compatibility profiles,
	// DISABLE_SHADOW_HOST_SUFFIX=false): the copy's Host gets "-shadow".
	v := m.publish(func(res *xdsgen.Resources) {
		for _, rc := range res.Routes {
			for _, vh := range rc.GetVirtualHosts() {
				for _, rt := range vh.GetRoutes() {
					for _, mp := range rt.GetRoute().GetRequestMirrorPolicies() {
						mp.DisableShadowHostSuffixAppend = false
					}
				}
			}
		}
	})
	m.converge(v)
	r = m.call()
	require.Equal(t, http.StatusOK, r.code)
	assert.Equal(t, "payment-v1-0", r.body)
	select {
	case shadow = <-m.apps["payment-v2-0"].arrived:
	case <-time.After(rigWait):
		require.FailNow(t, "no mirrored copy reached v2")
	}
	assert.Equal(t, r.id, shadow.id)
	assert.Equal(t, rigPaymentHost+"-shadow", shadow.host)
	m.eventuallyCounter("payment-v2-0", "istio_requests_total", received, 2)
}

// The retry_on values the sidecar accepts are Istio's supportedRetryOnPolicies
// (pkg/config/validation/agent/validation.go): every policy Istio lets
// through reaches the sidecar, which would NACK the routes on one it did
// not know.
func TestRetryOnTokensCoverIstio(t *testing.T) {
	istio := []string{
		"5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "retriable-4xx",
		"refused-stream", "retriable-status-codes", "retriable-headers", "envoy-ratelimited", "http3-post-connect-failure",
		"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
	}
	var missing []string
	var bits retryOn
	for _, p := range istio {
		c, ok := retryOnTokens[p]
		if !ok {
			missing = append(missing, p)
		}
		assert.False(t, bits.has(c), "%s shares a bit", p)
		bits |= c
	}
	sort.Strings(missing)
	assert.Empty(t, missing)
}
