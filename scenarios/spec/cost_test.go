package spec

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/units"
)

func TestPeakRateAndLoadLength(t *testing.T) {
	perSecond := func(n int) units.Rate { return units.Rate{Freq: n, Per: time.Second} }
	seconds := func(n int) units.Duration { return units.Duration(time.Duration(n) * time.Second) }

	s, err := catalogScenario("canary-90-10")
	require.NoError(t, err)
	assert.Equal(t, 500.0, s.PeakRate(), "a constant load: its rate")
	assert.Equal(t, 10*time.Second, s.LoadLength(), "no steady state: the load's duration")

	s, err = catalogScenario("control-plane-outage-keeps-traffic")
	require.NoError(t, err)
	assert.Equal(t, 200.0, s.PeakRate(), "steady phases at the load's rate (their default)")
	assert.Equal(t, 14*time.Second, s.LoadLength(), "10 s of load and two steady phases of 2 s")

	plan := &Scenario{Load: Load{
		Plan:     &Plan{Steps: []PlanStep{{Rate: perSecond(100), Hold: seconds(2)}, {Rate: perSecond(900), Hold: seconds(3)}}},
		Duration: seconds(5),
	}}
	assert.Equal(t, 900.0, plan.PeakRate(), "a plan: its highest step")
	assert.Equal(t, 5*time.Second, plan.LoadLength())

	plan.SteadyState = &SteadyState{Rate: perSecond(1200), Duration: seconds(1)}
	assert.Equal(t, 1200.0, plan.PeakRate(), "steady phases faster than the plan")
	assert.Equal(t, 7*time.Second, plan.LoadLength())
}
