package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/derive"
	"github.com/meshbench/meshbench/scenarios/catalog"
	"github.com/meshbench/meshbench/scenarios/spec"
)

// The end-to-end folders, written in the shape of Istio's sample tasks:
// request routing, traffic shifting, fault injection, circuit breaking,
// mTLS migration, authorization (and from allow-nothing), timeouts, retries and per-try
// timeouts (resilience), and traffic shifting with a Gateway API route for
// mesh traffic (gateway-api), and mirroring with mirrors (mirroring).
var checkFolders = map[string]string{}

func init() {
	for _, f := range []string{"routing", "traffic-shifting", "fault-injection", "circuit-breaking", "mtls-migration", "authorization", "authorization-allow-nothing", "resilience", "gateway-api", "mirroring"} {
		checkFolders[f] = filepath.Join("..", "..", "derive", "testdata", f)
	}
}

// Small loads: the checks' power is planned for a 25-point shift here,
// which the broken copies below exceed by far.
var smallLoad = []string{"-shift", "0.25", "-rate", "100"}

// Every promise of the two folders holds on the local runtime, each
// verdict line under the file and line of its promise, and what is not
// checked is listed, in the output and in the reports.
func TestCheckFoldersPass(t *testing.T) {
	if testing.Short() {
		t.Skip("brings up meshes; skipped with -short")
	}
	// The loads pace themselves and leave the cores mostly idle, and each
	// mesh has a loopback /24 of its own (sim/local newSubnet): the folders
	// run side by side, as many at once as -parallel allows.
	for name, folder := range checkFolders {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			args := append(append([]string{"check"}, smallLoad...), "-dir", dir, folder)
			code, out, stderr := runCLI(t, args...)
			assert.Equal(t, 0, code, "%s\n%s", out, stderr)
			assert.NotContains(t, out, "✗")
			assert.Contains(t, out, "▶ ")
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "▶ ") {
					assert.Contains(t, line, folder+"/", "a verdict's heading cites its promise")
				}
			}
			junit, err := os.ReadFile(filepath.Join(dir, "junit.xml"))
			require.NoError(t, err)
			summary, err := os.ReadFile(filepath.Join(dir, "summary.md"))
			require.NoError(t, err)
			assert.Contains(t, string(summary), "## Inferred from the input")
			assert.Contains(t, string(summary), "\n## Scenarios\n", "a section per resource, then each scenario's details")
			index, err := os.ReadFile(filepath.Join(dir, "index.html"))
			require.NoError(t, err)
			assert.Contains(t, string(index), `<section class="resource" id="resource-1">`)
			if strings.Contains(out, "\n  - not checked: ") {
				assert.Contains(t, string(junit), "<skipped")
			}
		})
	}
}

// catalogIstioFileSets are catalog.IstioFileSets, as paths from here.
func catalogIstioFileSets(t *testing.T) [][]string {
	t.Helper()
	sets, err := catalog.IstioFileSets()
	require.NoError(t, err)
	for _, set := range sets {
		for i, f := range set {
			set[i] = filepath.Join("..", "..", "scenarios", "catalog", filepath.FromSlash(f))
		}
	}
	return sets
}

// Every check derived from the catalog's own Istio files holds on the
// local runtime. All the distinct sets run (7 today: authorization, a
// Bookinfo and a payment 90/10 VirtualService, the same with a Telemetry
// resource, a Gateway API canary, mesh-wide STRICT mTLS with and without
// workload DISABLE policies; 13 checks, about 30 s side by side). The
// mesh-wide STRICT policy alone names no workload, so nothing is inferred
// and it derives no check (it is listed as not checked).
func TestCheckCatalogIstioFilesPass(t *testing.T) {
	if testing.Short() {
		t.Skip("brings up meshes; skipped with -short")
	}
	sets := catalogIstioFileSets(t)
	require.NotEmpty(t, sets)
	for _, files := range sets {
		name := strings.TrimSuffix(filepath.Base(files[len(files)-1]), ".yaml")
		if len(files) > 1 {
			name = fmt.Sprintf("%s+%d", name, len(files)-1)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := append(append([]string{"check"}, smallLoad...), "-dir", t.TempDir())
			code, out, stderr := runCLI(t, append(args, files...)...)
			assert.Equal(t, 0, code, "%s\n%s", out, stderr)
			assert.NotContains(t, out, "✗")
			assert.Contains(t, out, " promises held")
		})
	}
}

// brokenCopy derives the scenarios of folder into a directory, then
// replaces the mesh they apply with folder's resources after edits to
// file: the promises stay, the mesh that runs gets the altered config.
func brokenCopy(t *testing.T, folder, file string, edits [][2]string) string {
	t.Helper()
	promises := t.TempDir()
	code, out, stderr := runCLI(t, append(append([]string{"check"}, smallLoad...), "-o", promises, folder)...)
	require.Equal(t, 0, code, "%s\n%s", out, stderr)

	altered := t.TempDir()
	entries, err := os.ReadDir(folder)
	require.NoError(t, err)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(folder, e.Name()))
		require.NoError(t, err)
		if e.Name() == file {
			for _, ed := range edits {
				require.Contains(t, string(data), ed[0])
				data = []byte(strings.Replace(string(data), ed[0], ed[1], 1))
			}
		}
		require.NoError(t, os.WriteFile(filepath.Join(altered, e.Name()), data, 0o644))
	}
	mesh := t.TempDir()
	code, out, stderr = runCLI(t, "check", "-o", mesh, altered)
	require.Equal(t, 0, code, "%s\n%s", out, stderr)
	meshFile := filepath.FromSlash(derive.MeshFile)
	data, err := os.ReadFile(filepath.Join(mesh, meshFile))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(promises, meshFile), data, 0o644))
	return promises
}

// Each broken copy fails the check its promise derived.
func TestCheckCatchesBrokenCopies(t *testing.T) {
	if testing.Short() {
		t.Skip("brings up meshes; skipped with -short")
	}
	for _, tc := range []struct {
		name, folder, file string
		edits              [][2]string
		scenario, failing  string
	}{
		{
			name: "a match's header changed", folder: checkFolders["routing"], file: "catalog-routing.yaml",
			edits:    [][2]string{{"exact: tester", "exact: someone-else"}},
			scenario: "catalog-tester-match", failing: "✗ split catalog (matching)",
		},
		{
			name: "a match's method changed", folder: checkFolders["routing"], file: "catalog-routing.yaml",
			edits:    [][2]string{{"exact: GET", "exact: PUT"}},
			scenario: "catalog-readers-match", failing: "✗ split catalog (matching)",
		},
		{
			name: "weights changed in the mesh", folder: checkFolders["traffic-shifting"], file: "reviews.yaml",
			edits:    [][2]string{{"weight: 50", "weight: 90"}, {"weight: 50", "weight: 10"}},
			scenario: "reviews-split", failing: "✗ split reviews",
		},
		{
			name: "an HTTPRoute's weights changed", folder: checkFolders["gateway-api"], file: "reviews.yaml",
			edits:    [][2]string{{"weight: 80", "weight: 50"}, {"weight: 20", "weight: 50"}},
			scenario: "reviews-rule0-split", failing: "✗ split reviews",
		},
		{
			name: "an abort's share lowered", folder: checkFolders["fault-injection"], file: "stock-faults.yaml",
			edits:    [][2]string{{"value: 100", "value: 20"}},
			scenario: "stock-http0-fault", failing: "✗ status 500 share (faulted)",
		},
		{
			name: "the pool's limits dropped", folder: checkFolders["circuit-breaking"], file: "httpbin.yaml",
			edits:    [][2]string{{"maxConnections: 1", "maxConnections: 100"}, {"http1MaxPendingRequests: 1", "http1MaxPendingRequests: 100"}},
			scenario: "httpbin-connection-pool", failing: "✗ overflows",
		},
		{
			name: "a STRICT policy dropped", folder: checkFolders["mtls-migration"], file: "peer-authentication.yaml",
			edits:    [][2]string{{"mode: STRICT", "mode: PERMISSIVE"}},
			scenario: "default-mtls", failing: "✗ status 502 share (plaintext)",
		},
		{
			name: "an allowed principal renamed", folder: checkFolders["authorization"], file: "ratings.yaml",
			edits:    [][2]string{{"sa/reviews", "sa/reviewer"}},
			scenario: "ratings-viewer-rule0-authz", failing: "✗ success rate (reviews)",
		},
		{
			name: "an allowed path widened to every path", folder: checkFolders["authorization"], file: "ratings.yaml",
			edits:    [][2]string{{`paths: ["/details/*"]`, `paths: ["/*"]`}},
			scenario: "details-viewer-rule0-authz-other-path", failing: "✗ status 403 share (productpage)",
		},
		{
			name: "an allowed method list widened", folder: checkFolders["authorization"], file: "ratings.yaml",
			edits:    [][2]string{{`methods: ["GET"]`, `methods: ["GET", "DELETE"]`}},
			scenario: "ratings-viewer-rule0-authz-other-method", failing: "✗ status 403 share (reviews)",
		},
		{
			name: "the allow-nothing policy narrowed to ratings", folder: checkFolders["authorization-allow-nothing"], file: "policies.yaml",
			edits:    [][2]string{{"spec: {}", "spec: {selector: {matchLabels: {app: ratings}}}"}},
			scenario: "allow-nothing-allow-nothing", failing: "✗ status 403 share (details)",
		},
		{
			name: "a retry removed", folder: checkFolders["resilience"], file: "payment-routes.yaml",
			edits:    [][2]string{{"      retries:\n        attempts: 3\n        perTryTimeout: 100ms\n        retryOn: 5xx\n", ""}},
			scenario: "payment-retries", failing: "✗ success rate",
		},
		{
			name: "a per-try timeout removed", folder: checkFolders["resilience"], file: "payment-routes.yaml",
			edits:    [][2]string{{"        perTryTimeout: 100ms\n", ""}},
			scenario: "payment-per-try-timeout", failing: "✗ attempts at payment",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := brokenCopy(t, tc.folder, tc.file, tc.edits)
			code, out, stderr := runCLI(t, "run", "-dir", t.TempDir(), filepath.Join(dir, tc.scenario+".yaml"))
			assert.Equal(t, 1, code, "%s\n%s", out, stderr)
			assert.Contains(t, out, tc.failing)
		})
	}
}

// shadowedCanary is a folder whose own config breaks one of its promises:
// two VirtualServices for the host payment, one sending all to v1, the
// other splitting 50/50. On sidecars Istio applies only the first
// VirtualService of a host, the oldest (then by name), and drops the
// others' routes for that host (istiod's httproute.go
// BuildSidecarOutboundVirtualHosts); the control plane does the same
// (sim/xdsgen/routes.go virtualHost). payment comes first in the file and
// by name, so it is the older and wins either way: payment-canary's 50/50
// promise is false in Istio, and every request goes to v1.
const shadowedCanary = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: payment
spec:
  host: payment
  subsets:
    - name: v1
      labels: {version: v1}
    - name: v2
      labels: {version: v2}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: payment
spec:
  hosts: [payment]
  http:
    - route:
        - destination: {host: payment, subset: v1}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: payment-canary
spec:
  hosts: [payment]
  http:
    - route:
        - destination: {host: payment, subset: v1}
          weight: 50
        - destination: {host: payment, subset: v2}
          weight: 50
`

// check itself exits 1, with a ✗ under the broken promise's line, when
// the folder's own config keeps the mesh from doing what the YAML says;
// the promises the mesh keeps still pass, and the reports are written.
func TestCheckFailsOnShadowedVirtualService(t *testing.T) {
	if testing.Short() {
		t.Skip("brings up meshes; skipped with -short")
	}
	folder := t.TempDir()
	file := filepath.Join(folder, "payment.yaml")
	require.NoError(t, os.WriteFile(file, []byte(shadowedCanary), 0o644))
	dir := t.TempDir()
	args := append(append([]string{"check"}, smallLoad...), "-dir", dir, folder)
	code, out, stderr := runCLI(t, args...)
	assert.Equal(t, 1, code, "%s\n%s", out, stderr)
	// Each verdict under its promise's heading (a load line between).
	verdict := func(name, promise, mark string) *regexp.Regexp {
		return regexp.MustCompile(regexp.QuoteMeta("▶ "+name+" — "+promise) + `\n(?:  .*\n)*?  ` + mark + ` split payment`)
	}
	assert.Regexp(t, verdict("payment-canary-split", file+":30: VirtualService default/payment-canary routes by weight: v1 50, v2 50", "✗"), out)
	assert.Regexp(t, verdict("payment-split", file+":20: VirtualService default/payment routes all to v1", "✓"), out)
	assert.Equal(t, 1, strings.Count(out, "✗"), out)
	assert.Contains(t, out, "3 of 4 promises held")
	assert.Contains(t, stderr, "1 promise(s) failed")
	assert.FileExists(t, filepath.Join(dir, "junit.xml"))
}

// Bad input is exit status 2 with file and line, and nothing is started
// or written.
func TestCheckBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "vs.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\nspec:\n  hosts: [a]\n  http:\n    - route: [{destination: {host: a}, weight: \"90\"}]\n"), 0o644))
	out := filepath.Join(dir, "out")
	code, _, stderr := runCLI(t, "check", "-o", out, bad)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, bad+":7:")
	assert.NoDirExists(t, out)

	// What the scenario loader refuses in a resource is reported at the
	// input's file and line, once, not in the mesh file check wrote for
	// each derived scenario.
	both := filepath.Join(dir, "mirror.yaml")
	require.NoError(t, os.WriteFile(both, []byte(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: checkout}
spec:
  hosts: [checkout]
  http:
    - route:
        - destination: {host: checkout, subset: v1}
          weight: 50
        - destination: {host: checkout, subset: v2}
          weight: 50
      mirror: {host: audit}
      mirrors:
        - destination: {host: audit}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: checkout}
spec:
  host: checkout
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
`), 0o644))
	code, _, stderr = runCLI(t, "check", "-dir", filepath.Join(dir, "reports"), both)
	assert.Equal(t, 2, code)
	assert.Equal(t, both+":13: spec.http[0].mirrors: HTTP route cannot contain both mirror and mirrors", strings.TrimSpace(stderr))

	code, _, stderr = runCLI(t, "check")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "name at least one file or folder")
	code, _, _ = runCLI(t, "check", "-runtime", "moon", checkFolders["routing"])
	assert.Equal(t, 2, code)
}

// -v shows every inferred service, version and check with its line; -o
// writes the scenarios and the mesh they apply, and runs nothing.
func TestCheckVerboseAndWrite(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := runCLI(t, "check", "-v", "-o", dir, checkFolders["routing"])
	require.Equal(t, 0, code, stderr)
	src := checkFolders["routing"] + "/"
	for _, want := range []string{
		"service catalog  " + src + "catalog-routing.yaml:10",
		"version catalog/v3  " + src + "destination-rules.yaml:16  2 pods, subsets v3",
		"check catalog-tester-match  " + src + "catalog-routing.yaml:12",
		"check catalog-readers-match  " + src + "catalog-routing.yaml:21  VirtualService default/catalog routes requests with method GET, path /catalog all to v3",
		"check catalog-shift-split  " + src + "catalog-routing.yaml:29  VirtualService default/catalog routes by weight: v1 70, v3 30",
		"note: " + src + "deployment.yaml:2: ignored Deployment catalog-v1",
	} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, "▶", "-o runs nothing")
	assert.FileExists(t, filepath.Join(dir, "mesh", "istio.yaml"))
	assert.FileExists(t, filepath.Join(dir, "catalog-shift-split.yaml"))
}

// The command -o prints to run the scenarios takes every file its glob
// matches as a scenario: the mesh files (istio.yaml, and entry.yaml under
// allow-nothing) are out of the glob's way, and each match loads as
// meshbench validate loads it.
func TestCheckWriteHintGlobLoads(t *testing.T) {
	for _, folder := range []string{checkFolders["routing"], checkFolders["authorization-allow-nothing"]} {
		dir := t.TempDir()
		code, out, stderr := runCLI(t, "check", "-o", dir, folder)
		require.Equal(t, 0, code, stderr)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		last := lines[len(lines)-1]
		_, glob, ok := strings.Cut(last, "; run them with meshbench run ")
		require.True(t, ok, last)
		files, err := filepath.Glob(glob)
		require.NoError(t, err)
		require.NotEmpty(t, files)
		assert.True(t, strings.HasPrefix(last, fmt.Sprintf("%d scenarios in %s", len(files), dir)), "%s: the glob takes the scenarios alone", last)
		for _, f := range files {
			sc, err := spec.LoadFile(f)
			require.NoError(t, err, f)
			assert.NotEmpty(t, sc.Config, f)
		}
		code, _, stderr = runCLI(t, append([]string{"validate"}, files...)...)
		assert.Equal(t, 0, code, stderr)
	}
	// Under allow-nothing the entry policies are a mesh file too.
	dir := t.TempDir()
	code, _, stderr := runCLI(t, "check", "-o", dir, checkFolders["authorization-allow-nothing"])
	require.Equal(t, 0, code, stderr)
	assert.FileExists(t, filepath.Join(dir, filepath.FromSlash(derive.EntryFile)))
}
