package xdsgen

import (
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	httpopts "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
	networking "istio.io/api/networking/v1alpha3"
)

// The upstream protocol of an outbound cluster, as istiod chooses it
// (pilot/pkg/networking/core/cluster_builder.go setUpstreamProtocol, then
// cluster_traffic_policy.go applyTrafficPolicy: applyH2Upgrade before
// applyConnectionPool, and clusterWrapper.build).

// meshH2UpgradePolicy is meshConfig.h2UpgradePolicy, whose default is
// DO_NOT_UPGRADE (mesh.proto; pkg/config/mesh DefaultMeshConfig leaves it
// unset): only a DestinationRule's UPGRADE upgrades an HTTP/1.1 port.
const meshH2UpgradePolicy = networking.ConnectionPoolSettings_HTTPSettings_DO_NOT_UPGRADE

// http2Options is istiod's http2ProtocolOptions(): an empty
// Http2ProtocolOptions, so Envoy's own HTTP/2 defaults apply.
func http2Options() *core.Http2ProtocolOptions { return &core.Http2ProtocolOptions{} }

// explicitHTTP2 is setH2Options' upstream protocol: HTTP/2 always.
func explicitHTTP2() *httpopts.HttpProtocolOptions_ExplicitHttpConfig_ {
	return &httpopts.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpopts.HttpProtocolOptions_ExplicitHttpConfig{
		ProtocolConfig: &httpopts.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: http2Options()},
	}}
}

// useDownstream is setUseDownstreamProtocol: HTTP/1.1 upstream for an
// HTTP/1.x request, HTTP/2 for an HTTP/2 one.
func useDownstream(o *httpopts.HttpProtocolOptions) {
	h1 := &core.Http1ProtocolOptions{}
	if e := o.GetExplicitHttpConfig().GetHttpProtocolOptions(); e != nil {
		h1 = e
	}
	o.UpstreamProtocolOptions = &httpopts.HttpProtocolOptions_UseDownstreamProtocolConfig{UseDownstreamProtocolConfig: &httpopts.HttpProtocolOptions_UseDownstreamHttpConfig{
		HttpProtocolOptions:  h1,
		Http2ProtocolOptions: http2Options(),
	}}
}

// upstreamProtocol is setUpstreamProtocol: a port of an HTTP/2 protocol
// (http2, grpc, grpc-web) gets explicit HTTP/2; a port whose protocol is
// sniffed gets use_downstream_protocol on sidecars only (istiod keeps it
// off gateways, whose clients negotiate h2 by ALPN); nil leaves it unset.
func upstreamProtocol(p Protocol, sidecar bool) *httpopts.HttpProtocolOptions {
	switch {
	case p.IsHTTP2():
		return &httpopts.HttpProtocolOptions{UpstreamProtocolOptions: explicitHTTP2()}
	case p == ProtocolUnsupported && sidecar:
		o := &httpopts.HttpProtocolOptions{}
		useDownstream(o)
		return o
	}
	return nil
}

// shouldH2Upgrade is cluster_traffic_policy.go shouldH2Upgrade: a rule's
// useClientProtocol forbids the upgrade, its h2UpgradePolicy UPGRADE or
// DO_NOT_UPGRADE decides, and otherwise an HTTP port follows the mesh's
// policy.
func shouldH2Upgrade(p Protocol, h *networking.ConnectionPoolSettings_HTTPSettings) bool {
	if h != nil {
		if h.GetUseClientProtocol() {
			return false
		}
		switch h.GetH2UpgradePolicy() {
		case networking.ConnectionPoolSettings_HTTPSettings_UPGRADE:
			return true
		case networking.ConnectionPoolSettings_HTTPSettings_DO_NOT_UPGRADE:
			return false
		}
	}
	if !p.IsHTTP() {
		return false
	}
	return meshH2UpgradePolicy == networking.ConnectionPoolSettings_HTTPSettings_UPGRADE
}

// setH2 is setH2Options: HTTP/2 unless an upstream protocol is already chosen.
func setH2(o **httpopts.HttpProtocolOptions) {
	if *o == nil {
		*o = &httpopts.HttpProtocolOptions{}
	}
	if (*o).UpstreamProtocolOptions == nil {
		(*o).UpstreamProtocolOptions = explicitHTTP2()
	}
}

// setProtocolOptions is the end of clusterWrapper.build: options without an
// upstream protocol get explicit HTTP/1.1, Envoy's default.
func setProtocolOptions(c *cluster.Cluster, o *httpopts.HttpProtocolOptions) {
	if o == nil {
		return
	}
	if o.UpstreamProtocolOptions == nil {
		o.UpstreamProtocolOptions = &httpopts.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpopts.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpopts.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &core.Http1ProtocolOptions{}},
		}}
	}
	c.TypedExtensionProtocolOptions = map[string]*anypb.Any{HTTPProtocolOptions: mustAny(o)}
}

// isHTTP2Cluster is cluster_builder.go isHttp2Cluster: explicit HTTP/2,
// which gives its mTLS the ALPN h2 (cluster_tls.go).
func isHTTP2Cluster(c *cluster.Cluster) bool {
	a := c.GetTypedExtensionProtocolOptions()[HTTPProtocolOptions]
	if a == nil {
		return false
	}
	o := &httpopts.HttpProtocolOptions{}
	if err := a.UnmarshalTo(o); err != nil {
		return false
	}
	return o.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil
}
