package syncbuf

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestConcurrentWritersKeepWholeLines(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				fmt.Fprintf(&b, "w%d-%d\n", i, j)
			}
		})
	}
	wg.Wait()
	lines := b.Lines()
	assert.Len(t, lines, 800)
	for _, l := range lines {
		assert.Regexp(t, `^w\d-\d+$`, l)
	}
}

func TestLinesLeavesOutAPartialLine(t *testing.T) {
	var b Buffer
	assert.Empty(t, b.Lines())
	fmt.Fprint(&b, "one\ntw")
	assert.Equal(t, []string{"one"}, b.Lines())
	assert.Equal(t, "one\ntw", b.String())
}
