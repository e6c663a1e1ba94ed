package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The result files in testdata/results are synthetic runs written by
// synthResult; go test ./reports/ -update rewrites them.
var resultFixtures = map[string]synthOptions{
	"base.json":      {Seed: 1},                // the baseline
	"regressed.json": {Seed: 2, P99Scale: 1.3}, // p99 30% slower, p50 unchanged
	"same.json":      {Seed: 3},                // another run of the baseline's distribution
}

func fixturePath(name string) string { return filepath.Join("testdata", "results", name) }

func readFixture(t *testing.T, name string) *Result {
	t.Helper()
	f, err := os.Open(fixturePath(name))
	require.NoError(t, err, "run go test ./reports/ -update to create %s", fixturePath(name))
	defer f.Close()
	r, err := ReadJSON(f)
	require.NoError(t, err)
	return r
}

// TestResultFixtures keeps the JSON files in testdata/results equal to what
// synthResult writes, so that they can always be regenerated.
func TestResultFixtures(t *testing.T) {
	for name, o := range resultFixtures {
		var b bytes.Buffer
		require.NoError(t, WriteJSON(&b, synthResult(o)))
		path := fixturePath(name)
		if *update {
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
			require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
		}
		want, err := os.ReadFile(path)
		require.NoError(t, err, "run go test ./reports/ -update to create %s", path)
		assert.Equal(t, string(want), b.String(), "%s differs from synthResult; rerun with -update if the change is intended", path)
	}
}

func TestCompareMarkdownGolden(t *testing.T) {
	c := Compare(readFixture(t, "base.json"), readFixture(t, "regressed.json"), DefaultCompareOptions())
	var b bytes.Buffer
	require.NoError(t, CompareMarkdown(&b, c))
	golden(t, "compare.md", b.Bytes())
	out := b.String()
	assert.True(t, strings.HasPrefix(out, "# meshbench compare: REGRESSION in p99 latency\n"), out)
	assert.Contains(t, out, "2000 resamples")
	assert.Contains(t, out, "95% confidence interval")
	assert.Contains(t, out, "| **REGRESSION** |")
	assert.Contains(t, out, TestTwoProportionZ)
	assert.Contains(t, out, TestBootstrapRatio)
}

// TestCompareFlagsPlantedRegression: a run whose every second has a 30%
// higher p99 is flagged at the default 10% threshold, and its unchanged p50
// and success rate are not.
func TestCompareFlagsPlantedRegression(t *testing.T) {
	// The fixture pair, as in the golden file.
	c := Compare(readFixture(t, "base.json"), readFixture(t, "regressed.json"), DefaultCompareOptions())
	assert.True(t, c.Regression)
	assert.True(t, c.Rows[1].Regression)
	assert.False(t, c.Rows[0].Regression)
	assert.False(t, c.Rows[2].Regression)

	// Across seeds. With two minutes of per-second p99 whose log has a
	// standard deviation of about 0.33, the interval is about ±8%, so a 30%
	// shift clears 1.10 in roughly 96% of pairs (192 of 200 in a trial run);
	// a few misses are the test's power, not a bug.
	const trials = 20
	flagged := 0
	for seed := uint64(1); seed <= trials; seed++ {
		base := synthResult(synthOptions{Seed: 2 * seed})
		cur := synthResult(synthOptions{Seed: 2*seed + 1, P99Scale: 1.3})
		c := Compare(base, cur, DefaultCompareOptions())
		require.Len(t, c.Rows, 3)
		p50, p99, sr := c.Rows[0], c.Rows[1], c.Rows[2]
		assert.Equal(t, "p99 latency", p99.Metric)
		if p99.Regression {
			flagged++
			assert.Equal(t, VerdictRegression, p99.Verdict)
			assert.Greater(t, p99.CILow, 1.1)
		} else {
			t.Logf("seed %d: planted regression not flagged, p99 CI ×%.3f – ×%.3f", seed, p99.CILow, p99.CIHigh)
			assert.Greater(t, p99.CIHigh, 1.1, "the interval still reaches past the threshold")
		}
		assert.InDelta(t, 0.3, p99.Change, 0.15, "seed %d", seed)
		assert.False(t, p50.Regression, "seed %d: p50 CI ×%.3f – ×%.3f", seed, p50.CILow, p50.CIHigh)
		assert.False(t, sr.Regression, "seed %d", seed)
	}
	assert.GreaterOrEqual(t, flagged, trials-2, "a 30%% p99 regression is flagged in most runs")
}

// TestCompareSameDistribution: two runs drawn from the same distribution
// with different seeds are not flagged.
func TestCompareSameDistribution(t *testing.T) {
	c := Compare(readFixture(t, "base.json"), readFixture(t, "same.json"), DefaultCompareOptions())
	assert.False(t, c.Regression)
	for _, r := range c.Rows {
		assert.Contains(t, []string{VerdictNoChange, VerdictWithin, VerdictImproved}, r.Verdict, r.Metric)
	}

	const trials = 40
	covered, successAlarms := 0, 0
	for seed := uint64(1); seed <= trials; seed++ {
		base := synthResult(synthOptions{Seed: 100 + 2*seed})
		cur := synthResult(synthOptions{Seed: 101 + 2*seed})
		c := Compare(base, cur, DefaultCompareOptions())
		// Latency needs its whole interval past ×1.10: never by chance here.
		assert.False(t, c.Rows[0].Regression, "seed %d p50", seed)
		assert.False(t, c.Rows[1].Regression, "seed %d p99", seed)
		for _, r := range c.Rows {
			assert.NotEqual(t, VerdictInsufficient, r.Verdict)
		}
		if p99 := c.Rows[1]; p99.CILow <= 1 && 1 <= p99.CIHigh {
			covered++
		}
		if c.Rows[2].Regression {
			successAlarms++
		}
	}
	// A 95% interval holds the true ratio 1 about 38 times in 40.
	assert.GreaterOrEqual(t, covered, 34)
	// The z-test at 95% confidence raises a false alarm in about 1 of 20
	// comparisons of identical runs (8 of 200 in a trial run).
	assert.LessOrEqual(t, successAlarms, 5)
}

func TestCompareThreshold(t *testing.T) {
	base := synthResult(synthOptions{Seed: 10})
	cur := synthResult(synthOptions{Seed: 11, P99Scale: 1.3})
	opt := DefaultCompareOptions()
	opt.Threshold = 0.5 // 30% slower is real, but within 50%
	c := Compare(base, cur, opt)
	assert.False(t, c.Regression)
	assert.Equal(t, VerdictWithin, c.Rows[1].Verdict)

	// And faster is an improvement.
	c = Compare(cur, base, DefaultCompareOptions())
	assert.False(t, c.Regression)
	assert.Equal(t, VerdictImproved, c.Rows[1].Verdict)
}

func TestCompareDeterministic(t *testing.T) {
	base, cur := synthResult(synthOptions{Seed: 5}), synthResult(synthOptions{Seed: 6, P99Scale: 1.1})
	a := Compare(base, cur, DefaultCompareOptions())
	b := Compare(base, cur, CompareOptions{Threshold: 0.1}) // defaults filled in
	assert.Equal(t, a, b)
	opt := DefaultCompareOptions()
	opt.Seed = 99
	c := Compare(base, cur, opt)
	assert.NotEqual(t, a.Rows[1].CILow, c.Rows[1].CILow, "the seed drives the resampling")
	assert.InDelta(t, a.Rows[1].CILow, c.Rows[1].CILow, 0.03, "but not much")
}

func withSuccess(n, ok int) *Result {
	r := synthResult(synthOptions{Seed: 1, Seconds: 10})
	r.Load.Requests = n
	r.Status.SuccessRate = float64(ok) / float64(n)
	return r
}

func TestCompareSuccessRate(t *testing.T) {
	// By hand: p1 = .99, p2 = .97, pooled .98, se = sqrt(.98·.02·(2/1000)) = .0062610,
	// z = 3.1944, one-sided p = 1-Φ(3.1944) = 0.000700.
	c := Compare(withSuccess(1000, 990), withSuccess(1000, 970), DefaultCompareOptions())
	sr := c.Rows[2]
	assert.Equal(t, "success rate", sr.Metric)
	require.NotNil(t, sr.PValue)
	assert.InDelta(t, 0.000700, *sr.PValue, 0.00001)
	assert.InDelta(t, -0.02, sr.Change, 1e-12)
	assert.True(t, sr.Regression)
	assert.Equal(t, 1000, sr.NBase)

	// 5 failures instead of 2 in 5000 is not statistically real.
	sr = Compare(withSuccess(5000, 4998), withSuccess(5000, 4995), DefaultCompareOptions()).Rows[2]
	assert.Equal(t, VerdictNoChange, sr.Verdict)

	// Real but within a threshold of +1000% errors: 1% → 3% is only +200%.
	opt := DefaultCompareOptions()
	opt.Threshold = 10
	sr = Compare(withSuccess(1000, 990), withSuccess(1000, 970), opt).Rows[2]
	assert.Equal(t, VerdictWithin, sr.Verdict)
	assert.False(t, sr.Regression)

	// Errors appearing where there were none, at scale.
	sr = Compare(withSuccess(20000, 20000), withSuccess(20000, 19980), DefaultCompareOptions()).Rows[2]
	assert.True(t, sr.Regression)

	// Fewer errors: improved.
	sr = Compare(withSuccess(1000, 970), withSuccess(1000, 990), DefaultCompareOptions()).Rows[2]
	assert.Equal(t, VerdictImproved, sr.Verdict)

	// Both perfect.
	sr = Compare(withSuccess(100, 100), withSuccess(100, 100), DefaultCompareOptions()).Rows[2]
	assert.Equal(t, VerdictNoChange, sr.Verdict)
	assert.Equal(t, 1.0, *sr.PValue)
}

func TestCompareInsufficient(t *testing.T) {
	short := synthResult(synthOptions{Seed: 1, Seconds: 3})
	long := synthResult(synthOptions{Seed: 2, P99Scale: 3})
	c := Compare(short, long, DefaultCompareOptions())
	assert.Equal(t, VerdictInsufficient, c.Rows[0].Verdict)
	assert.Equal(t, VerdictInsufficient, c.Rows[1].Verdict)
	assert.False(t, c.Rows[1].Regression)
	require.NotEmpty(t, c.Notes)
	assert.Contains(t, c.Notes[len(c.Notes)-1], "at least 5 seconds")

	broken := &Result{Scenario: "canary-90-10", Error: "mesh did not start"}
	c = Compare(long, broken, DefaultCompareOptions())
	assert.False(t, c.Regression)
	for _, r := range c.Rows {
		assert.Equal(t, VerdictInsufficient, r.Verdict, r.Metric)
	}
	var b bytes.Buffer
	require.NoError(t, CompareMarkdown(&b, c))
	assert.Contains(t, b.String(), "| p99 latency |")

	other := synthResult(synthOptions{Seed: 4})
	other.Scenario, other.Load.TargetRate = "header-routing", 400
	c = Compare(long, other, DefaultCompareOptions())
	assert.Len(t, c.Notes, 2)
}
