package run

import (
	"math"
	"sort"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/spec"
)

// segmentPacer is vegeta's own pacer for the segment.
func segmentPacer(s spec.Segment) vegeta.Pacer {
	if s.Constant.Freq > 0 {
		return vegetaRate(s.Constant)
	}
	return vegeta.LinearPacer{StartAt: vegetaRate(spec.PerHour(s.From)), Slope: (s.To - s.From) / s.D.Seconds()}
}

// segmentOffset is when, from the segment's start, the pacer plans its j-th
// request (0-based): the start of its slot, where the planned requests
// reach j. The constant pacer's interval is the whole nanoseconds it waits.
func segmentOffset(s spec.Segment, j uint64) time.Duration {
	if s.Constant.Freq > 0 {
		return time.Duration(j) * time.Duration(s.Constant.Per.Nanoseconds()/int64(s.Constant.Freq))
	}
	a, b := (s.To-s.From)/s.D.Seconds(), s.From
	k := float64(j)
	if a == 0 {
		return time.Duration(k / b * float64(time.Second))
	}
	// a/2·t² + b·t = k
	return time.Duration((-b + math.Sqrt(b*b+2*a*k)) / a * float64(time.Second))
}

// planPacer paces a plan's segments one after the other, each with vegeta's
// own pacer (ConstantPacer for a step, LinearPacer for a ramp). vegeta has
// no pacer that chains others, so this one only shifts time and count into
// the current segment's frame; the pacing itself is vegeta's.
type planPacer struct {
	segs   []spec.Segment
	starts []time.Duration // of each segment
	before []uint64        // requests the earlier segments plan, rounded; one more entry: the total
}

func newPlanPacer(segs []spec.Segment) *planPacer {
	p := &planPacer{segs: segs, before: []uint64{0}}
	var at time.Duration
	cum := 0.0
	for _, s := range segs {
		p.starts = append(p.starts, at)
		at += s.D
		cum += s.Planned()
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
	wait, stop := segmentPacer(p.segs[i]).Pace(elapsed-p.starts[i], hits-p.before[i])
	if i+1 < len(p.segs) && elapsed+wait > p.starts[i+1] {
		// This segment's requests are sent: the next one paces from its start.
		wait = p.starts[i+1] - elapsed
	}
	return wait, stop
}

// Rate implements vegeta.Pacer.
func (p *planPacer) Rate(elapsed time.Duration) float64 {
	i := max(sort.Search(len(p.starts), func(i int) bool { return p.starts[i] > elapsed })-1, 0)
	return segmentPacer(p.segs[i]).Rate(elapsed - p.starts[i])
}

// offsetOf is when, from the plan's start, the pacer plans request seq.
func (p *planPacer) offsetOf(seq uint64) time.Duration {
	i := sort.Search(len(p.segs), func(i int) bool { return p.before[i+1] > seq })
	i = min(i, len(p.segs)-1)
	return p.starts[i] + segmentOffset(p.segs[i], seq-p.before[i])
}

// firstRate is the plan's starting rate, which its warm-up ramps up to.
func firstRate(p *spec.Plan) units.Rate {
	if p.Ramp != nil {
		return p.Ramp.From
	}
	return p.Steps[0].Rate
}

// steps sums up the samples of each window of a plan: the requests the
// pacer planned in it, their latency and success, and the rate at which
// requests were actually sent in it.
func steps(samples []sample, ws []spec.StepWindow) []reports.Step {
	if len(ws) == 0 {
		return nil
	}
	in := make([][]sample, len(ws))
	sent := make([]int, len(ws))
	find := func(at time.Duration) int {
		return sort.Search(len(ws), func(i int) bool { return ws[i].End > at })
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
			Index: i + 1, Start: w.Start.Seconds(), End: w.End.Seconds(), TargetRate: w.Rate,
			AchievedRate: float64(sent[i]) / (w.End - w.Start).Seconds(),
			Requests:     len(in[i]), Successes: ok, Latency: latencyOf(in[i]),
		}
		if st.Requests > 0 {
			st.SuccessRate = float64(ok) / float64(st.Requests)
		}
		out[i] = st
	}
	return out
}

// vegetaRate is r as vegeta's pacers take it.
func vegetaRate(r units.Rate) vegeta.Rate { return vegeta.Rate{Freq: r.Freq, Per: r.Per} }
