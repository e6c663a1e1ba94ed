package reports

import (
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// JUnitTestSuites is the root element of the JUnit XML that JUnit writes.
type JUnitTestSuites struct {
	XMLName  xml.Name         `xml:"testsuites"`
	Name     string           `xml:"name,attr,omitempty"`
	Tests    int              `xml:"tests,attr"`
	Failures int              `xml:"failures,attr"`
	Errors   int              `xml:"errors,attr"`
	Time     string           `xml:"time,attr"`
	Suites   []JUnitTestSuite `xml:"testsuite"`
}

// JUnitTestSuite is one scenario.
type JUnitTestSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []JUnitProperty `xml:"properties>property,omitempty"`
	TestCases  []JUnitTestCase `xml:"testcase"`
}

// JUnitProperty is a name/value pair describing a scenario's environment.
type JUnitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// JUnitTestCase is one check, or the run itself when it raised an error.
type JUnitTestCase struct {
	ClassName string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr,omitempty"`
	Failure   *JUnitProblem `xml:"failure,omitempty"`
	Error     *JUnitProblem `xml:"error,omitempty"`
	Skipped   *JUnitProblem `xml:"skipped,omitempty"`
}

// JUnitProblem is the body of a <failure> or <error> element.
type JUnitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",cdata"`
}

// JUnit writes results as JUnit XML: a <testsuites> element named suiteName
// holding one <testsuite> per scenario and one <testcase> per check, with
// classname "meshbench.<scenario>". A failed check carries a <failure> whose
// message is the check's summary; a run Error becomes an extra testcase named
// "run" carrying an <error>.
func JUnit(w io.Writer, suiteName string, rs ...*Result) error {
	doc, err := junitDoc(suiteName, rs)
	if err != nil {
		return err
	}
	return encodeJUnit(w, doc)
}

// encodeJUnit writes doc as an indented XML document.
func encodeJUnit(w io.Writer, doc *JUnitTestSuites) error {
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("reports: encode JUnit: %w", err)
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// junitSuiteFile writes a suite's junit.xml: its scenarios, and a
// <testsuite> "not-checked" whose <skipped> testcases are the promises no
// scenario exercises. A suite of meshbench check (with Resources) has a
// <testsuite> per resource instead, named "Kind namespace/name
// (file:line)": the checks of its scenarios (classname
// "meshbench.<scenario>") and its promises not checked, skipped; then a
// <testsuite> per scenario no resource claims.
func junitSuiteFile(w io.Writer, s *Suite) error {
	if secs, rest := sections(s); secs != nil {
		if err := noNilResult(s.Scenarios); err != nil {
			return err
		}
		doc := &JUnitTestSuites{Name: junitDefault}
		total := 0.0
		add := func(ts JUnitTestSuite) {
			doc.Tests += ts.Tests
			doc.Failures += ts.Failures
			doc.Errors += ts.Errors
			doc.Suites = append(doc.Suites, ts)
		}
		for _, sec := range secs {
			ts := JUnitTestSuite{Name: sec.Heading, Properties: []JUnitProperty{{Name: "resource", Value: sec.Resource}}}
			if sec.Source != "" {
				ts.Properties = append(ts.Properties, JUnitProperty{Name: "source", Value: sec.Source})
			}
			var took float64
			for _, c := range sec.Checks {
				r := c.Result
				if r == nil {
					continue
				}
				one := junitSuite(r)
				ts.TestCases = append(ts.TestCases, one.TestCases...)
				ts.Failures += one.Failures
				ts.Errors += one.Errors
				took += r.Duration
				if one.Timestamp != "" && (ts.Timestamp == "" || one.Timestamp < ts.Timestamp) {
					ts.Timestamp = one.Timestamp
				}
			}
			ts.TestCases = append(ts.TestCases, notCheckedCases(sec.NotChecked)...)
			ts.Tests = len(ts.TestCases)
			ts.Time = seconds(took)
			total += took
			add(ts)
		}
		for _, r := range rest {
			total += r.Duration
			add(junitSuite(r))
		}
		doc.Time = seconds(total)
		return encodeJUnit(w, doc)
	}
	if len(s.NotChecked) == 0 {
		return JUnit(w, junitDefault, s.Scenarios...)
	}
	doc, err := junitDoc(junitDefault, s.Scenarios)
	if err != nil {
		return err
	}
	ts := JUnitTestSuite{Name: "not-checked", Time: "0", TestCases: notCheckedCases(s.NotChecked)}
	ts.Tests = len(ts.TestCases)
	doc.Tests += ts.Tests
	doc.Suites = append(doc.Suites, ts)
	return encodeJUnit(w, doc)
}

// notCheckedCases are skipped testcases, one per promise not checked.
func notCheckedCases(ns []NotChecked) []JUnitTestCase {
	var out []JUnitTestCase
	for _, n := range ns {
		out = append(out, JUnitTestCase{
			ClassName: "meshbench.not-checked", Name: n.Source + ": " + n.Resource + " " + n.Promise,
			Skipped: &JUnitProblem{Message: "not checked: " + n.Why},
		})
	}
	return out
}

func junitDoc(suiteName string, rs []*Result) (*JUnitTestSuites, error) {
	doc := &JUnitTestSuites{Name: suiteName}
	total := 0.0
	for i, r := range rs {
		if r == nil {
			return nil, fmt.Errorf("reports: result %d is nil", i)
		}
		s := junitSuite(r)
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
		total += r.Duration
		doc.Suites = append(doc.Suites, s)
	}
	doc.Time = seconds(total)
	return doc, nil
}

func junitSuite(r *Result) JUnitTestSuite {
	s := JUnitTestSuite{
		Name: r.Scenario,
		Time: seconds(r.Duration),
	}
	if !r.Started.IsZero() {
		// JUnit's timestamp is ISO 8601 without a zone; write UTC.
		s.Timestamp = r.Started.UTC().Format("2006-01-02T15:04:05")
	}
	s.Properties = junitProperties(r)
	class := "meshbench." + r.Scenario
	for _, c := range r.Checks {
		tc := JUnitTestCase{ClassName: class, Name: c.Name}
		if !c.Passed {
			tc.Failure = &JUnitProblem{Message: c.Summary, Type: c.Kind, Text: xmlText(checkDetail(c))}
			s.Failures++
		}
		s.TestCases = append(s.TestCases, tc)
	}
	if r.Error != "" {
		s.TestCases = append(s.TestCases, JUnitTestCase{
			ClassName: class,
			Name:      "run",
			Error:     &JUnitProblem{Message: r.Error, Type: "run", Text: xmlText(r.Error)},
		})
		s.Errors++
	}
	s.Tests = len(s.TestCases)
	return s
}

func junitProperties(r *Result) []JUnitProperty {
	var ps []JUnitProperty
	add := func(name, value string) {
		if value != "" {
			ps = append(ps, JUnitProperty{Name: name, Value: value})
		}
	}
	e := r.Environment
	add("file", r.File)
	add("runtime", e.Runtime)
	add("dataPlane", e.DataPlane)
	add("goVersion", e.GoVersion)
	if e.OS != "" || e.Arch != "" {
		add("platform", e.OS+"/"+e.Arch)
	}
	if e != (Environment{}) {
		add("seed", strconv.FormatInt(e.Seed, 10))
	}
	return ps
}

// checkDetail is the text of a failure: everything the check knows.
func checkDetail(c Check) string {
	var b strings.Builder
	b.WriteString(c.Summary)
	if c.Test != "" {
		fmt.Fprintf(&b, "\ntest: %s", c.Test)
	}
	if c.N != 0 {
		fmt.Fprintf(&b, "\nN: %d", c.N)
	}
	if c.PValue != nil {
		fmt.Fprintf(&b, "\np-value: %g", *c.PValue)
	}
	if c.Confidence != 0 {
		fmt.Fprintf(&b, "\nconfidence: %g", c.Confidence)
	}
	for _, label := range unionSorted(c.Observed, c.Expected) {
		fmt.Fprintf(&b, "\n%s: observed %s, expected %s", label, optNum(c.Observed, label), optNum(c.Expected, label))
	}
	return b.String()
}

func unionSorted(a, b map[string]float64) []string {
	set := map[string]bool{}
	for k := range a {
		set[k] = true
	}
	for k := range b {
		set[k] = true
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func optNum(m map[string]float64, k string) string {
	v, ok := m[k]
	if !ok {
		return "-"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// xmlText replaces what XML 1.0 cannot hold (control characters, invalid
// UTF-8) with U+FFFD. encoding/xml does this for attributes and character
// data but not for CDATA sections.
func xmlText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r',
			r >= 0x20 && r <= 0xD7FF,
			r >= 0xE000 && r <= 0xFFFD && r != utf8.RuneError,
			r >= 0x10000 && r <= 0x10FFFF:
			return r
		}
		return utf8.RuneError
	}, s)
}

func seconds(s float64) string { return strconv.FormatFloat(s, 'f', 3, 64) }
