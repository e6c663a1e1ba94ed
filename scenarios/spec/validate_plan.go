package spec

import (
	"math"

	"github.com/meshbench/meshbench/scenarios/spec/yamlnode"
)

// plan checks a steps or ramp plan; the load's rate and duration must then
// be left out, since the plan gives both.
func (v *validator) plan() {
	l, ld := v.l, &v.s.Load
	p := ld.Plan
	before := len(l.errs)
	for _, f := range []string{"rate", "duration"} {
		if l.ix.has("load." + f) {
			l.at("load."+f, "a load sets either rate and duration (a constant rate) or plan (steps or a ramp), not both: the plan gives the rates and the length")
		}
	}
	switch {
	case p.Ramp == nil && len(p.Steps) == 0:
		l.at("load.plan", "a plan sets steps (a list of {rate, hold}) or ramp ({from, to, over})")
		return
	case p.Ramp != nil && len(p.Steps) > 0:
		l.at("load.plan", "a plan sets steps or ramp, not both")
		return
	case p.Ramp != nil:
		v.ramp(p.Ramp)
	default:
		v.steps(p.Steps)
	}
	if len(l.errs) > before {
		return // the totals would only repeat what is wrong
	}
	switch length := p.Length(); {
	case length < MinDuration.D() || length > MaxDuration.D():
		l.at("load.plan", "the plan lasts %s; a load lasts %s..%s", length, MinDuration, MaxDuration)
	case p.Requests() > MaxRequests:
		l.at("load.plan", "the plan sends %.0f requests; the limit is %d (every sample is kept for the checks)", p.Requests(), MaxRequests)
	}
	if n := len(ld.Windows()); n > MaxPlanSteps {
		l.at("load.plan", "the plan reports %d steps; the limit is %d (use fewer steps or a wider ramp.every)", n, MaxPlanSteps)
	}
}

func (v *validator) steps(steps []PlanStep) {
	l := v.l
	for i, st := range steps {
		p := yamlnode.Item("load.plan.steps", i)
		if st.Rate.Per == 0 {
			l.at(p, "step %d: rate is required, like 200/s", i+1)
		} else {
			v.rateLimit(p+".rate", st.Rate)
		}
		switch {
		case st.Hold == 0:
			l.at(p, "step %d: hold is required: how long the step lasts, like 5s", i+1)
		case st.Hold < MinHold:
			l.at(p+".hold", "hold %s is below %s: a step needs enough requests for its percentiles", st.Hold, MinHold)
		case st.Rate.Per != 0 && st.Rate.PerSecond()*st.Hold.D().Seconds() < 1:
			l.at(p, "step %d plans %.2g requests (%s for %s); it needs at least one", i+1, st.Rate.PerSecond()*st.Hold.D().Seconds(), st.Rate, st.Hold)
		}
	}
}

func (v *validator) ramp(r *RampPlan) {
	l := v.l
	const p = "load.plan.ramp"
	for _, f := range []struct {
		name string
		per  float64
	}{{"from", r.From.PerSecond()}, {"to", r.To.PerSecond()}} {
		if f.per == 0 {
			l.at(p, "ramp.%s is required, like 100/s", f.name)
		}
	}
	v.rateLimit(p+".from", r.From)
	v.rateLimit(p+".to", r.To)
	switch {
	case r.Over == 0:
		l.at(p, "ramp.over is required: how long the ramp lasts, like 10s")
	case r.Every < MinHold:
		l.at(p+".every", "every %s is below %s: a bucket needs enough requests for its percentiles", r.Every, MinHold)
	case r.Every > r.Over:
		l.at(p+".every", "every %s is longer than the ramp (%s)", r.Every, r.Over)
	case r.From.Per != 0 && r.To.Per != 0 && math.Min(r.From.PerSecond(), r.To.PerSecond())*r.Every.D().Seconds() < 1:
		l.at(p+".every", "a bucket of %s at %.2g/s plans less than one request; widen every or raise the rates", r.Every, math.Min(r.From.PerSecond(), r.To.PerSecond()))
	}
}
