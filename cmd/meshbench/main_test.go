package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := exitCode(run(context.Background(), args, &out, &errOut), &errOut)
	return code, out.String(), errOut.String()
}

// Each class of bad input gets exit status 2 and a message naming file and line.
func TestBadInputExitsTwoWithFileAndLine(t *testing.T) {
	cases := map[string]string{
		"malformed.yaml":        "",
		"unknown-field.yaml":    "",
		"vs-unknown-field.yaml": "atempts",
		"weights-80-10.yaml":    "100",
		"no-weights.yaml":       "weight",
		"undefined-subset.yaml": "subset",
		"unknown-host.yaml":     "host",
	}
	for file, want := range cases {
		t.Run(file, func(t *testing.T) {
			path := filepath.Join("..", "..", "scenarios", "spec", "testdata", "bad", file)
			for _, args := range [][]string{{"validate", path}, {"run", "-out", t.TempDir(), path}} {
				code, _, stderr := runCLI(t, args...)
				assert.Equal(t, 2, code, "%v: %s", args, stderr)
				assert.Regexp(t, regexp.MustCompile(regexp.QuoteMeta(file)+`:\d+:`), stderr)
				assert.Contains(t, stderr, want)
			}
		})
	}
}

func TestUnknownCommandAndRuntimeAreBadInput(t *testing.T) {
	code, _, _ := runCLI(t, "frobnicate")
	assert.Equal(t, 2, code)
	code, _, stderr := runCLI(t, "run", "-runtime", "moon", "canary-90-10")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "unknown runtime")
	code, _, _ = runCLI(t, "run", "no-such-scenario")
	assert.Equal(t, 2, code)
}

func TestValidateAndListTheCatalog(t *testing.T) {
	code, out, stderr := runCLI(t, "validate", "canary-90-10", "header-routing", "no-mesh-config")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "canary-90-10.yaml: ok")
	code, out, _ = runCLI(t, "list")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "header-routing")
}

func TestXDSDumpsIstioNamedConfig(t *testing.T) {
	code, out, stderr := runCLI(t, "xds", "-proxy", "order-v1-0", "-type", "clusters", "canary-90-10")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, `"outbound|80|v2|payment.default.svc.cluster.local"`)
	assert.Contains(t, out, `"LEAST_REQUEST"`)
	code, _, stderr = runCLI(t, "xds", "-proxy", "nobody", "canary-90-10")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "no proxy")
}

// Input that once passed validate and then panicked, hung or ran out of
// memory: validate and run refuse it with exit status 2, file and line,
// before anything starts.
func TestHostileInputExitsTwoWithFileAndLine(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o600))
	fifoMesh := filepath.Join(dir, "fifo-mesh.yaml")
	require.NoError(t, os.WriteFile(fifoMesh, []byte("name: fifo\nmesh:\n  - file: fifo.yaml\nload: {target: order, rate: 10/s, duration: 1s}\nexpect:\n  - successRate: {min: 0.9}\n"), 0o600))
	bad := func(name string) string {
		return filepath.Join("..", "..", "scenarios", "spec", "testdata", "bad", name)
	}
	cases := map[string]string{
		bad("rate-too-high.yaml"):       "rate-too-high.yaml:5: load.rate:",
		bad("regex-invalid.yaml"):       "regex-invalid.yaml:13: mesh[0].spec.http[0].match[0].headers.content-type.regex: invalid regex",
		bad("replicas-too-many.yaml"):   "replicas-too-many.yaml:10: topology.services[1].versions[0].replicas:",
		bad("alias-bomb.yaml"):          "alias-bomb.yaml:7: f: this expands",
		bad("alias-bomb-vs.yaml"):       "alias-bomb-vs.yaml:19: mesh[0].spec.http[4].match: this expands",
		bad("not-yaml-mesh.yaml"):       "not-yaml.txt:1: not an Istio object",
		bad("requests-too-many.yaml"):   "requests-too-many.yaml:6: load.duration:",
		fifoMesh:                        "fifo-mesh.yaml:3: mesh[0].file: cannot read mesh file",
		filepath.Join(dir, "fifo.yaml"): "fifo.yaml: cannot read scenario: not a regular file (a named pipe)",
	}
	for path, want := range cases {
		t.Run(filepath.Base(path), func(t *testing.T) {
			for _, args := range [][]string{{"validate", path}, {"run", "-out", t.TempDir(), path}} {
				code, stdout, stderr := runCLI(t, args...)
				assert.Equal(t, 2, code, "%v: %s", args, stderr)
				assert.Contains(t, stderr, want, "%v", args)
				assert.Empty(t, stdout, "%v: nothing started", args)
			}
		})
	}
}

func TestTrailingSeparatorValidates(t *testing.T) {
	code, out, stderr := runCLI(t, "validate", filepath.Join("..", "..", "scenarios", "spec", "testdata", "good", "trailing-separator.yaml"))
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "trailing-separator.yaml: ok")
}

// A panic is a run that broke (exit 1, with a message), never Go's exit
// status 2, which reads as bad input.
func TestPanicExitsOneWithAMessage(t *testing.T) {
	var errOut bytes.Buffer
	code := exitCode(recovering(func() error { panic("integer divide by zero") }), &errOut)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut.String(), "meshbench: internal error: integer divide by zero")
	assert.Equal(t, 0, exitCode(recovering(func() error { return nil }), &errOut))
}

// Istio's Bookinfo DestinationRules define subsets for versions the
// scenario does not deploy: accepted, with an IST0173 warning per subset
// naming its file and line; istiod would serve those subsets' clusters
// empty, and so does the control plane.
func TestValidateWarnsOfSubsetsThatSelectNoPod(t *testing.T) {
	code, out, stderr := runCLI(t, "validate", "bookinfo-reviews-80-20")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "bookinfo-reviews-80-20.yaml: ok")
	assert.Contains(t, out, "  warning: scenarios/catalog/istio/bookinfo/destination-rule-all.yaml:28: spec.subsets[2].labels: IST0173: The Subset v3 defined in the DestinationRule does not select any pods.")
	assert.Equal(t, 5, strings.Count(out, "warning: "), out)
	code, out, stderr = runCLI(t, "xds", "-proxy", "productpage-v1-0", "-type", "clusters", "bookinfo-reviews-80-20")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, `"outbound|80|v3|reviews.default.svc.cluster.local"`)
}
