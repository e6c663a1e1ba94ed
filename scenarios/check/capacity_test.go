package check

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/reports"
)

// step is a plan step of n requests at rate, ok of them successful, with p99 in ms.
func step(i int, rate float64, n, ok int, p99 float64) reports.Step {
	return reports.Step{Index: i, TargetRate: rate, Requests: n, Successes: ok, SuccessRate: float64(ok) / float64(n),
		Latency: reports.Latency{P99: p99}}
}

func TestCapacityPasses(t *testing.T) {
	steps := []reports.Step{step(1, 200, 1000, 1000, 5), step(2, 400, 2000, 2000, 8), step(3, 800, 4000, 3999, 19)}
	c := Capacity(steps, 20, 0.999, 800, 0.999)
	assert.True(t, c.Passed, c.Summary)
	assert.Equal(t, KindCapacity, c.Kind)
	assert.Equal(t, 800.0, c.Observed["capacity"])
	assert.NotContains(t, c.Observed, "firstBreakStep")
	assert.Equal(t, map[string]float64{"min": 800, "p99": 20, "successRate": 0.999}, c.Expected)
	assert.Equal(t, 7000, c.N)
	assert.Equal(t, "held up to 800/s (want >= 800/s); every step held", c.Summary)
}

func TestCapacityFailsWhereP99Breaks(t *testing.T) {
	steps := []reports.Step{step(1, 200, 1000, 1000, 5), step(2, 400, 2000, 2000, 12), step(3, 600, 3000, 3000, 31), step(4, 800, 4000, 4000, 45)}
	c := Capacity(steps, 20, 0, 800, 0.999)
	assert.False(t, c.Passed)
	assert.Equal(t, 400.0, c.Observed["capacity"])
	assert.Equal(t, 3.0, c.Observed["firstBreakStep"])
	assert.Equal(t, 600.0, c.Observed["firstBreakRate"])
	assert.Equal(t, "held up to 400/s (want >= 800/s); first broke at step 3, 600/s: p99 31 ms > 20 ms", c.Summary)
	assert.Zero(t, c.Confidence, "no success bound, no test")
}

// A success rate the binomial test rejects breaks the step, as a
// successRate check would fail on it; one it does not reject holds.
func TestCapacitySuccessRateIsJudgedByTheBinomialTest(t *testing.T) {
	// 3 failures in 1000 at min 0.999: p ≈ 0.08, not rejected at 0.999.
	c := Capacity([]reports.Step{step(1, 400, 1000, 997, 5)}, 0, 0.999, 400, 0.999)
	assert.True(t, c.Passed, c.Summary)
	// 30 failures in 1000: rejected.
	c = Capacity([]reports.Step{step(1, 200, 1000, 1000, 5), step(2, 400, 1000, 970, 5)}, 0, 0.999, 400, 0.999)
	assert.False(t, c.Passed)
	assert.Equal(t, 200.0, c.Observed["capacity"])
	assert.Contains(t, c.Summary, "first broke at step 2, 400/s: success 970/1000 below 99.9%")
}

// A step that broke caps the capacity even when a higher step held again:
// the capacity is a rate at and below which everything held.
func TestCapacityIsCappedByTheLowestBreak(t *testing.T) {
	steps := []reports.Step{step(1, 200, 100, 100, 5), step(2, 400, 100, 100, 50), step(3, 800, 100, 100, 5)}
	c := Capacity(steps, 20, 0, 400, 0.999)
	assert.False(t, c.Passed)
	assert.Equal(t, 200.0, c.Observed["capacity"])

	// Two steps at one rate: both must hold.
	steps = []reports.Step{step(1, 200, 100, 100, 5), step(2, 400, 100, 100, 5), step(3, 400, 100, 100, 50)}
	assert.Equal(t, 200.0, Capacity(steps, 20, 0, 400, 0.999).Observed["capacity"])
}

func TestCapacityNoStepHolds(t *testing.T) {
	steps := []reports.Step{step(1, 200, 100, 100, 25), step(2, 400, 100, 100, 40)}
	c := Capacity(steps, 20, 0, 200, 0.999)
	assert.False(t, c.Passed)
	assert.Equal(t, 0.0, c.Observed["capacity"])
	assert.Equal(t, "no step held (want >= 200/s); first broke at step 1, 200/s: p99 25 ms > 20 ms", c.Summary)

	// A step without requests holds nothing.
	c = Capacity([]reports.Step{{Index: 1, TargetRate: 200}}, 20, 0, 200, 0.999)
	assert.False(t, c.Passed)
	assert.Contains(t, c.Summary, "no requests")
}

func TestCapacityRefusesWhatItCannotJudge(t *testing.T) {
	good := []reports.Step{step(1, 200, 100, 100, 5)}
	for name, c := range map[string]reports.Check{
		"no steps":       Capacity(nil, 20, 0, 200, 0.999),
		"no bound":       Capacity(good, 0, 0, 200, 0.999),
		"no min":         Capacity(good, 20, 0, 0, 0.999),
		"bad confidence": Capacity(good, 0, 0.99, 200, 1.5),
		"bad success":    Capacity(good, 0, 1.5, 200, 0.999),
		"negative bound": Capacity(good, -1, 0, 200, 0.999),
	} {
		require.False(t, c.Passed, name)
		assert.NotEmpty(t, c.Summary, name)
	}
	assert.Equal(t, "no steps: capacity judges a steps or ramp plan", Capacity(nil, 20, 0, 200, 0.999).Summary)
}
