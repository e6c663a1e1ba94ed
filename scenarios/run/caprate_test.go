package run

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/runtime"
)

// limited is a runtime that says how much load it holds; Start is never called.
type limited struct{ max float64 }

func (limited) Name() string      { return "kind" }
func (limited) DataPlane() string { return "builtin" }
func (limited) Start(context.Context, runtime.Spec) (runtime.Mesh, error) {
	panic("not started")
}
func (l limited) MaxRate() float64 { return l.max }

func TestCapRateKeepsTheRequests(t *testing.T) {
	sc := &scenario{Scenario: spec.Scenario{Load: spec.Load{Rate: units.Rate{Freq: 500, Per: time.Second}, Duration: units.Duration(10 * time.Second)}}}
	note := capRate(sc, limited{150})
	assert.Equal(t, 150.0, sc.Load.Rate.PerSecond())
	assert.Equal(t, 33333*time.Millisecond, sc.Load.Duration.D())
	assert.Contains(t, note, "500/s for 10s asked, run at 150/s for 33.333s")

	// Under the limit, or on a runtime without one: unchanged.
	for _, c := range []struct {
		sc *scenario
		rt runtime.Runtime
	}{
		{&scenario{Scenario: spec.Scenario{Load: spec.Load{Rate: units.Rate{Freq: 100, Per: time.Second}, Duration: units.Duration(time.Second)}}}, limited{150}},
		{&scenario{Scenario: spec.Scenario{Load: spec.Load{Rate: units.Rate{Freq: 500, Per: time.Second}, Duration: units.Duration(time.Second)}}}, struct{ runtime.Runtime }{limited{150}}},
	} {
		before := *c.sc
		assert.Empty(t, capRate(c.sc, c.rt))
		assert.Equal(t, before, *c.sc)
	}
}

// A scenario with a fault schedule or steady-state phases keeps its
// timing: the rate is capped, the duration kept, and the steady state's
// own rate capped in a copy (the caller's scenario is left as it was).
func TestCapRateKeepsTheScheduleOfTimedScenarios(t *testing.T) {
	ss := &spec.SteadyState{Duration: units.Duration(2 * time.Second), Rate: units.Rate{Freq: 200, Per: time.Second}}
	sc := &scenario{Scenario: spec.Scenario{
		Load:        spec.Load{Rate: units.Rate{Freq: 200, Per: time.Second}, Duration: units.Duration(10 * time.Second)},
		Chaos:       []spec.ChaosStep{{}},
		SteadyState: ss,
	}}
	note := capRate(sc, limited{150})
	assert.Equal(t, 150.0, sc.Load.Rate.PerSecond())
	assert.Equal(t, 10*time.Second, sc.Load.Duration.D())
	assert.Equal(t, 150.0, sc.SteadyState.Rate.PerSecond())
	assert.Equal(t, 200.0, ss.Rate.PerSecond(), "the steady state was changed in place")
	assert.Contains(t, note, "run at 150/s for the same 10s (1500 requests")
}

// A plan keeps its rates; the note says when they exceed what the runtime holds.
func TestCapRateKeepsAPlan(t *testing.T) {
	sc := &scenario{Scenario: spec.Scenario{Load: stepsLoad()}}
	assert.Contains(t, capRate(sc, limited{60}), "the plan's steps above it (up to 100/s) run as asked")
	assert.Equal(t, stepsLoad().Plan, sc.Load.Plan)
	assert.Empty(t, capRate(sc, limited{150}))
}
