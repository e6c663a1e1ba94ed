package observe_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/requiretest"
	"github.com/meshbench/meshbench/observe"
	"github.com/meshbench/meshbench/scenarios/run"
	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/local"
)

// liveScenario is a 90/10 canary whose v2 answers 30% of its requests with
// 503: the split and the success rate (about 97%) both have something to
// show. 100/s for 5 s is 500 requests, few enough for a busy machine.
const liveScenario = `name: prometheus-live
seed: 3
topology:
  services:
    - name: order
      path: /orders
      calls: [payment]
      versions:
        - name: v1
    - name: payment
      path: /pay
      versions:
        - {name: v1, replicas: 2}
        - {name: v2, errorRate: 0.3, errorStatus: 503}
mesh:
  - apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: payment}
    spec:
      host: payment
      subsets:
        - {name: v1, labels: {version: v1}}
        - {name: v2, labels: {version: v2}}
  - apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: payment}
    spec:
      hosts: [payment]
      http:
        - route:
            - {destination: {host: payment, subset: v1}, weight: 90}
            - {destination: {host: payment, subset: v2}, weight: 10}
load: {target: order, rate: 100/s, duration: 5s, timeout: 30s}
expect:
  - split: {service: payment, weights: {v1: 90, v2: 10}, confidence: 0.999}
`

// A real Prometheus scrapes the mesh with the prometheus.yml up writes, and
// its PromQL over istio_requests_total gives the split and the success rate
// the run's own result reports. The counters also hold the run's warm-up
// (run.WarmupDuration at a fifth of the rate), which the result does
// not measure: the figures agree within those requests. Every query of the
// Grafana dashboard runs against it without error, and those over the
// request metrics find series.
func TestPrometheusAgreesWithTheRunsResult(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		requiretest.Missing(t, requiretest.Prometheus, "no prometheus binary on PATH (make prometheus installs Debian's package)")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "prometheus-live.yaml")
	require.NoError(t, os.WriteFile(path, []byte(liveScenario), 0o644))
	sc, err := spec.LoadFile(path)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	opts := run.Options{Runtime: local.Runtime{}, LoadTimeLimit: 3 * time.Minute}
	mesh, err := run.StartMesh(ctx, sc, opts)
	require.NoError(t, err)
	defer mesh.Stop(context.Background())

	targets := observe.Targets(mesh, sc.MeshTopology().Namespace)
	require.Len(t, targets, 1+len(mesh.Pods()), "every pod's sidecar and the gateway")
	cfg, err := observe.PrometheusConfig(targets, time.Second)
	require.NoError(t, err)
	prom := startPrometheus(t, bin, cfg)
	prom.waitScraped(t, ctx, len(targets), time.Time{})

	res, err := run.Drive(ctx, mesh, sc, opts)
	require.NoError(t, err)
	loadEnd := time.Now()
	prom.waitScraped(t, ctx, len(targets), loadEnd)

	n := float64(res.Load.Requests)
	warm := float64(run.WarmupRequests(sc.Load.Rate.PerSecond()))
	require.Equal(t, 500.0, n)

	// Success rate: the gateway's requests to order, as the load saw them.
	total := prom.scalar(t, `sum(istio_requests_total{reporter="source",source_workload="istio-ingressgateway",destination_service_name="order"})`)
	okN := prom.scalar(t, `sum(istio_requests_total{reporter="source",source_workload="istio-ingressgateway",destination_service_name="order",response_code=~"[23].."})`)
	assert.GreaterOrEqual(t, total, n, "Prometheus saw every request of the run")
	assert.LessOrEqual(t, total, n+warm, "and at most the warm-up's besides")
	t.Logf("success rate: run %.4f (%d requests), PromQL %.4f (%.0f)", res.Status.SuccessRate, res.Load.Requests, okN/total, total)
	assert.Less(t, res.Status.SuccessRate, 0.999, "v2's errors show")
	assert.InDelta(t, res.Status.SuccessRate, okN/total, warm/n)

	// Split: payment's answers by version, as order's sidecar counts them
	// (the result's split counts every answer that names a version, failed
	// ones included).
	split := prom.vector(t, `sum by (destination_version) (istio_requests_total{reporter="source",destination_service_name="payment"})`, "destination_version")
	runTotal := 0
	for _, c := range res.Split["payment"] {
		runTotal += c
	}
	promTotal := split["v1"] + split["v2"]
	for _, v := range []string{"v1", "v2"} {
		got, want := split[v], float64(res.Split["payment"][v])
		t.Logf("payment %s: run %.0f (%.3f), PromQL %.0f (%.3f)", v, want, want/float64(runTotal), got, got/promTotal)
		assert.GreaterOrEqual(t, got, want, v)
		assert.LessOrEqual(t, got, want+warm, v)
		assert.InDelta(t, want/float64(runTotal), got/promTotal, warm/float64(runTotal), v)
	}

	// The dashboard's queries, with Grafana's $__rate_interval as a window
	// that spans the whole run. Those over requests must find series; the
	// run had no retries, ejections, flags or TCP connections to show.
	mustShow := map[string]bool{"Request volume": true, "Success rate": true, "Traffic split by version": true, "Latency p50, p90, p99": true}
	shown := 0
	for _, p := range observe.Panels {
		for _, q := range p.Queries {
			expr := strings.ReplaceAll(q.Expr, observe.RateInterval, "1m")
			r := prom.query(t, expr)
			if mustShow[p.Title] {
				assert.NotEmpty(t, r, "%s: %s found no series", p.Title, expr)
				shown++
			}
		}
	}
	assert.Equal(t, 6, shown, "the request panels' queries ran")
}

// prometheus is a Prometheus server of the test's own.
type prometheus struct {
	base string
}

// startPrometheus runs bin on a free loopback port with cfg and a storage
// directory of its own, until the test ends, and waits until it is ready.
func startPrometheus(t *testing.T, bin string, cfg []byte) *prometheus {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgPath, cfg, 0o644))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus:\n%s", logs.String())
		}
	})
	p := &prometheus{base: "http://" + addr}
	// Readiness is an HTTP endpoint, not an event we can wait on: ask it
	// until it says so, or the process exits.
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case err := <-exited:
			t.Fatalf("prometheus exited: %v\n%s", err, logs.String())
		default:
		}
		if resp, err := http.Get(p.base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		require.True(t, time.Now().Before(deadline), "prometheus not ready in a minute:\n%s", logs.String())
		time.Sleep(100 * time.Millisecond)
	}
}

// waitScraped returns once Prometheus has n active targets, all up, each
// last scraped after since: its /api/v1/targets says when it scraped.
func (p *prometheus) waitScraped(t *testing.T, ctx context.Context, n int, since time.Time) {
	t.Helper()
	var last string
	for {
		var body struct {
			Data struct {
				ActiveTargets []struct {
					Health     string    `json:"health"`
					LastScrape time.Time `json:"lastScrape"`
					LastError  string    `json:"lastError"`
					ScrapeURL  string    `json:"scrapeUrl"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		p.get(t, "/api/v1/targets?state=active", &body)
		done := len(body.Data.ActiveTargets) == n
		last = ""
		for _, tg := range body.Data.ActiveTargets {
			if tg.Health != "up" || !tg.LastScrape.After(since) {
				done = false
				last += fmt.Sprintf("%s: %s %s %s; ", tg.ScrapeURL, tg.Health, tg.LastScrape.Format(time.StampMilli), tg.LastError)
			}
		}
		if done {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("targets not scraped after %s: %s", since.Format(time.StampMilli), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type sampleVector []struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query runs an instant query, which must succeed, and returns its vector.
func (p *prometheus) query(t *testing.T, expr string) sampleVector {
	t.Helper()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	p.get(t, "/api/v1/query?query="+url.QueryEscape(expr), &body)
	require.Equal(t, "success", body.Status, "%s: %s", expr, body.Error)
	require.Equal(t, "vector", body.Data.ResultType, expr)
	var v sampleVector
	require.NoError(t, json.Unmarshal(body.Data.Result, &v))
	return v
}

// scalar is the value of a query that yields one sample.
func (p *prometheus) scalar(t *testing.T, expr string) float64 {
	t.Helper()
	v := p.query(t, expr)
	require.Len(t, v, 1, expr)
	return value(t, v[0].Value)
}

// vector maps a label's values to the query's values.
func (p *prometheus) vector(t *testing.T, expr, label string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, s := range p.query(t, expr) {
		out[s.Metric[label]] = value(t, s.Value)
	}
	return out
}

func value(t *testing.T, v [2]any) float64 {
	t.Helper()
	s, ok := v[1].(string)
	require.True(t, ok, "value %v", v)
	f, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err)
	return f
}

func (p *prometheus) get(t *testing.T, path string, into any) {
	t.Helper()
	resp, err := http.Get(p.base + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.NoError(t, json.NewDecoder(resp.Body).Decode(into), path)
}
