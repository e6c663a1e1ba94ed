package stats

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// ChiSquareGoodnessOfFit is Pearson's chi-square goodness-of-fit test of
// observed counts against expected counts over the same cells, with
// len-1 degrees of freedom. A cell expected to be empty that is not makes
// the statistic +Inf (an impossible observation, p = 0); one that is empty
// adds nothing. The approximation is usually trusted when every expected
// count is at least 5.
func ChiSquareGoodnessOfFit(observed, expected []float64) (chi2, p float64) {
	for i, e := range expected {
		if e == 0 {
			if observed[i] > 0 {
				chi2 = math.Inf(1)
			}
			continue
		}
		d := observed[i] - e
		chi2 += d * d / e
	}
	if math.IsNaN(chi2) || math.IsInf(chi2, 1) {
		return chi2, 0
	}
	return chi2, pValue(distuv.ChiSquared{K: float64(len(expected) - 1)}.Survival(chi2))
}
