package main

import (
	"os"
	"runtime/debug"

	"github.com/meshbench/meshbench/sim/local"
	"github.com/meshbench/meshbench/sim/runtime"
)

// localGCPercent is the garbage collector's target on the local runtime,
// where this one process holds every pod, sidecar and load generator of
// every mesh at once. The collector's marking then competes with the data
// plane for the same cores, and 100 (Go's default) spends it on a heap of
// short-lived request objects. At 400 the heap may grow to five times
// what is live, a few hundred MB for the whole catalog six meshes at a
// time, against the cores: make scenario PARALLEL=6 used 82 s of CPU
// instead of 86 s and no longer collapsed in its first wave.
const localGCPercent = 400

// tuneGC sets localGCPercent on the local runtime unless the user set
// GOGC (or GOMEMLIMIT), whose choice stands.
func tuneGC(rt runtime.Runtime) {
	if _, ok := rt.(local.Runtime); !ok {
		return
	}
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(localGCPercent)
}
