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
	"io"
	"net/url"
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
// A suite of meshbench check (one with Resources) has a section per
// resource instead: a heading "Kind namespace/name (file:line)", then
// each of its promises with the verdict of its scenario and a link to
// the scenario's report, or why it is not checked.
func HTMLIndex(w io.Writer, s *Suite, links map[string]string) error {
	if s == nil {
		return errors.New("reports: nil suite")
	}
	v := indexView{Started: formatStarted(s.Started), Duration: num(s.Duration), NotChecked: s.NotChecked, Inferred: s.Inferred}
	rows := map[string]*indexRow{}
	// Sized once: rows points into it.
	all := make([]indexRow, 0, len(s.Scenarios))
	for i, r := range s.Scenarios {
		if r == nil {
			return fmt.Errorf("reports: suite scenario %d is nil", i)
		}
		row := newIndexRow(r, links)
		if row.Passed {
			v.Passed++
		}
		all = append(all, row)
		rows[r.Scenario] = &all[len(all)-1]
	}
	v.Total = len(all)
	v.AllPassed = v.Passed == v.Total
	secs, rest := sections(s)
	if secs == nil {
		v.Rows = all
	}
	for i, sec := range secs {
		is := indexSection{Heading: sec.Heading, ID: fmt.Sprintf("resource-%d", i+1), NotChecked: sec.NotChecked}
		for _, c := range sec.Checks {
			is.Checks = append(is.Checks, indexCheck{ResourceCheck: c.ResourceCheck, Row: rows[c.Scenario]})
		}
		v.Sections = append(v.Sections, is)
	}
	for _, r := range rest {
		v.Rows = append(v.Rows, *rows[r.Scenario])
	}
	var b bytes.Buffer
	if err := htmlTemplates.ExecuteTemplate(&b, "index", v); err != nil {
		return fmt.Errorf("reports: render HTML index: %w", err)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// newIndexRow is a scenario's row of the index.
func newIndexRow(r *Result, links map[string]string) indexRow {
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
	return row
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
	// Sections are a suite's resources (meshbench check); Rows are then
	// the scenarios no resource claims.
	Sections   []indexSection
	Rows       []indexRow
	NotChecked []NotChecked
	Inferred   []Inferred
}

// indexSection is a resource's section of the index.
type indexSection struct {
	Heading, ID string
	Checks      []indexCheck
	NotChecked  []NotChecked
}

// indexCheck is a promise and its scenario's row; Row is nil when the
// suite has no result of that scenario.
type indexCheck struct {
	ResourceCheck
	Row *indexRow
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
