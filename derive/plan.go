package derive

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/meshbench/meshbench/internal/stats"
)

// Bounds on the load of one derived scenario.
const (
	minRequests = 200
	maxRequests = 60_000
	minDuration = 2 * time.Second
)

// shareRequests is how many requests a two-sided test at level alpha
// needs to tell a share p0 from p0 ± shift with the given power
// (stats.ShareSampleSize). The shift is taken towards ½, where the variance, and so n, is larger,
// so that a shift either way is caught: at α = 1e-6, power 0.999 and 5
// points from 30% that is about 5,500 (DESIGN.md's 5,100 is the shift to 25%).
func shareRequests(p0, alpha, power, shift float64) int {
	p1 := p0 + shift
	if p0 > 0.5 {
		p1 = p0 - shift
	}
	p1 = math.Min(math.Max(p1, 0), 1)
	return stats.ShareSampleSize(p0, p1, alpha, power)
}

// splitRequests is the sample a split at shares needs: the most any of its
// shares needs (a share of 0 or 1 is judged by stray traffic alone).
func splitRequests(shares []float64, o Options) int {
	n := minRequests
	for _, p := range shares {
		if p > 0 && p < 1 {
			n = max(n, shareRequests(p, o.Alpha, o.Power, o.Shift))
		}
	}
	return n
}

// loadTarget is how long a derived load runs at most at the options'
// Rate before it is sped up (up to MaxRate): the sample a check needs is
// the same at any rate, and a folder's longest loads set how long its
// check takes.
const loadTarget = 10 * time.Second

// load is the load that sends at least n requests to target: at the
// options' Rate, or faster, up to MaxRate, where that would take longer
// than loadTarget.
func (o Options) load(target string, n int) Load {
	n = min(max(n, minRequests), maxRequests)
	rate := o.rateFor(n, o.Rate)
	return Load{Target: target, Rate: fmt.Sprintf("%d/s", rate), Duration: durationFor(n, rate).String()}
}

// rateFor is the rate that sends n requests: rate, or faster where that
// would take longer than loadTarget, up to MaxRate but never below rate.
func (o Options) rateFor(n, rate int) int {
	if float64(n)/float64(rate) <= loadTarget.Seconds() {
		return rate
	}
	return min(max(o.MaxRate, rate), max(rate, int(math.Ceil(float64(n)/loadTarget.Seconds()))))
}

// durationFor is how long n requests take at rate, to a tenth of a second
// up, and at least minDuration.
func durationFor(n, rate int) time.Duration {
	d := time.Duration(math.Ceil(float64(n)/float64(rate)*10)) * time.Second / 10
	return max(d, minDuration)
}

// rateOf is l's requests per second.
func rateOf(l Load) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(l.Rate, "/s"))
	return max(n, 1)
}

// requestsOf is how many requests l sends.
func requestsOf(l Load) int {
	d, _ := time.ParseDuration(l.Duration)
	return int(d.Seconds() * float64(rateOf(l)))
}

// copiesAtLeast is a one-sided lower bound on X ~ Binomial(n, p) at level
// alpha: the largest k with P[X < k] <= alpha (0 when none is above 0).
// A count below it fails a true share p with chance at most alpha.
func copiesAtLeast(n int, p, alpha float64) int {
	k := 0
	for k < n && stats.BinomialLessP(k, n, p) <= alpha {
		k++
	}
	return k
}

// expectedCopies is how many copies a mirror check's load makes the
// mirror receive on average: enough that their lower bound at the
// design's alpha stays well above zero (about 50 at α = 1e-6).
const expectedCopies = 100

// copiesRequests is the load that makes a mirror copying a share p of it
// receive about expectedCopies copies, within the loads' bounds.
func copiesRequests(p float64) int {
	if p <= 0 {
		return minRequests
	}
	return min(max(minRequests, int(math.Ceil(expectedCopies/p))), maxRequests)
}
