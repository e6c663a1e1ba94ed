package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Input that once got past validation and then hung, exhausted or crashed
// a run: each is refused at load time with its file, line and field.
func TestHostileInputErrors(t *testing.T) {
	runErrorCases(t, []errorCase{
		{"rate-too-high.yaml", []wantError{
			{Line: 5, Field: "load.rate", Msg: "the limit is 20000/s"},
			{Line: 8, Field: "steadyState.rate", Msg: "rate 50000/s is 50000 requests per second"},
		}},
		{"requests-too-many.yaml", []wantError{
			{Line: 6, Field: "load.duration", Msg: "is 12000000 requests; the limit is 1000000"},
		}},
		{"regex-invalid.yaml", []wantError{
			{Line: 13, Field: "mesh[0].spec.http[0].match[0].headers.content-type.regex", Msg: `invalid regex "ja(son"`},
			{Line: 15, Field: "mesh[0].spec.http[0].match[1].uri.regex", Msg: "missing closing ]"},
			{Line: 17, Field: "mesh[0].spec.http[0].match[2].queryParams.id.regex", Msg: "invalid repeat count"},
			{Line: 21, Field: "mesh[0].spec.http[1].rewrite.uriRegexRewrite.match", Msg: `invalid regex "^/pay("`},
		}},
		{"replicas-too-many.yaml", []wantError{
			{Line: 10, Field: "topology.services[1].versions[0].replicas", Msg: "the topology has 10001 pods; a mesh holds at most 249"},
		}},
		{"alias-bomb.yaml", []wantError{
			{Line: 7, Field: "f", Msg: "this expands to more than 200000 YAML nodes"},
		}},
		{"alias-bomb-vs.yaml", []wantError{
			{Line: 19, Field: "mesh[0].spec.http[4].match", Msg: "this expands to more than 200000 YAML nodes"},
		}},
		{"not-yaml-mesh.yaml", []wantError{
			{File: "testdata/bad/istio/not-yaml-alias.txt", Msg: "invalid YAML: an alias (*name) refers to no anchor"},
			{File: "testdata/bad/istio/not-yaml-string.txt", Line: 1, Msg: "got a string"},
			{File: "testdata/bad/istio/not-yaml.txt", Line: 1, Msg: "neither apiVersion nor kind"},
		}},
	})
}

// A file that is not Istio YAML (here: shaped like /etc/shadow) is named,
// never quoted.
func TestContentOfNonYAMLFilesIsNeverEchoed(t *testing.T) {
	_, err := LoadFile("testdata/bad/not-yaml-mesh.yaml")
	require.Error(t, err)
	for _, secret := range []string{"secret", "root", "daemon", "20228"} {
		assert.NotContains(t, err.Error(), secret)
	}
	_, err = LoadFile("testdata/bad/istio/not-yaml.txt")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a scenario")
	assert.NotContains(t, err.Error(), "secret")
}

func TestTrailingDocumentSeparatorIsAccepted(t *testing.T) {
	s, err := LoadFile("testdata/good/trailing-separator.yaml")
	require.NoError(t, err)
	assert.Equal(t, "trailing-separator", s.Name)
	_, err = LoadFS(fstest.MapFS{"x.yaml": {Data: []byte(minimalScenario + "---\n---\nname: second\n")}}, "x.yaml", "x.yaml")
	assert.ErrorContains(t, err, "x.yaml:6: a scenario file holds one YAML document")
}

const minimalScenario = `name: big
load: {target: order, rate: 100/s, duration: 1s}
expect:
  - successRate: {min: 0.99}
`

// Inputs too big to keep in testdata, generated: each must be refused
// quickly, at its line.
func TestGeneratedHostileInputs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files fstest.MapFS
		want  string
	}{
		{"3001 services", fstest.MapFS{"x.yaml": {Data: []byte(manyServices(3001))}},
			"x.yaml:503: topology.services[249].versions[0].replicas: the topology has 3001 pods; a mesh holds at most 249"},
		{"a mapping of 20,000 keys", fstest.MapFS{"x.yaml": {Data: []byte(manyHeaders(20_000))}},
			"x.yaml:6: load.headers: a mapping of 20000 keys; the limit is 1000"},
		{"a scenario past the size limit", fstest.MapFS{"x.yaml": {Data: []byte(minimalScenario + padding(MaxFileSize))}},
			"x.yaml: cannot read scenario: the file is 524386 bytes; the limit is 512 KiB"},
		{"a mesh file past the size limit", fstest.MapFS{
			"x.yaml":   {Data: []byte(minimalScenario + "mesh:\n  - file: big.yaml\n")},
			"big.yaml": {Data: []byte(padding(MaxFileSize + 1))}},
			"x.yaml:6: mesh[0].file: cannot read mesh file big.yaml: the file is"},
		{"mesh files past the total limit", fstest.MapFS{
			"x.yaml":   {Data: []byte(minimalScenario + "mesh:\n" + strings.Repeat("  - file: big.yaml\n", 20))},
			"big.yaml": {Data: []byte(padding(MaxFileSize / 2))}},
			"x.yaml:21: mesh[15].file: cannot read mesh file big.yaml: the scenario's files add up to more than 4 MiB"},
		{"a flat list past the node limit", fstest.MapFS{"x.yaml": {Data: []byte(minimalScenario + "x: [" + strings.Repeat("a,", MaxNodes) + "a]\n")}},
			"x.yaml:5: x: this expands to more than 200000 YAML nodes"},
		{"deep nesting", fstest.MapFS{"x.yaml": {Data: []byte(minimalScenario + "x: " + strings.Repeat("[", 200) + strings.Repeat("]", 200) + "\n")}},
			"the YAML nests deeper than 100 levels"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			s, err := LoadFS(tc.files, "x.yaml", "x.yaml")
			assert.Nil(t, s)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Less(t, time.Since(start), 20*time.Second, "bounded, even under the race detector")
		})
	}
}

// Only regular files are read: a FIFO would block forever, /dev/zero
// never ends.
func TestOnlyRegularFilesAreRead(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "folder.yaml"), 0o700))
	zero, err := filepath.Rel(dir, "/dev/zero")
	require.NoError(t, err)
	scenario := filepath.Join(dir, "s.yaml")
	mesh := fmt.Sprintf("mesh:\n  - file: fifo.yaml\n  - file: %s\n  - file: folder.yaml\n", zero)
	require.NoError(t, os.WriteFile(scenario, []byte(minimalScenario+mesh), 0o600))

	errs := loadWithin(t, scenario, 20*time.Second)
	require.Len(t, errs, 3, "%v", errs)
	assert.Contains(t, errs[0].Error(), "s.yaml:6: mesh[0].file: cannot read mesh file")
	assert.Contains(t, errs[0].Error(), "not a regular file (a named pipe)")
	assert.Contains(t, errs[1].Error(), "s.yaml:7: mesh[1].file:")
	assert.Contains(t, errs[1].Error(), "not a regular file (a character device)")
	assert.Contains(t, errs[2].Error(), "not a regular file (a directory)")

	errs = loadWithin(t, filepath.Join(dir, "fifo.yaml"), 20*time.Second)
	assert.Contains(t, errs.Error(), "cannot read scenario: not a regular file (a named pipe)")
}

// loadWithin loads the scenario file p, failing the test if loading does
// not return within limit.
func loadWithin(t *testing.T, p string, limit time.Duration) Errors {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := LoadFile(p)
		done <- err
	}()
	select {
	case err := <-done:
		var errs Errors
		require.True(t, errors.As(err, &errs), "want Errors, got %v", err)
		return errs
	case <-time.After(limit):
		t.Fatalf("loading %s did not return within %s", p, limit)
		return nil
	}
}

func manyServices(n int) string {
	var b strings.Builder
	b.WriteString("name: many\ntopology:\n  services:\n")
	for i := range n {
		fmt.Fprintf(&b, "    - name: s%d\n      versions: [{name: v1}]\n", i)
	}
	b.WriteString("load: {target: s0, rate: 100/s, duration: 1s}\nexpect:\n  - successRate: {min: 0.99}\n")
	return b.String()
}

func manyHeaders(n int) string {
	var b strings.Builder
	b.WriteString("name: keys\nload:\n  target: order\n  rate: 100/s\n  headers:\n")
	for i := range n {
		fmt.Fprintf(&b, "    x-h%d: v\n", i)
	}
	b.WriteString("expect:\n  - successRate: {min: 0.99}\n")
	return b.String()
}

// padding is at least n bytes of YAML comments.
func padding(n int) string {
	line := "# " + strings.Repeat("-", 62) + "\n"
	return strings.Repeat(line, n/len(line)+1)
}
