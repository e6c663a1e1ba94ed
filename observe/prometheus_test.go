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
// the run's own result reports. The counters also hold the run's warm-up,
// which the result does not measure: the test reads them as the measured
// load starts (run.Options.BeforeLoad holds the load until every target has
// been scraped after the warm-up drained) and compares what they gained
// from there, the load's requests alone, with the result. Every query of
// the Grafana dashboard runs against it without error, and those over the
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

	// The reading at the load's start: nothing moves between the warm-up's
	// last answer and the load's first request, which waits here.
	var atLoad time.Time
	opts.BeforeLoad = func() {
		prom.waitScraped(t, ctx, len(targets), time.Now())
		atLoad = time.Now()
	}
	res, err := run.Drive(ctx, mesh, sc, opts)
	require.NoError(t, err)
	require.False(t, atLoad.IsZero(), "the load started after the reading")
	prom.waitScraped(t, ctx, len(targets), time.Now())

	n := res.Load.Requests
	require.Equal(t, 500, n)

	// Success rate: the gateway's requests to order, as the load saw them.
	const gw = `istio_requests_total{reporter="source",source_workload="istio-ingressgateway",destination_service_name="order"`
	total := prom.gained(t, `sum(`+gw+`})`, atLoad)
	okN := prom.gained(t, `sum(`+gw+`,response_code=~"[23].."})`, atLoad)
	t.Logf("success rate: run %.4f (%d requests), PromQL %.4f (%.0f)", res.Status.SuccessRate, n, okN/total, total)
	assert.Equal(t, float64(n), total, "Prometheus saw the load's requests, and no warm-up's")
	okRun := 0
	for code, c := range res.Status.Codes {
		if strings.HasPrefix(code, "2") || strings.HasPrefix(code, "3") {
			okRun += c
		}
	}
	assert.Equal(t, float64(okRun), okN, "and as many answered 2xx or 3xx")
	assert.Less(t, res.Status.SuccessRate, 0.999, "v2's errors show")
	assert.InDelta(t, res.Status.SuccessRate, okN/total, 1e-9)

	// Split: payment's answers by version, as order's sidecar counts them
	// (the result's split counts every answer that names a version, failed
	// ones included).
	split := prom.gainedBy(t, `sum by (destination_version) (istio_requests_total{reporter="source",destination_service_name="payment"})`, "destination_version", atLoad)
	for _, v := range []string{"v1", "v2"} {
		got, want := split[v], float64(res.Split["payment"][v])
		t.Logf("payment %s: run %.0f, PromQL %.0f", v, want, got)
		assert.Equal(t, want, got, v)
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

// query runs an instant query now, which must succeed, and returns its vector.
func (p *prometheus) query(t *testing.T, expr string) sampleVector {
	t.Helper()
	return p.queryAt(t, expr, time.Time{})
}

// queryAt runs an instant query at at (now when zero), which must succeed,
// and returns its vector.
func (p *prometheus) queryAt(t *testing.T, expr string, at time.Time) sampleVector {
	t.Helper()
	q := url.Values{"query": {expr}}
	if !at.IsZero() {
		q.Set("time", strconv.FormatFloat(float64(at.UnixMicro())/1e6, 'f', 6, 64))
	}
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	p.get(t, "/api/v1/query?"+q.Encode(), &body)
	require.Equal(t, "success", body.Status, "%s: %s", expr, body.Error)
	require.Equal(t, "vector", body.Data.ResultType, expr)
	var v sampleVector
	require.NoError(t, json.Unmarshal(body.Data.Result, &v))
	return v
}

// gained is what a sum of counters gained from since to now: its value
// now less its value at since (0 where it had no series yet).
func (p *prometheus) gained(t *testing.T, sum string, since time.Time) float64 {
	t.Helper()
	at := func(when time.Time) float64 {
		v := p.queryAt(t, sum+" or vector(0)", when)
		require.Len(t, v, 1, sum)
		return value(t, v[0].Value)
	}
	return at(time.Time{}) - at(since)
}

// gainedBy is gained per value of label, for a sum by that label.
func (p *prometheus) gainedBy(t *testing.T, sum, label string, since time.Time) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, s := range p.query(t, sum) {
		out[s.Metric[label]] += value(t, s.Value)
	}
	for _, s := range p.queryAt(t, sum, since) {
		out[s.Metric[label]] -= value(t, s.Value)
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
