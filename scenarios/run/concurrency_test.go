package run

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/scenarios/spec"
)

// load.concurrency caps the requests in flight at the server when the
// server is slower than the rate asks, every planned request is still
// sent, and the wait for a free slot counts as latency. Without a cap the
// same load piles up in flight.
func TestConcurrencyCapsRequestsInFlight(t *testing.T) {
	const serviceTime = 20 * time.Millisecond
	for _, tc := range []struct {
		concurrency int
		variants    []spec.Variant
		wantPeak    func(t *testing.T, peak int64)
	}{
		{1, nil, func(t *testing.T, peak int64) { assert.EqualValues(t, 1, peak) }},
		{3, nil, func(t *testing.T, peak int64) { assert.EqualValues(t, 3, peak) }},
		// Two variants share the cap by weight: 3 and 1.
		{4, []spec.Variant{{Name: "a", Weight: 3}, {Name: "b", Weight: 1}}, func(t *testing.T, peak int64) { assert.EqualValues(t, 4, peak) }},
		{0, nil, func(t *testing.T, peak int64) { assert.Greater(t, peak, int64(3), "open loop: requests pile up") }},
	} {
		var inFlight, peak atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(serviceTime) // the app's service time, not synchronisation
		}))
		sc := &scenario{Scenario: spec.Scenario{Load: spec.Load{
			Method: http.MethodGet, Rate: units.Rate{Freq: 200, Per: time.Second},
			Duration: units.Duration(200 * time.Millisecond), Timeout: units.Duration(5 * time.Second),
			Concurrency: tc.concurrency, Variants: tc.variants,
		}}, timeLimit: time.Minute} // bounded by count, not time
		samples, _ := attack(context.Background(), srv.URL, sc, "default")
		srv.Close()

		require.Len(t, samples, 40, "concurrency %d: every planned request is sent", tc.concurrency)
		tc.wantPeak(t, peak.Load())
		if tc.concurrency == 1 {
			// 40 requests one at a time take ≥ 800ms; the last was meant
			// to go at 195ms, so it waited ≥ 600ms.
			var longest time.Duration
			for _, s := range samples {
				assert.Equal(t, http.StatusOK, s.code)
				longest = max(longest, s.latency)
			}
			assert.Greater(t, longest, 500*time.Millisecond, "the wait for a slot counts as latency")
		}
	}
}
