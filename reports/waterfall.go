package reports

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The waterfall of one trace is an svgPlot like the others: one row per
// span, depth-first, each span one <g class="series"> holding its bar and
// its markers (from its tags, and its annotations if it has any), so the browser test counts and measures spans as
// it does any plot's series.

// Columns and rows of a waterfall, in pixels.
const (
	wfWidth    = 1240.0
	wfRowH     = 22.0
	wfTop      = 34.0 // the time axis above the rows
	wfIndent   = 14.0 // per level of depth
	wfSvcX     = 8.0
	wfSvcW     = 240.0
	wfKindX    = 256.0
	wfNameX    = 318.0
	wfNameRune = 30
	wfBarX0    = 550.0
	wfBarX1    = 1040.0
	wfDurX     = 1110.0 // right edge of the duration
	wfStatusX  = 1122.0
	wfCharW    = 7.0 // a rough width of one character at 12 px
	// wfMaxRows bounds a waterfall, so that a retry storm cannot make the
	// report huge; depth-first order keeps every drawn span's parent drawn.
	wfMaxRows = 300
)

// Bar colours by span kind; a failed span is red whatever its kind.
const (
	colClient = "#00897b"
	colServer = "#3949ab"
	colOther  = "#78909c"
	// colAnnotation is an annotation marker's, as the CSS fills it.
	colAnnotation = "#8e24aa"
)

// traceAnchor is the id of a trace's figure, the target of check links.
func traceAnchor(id string) string { return "trace-" + id }

// waterfallPlot draws tr; why says why the report shows it.
func waterfallPlot(tr *Trace, why string) svgPlot {
	spans := tr.Spans
	if len(spans) > wfMaxRows {
		spans = spans[:wfMaxRows]
	}
	rows := float64(len(spans))
	f := frame{W: wfWidth, H: wfTop + rows*wfRowH + 8, L: wfBarX0, R: wfWidth - wfBarX1, T: wfTop, B: 8}
	p := f.plot(traceAnchor(tr.ID), fmt.Sprintf("Trace %s — %s ms, %d spans", tr.ID, fmtNum(ms(tr.Duration)), len(tr.Spans)))
	total := ms(tr.Duration)
	_, hi, ticks := linTicks(0, math.Max(total, 0.001), 6, 0)
	xa := axis{lo: 0, hi: hi, r0: f.left(), r1: f.right()}
	for _, t := range ticks {
		x := xa.at(t.v)
		p.Back.line(x, f.top()-4, x, f.bottom(), "grid", "")
		p.Back.text(x, f.top()-10, "middle", "tick", t.label)
	}
	p.Back.text(f.right(), 12, "end", "axis-title", "ms since the trace started")
	for _, h := range []struct {
		x      float64
		anchor string
		label  string
	}{{wfSvcX, "start", "service"}, {wfKindX, "start", "kind"}, {wfNameX, "start", "name"}, {wfDurX, "end", "ms"}, {wfStatusX, "start", "status · flags"}} {
		p.Back.text(h.x, f.top()-10, h.anchor, "axis-title", h.label)
	}

	row := map[*Span]int{}
	skewed, annotated := 0, 0
	marked := map[string]int{} // tag markers by class
	for i, s := range spans {
		row[s] = i
		y := wfTop + float64(i)*wfRowH
		mid := y + wfRowH/2
		if i%2 == 1 {
			p.Back.Rects = append(p.Back.Rects, svgRect{X: px(0), Y: px(y), W: px(wfWidth), H: px(wfRowH), Class: "zebra"})
		}
		indent := wfSvcX + float64(s.Depth)*wfIndent
		if s.Parent != nil {
			// An elbow from the parent's row to this one.
			px0 := wfSvcX + float64(s.Parent.Depth)*wfIndent + 3
			pm := wfTop + float64(row[s.Parent])*wfRowH + wfRowH - 4
			p.Back.Paths = append(p.Back.Paths, svgPath{D: fmt.Sprintf("M%s %sV%sH%s", px(px0), px(pm), px(mid), px(indent-2)), Class: "tree"})
		}

		x0 := xa.at(ms(s.Offset))
		w := math.Max(xa.at(ms(s.Offset+s.Duration))-x0, 1) // a zero-length span stays visible
		ser := svgSeries{Name: s.ID, Class: spanClass(s)}
		ser.Rects = append(ser.Rects, svgRect{X: px(x0), Y: px(y + 5), W: px(w), H: px(wfRowH - 10), RX: 2, Class: "span-bar", Fill: spanColour(s), Title: spanTitle(s, tr)})
		for _, a := range s.Annotations {
			at := ms(a.Time.Sub(tr.Start) + s.Skew) // moved with its span
			ax := xa.at(math.Min(math.Max(at, 0), hi))
			ser.Paths = append(ser.Paths, svgPath{D: diamond(ax, y+1), Class: "annotation",
				Title: fmt.Sprintf("%s at %s ms", a.Value, fmtNum(at))})
			annotated++
		}
		// The tags' markers sit at the bar's end, where the span's outcome
		// is known: a tag has no time of its own.
		for i, m := range tagMarkers(s) {
			ser.Paths = append(ser.Paths, svgPath{D: diamond(x0+w-float64(i)*9, y+1), Class: "tag-marker " + m.class, Title: m.title})
			marked[m.class]++
		}
		p.Series = append(p.Series, ser)

		label := s.Service
		if label == "" {
			label = "(no service)"
		}
		p.Front.text(indent, mid+4, "start", "span-svc", truncate(label, int((wfSvcW-indent)/wfCharW)))
		p.Front.text(wfKindX, mid+4, "start", "span-kind", s.Kind)
		p.Front.text(wfNameX, mid+4, "start", "span-name", truncate(s.Name, wfNameRune))
		p.Front.text(wfDurX, mid+4, "end", "span-dur", fmtNum(ms(s.Duration)))
		status := orDash(s.Tags[tagStatusCode])
		if f := s.Tags[tagResponseFlags]; f != "" && f != "-" {
			status += " · " + f
		}
		cls := "span-status"
		if s.Failed() {
			cls += " bad"
		}
		p.Front.text(wfStatusX, mid+4, "start", cls, status)
		if s.Skew > 0 {
			skewed++
		}
	}

	p.Legend = []legendItem{{"client span (caller's sidecar)", colClient, "box"}, {"server span (callee's sidecar)", colServer, "box"}, {"failed (non-2xx/3xx or error)", colFail, "box"}}
	// Envoy's spans, as Istio configures them, and our sidecar's carry no
	// annotations: what happened to a request is in their tags, and those
	// are the markers a run's waterfall shows. A span with annotations of
	// its own (another tracer's) has them drawn where they happened.
	if marked[markerRetry] > 0 {
		p.Legend = append(p.Legend, legendItem{"retried (retry.count tag)", colWarn, "marker"})
	}
	if marked[markerFail] > 0 {
		p.Legend = append(p.Legend, legendItem{"response flags (UT, URX…) or error tag", colFail, "marker"})
	}
	if annotated > 0 {
		p.Legend = append(p.Legend, legendItem{"annotation (the span's own event, at its time)", colAnnotation, "marker"})
	}
	notes := []string{why, fmt.Sprintf("started %s", tr.Start.UTC().Format("15:04:05.000000 UTC"))}
	if tr.Status != 0 {
		notes = append(notes, fmt.Sprintf("root answered %d", tr.Status))
	}
	if len(spans) < len(tr.Spans) {
		notes = append(notes, fmt.Sprintf("the first %d of %d spans drawn", len(spans), len(tr.Spans)))
	}
	if orphans := countOrphans(tr); orphans > 0 {
		notes = append(notes, fmt.Sprintf("%d span(s) whose parent was not reported drawn as roots of their own", orphans))
	}
	if skewed > 0 {
		notes = append(notes, fmt.Sprintf("%d span(s) started before their parent (clock skew) and are drawn from the parent's start, as Zipkin's and Jaeger's UIs clamp them", skewed))
	}
	p.Caption = strings.Join(notes, "; ") + "."
	return p
}

// diamond is a marker's path, its top at (x, y).
func diamond(x, y float64) string {
	return fmt.Sprintf("M%s %sl4 5l-4 5l-4 -5Z", px(x), px(y))
}

// Classes of the markers tags give a span.
const (
	markerRetry = "tag-retry"
	markerFail  = "tag-fail"
)

// tagMarker is a marker a span's tags call for.
type tagMarker struct {
	class, title string
}

// tagMarkers are the markers of what the span's tags say happened: its
// retries (retry.count: on a sidecar's span, the retries of its request;
// on a gateway's attempt span, which retry the attempt was) and its failure
// (response_flags other than "-", as Envoy's access log writes them, or
// the error tag Envoy sets on a 5xx or a stream with no response code).
func tagMarkers(s *Span) []tagMarker {
	var out []tagMarker
	if n, _ := strconv.Atoi(s.Tags[tagRetryCount]); n > 0 {
		out = append(out, tagMarker{markerRetry, fmt.Sprintf("retry.count %d: retried %d time(s)", n, n)})
	}
	var why []string
	if f := s.Tags[tagResponseFlags]; f != "" && f != "-" {
		for flag := range strings.SplitSeq(f, ",") {
			if m, ok := flagMeanings[flag]; ok {
				flag += " (" + m + ")"
			}
			why = append(why, flag)
		}
	}
	if s.Tags[tagError] == "true" {
		why = append(why, "error")
	}
	if len(why) > 0 {
		out = append(out, tagMarker{markerFail, "status " + orDash(s.Tags[tagStatusCode]) + ": " + strings.Join(why, ", ")})
	}
	return out
}

// flagMeanings are Envoy's response flags a mesh's spans show most
// (Envoy docs, access log format: %RESPONSE_FLAGS%).
var flagMeanings = map[string]string{
	"UT":  "upstream request timeout",
	"URX": "upstream retry limit exceeded",
	"UF":  "upstream connection failure",
	"UH":  "no healthy upstream",
	"UO":  "upstream overflow: circuit breaking",
	"UC":  "upstream connection termination",
	"UR":  "upstream remote reset",
	"LR":  "local reset",
	"NR":  "no route",
	"DC":  "downstream connection termination",
	"FI":  "fault injected: abort",
	"DI":  "fault injected: delay",
	"RL":  "rate limited",
}

func countOrphans(tr *Trace) int {
	n := 0
	for _, r := range tr.Roots {
		if r.Orphan {
			n++
		}
	}
	return n
}

func spanClass(s *Span) string {
	c := "span depth-" + strconv.Itoa(s.Depth) + " kind-" + strings.ToLower(orDash(s.Kind))
	if s.Failed() {
		c += " failed"
	}
	return c
}

func spanColour(s *Span) string {
	switch {
	case s.Failed():
		return colFail
	case s.Kind == "CLIENT":
		return colClient
	case s.Kind == "SERVER":
		return colServer
	}
	return colOther
}

// spanTitle is a bar's tooltip: everything a row has no room for.
func spanTitle(s *Span, tr *Trace) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s\nstart +%s ms, duration %s ms", orDash(s.Service), s.Kind, s.Name, fmtNum(ms(s.Offset)), fmtNum(ms(s.Duration)))
	if s.Skew > 0 {
		fmt.Fprintf(&b, "\nstarted %s ms before its parent (clock skew); drawn from the parent's start", fmtNum(ms(s.Skew)))
	}
	if s.Orphan {
		fmt.Fprintf(&b, "\nparent %s not in the trace", orDash(s.ParentID))
	}
	fmt.Fprintf(&b, "\nspan %s", s.ID)
	if s.Shared {
		b.WriteString(" (shared with its client)")
	}
	for _, k := range sortedKeys(s.Tags) {
		fmt.Fprintf(&b, "\n%s: %s", k, s.Tags[k])
	}
	for _, a := range s.Annotations {
		fmt.Fprintf(&b, "\n@%s ms %s", fmtNum(ms(a.Time.Sub(tr.Start))), a.Value)
	}
	return b.String()
}

// truncate shortens s to at most n runes, ending it with an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if n < 2 || len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// newTraceView builds the Traces section and links each failed check's row
// (rows are the view's check rows, in r.Checks order) to its waterfall.
// It is nil when the run has no traces file.
func newTraceView(r *Result, t *Traces, rows []checkRow) *traceView {
	refs := r.Traces
	if t == nil && refs == nil {
		return nil
	}
	v := &traceView{File: TracesFile}
	if t == nil {
		v.Error = refs.Error
		if v.Error == "" {
			v.Error = "the traces were not passed to the report (render it with HTMLWithTraces)"
		}
		return v
	}
	if refs == nil || refs.Error != "" {
		refs = t.Refs(r)
	}
	v.Count, v.Spans = len(t.List), t.Spans
	var order []string
	whys := map[string][]string{}
	add := func(id, why string) {
		if _, ok := whys[id]; !ok {
			order = append(order, id)
		}
		whys[id] = append(whys[id], why)
	}
	if t.Trace(refs.Slowest) != nil {
		add(refs.Slowest, fmt.Sprintf("The slowest of %d sampled traces", len(t.List)))
	}
	for _, ct := range refs.Checks {
		if ct.Index < 0 || ct.Index >= len(rows) {
			continue
		}
		switch {
		case ct.Trace == "":
			rows[ct.Index].NoTrace = ct.Why
		case t.Trace(ct.Trace) == nil:
			rows[ct.Index].NoTrace = fmt.Sprintf("trace %s is not in %s", ct.Trace, TracesFile)
		default:
			rows[ct.Index].TraceAnchor, rows[ct.Index].TraceID = traceAnchor(ct.Trace), ct.Trace
			add(ct.Trace, fmt.Sprintf("shows the failed check %q: %s", ct.Check, ct.Why))
		}
	}
	for _, id := range order {
		v.Waterfalls = append(v.Waterfalls, waterfallPlot(t.Trace(id), strings.Join(whys[id], "; ")))
	}
	return v
}
