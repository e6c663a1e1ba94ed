package reports

// SVG primitives for the HTML report's plots: built as data with
// coordinates in pixels, written by html/template (html.go says why).

import (
	"math"
	"strconv"
	"strings"
)

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
