package main

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/meshbench/meshbench/sim/kind"
	"github.com/meshbench/meshbench/sim/local"
)

// gcPercent reads the collector's target without changing it.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestTuneGCOnTheLocalRuntimeOnly(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")

	tuneGC(kind.Runtime{})
	assert.Equal(t, 100, gcPercent(), "a cluster's proxies run elsewhere")

	tuneGC(local.Runtime{})
	assert.Equal(t, localGCPercent, gcPercent())

	debug.SetGCPercent(100)
	t.Setenv("GOGC", "150")
	tuneGC(local.Runtime{})
	assert.Equal(t, 100, gcPercent(), "the user's GOGC stands")
}
