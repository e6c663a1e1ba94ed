package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"

	"github.com/meshbench/meshbench/internal/requiretest"
	"github.com/meshbench/meshbench/internal/staticbin"
	"github.com/meshbench/meshbench/sim/kind"
)

// `meshbench up -runtime kind` brings the canary up in a kind cluster with
// the real istiod and keeps it: the printed gateway answers, the printed
// stats URLs (the API server's pod proxy, through one local port) serve
// Istio's metrics, prometheus.yml names a path per proxy, and `meshbench
// down` stops it and deletes the cluster. It needs what the kind runtime
// needs (make kind-images); make test-kind runs it.
func TestUpOnKindServesUntilDown(t *testing.T) {
	if err := kind.Available(context.Background()); err != nil {
		requiretest.Missing(t, requiretest.Kind, fmt.Sprintf("the kind runtime cannot run here: %v", err))
	}
	bin, cleanup, err := staticbin.Build()
	require.NoError(t, err)
	defer cleanup()
	state := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", state)
	out := t.TempDir()
	printed, exited, stderr := startUp(t, exec.Command(bin, "up", "-runtime", "kind", "-out", out, "canary-90-10"))
	cluster := regexp.MustCompile(`kind export kubeconfig --name (\S+)`).FindStringSubmatch(printed)
	require.NotNil(t, cluster, "no cluster line")

	m := regexp.MustCompile(`curl -H 'Host: ([^']+)' (http://\S+)`).FindStringSubmatch(printed)
	require.NotNil(t, m, "no curl line")
	req, err := http.NewRequest(http.MethodPost, m[2], strings.NewReader("{}"))
	require.NoError(t, err)
	req.Host = m[1]
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)

	stats := regexp.MustCompile(`(?m)^  (\S+)\s+(http://\S+/stats/prometheus)$`).FindAllStringSubmatch(printed, -1)
	require.Len(t, stats, 6, "the gateway, order ×2 and payment ×3")
	for _, s := range stats {
		resp, err := http.Get(s[2])
		require.NoError(t, err, s[1])
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, s[1])
		assert.Contains(t, string(b), "# TYPE envoy_", s[1]) // every proxy's own; istio_ series come with its first request
	}
	pm := regexp.MustCompile(`prometheus.yml: (\S+)`).FindStringSubmatch(printed)
	require.NotNil(t, pm)
	prom, err := os.ReadFile(pm[1])
	require.NoError(t, err)
	assert.Contains(t, string(prom), "__metrics_path__: /pods/", "each proxy on its own path")

	code, downOut, downErr := runCLI(t, "down", "-up")
	require.Equal(t, 0, code, downErr)
	assert.Regexp(t, `stopped up canary-90-10 \(pid \d+, kind runtime\)`, downOut)
	select {
	case err := <-exited:
		assert.NoError(t, err, "up exits 0 when stopped:\n%s", stderr.String())
	case <-time.After(2 * time.Minute):
		t.Fatal("up still running after down returned")
	}
	assert.NotContains(t, kindClusters(t), cluster[1], "cluster deleted")
	files, err := filepath.Glob(filepath.Join(state, "meshbench", "up-*.json"))
	require.NoError(t, err)
	assert.Empty(t, files, "the state file is gone")
}

// `meshbench check -runtime kind` judges the mTLS migration folder against
// the real istiod and Istio's own proxy agent: STRICT refuses the plaintext
// caller (a pod without a sidecar), PERMISSIVE and DISABLE accept it, and
// the process exits 0 with no kind cluster of its own left. make test-kind
// runs it.
func TestCheckOnKindHoldsTheMTLSMigrationFolder(t *testing.T) {
	if err := kind.Available(context.Background()); err != nil {
		requiretest.Missing(t, requiretest.Kind, fmt.Sprintf("the kind runtime cannot run here: %v", err))
	}
	bin, cleanup, err := staticbin.Build()
	require.NoError(t, err)
	defer cleanup()
	before := kindClusters(t)
	folder := filepath.Join("..", "..", "derive", "testdata", "mtls-migration")
	out, err := exec.Command(bin, "check", "-runtime", "kind", "-shift", "0.25", "-rate", "100", "-dir", t.TempDir(), folder).CombinedOutput()
	text := string(out)
	require.NoError(t, err, "%s", text)
	assert.NotContains(t, text, "✗")
	for _, promise := range []string{"STRICT: plaintext from outside the mesh is refused", "PERMISSIVE: plaintext and mTLS are both accepted", "DISABLE: plaintext is accepted"} {
		assert.Contains(t, text, promise)
	}
	assert.Contains(t, text, "✓ status 502 share (plaintext)", "STRICT refused the pod without a sidecar")
	assert.Contains(t, text, "3 of 3 promises held")
	assert.ElementsMatch(t, before, kindClusters(t), "the run's cluster is deleted")
}

// kindClusters are the kind clusters on the engine.
func kindClusters(t *testing.T) []string {
	t.Helper()
	clusters, err := kindcluster.NewProvider(kindcluster.ProviderWithDocker()).List()
	require.NoError(t, err)
	return clusters
}
