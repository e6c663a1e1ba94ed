package xdsgen_test

import (
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpopts "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// Istio's kube.ConvertProtocol (pkg/config/kube/conversion.go) and its
// tests (conversion_test.go): appProtocol first, grpc-web before the
// prefix cut, the name's prefix, well-known ports as TCP.
func TestConvertProtocol(t *testing.T) {
	for _, c := range []struct {
		port        int
		name, app   string
		want        xdsgen.Protocol
		http2, http bool
	}{
		{80, "http", "", xdsgen.ProtocolHTTP, false, true},
		{80, "http-web", "", xdsgen.ProtocolHTTP, false, true},
		{80, "HTTP", "", xdsgen.ProtocolHTTP, false, true},
		{80, "http2", "", xdsgen.ProtocolHTTP2, true, true},
		{80, "grpc", "", xdsgen.ProtocolGRPC, true, true},
		{80, "grpc-echo", "", xdsgen.ProtocolGRPC, true, true},
		{80, "grpc-web", "", xdsgen.ProtocolGRPCWeb, true, true},
		{80, "grpc-web-x", "", xdsgen.ProtocolGRPCWeb, true, true},
		{80, "GRPC-Web", "", xdsgen.ProtocolGRPCWeb, true, true},
		{80, "http", "grpc", xdsgen.ProtocolGRPC, true, true},
		{80, "grpc", "http", xdsgen.ProtocolHTTP, false, true},
		{80, "http", "kubernetes.io/h2c", xdsgen.ProtocolHTTP2, true, true},
		{80, "http", "kubernetes.io/ws", xdsgen.ProtocolHTTP, false, true},
		{80, "web", "", xdsgen.ProtocolUnsupported, false, false},
		{80, "", "", xdsgen.ProtocolUnsupported, false, false},
		{3306, "", "", xdsgen.ProtocolTCP, false, false},
		{80, "tcp", "", xdsgen.ProtocolTCP, false, false},
	} {
		got := xdsgen.ConvertProtocol(c.port, c.name, c.app)
		assert.Equal(t, c.want, got, "%d %q %q", c.port, c.name, c.app)
		assert.Equal(t, c.http2, got.IsHTTP2(), "IsHTTP2 %q %q", c.name, c.app)
		assert.Equal(t, c.http, got.IsHTTP(), "IsHTTP %q %q", c.name, c.app)
	}
}

func protocolOptions(t *testing.T, c *cluster.Cluster) *httpopts.HttpProtocolOptions {
	t.Helper()
	a := c.GetTypedExtensionProtocolOptions()[xdsgen.HTTPProtocolOptions]
	if a == nil {
		return nil
	}
	o := &httpopts.HttpProtocolOptions{}
	require.NoError(t, a.UnmarshalTo(o))
	return o
}

func upstreamALPN(t *testing.T, c *cluster.Cluster) []string {
	t.Helper()
	require.NotEmpty(t, c.GetTransportSocketMatches(), c.GetName())
	ctx := &tlsv3.UpstreamTlsContext{}
	require.NoError(t, c.GetTransportSocketMatches()[0].GetTransportSocket().GetTypedConfig().UnmarshalTo(ctx))
	return ctx.GetCommonTlsContext().GetAlpnProtocols()
}

// The upstream protocol istiod gives each cluster
// (cluster_builder.go setUpstreamProtocol, cluster_traffic_policy.go
// applyH2Upgrade and applyConnectionPool): explicit HTTP/2 for HTTP/2
// protocols, whatever the rule says; an HTTP port only on UPGRADE, a
// subset's DO_NOT_UPGRADE undoing the host's; useClientProtocol over
// UPGRADE; a sniffed port uses the downstream protocol on sidecars, never
// on gateways; HTTP/2 clusters offer h2 after Istio's ALPNs in mTLS.
func TestUpstreamProtocolSelection(t *testing.T) {
	topo := registry.Topology{Services: []registry.Service{
		{Name: "order", Versions: []registry.Version{{Name: "v1"}}},
		{Name: "echo", Protocol: "grpc", Versions: []registry.Version{{Name: "v1"}}},
		{Name: "plain", Port: 81, Versions: []registry.Version{{Name: "v1"}, {Name: "v2"}}},
		{Name: "sniffed", Port: 82, Protocol: "web", Versions: []registry.Version{{Name: "v1"}}},
		{Name: "client", Port: 83, Versions: []registry.Version{{Name: "v1"}}},
	}}
	reg := newRegistry(t, topo)
	up := dr("plain", &networking.DestinationRule{
		Host: "plain",
		TrafficPolicy: &networking.TrafficPolicy{ConnectionPool: &networking.ConnectionPoolSettings{
			Http: &networking.ConnectionPoolSettings_HTTPSettings{H2UpgradePolicy: networking.ConnectionPoolSettings_HTTPSettings_UPGRADE},
		}},
		Subsets: []*networking.Subset{{Name: "v2", Labels: map[string]string{"version": "v2"}, TrafficPolicy: &networking.TrafficPolicy{
			ConnectionPool: &networking.ConnectionPoolSettings{Http: &networking.ConnectionPoolSettings_HTTPSettings{H2UpgradePolicy: networking.ConnectionPoolSettings_HTTPSettings_DO_NOT_UPGRADE}},
		}}},
	})
	client := dr("client", &networking.DestinationRule{
		Host: "client",
		TrafficPolicy: &networking.TrafficPolicy{ConnectionPool: &networking.ConnectionPoolSettings{
			Http: &networking.ConnectionPoolSettings_HTTPSettings{UseClientProtocol: true, H2UpgradePolicy: networking.ConnectionPoolSettings_HTTPSettings_UPGRADE},
		}},
	})
	g := xdsgen.New(reg, meshconfig.Config{DestinationRules: []*networkingv1.DestinationRule{up, client}})
	side := g.ForSidecar(pod(t, reg, "order-v1-0"))

	h2 := func(c *cluster.Cluster) bool {
		return protocolOptions(t, c).GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil
	}
	downstream := func(c *cluster.Cluster) bool { return protocolOptions(t, c).GetUseDownstreamProtocolConfig() != nil }

	echo := findCluster(t, side, "outbound|80||echo.default.svc.cluster.local")
	assert.True(t, h2(echo), "grpc port: explicit HTTP/2")
	assert.Equal(t, []string{"istio-peer-exchange", "istio", "h2"}, upstreamALPN(t, echo))

	plain := findCluster(t, side, "outbound|81||plain.default.svc.cluster.local")
	assert.True(t, h2(plain), "UPGRADE")
	assert.Equal(t, []string{"istio-peer-exchange", "istio", "h2"}, upstreamALPN(t, plain))
	assert.Nil(t, protocolOptions(t, findCluster(t, side, "outbound|81|v2|plain.default.svc.cluster.local")), "the subset's DO_NOT_UPGRADE")
	assert.Equal(t, []string{"istio-peer-exchange", "istio"}, upstreamALPN(t, findCluster(t, side, "outbound|81|v2|plain.default.svc.cluster.local")))

	assert.True(t, downstream(findCluster(t, side, "outbound|82||sniffed.default.svc.cluster.local")), "a sniffed port on a sidecar")
	cl := findCluster(t, side, "outbound|83||client.default.svc.cluster.local")
	assert.True(t, downstream(cl), "useClientProtocol")
	assert.False(t, h2(cl), "useClientProtocol forbids the upgrade")

	assert.Nil(t, protocolOptions(t, findCluster(t, side, "outbound|80||order.default.svc.cluster.local")), "an http port: Envoy's default HTTP/1.1")

	gw := g.ForGateway(xdsgen.Gateway{Name: "istio-ingressgateway", Namespace: "istio-system", Port: 8080})
	assert.Nil(t, protocolOptions(t, findCluster(t, gw, "outbound|82||sniffed.default.svc.cluster.local")), "no use_downstream_protocol on a gateway")
	assert.True(t, h2(findCluster(t, gw, "outbound|80||echo.default.svc.cluster.local")))
}
