package spec

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidatePlanErrors(t *testing.T) {
	const either = "a load sets either rate and duration (a constant rate) or plan (steps or a ramp), not both"
	runErrorCases(t, []errorCase{
		{"plan-with-rate.yaml", []wantError{
			{Line: 5, Field: "load.rate", Msg: either},
			{Line: 6, Field: "load.duration", Msg: either},
		}},
		{"plan-shape.yaml", []wantError{
			{Line: 5, Field: "load.plan", Msg: "a plan sets steps or ramp, not both"},
		}},
		{"plan-steps.yaml", []wantError{
			{Line: 8, Field: "load.plan.steps[1]", Msg: "step 2: hold is required"},
			{Line: 9, Field: "load.plan.steps[2].hold", Msg: "hold 50ms is below 100ms"},
			{Line: 10, Field: "load.plan.steps[3]", Msg: "step 4: rate is required, like 200/s"},
			{Line: 11, Field: "load.plan.steps[4].rate", Msg: "the limit is 20000/s"},
			{Line: 12, Field: "load.plan.steps[5]", Msg: "step 6 plans 0.5 requests (1/s for 500ms); it needs at least one"},
			{Line: 14, Field: "expect[0].capacity.min", Msg: "min 50000/s is above the plan's highest rate (30000/s): the check could never pass"},
		}},
		{"plan-ramp.yaml", []wantError{
			{Line: 6, Field: "load.plan.ramp", Msg: "ramp.over is required"},
			{Line: 10, Field: "expect[0].capacity", Msg: "capacity.min is required"},
			{Line: 10, Field: "expect[0].capacity.successRate", Msg: "successRate 1.5 is not in (0,1]"},
			{Line: 11, Field: "expect[1].capacity", Msg: "capacity.min is required"},
			{Line: 11, Field: "expect[1].capacity", Msg: "capacity sets p99, successRate or both"},
		}},
		{"capacity-constant.yaml", []wantError{
			{Line: 5, Field: "expect[0].capacity", Msg: "capacity judges the steps of a load plan: set load.plan (steps or ramp)"},
		}},
	})
}

// The examples load, and a plan fills in the load's length.
func TestPlanExamplesLoad(t *testing.T) {
	s, err := LoadFile("testdata/plans/capacity-steps.yaml")
	require.NoError(t, err)
	assert.Equal(t, 6*time.Second, s.Load.Duration.D())
	assert.Equal(t, "steps 100/s for 2s, 200/s for 2s, 400/s for 2s", s.Load.Plan.String())
	assert.Len(t, s.Load.Windows(), 3)

	s, err = LoadFile("testdata/plans/ramp.yaml")
	require.NoError(t, err)
	assert.Equal(t, 4*time.Second, s.Load.Duration.D())
	w := s.Load.Windows()
	require.Len(t, w, 8)
	assert.InDelta(t, 50+350.0/16, w[0].Rate, 1e-9, "a bucket's rate is the ramp's mean over it")
	assert.InDelta(t, 400-350.0/16, w[7].Rate, 1e-9)
}
