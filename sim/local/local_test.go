package local

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/fakesvc"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/runtime"
)

// order sends one request through the ingress to order and returns the reply.
func order(t *testing.T, c *http.Client, m runtime.Mesh, hdr map[string]string) (int, fakesvc.Reply) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, m.Entry().URL+"/orders", strings.NewReader("{}"))
	require.NoError(t, err)
	req.Host = "order.default.svc.cluster.local"
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var r fakesvc.Reply
	require.NoError(t, json.Unmarshal(b, &r), string(b))
	return resp.StatusCode, r
}

func startMesh(t *testing.T, cfg meshconfig.Config) runtime.Mesh {
	t.Helper()
	return startTopology(t, registry.DefaultTopology(), cfg)
}

// startTopology starts a mesh of topo and stops it when the test ends.
func startTopology(t *testing.T, topo registry.Topology, cfg meshconfig.Config) runtime.Mesh {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := Runtime{}.Start(ctx, runtime.Spec{Topology: topo, Config: cfg, Seed: 1})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Stop(context.Background())) })
	return m
}

func TestDefaultMeshServesOrderThroughPayment(t *testing.T) {
	m := startMesh(t, meshconfig.Config{})
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	pods := map[string]int{}
	for i := 0; i < 60; i++ {
		code, r := order(t, c, m, nil)
		require.Equal(t, 200, code, "%+v", r)
		require.Equal(t, "order", r.Service)
		require.Len(t, r.Calls, 1)
		require.Equal(t, "payment", r.Calls[0].Service)
		require.Equal(t, "1", r.Calls[0].ConfigVersion)
		pods[r.Calls[0].Pod]++
	}
	// Without a DestinationRule every payment pod serves: Istio's default LEAST_REQUEST over all three.
	require.Len(t, pods, 3, "%v", pods)
}

// A version's own calls replace its service's: reviews v1 calls nothing,
// v2 calls ratings, as in Istio's Bookinfo sample.
func TestVersionCallsOverrideServiceCalls(t *testing.T) {
	topo := registry.Topology{Services: []registry.Service{
		{Name: "order", Path: "/orders", Versions: []registry.Version{{Name: "v1"}}, Calls: []string{"reviews"}},
		{Name: "reviews", Calls: []string{"ratings"}, Versions: []registry.Version{{Name: "v1", Calls: []string{}}, {Name: "v2"}}},
		{Name: "ratings", Versions: []registry.Version{{Name: "v1"}}},
	}}
	m := startTopology(t, topo, meshconfig.Config{})
	reviews := func(r fakesvc.Reply) fakesvc.Reply {
		require.Len(t, r.Calls, 1)
		require.Equal(t, "reviews", r.Calls[0].Service)
		return r.Calls[0]
	}
	bothVersions(t, m, func(r fakesvc.Reply) string { return reviews(r).Version }, func(code int, r fakesvc.Reply) {
		require.Equal(t, 200, code, "%+v", r)
		switch rev := reviews(r); rev.Version {
		case "v1":
			require.Empty(t, rev.Calls, "reviews v1 calls nothing")
		case "v2":
			require.Len(t, rev.Calls, 1, "reviews v2 calls ratings")
			require.Equal(t, "ratings", rev.Calls[0].Service)
		}
	})
}

// bothVersions sends requests to order until version, read from the
// replies, has been v1 and v2 (40 at most), and hands each reply to check.
func bothVersions(t *testing.T, m runtime.Mesh, version func(fakesvc.Reply) string, check func(code int, r fakesvc.Reply)) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	seen := map[string]int{}
	for i := 0; i < 40 && (seen["v1"] == 0 || seen["v2"] == 0); i++ {
		code, r := order(t, c, m, nil)
		seen[version(r)]++
		check(code, r)
	}
	require.Positive(t, seen["v1"], "%v", seen)
	require.Positive(t, seen["v2"], "%v", seen)
}

// onCalleeError: degrade on a version makes its pods answer 200 with a
// partial body when a callee fails; the other version passes the failure up.
func TestOnCalleeErrorDegradePerVersion(t *testing.T) {
	topo := registry.Topology{Services: []registry.Service{
		{Name: "order", Path: "/orders", Calls: []string{"payment"}, Versions: []registry.Version{{Name: "v1", OnCalleeError: "degrade"}, {Name: "v2"}}},
		{Name: "payment", Versions: []registry.Version{{Name: "v1", ErrorRate: 1, ErrorStatus: 500}}},
	}}
	m := startTopology(t, topo, meshconfig.Config{})
	bothVersions(t, m, func(r fakesvc.Reply) string { return r.Version }, func(code int, r fakesvc.Reply) {
		require.Len(t, r.Calls, 1)
		require.Equal(t, 500, r.Calls[0].Code)
		switch r.Version {
		case "v1":
			require.Equal(t, 200, code, "%+v", r)
			require.True(t, r.Degraded)
		case "v2":
			require.Equal(t, 500, code, "%+v", r)
			require.False(t, r.Degraded)
		}
	})
}

// A restarted pod's endpoint turns ready only once its sidecar has
// initialized, as Kubernetes waits for Istio's readiness probe: a pod whose
// proxy never takes its config stays out of EDS.
func TestARestartedPodIsReadyOnlyOnceItsSidecarIs(t *testing.T) {
	m := startMesh(t, meshconfig.Config{}).(*Mesh)
	ctx := context.Background()
	const name = "payment-v2-0"
	p, ok := m.reg.Pod(name)
	require.True(t, ok)
	require.NoError(t, m.KillPod(ctx, name))
	require.False(t, m.reg.Ready(name))

	// Its containers "start" but no proxy comes: the wait ends unready.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err := m.cp.Readmit(short, p, func() error { return nil })
	require.ErrorContains(t, err, "did not become ready")
	require.False(t, m.reg.Ready(name), "no endpoint for a pod whose sidecar has no config")

	require.NoError(t, m.RestartPod(ctx, name))
	require.True(t, m.reg.Ready(name))
	require.NotEmpty(t, m.XDS().Acked(p.NodeID(), resource.SecretType), "ready means its certificate is in force")
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	for i := 0; i < 30; i++ {
		code, r := order(t, c, m, nil)
		require.Equal(t, 200, code, "%+v", r)
	}
}
