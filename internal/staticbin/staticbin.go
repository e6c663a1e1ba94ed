// Package staticbin builds a static meshbench for the container runtimes'
// tests: their images hold the binary, and FROM scratch needs it static.
package staticbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Build builds cmd/meshbench with CGO_ENABLED=0 into a new temporary
// directory; cleanup removes it.
func Build() (binary string, cleanup func(), err error) { return BuildIn("") }

// BuildIn is Build run in directory moduleDir ("": the working directory): a
// module that replaces meshbench with its checkout (fidelity/) passes that
// checkout, so that the binary is built with meshbench's own go.mod.
func BuildIn(moduleDir string) (binary string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "meshbench-static")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	binary = filepath.Join(dir, "meshbench")
	build := exec.Command("go", "build", "-o", binary, "github.com/meshbench/meshbench/cmd/meshbench")
	build.Dir = moduleDir
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("building a static meshbench: %w\n%s", err, out)
	}
	return binary, cleanup, nil
}
