package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/runtimetest"

	"github.com/meshbench/meshbench/internal/upstate"
)

// runMainEnv makes the test binary run meshbench's main instead of the
// tests: the up test starts it as `meshbench up` in a process of its own,
// which down then signals.
const runMainEnv = "MESHBENCH_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// upLines reads up's stdout until it says it is running, and returns what
// it printed; it fails the test if up exits first.
func upLines(t *testing.T, r io.Reader, stderr fmt.Stringer) []string {
	t.Helper()
	var lines []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.HasPrefix(sc.Text(), "running (pid ") {
			return lines
		}
	}
	t.Fatalf("up ended before it was running:\n%s\n%s", strings.Join(lines, "\n"), stderr)
	return nil
}

// startUp starts an up command and returns what it printed until it was
// running, a channel that gets its exit, and its stderr so far.
func startUp(t *testing.T, cmd *exec.Cmd) (string, <-chan error, *strings.Builder) {
	t.Helper()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // a no-op once up has exited
	printed := strings.Join(upLines(t, stdout, &stderr), "\n")
	exited := make(chan error, 1)
	go func() {
		_, _ = io.Copy(io.Discard, stdout) // the rest, so up's writes never block
		exited <- cmd.Wait()
	}()
	t.Logf("up printed:\n%s", printed)
	return printed, exited, &stderr
}

// `meshbench up` of the canary (with Istio's tracing task on it) serves the
// printed gateway URL and every printed stats URL, and `meshbench down`
// stops it: its process exits, its ports are closed, its state file is
// gone, and the request that asked to be traced is in the traces file.
func TestUpServesUntilDown(t *testing.T) {
	state := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", state)
	out := t.TempDir()
	cmd := exec.Command(os.Args[0], "up", "-out", out, "tracing-10pct-to-zipkin")
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	printed, exited, stderr := startUp(t, cmd)

	// The gateway answers the curl up suggests.
	m := regexp.MustCompile(`curl -H 'Host: ([^']+)' (http://\S+)`).FindStringSubmatch(printed)
	require.NotNil(t, m, "no curl line")
	req, err := http.NewRequest(http.MethodGet, m[2], nil)
	require.NoError(t, err)
	req.Host = m[1]
	req.Header.Set("x-b3-sampled", "1") // the sampling decision the proxies take over theirs
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	assert.Contains(t, string(body), `"service":"payment"`, "the request went through order to payment")

	// Every proxy's stats URL serves Istio's metrics, the gateway's first.
	stats := regexp.MustCompile(`(?m)^  (\S+)\s+(http://\S+/stats/prometheus)$`).FindAllStringSubmatch(printed, -1)
	require.Len(t, stats, 6, "the gateway, order ×2 and payment ×3")
	var addrs []string
	for _, s := range stats {
		resp, err := http.Get(s[2])
		require.NoError(t, err, s[1])
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, s[1])
		if s[1] == "istio-ingressgateway" {
			assert.Contains(t, string(b), "istio_requests_total", "the gateway counted the request")
		}
		u, err := url.Parse(s[2])
		require.NoError(t, err)
		addrs = append(addrs, u.Host)
	}
	gw, err := url.Parse(m[2])
	require.NoError(t, err)
	addrs = append(addrs, gw.Host)

	// The files up printed exist.
	for _, name := range []string{"prometheus.yml", "grafana-dashboard.json"} {
		fm := regexp.MustCompile(`(/\S+/` + regexp.QuoteMeta(name) + `)`).FindStringSubmatch(printed)
		require.NotNil(t, fm, name)
		assert.FileExists(t, fm[1])
	}
	files, err := filepath.Glob(filepath.Join(state, "meshbench", "up-*.json"))
	require.NoError(t, err)
	require.Len(t, files, 1, "up recorded itself")

	code, downOut, downErr := runCLI(t, "down", "-up")
	require.Equal(t, 0, code, downErr)
	assert.Regexp(t, `stopped up tracing-10pct-to-zipkin \(pid \d+, local runtime\)`, downOut)

	select {
	case err := <-exited:
		assert.NoError(t, err, "up exits 0 when stopped:\n%s", stderr.String())
	case <-time.After(time.Minute):
		t.Fatal("up still running after down returned")
	}
	assert.NoFileExists(t, files[0])
	tm := regexp.MustCompile(`(?m)^traces:\s+sampled spans go to (\S+) and`).FindStringSubmatch(printed)
	require.NotNil(t, tm, "no traces line")
	runtimetest.OneTrace(t, filepath.Dir(tm[1]), "istio-ingressgateway.istio-system/SERVER", "istio-ingressgateway.istio-system/CLIENT", "order.default/SERVER", "order.default/CLIENT", "payment.default/SERVER")
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err == nil {
			c.Close()
		}
		assert.True(t, errors.Is(err, syscall.ECONNREFUSED), "%s still open after down (%v)", a, err)
	}
	code, downOut, _ = runCLI(t, "down", "-up")
	assert.Equal(t, 0, code)
	assert.Contains(t, downOut, "no meshbench up running")
}

// The state of an up whose process is gone is removed by down, which says so.
func TestDownRemovesStaleState(t *testing.T) {
	state := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", state)
	// A process that has ended: its pid names no live up.
	dead := exec.Command(os.Args[0], "-test.run=^$")
	require.NoError(t, dead.Run())
	dir := upstate.Dir()
	require.NoError(t, os.MkdirAll(dir, 0o700))
	stale := filepath.Join(dir, "up-1.json")
	b := []byte(`{"pid": ` + strconv.Itoa(dead.Process.Pid) + `, "procStart": "1", "scenario": "canary-90-10", "runtime": "local"}`)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "up-1.json"), b, 0o600))
	code, out, errOut := runCLI(t, "down", "-up")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "removed the state of up canary-90-10")
	assert.NoFileExists(t, stale)
}

// Bad input to up is refused with exit status 2 before anything starts:
// no state file is written.
func TestUpBadInputStartsNothing(t *testing.T) {
	state := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", state)
	bad := filepath.Join("..", "..", "scenarios", "spec", "testdata", "bad", "weights-80-10.yaml")
	for _, args := range [][]string{
		{"up"},
		{"up", "canary-90-10", "header-routing"},
		{"up", "-runtime", "moon", "canary-90-10"},
		{"up", "-chaos", "canary-90-10"},
		{"up", bad},
	} {
		code, _, stderr := runCLI(t, args...)
		assert.Equal(t, 2, code, "%v: %s", args, stderr)
	}
	_, _, stderr := runCLI(t, "up", bad)
	assert.Regexp(t, `weights-80-10\.yaml:\d+:`, stderr)
	_, _, stderr = runCLI(t, "up", "-chaos", "canary-90-10")
	assert.Contains(t, stderr, "no chaos schedule")
	entries, err := os.ReadDir(state)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing recorded")
}
