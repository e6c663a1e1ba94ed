package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
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
			path := filepath.Join("..", "..", "scenarios", "testdata", "bad", file)
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
