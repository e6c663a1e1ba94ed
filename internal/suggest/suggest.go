// Package suggest finds the word a user most likely meant by a misspelt one,
// for "did you mean" hints in error messages.
package suggest

import (
	"fmt"
	"strings"
)

// Hint returns ` (did you mean "x"?)` for the candidate closest to s, if it
// is close: the same letters ignoring case, '_' and '-', or at most two
// edits; else "".
func Hint(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if norm(c) == norm(s) {
			return fmt.Sprintf(" (did you mean %q?)", c)
		}
		if d := editDistance(norm(s), norm(c)); d < bestD && d < len(c) {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func norm(x string) string {
	return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(x))
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
