package run

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/scenarios/spec"
)

// TestWarmupRampsAndDrainsBeforeTheMeasuredPhase drives a real HTTP server
// that takes 40 ms an answer: the warm-up ramps from a fifth of the rate to
// the full rate, returns only when every warm-up request has its answer,
// and no request of the measured phase is scheduled before that.
func TestWarmupRampsAndDrainsBeforeTheMeasuredPhase(t *testing.T) {
	var inflight, served atomic.Int64
	var mu sync.Mutex
	var arrivals []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		defer inflight.Add(-1)
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
		time.Sleep(40 * time.Millisecond) // the server's service time
		served.Add(1)
	}))
	defer srv.Close()

	sc := &scenario{Scenario: spec.Scenario{Load: spec.Load{
		Target:   "order",
		Path:     "/orders",
		Method:   "POST",
		Rate:     units.Rate{Freq: 200, Per: time.Second},
		Duration: units.Duration(time.Second),
		Timeout:  units.Duration(5 * time.Second),
	}}}
	start := time.Now()
	drained := warm(context.Background(), srv.URL, sc, "default", WarmupDuration)

	assert.Zero(t, inflight.Load(), "a warm-up request was still in flight when the warm-up returned")
	// A ramp from 40/s to 200/s over 1 s sends (40 + 200) / 2 = 120 requests,
	// where a constant fifth of the rate sent 40.
	assert.EqualValues(t, 120, served.Load())
	mu.Lock()
	firstHalf := 0
	for _, a := range arrivals {
		if a.Sub(start) < WarmupDuration/2 {
			firstHalf++
		}
	}
	mu.Unlock()
	// A linear ramp sends (40 + 120) / 4 = 40 requests in its first half and
	// 80 in its second; a constant rate would send 60 and 60.
	assert.Less(t, firstHalf, 55, "the warm-up did not ramp: %d of 120 requests in its first half", firstHalf)

	measured := *sc
	measured.Load.Duration = units.Duration(250 * time.Millisecond)
	samples, _ := attack(context.Background(), srv.URL, &measured, "default")
	require.Len(t, samples, 50)
	for _, s := range samples {
		require.False(t, s.intended.Before(drained), "a measured request was scheduled %v before the warm-up drained", drained.Sub(s.intended))
	}
}
