package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/meshbench/meshbench/reports"
)

const reportUsage = `Usage:
  meshbench report compare BASE.json NEW.json [--threshold 10%] [--confidence 0.95] [--markdown FILE]
      compare a run against a baseline; prints a Markdown table.
      Exit status: 0 no regression, 1 a regression, 2 bad input.
  meshbench report html RESULT.json [-o FILE]
      (re)render the HTML report of a result (default: report.html next to RESULT.json).
`

// cmdReport runs "meshbench report SUBCOMMAND ...".
func cmdReport(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, reportUsage)
		return badInput(errors.New("report: name a subcommand: compare or html"))
	}
	switch args[0] {
	case "compare":
		return cmdReportCompare(args[1:], stdout, stderr)
	case "html":
		return cmdReportHTML(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, reportUsage)
		return nil
	default:
		fmt.Fprint(stderr, reportUsage)
		return badInput(fmt.Errorf("report: unknown subcommand %q (compare, html)", args[0]))
	}
}

func cmdReportCompare(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, reportUsage) }
	opt := reports.DefaultCompareOptions()
	threshold := fractionFlag{v: &opt.Threshold, name: "threshold", allowZero: true, max: maxThreshold}
	confidence := fractionFlag{v: &opt.Confidence, name: "confidence", max: 1, exclusiveMax: true}
	fs.Var(&threshold, "threshold", "worsening tolerated before a real change is a regression, e.g. 10% or 0.1")
	fs.Var(&confidence, "confidence", "confidence level of the intervals and tests, e.g. 0.95 or 95%")
	mdFile := fs.String("markdown", "", "also write the Markdown table to this file")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return badInput(err)
	}
	if len(pos) != 2 {
		fs.Usage()
		return badInput(fmt.Errorf("report compare: want BASE.json NEW.json, got %d file(s)", len(pos)))
	}
	base, err := readResult(pos[0])
	if err != nil {
		return badInput(err)
	}
	cur, err := readResult(pos[1])
	if err != nil {
		return badInput(err)
	}
	for i, r := range []*reports.Result{base, cur} {
		if r.Error != "" {
			return badInput(fmt.Errorf("report compare: %s records a failed run, nothing to compare: %s", pos[i], r.Error))
		}
	}

	c := reports.Compare(base, cur, opt)
	var md bytes.Buffer
	if err := reports.CompareMarkdown(&md, c); err != nil {
		return err
	}
	if _, err := stdout.Write(md.Bytes()); err != nil {
		return err
	}
	if *mdFile != "" {
		if err := os.WriteFile(*mdFile, md.Bytes(), 0o644); err != nil {
			return fmt.Errorf("report compare: %w", err)
		}
	}
	if c.Regression {
		var which []string
		for _, r := range c.Rows {
			if r.Regression {
				which = append(which, r.Metric)
			}
		}
		return &exitError{code: 1, err: fmt.Errorf("regression in %s", strings.Join(which, ", "))}
	}
	return nil
}

func cmdReportHTML(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report html", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, reportUsage) }
	out := fs.String("o", "", "write the report to this file (default: "+reports.HTMLFile+" next to RESULT.json)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return badInput(err)
	}
	if len(pos) != 1 {
		fs.Usage()
		return badInput(fmt.Errorf("report html: want one RESULT.json, got %d file(s)", len(pos)))
	}
	r, err := readResult(pos[0])
	if err != nil {
		return badInput(err)
	}
	path := *out
	if path == "" {
		path = filepath.Join(filepath.Dir(pos[0]), reports.HTMLFile)
	}
	// The run's traces, when its folder has them, are drawn as WriteRun
	// drew them; a file that cannot be read leaves them out, not the report.
	traces, err := reports.LoadTraces(filepath.Dir(pos[0]))
	if err != nil {
		fmt.Fprintf(stderr, "report html: no traces drawn: %v\n", err)
	}
	var b bytes.Buffer
	if err := reports.HTMLWithTraces(&b, r, traces); err != nil {
		return err
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("report html: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s\n", path)
	return nil
}

// readResult reads one scenario's result.json.
func readResult(path string) (*reports.Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := reports.ReadJSON(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Scenario == "" {
		// A suite.json has the same schema and no "scenario".
		return nil, fmt.Errorf("%s: not the result of one scenario (no \"scenario\" field); pass a scenario's %s, not a %s", path, reports.ResultFile, reports.SuiteFile)
	}
	return r, nil
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments, and returns the positional ones. A "--" ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse stops at the first positional argument, or after "--".
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// maxThreshold is the largest --threshold accepted, 100000%: a thousandfold worsening.
const maxThreshold = 1000.0

// fractionFlag is a flag holding a fraction, written as "10%" or "0.1".
type fractionFlag struct {
	v            *float64
	name         string
	allowZero    bool
	max          float64
	exclusiveMax bool
}

func (f *fractionFlag) String() string {
	if f == nil || f.v == nil {
		return ""
	}
	return strconv.FormatFloat(*f.v*100, 'f', -1, 64) + "%"
}

func (f *fractionFlag) Set(s string) error {
	s = strings.TrimSpace(s)
	var x float64
	var err error
	if t, ok := strings.CutSuffix(s, "%"); ok {
		x, err = strconv.ParseFloat(strings.TrimSpace(t), 64)
		x /= 100
	} else {
		x, err = strconv.ParseFloat(s, 64)
		if err == nil && x > 1 {
			return fmt.Errorf("%q is ambiguous: write %s%% for a percentage or a fraction such as %s", s, s, strconv.FormatFloat(x/100, 'f', -1, 64))
		}
	}
	switch {
	case err != nil:
		return fmt.Errorf("want a percentage such as 10%% or a fraction such as 0.1")
	case math.IsNaN(x) || x < 0 || (x == 0 && !f.allowZero):
		return fmt.Errorf("%s must be positive", f.name)
	case f.exclusiveMax && x >= f.max, x > f.max:
		return fmt.Errorf("%s must be below %s", f.name, strconv.FormatFloat(f.max*100, 'f', -1, 64)+"%")
	}
	*f.v = x
	return nil
}
