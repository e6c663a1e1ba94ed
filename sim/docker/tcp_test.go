package docker_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/fakesvc"
	"github.com/meshbench/meshbench/sim/registry"
)

// A raw TCP service in containers: its app runs fakesvc -tcp, order's app
// calls it with tcp://db:5432@<VIP> through its sidecar's CONNECT, and
// every answer names a db pod.
func TestTCPServiceThroughContainers(t *testing.T) {
	m := startMesh(t, registry.Topology{Services: []registry.Service{
		{Name: "order", Path: "/orders", Calls: []string{"db"}, Versions: []registry.Version{{Name: "v1"}}},
		{Name: "db", Port: 5432, Protocol: "tcp", Versions: []registry.Version{{Name: "v1"}}},
	}})
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range 10 {
		req, err := http.NewRequest(http.MethodPost, m.Entry().URL+"/orders", strings.NewReader("{}"))
		require.NoError(t, err)
		req.Host = "order.default.svc.cluster.local"
		resp, err := c.Do(req)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		var r fakesvc.Reply
		require.NoError(t, json.Unmarshal(b, &r), string(b))
		require.Len(t, r.Calls, 1)
		require.Equal(t, "db-v1-0", r.Calls[0].Pod)
	}
}
