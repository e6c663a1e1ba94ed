package reports

// The HTML report is one self-contained file: inline CSS and inline SVG, no
// script, no font, no image and no request to any server, so it opens from a
// CI artefact, an e-mail attachment or an air-gapped machine exactly as it
// was written. A Content-Security-Policy meta tag enforces that: a browser
// refuses any network fetch the page might ever grow by mistake.
//
// The plots are drawn here rather than with a charting library on purpose.
// JavaScript libraries (Chart.js, D3, Plotly) would have to be inlined, a few
// hundred kilobytes per report, and a CDN link breaks offline viewing. Go
// plotting libraries (gonum/plot and friends) render through vector back ends
// that embed fonts or emit raster images, and pull in image dependencies the
// module does not otherwise need. The plots needed here are few and simple —
// two line series, overlapping histograms, a curve on a log axis, bars with
// markers and a layered graph — and take a few hundred lines: each is built as
// data with coordinates already in pixels (svgPlot) and written by
// html/template, which escapes every string that comes from the result.
//
// Every plot's <svg> carries data-series="N", and each of its N series is one
// <path class="series"> or <g class="series">, so that tests can count them.

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// HTMLFile is the HTML report of one result (see HTML).
const HTMLFile = "report.html"

// IndexFile is the HTML index of a suite (see HTMLIndex).
const IndexFile = "index.html"

// HTML writes r as one self-contained HTML page: a header with the verdict,
// scenario, description and environment; the load, latency and status codes;
// the table of checks; latency over time (per-second p50 and p99); the
// latency percentile curve and a histogram of the per-second percentiles;
// the traffic split per version against the configured weights; and the
// service graph the sidecars' metrics describe.
func HTML(w io.Writer, r *Result) error {
	return HTMLWithTraces(w, r, nil)
}

// HTMLWithTraces is HTML with a Traces section drawn from t: a waterfall
// of the slowest sampled trace and of the trace r.Traces ties to each
// failed check, linked from the check's row. A nil t draws no traces
// (and says why, when r.Traces records a traces file that failed to read).
func HTMLWithTraces(w io.Writer, r *Result, t *Traces) error {
	if r == nil {
		return errors.New("reports: nil result")
	}
	var b bytes.Buffer
	if err := htmlTemplates.ExecuteTemplate(&b, "report", newReportView(r, t)); err != nil {
		return fmt.Errorf("reports: render HTML: %w", err)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// HTMLIndex writes the index page of a suite: every scenario with its
// verdict, a few numbers and a link to its report. links maps a scenario's
// name to the address of its report, relative to the index; a scenario
// missing from links gets "<name>/report.html", the layout WriteRun and
// WriteSuite produce under one suite folder.
func HTMLIndex(w io.Writer, s *Suite, links map[string]string) error {
	if s == nil {
		return errors.New("reports: nil suite")
	}
	v := indexView{Started: formatStarted(s.Started), Duration: num(s.Duration), NotChecked: s.NotChecked, Inferred: s.Inferred}
	for i, r := range s.Scenarios {
		if r == nil {
			return fmt.Errorf("reports: suite scenario %d is nil", i)
		}
		ok := 0
		for _, c := range r.Checks {
			if c.Passed {
				ok++
			}
		}
		link, found := links[r.Scenario]
		if !found {
			link = url.PathEscape(r.Scenario) + "/" + HTMLFile
		}
		row := indexRow{
			Name: r.Scenario, Link: link, Description: r.Description, Passed: Verdict(r),
			Checks: fmt.Sprintf("%d/%d", ok, len(r.Checks)), Error: r.Error,
			Requests: strconv.Itoa(r.Load.Requests), Success: "-", P50: "-", P99: "-",
		}
		if r.Load.Requests > 0 {
			row.Success = pctString(r.Status.SuccessRate)
			row.P50 = fmtNum(r.Latency.P50) + " ms"
			row.P99 = fmtNum(r.Latency.P99) + " ms"
		}
		if row.Passed {
			v.Passed++
		}
		v.Rows = append(v.Rows, row)
	}
	v.Total = len(v.Rows)
	v.AllPassed = v.Passed == v.Total
	var b bytes.Buffer
	if err := htmlTemplates.ExecuteTemplate(&b, "index", v); err != nil {
		return fmt.Errorf("reports: render HTML index: %w", err)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// faultWindow is a span of the load phase, in seconds since the load
// started, that the latency-over-time plot shades and labels.
type faultWindow struct {
	Start, End float64
	Label      string
}

// faultWindows returns the fault windows of r, for shading. The result model
// does not record injected faults yet, so there is nothing to shade; when it
// does (say a Result.Faults of {Start, End, Target, Kind}), map them here,
// e.g. Label: Kind + " " + Target, and the plot shades them.
func faultWindows(r *Result) []faultWindow {
	var out []faultWindow
	for _, f := range r.Faults {
		if f.End <= f.Start {
			continue // never took effect
		}
		label := f.Name
		if f.Kind != "" {
			label += " (" + f.Kind + " " + f.Target + ")"
		}
		out = append(out, faultWindow{Start: f.Start, End: f.End, Label: label})
	}
	return out
}

// Colours of the series.
const (
	colP50     = "#1f77b4"
	colP99     = "#d62728"
	colCurve   = "#6a3d9a"
	colPass    = "#2e7d32"
	colFail    = "#c62828"
	colWarn    = "#ef6c00"
	colExpect  = "#111111"
	colLoad    = "#455a64"
	colNeutral = "#546e7a"
)

// ---------------------------------------------------------------------------
// The view models the templates render.

type reportView struct {
	R           *Result
	Passed      bool
	Started     string
	Meta        []kv
	Env         []kv
	Load        []kv
	Latency     []kv
	Success     string
	Codes       []codeRow
	Errors      []codeRow
	Checks      []checkRow
	Steps       []stepRow
	StepBreak   string
	Timeline    svgPlot
	Percentiles svgPlot
	Histogram   svgPlot
	Splits      []svgPlot
	SplitNote   string
	Graph       svgPlot
	Traces      *traceView
}

// traceView is the Traces section: its waterfalls, or why there are none.
type traceView struct {
	File       string
	Count      int
	Spans      int
	Error      string
	Waterfalls []svgPlot
}

type kv struct{ K, V string }

type codeRow struct {
	Code, Count, Share string
	Bad                bool
}

type checkRow struct {
	Name, Kind, Test, N, PValue, Summary string
	Passed                               bool
	// TraceAnchor links a failed check to its trace's waterfall; else
	// NoTrace says why it has none.
	TraceAnchor, TraceID, NoTrace string
}

type indexView struct {
	Started, Duration string
	Passed, Total     int
	AllPassed         bool
	Rows              []indexRow
	NotChecked        []NotChecked
	Inferred          []Inferred
}

type indexRow struct {
	Name, Link, Description, Checks, Error string
	Requests, Success, P50, P99            string
	Passed                                 bool
}

func newReportView(r *Result, t *Traces) reportView {
	v := reportView{R: r, Passed: Verdict(r), Started: formatStarted(r.Started)}
	if r.File != "" {
		v.Meta = append(v.Meta, kv{"file", r.File})
	}
	if v.Started != "" {
		v.Meta = append(v.Meta, kv{"started", v.Started})
	}
	v.Meta = append(v.Meta, kv{"took", num(r.Duration) + " s"})
	e := r.Environment
	v.Env = []kv{
		{"runtime", orDash(e.Runtime)}, {"data plane", orDash(e.DataPlane)},
		{"seed", strconv.FormatInt(e.Seed, 10)}, {"Go", orDash(e.GoVersion)},
		{"platform", orDash(strings.Trim(e.OS+"/"+e.Arch, "/"))}, {"CPUs", strconv.Itoa(e.CPUs)},
	}
	l := r.Load
	v.Load = []kv{
		{"target", strings.TrimSpace(orDash(l.Target))}, {"URL", orDash(l.URL)},
		{"rate asked", num(l.TargetRate) + " req/s"}, {"rate achieved", num(l.AchievedRate) + " req/s"},
		{"throughput", num(l.Throughput) + " ok/s"}, {"requests", strconv.Itoa(l.Requests)},
		{"duration", num(l.Duration) + " s"},
	}
	if l.Plan != "" {
		v.Load = append(v.Load, kv{"plan", l.Plan})
	}
	lat := r.Latency
	v.Latency = []kv{
		{"p50", fmtNum(lat.P50)}, {"p90", fmtNum(lat.P90)}, {"p99", fmtNum(lat.P99)},
		{"p99.9", fmtNum(lat.P999)}, {"max", fmtNum(lat.Max)}, {"mean", fmtNum(lat.Mean)},
	}
	v.Success = pctString(r.Status.SuccessRate)
	total := 0
	for _, n := range r.Status.Codes {
		total += n
	}
	for _, code := range sortedKeys(r.Status.Codes) {
		label := code
		if code == "0" {
			label = "0 (transport error)"
		}
		c, _ := strconv.Atoi(code)
		v.Codes = append(v.Codes, codeRow{Code: label, Count: strconv.Itoa(r.Status.Codes[code]), Share: pctString(float64(r.Status.Codes[code]) / float64(total)), Bad: c < 200 || c >= 400})
	}
	for _, e := range sortedKeys(r.Status.Errors) {
		v.Errors = append(v.Errors, codeRow{Code: e, Count: strconv.Itoa(r.Status.Errors[e]), Bad: true})
	}
	for _, c := range r.Checks {
		row := checkRow{Name: c.Name, Kind: c.Kind, Test: c.Test, N: "-", PValue: "-", Summary: c.Summary, Passed: c.Passed}
		if c.N != 0 {
			row.N = strconv.Itoa(c.N)
		}
		if c.PValue != nil {
			row.PValue = strconv.FormatFloat(*c.PValue, 'g', 3, 64)
		}
		v.Checks = append(v.Checks, row)
	}
	v.Traces = newTraceView(r, t, v.Checks)

	bound := p99Bound(r)
	v.Steps, v.StepBreak = stepRows(r, bound), firstBreak(r, bound)
	v.Timeline = timelinePlot(r.Timeline, faultWindows(r))
	v.Percentiles = percentilePlot(r.Latency, requestsOf(r))
	v.Histogram = timelineHistogram(r)
	v.Splits = splitPlots(r)
	if len(v.Splits) == 0 {
		v.SplitNote = "No split check in this scenario."
	}
	v.Graph = graphPlot(r)
	return v
}

// requestsOf is the number of requests behind r's latency percentiles.
func requestsOf(r *Result) int {
	if r.Load.Requests > 0 {
		return r.Load.Requests
	}
	n := 0
	for _, c := range r.Status.Codes {
		n += c
	}
	return n
}

func formatStarted(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// ---------------------------------------------------------------------------
// SVG primitives. Coordinates are pixels in the plot's viewBox.

// px is a coordinate, written with at most one decimal.
type px float64

func (p px) String() string {
	v := math.Round(float64(p)*10) / 10
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0 // also turns -0 into 0
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

type svgRect struct {
	X, Y, W, H, RX px
	Class, Fill    string
	Title          string
}

type svgLine struct {
	X1, Y1, X2, Y2 px
	Class, Stroke  string
}

type svgPath struct {
	D, Class, Stroke, Fill string
	Width                  px // stroke width; 0 leaves it to the CSS
	Title                  string
}

type svgCircle struct {
	X, Y, R     px
	Class, Fill string
	Title       string
}

type svgText struct {
	X, Y          px
	Anchor, Class string // Anchor: start, middle or end
	Text          string
	Rotate        bool // rotated -90° about (X, Y), for a y axis title
}

// svgLock is a padlock icon, the mark of an mTLS edge, with its top-left
// corner at (X, Y). It is drawn rather than written as the 🔒 emoji so that
// it shows without an emoji font; its tooltip carries the emoji.
type svgLock struct {
	X, Y  px
	Title string
}

type svgLayer struct {
	Rects   []svgRect
	Lines   []svgLine
	Paths   []svgPath
	Circles []svgCircle
	Texts   []svgText
	Locks   []svgLock
}

func (l *svgLayer) text(x, y float64, anchor, class, s string) {
	l.Texts = append(l.Texts, svgText{X: px(x), Y: px(y), Anchor: anchor, Class: class, Text: s})
}

func (l *svgLayer) line(x1, y1, x2, y2 float64, class, stroke string) {
	l.Lines = append(l.Lines, svgLine{X1: px(x1), Y1: px(y1), X2: px(x2), Y2: px(y2), Class: class, Stroke: stroke})
}

// svgSeries is one data series: a line (one <path class="series">) or, when
// Line is nil, a group of shapes (<g class="series">).
type svgSeries struct {
	Name, Class string
	Line        *svgPath
	svgLayer
}

// svgPlot is one figure.
type svgPlot struct {
	ID, Title, Caption string
	W, H               px
	Back               svgLayer // grid, axes, shading
	Series             []svgSeries
	Front              svgLayer // labels and markers over the data
	Legend             []legendItem
	// Empty, when set, replaces the figure with this sentence saying why
	// there is nothing to draw.
	Empty string
}

// legendItem is a swatch and a label above a plot. Kind is line, box,
// marker or dash.
type legendItem struct {
	Label, Color, Kind string
}

// frame is a plot's size and margins, in pixels.
type frame struct{ W, H, L, R, T, B float64 }

func (f frame) left() float64   { return f.L }
func (f frame) right() float64  { return f.W - f.R }
func (f frame) top() float64    { return f.T }
func (f frame) bottom() float64 { return f.H - f.B }

func (f frame) plot(id, title string) svgPlot {
	return svgPlot{ID: id, Title: title, W: px(f.W), H: px(f.H)}
}

// axis maps a data interval onto a pixel interval, linearly or by log10.
type axis struct {
	lo, hi float64
	r0, r1 float64
	log    bool
}

func (a axis) at(v float64) float64 {
	lo, hi := a.lo, a.hi
	if a.log {
		lo, hi, v = math.Log10(lo), math.Log10(hi), math.Log10(math.Max(v, a.lo))
	}
	if hi == lo || math.IsNaN(v) {
		return (a.r0 + a.r1) / 2
	}
	return a.r0 + (v-lo)/(hi-lo)*(a.r1-a.r0)
}

type tick struct {
	v     float64
	label string
}

// niceStep rounds a raw step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(raw)))
	switch f := raw / e; {
	case f <= 1:
		return e
	case f <= 2:
		return 2 * e
	case f <= 5:
		return 5 * e
	default:
		return 10 * e
	}
}

// linTicks widens [lo, hi] to multiples of a nice step giving about n
// intervals and returns the widened interval and its ticks.
func linTicks(lo, hi float64, n int, minStep float64) (float64, float64, []tick) {
	if hi < lo {
		lo, hi = hi, lo
	}
	step := math.Max(niceStep((hi-lo)/float64(n)), minStep)
	nlo := math.Floor(lo/step) * step
	nhi := math.Ceil(hi/step) * step
	if nhi <= nlo {
		nhi = nlo + step
	}
	decimals := 0
	if step < 1 {
		decimals = int(math.Ceil(-math.Log10(step) - 1e-9))
	}
	var ticks []tick
	for i := 0; ; i++ {
		v := nlo + float64(i)*step
		if v > nhi+step/2 {
			break
		}
		ticks = append(ticks, tick{v, strconv.FormatFloat(v, 'f', decimals, 64)})
	}
	return nlo, nhi, ticks
}

// logTicks pads [lo, hi] (lo > 0) by a tenth on the log scale and returns
// it with ticks at 1, 2 and 5 times each power of ten inside it.
func logTicks(lo, hi float64) (float64, float64, []tick) {
	pad := math.Max(math.Log10(hi/lo), 0.3) / 10
	lo, hi = lo/math.Pow(10, pad), hi*math.Pow(10, pad)
	var ticks []tick
	for d := math.Floor(math.Log10(lo)); d <= math.Ceil(math.Log10(hi)); d++ {
		for _, m := range []float64{1, 2, 5} {
			if v := m * math.Pow(10, d); v >= lo && v <= hi {
				ticks = append(ticks, tick{v, fmtNum(v)})
			}
		}
	}
	return lo, hi, ticks
}

// axes draws the grid, the axis lines, ticks with labels and axis titles.
func axes(f frame, xa, ya axis, xt, yt []tick, xTitle, yTitle string) svgLayer {
	var l svgLayer
	for _, t := range yt {
		y := ya.at(t.v)
		l.line(f.left(), y, f.right(), y, "grid", "")
		l.text(f.left()-6, y+4, "end", "tick", t.label)
	}
	for _, t := range xt {
		x := xa.at(t.v)
		l.line(x, f.bottom(), x, f.bottom()+5, "axis", "")
		l.text(x, f.bottom()+18, "middle", "tick", t.label)
	}
	l.line(f.left(), f.bottom(), f.right(), f.bottom(), "axis", "")
	l.line(f.left(), f.top(), f.left(), f.bottom(), "axis", "")
	if xTitle != "" {
		l.text((f.left()+f.right())/2, f.H-6, "middle", "axis-title", xTitle)
	}
	if yTitle != "" {
		l.Texts = append(l.Texts, svgText{X: px(14), Y: px((f.top() + f.bottom()) / 2), Anchor: "middle", Class: "axis-title", Text: yTitle, Rotate: true})
	}
	return l
}

// fmtNum writes a measurement with about three significant digits.
func fmtNum(v float64) string {
	a := math.Abs(v)
	var s string
	switch {
	case a >= 100:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	default:
		s = strconv.FormatFloat(v, 'f', 3, 64)
	}
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// ---------------------------------------------------------------------------
// Latency over time.

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

// ---------------------------------------------------------------------------
// Service graph.

type graphEdge struct {
	from, to string
	rps, ok  float64
	p99      string
	mtls     bool
	flags    string
	requests int
	service  string
}

// graphPlot draws the service graph, Kiali-style: one box per workload in
// Result.Hops plus a "load" node that feeds the first source; columns left
// to right by depth from the load; each edge labelled with requests per
// second, success rate and p99, and a lock where the hop used mTLS.
func graphPlot(r *Result) svgPlot {
	const nodeH, colGap, rowGap, maxLabel = 34.0, 170.0, 78.0, 24
	if len(r.Hops) == 0 {
		p := frame{W: 640, H: 100}.plot("service-graph", "Service graph")
		p.Empty = "The result has no service-graph edges (the sidecars' metrics were not read)."
		return p
	}
	// Nodes in order of first appearance, which keeps v1 above v2.
	var order []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			order = append(order, n)
		}
	}
	const load = loadNode
	add(load)
	isDest := map[string]bool{}
	for _, h := range r.Hops {
		isDest[h.Destination] = true
	}
	var edges []graphEdge
	root := ""
	for _, h := range r.Hops {
		if !isDest[h.Source] {
			root = h.Source
			break
		}
	}
	if root == "" {
		root = r.Hops[0].Source // every source is also called: a cycle
	}
	add(root)
	edges = append(edges, graphEdge{from: load, to: root, rps: r.Load.AchievedRate, ok: r.Status.SuccessRate,
		p99: fmtNum(r.Latency.P99) + " ms", requests: r.Load.Requests, service: r.Load.Target})
	for _, h := range r.Hops {
		add(h.Source)
		add(h.Destination)
		var flags []string
		for _, k := range sortedKeys(h.Flags) {
			flags = append(flags, fmt.Sprintf("%s×%d", k, h.Flags[k]))
		}
		edges = append(edges, graphEdge{from: h.Source, to: h.Destination, rps: h.RPS, ok: h.SuccessRate,
			p99: "≤" + fmtNum(h.P99) + " ms", mtls: h.MTLS, flags: strings.Join(flags, " "), requests: h.Requests, service: h.Service})
	}

	// Depth by breadth-first search from the load; nodes it cannot reach
	// start a new search one column right of the load.
	depth := map[string]int{}
	out := map[string][]string{}
	for _, e := range edges {
		out[e.from] = append(out[e.from], e.to)
	}
	bfs := func(start string, d int) {
		depth[start] = d
		queue := []string{start}
		for len(queue) > 0 {
			n := queue[0]
			queue = queue[1:]
			for _, m := range out[n] {
				if _, ok := depth[m]; !ok {
					depth[m] = depth[n] + 1
					queue = append(queue, m)
				}
			}
		}
	}
	bfs(load, 0)
	for _, n := range order {
		if _, ok := depth[n]; !ok {
			bfs(n, 1)
		}
	}
	// Boxes fit the longest name, at about 7.5 px a rune of the bold label.
	nodeW := 110.0
	for _, n := range order {
		nodeW = math.Max(nodeW, 7.5*float64(min(len([]rune(n)), maxLabel))+18)
	}
	maxDepth, rows := 0, map[int]int{}
	pos := map[string][2]float64{} // column, row
	for _, n := range order {
		d := depth[n]
		pos[n] = [2]float64{float64(d), float64(rows[d])}
		rows[d]++
		maxDepth = max(maxDepth, d)
	}
	maxRows := 0
	for _, n := range rows {
		maxRows = max(maxRows, n)
	}
	f := frame{L: 16, R: 16, T: 16, B: 16}
	for _, e := range edges {
		if depth[e.to] <= depth[e.from] {
			f.B = 72 // room for the loops of backward edges under the boxes
		}
	}
	f.W = math.Max(640, f.L+f.R+nodeW+float64(maxDepth)*(nodeW+colGap))
	f.H = f.T + f.B + float64(maxRows)*nodeH + float64(maxRows-1)*(rowGap-nodeH)
	p := f.plot("service-graph", "Service graph")
	// Columns with fewer nodes are centred vertically.
	box := func(n string) (x, y float64) {
		c := pos[n]
		k := float64(rows[int(c[0])])
		span := k*nodeH + (k-1)*(rowGap-nodeH)
		y0 := f.T + (f.H-f.T-f.B-span)/2
		return f.L + c[0]*(nodeW+colGap), y0 + c[1]*rowGap
	}
	maxBottom := 0.0
	for _, n := range order {
		_, y := box(n)
		maxBottom = math.Max(maxBottom, y+nodeH)
	}
	maxRPS := 0.0
	for _, e := range edges {
		maxRPS = math.Max(maxRPS, e.rps)
	}
	// Spread the ends of several edges leaving or entering one node.
	outIdx, inIdx, outN, inN := map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	for _, e := range edges {
		outN[e.from]++
		inN[e.to]++
	}
	for _, e := range edges {
		fx, fy := box(e.from)
		tx, ty := box(e.to)
		spread := func(i, n int) float64 { return (float64(i) - float64(n-1)/2) * 8 }
		x1, y1 := fx+nodeW, fy+nodeH/2+spread(outIdx[e.from], outN[e.from])
		x2, y2 := tx, ty+nodeH/2+spread(inIdx[e.to], inN[e.to])
		outIdx[e.from]++
		inIdx[e.to]++
		color := colPass
		switch errRate := 1 - e.ok; {
		case e.requests == 0:
			color = colNeutral
		case errRate > 0.05:
			color = colFail
		case errRate > 0.001:
			color = colWarn
		}
		width := 1.5
		if maxRPS > 0 {
			width += 3 * math.Log1p(e.rps) / math.Log1p(maxRPS)
		}
		var d string
		var lx, ly float64
		if x2 > x1 { // forward: an S curve
			cx := (x2 - x1) / 2
			d = fmt.Sprintf("M%s %s C%s %s %s %s %s %s", px(x1), px(y1), px(x1+cx), px(y1), px(x2-cx), px(y2), px(x2-9), px(y2))
			// Labels of edges fanning out of one node sit near their
			// destinations, those of edges fanning into one node near
			// their sources, so that they stay apart.
			t := 0.5
			if outN[e.from] > 1 {
				t = 0.62
			} else if inN[e.to] > 1 {
				t = 0.38
			}
			lx, ly = x1+bezierX(t)*(x2-x1), y1+bezierY(t, y1, y2)
		} else { // backward or same column: loop under every box
			below := maxBottom + 24
			x2 = tx + nodeW/2
			y2 = ty + nodeH + 9
			d = fmt.Sprintf("M%s %s C%s %s %s %s %s %s", px(x1), px(y1), px(x1+60), px(below), px(x2), px(below), px(x2), px(y2))
			// the label goes under the loop's lowest point
			lx, ly = (x1+60+x2)/2, 0.75*below+0.125*(y1+y2)+30
		}
		label := fmt.Sprintf("%s rps · %s", fmtNum(e.rps), successLabel(e.ok))
		tip := fmt.Sprintf("%s → %s (%s): %d requests, %s req/s, success %s, p99 %s", nodeName(e.from), e.to, orDash(e.service), e.requests, fmtNum(e.rps), successLabel(e.ok), e.p99)
		if e.mtls {
			tip += ", 🔒 mTLS"
		}
		if e.flags != "" {
			tip += ", response flags " + e.flags
		}
		s := svgSeries{Name: nodeName(e.from) + " → " + e.to, Class: "edge"}
		s.Paths = append(s.Paths, svgPath{D: d, Class: "edge-line", Stroke: color, Fill: "none", Width: px(width), Title: tip})
		if x2 > x1 {
			s.Paths = append(s.Paths, svgPath{D: fmt.Sprintf("M%s %s l-10 -5 l0 10 Z", px(x2), px(y2)), Stroke: color, Fill: color})
		} else {
			s.Paths = append(s.Paths, svgPath{D: fmt.Sprintf("M%s %s l-5 10 l10 0 Z", px(x2), px(y2-9)), Stroke: color, Fill: color})
		}
		second := "p99 " + e.p99
		if e.flags != "" {
			second += " · " + e.flags
		}
		// The two lines start at one x, about centred on the label's
		// point (6.2 px a rune is a guess at the width; SVG cannot measure
		// text without script). The lock goes left of that start, so a
		// wrong guess moves the label a little but never overlaps.
		w := 6.2 * float64(max(len([]rune(label)), len([]rune(second))))
		x0 := lx - w/2
		if e.mtls {
			x0 += 8
			s.Locks = append(s.Locks, svgLock{X: px(x0 - 15), Y: px(ly - 26), Title: "🔒 mTLS: " + nodeName(e.from) + " → " + e.to})
		}
		s.text(x0, ly-16, "start", "edge-label", label)
		s.text(x0, ly-3, "start", "edge-label", second)
		p.Series = append(p.Series, s)
	}
	for _, n := range order {
		x, y := box(n)
		class := "node"
		if n == load {
			class = "node load"
		}
		p.Front.Rects = append(p.Front.Rects, svgRect{X: px(x), Y: px(y), W: px(nodeW), H: nodeH, RX: 6, Class: class, Title: n})
		label := n
		if len([]rune(label)) > maxLabel {
			label = string([]rune(label)[:maxLabel-1]) + "…"
		}
		if n == load {
			label = "load"
			p.Front.Rects[len(p.Front.Rects)-1].Title = fmt.Sprintf("load generator: %s req/s against %s", num(r.Load.AchievedRate), orDash(r.Load.Target))
		}
		p.Front.text(x+nodeW/2, y+nodeH/2+4, "middle", "node-label", label)
	}
	mtls := 0
	for _, e := range edges {
		if e.mtls {
			mtls++
		}
	}
	p.Legend = []legendItem{{"healthy (≤0.1% errors)", colPass, "line"}, {"degraded (≤5%)", colWarn, "line"}, {"failing (>5%)", colFail, "line"}}
	p.Caption = fmt.Sprintf("Workloads and the requests between them as the sidecars' source-side metrics counted them (%d edges, %d with mTLS, marked with a lock). "+
		"Edge labels: requests per second · success rate, then p99 (hops: upper bound of the histogram bucket; load: the HDR p99 the load generator measured). "+
		"Line width grows with the request rate.", len(edges), mtls)
	return p
}

// successLabel writes a success rate in percent with two decimals, rounded
// down so that a rate below 1 never shows as 100%.
func successLabel(f float64) string {
	return strconv.FormatFloat(math.Floor(f*10000)/100, 'f', -1, 64) + "%"
}

// unionKeys returns the keys of a and b, sorted.
func unionKeys[A, B any](a map[string]A, b map[string]B) []string {
	seen := make(map[string]bool, len(a)+len(b))
	var keys []string
	for k := range a {
		seen[k] = true
		keys = append(keys, k)
	}
	for k := range b {
		if !seen[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// loadNode is the service graph's node for the load generator: not a valid
// workload name, so that no workload collides with it.
const loadNode = "(load)"

func nodeName(n string) string {
	if n == loadNode {
		return "load"
	}
	return n
}

// bezierX is how far along (0 to 1) the S curve with control points at
// half the width has come horizontally at parameter t.
func bezierX(t float64) float64 {
	// control points 0, 1/2, 1/2, 1: B(t) = 1.5t(1-t) + t³
	return 1.5*t*(1-t) + t*t*t
}

// bezierY is the offset from y1 of the S curve from (.., y1) to (.., y2)
// with horizontal tangents, at parameter t.
func bezierY(t, y1, y2 float64) float64 {
	// control points y1, y1, y2, y2: B(t) = y1 + (y2-y1)(3t² - 2t³)
	return (y2 - y1) * (3*t*t - 2*t*t*t)
}

// ---------------------------------------------------------------------------
// Templates.

var htmlTemplates = template.Must(template.New("").Parse(htmlCSS + htmlSVG + htmlReport + htmlIndex))

const htmlCSS = `{{define "head"}}<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<style>
:root { --fg: #1d2330; --muted: #5f6b7a; --line: #d8dde4; --bg: #ffffff; --panel: #f6f8fa; --pass: #2e7d32; --fail: #c62828; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 1360px; margin: 0 auto; padding: 20px 24px 40px; }
header { display: flex; gap: 16px; align-items: flex-start; border-bottom: 1px solid var(--line); padding-bottom: 14px; margin-bottom: 16px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 26px 0 10px; }
h3 { font-size: 14px; margin: 0 0 6px; }
p { margin: 4px 0; }
.muted, .caption { color: var(--muted); }
.caption { font-size: 12.5px; margin-top: 4px; }
.badge { display: inline-block; font-weight: 700; letter-spacing: .04em; border-radius: 6px; padding: 6px 12px; color: #fff; font-size: 15px; white-space: nowrap; }
.badge.pass { background: var(--pass); } .badge.fail { background: var(--fail); }
.tag { display: inline-block; font-weight: 700; font-size: 12px; border-radius: 4px; padding: 1px 7px; color: #fff; }
.tag.pass { background: var(--pass); } .tag.fail { background: var(--fail); }
.error { background: #fdecea; border: 1px solid #f5c2c0; border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; word-break: break-all; }
.panels { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 14px; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 16px; }
figure { margin: 0; background: var(--bg); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
figure.wide { grid-column: 1 / -1; }
figcaption { font-weight: 600; margin-bottom: 4px; }
figure svg.chart { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12.5px; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.bad { color: var(--fail); }
.test { display: block; color: var(--muted); font-size: 12px; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12.5px; color: var(--muted); margin-bottom: 4px; }
.legend svg { vertical-align: -1px; margin-right: 4px; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; fill: #33404f; }
svg .tick { font-size: 11px; fill: #5f6b7a; }
svg .axis-title { font-size: 12px; fill: #5f6b7a; }
svg .grid { stroke: #e7eaee; stroke-width: 1; }
svg .axis { stroke: #8a96a3; stroke-width: 1; }
svg .series { fill: none; stroke-linejoin: round; stroke-linecap: round; }
svg g.series.bars { stroke: none; }
svg .bar { opacity: .72; }
svg .fault { fill: #f4b400; opacity: .18; }
svg .fault-label { font-size: 11px; fill: #8a6400; }
svg .errmark { fill: #c62828; }
svg .value { font-size: 11.5px; font-weight: 600; }
svg .category { font-size: 12.5px; font-weight: 600; }
svg .marker { stroke-width: 1.5; stroke-dasharray: 5 4; }
svg .marker-label { font-size: 11px; }
svg .node { fill: #ffffff; stroke: #455a64; stroke-width: 1.5; }
svg .node.load { fill: #eceff1; stroke-dasharray: 4 3; }
svg .node-label { font-size: 12.5px; font-weight: 600; }
svg .edge-label { font-size: 11px; paint-order: stroke; stroke: #ffffff; stroke-width: 4px; stroke-linejoin: round; }
svg .lock-bg { fill: #ffffff; } svg .lock-body { fill: #455a64; } svg .lock-shackle { fill: none; stroke: #455a64; stroke-width: 1.6; }
svg .zebra { fill: #f6f8fa; }
svg .tree { fill: none; stroke: #b0bac5; stroke-width: 1; }
svg .span-svc { font-size: 12px; font-weight: 600; }
svg .span-kind, svg .span-dur, svg .span-status { font-size: 11.5px; fill: #5f6b7a; font-variant-numeric: tabular-nums; }
svg .span-name { font-size: 12px; }
svg .span-status.bad { fill: #c62828; font-weight: 600; }
svg .annotation { fill: #ef6c00; stroke: #ffffff; stroke-width: .8; }
a.trace-link { display: block; font-size: 12px; }
a { color: #1565c0; }
</style>{{end}}`

const htmlSVG = `{{define "layer"}}{{range .Rects}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"{{if .RX}} rx="{{.RX}}"{{end}}{{if .Class}} class="{{.Class}}"{{end}}{{if .Fill}} fill="{{.Fill}}"{{end}}>{{if .Title}}<title>{{.Title}}</title>{{end}}</rect>{{end}}
{{- range .Lines}}<line x1="{{.X1}}" y1="{{.Y1}}" x2="{{.X2}}" y2="{{.Y2}}"{{if .Class}} class="{{.Class}}"{{end}}{{if .Stroke}} stroke="{{.Stroke}}"{{end}}/>{{end}}
{{- range .Paths}}<path d="{{.D}}"{{if .Class}} class="{{.Class}}"{{end}}{{if .Stroke}} stroke="{{.Stroke}}"{{end}}{{if .Fill}} fill="{{.Fill}}"{{end}}{{if .Width}} stroke-width="{{.Width}}"{{end}}>{{if .Title}}<title>{{.Title}}</title>{{end}}</path>{{end}}
{{- range .Circles}}<circle cx="{{.X}}" cy="{{.Y}}" r="{{.R}}"{{if .Class}} class="{{.Class}}"{{end}}{{if .Fill}} fill="{{.Fill}}"{{end}}>{{if .Title}}<title>{{.Title}}</title>{{end}}</circle>{{end}}
{{- range .Texts}}<text x="{{.X}}" y="{{.Y}}" text-anchor="{{.Anchor}}"{{if .Class}} class="{{.Class}}"{{end}}{{if .Rotate}} transform="rotate(-90 {{.X}} {{.Y}})"{{end}}>{{.Text}}</text>{{end}}
{{- range .Locks}}<g class="lock" transform="translate({{.X}} {{.Y}})" role="img" aria-label="mTLS"><title>{{.Title}}</title><rect class="lock-bg" x="-2" y="-1.5" width="14" height="15" rx="3"/><path class="lock-shackle" d="M2.5 5 V3.2 a2.5 2.5 0 0 1 5 0 V5"/><rect class="lock-body" x="0.5" y="5" width="9" height="6.5" rx="1.2"/></g>{{end}}
{{- end}}
{{define "plot"}}<figure class="plot{{if ge .W 700.0}} wide{{end}}" id="{{.ID}}">
<figcaption>{{.Title}}</figcaption>
{{- if .Empty}}
<p class="muted">{{.Empty}}</p>
{{- else}}
{{- if .Legend}}
<div class="legend">{{range .Legend}}<span><svg width="18" height="10" aria-hidden="true">{{if eq .Kind "box"}}<rect x="2" y="1" width="14" height="8" fill="{{.Color}}" opacity=".75"/>{{else if eq .Kind "marker"}}<path d="M9 0 V10 M9 2 l3 3 l-3 3 l-3 -3 Z" stroke="{{.Color}}" fill="{{.Color}}"/>{{else if eq .Kind "dash"}}<line x1="1" y1="5" x2="17" y2="5" stroke="{{.Color}}" stroke-width="1.5" stroke-dasharray="4 3"/>{{else}}<line x1="1" y1="5" x2="17" y2="5" stroke="{{.Color}}" stroke-width="2.5"/>{{end}}</svg>{{.Label}}</span>{{end}}</div>
{{- end}}
<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {{.W}} {{.H}}" width="{{.W}}" height="{{.H}}" role="img" aria-label="{{.Title}}" data-plot="{{.ID}}" data-series="{{len .Series}}">
<g class="back">{{template "layer" .Back}}</g>
{{range .Series}}{{if .Line}}<path class="series {{.Class}}" data-name="{{.Name}}" d="{{.Line.D}}" stroke="{{.Line.Stroke}}" stroke-width="{{.Line.Width}}" fill="none"><title>{{.Line.Title}}</title></path>
{{else}}<g class="series {{.Class}}" data-name="{{.Name}}">{{template "layer" .}}</g>
{{end}}{{end -}}
<g class="front">{{template "layer" .Front}}</g>
</svg>
{{- if .Caption}}
<p class="caption">{{.Caption}}</p>
{{- end}}
{{- end}}
</figure>
{{end}}`

const htmlReport = `{{define "report"}}<!DOCTYPE html>
<html lang="en">
<head>
{{template "head"}}
<title>meshbench: {{.R.Scenario}} — {{if .Passed}}PASS{{else}}FAIL{{end}}</title>
</head>
<body>
<main>
<header>
<span class="badge {{if .Passed}}pass{{else}}fail{{end}}" id="verdict">{{if .Passed}}PASS{{else}}FAIL{{end}}</span>
<div>
<h1>{{.R.Scenario}}</h1>
{{- if .R.Description}}
<p>{{.R.Description}}</p>
{{- end}}
<p class="muted">{{range $i, $m := .Meta}}{{if $i}} · {{end}}{{$m.K}} {{$m.V}}{{end}}</p>
</div>
</header>
{{- if .R.Error}}
<div class="error"><strong>Run error:</strong> {{.R.Error}}</div>
{{- end}}
<section class="panels">
<div class="panel"><h3>Environment</h3><dl class="facts">{{range .Env}}<dt>{{.K}}</dt><dd>{{.V}}</dd>{{end}}</dl></div>
<div class="panel"><h3>Load</h3><dl class="facts">{{range .Load}}<dt>{{.K}}</dt><dd>{{.V}}</dd>{{end}}</dl></div>
<div class="panel"><h3>Latency (ms) and status</h3>
<table><tr>{{range .Latency}}<th class="num">{{.K}}</th>{{end}}</tr><tr>{{range .Latency}}<td class="num">{{.V}}</td>{{end}}</tr></table>
<p style="margin-top:8px">success rate <strong>{{.Success}}</strong></p>
{{- if .Codes}}
<table><tr><th>code</th><th class="num">count</th><th class="num">share</th></tr>{{range .Codes}}<tr><td{{if .Bad}} class="bad"{{end}}>{{.Code}}</td><td class="num">{{.Count}}</td><td class="num">{{.Share}}</td></tr>{{end}}</table>
{{- end}}
{{- if .Errors}}
<table><tr><th>transport error</th><th class="num">count</th></tr>{{range .Errors}}<tr><td class="bad">{{.Code}}</td><td class="num">{{.Count}}</td></tr>{{end}}</table>
{{- end}}
</div>
</section>

<h2>Checks</h2>
{{- if .Checks}}
<table id="checks">
<thead><tr><th>check</th><th>verdict</th><th class="num">N</th><th class="num">p-value</th><th>summary</th></tr></thead>
<tbody>
{{- range .Checks}}
<tr><td>{{.Name}}</td><td><span class="tag {{if .Passed}}pass{{else}}fail{{end}}">{{if .Passed}}PASS{{else}}FAIL{{end}}</span></td><td class="num">{{.N}}</td><td class="num">{{.PValue}}</td><td>{{.Summary}}{{if .Test}}<span class="test">test: {{.Test}}</span>{{end}}{{if .TraceAnchor}}<a class="trace-link" href="#{{.TraceAnchor}}">trace {{.TraceID}}</a>{{else if .NoTrace}}<span class="test">no trace: {{.NoTrace}}</span>{{end}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p class="muted">No checks.</p>
{{- end}}

{{- if .Steps}}
<h2>Load plan steps</h2>
<p class="muted">Each step's requests are those its pacer planned in its window, their latency counted from the planned send; achieved is the rate they were actually sent at.</p>
{{- if .StepBreak}}
<p id="step-break">{{.StepBreak}}</p>
{{- end}}
<table id="steps">
<thead><tr><th class="num">step</th><th>window</th><th class="num">rate asked</th><th class="num">achieved</th><th class="num">requests</th><th class="num">success</th><th class="num">p50</th><th class="num">p90</th><th class="num">p99</th><th class="num">p99.9</th></tr></thead>
<tbody>
{{- range .Steps}}
<tr><td class="num">{{.Index}}</td><td>{{.Window}}</td><td class="num">{{.Target}}</td><td class="num">{{.Achieved}}</td><td class="num">{{.Requests}}</td><td class="num">{{.Success}}</td><td class="num">{{.P50}}</td><td class="num">{{.P90}}</td><td class="num{{if .Over}} bad{{end}}">{{.P99}}</td><td class="num">{{.P999}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}

<h2>Latency</h2>
<div class="plots">
{{template "plot" .Timeline}}
{{template "plot" .Percentiles}}
{{template "plot" .Histogram}}
</div>

<h2>Traffic split</h2>
{{- if .Splits}}
<div class="plots">
{{range .Splits}}{{template "plot" .}}{{end}}
</div>
{{- else}}
<p class="muted">{{.SplitNote}}</p>
{{- end}}

<h2>Service graph</h2>
<div class="plots">
{{template "plot" .Graph}}
</div>
{{- with .Traces}}

<h2 id="traces">Traces</h2>
{{- if .Error}}
<p class="muted">No traces drawn: {{.Error}}</p>
{{- else}}
<p class="muted">{{.Count}} sampled traces ({{.Spans}} spans) in {{.File}}, which Jaeger and Zipkin import. One row per span, children under their parent; bars to scale from the trace's start.</p>
<div class="plots">
{{range .Waterfalls}}{{template "plot" .}}{{end}}
</div>
{{- end}}
{{- end}}
</main>
</body>
</html>
{{end}}`

const htmlIndex = `{{define "index"}}<!DOCTYPE html>
<html lang="en">
<head>
{{template "head"}}
<title>meshbench: {{.Passed}} of {{.Total}} scenarios passed</title>
</head>
<body>
<main>
<header>
<span class="badge {{if .AllPassed}}pass{{else}}fail{{end}}" id="verdict">{{if .AllPassed}}PASS{{else}}FAIL{{end}}</span>
<div>
<h1>meshbench: {{.Passed}} of {{.Total}} scenarios passed</h1>
<p class="muted">{{if .Started}}started {{.Started}} · {{end}}took {{.Duration}} s</p>
</div>
</header>
<table id="scenarios">
<thead><tr><th>scenario</th><th>verdict</th><th class="num">checks passed</th><th class="num">requests</th><th class="num">success</th><th class="num">p50</th><th class="num">p99</th><th>description</th></tr></thead>
<tbody>
{{- range .Rows}}
<tr><td><a href="{{.Link}}">{{.Name}}</a></td><td><span class="tag {{if .Passed}}pass{{else}}fail{{end}}">{{if .Passed}}PASS{{else}}FAIL{{end}}</span></td><td class="num">{{.Checks}}</td><td class="num">{{.Requests}}</td><td class="num">{{.Success}}</td><td class="num">{{.P50}}</td><td class="num">{{.P99}}</td><td>{{.Description}}{{if .Error}}<span class="test bad">run error: {{.Error}}</span>{{end}}</td></tr>
{{- end}}
</tbody>
</table>
{{- if .NotChecked}}
<h2>Not checked</h2>
<table>
<thead><tr><th>source</th><th>resource</th><th>promise</th><th>why</th></tr></thead>
<tbody>
{{- range .NotChecked}}
<tr><td>{{.Source}}</td><td>{{.Resource}}</td><td>{{.Promise}}</td><td>{{.Why}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
{{- if .Inferred}}
<h2>Inferred from the input</h2>
<table>
<thead><tr><th>kind</th><th>name</th><th>source</th><th>detail</th></tr></thead>
<tbody>
{{- range .Inferred}}
<tr><td>{{.Kind}}</td><td>{{.Name}}</td><td>{{.Source}}</td><td>{{.Detail}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
</main>
</body>
</html>
{{end}}`
