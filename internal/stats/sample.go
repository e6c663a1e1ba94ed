package stats

import (
	"math"
	"math/rand/v2"
)

// Mean is the arithmetic mean of xs, 0 when there are none.
func Mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// MeanCI is the mean of xs with its normal-approximation interval at
// confidence 1-alpha: ±CriticalZ(alpha) standard errors, the standard
// deviation taken over the whole sample (latency samples number thousands,
// where the t quantile and n-1 change nothing that shows).
func MeanCI(xs []float64, alpha float64) (mean, lo, hi float64) {
	n := float64(len(xs))
	sum, sq := 0.0, 0.0
	for _, x := range xs {
		sum += x
		sq += x * x
	}
	mean = sum / n
	sd := math.Sqrt(math.Max(0, sq/n-mean*mean))
	z := CriticalZ(alpha)
	return mean, mean - z*sd/math.Sqrt(n), mean + z*sd/math.Sqrt(n)
}

// QuantileCI is the q-quantile of sorted (non-empty) xs, the ⌈nq⌉-th
// smallest, with a distribution-free interval at confidence 1-alpha: the
// order statistics whose ranks bracket nq by CriticalZ(alpha) binomial
// standard deviations, √(nq(1-q)). It assumes nothing about the latency
// distribution, which is skewed and often multi-modal.
func QuantileCI(sorted []float64, q, alpha float64) (v, lo, hi float64) {
	n := float64(len(sorted))
	at := func(rank float64) float64 {
		i := int(math.Min(math.Max(math.Ceil(rank)-1, 0), n-1))
		return sorted[i]
	}
	half := CriticalZ(alpha) * math.Sqrt(n*q*(1-q))
	return at(n * q), at(n*q - half), at(n*q + half + 1)
}

// QuantileSorted is the q-quantile of sorted (non-empty) xs, interpolating
// linearly between order statistics (Hyndman and Fan's type 7, R's
// default).
func QuantileSorted(sorted []float64, q float64) float64 {
	h := q * float64(len(sorted)-1)
	i := int(math.Floor(h))
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (h-float64(i))*(sorted[i+1]-sorted[i])
}

// ResampleMean is the mean of one bootstrap resample of xs: len(xs) draws
// with replacement.
func ResampleMean(xs []float64, rng *rand.Rand) float64 {
	s := 0.0
	for range xs {
		s += xs[rng.IntN(len(xs))]
	}
	return s / float64(len(xs))
}
