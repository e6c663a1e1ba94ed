package reports

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/stats"
)

// synthOptions shape a synthetic but realistic result.
type synthOptions struct {
	Seed     uint64
	Seconds  int
	Rate     int     // requests per second
	P99Scale float64 // multiplies every second's p99 and max (1 = unchanged)
	ErrProb  float64 // probability that a request fails
}

// synthResult builds a result shaped like a real canary-90-10 run of
// meshbench at 200 req/s for two minutes: per-second p50 around 1.4 ms with a little jitter,
// per-second p99 around 3.2 times that with log-normal noise and an
// occasional slow second (a GC pause or a noisy neighbour), rare 503s, a
// 90/10 split of payment, and a three-tier service graph. Everything comes
// from a seeded PCG, so the same options give the same result.
func synthResult(o synthOptions) *Result {
	if o.Seconds == 0 {
		o.Seconds = 120
	}
	if o.Rate == 0 {
		o.Rate = 200
	}
	if o.P99Scale == 0 {
		o.P99Scale = 1
	}
	if o.ErrProb == 0 {
		o.ErrProb = 0.0004
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x6d657368))
	logn := func(mu, sigma float64) float64 { return math.Exp(math.Log(mu) + sigma*rng.NormFloat64()) }
	round3 := func(x float64) float64 { return math.Round(x*1000) / 1000 }

	r := &Result{
		Schema:      SchemaVersion,
		Scenario:    "canary-90-10",
		Description: "A 90/10 canary split of payment between v1 and v2 by route weights.",
		File:        "scenarios/catalog/canary-90-10.yaml",
		Started:     time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC).Add(time.Duration(o.Seed) * time.Hour),
		Environment: Environment{Runtime: "local", DataPlane: "builtin", GoVersion: "go1.26.8", OS: "linux", Arch: "amd64", CPUs: 8, Seed: int64(o.Seed)},
		Split:       map[string]map[string]int{"payment": {}, "order": {}},
	}
	var p50s, p99s []float64
	ok, total, maxLat := 0, 0, 0.0
	for s := range o.Seconds {
		n := o.Rate
		if s == o.Seconds-1 {
			n = o.Rate - 1 - rng.IntN(3) // the last second is cut short
		}
		errs := 0
		for range n {
			if rng.Float64() < o.ErrProb {
				errs++
			}
		}
		p50 := logn(1.4, 0.06)
		// sd of log p99 about 0.33 over the seconds, as in real runs
		p99 := p50 * logn(3.2, 0.26)
		if rng.Float64() < 0.05 {
			p99 *= 1.8 + rng.Float64() // a slow second
		}
		p99 *= o.P99Scale
		mx := p99 * (1.2 + 0.8*rng.Float64())
		v1 := 0
		for range n - errs {
			if rng.Float64() < 0.9 {
				v1++
			}
		}
		pt := TimelinePoint{Second: s, Requests: n, Errors: errs, P50: round3(p50), P99: round3(p99), Max: round3(mx),
			Versions: map[string]int{"payment/v1": v1, "payment/v2": n - errs - v1}}
		r.Timeline = append(r.Timeline, pt)
		r.Split["payment"]["v1"] += v1
		r.Split["payment"]["v2"] += n - errs - v1
		r.Split["order"]["v1"] += n - errs
		p50s, p99s = append(p50s, pt.P50), append(p99s, pt.P99)
		ok += n - errs
		total += n
		maxLat = math.Max(maxLat, pt.Max)
	}
	sort.Float64s(p50s)
	meanP99 := stats.Mean(p99s)
	secs := float64(o.Seconds) - 0.005
	r.Load = Load{Target: "order", URL: "http://127.0.0.1:15001/order", TargetRate: float64(o.Rate),
		AchievedRate: round3(float64(total-1) / secs), Throughput: round3(float64(ok) / secs), Duration: float64(o.Seconds) + 0.004, Requests: total}
	r.Latency = Latency{P50: p50s[len(p50s)/2], P90: round3(p50s[len(p50s)/2] * 2.05), P99: round3(meanP99),
		P999: round3(math.Min(meanP99*1.9, maxLat)), Max: maxLat, Mean: round3(p50s[len(p50s)/2] * 1.22)}
	r.Status = Status{SuccessRate: float64(ok) / float64(total), Codes: map[string]int{"200": ok}}
	if total > ok {
		r.Status.Codes["503"] = total - ok
	}
	r.Pods = map[string]map[string]int{"payment": {"payment-v1-0": r.Split["payment"]["v1"] / 2, "payment-v1-1": r.Split["payment"]["v1"] - r.Split["payment"]["v1"]/2, "payment-v2-0": r.Split["payment"]["v2"]}}
	r.ConfigVersions = map[string]int{"1": total}

	// Checks, computed as scenarios/check would.
	v1, v2 := float64(r.Split["payment"]["v1"]), float64(r.Split["payment"]["v2"])
	n := v1 + v2
	chi2 := (v1-0.9*n)*(v1-0.9*n)/(0.9*n) + (v2-0.1*n)*(v2-0.1*n)/(0.1*n)
	pSplit := math.Erfc(math.Sqrt(chi2 / 2)) // chi-square, df = 1
	pRate := 1.0
	r.Checks = []Check{
		{Name: "split payment", Kind: "split", Passed: pSplit >= 0.001,
			Summary: fmt.Sprintf("payment: v1 %.1f%% (want 90), v2 %.1f%% (want 10); N=%d, chi2=%.2f, p=%.3g >= alpha=0.001", 100*v1/n, 100*v2/n, int(n), chi2, pSplit),
			Test:    "Pearson chi-square goodness of fit, df=k-1", N: int(n), PValue: &pSplit, Confidence: 0.999,
			Observed: map[string]float64{"v1": 100 * v1 / n, "v2": 100 * v2 / n}, Expected: map[string]float64{"v1": 90, "v2": 10}},
		{Name: "success rate", Kind: "successRate", Passed: r.Status.SuccessRate >= 0.999,
			Summary: fmt.Sprintf("%d/%d ok = %.3f%%; H0 rate >= 99.9%%: p=1 >= alpha=0.001", ok, total, 100*r.Status.SuccessRate),
			Test:    "one-sided exact binomial test, H0: rate >= min", N: total, PValue: &pRate, Confidence: 0.999,
			Observed: map[string]float64{"rate": r.Status.SuccessRate}, Expected: map[string]float64{"rate": 0.999}},
		{Name: "latency", Kind: "latency", Passed: r.Latency.P99 <= 250,
			Summary: fmt.Sprintf("p99 %.2fms <= 250; N=%d", r.Latency.P99, total), Test: "observed percentiles <= maxima", N: total,
			Observed: map[string]float64{"p99": r.Latency.P99}, Expected: map[string]float64{"p99": 250}},
	}
	r.Passed = true
	for _, c := range r.Checks {
		r.Passed = r.Passed && c.Passed
	}

	// The service graph: ingress → order → payment v1/v2 → ledger.
	rps := func(k int) float64 { return round3(float64(k) / secs) }
	pv1, pv2 := r.Split["payment"]["v1"], r.Split["payment"]["v2"]
	r.Hops = []Hop{
		{Source: "istio-ingressgateway", Destination: "order-v1", Service: "order.default.svc.cluster.local", Requests: total, RPS: rps(total),
			SuccessRate: float64(ok) / float64(total), P99: 10, MTLS: true, Codes: r.Status.Codes},
		{Source: "order-v1", Destination: "payment-v1", Service: "payment.default.svc.cluster.local", Requests: pv1, RPS: rps(pv1), SuccessRate: 1, P99: 5, MTLS: true, Codes: map[string]int{"200": pv1}},
		{Source: "order-v1", Destination: "payment-v2", Service: "payment.default.svc.cluster.local", Requests: pv2 + total - ok, RPS: rps(pv2 + total - ok),
			SuccessRate: float64(pv2) / float64(pv2+total-ok), P99: 10, MTLS: true, Codes: map[string]int{"200": pv2, "503": total - ok}, Flags: map[string]int{"URX": total - ok}},
		{Source: "payment-v1", Destination: "ledger-v1", Service: "ledger.default.svc.cluster.local", Requests: pv1, RPS: rps(pv1), SuccessRate: 1, P99: 2.5, MTLS: true, Codes: map[string]int{"200": pv1}},
		{Source: "payment-v2", Destination: "ledger-v1", Service: "ledger.default.svc.cluster.local", Requests: pv2, RPS: rps(pv2), SuccessRate: 1, P99: 2.5, MTLS: false, Codes: map[string]int{"200": pv2}},
	}
	r.Duration = round3(float64(o.Seconds) + 6.4)
	return r
}

func renderHTML(t *testing.T, r *Result) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, HTML(&b, r))
	return b.String()
}

// seriesOf returns, for each <svg data-plot="ID" data-series="N">, N and
// the number of elements with class "series" inside it.
func seriesOf(t *testing.T, page string) map[string][2]int {
	t.Helper()
	out := map[string][2]int{}
	svgRe := regexp.MustCompile(`(?s)<svg [^>]*data-plot="([^"]+)" data-series="(\d+)">(.*?)</svg>`)
	seriesRe := regexp.MustCompile(`<(?:path|g) class="series[ "]`)
	for _, m := range svgRe.FindAllStringSubmatch(page, -1) {
		var n int
		fmt.Sscan(m[2], &n)
		out[m[1]] = [2]int{n, len(seriesRe.FindAllString(m[3], -1))}
	}
	return out
}

func TestHTMLReport(t *testing.T) {
	r := synthResult(synthOptions{Seed: 1})
	page := renderHTML(t, r)

	assert.True(t, strings.HasPrefix(page, "<!DOCTYPE html>"))
	assert.Contains(t, page, `<span class="badge pass" id="verdict">PASS</span>`)
	assert.Contains(t, page, "<h1>canary-90-10</h1>")
	assert.Contains(t, page, r.Description)
	assert.Contains(t, page, "<dt>data plane</dt><dd>builtin</dd>")
	for _, c := range r.Checks {
		assert.Contains(t, page, "<td>"+c.Name+"</td>")
	}
	assert.Contains(t, page, "Content-Security-Policy")

	plots := seriesOf(t, page)
	assert.Equal(t, map[string][2]int{
		"latency-over-time": {2, 2},
		"percentiles":       {1, 1},
		"histogram":         {2, 2},
		"split-0":           {2, 2},
		"service-graph":     {6, 6}, // five hops and the load
	}, plots)
	// Four of the five hops use mTLS.
	assert.Equal(t, 4, strings.Count(page, `<g class="lock"`))
	assert.Contains(t, page, "URX×")
}

// TestHTMLSelfContained: nothing in the page points outside it.
func TestHTMLSelfContained(t *testing.T) {
	page := renderHTML(t, synthResult(synthOptions{Seed: 1}))
	for _, bad := range []string{"<script", "<link", "<img", "<iframe", "@import", "url(http", "src=", "href=\"http"} {
		assert.NotContains(t, page, bad)
	}
	// The only absolute URLs are the SVG namespace and the load's target in the text.
	for _, u := range regexp.MustCompile(`https?://[^\s"<]+`).FindAllString(page, -1) {
		assert.Contains(t, []string{"http://www.w3.org/2000/svg", "http://127.0.0.1:15001/order"}, u)
	}
}

func TestHTMLEscapes(t *testing.T) {
	r := synthResult(synthOptions{Seed: 1})
	r.Scenario = `<script>alert("x")</script>`
	r.Checks[0].Summary = "a < b & c"
	r.Hops[0].Destination = `"><svg onload=alert(1)>`
	page := renderHTML(t, r)
	assert.NotContains(t, page, `<script>alert`)
	assert.NotContains(t, page, `<svg onload`)
	assert.Contains(t, page, "a &lt; b &amp; c")
}

func TestHTMLFailedRun(t *testing.T) {
	r := &Result{Scenario: "broken", Error: "sidecar did not start"}
	page := renderHTML(t, r)
	assert.Contains(t, page, `<span class="badge fail" id="verdict">FAIL</span>`)
	assert.Contains(t, page, "<strong>Run error:</strong> sidecar did not start")
	assert.Contains(t, page, "no per-second timeline")
	assert.Contains(t, page, "no service-graph edges")
	assert.Contains(t, page, "No split check")
	assert.Empty(t, seriesOf(t, page), "no plot without data")
	assert.Error(t, HTML(&bytes.Buffer{}, nil))
}

func TestHTMLVariantSplit(t *testing.T) {
	r := synthResult(synthOptions{Seed: 1})
	c := r.Checks[0]
	c.Name = "split payment (jason)"
	c.Observed = map[string]float64{"v2": 100}
	c.Expected = map[string]float64{"v2": 100}
	r.Checks = append(r.Checks, c)
	page := renderHTML(t, r)
	assert.Contains(t, page, "variant jason only")
	assert.Equal(t, [2]int{2, 2}, seriesOf(t, page)["split-3"])
}

func TestTimelinePlotFaults(t *testing.T) {
	r := synthResult(synthOptions{Seed: 1, Seconds: 30})
	r.Timeline[12].Errors = 40
	r.Timeline = append(r.Timeline[:20], r.Timeline[22:]...) // a gap
	p := timelinePlot(r.Timeline, []faultWindow{{Start: 10, End: 15.5, Label: "abort payment 50%"}, {Start: 100, End: 120, Label: "outside"}})
	require.Len(t, p.Series, 2)
	require.Len(t, p.Back.Rects, 1, "the window outside the plot is dropped")
	assert.Equal(t, "fault", p.Back.Rects[0].Class)
	assert.Contains(t, p.Back.Rects[0].Title, "abort payment 50%: 10–15.5 s")
	assert.Equal(t, 2, strings.Count(p.Series[1].Line.D, "M"), "the gap breaks the line")
	require.Len(t, p.Front.Rects, 1)
	assert.Equal(t, "second 12: 40 of 200 requests failed", p.Front.Rects[0].Title)
}

func TestPercentileAxis(t *testing.T) {
	assert.InDelta(t, 1, quantileX(0.9), 1e-9)
	assert.InDelta(t, 2, quantileX(0.99), 1e-9)
	assert.InDelta(t, 3, quantileX(0.999), 1e-9)
	p := percentilePlot(Latency{P50: 1, P90: 2, P99: 5, P999: 9, Max: 20}, 20000)
	var labels []string
	for _, tx := range p.Back.Texts {
		if tx.Class == "tick" && strings.HasSuffix(tx.Text, "%") {
			labels = append(labels, tx.Text)
		}
	}
	assert.Equal(t, []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"}, labels)
}

func TestLinTicks(t *testing.T) {
	lo, hi, ticks := linTicks(0, 7.3, 5, 0)
	assert.Equal(t, 0.0, lo)
	assert.Equal(t, 8.0, hi)
	var got []string
	for _, tk := range ticks {
		got = append(got, tk.label)
	}
	assert.Equal(t, []string{"0", "2", "4", "6", "8"}, got)
	_, _, ticks = linTicks(0, 0.35, 4, 0)
	assert.Equal(t, "0.1", ticks[1].label)
	assert.Equal(t, "1.5", fmtNum(1.5))
	assert.Equal(t, "250", fmtNum(250.4))
	assert.Equal(t, "0.25", fmtNum(0.25))
	assert.Equal(t, "12.3", px(12.345).String())
	assert.Equal(t, "0", px(math.Copysign(0, -1)).String())
}

func TestHTMLIndex(t *testing.T) {
	ok := synthResult(synthOptions{Seed: 1})
	bad := synthResult(synthOptions{Seed: 2})
	bad.Scenario = "header routing"
	bad.Checks[0].Passed = false
	broken := &Result{Scenario: "broken", Error: "sidecar did not start"}
	s := &Suite{Started: time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC), Duration: 70, Scenarios: []*Result{ok, bad, broken}}
	var b bytes.Buffer
	require.NoError(t, HTMLIndex(&b, s, map[string]string{"broken": "elsewhere/broken.html"}))
	page := b.String()
	assert.Contains(t, page, "meshbench: 1 of 3 scenarios passed")
	assert.Contains(t, page, `<a href="canary-90-10/report.html">canary-90-10</a>`)
	assert.Contains(t, page, `<a href="header%20routing/report.html">header routing</a>`)
	assert.Contains(t, page, `<a href="elsewhere/broken.html">broken</a>`)
	assert.Equal(t, 1, strings.Count(page, `<span class="tag pass">PASS</span>`))
	assert.Equal(t, 2, strings.Count(page, `<span class="tag fail">FAIL</span>`))
	assert.Contains(t, page, "run error: sidecar did not start")

	assert.Error(t, HTMLIndex(&b, nil, nil))
	assert.Error(t, HTMLIndex(&b, &Suite{Scenarios: []*Result{nil}}, nil))
}

func TestHTMLStable(t *testing.T) {
	r := synthResult(synthOptions{Seed: 3})
	first := renderHTML(t, r)
	for range 10 {
		require.Equal(t, first, renderHTML(t, r))
	}
}

// TestHTMLOddShapes: a one-second timeline, identical values, a cycle in the
// service graph and a zero-request edge render without trouble.
func TestHTMLOddShapes(t *testing.T) {
	r := synthResult(synthOptions{Seed: 1, Seconds: 1})
	r.Timeline[0].P50, r.Timeline[0].P99 = 2, 2
	r.Hops = []Hop{
		{Source: "a-v1", Destination: "b-v1", RPS: 10, SuccessRate: 1, P99: 5, MTLS: true, Requests: 100},
		{Source: "b-v1", Destination: "a-v1", RPS: 5, SuccessRate: 0.5, P99: 50, Requests: 50},
		{Source: "b-v1", Destination: "b-v1", Requests: 0},
	}
	page := renderHTML(t, r)
	plots := seriesOf(t, page)
	assert.Equal(t, [2]int{2, 2}, plots["latency-over-time"])
	assert.Equal(t, [2]int{2, 2}, plots["histogram"])
	assert.Equal(t, [2]int{4, 4}, plots["service-graph"])
	assert.NotContains(t, page, "NaN")
	assert.NotContains(t, page, "Inf")
}

func TestFaultWindowsComeFromTheResult(t *testing.T) {
	r := &Result{Faults: []FaultWindow{
		{Name: "slow-payment", Kind: "latency", Target: "payment-v2-0", Start: 2, End: 6},
		{Name: "never", Kind: "kill", Target: "payment-v1-0"}, // did not take effect
	}}
	got := faultWindows(r)
	require.Len(t, got, 1)
	assert.Equal(t, faultWindow{Start: 2, End: 6, Label: "slow-payment (latency payment-v2-0)"}, got[0])
}
