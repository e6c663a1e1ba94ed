package reports

// The HTML report's plots: latency over time, the percentile curve,
// histograms and the traffic split.

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// timelinePlot draws the per-second p50 and p99 of the load phase, shading
// the fault windows, with a red mark under every second that had errors.
func timelinePlot(tl []TimelinePoint, faults []faultWindow) svgPlot {
	f := frame{W: 640, H: 290, L: 58, R: 16, T: 16, B: 44}
	p := f.plot("latency-over-time", "Latency over time")
	if len(tl) == 0 {
		p.Empty = "The result has no per-second timeline, so there is nothing to plot over time."
		return p
	}
	pts := append([]TimelinePoint(nil), tl...)
	sort.Slice(pts, func(i, j int) bool { return pts[i].Second < pts[j].Second })
	s0, s1 := float64(pts[0].Second), float64(pts[len(pts)-1].Second+1)
	ymax := 0.0
	for _, t := range pts {
		ymax = math.Max(ymax, math.Max(t.P50, t.P99))
	}
	xlo, xhi, xt := linTicks(s0, s1, 8, 1)
	_, yhi, yt := linTicks(0, math.Max(ymax, 0.001), 5, 0)
	xa := axis{lo: xlo, hi: xhi, r0: f.left(), r1: f.right()}
	ya := axis{lo: 0, hi: yhi, r0: f.bottom(), r1: f.top()}
	p.Back = axes(f, xa, ya, xt, yt, "seconds since the load started", "latency (ms)")

	for _, w := range faults {
		a, b := math.Max(w.Start, xlo), math.Min(w.End, xhi)
		if !(b > a) {
			continue
		}
		x0, x1 := xa.at(a), xa.at(b)
		p.Back.Rects = append(p.Back.Rects, svgRect{X: px(x0), Y: px(f.top()), W: px(x1 - x0), H: px(f.bottom() - f.top()), Class: "fault",
			Title: fmt.Sprintf("%s: %s–%s s", w.Label, fmtNum(w.Start), fmtNum(w.End))})
		p.Back.text(x0+4, f.top()+12, "start", "fault-label", w.Label)
	}
	if len(faults) > 0 {
		p.Legend = append(p.Legend, legendItem{"fault injected", "#f4b400", "box"})
	}

	line := func(name, class, color string, val func(TimelinePoint) float64) svgSeries {
		var d strings.Builder
		prev := math.MinInt
		for _, t := range pts {
			cmd := "L"
			if t.Second != prev+1 {
				cmd = "M" // a gap in the timeline breaks the line
			}
			fmt.Fprintf(&d, "%s%s %s ", cmd, px(xa.at(float64(t.Second)+0.5)), px(ya.at(val(t))))
			prev = t.Second
		}
		return svgSeries{Name: name, Class: class, Line: &svgPath{D: strings.TrimSpace(d.String()), Stroke: color, Width: 2, Title: name}}
	}
	p.Series = []svgSeries{
		line("p50", "p50", colP50, func(t TimelinePoint) float64 { return t.P50 }),
		line("p99", "p99", colP99, func(t TimelinePoint) float64 { return t.P99 }),
	}
	p.Legend = append(p.Legend, legendItem{"p50 per second", colP50, "line"}, legendItem{"p99 per second", colP99, "line"})

	errSeconds := 0
	for _, t := range pts {
		if t.Errors == 0 {
			continue
		}
		errSeconds++
		x0, x1 := xa.at(float64(t.Second)), xa.at(float64(t.Second+1))
		p.Front.Rects = append(p.Front.Rects, svgRect{X: px(x0 + 0.5), Y: px(f.bottom() - 7), W: px(math.Max(x1-x0-1, 1)), H: 7, Class: "errmark",
			Title: fmt.Sprintf("second %d: %d of %d requests failed", t.Second, t.Errors, t.Requests)})
	}
	if errSeconds > 0 {
		p.Legend = append(p.Legend, legendItem{"second with errors", colFail, "box"})
	}
	p.Caption = fmt.Sprintf("Per-second p50 and p99 of %d seconds of load, by the requests' intended send time (so a stall shows in the second it delayed).", len(pts))
	return p
}

// ---------------------------------------------------------------------------
// Percentile curve.

// quantileX is where quantile q sits on the percentile curve's x axis:
// log10(1/(1-q)), so 90% is at 1, 99% at 2, 99.9% at 3.
func quantileX(q float64) float64 { return math.Log10(1 / (1 - q)) }

// percentilePlot draws the latency percentiles on HdrHistogram's
// "1/(1-q)" log axis. The max of n requests is placed at q = 1-1/n.
func percentilePlot(lat Latency, n int) svgPlot {
	f := frame{W: 640, H: 290, L: 58, R: 24, T: 22, B: 44}
	p := f.plot("percentiles", "Latency by percentile")
	if lat.Max <= 0 && lat.P99 <= 0 {
		p.Empty = "The result has no latency percentiles."
		return p
	}
	maxX := 4.0
	if n > 1 {
		maxX = math.Max(3, math.Log10(float64(n)))
	}
	type pt struct {
		label string
		x, v  float64
	}
	pts := []pt{
		{"p50", quantileX(0.5), lat.P50}, {"p90", quantileX(0.9), lat.P90}, {"p99", quantileX(0.99), lat.P99},
		{"p99.9", quantileX(0.999), lat.P999}, {"max", maxX, lat.Max},
	}
	xhi := math.Max(3, math.Ceil(maxX-1e-9))
	_, yhi, yt := linTicks(0, lat.Max*1.08, 5, 0)
	xa := axis{lo: 0, hi: xhi, r0: f.left(), r1: f.right()}
	ya := axis{lo: 0, hi: yhi, r0: f.bottom(), r1: f.top()}
	var xt []tick
	for k := 0; k <= int(xhi); k++ {
		label := "0%"
		if k > 0 {
			label = strconv.FormatFloat(100*(1-math.Pow(10, -float64(k))), 'f', max(k-2, 0), 64) + "%"
		}
		xt = append(xt, tick{float64(k), label})
	}
	p.Back = axes(f, xa, ya, xt, yt, "percentile (log scale of 1/(1−q))", "latency (ms)")
	var s svgSeries
	s.Name, s.Class = "latency", "curve"
	var d strings.Builder
	for i, q := range pts {
		x, y := xa.at(q.x), ya.at(q.v)
		if i == 0 {
			fmt.Fprintf(&d, "M%s %s", px(x), px(y))
		} else {
			fmt.Fprintf(&d, " L%s %s", px(x), px(y))
		}
		s.Circles = append(s.Circles, svgCircle{X: px(x), Y: px(y), R: 3.5, Fill: colCurve, Title: fmt.Sprintf("%s = %s ms", q.label, fmtNum(q.v))})
		// Labels alternate above and to the left so close points stay legible.
		if i > 0 && pts[i-1].x == q.x {
			continue // p99.9 and max coincide when n <= 1000
		}
		s.text(x-6, y-8, "end", "value", q.label+" "+fmtNum(q.v))
	}
	s.Paths = append(s.Paths, svgPath{D: d.String(), Stroke: colCurve, Fill: "none", Width: 2})
	p.Series = []svgSeries{s}
	p.Legend = []legendItem{{"whole-run HDR percentiles", colCurve, "line"}}
	p.Caption = fmt.Sprintf("HdrHistogram-style percentile plot: each step right is ten times rarer (90%%, 99%%, 99.9%%). "+
		"Values are whole-run percentiles in ms, corrected for coordinated omission; the max is placed at 1−1/N for N = %d requests.", n)
	return p
}

// ---------------------------------------------------------------------------
// Histogram.

type histSeries struct {
	Name, Color string
	Values      []float64
}

type histMarker struct {
	Label string
	Value float64
	Color string
}

// timelineHistogram draws the distribution of the per-second p50 and p99.
// The result keeps HDR percentiles and per-second summaries, not every
// request's latency, so a histogram of all requests cannot be drawn from it;
// the per-second percentiles are what exists, and their spread shows how
// steady the latency was. histogramPlot takes any samples, so raw latencies
// can be drawn the same way if a result ever carries them.
func timelineHistogram(r *Result) svgPlot {
	var p50, p99 []float64
	for _, t := range r.Timeline {
		if t.Requests > 0 {
			p50 = append(p50, t.P50)
			p99 = append(p99, t.P99)
		}
	}
	p := histogramPlot("histogram", "Distribution of the per-second percentiles",
		[]histSeries{{"p50 per second", colP50, p50}, {"p99 per second", colP99, p99}},
		[]histMarker{{"whole-run p50", r.Latency.P50, colP50}, {"whole-run p99", r.Latency.P99, colP99}})
	if p.Empty == "" {
		p.Caption = fmt.Sprintf("How many of the %d seconds had their p50 and p99 in each latency bin. The result keeps percentiles, not every request's latency, "+
			"so this is the spread of the per-second percentiles; dashed lines are the whole-run p50 and p99.", len(p50))
	}
	return p
}

// histogramPlot draws overlapping histograms of the series on shared bins,
// log-spaced when the values span more than a factor of 5.
func histogramPlot(id, title string, series []histSeries, markers []histMarker) svgPlot {
	f := frame{W: 640, H: 290, L: 58, R: 16, T: 16, B: 44}
	p := f.plot(id, title)
	lo, hi, n := math.Inf(1), math.Inf(-1), 0
	for _, s := range series {
		for _, v := range s.Values {
			if v > 0 && !math.IsInf(v, 0) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
				n++
			}
		}
	}
	if n == 0 {
		p.Empty = "The result has no per-second latencies to draw a histogram of."
		return p
	}
	perSeries := n / max(len(series), 1)
	bins := min(30, max(8, int(math.Ceil(2*math.Cbrt(float64(perSeries))))))
	var edges []float64
	var xa axis
	var xt []tick
	if hi/lo > 5 {
		dlo, dhi, t := logTicks(lo, hi)
		xt = t
		xa = axis{lo: dlo, hi: dhi, r0: f.left(), r1: f.right(), log: true}
		l0, l1 := math.Log10(lo), math.Log10(hi)
		for i := 0; i <= bins; i++ {
			edges = append(edges, math.Pow(10, l0+(l1-l0)*float64(i)/float64(bins)))
		}
		edges[len(edges)-1] = math.Nextafter(hi, math.Inf(1))
	} else {
		step := niceStep((hi - lo) / float64(bins))
		if hi == lo {
			step = niceStep(math.Max(lo/10, 0.001))
		}
		start := math.Floor(lo/step) * step
		for e := start; ; e += step {
			edges = append(edges, e)
			if e > hi {
				break
			}
		}
		dlo, dhi, t := linTicks(edges[0], edges[len(edges)-1], 6, 0)
		xt = t
		xa = axis{lo: dlo, hi: dhi, r0: f.left(), r1: f.right()}
	}
	counts := make([][]int, len(series))
	ymax := 0
	for i, s := range series {
		counts[i] = make([]int, len(edges)-1)
		for _, v := range s.Values {
			if !(v > 0) {
				continue
			}
			b := sort.SearchFloat64s(edges, v) // first edge >= v
			if b == len(edges) || edges[b] > v {
				b--
			}
			b = min(max(b, 0), len(edges)-2)
			counts[i][b]++
			ymax = max(ymax, counts[i][b])
		}
	}
	_, yhi, yt := linTicks(0, float64(ymax), 5, 1)
	ya := axis{lo: 0, hi: yhi, r0: f.bottom(), r1: f.top()}
	p.Back = axes(f, xa, ya, xt, yt, "latency (ms)", "seconds")
	for i, s := range series {
		g := svgSeries{Name: s.Name, Class: "bars"}
		for b, c := range counts[i] {
			if c == 0 {
				continue
			}
			x0, x1 := xa.at(edges[b]), xa.at(edges[b+1])
			y := ya.at(float64(c))
			g.Rects = append(g.Rects, svgRect{X: px(x0 + 0.5), Y: px(y), W: px(math.Max(x1-x0-1, 1)), H: px(f.bottom() - y), Fill: s.Color, Class: "bar",
				Title: fmt.Sprintf("%s in %s–%s ms: %d s", s.Name, fmtNum(edges[b]), fmtNum(edges[b+1]), c)})
		}
		p.Series = append(p.Series, g)
		p.Legend = append(p.Legend, legendItem{s.Name, s.Color, "box"})
	}
	for i, m := range markers {
		if !(m.Value > 0) {
			continue
		}
		x := xa.at(m.Value)
		if x < f.left() || x > f.right() {
			continue
		}
		p.Front.line(x, f.top(), x, f.bottom(), "marker", m.Color)
		// staggered, so that labels of close markers do not overlap
		p.Front.text(x+4, f.top()+10+14*float64(i), "start", "marker-label", m.Label+" "+fmtNum(m.Value))
	}
	if len(markers) > 0 {
		p.Legend = append(p.Legend, legendItem{"whole-run percentile", colExpect, "dash"})
	}
	return p
}

// ---------------------------------------------------------------------------
// Traffic split.

// splitPlots draws, for every split check, each version's observed share of
// the service's responses as a bar and the configured share as a marker.
// The observed shares come from Result.Split; a check limited to one load
// variant ("split payment (jason)") uses the check's own Observed shares,
// since Result.Split mixes every variant's traffic.
func splitPlots(r *Result) []svgPlot {
	var plots []svgPlot
	for i, c := range r.Checks {
		if c.Kind != "split" {
			continue
		}
		name := strings.TrimPrefix(c.Name, "split ")
		service, variant, _ := strings.Cut(name, " (")
		variant = strings.TrimSuffix(variant, ")")
		observed := map[string]float64{}
		counts := r.Split[service]
		total := 0
		for _, n := range counts {
			total += n
		}
		source := "Result.Split"
		if variant == "" && total > 0 {
			for v, n := range counts {
				observed[v] = 100 * float64(n) / float64(total)
			}
		} else {
			for v, s := range c.Observed {
				observed[v] = s
			}
			source = "the check's observed shares"
			if variant != "" {
				source += " (variant " + variant + " only)"
			}
		}
		versions := unionKeys(observed, c.Expected)
		plots = append(plots, splitPlot(fmt.Sprintf("split-%d", i), c, service, versions, observed, source))
	}
	return plots
}

func splitPlot(id string, c Check, service string, versions []string, observed map[string]float64, source string) svgPlot {
	const row = 34.0
	f := frame{W: 640, L: 90, R: 150, T: 12, B: 42}
	f.H = f.T + f.B + row*float64(max(len(versions), 1))
	p := f.plot(id, c.Name)
	if len(versions) == 0 {
		p.Empty = "The check has no versions to draw."
		return p
	}
	xa := axis{lo: 0, hi: 100, r0: f.left(), r1: f.right()}
	_, _, xt := linTicks(0, 100, 5, 0)
	for i := range xt {
		xt[i].label += "%"
	}
	p.Back = axes(f, xa, axis{}, xt, nil, "share of "+service+"'s responses", "")
	for _, t := range xt {
		p.Back.line(xa.at(t.v), f.top(), xa.at(t.v), f.bottom(), "grid", "")
	}
	color := colPass
	if !c.Passed {
		color = colFail
	}
	obs := svgSeries{Name: "observed", Class: "bars"}
	exp := svgSeries{Name: "expected", Class: "expected"}
	for i, v := range versions {
		y := f.top() + row*float64(i)
		mid := y + row/2
		p.Back.text(f.left()-8, mid+4, "end", "category", v)
		o := observed[v]
		w := xa.at(o) - xa.at(0)
		obs.Rects = append(obs.Rects, svgRect{X: px(xa.at(0)), Y: px(y + 7), W: px(math.Max(w, 0)), H: px(row - 14), Fill: color, Class: "bar",
			Title: fmt.Sprintf("%s %s: %s%% observed", service, v, fmtNum(o))})
		label := fmt.Sprintf("%s%%", fmtNum(o))
		if e, ok := c.Expected[v]; ok {
			x := xa.at(e)
			exp.Paths = append(exp.Paths, svgPath{
				D:     fmt.Sprintf("M%s %s L%s %s M%s %s l5 5 l-5 5 l-5 -5 Z", px(x), px(y+3), px(x), px(y+row-3), px(x), px(mid-5)),
				Class: "expect", Stroke: colExpect, Fill: colExpect, Title: fmt.Sprintf("%s %s: %s%% configured", service, v, fmtNum(e)),
			})
			label += fmt.Sprintf(" (want %s%%)", fmtNum(e))
		}
		p.Front.text(f.right()+8, mid+4, "start", "value", label)
	}
	p.Series = []svgSeries{obs, exp}
	p.Legend = []legendItem{{"observed share", color, "box"}, {"configured weight", colExpect, "marker"}}
	verdict := "PASS"
	if !c.Passed {
		verdict = "FAIL"
	}
	pv := ""
	if c.PValue != nil {
		pv = ", p = " + strconv.FormatFloat(*c.PValue, 'g', 3, 64)
	}
	p.Caption = fmt.Sprintf("%s: N = %d%s. Observed shares from %s; markers at the weights the config asks for.", verdict, c.N, pv, source)
	return p
}
