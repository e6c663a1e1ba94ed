package stats

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// CriticalZ is z₁₋α/₂, the standard normal quantile that leaves alpha/2 in
// each tail: a two-sided interval at confidence 1-alpha spans ±CriticalZ
// standard errors.
func CriticalZ(alpha float64) float64 { return distuv.UnitNormal.Quantile(1 - alpha/2) }

// NormalQuantile is Φ⁻¹(p), the standard normal quantile.
func NormalQuantile(p float64) float64 { return distuv.UnitNormal.Quantile(p) }

// TwoProportionZTest compares the share k2/n2 with k1/n1 by the pooled
// two-proportion z-test and returns its two one-sided p-values: fell for
// H1 "the second share is lower", rose for H1 "it is higher". When the
// pooled standard error is 0 (both samples all successes or all failures)
// nothing differs and both are 1. It needs n1, n2 > 0.
func TwoProportionZTest(k1, n1, k2, n2 int) (fell, rose float64) {
	p1, p2 := float64(k1)/float64(n1), float64(k2)/float64(n2)
	pool := float64(k1+k2) / float64(n1+n2)
	se := math.Sqrt(pool * (1 - pool) * (1/float64(n1) + 1/float64(n2)))
	if se == 0 {
		return 1, 1
	}
	z := (p1 - p2) / se
	return 0.5 * math.Erfc(z/math.Sqrt2), 0.5 * math.Erfc(-z/math.Sqrt2)
}
