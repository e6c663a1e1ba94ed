package sidecar

import (
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
)

// max_connections counts a request until its stream ends, not until the
// answer's headers: while one answer's body still streams on the only
// connection, the next request waits as pending and the one after overflows.
func TestConnectionSlotIsHeldUntilTheBodyEnds(t *testing.T) {
	release := make(chan struct{})
	cfg := meshconfig.Config{DestinationRules: []*networkingv1.DestinationRule{rigDR(&networking.TrafficPolicy{
		ConnectionPool: &networking.ConnectionPoolSettings{
			Tcp:  &networking.ConnectionPoolSettings_TCPSettings{MaxConnections: 1},
			Http: &networking.ConnectionPoolSettings_HTTPSettings{Http1MaxPendingRequests: 1},
		},
	})}}
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1"}), cfg, map[string]func(http.ResponseWriter, *http.Request){
		"payment-v1-0": func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("x-id") == "streaming" {
				_, _ = io.WriteString(w, "head ")
				http.NewResponseController(w).Flush()
				<-release
			}
			_, _ = io.WriteString(w, "done")
		},
	})
	streaming := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+rigPaymentHost+"/pay", nil)
		req.Header.Set("x-id", "streaming")
		resp, err := m.client.Do(req)
		if err != nil {
			close(streaming)
			return
		}
		streaming <- resp
	}()
	resp, ok := <-streaming
	require.True(t, ok, "the streaming request got its headers")
	defer resp.Body.Close()

	results := make(chan rigResp, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := rigDo(m.client, http.MethodGet, "http://"+rigPaymentHost+"/pay")
			if err == nil {
				results <- r
			}
		}()
	}
	first := <-results
	assert.Equal(t, http.StatusServiceUnavailable, first.code, "one waits as pending, the other overflows")
	assert.Equal(t, "UO", first.flags)
	assert.Equal(t, 1, m.apps["payment-v1-0"].count(), "nothing passed the streaming request on its connection")
	close(release)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "head done", string(b))
	wg.Wait()
	second := <-results
	assert.Equal(t, http.StatusOK, second.code, "the pending one gets the connection once the stream ended")
}

// The max_retries slot of a retry is held until the retried attempt is
// judged (RetryStateImpl::shouldRetry), and a retry refused for want of one
// flags the answer UO (router.cc, RetryStatus::NoOverflow).
func TestRetrySlotIsHeldUntilTheRetryIsJudged(t *testing.T) {
	retrying := make(chan struct{})
	release := make(chan struct{})
	cfg := meshconfig.Config{
		VirtualServices: []*networkingv1.VirtualService{rigVS(&networking.HTTPRoute{
			Route:   rigRoute(""),
			Retries: &networking.HTTPRetry{Attempts: 1, RetryOn: "5xx"},
		})},
		DestinationRules: []*networkingv1.DestinationRule{rigDR(&networking.TrafficPolicy{
			ConnectionPool: &networking.ConnectionPoolSettings{Http: &networking.ConnectionPoolSettings_HTTPSettings{MaxRetries: 1}},
		})},
	}
	m := newRZMesh(t, rigTopology(registry.Version{Name: "v1"}), cfg, map[string]func(http.ResponseWriter, *http.Request){
		"payment-v1-0": func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("x-id") == "first" && r.Header.Get(HeaderAttemptCount) == "2" {
				close(retrying)
				<-release
				return
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		},
	})
	done := make(chan rigResp, 1)
	go func() {
		r, _ := rigDo(m.client, http.MethodGet, "http://"+rigPaymentHost+"/pay", "x-id", "first")
		done <- r
	}()
	<-retrying // the first request's retry is at the app, holding the one retry slot
	r := m.call("x-id", "second")
	assert.Equal(t, http.StatusServiceUnavailable, r.code)
	assert.Equal(t, "UO", r.flags, "the second request's retry overflowed")
	assert.Equal(t, 1.0, m.metric(rigCaller, "envoy_cluster_upstream_rq_retry_overflow", rigCluster))
	close(release)
	assert.Equal(t, http.StatusOK, (<-done).code)
}
