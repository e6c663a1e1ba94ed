package reports

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"
)

// checkSuite is a suite as meshbench check writes it: two resources with
// a scenario each, one of them with a promise not checked, a resource
// that only NotChecked names, and a scenario no resource claims.
func checkSuite() *Suite {
	split := fixture() // a failed check
	split.Scenario = "payment-split"
	authz := synthResult(synthOptions{Seed: 1})
	authz.Scenario = "payment-callers-rule0-authz"
	stray := synthResult(synthOptions{Seed: 2})
	stray.Scenario = "stray"
	return &Suite{
		Scenarios: []*Result{split, authz, stray},
		Resources: []Resource{
			{Resource: "VirtualService default/payment", Source: "vs.yaml:3", Checks: []ResourceCheck{
				{Scenario: "payment-split", Source: "vs.yaml:12", Promise: "splits 90/10 between v1 and v2"},
			}},
			{Resource: "AuthorizationPolicy default/payment-callers", Source: "authz.yaml:1", Checks: []ResourceCheck{
				{Scenario: "payment-callers-rule0-authz", Source: "authz.yaml:14", Promise: "allows order's calls to payment on /pay"},
				{Scenario: "gone", Source: "authz.yaml:14", Promise: "refuses order's calls on other paths"},
			}},
		},
		NotChecked: []NotChecked{
			{Resource: "AuthorizationPolicy default/payment-callers", Source: "authz.yaml:14", Promise: "other methods than POST", Why: "the callers call with POST | only"},
			{Resource: "Sidecar default/payment", Source: "sidecar.yaml:1", Promise: "what it promises", Why: "not simulated"},
		},
		Inferred: []Inferred{{Kind: "service", Name: "payment", Source: "vs.yaml:5"}},
	}
}

// indexSectionOf is a resource's section of the index as a reader sees
// it: the heading, then each row's cells' text, the scenario's link
// after a row's cells.
type indexSectionOf struct {
	ID, Heading string
	Rows        [][]string
}

// parseIndex parses the index page and returns its sections, the text of
// every other h2 and the links of the flat scenario table.
func parseIndex(t *testing.T, page string) (secs []indexSectionOf, h2s []string, flat []string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	require.NoError(t, err)
	attr := func(n *html.Node, key string) string {
		for _, a := range n.Attr {
			if a.Key == key {
				return a.Val
			}
		}
		return ""
	}
	var text func(n *html.Node) string
	text = func(n *html.Node) string {
		if n.Type == html.TextNode {
			return n.Data
		}
		var b strings.Builder
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			b.WriteString(text(c))
		}
		return b.String()
	}
	var links func(n *html.Node) []string
	links = func(n *html.Node) []string {
		var out []string
		if n.Type == html.ElementNode && n.Data == "a" {
			out = append(out, "→ "+attr(n, "href"))
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			out = append(out, links(c)...)
		}
		return out
	}
	var walk func(n *html.Node, sec *indexSectionOf)
	walk = func(n *html.Node, sec *indexSectionOf) {
		if n.Type == html.ElementNode {
			switch {
			case n.Data == "section" && attr(n, "class") == "resource":
				secs = append(secs, indexSectionOf{ID: attr(n, "id")})
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					walk(c, &secs[len(secs)-1])
				}
				return
			case n.Data == "h2" && sec != nil:
				sec.Heading = text(n)
				return
			case n.Data == "h2":
				h2s = append(h2s, text(n))
				return
			case n.Data == "table" && attr(n, "id") == "scenarios":
				flat = append(flat, links(n)...)
				return
			case n.Data == "tr" && sec != nil && attr(n, "class") != "":
				row := []string{attr(n, "class")}
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					if c.Type == html.ElementNode && c.Data == "td" {
						row = append(row, text(c))
					}
				}
				sec.Rows = append(sec.Rows, append(row, links(n)...))
				return
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, sec)
		}
	}
	walk(doc, nil)
	return secs, h2s, flat
}

// A suite of meshbench check has one section per resource in index.html,
// summary.md and junit.xml: its promises with their scenario's verdict
// and report, and those not checked with why.
func TestWriteSuiteByResource(t *testing.T) {
	s := checkSuite()
	dir := t.TempDir()
	_, err := WriteSuite(dir, s)
	require.NoError(t, err)

	page, err := os.ReadFile(filepath.Join(dir, IndexFile))
	require.NoError(t, err)
	secs, h2s, flat := parseIndex(t, string(page))
	assert.Equal(t, []indexSectionOf{
		{ID: "resource-1", Heading: "VirtualService default/payment (vs.yaml:3)", Rows: [][]string{
			{"checked", "vs.yaml:12", "splits 90/10 between v1 and v2", "FAIL", "payment-split", "1/2", "4995", "99.8%", "7.89 ms", "→ payment-split/report.html"},
		}},
		{ID: "resource-2", Heading: "AuthorizationPolicy default/payment-callers (authz.yaml:1)", Rows: [][]string{
			{"checked", "authz.yaml:14", "allows order's calls to payment on /pay", "PASS", "payment-callers-rule0-authz", "3/3", "23998", "99.967%", "4.99 ms", "→ payment-callers-rule0-authz/report.html"},
			{"checked", "authz.yaml:14", "refuses order's calls on other paths", "NOT RUN", "gone"},
			{"not-checked", "authz.yaml:14", "other methods than POST", "NOT CHECKED", "the callers call with POST | only"},
		}},
		{ID: "resource-3", Heading: "Sidecar default/payment (sidecar.yaml:1)", Rows: [][]string{
			{"not-checked", "sidecar.yaml:1", "what it promises", "NOT CHECKED", "not simulated"},
		}},
	}, secs)
	assert.Equal(t, []string{"Other scenarios", "Inferred from the input"}, h2s, "no flat not-checked table")
	assert.Equal(t, []string{"→ stray/report.html"}, flat, "the scenario no resource claims")

	md, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	require.NoError(t, err)
	var headings []string
	for _, line := range strings.Split(string(md), "\n") {
		if strings.HasPrefix(line, "#") {
			headings = append(headings, line)
		}
	}
	assert.Equal(t, []string{
		"# meshbench: 2 of 3 scenarios passed",
		"## VirtualService default/payment (vs.yaml:3)",
		"## AuthorizationPolicy default/payment-callers (authz.yaml:1)",
		"## Sidecar default/payment (sidecar.yaml:1)",
		"## Other scenarios",
		"## Scenarios",
		"### payment-split: FAIL",
		"### payment-callers-rule0-authz: PASS",
		"### stray: PASS",
		"## Inferred from the input",
	}, headings)
	section := func(h string) []string {
		_, after, ok := strings.Cut(string(md), h+"\n\n")
		require.True(t, ok, h)
		body, _, _ := strings.Cut(after, "\n\n")
		return strings.Split(body, "\n")
	}
	assert.Equal(t, []string{
		"| source | promise | verdict | scenario, or why not checked |",
		"|---|---|---|---|",
		"| authz.yaml:14 | allows order's calls to payment on /pay | PASS | [payment-callers-rule0-authz](payment-callers-rule0-authz/report.html) |",
		"| authz.yaml:14 | refuses order's calls on other paths | not run | gone |",
		`| authz.yaml:14 | other methods than POST | not checked | the callers call with POST \| only |`,
	}, section("## AuthorizationPolicy default/payment-callers (authz.yaml:1)"))
	assert.Equal(t, []string{
		"| source | promise | verdict | scenario, or why not checked |",
		"|---|---|---|---|",
		"| vs.yaml:12 | splits 90/10 between v1 and v2 | FAIL | [payment-split](payment-split/report.html) |",
	}, section("## VirtualService default/payment (vs.yaml:3)"))

	x, err := os.ReadFile(filepath.Join(dir, JUnitFile))
	require.NoError(t, err)
	var doc JUnitTestSuites
	require.NoError(t, xml.Unmarshal(x, &doc))
	type tc struct{ class, name, state string }
	suites := map[string][]tc{}
	var names []string
	for _, ts := range doc.Suites {
		names = append(names, ts.Name)
		for _, c := range ts.TestCases {
			state := "pass"
			switch {
			case c.Failure != nil:
				state = "failure"
			case c.Skipped != nil:
				state = c.Skipped.Message
			}
			suites[ts.Name] = append(suites[ts.Name], tc{c.ClassName, c.Name, state})
		}
		assert.Equal(t, len(ts.TestCases), ts.Tests, ts.Name)
	}
	assert.Equal(t, []string{
		"VirtualService default/payment (vs.yaml:3)",
		"AuthorizationPolicy default/payment-callers (authz.yaml:1)",
		"Sidecar default/payment (sidecar.yaml:1)",
		"stray",
	}, names)
	authz := suites["AuthorizationPolicy default/payment-callers (authz.yaml:1)"]
	require.Len(t, authz, 4)
	assert.Equal(t, tc{"meshbench.payment-callers-rule0-authz", s.Scenarios[1].Checks[0].Name, "pass"}, authz[0])
	assert.Equal(t, tc{"meshbench.not-checked", "authz.yaml:14: AuthorizationPolicy default/payment-callers other methods than POST",
		"not checked: the callers call with POST | only"}, authz[3])
	assert.Equal(t, []tc{{"meshbench.not-checked", "sidecar.yaml:1: Sidecar default/payment what it promises", "not checked: not simulated"}},
		suites["Sidecar default/payment (sidecar.yaml:1)"])
	vs := doc.Suites[0]
	assert.Equal(t, 1, vs.Failures)
	assert.Equal(t, []JUnitProperty{{"resource", "VirtualService default/payment"}, {"source", "vs.yaml:3"}}, vs.Properties)
	assert.Equal(t, "31.250", vs.Time)
	total := 0
	for _, ts := range doc.Suites {
		total += ts.Tests
	}
	assert.Equal(t, total, doc.Tests)
	assert.Equal(t, 1, doc.Failures)

	// suite.json keeps the resources, for a reader to group as these do.
	data, err := os.ReadFile(filepath.Join(dir, SuiteFile))
	require.NoError(t, err)
	var got Suite
	require.NoError(t, json.Unmarshal(data, &got))
	assert.Equal(t, s.Resources, got.Resources)
}

// A suite of meshbench run has no resources: its index and summary stay
// one table of scenarios.
func TestHTMLIndexWithoutResources(t *testing.T) {
	s := checkSuite()
	s.Resources = nil
	var b bytes.Buffer
	require.NoError(t, HTMLIndex(&b, s, nil))
	secs, h2s, flat := parseIndex(t, b.String())
	assert.Empty(t, secs)
	assert.Equal(t, []string{"Not checked", "Inferred from the input"}, h2s)
	assert.Equal(t, []string{"→ payment-split/report.html", "→ payment-callers-rule0-authz/report.html", "→ stray/report.html"}, flat)
}
