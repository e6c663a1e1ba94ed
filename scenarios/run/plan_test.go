package run

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/expect"
	"github.com/meshbench/meshbench/scenarios/spec"
)

func rate(perSecond int) units.Rate { return units.Rate{Freq: perSecond, Per: time.Second} }

func millis(n int) units.Duration { return units.Duration(time.Duration(n) * time.Millisecond) }

// stepsLoad is three steps of 400 ms: 10, 20 and 40 requests.
func stepsLoad() spec.Load {
	return spec.Load{Target: "order", Path: "/orders", Method: "POST", Timeout: units.Duration(5 * time.Second),
		Plan: &spec.Plan{Steps: []spec.PlanStep{{Rate: rate(25), Hold: millis(400)}, {Rate: rate(50), Hold: millis(400)}, {Rate: rate(100), Hold: millis(400)}}}}
}

// rampLoad ramps from 20/s to 100/s over 800 ms, reported in buckets of
// 200 ms: H(t) = 20t + 50t² requests by t seconds, 48 in all.
func rampLoad() spec.Load {
	return spec.Load{Target: "order", Path: "/orders", Method: "POST", Timeout: units.Duration(5 * time.Second),
		Plan: &spec.Plan{Ramp: &spec.RampPlan{From: rate(20), To: rate(100), Over: millis(800), Every: millis(200)}}}
}

// simulate runs the pacer the way vegeta's attack loop does, on a clock
// that moves only by the waits, and returns when each hit was sent.
func simulate(t *testing.T, p *planPacer) []time.Duration {
	var elapsed time.Duration
	var sent []time.Duration
	for uint64(len(sent)) < uint64(p.total()) {
		wait, stop := p.Pace(elapsed, uint64(len(sent)))
		require.False(t, stop)
		if wait <= 0 {
			sent = append(sent, elapsed)
			continue
		}
		elapsed += wait
		require.Less(t, elapsed, time.Minute, "the pacer never let %d hits go", p.total())
	}
	return sent
}

func countIn(ts []time.Duration, ws []spec.StepWindow) []int {
	out := make([]int, len(ws))
	for _, t := range ts {
		for i, w := range ws {
			if t >= w.Start && (t < w.End || i == len(ws)-1) {
				out[i]++
				break
			}
		}
	}
	return out
}

// On a perfect clock, each step's hits are sent within the step, give or
// take the one vegeta's pacers send at the end of their interval; each
// hit's planned offset falls in its own step exactly.
func TestPlanPacerPacesEachStep(t *testing.T) {
	for _, tc := range []struct {
		name string
		load spec.Load
		want []int
	}{
		{"steps", stepsLoad(), []int{10, 20, 40}},
		{"ramp", rampLoad(), []int{6, 10, 14, 18}}, // H(0.2)=6, H(0.4)=16, H(0.6)=30, H(0.8)=48
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlanPacer(tc.load.Segments(1))
			ws := tc.load.Windows()
			sent := simulate(t, p)
			total := 0
			for _, n := range tc.want {
				total += n
			}
			require.Len(t, sent, total)
			for i, n := range countIn(sent, ws) {
				assert.InDelta(t, tc.want[i], n, 1, "hits sent in window %d", i+1)
			}
			planned := make([]time.Duration, total)
			for seq := range planned {
				planned[seq] = p.offsetOf(uint64(seq))
			}
			assert.Equal(t, tc.want, countIn(planned, ws), "hits planned in each window")
			assert.IsNonDecreasing(t, planned)
		})
	}
}

// A variant's stream paces its share of each step.
func TestPlanSegmentsScaleByShare(t *testing.T) {
	segs := stepsLoad().Segments(0.25)
	require.Len(t, segs, 3)
	for i, want := range []float64{6.25, 12.5, 25} {
		assert.InDelta(t, want, segs[i].From, 1e-9)
		assert.InDelta(t, want, segmentPacer(segs[i]).Rate(0), 1e-6)
	}
	assert.Equal(t, 18, newPlanPacer(segs).total(), "a quarter of 70 requests, rounded")
}

// A real plan against a real server: every planned request is sent and
// answered, each step holds exactly the requests its pacer planned, and
// the requests were sent at about the step's rate.
func TestPlanDrivesARealServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		load spec.Load
		want []int
	}{
		{"steps", stepsLoad(), []int{10, 20, 40}},
		{"ramp", rampLoad(), []int{6, 10, 14, 18}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var served atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				served.Add(1)
			}))
			defer srv.Close()
			sc := &scenario{Scenario: spec.Scenario{Load: tc.load}}
			sc.Load.Duration = units.Duration(sc.Load.Plan.Length())
			sc.timeLimit = time.Minute // bounded by count on a busy machine, not by time

			samples, _ := attack(context.Background(), srv.URL, sc, "default")
			ss := steps(samples, sc.Load.Windows())

			total := 0
			for _, n := range tc.want {
				total += n
			}
			require.Len(t, samples, total)
			assert.EqualValues(t, total, served.Load())
			require.Len(t, ss, len(tc.want))
			sent := 0
			for i, st := range ss {
				assert.Equal(t, i+1, st.Index)
				assert.Equal(t, tc.want[i], st.Requests, "step %d: the requests its pacer planned", st.Index)
				assert.Equal(t, st.Requests, st.Successes)
				assert.Equal(t, 1.0, st.SuccessRate)
				assert.Positive(t, st.Latency.P99)
				// By their actual send time: vegeta catches up when a
				// goroutine is late, so allow a few either way.
				got := int(st.AchievedRate*(st.End-st.Start) + 0.5)
				assert.InDelta(t, tc.want[i], got, float64(2+tc.want[i]/4), "step %d: requests sent in its window", st.Index)
				sent += got
			}
			assert.InDelta(t, total, sent, 2, "requests sent within the plan's length")
		})
	}
}

// The run's summary carries the plan's steps, and a capacity expectation
// is judged on them.
func TestSummaryAndCapacityOfAPlan(t *testing.T) {
	sc := &scenario{Scenario: spec.Scenario{Load: stepsLoad(), Expect: []expect.Expectation{
		expect.Of(&expect.Capacity{P99: millis(20), Min: rate(100), Confidence: 0.999}),
	}}}
	sc.Load.Duration = units.Duration(sc.Load.Plan.Length())
	p := newPlanPacer(sc.Load.Segments(1))
	start := time.Now()
	var samples []sample
	for seq := range p.total() {
		at := p.offsetOf(uint64(seq))
		lat := 5 * time.Millisecond
		if at >= 800*time.Millisecond {
			lat = 30 * time.Millisecond // the 100/s step breaks the bound
		}
		samples = append(samples, sample{code: 200, intended: start.Add(at), planned: at, sent: at, latency: lat})
	}
	res := &reports.Result{}
	summarise(res, samples, 1200*time.Millisecond, sc, "http://gw")
	out := outcome(samples, nil, nil)
	out.Steps = res.Steps
	judge(res, sc.Expect, out, nil)

	assert.Equal(t, "steps 25/s for 400ms, 50/s for 400ms, 100/s for 400ms", res.Load.Plan)
	assert.InDelta(t, 70/1.2, res.Load.TargetRate, 1e-9, "a plan's asked rate is its mean")
	require.Len(t, res.Steps, 3)
	assert.Equal(t, 40, res.Steps[2].Requests)
	require.Len(t, res.Checks, 1)
	c := res.Checks[0]
	assert.False(t, c.Passed)
	assert.Equal(t, 50.0, c.Observed["capacity"])
	assert.Equal(t, 3.0, c.Observed["firstBreakStep"])
	assert.False(t, res.Passed)
}
