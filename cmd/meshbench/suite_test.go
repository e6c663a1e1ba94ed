package main

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/sim/docker"
	"github.com/meshbench/meshbench/sim/kind"
	"github.com/meshbench/meshbench/sim/local"
	"github.com/meshbench/meshbench/sim/runtime"
)

// shortScenario is a scenario file whose run takes about a second; a
// failing one expects no successful request.
func shortScenario(t *testing.T, dir, name string, fail bool) string {
	t.Helper()
	want := "successRate: {min: 0.99}"
	if fail {
		want = "status: {code: 500, min: 0.5}"
	}
	path := filepath.Join(dir, name+".yaml")
	require.NoError(t, os.WriteFile(path, fmt.Appendf(nil, `name: %s
load: {target: order, rate: 50/s, duration: 600ms}
expect:
  - %s
`, name, want), 0o644))
	return path
}

// With -parallel, scenarios run side by side, each in a mesh of its own,
// and their verdicts print and land in the suite in the command's order;
// a failure among them is counted, and the exit status says so.
func TestParallelRunKeepsTheOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("brings up meshes; skipped with -short")
	}
	files := t.TempDir()
	names := []string{"first", "second", "third", "fourth"}
	var args []string
	for i, n := range names {
		args = append(args, shortScenario(t, files, n, i == 2))
	}
	dir := t.TempDir()
	code, out, stderr := runCLI(t, append([]string{"run", "-parallel", "3", "-dir", dir}, args...)...)
	assert.Equal(t, 1, code, "%s\n%s", out, stderr)
	assert.Contains(t, out, "3 of 4 scenarios passed")

	var headings []string
	for _, line := range strings.Split(out, "\n") {
		if n, ok := strings.CutPrefix(line, "▶ "); ok {
			headings = append(headings, strings.Fields(n)[0])
		}
	}
	assert.Equal(t, names, headings, "verdicts print in the command's order")
	third := out[strings.Index(out, "▶ third"):strings.Index(out, "▶ fourth")]
	assert.Contains(t, third, "✗ status", "each scenario's lines stay under its heading")

	suite, err := os.ReadFile(filepath.Join(dir, reports.SuiteFile))
	require.NoError(t, err)
	for i := 1; i < len(names); i++ {
		assert.Less(t, strings.Index(string(suite), `"`+names[i-1]+`"`), strings.Index(string(suite), `"`+names[i]+`"`))
	}
}

// -parallel is refused where scenarios share one cluster, and out of range.
func TestParallelBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"run", "-parallel", "2", "-runtime", "kind", "canary-90-10"},
		{"run", "-parallel", "0", "canary-90-10"},
		{"check", "-parallel", "17", "."},
	} {
		code, _, stderr := runCLI(t, args...)
		assert.Equal(t, 2, code, "%v: %s", args, stderr)
		assert.Contains(t, stderr, "-parallel", "%v", args)
	}
}

// check runs up to 2 scenarios per CPU (at most 4) at once on the local
// runtime unless told otherwise, and one at a time elsewhere.
func TestCheckAutoParallel(t *testing.T) {
	for _, tc := range []struct {
		rt        runtime.Runtime
		given, is int
	}{
		{local.Runtime{}, 0, min(4, 2*goruntime.NumCPU())},
		{local.Runtime{}, 2, 2},
		{docker.Runtime{}, 0, 1},
		{docker.Runtime{}, 3, 3},
		{kind.Runtime{}, 0, 1},
	} {
		n := tc.given
		autoParallel(&n, tc.rt)
		assert.Equal(t, tc.is, n, "%s, -parallel %d", tc.rt.Name(), tc.given)
	}
}
