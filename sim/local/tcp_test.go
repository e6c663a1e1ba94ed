package local

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
)

// tcpTopology is order calling db, a raw TCP service (fakesvc's TCP echo)
// of two versions.
func tcpTopology() registry.Topology {
	return registry.Topology{Services: []registry.Service{
		{Name: "order", Path: "/orders", Calls: []string{"db"}, Versions: []registry.Version{{Name: "v1"}}},
		{Name: "db", Port: 5432, Protocol: "tcp", Versions: []registry.Version{{Name: "v1"}, {Name: "v2"}}},
	}}
}

// A call to a TCP service goes through order's sidecar as a CONNECT to
// db's VIP, the <VIP>_5432 listener's tcp_proxy, mTLS, and db's inbound
// tcp_proxy chain to the TCP echo, which answers with its pod: each
// request's reply records who answered, and both versions answer.
func TestTCPCallThroughTheMesh(t *testing.T) {
	m := startTopology(t, tcpTopology(), meshconfig.Config{})
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	versions := map[string]int{}
	for i := 0; i < 40; i++ {
		start := time.Now()
		code, r := order(t, c, m, nil)
		require.Equal(t, http.StatusOK, code, "%+v", r)
		require.Len(t, r.Calls, 1)
		require.Equal(t, "db", r.Calls[0].Service)
		require.Less(t, time.Since(start), time.Second, "a TCP call of an idle mesh")
		versions[r.Calls[0].Version]++
	}
	require.Positive(t, versions["v1"])
	require.Positive(t, versions["v2"])
}
