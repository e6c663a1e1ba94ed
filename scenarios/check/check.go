// Package check holds the statistical checks that judge a scenario run.
//
// Every check is a pure function of the measured numbers and returns a
// reports.Check: a verdict, the test used, the sample size, a p-value where
// the test gives one and a one-line summary a person can read. The checks
// never panic on odd input (negative counts, NaN weights, an out-of-range
// confidence); they fail with a summary that says what was wrong instead.
//
// Hypothesis tests are set up so that the null hypothesis is "the mesh does
// what it was configured to do". A check fails only when the data reject that
// at the given confidence, so a correct mesh fails a check with probability
// 1-confidence and no more. The tests themselves live in internal/stats;
// this package turns their p-values into verdicts and summaries.
package check

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/meshbench/meshbench/internal/stats"
	"github.com/meshbench/meshbench/reports"
)

// Kinds of check, as stored in reports.Check.Kind.
const (
	// KindSplit is the kind of a traffic split check.
	KindSplit = "split"
	// KindSuccessRate is the kind of a success rate check.
	KindSuccessRate = "successRate"
	// KindLatency is the kind of a latency check.
	KindLatency = "latency"
)

// Names of the tests, as stored in reports.Check.Test.
const (
	// SplitTest is the test Split uses when at least two versions carry weight.
	SplitTest = "Pearson chi-square goodness of fit, df=k-1"
	// SplitWithinTest is the test SplitWithin uses with a tolerance.
	SplitWithinTest = "one-sided exact binomial tests of each share against its weight ± the tolerance, Bonferroni over the 2k tests"
	// SplitSingleTest is what Split does when only one version carries weight.
	SplitSingleTest = "single weighted version: every response must come from it"
	// SuccessRateTest is the test SuccessRate uses.
	SuccessRateTest = "one-sided exact binomial test, H0: rate >= min"
	// LatencyTest is what Latency does.
	LatencyTest = "observed percentiles <= maxima"
)

// LatencyKeys are the keys Latency understands in its maxima, in the order
// it reports them.
var LatencyKeys = []string{"p50", "p90", "p99", "p999", "max", "mean"}

// minExpected is the smallest expected cell count at which the chi-square
// approximation is usually trusted.
const minExpected = 5

// Split judges an observed traffic split against configured weights with
// Pearson's chi-square goodness-of-fit test (df = k-1, where k is the number
// of versions with a positive weight). It passes when the p-value is at least
// 1-confidence.
//
// weights maps a version to its weight on any positive scale; counts maps a
// version to the number of responses it served. Traffic to a version that is
// absent from weights, or whose weight is 0, fails the check outright (the
// observation is impossible under the configured split, so p = 0). With a
// single weighted version the check passes iff every response came from it.
// When some expected count is below 5 the test is still computed but the
// summary notes that it is weak.
//
// Observed and Expected hold each version's share in percent.
func Split(service string, weights map[string]float64, counts map[string]int, confidence float64) reports.Check {
	return SplitWithin(service, weights, counts, confidence, 0)
}

// SplitWithin is Split with an equivalence margin: with tolerance > 0
// (percentage points) the null hypothesis is that every weighted version's
// share lies within tolerance of its weight's share, and the check fails
// only when the data show at the given confidence that some share lies
// outside that band: for each version, one-sided exact binomial tests
// against the band's two edges, Bonferroni-corrected over all of them.
// It is for splits a load balancer makes, where the shares follow the pods'
// speed as well as their count (Envoy's LEAST_REQUEST picks the less busy
// of two hosts), not for weighted routes, which Envoy draws at random and
// Split judges exactly. tolerance 0 is Split.
func SplitWithin(service string, weights map[string]float64, counts map[string]int, confidence, tolerance float64) reports.Check {
	c := reports.Check{
		Name: "split " + service,
		Kind: KindSplit,
		Test: SplitTest,
	}
	alpha, ok := alphaOf(confidence)
	if !ok {
		return fail(c, fmt.Sprintf("%s: invalid confidence %v, want 0 < confidence < 1", service, confidence))
	}
	c.Confidence = confidence

	// Validate and normalise the weights. Dividing by the largest weight first
	// keeps the sum finite for any finite input.
	maxW := 0.0
	for v, w := range weights {
		if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
			return fail(c, fmt.Sprintf("%s: invalid weight %v for version %q", service, w, v))
		}
		maxW = math.Max(maxW, w)
	}
	if maxW == 0 {
		return fail(c, fmt.Sprintf("%s: no version has a positive weight", service))
	}
	share := make(map[string]float64, len(weights)) // fraction in [0,1]
	sumW := 0.0
	for v, w := range weights {
		share[v] = w / maxW
		sumW += share[v]
	}
	var weighted []string // versions with positive weight
	for v := range share {
		share[v] /= sumW
		if weights[v] > 0 {
			weighted = append(weighted, v)
		}
	}
	sort.Strings(weighted)

	// Validate the counts.
	n := 0
	for v, x := range counts {
		if x < 0 {
			return fail(c, fmt.Sprintf("%s: negative count %d for version %q", service, x, v))
		}
		if n > math.MaxInt-x {
			return fail(c, fmt.Sprintf("%s: counts overflow", service))
		}
		n += x
	}
	c.N = n

	versions := unionKeys(weights, counts)
	c.Expected = make(map[string]float64, len(versions))
	for _, v := range versions {
		c.Expected[v] = 100 * share[v]
	}
	if n == 0 {
		return fail(c, fmt.Sprintf("%s: no responses", service))
	}
	c.Observed = make(map[string]float64, len(versions))
	for _, v := range versions {
		c.Observed[v] = 100 * float64(counts[v]) / float64(n)
	}

	// Traffic where no weight sends it.
	var stray []string
	for _, v := range versions {
		if counts[v] == 0 {
			continue
		}
		if w, ok := weights[v]; !ok {
			stray = append(stray, fmt.Sprintf("%s has no weight but served %d", v, counts[v]))
		} else if w == 0 {
			stray = append(stray, fmt.Sprintf("%s has weight 0 but served %d", v, counts[v]))
		}
	}
	if len(stray) > 0 {
		if len(weighted) == 1 {
			c.Test = SplitSingleTest
		}
		c.PValue = ptr(0)
		return fail(c, fmt.Sprintf("%s: %s; %s; N=%d, p=0 < alpha=%s",
			service, shares(versions, c.Observed, c.Expected), strings.Join(stray, ", "), n, fmtP(alpha)))
	}

	if len(weighted) == 1 {
		// All counts are on the single weighted version, or we failed above.
		c.Test = SplitSingleTest
		c.Passed = true
		c.PValue = ptr(1)
		c.Summary = fmt.Sprintf("%s: all %d responses from %s, the only weighted version", service, n, weighted[0])
		return c
	}

	if tolerance != 0 {
		return splitEquivalence(c, service, versions, weighted, share, counts, n, alpha, tolerance)
	}

	observed := make([]float64, len(weighted))
	expected := make([]float64, len(weighted))
	weak := false
	for i, v := range weighted {
		observed[i] = float64(counts[v])
		// A positive weight negligible next to the others expects 0.
		expected[i] = float64(n) * share[v]
		if expected[i] > 0 && expected[i] < minExpected {
			weak = true
		}
	}
	chi2, p := stats.ChiSquareGoodnessOfFit(observed, expected)
	c.PValue = ptr(p)
	c.Passed = p >= alpha

	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s; N=%d, chi2=%.2f, p=%s %s alpha=%s",
		service, shares(versions, c.Observed, c.Expected), n, chi2, fmtP(p), pcmp(c.Passed), fmtP(alpha))
	if weak {
		fmt.Fprintf(&b, " (weak test: an expected count is below %d)", minExpected)
	}
	c.Summary = b.String()
	return c
}

// splitEquivalence is SplitWithin's test with a positive tolerance.
func splitEquivalence(c reports.Check, service string, versions, weighted []string, share map[string]float64, counts map[string]int, n int, alpha, tolerance float64) reports.Check {
	c.Test = SplitWithinTest
	if !(tolerance > 0 && tolerance < 100) {
		return fail(c, fmt.Sprintf("%s: invalid tolerance %v, want 0 < tolerance < 100 percentage points", service, tolerance))
	}
	tol := tolerance / 100
	tests := 2 * len(weighted)
	p, worst := 1.0, ""
	for _, v := range weighted {
		k := counts[v]
		// P[X >= k] under the band's upper edge, P[X <= k] under its lower one.
		above := stats.BinomialGreaterP(k, n, share[v]+tol)
		below := stats.BinomialLessP(k, n, share[v]-tol)
		pv := stats.Bonferroni(math.Min(above, below), tests)
		if pv < p {
			p, worst = pv, v
		}
	}
	c.PValue = ptr(p)
	c.Passed = p >= alpha
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s; N=%d, each share within ±%s points: p=%s %s alpha=%s",
		service, shares(versions, c.Observed, c.Expected), n, fmtNum(tolerance, 3), fmtP(p), pcmp(c.Passed), fmtP(alpha))
	if !c.Passed {
		fmt.Fprintf(&b, " (%s outside the band)", worst)
	}
	c.Summary = b.String()
	return c
}

// SuccessRate judges the share of successful requests against a minimum with
// a one-sided exact binomial test of H0: rate >= min. The p-value is
// P[X <= successes] for X ~ Binomial(n, min); the check fails when
// p < 1-confidence, that is when the data show at that confidence that the
// rate is below min. The summary also gives a two-sided Wilson score interval
// for the rate at the same confidence. n == 0 fails ("no requests").
//
// Observed holds "rate", "wilsonLow" and "wilsonHigh" and Expected holds
// "rate" (min), all as fractions in [0,1].
func SuccessRate(successes, n int, min, confidence float64) reports.Check {
	c := reports.Check{
		Name: "success rate",
		Kind: KindSuccessRate,
		Test: SuccessRateTest,
		N:    max(n, 0),
	}
	alpha, ok := alphaOf(confidence)
	if !ok {
		return fail(c, fmt.Sprintf("invalid confidence %v, want 0 < confidence < 1", confidence))
	}
	c.Confidence = confidence
	if math.IsNaN(min) || min < 0 || min > 1 {
		return fail(c, fmt.Sprintf("invalid minimum success rate %v, want 0 <= min <= 1", min))
	}
	c.Expected = map[string]float64{"rate": min}
	switch {
	case n == 0:
		return fail(c, "no requests")
	case n < 0 || successes < 0 || successes > n:
		return fail(c, fmt.Sprintf("invalid counts: %d successes of %d requests", successes, n))
	}

	rate := float64(successes) / float64(n)
	lo, hi := stats.WilsonInterval(successes, n, alpha)
	c.Observed = map[string]float64{"rate": rate, "wilsonLow": lo, "wilsonHigh": hi}

	p := stats.BinomialLessP(successes, n, min)
	c.PValue = ptr(p)
	c.Passed = p >= alpha
	c.Summary = fmt.Sprintf("%d/%d ok = %s (%s%% Wilson CI %s–%s); H0 rate >= %s: p=%s %s alpha=%s",
		successes, n, fmtPct(rate), fmtNum(100*confidence, 4), fmtPct(lo), fmtPct(hi),
		fmtPct(min), fmtP(p), pcmp(c.Passed), fmtP(alpha))
	return c
}

// Latency compares latency figures in milliseconds against maxima and passes
// iff every figure that has a maximum is at most that maximum. The keys of
// maxMs (and of Observed and Expected in the result) are those in
// LatencyKeys; an unknown key fails the check, as does n == 0 when any
// maximum is set (there is nothing to judge). No maxima at all pass.
func Latency(observed reports.Latency, maxMs map[string]float64, n int) reports.Check {
	return LatencyWithin(observed, nil, maxMs, n)
}

// LatencyWithin is Latency with lower bounds too: each figure with a
// minimum in minMs must be at least it ("a 504 after about 2 s"), each with
// a maximum in maxMs at most it. A key may have either or both.
func LatencyWithin(observed reports.Latency, minMs, maxMs map[string]float64, n int) reports.Check {
	c := reports.Check{
		Name: "latency",
		Kind: KindLatency,
		Test: LatencyTest,
		N:    max(n, 0),
	}
	values := map[string]float64{
		"p50": observed.P50, "p90": observed.P90, "p99": observed.P99,
		"p999": observed.P999, "max": observed.Max, "mean": observed.Mean,
	}
	var unknown []string
	for _, m := range []map[string]float64{minMs, maxMs} {
		for k := range m {
			if _, ok := values[k]; !ok && !slices.Contains(unknown, strconv.Quote(k)) {
				unknown = append(unknown, strconv.Quote(k))
			}
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fail(c, fmt.Sprintf("unknown latency key %s, want one of %s",
			strings.Join(unknown, ", "), strings.Join(LatencyKeys, ", ")))
	}
	if len(maxMs) == 0 && len(minMs) == 0 {
		c.Passed = true
		c.Summary = "no latency limits set"
		return c
	}
	if n <= 0 {
		return fail(c, "no requests")
	}

	c.Observed = map[string]float64{}
	c.Expected = map[string]float64{}
	c.Passed = true
	var parts []string
	for _, k := range LatencyKeys {
		lo, hasLo := minMs[k]
		limit, hasHi := maxMs[k]
		if !hasLo && !hasHi {
			continue
		}
		v := values[k]
		if isFinite(v) {
			c.Observed[k] = v
		}
		if hasHi && isFinite(limit) {
			c.Expected[k] = limit
		} else if hasLo && isFinite(lo) {
			c.Expected[k] = lo
		}
		// Comparisons are false for NaN on either side.
		goodLo, goodHi := !hasLo || v >= lo, !hasHi || v <= limit
		good := goodLo && goodHi
		if !good {
			c.Passed = false
		}
		var part string
		switch {
		case hasLo && hasHi:
			part = fmt.Sprintf("%s %.2fms in [%s, %s]", k, v, fmtNum(lo, 3), fmtNum(limit, 3))
		case hasLo:
			part = fmt.Sprintf("%s %.2fms %s %s", k, v, gcmp(good), fmtNum(lo, 3))
		default:
			part = fmt.Sprintf("%s %.2fms %s %s", k, v, lcmp(good), fmtNum(limit, 3))
		}
		if !good {
			part += " FAIL"
		}
		parts = append(parts, part)
	}
	c.Summary = fmt.Sprintf("%s; N=%d", strings.Join(parts, ", "), n)
	return c
}

// alphaOf returns 1-confidence and whether confidence is usable.
func alphaOf(confidence float64) (float64, bool) {
	if !(confidence > 0 && confidence < 1) {
		return 0, false
	}
	return 1 - confidence, true
}

func fail(c reports.Check, summary string) reports.Check {
	c.Passed = false
	c.Summary = summary
	return c
}

// shares formats "v1 89.7% (want 90), v2 10.3% (want 10)".
func shares(versions []string, observed, expected map[string]float64) string {
	parts := make([]string, len(versions))
	for i, v := range versions {
		parts[i] = fmt.Sprintf("%s %.1f%% (want %s)", v, observed[v], fmtNum(expected[v], 2))
	}
	return strings.Join(parts, ", ")
}

func unionKeys(a map[string]float64, b map[string]int) []string {
	set := make(map[string]bool, len(a)+len(b))
	for k := range a {
		set[k] = true
	}
	for k := range b {
		set[k] = true
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// pcmp is the comparison of a p-value with alpha for a verdict.
func pcmp(passed bool) string {
	if passed {
		return ">="
	}
	return "<"
}

// lcmp is the comparison of a measured value with its maximum for a verdict.
// gcmp is the comparison a lower bound passed (>=) or failed (<) with.
func gcmp(passed bool) string {
	if passed {
		return ">="
	}
	return "<"
}

func lcmp(passed bool) string {
	if passed {
		return "<="
	}
	return ">"
}

// fmtNum formats x rounded to at most digits decimals, without trailing zeros.
func fmtNum(x float64, digits int) string {
	if !isFinite(x) {
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	s := math.Pow(10, float64(digits))
	r := math.Round(x*s) / s
	if !isFinite(r) { // x*s overflowed
		r = x
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// fmtPct formats a fraction as a percentage with up to 3 decimals.
func fmtPct(x float64) string { return fmtNum(100*x, 3) + "%" }

// fmtP formats a probability with 3 significant digits.
func fmtP(p float64) string { return strconv.FormatFloat(p, 'g', 3, 64) }

func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func ptr(x float64) *float64 { return &x }
