package xdsserver_test

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sort"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
	"github.com/meshbench/meshbench/sim/xdsserver"
)

// mesh is the default topology with a snapshot per pod from xdsgen.
type mesh struct {
	reg *registry.Registry
	gen *xdsgen.Generator
}

func newMesh(t *testing.T) *mesh {
	t.Helper()
	next := netip.MustParseAddr("10.0.0.0")
	reg, err := registry.New(registry.DefaultTopology(), func() (netip.Addr, error) {
		next = next.Next()
		return next, nil
	})
	require.NoError(t, err)
	for _, p := range reg.Pods {
		p.AppAddr = netip.AddrPortFrom(p.IP, 40000).String()
	}
	return &mesh{reg: reg, gen: xdsgen.New(reg, meshconfig.Config{})}
}

func (m *mesh) node(i int) string { return m.reg.Pods[i].NodeID() }

func (m *mesh) publish(t *testing.T, s *xdsserver.Server, i int, version string) {
	t.Helper()
	snap, err := m.gen.ForSidecar(m.reg.Pods[i]).Snapshot(version)
	require.NoError(t, err)
	require.NoError(t, s.SetSnapshot(context.Background(), m.node(i), snap))
}

func startServer(t *testing.T) *xdsserver.Server {
	t.Helper()
	// Registered first, so it runs after the server and clients are closed.
	leakOpt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leakOpt) })
	s := xdsserver.New(slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, s.Start(ctx, "127.0.0.1:0"))
	t.Cleanup(s.Stop)
	return s
}

// adsClient is a bare State-of-the-World ADS client driven step by step by
// the test, so that it can ACK some types and not others, or NACK.
type adsClient struct {
	t      *testing.T
	node   *core.Node
	st     discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	recv   chan *discovery.DiscoveryResponse
	cancel context.CancelFunc
}

func dial(t *testing.T, addr, node string) *adsClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	c := &adsClient{t: t, node: &core.Node{Id: node}, st: st, recv: make(chan *discovery.DiscoveryResponse, 64), cancel: cancel}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(c.recv)
		for {
			r, err := st.Recv()
			if err != nil {
				return
			}
			c.recv <- r
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = conn.Close()
	})
	return c
}

func (c *adsClient) send(typeURL, version, nonce string, names []string, detail *status.Status) {
	c.t.Helper()
	require.NoError(c.t, c.st.Send(&discovery.DiscoveryRequest{
		Node: c.node, TypeUrl: typeURL, VersionInfo: version, ResponseNonce: nonce, ResourceNames: names, ErrorDetail: detail,
	}))
}

// next waits for the next response, which must be of typeURL.
func (c *adsClient) next(typeURL string) *discovery.DiscoveryResponse {
	c.t.Helper()
	select {
	case r, ok := <-c.recv:
		require.True(c.t, ok, "stream closed")
		require.Equal(c.t, typeURL, r.GetTypeUrl())
		return r
	case <-time.After(10 * time.Second):
		require.FailNow(c.t, "no response", "waiting for %s", typeURL)
		return nil
	}
}

// subscribe asks for a type and returns the server's first answer.
func (c *adsClient) subscribe(typeURL string, names []string) *discovery.DiscoveryResponse {
	c.t.Helper()
	c.send(typeURL, "", "", names, nil)
	return c.next(typeURL)
}

func (c *adsClient) ack(r *discovery.DiscoveryResponse, names []string) {
	c.t.Helper()
	c.send(r.GetTypeUrl(), r.GetVersionInfo(), r.GetNonce(), names, nil)
}

// names returns what a response's resources make the client subscribe to:
// EDS names after CDS, RDS names after LDS.
func names(t *testing.T, r *discovery.DiscoveryResponse) []string {
	t.Helper()
	var out []string
	for _, a := range r.GetResources() {
		switch r.GetTypeUrl() {
		case resource.ClusterType:
			c := &cluster.Cluster{}
			require.NoError(t, a.UnmarshalTo(c))
			if c.GetType() == cluster.Cluster_EDS {
				out = append(out, c.GetName())
			}
		case resource.ListenerType:
			l := &listener.Listener{}
			require.NoError(t, a.UnmarshalTo(l))
			for _, fc := range l.GetFilterChains() {
				for _, f := range fc.GetFilters() {
					m := &hcm.HttpConnectionManager{}
					require.NoError(t, f.GetTypedConfig().UnmarshalTo(m))
					if n := m.GetRds().GetRouteConfigName(); n != "" {
						out = append(out, n)
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// fetchAll subscribes to the four types as Envoy does (CDS, then EDS by
// name, LDS, then RDS by name) and returns the first response of each, not ACKed.
func (c *adsClient) fetchAll() map[string]*discovery.DiscoveryResponse {
	c.t.Helper()
	out := map[string]*discovery.DiscoveryResponse{}
	out[resource.ClusterType] = c.subscribe(resource.ClusterType, nil)
	out[resource.EndpointType] = c.subscribe(resource.EndpointType, names(c.t, out[resource.ClusterType]))
	out[resource.ListenerType] = c.subscribe(resource.ListenerType, nil)
	out[resource.RouteType] = c.subscribe(resource.RouteType, names(c.t, out[resource.ListenerType]))
	return out
}

func (c *adsClient) ackTypes(resp map[string]*discovery.DiscoveryResponse, types ...string) {
	c.t.Helper()
	for _, typ := range types {
		var n []string
		switch typ {
		case resource.EndpointType:
			n = names(c.t, resp[resource.ClusterType])
		case resource.RouteType:
			n = names(c.t, resp[resource.ListenerType])
		}
		c.ack(resp[typ], n)
	}
}

// waitAcked waits until the server has recorded the ACK of version for a node and type.
func waitAcked(t *testing.T, s *xdsserver.Server, node, typ, version string) {
	t.Helper()
	require.Eventually(t, func() bool { return s.Acked(node, typ) == version }, 10*time.Second, time.Millisecond, "%s %s", node, typ)
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestWaitConvergedNeedsEveryNodeAndEveryType(t *testing.T) {
	m := newMesh(t)
	s := startServer(t)
	a, b := m.node(0), m.node(2)
	m.publish(t, s, 0, "1")
	m.publish(t, s, 2, "1")

	ca := dial(t, s.Addr(), a)
	ra := ca.fetchAll()
	for typ, r := range ra {
		assert.Equal(t, "1", r.GetVersionInfo(), typ)
		// The first request of a type carries no nonce: it is no ACK.
		assert.Empty(t, s.Acked(a, typ), typ)
	}
	ca.ackTypes(ra, xdsserver.TypeURLs...)
	for _, typ := range xdsserver.TypeURLs {
		waitAcked(t, s, a, typ, "1")
	}

	// b ACKs clusters, endpoints and listeners, not routes.
	cb := dial(t, s.Addr(), b)
	rb := cb.fetchAll()
	cb.ackTypes(rb, resource.ClusterType, resource.EndpointType, resource.ListenerType)
	waitAcked(t, s, b, resource.ListenerType, "1")

	// a alone has converged.
	require.NoError(t, s.WaitConverged(ctxTimeout(t, 5*time.Second), []string{a}, "1"))
	// An empty node list is trivially converged.
	require.NoError(t, s.WaitConverged(ctxTimeout(t, 5*time.Second), nil, "1"))

	// a and b have not: the wait ends at the deadline, naming the missing node and type.
	err := s.WaitConverged(ctxTimeout(t, 100*time.Millisecond), []string{a, b}, "1")
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "config 1")
	assert.Contains(t, err.Error(), "1 proxies/types")
	assert.Contains(t, err.Error(), b+" RouteConfiguration")
	assert.NotContains(t, err.Error(), a)

	// A wait under way returns once the last ACK arrives, and not before.
	done := make(chan error, 1)
	go func() { done <- s.WaitConverged(ctxTimeout(t, 10*time.Second), []string{a, b}, "1") }()
	select {
	case err := <-done:
		require.FailNow(t, "WaitConverged returned before b ACKed routes", "%v", err)
	default:
	}
	cb.ackTypes(rb, resource.RouteType)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "WaitConverged did not return after the last ACK")
	}
	assert.Equal(t, "1", s.Acked(b, resource.RouteType))
	assert.Empty(t, s.Nacks())
}

func TestWaitConvergedNamesEveryMissingCount(t *testing.T) {
	m := newMesh(t)
	s := startServer(t)
	a := m.node(0)
	m.publish(t, s, 0, "1")
	c := dial(t, s.Addr(), a)
	r := c.fetchAll()
	c.ackTypes(r, resource.ListenerType, resource.RouteType)
	waitAcked(t, s, a, resource.RouteType, "1")

	err := s.WaitConverged(ctxTimeout(t, 100*time.Millisecond), []string{a}, "1")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "2 proxies/types")
	// The first missing in name order: "<node> Cluster" < "<node> ClusterLoadAssignment".
	assert.Contains(t, err.Error(), "first: "+a+" Cluster)")

	// A node that never connected misses all four types.
	err = s.WaitConverged(ctxTimeout(t, 100*time.Millisecond), []string{m.node(1)}, "1")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "4 proxies/types")
	assert.Contains(t, err.Error(), m.node(1))
}

func TestWaitConvergedWantsTheNewVersion(t *testing.T) {
	m := newMesh(t)
	s := startServer(t)
	a := m.node(0)
	m.publish(t, s, 0, "1")
	c := dial(t, s.Addr(), a)
	r1 := c.fetchAll()
	c.ackTypes(r1, xdsserver.TypeURLs...)
	require.NoError(t, s.WaitConverged(ctxTimeout(t, 10*time.Second), []string{a}, "1"))

	// Version 2: the ACKs of version 1 do not count.
	m.publish(t, s, 0, "2")
	err := s.WaitConverged(ctxTimeout(t, 100*time.Millisecond), []string{a}, "2")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "config 2 not ACKed by 4 proxies/types")

	// The ACKs of version 1 left a watch open for each type: version 2 arrives on all four.
	got := map[string]bool{}
	for range 4 {
		select {
		case r := <-c.recv:
			require.Equal(t, "2", r.GetVersionInfo())
			var n []string
			switch r.GetTypeUrl() {
			case resource.EndpointType:
				n = names(t, r1[resource.ClusterType])
			case resource.RouteType:
				n = names(t, r1[resource.ListenerType])
			}
			c.ack(r, n)
			got[r.GetTypeUrl()] = true
		case <-time.After(10 * time.Second):
			require.FailNow(t, "version 2 not pushed", "got %v", got)
		}
	}
	require.NoError(t, s.WaitConverged(ctxTimeout(t, 10*time.Second), []string{a}, "2"))
	assert.Equal(t, "2", s.Acked(a, resource.ClusterType))
}

func TestNackEndsWaitWithReason(t *testing.T) {
	m := newMesh(t)
	s := startServer(t)
	a, b := m.node(0), m.node(2)
	m.publish(t, s, 0, "1")
	m.publish(t, s, 2, "1")
	ca := dial(t, s.Addr(), a)
	ca.ackTypes(ca.fetchAll(), xdsserver.TypeURLs...)

	cb := dial(t, s.Addr(), b)
	rb := cb.fetchAll()
	cb.ackTypes(rb, resource.ClusterType, resource.EndpointType, resource.ListenerType)
	// NACK: the version b still runs (none) and the nonce of the refused response, with the reason.
	rr := rb[resource.RouteType]
	cb.send(resource.RouteType, "", rr.GetNonce(), names(t, rb[resource.ListenerType]),
		&status.Status{Code: int32(codes.InvalidArgument), Message: `route 80: invalid regex "("`})

	err := s.WaitConverged(ctxTimeout(t, 10*time.Second), []string{a, b}, "1")
	require.Error(t, err)
	assert.False(t, errors.Is(err, context.DeadlineExceeded), "a NACK ends the wait at once: %v", err)
	assert.Contains(t, err.Error(), b)
	assert.Contains(t, err.Error(), "rejected config 1")
	assert.Contains(t, err.Error(), "RouteConfiguration")
	assert.Contains(t, err.Error(), `invalid regex "("`)

	nacks := s.Nacks()
	require.NotEmpty(t, nacks)
	n := nacks[0]
	assert.Equal(t, b, n.Node)
	assert.Equal(t, resource.RouteType, n.TypeURL)
	assert.Equal(t, "1", n.Refused)
	assert.Equal(t, "", n.Version, "the version the proxy keeps")
	assert.Equal(t, rr.GetNonce(), n.Nonce)
	assert.Equal(t, `route 80: invalid regex "("`, n.Reason)

	// A node that did not NACK is not blamed.
	require.NoError(t, s.WaitConverged(ctxTimeout(t, 10*time.Second), []string{a}, "1"))
}

// istiod does not answer a NACK (pkg/xds/server.go ShouldRespond: "If there is
// an error in request that means previous response is erroneous. We do not
// have to respond in that case."): the proxy keeps its config until the next
// push. The snapshot cache answers any request whose version differs from the
// snapshot's at once, so a NACK of the current snapshot gets the same refused
// config back, NACKed again, without end (go-control-plane issue #962).
func TestNackIsNotAnsweredWithTheSameConfig(t *testing.T) {
	m := newMesh(t)
	s := startServer(t)
	a := m.node(0)
	m.publish(t, s, 0, "1")
	c := dial(t, s.Addr(), a)
	r := c.fetchAll()
	c.ackTypes(r, resource.ClusterType, resource.EndpointType, resource.ListenerType)
	rdsNames := names(t, r[resource.ListenerType])
	c.send(resource.RouteType, "", r[resource.RouteType].GetNonce(), rdsNames, &status.Status{Code: int32(codes.InvalidArgument), Message: "bad"})

	// Nothing should come back until the config changes. There is no event
	// for "nothing was sent", so this waits a bounded time.
	select {
	case resp := <-c.recv:
		require.FailNow(t, "the refused config was sent again", "type %s version %s", resp.GetTypeUrl(), resp.GetVersionInfo())
	case <-time.After(300 * time.Millisecond):
	}
	assert.Len(t, s.Nacks(), 1)

	// The next version is delivered; the other types come again too, in any order.
	m.publish(t, s, 0, "2")
	var got *discovery.DiscoveryResponse
	for got == nil {
		select {
		case r := <-c.recv:
			if r.GetTypeUrl() == resource.RouteType && r.GetVersionInfo() == "2" {
				got = r
			}
		case <-time.After(10 * time.Second):
			require.FailNow(t, "version 2 of the routes was not sent")
		}
	}
	c.ack(got, rdsNames)
	waitAcked(t, s, a, resource.RouteType, "2")
}

// A NACK refuses the response whose nonce it carries; when a newer snapshot
// was published in the meantime, the NACK is still about the older version
// (xDS protocol: the nonce ties a request to the response it answers).
func TestNackOfAnOlderResponseDoesNotBlameTheNewVersion(t *testing.T) {
	m := newMesh(t)
	s := startServer(t)
	a := m.node(0)
	m.publish(t, s, 0, "1")
	c := dial(t, s.Addr(), a)
	r := c.fetchAll()
	c.ackTypes(r, resource.ClusterType, resource.EndpointType, resource.ListenerType)
	// Version 2 is published before the proxy answers the routes of version 1, which it then refuses.
	m.publish(t, s, 0, "2")
	rdsNames := names(t, r[resource.ListenerType])
	c.send(resource.RouteType, "", r[resource.RouteType].GetNonce(), rdsNames, &status.Status{Code: int32(codes.InvalidArgument), Message: "bad"})
	require.Eventually(t, func() bool { return len(s.Nacks()) > 0 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, "1", s.Nacks()[0].Refused)

	// The proxy takes and ACKs version 2 of every type: the wait succeeds.
	done := make(chan error, 1)
	go func() { done <- s.WaitConverged(ctxTimeout(t, 10*time.Second), []string{a}, "2") }()
	acked := map[string]bool{}
	for len(acked) < 4 {
		select {
		case resp := <-c.recv:
			var n []string
			switch resp.GetTypeUrl() {
			case resource.EndpointType:
				n = names(t, r[resource.ClusterType])
			case resource.RouteType:
				n = rdsNames
			}
			c.ack(resp, n)
			if resp.GetVersionInfo() == "2" {
				acked[resp.GetTypeUrl()] = true
			}
		case <-time.After(10 * time.Second):
			require.FailNow(t, "version 2 not pushed", "%v", acked)
		}
	}
	require.NoError(t, <-done)
}

func TestSetSnapshotRefusesInconsistentSnapshot(t *testing.T) {
	m := newMesh(t)
	s := startServer(t)
	res := m.gen.ForSidecar(m.reg.Pods[0])
	res.Routes = nil // LDS names RDS "80", which is missing
	snap, err := res.Snapshot("1")
	require.NoError(t, err)
	err = s.SetSnapshot(context.Background(), m.node(0), snap)
	require.Error(t, err)
	assert.Contains(t, err.Error(), m.node(0))
}

func TestStopAndStartAgainOnTheSameAddress(t *testing.T) {
	m := newMesh(t)
	s := startServer(t)
	addr := s.Addr()
	a := m.node(0)
	m.publish(t, s, 0, "1")
	require.Error(t, s.Start(context.Background(), "127.0.0.1:0"), "already running")

	c := dial(t, addr, a)
	c.ackTypes(c.fetchAll(), xdsserver.TypeURLs...)
	require.NoError(t, s.WaitConverged(ctxTimeout(t, 10*time.Second), []string{a}, "1"))

	s.Stop()
	// The stream ends when the server stops.
	select {
	case _, ok := <-c.recv:
		assert.False(t, ok, "no response expected, only the end of the stream")
	case <-time.After(10 * time.Second):
		require.FailNow(t, "stream still open after Stop")
	}
	s.Stop() // idempotent

	require.NoError(t, s.Start(ctxTimeout(t, 5*time.Second), addr))
	assert.Equal(t, addr, s.Addr())
	// A new stream gets the snapshot that was set before the restart.
	c2 := dial(t, addr, a)
	r := c2.fetchAll()
	for typ, resp := range r {
		assert.Equal(t, "1", resp.GetVersionInfo(), typ)
	}
}

// TestHasSnapshotFollowsSetAndClear: a restarted pod's control plane pushes
// only when a crash left its node with no snapshot (ControlPlane.Readmit).
func TestHasSnapshotFollowsSetAndClear(t *testing.T) {
	m := newMesh(t)
	s := xdsserver.New(slog.New(slog.DiscardHandler))
	assert.False(t, s.HasSnapshot(m.node(0)), "nothing published yet")
	m.publish(t, s, 0, "1")
	assert.True(t, s.HasSnapshot(m.node(0)))
	assert.False(t, s.HasSnapshot(m.node(1)), "another node's snapshot is its own")
	s.ClearSnapshot(m.node(0))
	assert.False(t, s.HasSnapshot(m.node(0)))
}
