package chaos

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/meshbench/meshbench/fakesvc"
	"github.com/meshbench/meshbench/sim/local"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/runtime"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// bench is a running local mesh with its injector and a client through its
// ingress gateway.
type bench struct {
	t    *testing.T
	mesh runtime.Mesh
	in   *Local
	c    *http.Client
}

// newBench starts the default topology (order ×2 → payment v1 ×2, v2 ×1)
// or topo, with cfg, and tears it down when the test ends.
func newBench(t *testing.T, cfg meshconfig.Config, topo ...registry.Topology) *bench {
	t.Helper()
	tp := registry.DefaultTopology()
	if len(topo) > 0 {
		tp = topo[0]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := local.Runtime{}.Start(ctx, runtime.Spec{Topology: tp, Config: cfg, Seed: 1})
	require.NoError(t, err)
	in, err := NewLocal(m, "local", "default", cfg)
	require.NoError(t, err)
	b := &bench{t: t, mesh: m, in: in, c: &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}}
	t.Cleanup(func() {
		b.c.CloseIdleConnections()
		require.NoError(t, in.Close(context.Background()))
		require.NoError(t, m.Stop(context.Background()))
	})
	return b
}

// result is one request through the ingress.
type result struct {
	code    int
	err     error
	latency time.Duration
	reply   fakesvc.Reply
	flags   string
}

// order sends one request to order through the ingress.
func (b *bench) order(c *http.Client) result {
	if c == nil {
		c = b.c
	}
	req, err := http.NewRequest(http.MethodPost, b.mesh.Entry().URL+"/orders", strings.NewReader("{}"))
	require.NoError(b.t, err)
	req.Host = "order.default.svc.cluster.local"
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return result{err: err, latency: time.Since(start)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	r := result{code: resp.StatusCode, err: err, latency: time.Since(start), flags: resp.Header.Get("x-meshbench-response-flags")}
	_ = json.Unmarshal(body, &r.reply)
	return r
}

// orders sends n requests one after another.
func (b *bench) orders(n int) []result {
	out := make([]result, n)
	for i := range out {
		out[i] = b.order(nil)
	}
	return out
}

// target resolves a selector against the mesh.
func (b *bench) target(sel Selector, peer ...Selector) Target {
	b.t.Helper()
	t := Target{In: b.in, Service: sel.Service, Version: sel.Version, Route: sel.Route}
	if sel.Service != "" || sel.Pod != "" {
		pods, err := sel.Pods(b.mesh.Pods(), nil)
		require.NoError(b.t, err)
		t.Pods = pods
	}
	if len(peer) > 0 {
		pods, err := peer[0].Pods(b.mesh.Pods(), nil)
		require.NoError(b.t, err)
		t.Peers = pods
	}
	return t
}

// inject puts f on t and fails the test on error.
func (b *bench) inject(f Fault, t Target) Rollback {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rb, err := f.Inject(ctx, t)
	require.NoError(b.t, err)
	return rb
}

func (b *bench) rollback(rb Rollback) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(b.t, rb(ctx))
}

// assertClean checks that the injector holds nothing in place.
func (b *bench) assertClean() {
	b.t.Helper()
	b.in.netMu.Lock()
	require.Empty(b.t, b.in.proxies, "network proxies left")
	b.in.netMu.Unlock()
	b.in.mu.Lock()
	defer b.in.mu.Unlock()
	require.Empty(b.t, b.in.paused, "pods left paused")
	require.Empty(b.t, b.in.apps, "app changes left")
	require.Zero(b.t, b.in.outages, "control plane left down")
	require.Empty(b.t, b.in.layer.changes, "config changes left")
}

func median(rs []result) time.Duration {
	ds := make([]time.Duration, 0, len(rs))
	for _, r := range rs {
		ds = append(ds, r.latency)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

func slowest(rs []result) time.Duration {
	var top time.Duration
	for _, r := range rs {
		top = max(top, r.latency)
	}
	return top
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// requireShift checks that the median moved by want ± tol.
func requireShift(t *testing.T, before, during []result, want, tol time.Duration) {
	t.Helper()
	shift := median(during) - median(before)
	t.Logf("median %v → %v: moved %v (want %v ± %v)", median(before), median(during), shift, want, tol)
	require.InDelta(t, ms(want), ms(shift), ms(tol), "median %v → %v: moved %v, want %v ± %v", median(before), median(during), shift, want, tol)
}

func allOK(t *testing.T, rs []result) {
	t.Helper()
	for _, r := range rs {
		require.NoError(t, r.err)
		require.Equal(t, 200, r.code, "%+v", r.reply)
	}
}

func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
}
