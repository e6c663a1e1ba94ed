package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Reference values are R's, each checkable by the closed form beside it.

func TestCriticalZ(t *testing.T) {
	for _, tc := range []struct {
		alpha, want float64
	}{
		{0.05, 1.959963984540054}, // qnorm(0.975)
		{0.01, 2.575829303548901}, // qnorm(0.995): the z once written as 2.576
		{1e-6, 4.891638475698},    // qnorm(1 - 5e-7)
	} {
		z := CriticalZ(tc.alpha)
		assert.InDelta(t, tc.want, z, 1e-9, "alpha %g", tc.alpha)
		// Closed form: the upper tail beyond z is alpha/2, 1-Φ(z) = erfc(z/√2)/2.
		assert.InDelta(t, tc.alpha/2, math.Erfc(z/math.Sqrt2)/2, tc.alpha*1e-9, "alpha %g", tc.alpha)
	}
	assert.InDelta(t, 0.8416212335729143, NormalQuantile(0.8), 1e-12) // qnorm(0.8)
}

func TestBinomialTests(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		k, n                   int
		p0                     float64
		less, greater, twoSide float64
	}{
		// binom.test(7, 10): P[X <= 7] = 1 - (45+10+1)/1024, P[X >= 7] =
		// (120+45+10+1)/1024, and at p0 = ½ R's two-sided p-value is the
		// doubled tail, 0.34375.
		{"7 of 10 at 1/2", 7, 10, 0.5, 968.0 / 1024, 176.0 / 1024, 352.0 / 1024},
		// binom.test(0, 20, 0.05, alternative = "less"): 0.95^20; X >= 0 is certain.
		{"0 of 20 at 0.05", 0, 20, 0.05, math.Pow(0.95, 20), 1, 2 * math.Pow(0.95, 20)},
		// binom.test(20, 20, 0.9, alternative = "greater"): 0.9^20.
		{"20 of 20 at 0.9", 20, 20, 0.9, 1, math.Pow(0.9, 20), 2 * math.Pow(0.9, 20)},
		// binom.test(1, 100, 0.1, alternative = "less"): 0.9^100 + 100·0.1·0.9^99.
		{"1 of 100 at 0.1", 1, 100, 0.1, math.Pow(0.9, 100) + 10*math.Pow(0.9, 99), 1 - math.Pow(0.9, 100),
			2 * (math.Pow(0.9, 100) + 10*math.Pow(0.9, 99))},
		// A band's edge beyond [0, 1] is the certain outcome there.
		{"p0 below 0", 3, 10, -0.1, 1, 0, 0},
		{"p0 above 1", 3, 10, 1.2, 0, 1, 0},
		// A p-value that cannot be computed rejects.
		{"NaN p0", 3, 10, math.NaN(), 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.InDelta(t, tc.less, BinomialLessP(tc.k, tc.n, tc.p0), 1e-12, "less")
			assert.InDelta(t, tc.greater, BinomialGreaterP(tc.k, tc.n, tc.p0), 1e-12, "greater")
			assert.InDelta(t, tc.twoSide, BinomialTwoSidedP(tc.k, tc.n, tc.p0), 1e-12, "two-sided")
		})
	}
}

func TestBonferroni(t *testing.T) {
	assert.InDelta(t, 0.04, Bonferroni(0.01, 4), 1e-15)
	assert.Equal(t, 1.0, Bonferroni(0.3, 4))
	assert.Equal(t, 0.0, Bonferroni(0, 4))
}

func TestWilsonInterval(t *testing.T) {
	z2 := math.Pow(CriticalZ(0.05), 2)
	for _, tc := range []struct {
		name   string
		k, n   int
		lo, hi float64
	}{
		// prop.test(7, 10, correct = FALSE)$conf.int.
		{"7 of 10", 7, 10, 0.3967781474611454, 0.8922087325936989},
		// With k = 0 the interval is [0, z²/(n+z²)], with k = n [n/(n+z²), 1].
		{"none of 10", 0, 10, 0, z2 / (10 + z2)},
		{"all of 10", 10, 10, 10 / (10 + z2), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi := WilsonInterval(tc.k, tc.n, 0.05)
			assert.InDelta(t, tc.lo, lo, 1e-9)
			assert.InDelta(t, tc.hi, hi, 1e-9)
		})
	}
}

func TestChiSquareGoodnessOfFit(t *testing.T) {
	for _, tc := range []struct {
		name               string
		observed, expected []float64
		chi2, p            float64
	}{
		// chisq.test(c(60, 40)): X² = 4 on 1 df, p = erfc(√(4/2)).
		{"60/40 against 50/50", []float64{60, 40}, []float64{50, 50}, 4, math.Erfc(math.Sqrt2)},
		// chisq.test(c(50, 30, 20)): X² = 14 on 2 df, p = exp(-14/2).
		{"three cells", []float64{50, 30, 20}, []float64{100.0 / 3, 100.0 / 3, 100.0 / 3}, 14, math.Exp(-7)},
		{"a perfect fit", []float64{90, 10}, []float64{90, 10}, 0, 1},
		// Traffic where none is expected is impossible under H0.
		{"an impossible cell", []float64{5, 1}, []float64{6, 0}, math.Inf(1), 0},
		// A cell expected and observed empty adds nothing but keeps its df.
		{"an empty cell", []float64{60, 40, 0}, []float64{50, 50, 0}, 4, math.Exp(-2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chi2, p := ChiSquareGoodnessOfFit(tc.observed, tc.expected)
			if math.IsInf(tc.chi2, 1) {
				assert.True(t, math.IsInf(chi2, 1), "chi2 %v", chi2)
			} else {
				assert.InDelta(t, tc.chi2, chi2, 1e-9)
			}
			assert.InDelta(t, tc.p, p, 1e-12)
		})
	}
}

func TestTwoProportionZTest(t *testing.T) {
	// prop.test(c(90, 80), c(100, 100), correct = FALSE, alternative =
	// "greater")$p.value: z = 0.1/√(0.85·0.15·(1/100+1/100)) = 1.98030,
	// and the share fell with p = 1-Φ(z).
	fell, rose := TwoProportionZTest(90, 100, 80, 100)
	assert.InDelta(t, 0.02383519032808072, fell, 1e-12)
	assert.InDelta(t, 0.9761648096719193, rose, 1e-12)

	// The other way round the roles swap.
	fell, rose = TwoProportionZTest(80, 100, 90, 100)
	assert.InDelta(t, 0.9761648096719193, fell, 1e-12)
	assert.InDelta(t, 0.02383519032808072, rose, 1e-12)

	// Both all-ok: no standard error, nothing differs.
	fell, rose = TwoProportionZTest(100, 100, 50, 50)
	assert.Equal(t, [2]float64{1, 1}, [2]float64{fell, rose})
}

func TestMeanCI(t *testing.T) {
	// 1..5: mean 3, population sd √2, so 3 ± z·√2/√5.
	half := CriticalZ(0.05) * math.Sqrt2 / math.Sqrt(5)
	mean, lo, hi := MeanCI([]float64{1, 2, 3, 4, 5}, 0.05)
	assert.Equal(t, 3.0, mean)
	assert.InDelta(t, 3-half, lo, 1e-12)
	assert.InDelta(t, 3+half, hi, 1e-12)
	assert.InDelta(t, 1.760409935390877, lo, 1e-9)

	// No spread, no width.
	mean, lo, hi = MeanCI([]float64{7, 7, 7}, 0.01)
	assert.Equal(t, [3]float64{7, 7, 7}, [3]float64{mean, lo, hi})
}

func TestQuantileCI(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(i + 1)
	}
	for _, tc := range []struct {
		name      string
		q, alpha  float64
		v, lo, hi float64
	}{
		// The median of 1..100 at 95%: nq = 50 and z√(nq(1-q)) = 1.96·5 =
		// 9.8, so the ranks ⌈40.2⌉ = 41 and ⌈50+9.8+1⌉ = 61.
		{"median at 95%", 0.5, 0.05, 50, 41, 61},
		// p90 at 99%: nq = 90, 2.5758·3 = 7.73: ranks ⌈82.27⌉ = 83 and
		// ⌈98.73⌉ = 99.
		{"p90 at 99%", 0.9, 0.01, 90, 83, 99},
		// p99 of 100 at 99%: the upper rank runs past the sample and stops
		// at its largest value.
		{"p99 at 99%", 0.99, 0.01, 99, 97, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, lo, hi := QuantileCI(xs, tc.q, tc.alpha)
			assert.Equal(t, [3]float64{tc.v, tc.lo, tc.hi}, [3]float64{v, lo, hi})
		})
	}
	v, lo, hi := QuantileCI([]float64{4}, 0.5, 0.01)
	assert.Equal(t, [3]float64{4, 4, 4}, [3]float64{v, lo, hi})
}

func TestQuantileSorted(t *testing.T) {
	// quantile(1:5, c(0, 0.5, 1, 0.025)), R's default type 7:
	// h = q·(n-1), x[⌊h⌋] + (h-⌊h⌋)·(x[⌊h⌋+1] - x[⌊h⌋]).
	xs := []float64{1, 2, 3, 4, 5}
	assert.Equal(t, 1.0, QuantileSorted(xs, 0))
	assert.Equal(t, 3.0, QuantileSorted(xs, 0.5))
	assert.Equal(t, 5.0, QuantileSorted(xs, 1))
	assert.InDelta(t, 1.1, QuantileSorted(xs, 0.025), 1e-12)
	assert.False(t, math.IsNaN(QuantileSorted([]float64{7}, 0.975)))
}

func TestMeanAndResampleMean(t *testing.T) {
	assert.Equal(t, 0.0, Mean(nil))
	assert.Equal(t, 2.5, Mean([]float64{1, 2, 3, 4}))

	rng := rand.New(rand.NewPCG(1, 0))
	assert.Equal(t, 3.0, ResampleMean([]float64{3, 3, 3}, rng))
	// A resample of {0, 1} has 0, 1 or 2 ones: its mean is one of these.
	assert.Contains(t, []float64{0, 0.5, 1}, ResampleMean([]float64{0, 1}, rng))
	// The same seed draws the same resample.
	xs := []float64{1, 5, 9, 13, 17}
	a := ResampleMean(xs, rand.New(rand.NewPCG(7, 3)))
	b := ResampleMean(xs, rand.New(rand.NewPCG(7, 3)))
	assert.Equal(t, a, b)
}

func TestShareSampleSize(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		p0, p1, alpha, power float64
		want                 int
	}{
		// ((z.975·√(.5·.5) + z.8·√(.6·.4)) / 0.1)² = 193.85: the textbook
		// one-sample proportion case.
		{"50% against 60%", 0.5, 0.6, 0.05, 0.8, 194},
		// DESIGN.md's split check: at α = 1e-6 and 99.9% power, 70/30
		// against 75/25 needs about 5,100: ((z·√.21 + z.999·√.1875)/.05)² = 5125.8.
		{"30% against 25%", 0.3, 0.25, 1e-6, 0.999, 5126},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, ShareSampleSize(tc.p0, tc.p1, tc.alpha, tc.power))
			// The direction of the shift does not matter to the size, only the shares.
			assert.Equal(t, tc.want, ShareSampleSize(1-tc.p0, 1-tc.p1, tc.alpha, tc.power))
		})
	}
}
