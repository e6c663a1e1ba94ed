package scenarios

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/meshbench/meshbench/internal/units"
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
	l := Load{Rate: units.Rate{Freq: 500, Per: time.Second}, Duration: units.Duration(10 * time.Second)}
	note := capRate(&l, &Scenario{}, limited{150})
	assert.Equal(t, 150.0, l.Rate.PerSecond())
	assert.Equal(t, 33333*time.Millisecond, l.Duration.D())
	assert.Contains(t, note, "500/s for 10s asked, run at 150/s for 33.333s")

	// Under the limit, with a chaos schedule, or on a runtime without one: unchanged.
	for _, c := range []struct {
		sc *Scenario
		rt runtime.Runtime
		l  Load
	}{
		{&Scenario{}, limited{150}, Load{Rate: units.Rate{Freq: 100, Per: time.Second}, Duration: units.Duration(time.Second)}},
		{&Scenario{Chaos: []ChaosStep{{}}}, limited{150}, Load{Rate: units.Rate{Freq: 500, Per: time.Second}, Duration: units.Duration(time.Second)}},
		{&Scenario{}, struct{ runtime.Runtime }{limited{150}}, Load{Rate: units.Rate{Freq: 500, Per: time.Second}, Duration: units.Duration(time.Second)}},
	} {
		before := c.l
		assert.Empty(t, capRate(&c.l, c.sc, c.rt))
		assert.Equal(t, before, c.l)
	}
}
