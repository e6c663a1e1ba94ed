package stats

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// The exact binomial tests take k successes in n trials and a hypothesised
// success probability p0, which is clamped to [0, 1] so that a band's edge
// beyond it (a share plus a tolerance) means the certain outcome.

// BinomialLessP is the p-value of the one-sided exact binomial test of
// H0 p >= p0 against p < p0: P[X <= k] for X ~ Binomial(n, p0).
func BinomialLessP(k, n int, p0 float64) float64 {
	return pValue(distuv.Binomial{N: float64(n), P: clamp01(p0)}.CDF(float64(k)))
}

// BinomialGreaterP is the p-value of the one-sided exact binomial test of
// H0 p <= p0 against p > p0: P[X >= k] for X ~ Binomial(n, p0).
func BinomialGreaterP(k, n int, p0 float64) float64 {
	if k <= 0 {
		return 1
	}
	return pValue(distuv.Binomial{N: float64(n), P: clamp01(p0)}.Survival(float64(k - 1)))
}

// BinomialTwoSidedP is the p-value of the two-sided exact binomial test of
// H0 p = p0 by the doubling rule: twice the smaller tail, capped at 1. For
// p0 = ½ it equals R's binom.test; otherwise R sums the probabilities of
// the outcomes no more likely than k, which can differ.
func BinomialTwoSidedP(k, n int, p0 float64) float64 {
	return pValue(2 * math.Min(BinomialLessP(k, n, p0), BinomialGreaterP(k, n, p0)))
}

// Bonferroni is the Bonferroni-adjusted p-value of one of tests tests,
// min(1, tests·p): rejecting where it is below alpha keeps the chance that
// any of the tests rejects a true hypothesis at most alpha.
func Bonferroni(p float64, tests int) float64 { return math.Min(1, float64(tests)*p) }

// WilsonInterval is the Wilson score interval for the success probability
// after k successes in n > 0 trials, at confidence 1-alpha. Unlike the
// normal (Wald) interval it stays within [0, 1] and keeps its coverage
// near 0 and 1, where success rates live.
func WilsonInterval(k, n int, alpha float64) (lo, hi float64) {
	z := CriticalZ(alpha)
	nf := float64(n)
	p := float64(k) / nf
	z2 := z * z
	den := 1 + z2/nf
	center := (p + z2/(2*nf)) / den
	half := z / den * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return clamp01(center - half), clamp01(center + half)
}

// ShareSampleSize is how many trials a two-sided test at level alpha needs
// to tell a share p0 from p1 with the given power, by the normal
// approximation to the binomial:
// n = ((z₁₋α/₂·√(p₀q₀) + z_power·√(p₁q₁)) / |p₁-p₀|)².
func ShareSampleSize(p0, p1, alpha, power float64) int {
	za := CriticalZ(alpha)
	zb := NormalQuantile(power)
	n := math.Pow((za*math.Sqrt(p0*(1-p0))+zb*math.Sqrt(p1*(1-p1)))/math.Abs(p1-p0), 2)
	return int(math.Ceil(n))
}
