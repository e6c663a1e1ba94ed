// Package stats holds every statistical routine meshbench judges with:
// normal quantiles, exact binomial tests and the Wilson interval, Pearson's
// chi-square goodness of fit, a two-proportion z-test, intervals for a
// mean and a quantile, bootstrap helpers and sample-size planning.
//
// Confidence is always given as alpha = 1-confidence, and every critical
// value comes from gonum's distributions, so no z is written down anywhere.
//
// P-values are always in [0, 1]. One that cannot be computed (NaN from odd
// input) is reported as 0: a check built on it then fails rather than pass
// on data it could not judge.
package stats

import "math"

// pValue clamps p to [0, 1] and turns NaN into 0.
func pValue(p float64) float64 {
	switch {
	case math.IsNaN(p), p < 0:
		return 0
	case p > 1:
		return 1
	}
	return p
}

func clamp01(x float64) float64 {
	switch {
	case x < 0:
		return 0
	case x > 1:
		return 1
	}
	return x
}
