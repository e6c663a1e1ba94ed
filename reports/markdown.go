package reports

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Markdown writes a human-readable summary of one or more results: per
// scenario a header with its verdict, the environment and load, a latency
// table, status codes, the traffic split per service and version, and a table
// of checks. With more than one result an overview table comes first. Map
// contents are written in sorted key order so the output is stable.
func Markdown(w io.Writer, rs ...*Result) error {
	if err := noNilResult(rs); err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }

	passed := 0
	for _, r := range rs {
		if Verdict(r) {
			passed++
		}
	}
	p("# meshbench: %d of %d scenarios passed\n", passed, len(rs))
	if len(rs) > 1 {
		p("\n| scenario | verdict | checks passed | requests | duration |\n|---|---|--:|--:|--:|\n")
		for _, r := range rs {
			ok := 0
			for _, c := range r.Checks {
				if c.Passed {
					ok++
				}
			}
			p("| %s | %s | %d/%d | %d | %.1f s |\n", cell(r.Scenario), verdictWord(Verdict(r)), ok, len(r.Checks), r.Load.Requests, r.Duration)
		}
	}
	for _, r := range rs {
		markdownResult(p, r, "##")
	}
	return bw.Flush()
}

// suiteMarkdown writes a suite's summary.md. A suite of meshbench check
// (one with Resources) has a section per resource, its promises with
// their scenario's verdict and a link to the scenario's report, or why
// they are not checked; the scenarios no resource claims; then every
// scenario's details. Otherwise it is Markdown of its scenarios and the
// promises not checked. What check inferred comes last.
func suiteMarkdown(w io.Writer, s *Suite) error {
	secs, rest := sections(s)
	if secs == nil {
		if err := Markdown(w, s.Scenarios...); err != nil {
			return err
		}
		if err := notCheckedMarkdown(w, s.NotChecked); err != nil {
			return err
		}
		return inferredMarkdown(w, s.Inferred)
	}
	if err := noNilResult(s.Scenarios); err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	passed := 0
	for _, r := range s.Scenarios {
		if Verdict(r) {
			passed++
		}
	}
	p("# meshbench: %d of %d scenarios passed\n", passed, len(s.Scenarios))
	for _, sec := range secs {
		p("\n## %s\n\n| source | promise | verdict | scenario, or why not checked |\n|---|---|---|---|\n", oneLine(sec.Heading))
		for _, c := range sec.Checks {
			verdict, link := "not run", cell(c.Scenario)
			if c.Result != nil {
				verdict = verdictWord(Verdict(c.Result))
				link = fmt.Sprintf("[%s](%s/%s)", cell(c.Scenario), url.PathEscape(c.Scenario), HTMLFile)
			}
			p("| %s | %s | %s | %s |\n", cell(c.Source), cell(c.Promise), verdict, link)
		}
		for _, n := range sec.NotChecked {
			p("| %s | %s | not checked | %s |\n", cell(n.Source), cell(n.Promise), cell(n.Why))
		}
	}
	if len(rest) > 0 {
		p("\n## Other scenarios\n\n| scenario | verdict |\n|---|---|\n")
		for _, r := range rest {
			p("| %s | %s |\n", cell(r.Scenario), verdictWord(Verdict(r)))
		}
	}
	if len(s.Scenarios) > 0 {
		p("\n## Scenarios\n")
		for _, r := range s.Scenarios {
			markdownResult(p, r, "###")
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return inferredMarkdown(w, s.Inferred)
}

// noNilResult refuses a list of results that holds a nil one.
func noNilResult(rs []*Result) error {
	for i, r := range rs {
		if r == nil {
			return fmt.Errorf("reports: result %d is nil", i)
		}
	}
	return nil
}

// Verdict reports whether a result passed as a whole: the run raised no
// error, Passed is set and no check failed.
func Verdict(r *Result) bool {
	if r == nil || r.Error != "" || !r.Passed {
		return false
	}
	for _, c := range r.Checks {
		if !c.Passed {
			return false
		}
	}
	return true
}

// markdownResult writes one result's section under a heading of level
// ("##").
func markdownResult(p func(string, ...any), r *Result, level string) {
	p("\n%s %s: %s\n\n", level, r.Scenario, verdictWord(Verdict(r)))
	if r.Description != "" {
		p("%s\n\n", oneLine(r.Description))
	}
	if r.Error != "" {
		p("**Run error:** %s\n\n", oneLine(r.Error))
	}
	var meta []string
	if r.File != "" {
		meta = append(meta, "file `"+r.File+"`")
	}
	if !r.Started.IsZero() {
		meta = append(meta, "started "+r.Started.UTC().Format(time.RFC3339))
	}
	meta = append(meta, fmt.Sprintf("took %.1f s", r.Duration))
	if e := r.Environment; e != (Environment{}) {
		env := fmt.Sprintf("runtime %s, data plane %s, seed %d", orDash(e.Runtime), orDash(e.DataPlane), e.Seed)
		if e.GoVersion != "" || e.OS != "" {
			env += fmt.Sprintf(", %s %s/%s, %d CPUs", e.GoVersion, e.OS, e.Arch, e.CPUs)
		}
		meta = append(meta, env)
	}
	p("%s\n\n", strings.Join(meta, "; "))

	l := r.Load
	p("**Load:** target %s req/s, achieved %s req/s, throughput %s ok/s; %d requests in %.1f s",
		num(l.TargetRate), num(l.AchievedRate), num(l.Throughput), l.Requests, l.Duration)
	if l.Target != "" || l.URL != "" {
		p(" against %s", strings.TrimSpace(l.Target+" "+codeSpan(l.URL)))
	}
	p("\n\n")

	lat := r.Latency
	p("| latency | p50 | p90 | p99 | p99.9 | max |\n|---|--:|--:|--:|--:|--:|\n")
	p("| ms | %.2f | %.2f | %.2f | %.2f | %.2f |\n\n", lat.P50, lat.P90, lat.P99, lat.P999, lat.Max)
	if len(r.Steps) > 0 {
		bound := p99Bound(r)
		p("**Plan:** %s\n\n", cell(l.Plan))
		p("| step | window | req/s asked | achieved | requests | success | p50 | p90 | p99 | p99.9 |\n|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, s := range stepRows(r, bound) {
			over := ""
			if s.Over {
				over = " ⚠"
			}
			p("| %s | %s | %s | %s | %s | %s | %s | %s | %s%s | %s |\n", s.Index, s.Window, s.Target, s.Achieved, s.Requests, s.Success, s.P50, s.P90, s.P99, over, s.P999)
		}
		p("\n")
		if b := firstBreak(r, bound); b != "" {
			p("%s\n\n", b)
		}
	}

	total := 0
	for _, n := range r.Status.Codes {
		total += n
	}
	p("**Status:** success rate %s%%\n\n", num(100*r.Status.SuccessRate))
	if len(r.Status.Codes) > 0 {
		p("| code | count | %% |\n|---|--:|--:|\n")
		for _, code := range sortedKeys(r.Status.Codes) {
			label := code
			if code == "0" {
				label = "0 (transport error)"
			}
			p("| %s | %d | %s |\n", cell(label), r.Status.Codes[code], pct(r.Status.Codes[code], total))
		}
		p("\n")
	}
	if len(r.Status.Errors) > 0 {
		p("| transport error | count |\n|---|--:|\n")
		for _, e := range sortedKeys(r.Status.Errors) {
			p("| %s | %d |\n", cell(e), r.Status.Errors[e])
		}
		p("\n")
	}

	if len(r.Split) > 0 {
		p("**Split:**\n\n| service | version | count | %% |\n|---|---|--:|--:|\n")
		for _, svc := range sortedKeys(r.Split) {
			versions := r.Split[svc]
			sum := 0
			for _, n := range versions {
				sum += n
			}
			for _, v := range sortedKeys(versions) {
				p("| %s | %s | %d | %s |\n", cell(svc), cell(v), versions[v], pct(versions[v], sum))
			}
		}
		p("\n")
	}

	if len(r.Checks) > 0 {
		p("**Checks:**\n\n| check | verdict | N | p-value | summary |\n|---|---|--:|--:|---|\n")
		for _, c := range r.Checks {
			n := "-"
			if c.N != 0 {
				n = strconv.Itoa(c.N)
			}
			pv := "-"
			if c.PValue != nil {
				pv = strconv.FormatFloat(*c.PValue, 'g', 3, 64)
			}
			p("| %s | %s | %s | %s | %s |\n", cell(c.Name), verdictWord(c.Passed), n, pv, cell(c.Summary))
		}
	} else {
		p("No checks.\n")
	}
	markdownTraces(p, r.Traces)
}

// markdownTraces lists the traces report.html draws, by id, to look up in
// the traces file or a Jaeger that imported it.
func markdownTraces(p func(string, ...any), t *TraceRefs) {
	switch {
	case t == nil:
		return
	case t.Error != "":
		p("\n**Traces:** none drawn: %s\n", oneLine(t.Error))
		return
	}
	p("\n**Traces** (%d sampled in `%s`):\n\n", t.Traces, t.File)
	if t.Slowest != "" {
		p("- slowest: %s\n", codeSpan(t.Slowest))
	}
	for _, c := range t.Checks {
		if c.Trace != "" {
			p("- %s: %s — %s\n", oneLine(c.Check), codeSpan(c.Trace), oneLine(c.Why))
		} else {
			p("- %s: no trace — %s\n", oneLine(c.Check), oneLine(c.Why))
		}
	}
}

func verdictWord(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// cell makes s safe inside a Markdown table cell: one line, pipes escaped.
func cell(s string) string {
	return strings.ReplaceAll(oneLine(s), "|", `\|`)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func codeSpan(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(s, "`", "") + "`"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// num formats x rounded to one decimal, without a trailing ".0".
func num(x float64) string {
	if r := math.Round(x*10) / 10; !math.IsInf(r, 0) {
		x = r
	}
	return strconv.FormatFloat(x, 'f', -1, 64)
}

func pct(n, total int) string {
	if total == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(total))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// notCheckedMarkdown writes the promises no scenario exercised, with why.
func notCheckedMarkdown(w io.Writer, ns []NotChecked) error {
	rows := make([][]string, len(ns))
	for i, n := range ns {
		rows[i] = []string{n.Source, n.Resource, n.Promise, n.Why}
	}
	return markdownTable(w, "Not checked", []string{"source", "resource", "promise", "why"}, rows)
}

// inferredMarkdown writes what meshbench check inferred, with source lines.
func inferredMarkdown(w io.Writer, is []Inferred) error {
	rows := make([][]string, len(is))
	for i, it := range is {
		rows[i] = []string{it.Kind, it.Name, it.Source, it.Detail}
	}
	return markdownTable(w, "Inferred from the input", []string{"kind", "name", "source", "detail"}, rows)
}

// markdownTable writes a section of one table; nothing when rows is empty.
func markdownTable(w io.Writer, title string, header []string, rows [][]string) error {
	if len(rows) == 0 {
		return nil
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "\n## %s\n\n| %s |\n|%s\n", title, strings.Join(header, " | "), strings.Repeat("---|", len(header)))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = cell(c)
		}
		fmt.Fprintf(bw, "| %s |\n", strings.Join(cells, " | "))
	}
	return bw.Flush()
}
