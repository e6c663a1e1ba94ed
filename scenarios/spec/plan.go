package spec

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/meshbench/meshbench/internal/units"
)

// Plan is a load plan other than a constant rate: exactly one of Steps and
// Ramp is set.
type Plan struct {
	// Steps hold each rate for a while, one after the other.
	Steps []PlanStep `yaml:"steps"`
	// Ramp moves the rate linearly from one value to another.
	Ramp *RampPlan `yaml:"ramp"`
}

// PlanStep is one step of a steps plan.
type PlanStep struct {
	// Rate of requests during the step; required.
	Rate units.Rate `yaml:"rate"`
	// Hold is how long the step lasts; required, at least 100ms.
	Hold units.Duration `yaml:"hold"`
}

// RampPlan is a linear ramp. Its figures are reported in buckets of Every,
// each a "step" whose rate is the ramp's mean rate over the bucket.
type RampPlan struct {
	From units.Rate     `yaml:"from"`
	To   units.Rate     `yaml:"to"`
	Over units.Duration `yaml:"over"`
	// Every is the width of the report's buckets; default 1s.
	Every units.Duration `yaml:"every"`
}

// DefaultRampEvery is the width of a ramp's report buckets when the plan
// gives none.
const DefaultRampEvery = units.Duration(time.Second)

// MinHold is the shortest step or ramp bucket: shorter ones hold too few
// requests for a percentile to mean anything.
const MinHold = units.Duration(100 * time.Millisecond)

// MaxPlanSteps bounds the steps (or ramp buckets) of a plan, each a row of
// the report.
const MaxPlanSteps = 200

// Segment is one stretch of a plan: a rate that moves linearly from From
// to To (requests per second) over D; From == To for a step.
type Segment struct {
	From, To float64
	D        time.Duration
	// Constant, when set, paces a step at exactly the rate the scenario
	// wrote (vegeta's ConstantPacer takes a whole count per period).
	Constant units.Rate
}

// Planned is the number of requests the segment plans: the area under its rate.
func (s Segment) Planned() float64 { return (s.From + s.To) / 2 * s.D.Seconds() }

// PerHour is a rate as a whole count per period, per hour so that a
// fraction of a request per second keeps its precision.
func PerHour(perSecond float64) units.Rate {
	return units.Rate{Freq: max(1, int(math.Round(perSecond*3600))), Per: time.Hour}
}

// Segments is the load's plan as segments, each rate scaled by share (a
// variant's part of the load); nil for a constant load.
func (l Load) Segments(share float64) []Segment {
	p := l.Plan
	switch {
	case p == nil:
		return nil
	case p.Ramp != nil:
		r := p.Ramp
		return []Segment{{From: r.From.PerSecond() * share, To: r.To.PerSecond() * share, D: r.Over.D()}}
	}
	var out []Segment
	for _, st := range p.Steps {
		ps := st.Rate.PerSecond() * share
		c := st.Rate
		if share != 1 {
			c = PerHour(ps)
		}
		out = append(out, Segment{From: ps, To: ps, D: st.Hold.D(), Constant: c})
	}
	return out
}

// Length is how long the plan lasts.
func (p *Plan) Length() time.Duration {
	if p.Ramp != nil {
		return p.Ramp.Over.D()
	}
	var d time.Duration
	for _, st := range p.Steps {
		d += st.Hold.D()
	}
	return d
}

// Requests is how many requests the plan sends.
func (p *Plan) Requests() float64 {
	n := 0.0
	for _, s := range (Load{Plan: p}).Segments(1) {
		n += s.Planned()
	}
	return n
}

// Peak is the plan's highest rate, per second.
func (p *Plan) Peak() float64 {
	peak := 0.0
	for _, s := range (Load{Plan: p}).Segments(1) {
		peak = max(peak, s.From, s.To)
	}
	return peak
}

// String describes the plan in a line: "steps 200/s for 5s, 400/s for 5s"
// or "ramp 100/s to 800/s over 10s".
func (p *Plan) String() string {
	if p.Ramp != nil {
		return fmt.Sprintf("ramp %s to %s over %s", p.Ramp.From, p.Ramp.To, p.Ramp.Over)
	}
	parts := make([]string, len(p.Steps))
	for i, st := range p.Steps {
		parts[i] = fmt.Sprintf("%s for %s", st.Rate, st.Hold)
	}
	return "steps " + strings.Join(parts, ", ")
}

// StepWindow is a part of a plan reported on its own: a step, or a
// bucket of a ramp.
type StepWindow struct {
	Start, End time.Duration
	Rate       float64 // requests per second planned, the mean over the window
}

// Windows are the parts of the load's plan reported on their own; nil
// for a constant load.
func (l Load) Windows() []StepWindow {
	p := l.Plan
	switch {
	case p == nil:
		return nil
	case p.Ramp != nil:
		r := p.Ramp
		every := r.Every.D()
		if every <= 0 {
			every = DefaultRampEvery.D()
		}
		from, to, over := r.From.PerSecond(), r.To.PerSecond(), r.Over.D()
		rateAt := func(t time.Duration) float64 { return from + (to-from)*t.Seconds()/over.Seconds() }
		var out []StepWindow
		for at := time.Duration(0); at < over; at += every {
			end := min(at+every, over)
			out = append(out, StepWindow{Start: at, End: end, Rate: (rateAt(at) + rateAt(end)) / 2})
		}
		return out
	}
	var out []StepWindow
	var at time.Duration
	for _, st := range p.Steps {
		out = append(out, StepWindow{Start: at, End: at + st.Hold.D(), Rate: st.Rate.PerSecond()})
		at += st.Hold.D()
	}
	return out
}
