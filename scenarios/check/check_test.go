package check

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/meshbench/meshbench/reports"
)

// sample draws a two-version split of n responses where v1 gets each response
// with probability p1, from a seeded binomial.
func sample(seed uint64, n int, p1 float64) map[string]int {
	b := distuv.Binomial{N: float64(n), P: p1, Src: rand.NewPCG(seed, 0x6d657368)}
	v1 := int(b.Rand())
	return map[string]int{"v1": v1, "v2": n - v1}
}

var ninetyTen = map[string]float64{"v1": 90, "v2": 10}

func TestSplitRejectsWrongSplit(t *testing.T) {
	counts := sample(1, 5000, 0.8)
	c := Split("payment", ninetyTen, counts, 0.999)
	assert.False(t, c.Passed, c.Summary)
	require.NotNil(t, c.PValue)
	assert.Less(t, *c.PValue, 1e-6)
	assert.Equal(t, "split payment", c.Name)
	assert.Equal(t, KindSplit, c.Kind)
	assert.Equal(t, SplitTest, c.Test)
	assert.Equal(t, 5000, c.N)
	assert.InDelta(t, 90.0, c.Expected["v1"], 1e-9)
	assert.InDelta(t, 80.0, c.Observed["v1"], 1.5)
}

func TestSplitAcceptsRightSplit(t *testing.T) {
	counts := sample(2, 5000, 0.9)
	c := Split("payment", ninetyTen, counts, 0.999)
	assert.True(t, c.Passed, c.Summary)
	require.NotNil(t, c.PValue)
	assert.GreaterOrEqual(t, *c.PValue, 0.001)
	assert.Equal(t, 0.999, c.Confidence)
	assert.Contains(t, c.Summary, "payment: v1 ")
	assert.Contains(t, c.Summary, "(want 90), v2 ")
	assert.Contains(t, c.Summary, "N=5000, chi2=")
	assert.Contains(t, c.Summary, ">= alpha=0.001")
	assert.NotContains(t, c.Summary, "weak")
}

// TestSplitFalseFailureRate shows that a correct mesh fails the check about
// as often as 1-confidence says: 1% of 200 runs is 2 expected failures.
func TestSplitFalseFailureRate(t *testing.T) {
	failures := 0
	for i := range 200 {
		c := Split("payment", ninetyTen, sample(uint64(1000+i), 5000, 0.9), 0.99)
		if !c.Passed {
			failures++
		}
	}
	t.Logf("%d of 200 true 90/10 samples failed at confidence 0.99 (expected about 2)", failures)
	assert.LessOrEqual(t, failures, 10)
}

// TestSplitCalibration measures the false-failure rate more tightly: over
// 5000 true samples at confidence 0.99 about 50 should fail.
func TestSplitCalibration(t *testing.T) {
	const runs = 5000
	failures := 0
	for i := range runs {
		if !Split("payment", ninetyTen, sample(uint64(50000+i), 5000, 0.9), 0.99).Passed {
			failures++
		}
	}
	t.Logf("%d of %d true samples failed at confidence 0.99 (expected about %d)", failures, runs, runs/100)
	assert.InDelta(t, runs/100, failures, 25) // ±3.5 standard deviations
}

func TestSplitScaleFree(t *testing.T) {
	counts := map[string]int{"v1": 4480, "v2": 520}
	a := Split("s", map[string]float64{"v1": 90, "v2": 10}, counts, 0.99)
	b := Split("s", map[string]float64{"v1": 0.9, "v2": 0.1}, counts, 0.99)
	require.NotNil(t, a.PValue)
	require.NotNil(t, b.PValue)
	assert.InDelta(t, *a.PValue, *b.PValue, 1e-12)
	assert.Equal(t, a.Passed, b.Passed)
}

func TestSplitHandComputed(t *testing.T) {
	// 60/40 against 50/50 with N=100: chi2 = 2*10^2/50 = 4, df=1,
	// p = P[|Z| >= 2] = erfc(2/sqrt 2).
	c := Split("s", map[string]float64{"a": 1, "b": 1}, map[string]int{"a": 60, "b": 40}, 0.95)
	require.NotNil(t, c.PValue)
	assert.InDelta(t, math.Erfc(math.Sqrt2), *c.PValue, 1e-12)
	assert.False(t, c.Passed) // 0.0455 < 0.05
	assert.Contains(t, c.Summary, "chi2=4.00")

	c = Split("s", map[string]float64{"a": 1, "b": 1}, map[string]int{"a": 60, "b": 40}, 0.99)
	assert.True(t, c.Passed, c.Summary) // 0.0455 >= 0.01
}

func TestSplitVersionOutsideWeights(t *testing.T) {
	c := Split("payment", ninetyTen, map[string]int{"v1": 4500, "v2": 499, "v3": 1}, 0.999)
	assert.False(t, c.Passed)
	require.NotNil(t, c.PValue)
	assert.Equal(t, 0.0, *c.PValue)
	assert.Contains(t, c.Summary, "v3 has no weight but served 1")
	assert.Equal(t, 0.0, c.Expected["v3"])
	assert.InDelta(t, 0.02, c.Observed["v3"], 1e-9)

	// Present in counts with no responses is fine.
	c = Split("payment", ninetyTen, map[string]int{"v1": 4500, "v2": 500, "v3": 0}, 0.999)
	assert.True(t, c.Passed, c.Summary)
}

func TestSplitZeroWeight(t *testing.T) {
	w := map[string]float64{"v1": 100, "v2": 0}
	c := Split("payment", w, map[string]int{"v1": 4999, "v2": 1}, 0.999)
	assert.False(t, c.Passed)
	assert.Contains(t, c.Summary, "v2 has weight 0 but served 1")

	c = Split("payment", w, map[string]int{"v1": 5000, "v2": 0}, 0.999)
	assert.True(t, c.Passed, c.Summary)
	c = Split("payment", w, map[string]int{"v1": 5000}, 0.999)
	assert.True(t, c.Passed, c.Summary)

	// A zero weight next to two positive ones: df stays k-1 over positive weights.
	w3 := map[string]float64{"v1": 50, "v2": 50, "v3": 0}
	c = Split("payment", w3, map[string]int{"v1": 2500, "v2": 2500}, 0.999)
	assert.True(t, c.Passed, c.Summary)
	assert.Equal(t, SplitTest, c.Test)
	c = Split("payment", w3, map[string]int{"v1": 2500, "v2": 2499, "v3": 1}, 0.999)
	assert.False(t, c.Passed, c.Summary)
}

func TestSplitSingleVersion(t *testing.T) {
	c := Split("ratings", map[string]float64{"v1": 1}, map[string]int{"v1": 10}, 0.999)
	assert.True(t, c.Passed, c.Summary)
	assert.Equal(t, SplitSingleTest, c.Test)
	c = Split("ratings", map[string]float64{"v1": 1}, map[string]int{"v1": 10, "v2": 1}, 0.999)
	assert.False(t, c.Passed, c.Summary)
}

func TestSplitWeak(t *testing.T) {
	c := Split("s", ninetyTen, map[string]int{"v1": 9, "v2": 1}, 0.999)
	assert.True(t, c.Passed, c.Summary)
	assert.Contains(t, c.Summary, "weak test")
	require.NotNil(t, c.PValue)
}

func TestSplitInvalid(t *testing.T) {
	counts := map[string]int{"v1": 9, "v2": 1}
	for name, c := range map[string]reports.Check{
		"no responses":     Split("s", ninetyTen, map[string]int{}, 0.99),
		"nil counts":       Split("s", ninetyTen, nil, 0.99),
		"no weights":       Split("s", nil, counts, 0.99),
		"all zero weights": Split("s", map[string]float64{"v1": 0}, counts, 0.99),
		"negative weight":  Split("s", map[string]float64{"v1": -1, "v2": 2}, counts, 0.99),
		"NaN weight":       Split("s", map[string]float64{"v1": math.NaN()}, counts, 0.99),
		"negative count":   Split("s", ninetyTen, map[string]int{"v1": -1}, 0.99),
		"overflow":         Split("s", ninetyTen, map[string]int{"v1": math.MaxInt, "v2": 1}, 0.99),
		"confidence 1":     Split("s", ninetyTen, counts, 1),
		"confidence NaN":   Split("s", ninetyTen, counts, math.NaN()),
	} {
		assert.False(t, c.Passed, name)
		assert.NotEmpty(t, c.Summary, name)
		_, err := json.Marshal(c)
		assert.NoError(t, err, name)
	}
}

func FuzzSplit(f *testing.F) {
	f.Add(90.0, 10.0, 0.0, 4500, 500, 0, 0.999, false)
	f.Add(1.0, 1.0, 1.0, 1, 2, 3, 0.5, true)
	f.Add(0.0, 0.0, 0.0, 0, 0, 0, 0.0, true)
	f.Add(1e308, 1e-308, 5e-324, math.MaxInt, -1, 7, 0.99, true)
	f.Add(math.Inf(1), math.NaN(), -1.0, 1, 1, 1, 2.0, false)
	f.Fuzz(func(t *testing.T, w1, w2, w3 float64, c1, c2, c3 int, conf float64, third bool) {
		weights := map[string]float64{"v1": w1, "v2": w2}
		if third {
			weights["v3"] = w3
		}
		counts := map[string]int{"v1": c1, "v2": c2, "v3": c3}
		c := Split("svc", weights, counts, conf)
		if c.PValue != nil {
			p := *c.PValue
			if !(p >= 0 && p <= 1) {
				t.Fatalf("p-value %v outside [0,1]: %s", p, c.Summary)
			}
			if c.Passed && p < 1-conf {
				t.Fatalf("passed with p=%v < alpha=%v", p, 1-conf)
			}
		}
		if c.Summary == "" {
			t.Fatal("empty summary")
		}
		if _, err := json.Marshal(c); err != nil {
			t.Fatalf("check does not marshal: %v", err)
		}
	})
}

func TestSuccessRate(t *testing.T) {
	c := SuccessRate(5000, 5000, 0.999, 0.999)
	assert.True(t, c.Passed, c.Summary)
	require.NotNil(t, c.PValue)
	assert.Equal(t, 1.0, *c.PValue)
	assert.Equal(t, "success rate", c.Name)
	assert.Equal(t, KindSuccessRate, c.Kind)
	assert.Equal(t, 5000, c.N)
	assert.Contains(t, c.Summary, "Wilson")

	c = SuccessRate(4950, 5000, 0.999, 0.999)
	assert.False(t, c.Passed, c.Summary)
	require.NotNil(t, c.PValue)
	assert.Less(t, *c.PValue, 1e-10)
	assert.InDelta(t, 0.99, c.Observed["rate"], 1e-12)
	assert.Less(t, c.Observed["wilsonHigh"], 0.999)
	assert.Less(t, c.Observed["wilsonLow"], 0.99)
	assert.Equal(t, 0.999, c.Expected["rate"])

	// A few errors, consistent with 99.9%: 7 failures where 5 are expected.
	c = SuccessRate(4993, 5000, 0.999, 0.999)
	assert.True(t, c.Passed, c.Summary)
}

func TestSuccessRateHandComputed(t *testing.T) {
	// X ~ Binomial(10, 0.9):
	//   P[X=10] = 0.9^10           = 0.3486784401
	//   P[X=9]  = 10·0.9^9·0.1     = 0.387420489
	//   P[X=8]  = 45·0.9^8·0.01    = 0.193710244...
	//   P[X<=8] = 1 - P[9] - P[10] = 0.2639010709
	//   P[X<=7] = P[X<=8] - P[8]   = 0.0701908264...
	p8 := 1 - 0.387420489 - 0.3486784401
	p7 := p8 - 45*math.Pow(0.9, 8)*0.01
	c := SuccessRate(8, 10, 0.9, 0.95)
	require.NotNil(t, c.PValue)
	assert.InDelta(t, 0.2639010709, *c.PValue, 1e-10)
	assert.InDelta(t, p8, *c.PValue, 1e-12)
	assert.True(t, c.Passed)

	c = SuccessRate(7, 10, 0.9, 0.95)
	require.NotNil(t, c.PValue)
	assert.InDelta(t, p7, *c.PValue, 1e-12)
	assert.True(t, c.Passed) // 0.070 >= 0.05

	c = SuccessRate(7, 10, 0.9, 0.9)
	assert.False(t, c.Passed) // 0.070 < 0.10
}

func TestSuccessRateWilson(t *testing.T) {
	// 8 of 10 at 95%: the textbook Wilson interval is [0.4902, 0.9433].
	c := SuccessRate(8, 10, 0.5, 0.95)
	assert.InDelta(t, 0.4902, c.Observed["wilsonLow"], 1e-4)
	assert.InDelta(t, 0.9433, c.Observed["wilsonHigh"], 1e-4)
}

func TestSuccessRateInvalid(t *testing.T) {
	c := SuccessRate(0, 0, 0.99, 0.99)
	assert.False(t, c.Passed)
	assert.Equal(t, "no requests", c.Summary)
	assert.Nil(t, c.PValue)

	for name, c := range map[string]reports.Check{
		"more successes than requests": SuccessRate(11, 10, 0.9, 0.99),
		"negative":                     SuccessRate(-1, 10, 0.9, 0.99),
		"min above 1":                  SuccessRate(10, 10, 1.5, 0.99),
		"min NaN":                      SuccessRate(10, 10, math.NaN(), 0.99),
		"confidence 0":                 SuccessRate(10, 10, 0.9, 0),
	} {
		assert.False(t, c.Passed, name)
		_, err := json.Marshal(c)
		assert.NoError(t, err, name)
	}
	// Edge minima are valid.
	assert.True(t, SuccessRate(0, 10, 0, 0.99).Passed)
	assert.True(t, SuccessRate(10, 10, 1, 0.99).Passed)
	assert.False(t, SuccessRate(9, 10, 1, 0.99).Passed)
}

func TestLatency(t *testing.T) {
	obs := reports.Latency{P50: 2, P90: 5, P99: 12, P999: 30, Max: 55, Mean: 3}

	c := Latency(obs, map[string]float64{"p50": 5, "p99": 20, "max": 100}, 5000)
	assert.True(t, c.Passed, c.Summary)
	assert.Equal(t, "latency", c.Name)
	assert.Equal(t, KindLatency, c.Kind)
	assert.Equal(t, 5000, c.N)
	assert.Equal(t, map[string]float64{"p50": 2, "p99": 12, "max": 55}, c.Observed)
	assert.Equal(t, map[string]float64{"p50": 5, "p99": 20, "max": 100}, c.Expected)
	assert.Equal(t, "p50 2.00ms <= 5, p99 12.00ms <= 20, max 55.00ms <= 100; N=5000", c.Summary)

	c = Latency(obs, map[string]float64{"p50": 5, "p999": 25}, 5000)
	assert.False(t, c.Passed, c.Summary)
	assert.Contains(t, c.Summary, "p999 30.00ms > 25 FAIL")

	// Equal to the maximum passes.
	assert.True(t, Latency(obs, map[string]float64{"p90": 5, "mean": 3}, 10).Passed)

	c = Latency(obs, map[string]float64{"p95": 5}, 5000)
	assert.False(t, c.Passed)
	assert.Contains(t, c.Summary, `"p95"`)

	assert.True(t, Latency(obs, nil, 5000).Passed)
	assert.False(t, Latency(obs, map[string]float64{"p50": 5}, 0).Passed)

	c = Latency(reports.Latency{P50: math.NaN()}, map[string]float64{"p50": 5}, 10)
	assert.False(t, c.Passed)
	_, err := json.Marshal(c)
	assert.NoError(t, err)
}

// Lower bounds: "a 504 after about 2 s" is a latency at least 1.9 s.
func TestLatencyWithin(t *testing.T) {
	obs := reports.Latency{P50: 2010, P90: 2030, P99: 2080, P999: 2100, Max: 2150, Mean: 2015}
	c := LatencyWithin(obs, map[string]float64{"p50": 1900}, map[string]float64{"p50": 2500, "max": 3000}, 60)
	assert.True(t, c.Passed, c.Summary)
	assert.Equal(t, "p50 2010.00ms in [1900, 2500], max 2150.00ms <= 3000; N=60", c.Summary)
	assert.Equal(t, map[string]float64{"p50": 2010, "max": 2150}, c.Observed)

	// Below the minimum fails: the timeout fired early, or never applied.
	c = LatencyWithin(reports.Latency{P50: 3, P99: 8}, map[string]float64{"p50": 1900}, nil, 60)
	assert.False(t, c.Passed, c.Summary)
	assert.Equal(t, "p50 3.00ms < 1900 FAIL; N=60", c.Summary)
	assert.Equal(t, map[string]float64{"p50": 1900}, c.Expected)
	// Equal to the minimum passes; above the maximum of a range fails.
	assert.True(t, LatencyWithin(obs, map[string]float64{"p50": 2010}, nil, 60).Passed)
	c = LatencyWithin(obs, map[string]float64{"p99": 1000}, map[string]float64{"p99": 2000}, 60)
	assert.False(t, c.Passed)
	assert.Equal(t, "p99 2080.00ms in [1000, 2000] FAIL; N=60", c.Summary)
	// An unknown key among the minima fails; NaN never passes a minimum.
	assert.False(t, LatencyWithin(obs, map[string]float64{"p95": 1}, nil, 60).Passed)
	assert.False(t, LatencyWithin(reports.Latency{P50: math.NaN()}, map[string]float64{"p50": 1}, nil, 60).Passed)
	assert.False(t, LatencyWithin(obs, map[string]float64{"p50": 1}, nil, 0).Passed, "no requests")
}

func TestShareTwoSidedBinomial(t *testing.T) {
	// 100 of 1000 at an expected 10%: p is large.
	c := Share("status 503", 100, 1000, 0.10, 0.999)
	require.True(t, c.Passed, c.Summary)
	require.Greater(t, *c.PValue, 0.5)
	// 200 of 1000 is far from 10%.
	c = Share("status 503", 200, 1000, 0.10, 0.999)
	require.False(t, c.Passed, c.Summary)
	require.Less(t, *c.PValue, 1e-6)
	// Small exact case: 0 of 10 at share 0.5 gives p = 2 × 0.5^10.
	c = Share("x", 0, 10, 0.5, 0.99)
	require.InDelta(t, 2*math.Pow(0.5, 10), *c.PValue, 1e-12)
	require.False(t, Share("x", 1, 0, 0.5, 0.99).Passed)
}

func TestBounds(t *testing.T) {
	one, ten := 1.0, 10.0
	require.True(t, Bounds("retries payment", "retries", 5, &one, &ten, 100, "retries").Passed)
	require.False(t, Bounds("retries payment", "retries", 0, &one, nil, 100, "retries").Passed)
	require.False(t, Bounds("retries payment", "retries", 11, nil, &ten, 100, "retries").Passed)
}

var twoToOne = map[string]float64{"v1": 66.667, "v2": 33.333}

// A load balancer's split that leans 2.5 points towards a faster pod fails
// the exact test at N=5000 and passes a 5-point tolerance; one 10 points
// off fails both.
func TestSplitWithinTolerance(t *testing.T) {
	lean := sample(3, 5000, 0.642)
	assert.False(t, Split("payment", twoToOne, lean, 0.999).Passed, "the exact test sees the lean")
	c := SplitWithin("payment", twoToOne, lean, 0.999, 5)
	assert.True(t, c.Passed, c.Summary)
	assert.Equal(t, SplitWithinTest, c.Test)
	assert.Contains(t, c.Summary, "within ±5 points")

	far := sample(4, 5000, 0.567)
	c = SplitWithin("payment", twoToOne, far, 0.999, 5)
	assert.False(t, c.Passed, c.Summary)
	require.NotNil(t, c.PValue)
	assert.Less(t, *c.PValue, 1e-6)
	assert.Contains(t, c.Summary, "outside the band")

	// Hand-computed: 3,000 of 5,000 (60%) against 66.667% ± 5: the lower
	// edge 61.667% gives P[X <= 3000] = 0.0087 for X ~ Binomial(5000,
	// 0.61667); times the 4 tests: 0.035.
	c = SplitWithin("payment", twoToOne, map[string]int{"v1": 3000, "v2": 2000}, 0.99, 5)
	require.NotNil(t, c.PValue)
	assert.InDelta(t, 4*distuv.Binomial{N: 5000, P: 0.61667}.CDF(3000), *c.PValue, 1e-4)
	assert.True(t, c.Passed, c.Summary)
}

// At the band's edge a correct mesh fails no more often than 1-confidence.
func TestSplitWithinFalseFailureRate(t *testing.T) {
	failures := 0
	for i := range 200 {
		if !SplitWithin("payment", twoToOne, sample(uint64(2000+i), 5000, 0.66667-0.05), 0.99, 5).Passed {
			failures++
		}
	}
	assert.LessOrEqual(t, failures, 6, "%d of 200 at alpha 0.01", failures)
}

func TestSplitWithinInvalidTolerance(t *testing.T) {
	counts := map[string]int{"v1": 9, "v2": 1}
	for _, tol := range []float64{-1, 100, math.NaN()} {
		c := SplitWithin("s", ninetyTen, counts, 0.99, tol)
		assert.False(t, c.Passed, "%v", tol)
		assert.Contains(t, c.Summary, "invalid tolerance")
	}
}
