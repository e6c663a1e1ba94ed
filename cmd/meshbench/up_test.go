package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/fakesvc"
	"github.com/meshbench/meshbench/internal/runtimetest"
	"github.com/meshbench/meshbench/internal/upstate"
	"github.com/meshbench/meshbench/sim/tracing"
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

// localUp starts `meshbench up args...` on the local runtime in a process
// of its own (this test binary running main), its state in a temporary
// XDG_RUNTIME_DIR (set for the test too, so that runCLI's down finds it)
// and its files in a temporary -out; it returns what up printed until it
// was running, its exit, its stderr and its state file.
func localUp(t *testing.T, args ...string) (printed string, exited <-chan error, stderr *strings.Builder, stateFile string) {
	t.Helper()
	state := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", state)
	cmd := exec.Command(os.Args[0], append([]string{"up", "-out", t.TempDir()}, args...)...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	printed, exited, stderr = startUp(t, cmd)
	files, err := filepath.Glob(filepath.Join(state, "meshbench", "up-*.json"))
	require.NoError(t, err)
	require.Len(t, files, 1, "up recorded itself")
	return printed, exited, stderr, files[0]
}

// curlTarget is the Host header and URL of the curl line up printed.
func curlTarget(t *testing.T, printed string) (host, url string) {
	t.Helper()
	m := regexp.MustCompile(`curl -H 'Host: ([^']+)' (http://\S+)`).FindStringSubmatch(printed)
	require.NotNil(t, m, "no curl line")
	return m[1], m[2]
}

// statsTarget is one proxy's line under "proxies (Prometheus stats)".
type statsTarget struct{ pod, url string }

func statsTargets(printed string) []statsTarget {
	var out []statsTarget
	for _, s := range regexp.MustCompile(`(?m)^  (\S+)\s+(http://\S+/stats/prometheus)$`).FindAllStringSubmatch(printed, -1) {
		out = append(out, statsTarget{s[1], s[2]})
	}
	return out
}

// get sends one GET (Host host unless empty, headers hdr) and returns the
// status and body.
func get(t *testing.T, u, host string, hdr map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err, u)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err, u)
	return resp.StatusCode, b
}

// hostsOf are the host:port of the gateway and of every stats URL up printed.
func hostsOf(t *testing.T, printed string) []string {
	t.Helper()
	_, gw := curlTarget(t, printed)
	urls := []string{gw}
	for _, s := range statsTargets(printed) {
		urls = append(urls, s.url)
	}
	var hosts []string
	for _, raw := range urls {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		hosts = append(hosts, u.Host)
	}
	return hosts
}

// downLeavesNothing runs `meshbench down -up` and checks that it stopped
// the up of scenario, which then exits 0, its state file gone and every
// port it printed (the gateway's, each proxy's stats) refusing connections.
func downLeavesNothing(t *testing.T, scenario, printed string, exited <-chan error, stderr *strings.Builder, stateFile string) {
	t.Helper()
	hosts := hostsOf(t, printed)
	code, downOut, downErr := runCLI(t, "down", "-up")
	require.Equal(t, 0, code, downErr)
	assert.Regexp(t, `stopped up `+regexp.QuoteMeta(scenario)+` \(pid \d+, local runtime\)`, downOut)
	select {
	case err := <-exited:
		assert.NoError(t, err, "up exits 0 when stopped:\n%s", stderr.String())
	case <-time.After(time.Minute):
		t.Fatal("up still running after down returned")
	}
	assert.NoFileExists(t, stateFile)
	for _, a := range hosts {
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

// `meshbench up` of the canary with Istio's tracing task on it: the
// request that asked to be traced reaches -traces-endpoint (a Zipkin v2
// collector here) while the mesh is up, and is in the traces file once
// down has stopped it.
func TestUpServesUntilDown(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	col := tracing.ServeCollector(lis, 0)
	defer col.Close()
	endpoint := "http://" + lis.Addr().String() + tracing.ZipkinPath
	printed, exited, stderr, stateFile := localUp(t, "-traces-endpoint", endpoint, "tracing-10pct-to-zipkin")
	assert.Contains(t, printed, "and to "+endpoint+" as they arrive")

	// The gateway answers the curl up suggests.
	host, gw := curlTarget(t, printed)
	code, body := get(t, gw, host, map[string]string{"x-b3-sampled": "1"}) // the sampling decision the proxies take over theirs
	assert.Equal(t, http.StatusOK, code, "%s", body)
	assert.Contains(t, string(body), `"service":"payment"`, "the request went through order to payment")

	// Every proxy's stats URL serves Istio's metrics, the gateway's first.
	stats := statsTargets(printed)
	require.Len(t, stats, 6, "the gateway, order ×2 and payment ×3")
	for _, s := range stats {
		code, b := get(t, s.url, "", nil)
		assert.Equal(t, http.StatusOK, code, s.pod)
		if s.pod == "istio-ingressgateway" {
			assert.Contains(t, string(b), "istio_requests_total", "the gateway counted the request")
		}
	}
	// The files up printed exist.
	for _, name := range []string{"prometheus.yml", "grafana-dashboard.json"} {
		fm := regexp.MustCompile(`(/\S+/` + regexp.QuoteMeta(name) + `)`).FindStringSubmatch(printed)
		require.NotNil(t, fm, name)
		assert.FileExists(t, fm[1])
	}

	// The request's spans reach the endpoint while up runs: each proxy
	// flushes its spans every 5 s.
	hops := []string{"istio-ingressgateway.istio-system/SERVER", "istio-ingressgateway.istio-system/CLIENT", "order.default/SERVER", "order.default/CLIENT", "payment.default/SERVER"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = col.Wait(ctx, func(spans []tracing.Span) bool {
		got := map[string]bool{}
		for _, s := range spans {
			if s.LocalEndpoint != nil {
				got[s.LocalEndpoint.ServiceName+"/"+string(s.Kind)] = true
			}
		}
		for _, h := range hops {
			if !got[h] {
				return false
			}
		}
		return true
	})
	require.NoError(t, err, "every hop's span at the endpoint while up runs: %+v", col.Spans())

	downLeavesNothing(t, "tracing-10pct-to-zipkin", printed, exited, stderr, stateFile)
	tm := regexp.MustCompile(`(?m)^traces:\s+sampled spans go to (\S+) and`).FindStringSubmatch(printed)
	require.NotNil(t, tm, "no traces line")
	written := runtimetest.OneTrace(t, filepath.Dir(tm[1]), hops...)
	assert.Len(t, col.Spans(), len(written), "the endpoint got each span of the file, once")
}

// Issue #15's own words: `meshbench up canary-90-10`, then curl on the
// printed gateway URL answers (payment v1 or v2, through order), each
// printed stats URL serves istio_requests_total, the printed xDS command
// names the clusters of the canary's subsets and the 90/10 weights, and
// `meshbench down` leaves nothing behind.
func TestUpCanary9010CurlAndDown(t *testing.T) {
	printed, exited, stderr, stateFile := localUp(t, "canary-90-10")
	host, gw := curlTarget(t, printed)
	stats := statsTargets(printed)
	require.Len(t, stats, 6, "the gateway, order ×2 and payment ×3")

	// Requests until every proxy has counted one: payment-v2-0 gets a
	// tenth of them, the others a half or a third; bounded in time.
	versions := map[string]int{}
	counted := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(counted) < len(stats) {
		require.True(t, time.Now().Before(deadline), "30 s of requests, and only these proxies counted any: %v", counted)
		for range 20 {
			code, body := get(t, gw, host, nil)
			require.Equal(t, http.StatusOK, code, "%s", body)
			var r fakesvc.Reply
			require.NoError(t, json.Unmarshal(body, &r), "%s", body)
			require.Equal(t, "order", r.Service, "%s", body)
			require.Len(t, r.Calls, 1, "%s", body)
			require.Equal(t, "payment", r.Calls[0].Service, "%s", body)
			require.Contains(t, []string{"v1", "v2"}, r.Calls[0].Version, "%s", body)
			versions[r.Calls[0].Version]++
		}
		for _, s := range stats {
			code, b := get(t, s.url, "", nil)
			require.Equal(t, http.StatusOK, code, s.pod)
			if strings.Contains(string(b), "istio_requests_total{") {
				counted[s.pod] = true
			}
		}
	}
	t.Logf("payment's answers by version: %v", versions)

	// The printed xDS command, run as printed, names the proxy's clusters
	// (one per subset of the canary's DestinationRule) and its 90/10 route.
	xm := regexp.MustCompile(`(?m)^xDS:\s+meshbench (xds \S.*?)\s{3}\(`).FindStringSubmatch(printed)
	require.NotNil(t, xm, "no xDS line")
	args := strings.Fields(xm[1])
	pm := regexp.MustCompile(`-proxy (\S+)`).FindStringSubmatch(xm[1])
	require.NotNil(t, pm, "the xDS command names a proxy")
	assert.Contains(t, printed, "  "+pm[1]+" ", "the xDS command's proxy is one of the printed proxies")
	code, out, errOut := runCLI(t, args...)
	require.Equal(t, 0, code, errOut)
	var dump map[string][]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(out), &dump))
	var clusters []string
	for _, c := range dump["clusters"] {
		var n struct{ Name string }
		require.NoError(t, json.Unmarshal(c, &n))
		clusters = append(clusters, n.Name)
	}
	for _, subset := range []string{"v1", "v2"} {
		re := regexp.MustCompile(`^outbound\|\d+\|` + subset + `\|payment\.default\.svc\.cluster\.local$`)
		assert.True(t, slices.ContainsFunc(clusters, re.MatchString), "no cluster of payment's subset %s in %v", subset, clusters)
	}
	var routes bytes.Buffer
	for _, r := range dump["routes"] {
		require.NoError(t, json.Compact(&routes, r))
	}
	assert.Contains(t, routes.String(), `"weight":90`)
	assert.Contains(t, routes.String(), `"weight":10`)

	downLeavesNothing(t, "canary-90-10", printed, exited, stderr, stateFile)
}

// upChaosScenario is a chaos schedule short enough to watch under up: in
// each 3 s round, payment answers every request with 418 from second 1 to
// second 2 (a status nothing else in the mesh answers, and that no retry
// policy retries).
const upChaosScenario = `name: up-chaos-loop
description: payment answers 418 for one second of every three.
seed: 1
load:
  target: order
  rate: 10/s
  duration: 3s
chaos:
  - name: payment-teapot
    fault: {type: appErrors, errorRate: 1, status: 418}
    target: {service: payment}
    at: 1s
    for: 1s
expect:
  - successRate: {min: 0.5}
`

// `meshbench up -chaos` plays the scenario's chaos schedule while the mesh
// is up: requests through the printed gateway meet the fault (and payment's
// proxies count its status), then the fault is taken off and they succeed
// again; down stops the loop with the mesh.
func TestUpChaosAppliesAndRemovesFaults(t *testing.T) {
	file := filepath.Join(t.TempDir(), "up-chaos.yaml")
	require.NoError(t, os.WriteFile(file, []byte(upChaosScenario), 0o644))
	printed, exited, stderr, stateFile := localUp(t, "-chaos", file)
	assert.Contains(t, printed, "chaos: 1 step(s) on a loop, a round every 3s")
	host, gw := curlTarget(t, printed)

	// until sends requests, 20 ms apart, until one answers want; the
	// schedule puts the fault on and off every 3 s, so 20 s is generous.
	until := func(want int, what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		seen := map[int]int{}
		for {
			code, body := get(t, gw, host, nil)
			seen[code]++
			if code == want {
				t.Logf("%s after %v", what, seen)
				if want == http.StatusTeapot {
					assert.Contains(t, string(body), "injected error 418", "payment's own answer, passed on by order")
				}
				return
			}
			require.True(t, time.Now().Before(deadline), "%s: not within 20 s (answers: %v)", what, seen)
			<-tick.C
		}
	}
	until(http.StatusTeapot, "the fault is on")
	var payment strings.Builder
	for _, s := range statsTargets(printed) {
		if strings.HasPrefix(s.pod, "payment-") {
			_, b := get(t, s.url, "", nil)
			payment.Write(b)
		}
	}
	assert.Contains(t, payment.String(), `response_code="418"`, "payment's proxies counted the fault's answers")
	until(http.StatusOK, "the fault is off")

	downLeavesNothing(t, "up-chaos-loop", printed, exited, stderr, stateFile)
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
		{"up", "-traces-endpoint", "http://127.0.0.1:9411/spans", "tracing-10pct-to-zipkin"},
		{"up", "-traces-endpoint", "http://127.0.0.1:9411/api/v2/spans", "canary-90-10"},
		{"up", "-runtime", "kind", "-traces-endpoint", "http://127.0.0.1:9411/api/v2/spans", "tracing-10pct-to-zipkin"},
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
