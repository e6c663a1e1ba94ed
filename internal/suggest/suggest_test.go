package suggest

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestHint(t *testing.T) {
	for _, c := range []struct{ s, want string }{
		{"sucessRate", ` (did you mean "successRate"?)`},
		{"success_rate", ` (did you mean "successRate"?)`},
		{"SPLIT", ` (did you mean "split"?)`},
		{"bandwidth", ""},
		{"", ""},
	} {
		assert.Equal(t, c.want, Hint(c.s, []string{"split", "successRate", "latency"}), c.s)
	}
}
