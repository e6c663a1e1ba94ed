package derive

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/meshbench/meshbench/internal/stats"
)

// DESIGN.md: at α = 1e-6, detecting a 5-point shift from 70/30 with 99.9%
// power needs about 5,100 requests (to 75/25); the plan takes the shift
// towards ½ (to 65/35), which needs more, about 5,500, so that a shift
// either way is caught.
func TestShareRequestsAsTheDesignPlans(t *testing.T) {
	n := shareRequests(0.3, 1e-6, 0.999, 0.05)
	assert.InDelta(t, 5520, n, 50)
	// Less power, a larger shift or a looser α need fewer.
	assert.Less(t, shareRequests(0.3, 1e-6, 0.9, 0.05), n)
	assert.Less(t, shareRequests(0.3, 1e-6, 0.999, 0.1), n)
	assert.Less(t, shareRequests(0.3, 1e-3, 0.999, 0.05), n)
	// A share near ½ varies most.
	assert.Greater(t, shareRequests(0.5, 1e-6, 0.999, 0.05), n)
}

func TestSplitRequests(t *testing.T) {
	o := Options{}.withDefaults()
	// All traffic to one version is judged by stray responses alone.
	assert.Equal(t, minRequests, splitRequests([]float64{1}, o))
	assert.Equal(t, shareRequests(0.3, o.Alpha, o.Power, o.Shift), splitRequests([]float64{0.7, 0.3}, o))
}

func TestLoadDuration(t *testing.T) {
	o := Options{Rate: 100}.withDefaults()
	assert.Equal(t, Load{Target: "a", Rate: "100/s", Duration: "2s"}, o.load("a", 10))
	assert.Equal(t, "5.1s", o.load("a", 510).Duration)
}

// A load that would run longer than loadTarget at Rate runs faster, up
// to MaxRate, with the same requests; never slower than Rate.
func TestLongLoadsSpedUp(t *testing.T) {
	o := Options{}.withDefaults()
	assert.Equal(t, Load{Target: "a", Rate: "200/s", Duration: "10s"}, o.load("a", 2000), "at loadTarget: as asked")
	assert.Equal(t, Load{Target: "a", Rate: "300/s", Duration: "10s"}, o.load("a", 3000), "just the speed that fits loadTarget")
	l := o.load("a", 6360)
	assert.Equal(t, "400/s", l.Rate, "at most MaxRate")
	assert.Equal(t, 6360, requestsOf(l), "the requests the check needs (15.9 s)")
	slow := Options{Rate: 500, MaxRate: 100}.withDefaults()
	assert.Equal(t, "500/s", slow.load("a", 60_000).Rate, "MaxRate below Rate is Rate")
	// A rate lowered on purpose (long delays) is kept.
	assert.Equal(t, "50/s", Load{Rate: "50/s"}.resized(6000, 0, o).Rate)
	assert.Equal(t, "400/s", Load{Rate: "200/s"}.resized(6000, 0, o).Rate)
}

// The copies' lower bound: all of them at 100%; at a share, a bound that
// a true share misses with chance at most alpha, and none at 0.
func TestCopiesAtLeast(t *testing.T) {
	assert.Equal(t, 400, copiesAtLeast(400, 1, 1e-6))
	assert.Equal(t, 0, copiesAtLeast(400, 0, 1e-6))
	k := copiesAtLeast(1000, 0.1, 1e-6)
	assert.LessOrEqual(t, stats.BinomialLessP(k-1, 1000, 0.1), 1e-6)
	assert.Greater(t, stats.BinomialLessP(k, 1000, 0.1), 1e-6)
	assert.InDelta(t, 100-stats.NormalQuantile(1-1e-6)*math.Sqrt(90), float64(k), 4, "about the mean less the one-sided z·sd")
	assert.Equal(t, 1000, copiesRequests(0.1))
	assert.Equal(t, minRequests, copiesRequests(1))
	assert.Equal(t, maxRequests, copiesRequests(0.0001))
}
