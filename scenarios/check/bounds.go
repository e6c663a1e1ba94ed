package check

import (
	"fmt"
	"math"

	"github.com/meshbench/meshbench/internal/stats"
	"github.com/meshbench/meshbench/reports"
)

// Kinds and tests of the share and count checks.
const (
	// KindStatus is the kind of a status-code share check.
	KindStatus = "status"
	// ShareTest is the test Share uses.
	ShareTest = "two-sided exact binomial test, H0: share = expected"
	// BoundsTest is what Bounds and ShareBounds do.
	BoundsTest = "observed value within [min, max]"
)

// Share judges the share k/n of responses with some property against an
// expected share with an exact two-sided binomial test (the p-value doubles
// the smaller tail, capped at 1). It fails when p < 1-confidence.
func Share(name string, k, n int, share, confidence float64) reports.Check {
	c := reports.Check{Name: name, Kind: KindStatus, Test: ShareTest, N: max(n, 0)}
	alpha, ok := alphaOf(confidence)
	if !ok {
		return fail(c, fmt.Sprintf("invalid confidence %v, want 0 < confidence < 1", confidence))
	}
	c.Confidence = confidence
	switch {
	case n <= 0:
		return fail(c, "no requests")
	case k < 0 || k > n || math.IsNaN(share) || share < 0 || share > 1:
		return fail(c, fmt.Sprintf("invalid input: %d of %d, share %v", k, n, share))
	}
	obs := float64(k) / float64(n)
	c.Observed = map[string]float64{"share": obs}
	c.Expected = map[string]float64{"share": share}
	p := stats.BinomialTwoSidedP(k, n, share)
	c.PValue = ptr(p)
	c.Passed = p >= alpha
	c.Summary = fmt.Sprintf("%d/%d = %s (want %s); p=%s %s alpha=%s", k, n, fmtPct(obs), fmtPct(share), fmtP(p), pcmp(c.Passed), fmtP(alpha))
	return c
}

// Bounds checks that an observed value lies within optional bounds. unit
// names what is counted ("retries", "ejections"), for the summary.
func Bounds(name, kind string, observed float64, lo, hi *float64, n int, unit string) reports.Check {
	c := reports.Check{Name: name, Kind: kind, Test: BoundsTest, N: max(n, 0)}
	c.Observed = map[string]float64{"value": observed}
	c.Expected = map[string]float64{}
	c.Passed = true
	want := ""
	if lo != nil {
		c.Expected["min"] = *lo
		c.Passed = c.Passed && observed >= *lo
		want = fmt.Sprintf(">= %s", fmtNum(*lo, 4))
	}
	if hi != nil {
		c.Expected["max"] = *hi
		c.Passed = c.Passed && observed <= *hi
		if want != "" {
			want += " and "
		}
		want += fmt.Sprintf("<= %s", fmtNum(*hi, 4))
	}
	verdict := "within"
	if !c.Passed {
		verdict = "outside"
	}
	c.Summary = fmt.Sprintf("%s %s: %s the bound %s", fmtNum(observed, 6), unit, verdict, want)
	return c
}
