package fidelity

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// KnownDifference is one row of the "Known differences" table of
// docs/fidelity.md: a field path pattern and why the difference is
// accepted.
type KnownDifference struct {
	// Pattern is a field path as Compare prints it, in which * stands for
	// any run of characters (including dots and brackets).
	Pattern string
	Reason  string
	// Line is the row's line in the document.
	Line int

	re *regexp.Regexp
}

// Matches reports whether a field path is covered by the row.
func (k *KnownDifference) Matches(path string) bool { return k.re.MatchString(path) }

// KnownDifferencesHeading is the heading (any level) the table must follow.
const KnownDifferencesHeading = "Known differences"

// ReadKnownDifferences parses the table after the "Known differences"
// heading of a Markdown file. The first column is the field path pattern,
// written as inline code; the second is the reason, which must not be
// empty. Further columns are ignored.
func ReadKnownDifferences(file string) ([]*KnownDifference, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return ParseKnownDifferences(file, string(data))
}

// ParseKnownDifferences is ReadKnownDifferences on the document's text.
func ParseKnownDifferences(file, doc string) ([]*KnownDifference, error) {
	lines := strings.Split(doc, "\n")
	start := -1
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "#") && strings.EqualFold(strings.TrimSpace(strings.TrimLeft(t, "#")), KnownDifferencesHeading) {
			start = i + 1
			break
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("%s: no %q heading", file, KnownDifferencesHeading)
	}
	var out []*KnownDifference
	inTable, rowNo := false, 0
	for i := start; i < len(lines); i++ {
		t := strings.TrimSpace(lines[i])
		if strings.HasPrefix(t, "#") {
			break // next section
		}
		if !strings.HasPrefix(t, "|") {
			if inTable {
				break // the table ended
			}
			continue
		}
		inTable = true
		rowNo++
		cells := splitRow(t)
		if rowNo == 1 || isSeparator(cells) {
			continue // header and |---| line
		}
		if len(cells) < 2 {
			return nil, fmt.Errorf("%s:%d: want | `field path` | reason |", file, i+1)
		}
		pat := strings.TrimSpace(cells[0])
		if !strings.HasPrefix(pat, "`") || !strings.HasSuffix(pat, "`") || len(pat) < 3 {
			return nil, fmt.Errorf("%s:%d: the field path %q must be written as `code`", file, i+1, pat)
		}
		pat = strings.Trim(pat, "`")
		reason := strings.TrimSpace(cells[1])
		if reason == "" {
			return nil, fmt.Errorf("%s:%d: known difference %s has no reason", file, i+1, pat)
		}
		out = append(out, &KnownDifference{Pattern: pat, Reason: reason, Line: i + 1, re: globRE(pat)})
	}
	if !inTable {
		return nil, fmt.Errorf("%s: no table after the %q heading", file, KnownDifferencesHeading)
	}
	return out, nil
}

// splitRow splits a Markdown table row into its cells; "\|" is a literal
// pipe (cluster names contain pipes).
func splitRow(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimPrefix(row, "|")
	row = strings.TrimSuffix(row, "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(row); i++ {
		switch {
		case row[i] == '\\' && i+1 < len(row) && row[i+1] == '|':
			cur.WriteByte('|')
			i++
		case row[i] == '|':
			cells = append(cells, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(row[i])
		}
	}
	return append(cells, cur.String())
}

func isSeparator(cells []string) bool {
	for _, c := range cells {
		if strings.Trim(strings.TrimSpace(c), ":-") != "" {
			return false
		}
	}
	return true
}

// globRE turns a pattern where * is any run of characters into an anchored
// regular expression.
func globRE(pat string) *regexp.Regexp {
	parts := strings.Split(pat, "*")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
}

// Known finds the first row covering a path, or nil.
func Known(rows []*KnownDifference, path string) *KnownDifference {
	for _, k := range rows {
		if k.Matches(path) {
			return k
		}
	}
	return nil
}
