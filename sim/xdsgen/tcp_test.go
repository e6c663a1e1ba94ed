package xdsgen_test

import (
	"fmt"
	"net/netip"
	"testing"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	netrbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshbench/meshbench/internal/istiotest"
	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

const dbHost = "db.default.svc.cluster.local"

// tcpRegistry: order (HTTP) calls db (TCP on 5432, v1 and v2) and cache
// (mongo by appProtocol on 27017, also TCP to Istio).
func tcpRegistry(t *testing.T) *registry.Registry {
	t.Helper()
	next := netip.MustParseAddr("127.0.9.0")
	reg, err := registry.New(registry.Topology{Services: []registry.Service{
		{Name: "order", Calls: []string{"db"}, Versions: []registry.Version{{Name: "v1"}}},
		{Name: "db", Port: 5432, Protocol: "tcp", Versions: []registry.Version{{Name: "v1"}, {Name: "v2"}}},
		{Name: "cache", Port: 27017, AppProtocol: "mongo", Versions: []registry.Version{{Name: "v1"}}},
	}}, func() (netip.Addr, error) { next = next.Next(); return next, nil })
	require.NoError(t, err)
	return reg
}

func tcpProxyOf(t *testing.T, f *listener.Filter) *tcpproxy.TcpProxy {
	t.Helper()
	require.Equal(t, xdsgen.TCPProxyFilter, f.GetName())
	tp := &tcpproxy.TcpProxy{}
	require.NoError(t, f.GetTypedConfig().UnmarshalTo(tp))
	return tp
}

func listenerNamed(t *testing.T, ls []*listener.Listener, name string) *listener.Listener {
	t.Helper()
	for _, l := range ls {
		if l.GetName() == name {
			return l
		}
	}
	require.FailNow(t, "no listener", name)
	return nil
}

// A TCP service port gets istiod's <VIP>_<port> listener, bound virtually,
// with one tcp_proxy to outbound|<port>||<host> whose stat_prefix is the
// cluster (buildOutboundNetworkFiltersWithSingleDestination) and no
// idle_timeout (Envoy's 1 h); no 0.0.0.0_<port> HTTP listener and no
// route configuration for it. Services get VIPs in order from 10.96.0.1.
func TestTCPServiceOutboundListener(t *testing.T) {
	reg := tcpRegistry(t)
	db, _ := reg.Service("db")
	assert.Equal(t, "10.96.0.2", db.VIP.String())
	res := xdsgen.New(reg, meshconfig.Config{}).ForSidecar(reg.Pods[0])
	l := listenerNamed(t, res.Listeners, "10.96.0.2_5432")
	assert.Equal(t, "10.96.0.2", l.GetAddress().GetSocketAddress().GetAddress())
	assert.Equal(t, uint32(5432), l.GetAddress().GetSocketAddress().GetPortValue())
	assert.False(t, l.GetBindToPort().GetValue())
	require.Len(t, l.GetFilterChains(), 1)
	assert.Nil(t, l.GetFilterChains()[0].GetFilterChainMatch())
	require.Len(t, l.GetFilterChains()[0].GetFilters(), 1)
	tp := tcpProxyOf(t, l.GetFilterChains()[0].GetFilters()[0])
	assert.Equal(t, "outbound|5432||"+dbHost, tp.GetCluster())
	assert.Equal(t, "outbound|5432||"+dbHost, tp.GetStatPrefix())
	assert.Nil(t, tp.GetIdleTimeout())
	listenerNamed(t, res.Listeners, "10.96.0.3_27017") // mongo is TCP
	for _, l := range res.Listeners {
		assert.NotEqual(t, "0.0.0.0_5432", l.GetName())
	}
	for _, rc := range res.Routes {
		assert.NotEqual(t, "5432", rc.GetName())
	}
	var found bool
	for _, c := range res.Clusters {
		found = found || c.GetName() == "outbound|5432||"+dbHost
	}
	assert.True(t, found, "the TCP service keeps its outbound cluster")
}

func dbSubsets() *networkingv1.DestinationRule {
	return istiotest.DestinationRule("default", "db", &networking.DestinationRule{Host: "db", Subsets: istiotest.VersionSubsets("v1", "v2")})
}

// A VirtualService tcp route: several destinations become
// weighted_clusters (weight 0 left out) with stat_prefix <vs>.<ns>
// (buildOutboundNetworkFiltersWithWeightedClusters); one destination a
// cluster; the first route whose match holds for the proxy wins, a port
// match included (matchTCP).
func TestTCPRouteTranslation(t *testing.T) {
	reg := tcpRegistry(t)
	order := reg.Pods[0]
	route := func(matches []*networking.L4MatchAttributes, dests ...*networking.RouteDestination) *networking.TCPRoute {
		return &networking.TCPRoute{Match: matches, Route: dests}
	}
	to := func(subset string, w int32) *networking.RouteDestination {
		return &networking.RouteDestination{Destination: &networking.Destination{Host: "db", Subset: subset}, Weight: w}
	}
	gen := func(routes ...*networking.TCPRoute) *tcpproxy.TcpProxy {
		cfg := meshconfig.Config{DestinationRules: []*networkingv1.DestinationRule{dbSubsets()},
			VirtualServices: []*networkingv1.VirtualService{{ObjectMeta: metav1.ObjectMeta{Name: "db-split", Namespace: "default"},
				Spec: networking.VirtualService{Hosts: []string{"db"}, Tcp: routes}}}}
		l := listenerNamed(t, xdsgen.New(reg, cfg).ForSidecar(order).Listeners, "10.96.0.2_5432")
		return tcpProxyOf(t, l.GetFilterChains()[0].GetFilters()[0])
	}

	tp := gen(route(nil, to("v1", 80), to("v2", 20), to("v3", 0)))
	assert.Equal(t, "db-split.default", tp.GetStatPrefix())
	var got []string
	for _, c := range tp.GetWeightedClusters().GetClusters() {
		got = append(got, fmt.Sprintf("%s=%d", c.GetName(), c.GetWeight()))
	}
	assert.Equal(t, []string{"outbound|5432|v1|" + dbHost + "=80", "outbound|5432|v2|" + dbHost + "=20"}, got)

	tp = gen(route(nil, to("v2", 0)))
	assert.Equal(t, "outbound|5432|v2|"+dbHost, tp.GetCluster(), "one destination: its cluster, whatever its weight")
	assert.Equal(t, "outbound|5432|v2|"+dbHost, tp.GetStatPrefix())

	// A route for another port, or other source labels, does not apply.
	tp = gen(route([]*networking.L4MatchAttributes{{Port: 9999}}, to("v1", 0)),
		route([]*networking.L4MatchAttributes{{SourceLabels: map[string]string{"app": "other"}}}, to("v1", 0)),
		route([]*networking.L4MatchAttributes{{Port: 5432, SourceLabels: map[string]string{"app": "order"}}}, to("v2", 0)))
	assert.Equal(t, "outbound|5432|v2|"+dbHost, tp.GetCluster())

	tp = gen(route([]*networking.L4MatchAttributes{{Port: 9999}}, to("v1", 0)))
	assert.Equal(t, "outbound|5432||"+dbHost, tp.GetCluster(), "no route applies: the service's own cluster")
}

// db's virtualInbound chains for its port are tcp_proxy to
// inbound|8080|| (stat_prefix the cluster): TLS only under STRICT, TLS and
// plaintext under PERMISSIVE; an AuthorizationPolicy becomes a network
// RBAC filter (stat_prefix tcp.) before it.
func TestTCPInboundChains(t *testing.T) {
	reg := tcpRegistry(t)
	db, _ := reg.Pod("db-v1-0")
	chains := func(cfg meshconfig.Config) []*listener.FilterChain {
		return listenerNamed(t, xdsgen.New(reg, cfg).ForSidecar(db).Listeners, istionames.VirtualInboundListener).GetFilterChains()
	}
	perm := chains(meshconfig.Config{})
	require.Len(t, perm, 2)
	assert.Equal(t, "tls", perm[0].GetFilterChainMatch().GetTransportProtocol())
	assert.NotNil(t, perm[0].GetTransportSocket())
	assert.Equal(t, "raw_buffer", perm[1].GetFilterChainMatch().GetTransportProtocol())
	for _, fc := range perm {
		assert.Equal(t, uint32(8080), fc.GetFilterChainMatch().GetDestinationPort().GetValue())
		tp := tcpProxyOf(t, fc.GetFilters()[len(fc.GetFilters())-1])
		assert.Equal(t, "inbound|8080||", tp.GetCluster())
		assert.Equal(t, "inbound|8080||", tp.GetStatPrefix())
	}
	strict := chains(meshconfig.Config{
		PeerAuthentications: []*securityv1.PeerAuthentication{{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: meshconfig.RootNamespace},
			Spec: security.PeerAuthentication{Mtls: &security.PeerAuthentication_MutualTLS{Mode: security.PeerAuthentication_MutualTLS_STRICT}}}},
		AuthorizationPolicies: []*securityv1.AuthorizationPolicy{{ObjectMeta: metav1.ObjectMeta{Name: "only-order", Namespace: "default"},
			Spec: security.AuthorizationPolicy{Rules: []*security.Rule{{From: []*security.Rule_From{{Source: &security.Source{Principals: []string{"cluster.local/ns/default/sa/order"}}}}}}}}},
	})
	require.Len(t, strict, 1)
	assert.Equal(t, "tls", strict[0].GetFilterChainMatch().GetTransportProtocol())
	fs := strict[0].GetFilters()
	require.Len(t, fs, 2)
	assert.Equal(t, xdsgen.NetworkRBACFilter, fs[0].GetName())
	r := &netrbac.RBAC{}
	require.NoError(t, fs[0].GetTypedConfig().UnmarshalTo(r))
	assert.Equal(t, "tcp.", r.GetStatPrefix())
	assert.Len(t, r.GetRules().GetPolicies(), 1)
	tcpProxyOf(t, fs[1])
}

// Every HTTP connection manager istiod builds allows websocket upgrades
// (listener_builder.go: UpgradeConfigs [{UpgradeType: "websocket"}]):
// outbound, inbound and the gateway's.
func TestEveryHCMAllowsWebSocket(t *testing.T) {
	reg := tcpRegistry(t)
	g := xdsgen.New(reg, meshconfig.Config{})
	ls := append(g.ForSidecar(reg.Pods[0]).Listeners, g.ForGateway(xdsgen.Gateway{Name: "gw", Namespace: "istio-system", Port: 8080}).Listeners...)
	ms := allHCMs(t, ls)
	for _, h := range ms {
		m := h.hcm
		require.Len(t, m.GetUpgradeConfigs(), 1, h.listener)
		assert.Equal(t, "websocket", m.GetUpgradeConfigs()[0].GetUpgradeType())
		assert.Nil(t, m.GetUpgradeConfigs()[0].GetEnabled(), "enabled unset: true")
	}
	assert.GreaterOrEqual(t, len(ms), 4, "outbound 0.0.0.0_80, two inbound chains, the gateway")
}

// On a TCP chain an AuthorizationPolicy's HTTP-only fields cannot be
// judged, and istiod never lets that fail open (authz/model/model.go
// checkError): an ALLOW rule naming paths is skipped (nothing it would
// allow is allowed), and a DENY rule naming paths keeps its source and
// loses the paths (every connection from that source is denied). On the
// HTTP chains of the same pod the paths stay.
func TestTCPChainsDropHTTPOnlyAuthzFieldsAsIstiod(t *testing.T) {
	reg := tcpRegistry(t)
	db, _ := reg.Pod("db-v1-0")
	rule := func(ns string) *security.Rule {
		return &security.Rule{
			From: []*security.Rule_From{{Source: &security.Source{Namespaces: []string{ns}}}},
			To:   []*security.Rule_To{{Operation: &security.Operation{Paths: []string{"/admin"}, Methods: []string{"POST"}}}},
			When: []*security.Condition{{Key: "request.headers[x-user]", Values: []string{"eve"}}},
		}
	}
	ap := func(name string, action security.AuthorizationPolicy_Action, ns string) *securityv1.AuthorizationPolicy {
		return istiotest.AuthorizationPolicy("default", name, &security.AuthorizationPolicy{Action: action, Rules: []*security.Rule{rule(ns)}})
	}
	cfg := meshconfig.Config{AuthorizationPolicies: []*securityv1.AuthorizationPolicy{
		ap("deny-eve", security.AuthorizationPolicy_DENY, "eve"),
		ap("allow-admin", security.AuthorizationPolicy_ALLOW, "ops"),
	}}
	chains := listenerNamed(t, xdsgen.New(reg, cfg).ForSidecar(db).Listeners, istionames.VirtualInboundListener).GetFilterChains()
	require.NotEmpty(t, chains)
	var rbacs []*netrbac.RBAC
	for _, f := range chains[0].GetFilters() {
		if f.GetName() == xdsgen.NetworkRBACFilter {
			r := &netrbac.RBAC{}
			require.NoError(t, f.GetTypedConfig().UnmarshalTo(r))
			rbacs = append(rbacs, r)
		}
	}
	require.Len(t, rbacs, 2, "a DENY filter, then an ALLOW one")
	deny, allow := rbacs[0].GetRules(), rbacs[1].GetRules()
	assert.Equal(t, "DENY", deny.GetAction().String())
	require.Len(t, deny.GetPolicies(), 1)
	for _, p := range deny.GetPolicies() {
		text := fmt.Sprint(p)
		assert.Contains(t, text, "/ns/eve/", "the deny keeps its source")
		assert.NotContains(t, text, "/admin", "the deny keeps an HTTP path a connection cannot match")
		assert.NotContains(t, text, ":method")
		assert.NotContains(t, text, "x-user")
	}
	assert.Equal(t, "ALLOW", allow.GetAction().String())
	assert.Empty(t, allow.GetPolicies(), "an ALLOW rule with HTTP-only fields allows nothing on TCP")
}
