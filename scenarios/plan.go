package scenarios

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/check"
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

// CapacityExpect asks of a steps or ramp plan for the highest step rate at
// and below which every step's p99 and success rate held; the check passes
// when that rate is at least Min.
type CapacityExpect struct {
	// P99 is the highest acceptable p99 of a step; 0: no latency bound.
	P99 units.Duration `yaml:"p99"`
	// SuccessRate is the lowest acceptable success rate of a step, judged
	// like successRate (one-sided exact binomial test); 0: no bound.
	SuccessRate float64 `yaml:"successRate"`
	// Min is the capacity the check asks for; required.
	Min units.Rate `yaml:"min"`
	// Confidence of the success rate test; default 0.999.
	Confidence float64 `yaml:"confidence"`
}

// segment is one stretch of a plan: a rate that moves linearly from from
// to to (requests per second) over d; from == to for a step.
type segment struct {
	from, to float64
	d        time.Duration
	// constant, when set, paces a step at exactly the rate the scenario
	// wrote (vegeta's ConstantPacer takes a whole count per period).
	constant vegeta.Rate
}

// planned is the number of requests the segment plans: the area under its rate.
func (s segment) planned() float64 { return (s.from + s.to) / 2 * s.d.Seconds() }

// pacer is vegeta's own pacer for the segment.
func (s segment) pacer() vegeta.Pacer {
	if s.constant.Freq > 0 {
		return s.constant
	}
	return vegeta.LinearPacer{StartAt: perHour(s.from), Slope: (s.to - s.from) / s.d.Seconds()}
}

// offsetOf is when, from the segment's start, the pacer plans its j-th
// request (0-based): the start of its slot, where the planned requests
// reach j. The constant pacer's interval is the whole nanoseconds it waits.
func (s segment) offsetOf(j uint64) time.Duration {
	if s.constant.Freq > 0 {
		return time.Duration(j) * time.Duration(s.constant.Per.Nanoseconds()/int64(s.constant.Freq))
	}
	a, b := (s.to-s.from)/s.d.Seconds(), s.from
	k := float64(j)
	if a == 0 {
		return time.Duration(k / b * float64(time.Second))
	}
	// a/2·t² + b·t = k
	return time.Duration((-b + math.Sqrt(b*b+2*a*k)) / a * float64(time.Second))
}

// perHour is a rate as vegeta's whole count per period, per hour so that
// a fraction of a request per second keeps its precision.
func perHour(perSecond float64) vegeta.Rate {
	return vegeta.Rate{Freq: max(1, int(math.Round(perSecond*3600))), Per: time.Hour}
}

// segments is the load's plan as segments, each rate scaled by share (a
// variant's part of the load); nil for a constant load.
func (l Load) segments(share float64) []segment {
	p := l.Plan
	switch {
	case p == nil:
		return nil
	case p.Ramp != nil:
		r := p.Ramp
		return []segment{{from: r.From.PerSecond() * share, to: r.To.PerSecond() * share, d: r.Over.D()}}
	}
	var out []segment
	for _, st := range p.Steps {
		ps := st.Rate.PerSecond() * share
		c := vegeta.Rate{Freq: st.Rate.Freq, Per: st.Rate.Per}
		if share != 1 {
			c = perHour(ps)
		}
		out = append(out, segment{from: ps, to: ps, d: st.Hold.D(), constant: c})
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
	for _, s := range (Load{Plan: p}).segments(1) {
		n += s.planned()
	}
	return n
}

// Peak is the plan's highest rate, per second.
func (p *Plan) Peak() float64 {
	peak := 0.0
	for _, s := range (Load{Plan: p}).segments(1) {
		peak = max(peak, s.from, s.to)
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

// planPacer paces a plan's segments one after the other, each with vegeta's
// own pacer (ConstantPacer for a step, LinearPacer for a ramp). vegeta has
// no pacer that chains others, so this one only shifts time and count into
// the current segment's frame; the pacing itself is vegeta's.
type planPacer struct {
	segs   []segment
	starts []time.Duration // of each segment
	before []uint64        // requests the earlier segments plan, rounded; one more entry: the total
}

func newPlanPacer(segs []segment) *planPacer {
	p := &planPacer{segs: segs, before: []uint64{0}}
	var at time.Duration
	cum := 0.0
	for _, s := range segs {
		p.starts = append(p.starts, at)
		at += s.d
		cum += s.planned()
		p.before = append(p.before, uint64(math.Round(cum)))
	}
	return p
}

// total is how many requests the plan sends.
func (p *planPacer) total() int { return int(p.before[len(p.segs)]) }

// Pace implements vegeta.Pacer.
func (p *planPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	// The segment in force; past the end, the last one, so that a stream
	// that fell behind catches up as vegeta's pacers do (the targeter ends
	// the attack at the plan's count).
	i := sort.Search(len(p.starts), func(i int) bool { return p.starts[i] > elapsed }) - 1
	i = max(i, 0)
	if hits < p.before[i] {
		return 0, false // behind the earlier segments: send at once
	}
	wait, stop := p.segs[i].pacer().Pace(elapsed-p.starts[i], hits-p.before[i])
	if i+1 < len(p.segs) && elapsed+wait > p.starts[i+1] {
		// This segment's requests are sent: the next one paces from its start.
		wait = p.starts[i+1] - elapsed
	}
	return wait, stop
}

// Rate implements vegeta.Pacer.
func (p *planPacer) Rate(elapsed time.Duration) float64 {
	i := max(sort.Search(len(p.starts), func(i int) bool { return p.starts[i] > elapsed })-1, 0)
	return p.segs[i].pacer().Rate(elapsed - p.starts[i])
}

// offsetOf is when, from the plan's start, the pacer plans request seq.
func (p *planPacer) offsetOf(seq uint64) time.Duration {
	i := sort.Search(len(p.segs), func(i int) bool { return p.before[i+1] > seq })
	i = min(i, len(p.segs)-1)
	return p.starts[i] + p.segs[i].offsetOf(seq-p.before[i])
}

// stepWindow is a part of a plan reported on its own: a step, or a
// bucket of a ramp.
type stepWindow struct {
	start, end time.Duration
	rate       float64 // requests per second planned, the mean over the window
}

// windows are the parts of the load's plan reported on their own; nil
// for a constant load.
func (l Load) windows() []stepWindow {
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
		var out []stepWindow
		for at := time.Duration(0); at < over; at += every {
			end := min(at+every, over)
			out = append(out, stepWindow{start: at, end: end, rate: (rateAt(at) + rateAt(end)) / 2})
		}
		return out
	}
	var out []stepWindow
	var at time.Duration
	for _, st := range p.Steps {
		out = append(out, stepWindow{start: at, end: at + st.Hold.D(), rate: st.Rate.PerSecond()})
		at += st.Hold.D()
	}
	return out
}

// firstRate is the plan's starting rate, which its warm-up ramps up to.
func (p *Plan) firstRate() units.Rate {
	if p.Ramp != nil {
		return p.Ramp.From
	}
	return p.Steps[0].Rate
}

// steps sums up the samples of each window of a plan: the requests the
// pacer planned in it, their latency and success, and the rate at which
// requests were actually sent in it.
func steps(samples []sample, ws []stepWindow) []reports.Step {
	if len(ws) == 0 {
		return nil
	}
	in := make([][]sample, len(ws))
	sent := make([]int, len(ws))
	find := func(at time.Duration) int {
		return sort.Search(len(ws), func(i int) bool { return ws[i].end > at })
	}
	for _, s := range samples {
		// Past the end (a late send) counts in the last window.
		i := min(find(s.planned), len(ws)-1)
		in[i] = append(in[i], s)
		if j := find(s.sent); j < len(ws) {
			sent[j]++
		}
	}
	out := make([]reports.Step, len(ws))
	for i, w := range ws {
		ok := 0
		for _, s := range in[i] {
			if s.ok() {
				ok++
			}
		}
		st := reports.Step{
			Index: i + 1, Start: w.start.Seconds(), End: w.end.Seconds(), TargetRate: w.rate,
			AchievedRate: float64(sent[i]) / (w.end - w.start).Seconds(),
			Requests:     len(in[i]), Successes: ok, Latency: latencyOf(in[i]),
		}
		if st.Requests > 0 {
			st.SuccessRate = float64(ok) / float64(st.Requests)
		}
		out[i] = st
	}
	return out
}

// capacityCheck judges a capacity expectation on the run's steps.
func capacityCheck(e *CapacityExpect, ss []reports.Step) reports.Check {
	ms := float64(e.P99.D().Microseconds()) / 1000
	return check.Capacity(ss, ms, e.SuccessRate, e.Min.PerSecond(), orDefault(e.Confidence))
}
