package reports

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/meshbench/meshbench/internal/stats"
)

// CompareOptions say what counts as a regression.
type CompareOptions struct {
	// Threshold is the relative worsening tolerated, 0.10 for 10%: latency
	// may grow by up to 10%, the error rate by up to 10% of itself, before
	// a statistically real change is called a regression. 0 flags any
	// statistically real worsening.
	Threshold float64
	// Confidence is the confidence level of the intervals and tests, in
	// (0, 1); 0 means 0.95.
	Confidence float64
	// Resamples is the number of bootstrap resamples; 0 means 2000.
	Resamples int
	// Seed seeds the bootstrap's random numbers, so a comparison is
	// reproducible; 0 means 1.
	Seed uint64
}

// DefaultCompareOptions are a 10% threshold at 95% confidence with 2000
// bootstrap resamples from seed 1.
func DefaultCompareOptions() CompareOptions {
	return CompareOptions{Threshold: 0.10, Confidence: 0.95, Resamples: 2000, Seed: 1}
}

func (o CompareOptions) withDefaults() CompareOptions {
	if !(o.Threshold >= 0) || math.IsInf(o.Threshold, 0) {
		o.Threshold = 0
	}
	if !(o.Confidence > 0 && o.Confidence < 1) {
		o.Confidence = 0.95
	}
	if o.Resamples <= 0 {
		o.Resamples = 2000
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	return o
}

// minSeconds is the fewest per-second timeline points each run needs for a
// bootstrap interval to mean anything.
const minSeconds = 5

// Verdicts of a comparison row.
const (
	VerdictRegression   = "REGRESSION"
	VerdictWithin       = "worse, within threshold"
	VerdictNoChange     = "no significant change"
	VerdictImproved     = "improved"
	VerdictInsufficient = "not enough data"
)

// Tests used by Compare, as written in ComparisonRow.Test.
const (
	TestBootstrapRatio = "bootstrap CI of the ratio of geometric means of per-second values"
	TestTwoProportionZ = "two-proportion z-test (pooled, one-sided)"
)

// Comparison is the outcome of comparing a run against a baseline.
type Comparison struct {
	Base, Current RunSummary
	Options       CompareOptions // as applied, defaults filled in
	Rows          []ComparisonRow
	// Notes warn about comparisons that may mislead (different scenarios,
	// load rates, too few seconds).
	Notes []string
	// Regression is true when any row is a regression.
	Regression bool
}

// RunSummary identifies one side of a comparison.
type RunSummary struct {
	Scenario   string
	Started    time.Time
	Seed       int64
	Requests   int
	Seconds    int // per-second timeline points with requests
	TargetRate float64
	Latency    Latency // whole-run HDR percentiles, for reference
}

// ComparisonRow compares one metric.
type ComparisonRow struct {
	Metric string // "p50 latency", "p99 latency", "success rate"
	Unit   string // "ms" or "%"
	// Base and Current are the compared values: for latency the geometric
	// mean of the per-second percentile, in ms; for the success rate a
	// fraction.
	Base, Current float64
	// Change is Current/Base - 1 for latency and Current - Base for the
	// success rate.
	Change float64
	// CILow and CIHigh bound the ratio Current/Base at the confidence level
	// (latency rows only; 0 otherwise).
	CILow, CIHigh float64
	// PValue is the one-sided p-value of "the success rate fell" (success
	// rate row only).
	PValue *float64
	// NBase and NCurrent are the sample sizes: seconds for latency,
	// requests for the success rate.
	NBase, NCurrent int
	Test            string
	Verdict         string
	Regression      bool
}

// Compare compares cur against base for p50 latency, p99 latency and
// success rate, and flags a regression only where the change is both
// statistically real and beyond opt.Threshold.
//
// A result keeps whole-run HDR percentiles and per-second percentiles, not
// every request's latency, so latency is compared through the per-second
// timeline: each bootstrap resample draws every run's seconds with
// replacement and takes the ratio of the geometric means of their p50 (or
// p99); the confidence interval is the percentile interval of the resampled
// ratios. The geometric mean weighs every second, but a single slow second
// (a GC pause) moves it far less than it moves the arithmetic mean, which
// keeps the interval narrow enough to see a real shift. A
// latency regression is flagged when the whole interval lies above
// 1+threshold. The resampling treats seconds as independent, which a slow
// drift or a burst spanning seconds violates; the interval is then too
// narrow, so read a regression near the threshold with that in mind.
//
// The success rate is compared with a pooled two-proportion z-test of
// H0 "the success rate did not fall" against H1 "it fell"; a regression
// needs p < 1-confidence and an error rate above (1+threshold) times the
// baseline's.
func Compare(base, cur *Result, opt CompareOptions) Comparison {
	opt = opt.withDefaults()
	c := Comparison{Base: summarize(base), Current: summarize(cur), Options: opt}
	if c.Base.Scenario != c.Current.Scenario {
		c.Notes = append(c.Notes, fmt.Sprintf("The runs are of different scenarios (%q and %q).", c.Base.Scenario, c.Current.Scenario))
	}
	if a, b := c.Base.TargetRate, c.Current.TargetRate; a != b {
		c.Notes = append(c.Notes, fmt.Sprintf("The runs asked for different load rates (%s and %s req/s); latency depends on load.", num(a), num(b)))
	}
	for i, m := range []struct {
		name string
		val  func(TimelinePoint) float64
	}{
		{"p50 latency", func(t TimelinePoint) float64 { return t.P50 }},
		{"p99 latency", func(t TimelinePoint) float64 { return t.P99 }},
	} {
		row := compareLatency(m.name, perSecond(base, m.val), perSecond(cur, m.val), opt, uint64(i))
		c.Rows = append(c.Rows, row)
	}
	c.Rows = append(c.Rows, compareSuccess(base, cur, opt))
	for _, r := range c.Rows {
		c.Regression = c.Regression || r.Regression
	}
	if c.Base.Seconds < minSeconds || c.Current.Seconds < minSeconds {
		c.Notes = append(c.Notes, fmt.Sprintf("Latency needs at least %d seconds of timeline in each run (have %d and %d); it is not judged.", minSeconds, c.Base.Seconds, c.Current.Seconds))
	}
	return c
}

func summarize(r *Result) RunSummary {
	if r == nil {
		return RunSummary{}
	}
	s := RunSummary{Scenario: r.Scenario, Started: r.Started, Seed: r.Environment.Seed, Requests: requestsOf(r), TargetRate: r.Load.TargetRate, Latency: r.Latency}
	for _, t := range r.Timeline {
		if t.Requests > 0 {
			s.Seconds++
		}
	}
	return s
}

// perSecond returns one value per timeline second that had requests.
func perSecond(r *Result, val func(TimelinePoint) float64) []float64 {
	if r == nil {
		return nil
	}
	var out []float64
	for _, t := range r.Timeline {
		if v := val(t); t.Requests > 0 && v >= 0 && !math.IsInf(v, 0) && !math.IsNaN(v) {
			out = append(out, v)
		}
	}
	return out
}

func compareLatency(name string, base, cur []float64, opt CompareOptions, stream uint64) ComparisonRow {
	row := ComparisonRow{Metric: name, Unit: "ms", NBase: len(base), NCurrent: len(cur), Test: TestBootstrapRatio}
	lb, lc := logs(base), logs(cur)
	if len(lb) > 0 && len(lc) > 0 {
		row.Base, row.Current = math.Exp(stats.Mean(lb)), math.Exp(stats.Mean(lc))
	}
	if len(lb) < minSeconds || len(lc) < minSeconds {
		row.Verdict = VerdictInsufficient
		return row
	}
	row.Change = row.Current/row.Base - 1
	// One stream per metric, so that adding a metric leaves the others' intervals alone.
	rng := rand.New(rand.NewPCG(opt.Seed, stream))
	ratios := make([]float64, opt.Resamples)
	for i := range ratios {
		ratios[i] = math.Exp(stats.ResampleMean(lc, rng) - stats.ResampleMean(lb, rng))
	}
	sort.Float64s(ratios)
	alpha := 1 - opt.Confidence
	row.CILow, row.CIHigh = stats.QuantileSorted(ratios, alpha/2), stats.QuantileSorted(ratios, 1-alpha/2)
	switch {
	case row.CILow > 1+opt.Threshold:
		row.Verdict, row.Regression = VerdictRegression, true
	case row.CILow > 1:
		row.Verdict = VerdictWithin
	case row.CIHigh < 1:
		row.Verdict = VerdictImproved
	default:
		row.Verdict = VerdictNoChange
	}
	return row
}

// logs returns the natural logarithms of the positive xs.
func logs(xs []float64) []float64 {
	out := make([]float64, 0, len(xs))
	for _, x := range xs {
		if x > 0 {
			out = append(out, math.Log(x))
		}
	}
	return out
}

func compareSuccess(base, cur *Result, opt CompareOptions) ComparisonRow {
	row := ComparisonRow{Metric: "success rate", Unit: "%", Test: TestTwoProportionZ}
	nb, okb := successCounts(base)
	nc, okc := successCounts(cur)
	row.NBase, row.NCurrent = nb, nc
	if nb == 0 || nc == 0 {
		row.Verdict = VerdictInsufficient
		return row
	}
	pb, pc := float64(okb)/float64(nb), float64(okc)/float64(nc)
	row.Base, row.Current, row.Change = pb, pc, pc-pb
	pFell, pRose := stats.TwoProportionZTest(okb, nb, okc, nc)
	row.PValue = &pFell
	alpha := 1 - opt.Confidence
	errB, errC := 1-pb, 1-pc
	beyond := errC > errB*(1+opt.Threshold) && errC > errB
	switch {
	case pFell < alpha && beyond:
		row.Verdict, row.Regression = VerdictRegression, true
	case pFell < alpha:
		row.Verdict = VerdictWithin
	case pRose < alpha:
		row.Verdict = VerdictImproved
	default:
		row.Verdict = VerdictNoChange
	}
	return row
}

// successCounts returns the number of requests and of successful ones.
func successCounts(r *Result) (n, ok int) {
	if r == nil {
		return 0, 0
	}
	n = requestsOf(r)
	ok = int(math.Round(r.Status.SuccessRate * float64(n)))
	return n, min(max(ok, 0), n)
}

// CompareMarkdown writes c as Markdown: a headline verdict, the runs
// compared, one table row per metric with the test used, and a paragraph
// saying exactly how the intervals and tests were computed.
func CompareMarkdown(w io.Writer, c Comparison) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	o := c.Options
	conf := pctString(o.Confidence)
	thr := pctString(o.Threshold)
	if c.Regression {
		var which []string
		for _, r := range c.Rows {
			if r.Regression {
				which = append(which, r.Metric)
			}
		}
		p("# meshbench compare: REGRESSION in %s\n\n", strings.Join(which, ", "))
	} else {
		p("# meshbench compare: no regression\n\n")
	}
	side := func(label string, s RunSummary) {
		p("- **%s:** `%s`", label, strings.ReplaceAll(orDash(s.Scenario), "`", ""))
		if !s.Started.IsZero() {
			p(", started %s", s.Started.UTC().Format(time.RFC3339))
		}
		p(", seed %d, %d requests over %d s at %s req/s asked; whole-run HDR p50 %s ms, p99 %s ms\n",
			s.Seed, s.Requests, s.Seconds, num(s.TargetRate), fmtNum(s.Latency.P50), fmtNum(s.Latency.P99))
	}
	side("base", c.Base)
	side("new", c.Current)
	p("\nThreshold %s, confidence %s.\n\n", thr, conf)
	p("| metric | base | new | change | %s CI of new/base, or p | test | verdict |\n|---|--:|--:|--:|--:|---|---|\n", conf)
	for _, r := range c.Rows {
		var base, cur, change, stat string
		switch r.Unit {
		case "%":
			base, cur = pctString(r.Base), pctString(r.Current)
			change = fmt.Sprintf("%+.2f pp", 100*r.Change)
			if r.PValue != nil {
				stat = "p = " + strconv.FormatFloat(*r.PValue, 'g', 3, 64)
			}
		default:
			base, cur = fmtNum(r.Base)+" ms", fmtNum(r.Current)+" ms"
			change = fmt.Sprintf("%+.1f%%", 100*r.Change)
			if r.CILow != 0 || r.CIHigh != 0 {
				stat = fmt.Sprintf("×%.3f – ×%.3f", r.CILow, r.CIHigh)
			}
		}
		if r.Verdict == VerdictInsufficient {
			change, stat = "-", "-"
			if r.NBase == 0 && r.NCurrent == 0 {
				base, cur = "-", "-"
			}
		}
		test := fmt.Sprintf("%s (%d vs %d requests)", r.Test, r.NBase, r.NCurrent)
		if r.Unit == "ms" {
			test = fmt.Sprintf("%s (%d vs %d s)", r.Test, r.NBase, r.NCurrent)
		}
		verdict := r.Verdict
		if r.Regression {
			verdict = "**" + verdict + "**"
		}
		p("| %s | %s | %s | %s | %s | %s | %s |\n", r.Metric, base, cur, change, orDash(stat), cell(test), verdict)
	}
	p("\n**Method.** A result keeps whole-run HDR percentiles and per-second percentiles, not every request's latency, so latency is compared on the per-second timeline. ")
	p("Base and new are the geometric means of the per-second p50 (or p99) over the seconds that had requests. ")
	p("The %s confidence interval of the ratio new/base is a percentile bootstrap: %d resamples, each drawing both runs' seconds with replacement (seeded RNG, PCG seed %d) and taking the ratio of the geometric means. ", conf, o.Resamples, o.Seed)
	p("Latency is a regression only when the whole interval lies above ×%s (1 + threshold). ", strconv.FormatFloat(1+o.Threshold, 'f', -1, 64))
	p("The success rate uses a pooled two-proportion z-test, one-sided (H1: the new success rate is lower); it is a regression only when p < %s and the new error rate exceeds the base error rate by more than %s of itself. "+
		"By design about %s of comparisons of two identical runs show such a drop by chance; a higher --confidence makes that rarer. ",
		strconv.FormatFloat(1-o.Confidence, 'g', 3, 64), thr, pctString(1-o.Confidence))
	p("Seconds are treated as independent; slow drifts or bursts spanning seconds make the intervals too narrow.\n")
	for _, n := range c.Notes {
		p("\n> **Note:** %s\n", n)
	}
	return bw.Flush()
}

// pctString writes a fraction as a percentage with up to three decimals.
func pctString(f float64) string {
	return strconv.FormatFloat(math.Round(f*100000)/1000, 'f', -1, 64) + "%"
}
