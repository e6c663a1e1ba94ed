package expect

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/sim/meshmetrics"
)

// samples are n answers of payment version v for variant, code 200.
func samples(n int, variant, v string) []Sample {
	out := make([]Sample, n)
	for i := range out {
		out[i] = Sample{Variant: variant, Code: 200, OK: true, Versions: map[string]string{"payment": v},
			Attempts: map[string]int{"payment": 1}}
	}
	return out
}

func TestJudge(t *testing.T) {
	split := append(samples(900, "", "v1"), samples(100, "", "v2")...)
	skewed := append(samples(500, "jason", "v1"), samples(500, "jason", "v2")...)
	failed := samples(100, "", "v1")
	for i := range 10 {
		failed[i].Code, failed[i].OK = 503, false
	}
	retried := samples(10, "", "v1")
	retried[3].Attempts["payment"] = 3
	retried[4].Flags = map[string][]string{"payment": {"URX"}}
	retried[4].Variant = "jason"
	streams := samples(4, "", "v1")
	for i := range streams {
		streams[i].Messages = map[string]int{"payment": 2 + i}
		streams[i].Deadlines = map[string]time.Duration{"payment": time.Duration(900+10*i) * time.Millisecond}
	}
	mesh := meshmetrics.Counters{Retries: map[string]float64{"payment": 4}, Ejections: map[string]float64{"payment": 1},
		Overflows: map[string]float64{}, Rotations: 2,
		Security: map[string]map[string]float64{"payment": {"mutual_tls": 100}, "audit": {"mutual_tls": 30, "none": 12}},
		Flags:    map[string]map[string]float64{"payment": {"UO": 7}}}
	lat := reports.Latency{P50: 2, P99: 40}
	steps := []reports.Step{{Index: 1, TargetRate: 200, Requests: 1000, Successes: 1000, Latency: reports.Latency{P99: 5}},
		{Index: 2, TargetRate: 400, Requests: 2000, Successes: 2000, Latency: reports.Latency{P99: 30}}}

	for _, c := range []struct {
		name    string
		kind    Kind
		out     Outcome
		check   string
		passed  bool
		summary string
	}{
		{"split holds", &Split{Service: "payment", Weights: map[string]float64{"v1": 90, "v2": 10}}, Outcome{Samples: split}, "split payment", true, ""},
		{"split of a variant fails", &Split{Service: "payment", Weights: map[string]float64{"v1": 90, "v2": 10}, Variant: "jason"}, Outcome{Samples: append(split, skewed...)}, "split payment (jason)", false, ""},
		{"success rate fails", &SuccessRate{Min: 0.999}, Outcome{Samples: failed}, "success rate", false, "90/100 ok"},
		{"success rate of a variant", &SuccessRate{Min: 0.999, Variant: "jason"}, Outcome{Samples: append(failed, skewed...)}, "success rate (jason)", true, "1000/1000 ok"},
		{"latency within", &Latency{Stats: map[string]Bound{"p99": {Max: units.Duration(50 * time.Millisecond)}}}, Outcome{Samples: split, Latency: lat}, "latency", true, ""},
		{"latency of a variant below its min", &Latency{Variant: "jason", Stats: map[string]Bound{"p50": {Min: units.Duration(time.Second)}}},
			Outcome{Samples: skewed, Latency: reports.Latency{P50: 2000}, VariantLatency: map[string]reports.Latency{"jason": lat}}, "latency (jason)", false, ""},
		{"status share", &Status{Code: 503, Share: ptr(0.1)}, Outcome{Samples: failed}, "status 503 share", true, "10/100"},
		{"status bounds fail", &Status{Code: 503, Max: ptr(0.05)}, Outcome{Samples: failed}, "status 503 share", false, "0.1 share of 503 (10 of 100): outside the bound <= 0.05"},
		{"retries from the sidecars", &Retries{Count{Service: "payment", Max: ptr(3)}}, Outcome{Samples: retried, Mesh: mesh}, "retries to payment", false, "4 retries: outside"},
		{"retries at a proxyless server", &Retries{Count{Service: "payment", Min: ptr(2)}}, Outcome{Samples: retried, Mesh: mesh, Proxyless: map[string]bool{"payment": true}},
			"retries to payment (at the server)", true, "2 retries (proxyless gRPC callers"},
		{"ejections", &Ejections{Count{Service: "payment", Min: ptr(1)}}, Outcome{Mesh: mesh}, "ejections of payment", true, "1 ejections: within the bound >= 1"},
		{"overflows", &Overflows{Count{Service: "payment", Min: ptr(1)}}, Outcome{Mesh: mesh}, "overflows to payment", false, "0 requests refused (UO): outside"},
		{"rotations", &Rotations{Count{Min: ptr(1)}}, Outcome{Mesh: mesh}, "certificate rotations", true, "2 certificate rotations"},
		{"flags from the sidecars", &ResponseFlags{Service: "payment", Flag: "UO", Min: ptr(1)}, Outcome{Mesh: mesh}, "flag UO to payment", true, "7 responses flagged UO"},
		{"flags of a variant", &ResponseFlags{Service: "payment", Flag: "URX", Max: ptr(0), Variant: "jason"}, Outcome{Samples: retried, Mesh: mesh}, "flag URX to payment (jason)", false, "1 requests whose call was flagged URX"},
		{"flags of a proxyless service", &ResponseFlags{Service: "payment", Flag: "UO", Min: ptr(1)}, Outcome{Mesh: mesh, Proxyless: map[string]bool{"payment": true}}, "flag UO to payment", false, "not judged: payment is called by proxyless gRPC clients"},
		{"attempts", &Attempts{Count{Service: "payment", Max: ptr(2)}}, Outcome{Samples: retried}, "attempts at payment", false, "3 attempts at most"},
		{"security", &Security{Service: "payment", Policy: "mutual_tls", Min: ptr(100)}, Outcome{Mesh: mesh}, "mutual_tls requests to payment", true, ""},
		{"security none", &Security{Service: "payment", Policy: "none", Max: ptr(0)}, Outcome{Mesh: mesh}, "none requests to payment", true, ""},
		{"security any sums the policies", &Security{Service: "audit", Policy: "any", Min: ptr(42)}, Outcome{Mesh: mesh}, "requests to audit", true, ""},
		{"security any below its bound", &Security{Service: "audit", Policy: "any", Min: ptr(43)}, Outcome{Mesh: mesh}, "requests to audit", false, ""},
		{"messages", &Messages{Count{Service: "payment", Min: ptr(3)}}, Outcome{Samples: streams}, "stream messages from payment", false, "2 to 5 messages per stream (want >= 3); N=4"},
		{"messages without streams", &Messages{Count{Service: "order", Min: ptr(1)}}, Outcome{Samples: streams}, "stream messages from order", false, "no streaming call of order among 4 requests"},
		{"deadline", &Deadline{Service: "payment", Max: units.Duration(time.Second)}, Outcome{Samples: streams}, "deadline at payment", true, "every call carried a deadline; payment left 900ms to 930ms (want <= 1s); N=4"},
		{"deadline missing", &Deadline{Service: "payment", Max: units.Duration(time.Second)}, Outcome{Samples: split[:3]}, "deadline at payment", false, "3 of 3 calls reached payment without a deadline"},
		{"capacity", &Capacity{P99: units.Duration(20 * time.Millisecond), Min: units.Rate{Freq: 400, Per: time.Second}}, Outcome{Steps: steps}, "capacity", false, "held up to 200/s (want >= 400/s)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := c.kind.Judge(&c.out)
			assert.Equal(t, c.check, got.Name)
			assert.Equal(t, c.passed, got.Passed, got.Summary)
			assert.Contains(t, got.Summary, c.summary)
		})
	}
}

// The default confidence is the one given when the scenario gives none,
// by Default and by Judge alike.
func TestDefaultConfidence(t *testing.T) {
	s := &Split{Service: "payment", Weights: map[string]float64{"v1": 1}}
	assert.Equal(t, DefaultConfidence, s.Judge(&Outcome{Samples: samples(10, "", "v1")}).Confidence)
	s.Default()
	assert.Equal(t, DefaultConfidence, s.Confidence)
	c := &Capacity{Confidence: 0.99}
	c.Default()
	assert.Equal(t, 0.99, c.Confidence)
}

// successRate after a time counts the requests the load meant to send
// that long after its first one, of every variant: a pod ejected at once
// leaves its errors in the first moments only.
func TestJudgeSuccessRateAfter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var main []Sample
	for i := range 400 { // 4s at 100/s, half of them jason's
		s := Sample{Code: 200, OK: true, Intended: t0.Add(time.Duration(i) * 10 * time.Millisecond)}
		if i%2 == 1 {
			s.Variant = "jason"
		}
		if i < 40 || i == 250 { // the errors before the ejection, one after
			s.Code, s.OK = 503, false
		}
		main = append(main, s)
	}
	out := &Outcome{Samples: main}
	for _, c := range []struct {
		e       SuccessRate
		name    string
		passed  bool
		summary string
	}{
		{SuccessRate{Min: 0.99}, "success rate", false, "359/400 ok"},
		{SuccessRate{Min: 0.99, After: units.Duration(time.Second)}, "success rate after 1s", true, "299/300 ok"},
		{SuccessRate{Min: 1, After: units.Duration(time.Second)}, "success rate after 1s", false, "299/300 ok"},
		{SuccessRate{Min: 0.99, After: units.Duration(195 * time.Millisecond)}, "success rate after 195ms", false, "359/380 ok"},
		// jason's requests after 1s: every other one from the load's start,
		// which is the first request of any variant.
		{SuccessRate{Min: 0.99, After: units.Duration(time.Second), Variant: "jason"}, "success rate after 1s (jason)", true, "150/150 ok"},
		{SuccessRate{Min: 0.99, After: units.Duration(5 * time.Second)}, "success rate after 5s", false, "no requests"},
	} {
		got := c.e.Judge(out)
		assert.Equal(t, c.name, got.Name)
		assert.Equal(t, c.passed, got.Passed, got.Summary)
		assert.Contains(t, got.Summary, c.summary)
	}
}

func TestJudgeLatencyShift(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var main []Sample
	for i := range 400 {
		s := Sample{Intended: t0.Add(time.Duration(i) * 10 * time.Millisecond), Latency: 2 * time.Millisecond}
		if i >= 100 && i < 200 { // the fault's second
			s.Latency = 102 * time.Millisecond
		}
		main = append(main, s)
	}
	faults := &Faults{Windows: []Window{{Step: "slow", Start: t0.Add(time.Second), End: t0.Add(2 * time.Second)}}}
	out := &Outcome{Samples: main, Faults: faults}
	e := &LatencyShift{Fault: "slow", Min: dur(80e6), Max: dur(150e6)}
	e.Default()
	c := e.Judge(out)
	assert.True(t, c.Passed, c.Summary)
	assert.Equal(t, "p50 shift during slow", c.Name)
	assert.Equal(t, 100.0, c.Observed["shift"])
	assert.Contains(t, c.Summary, "in the requests sent while no fault was in place (N=300")

	// Against the steady state, which was as slow: no shift.
	out.Faults = &Faults{Windows: faults.Windows, Steady: [][]Sample{main[100:200]}}
	c = e.Judge(out)
	assert.False(t, c.Passed, c.Summary)
	assert.Equal(t, 0.0, c.Observed["shift"])
	assert.Contains(t, c.Summary, "in the steady-state phases (N=100")

	// A fault that never went in leaves nothing to compare.
	c = (&LatencyShift{Stat: "p99", Max: dur(1e6)}).Judge(&Outcome{Samples: main, Faults: &Faults{Windows: []Window{{Step: "x"}}}})
	assert.False(t, c.Passed)
	assert.Equal(t, "nothing to compare: 0 requests during any fault, 400 in the requests sent while no fault was in place", c.Summary)
}
