package xdsgen

import (
	"net"
	"sort"
	"strconv"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	tlsinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/registry"
)

func socketAddress(host string, port int) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Address:       host,
		PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(port)},
	}}}
}

func splitHostPort(addr string) (string, int) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	return a
}

// httpFilterChain wraps an HTTP connection manager, with either an RDS name or an inline route config.
func httpFilterChain(statPrefix, rdsName string, inline *route.RouteConfiguration, match *listener.FilterChainMatch, extra ...*hcm.HttpFilter) *listener.FilterChain {
	m := &hcm.HttpConnectionManager{
		StatPrefix: statPrefix,
		// The fault filter sits before the router, as in Istio's sidecar
		// outbound chain (pilot/pkg/networking/core/listener_builder.go):
		// an abort it injects never reaches the retry policy.
		HttpFilters: append(append(extra,
			&hcm.HttpFilter{Name: FaultFilter, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&faultv3.HTTPFault{})}}),
			&hcm.HttpFilter{Name: wellknown.Router, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})}},
		),
		// Istio sets use_remote_address false on sidecars
		// (pilot/pkg/networking/core/listener_builder.go).
		UseRemoteAddress: wrapperspb.Bool(false),
		// Every HCM istiod builds allows WebSocket upgrades
		// (listener_builder.go buildHTTPConnectionManager: "Allow
		// websocket upgrades", UpgradeType "websocket").
		UpgradeConfigs: []*hcm.HttpConnectionManager_UpgradeConfig{{UpgradeType: istionames.WebSocketUpgrade}},
	}
	if strings.HasPrefix(statPrefix, "inbound_") {
		// Istio's inbound sidecar chains forward x-forwarded-client-cert as
		// APPEND_FORWARD with the subject, URI and DNS details
		// (pilot/pkg/networking/core/listener_builder.go buildInboundHCM);
		// outbound and gateway chains keep Envoy's default, SANITIZE.
		m.ForwardClientCertDetails = hcm.HttpConnectionManager_APPEND_FORWARD
		m.SetCurrentClientCertDetails = &hcm.HttpConnectionManager_SetCurrentClientCertDetails{
			Subject: wrapperspb.Bool(true), Dns: true, Uri: true,
		}
	}
	if inline != nil {
		m.RouteSpecifier = &hcm.HttpConnectionManager_RouteConfig{RouteConfig: inline}
	} else {
		m.RouteSpecifier = &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			RouteConfigName: rdsName,
			ConfigSource:    &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}, ResourceApiVersion: core.ApiVersion_V3},
		}}
	}
	return &listener.FilterChain{
		FilterChainMatch: match,
		Filters: []*listener.Filter{{
			Name:       wellknown.HTTPConnectionManager,
			ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(m)},
		}},
	}
}

// outboundListeners builds one 0.0.0.0_<port> HTTP listener per distinct
// HTTP service port, each with RDS "<port>", and one <VIP>_<port>
// tcp_proxy listener per TCP service port (tcp.go).
func (g *Generator) outboundListeners(p *registry.Pod) []*listener.Listener {
	ports := map[int]bool{}
	var tcp []*listener.Listener
	for _, s := range g.reg.Services {
		if IsTCP(s) {
			tcp = append(tcp, g.tcpOutboundListener(p, s))
			continue
		}
		ports[s.Port] = true
	}
	var sorted []int
	for p := range ports {
		sorted = append(sorted, p)
	}
	sort.Ints(sorted)
	var out []*listener.Listener
	for _, p := range sorted {
		out = append(out, &listener.Listener{
			Name:             istionames.OutboundListenerName(p),
			Address:          socketAddress("0.0.0.0", p),
			TrafficDirection: core.TrafficDirection_OUTBOUND,
			// Istio binds these "virtually": only the 15001 listener accepts, then hands over by original destination.
			BindToPort:   wrapperspb.Bool(false),
			FilterChains: []*listener.FilterChain{httpFilterChain("outbound_0.0.0.0_"+strconv.Itoa(p), istionames.OutboundRouteName(p), nil, nil)},
		})
	}
	return append(out, tcp...)
}

// virtualOutboundListener is the 15001 capture listener. In Istio it hands
// connections over by original destination; our sidecar's app sends its
// calls to it as an HTTP proxy, and the port comes from the Host header.
func virtualOutboundListener() *listener.Listener {
	return &listener.Listener{
		Name:             istionames.VirtualOutboundListener,
		Address:          socketAddress("0.0.0.0", istionames.VirtualOutboundPort),
		TrafficDirection: core.TrafficDirection_OUTBOUND,
		UseOriginalDst:   wrapperspb.Bool(true),
		FilterChains:     []*listener.FilterChain{},
	}
}

// virtualInboundListener is the 15006 listener with filter chains per
// container port, routing to inbound|<port>||: for STRICT one TLS chain that
// requires a client certificate, for PERMISSIVE a TLS chain and a plaintext
// chain told apart by the TLS inspector, for DISABLE the plaintext chain
// (pilot/pkg/networking/core/listener_builder.go, mtls.go). The
// AuthorizationPolicies of the workload become RBAC filters in front of the router.
func (g *Generator) virtualInboundListener(p *registry.Pod, s registry.ServiceInfo) *listener.Listener {
	cname := istionames.InboundClusterName(s.TargetPort)
	rc := &route.RouteConfiguration{
		Name: cname,
		VirtualHosts: []*route.VirtualHost{{
			Name:    "inbound|http|" + strconv.Itoa(s.TargetPort),
			Domains: []string{"*"},
			Routes: []*route.Route{{
				Name:  istionames.DefaultRouteName,
				Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
				// The service's host and port (buildSidecarInboundHTTPRouteConfig).
				Decorator: &route.Decorator{Operation: traceOperation(s.FQDN(), s.Port)},
				// BuildDefaultHTTPInboundRoute: no timeout, and a max stream
				// duration of none that takes a gRPC caller's grpc-timeout.
				Action: &route.Route_Route{Route: &route.RouteAction{
					ClusterSpecifier: &route.RouteAction_Cluster{Cluster: cname},
					Timeout:          durationZero(),
					MaxStreamDuration: &route.RouteAction_MaxStreamDuration{
						MaxStreamDuration:    durationZero(),
						GrpcTimeoutHeaderMax: durationZero(),
					},
				}},
			}},
		}},
		ValidateClusters: wrapperspb.Bool(false),
	}
	var filters []*hcm.HttpFilter
	for _, r := range g.rbacFilters(p, false) {
		filters = append(filters, &hcm.HttpFilter{Name: RBACFilter, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(r)}})
	}
	prefix := "inbound_0.0.0.0_" + strconv.Itoa(s.TargetPort)
	port := wrapperspb.UInt32(uint32(s.TargetPort))
	tlsChain := func() *listener.FilterChain {
		fc := httpFilterChain(prefix, "", rc, &listener.FilterChainMatch{DestinationPort: port, TransportProtocol: "tls"}, filters...)
		fc.TransportSocket = inboundTLS()
		return fc
	}
	plainChain := func() *listener.FilterChain {
		return httpFilterChain(prefix, "", rc, &listener.FilterChainMatch{DestinationPort: port, TransportProtocol: "raw_buffer"}, filters...)
	}
	var chains []*listener.FilterChain
	switch PeerMode(g.cfg, p, s.TargetPort) {
	case MTLSStrict:
		chains = []*listener.FilterChain{tlsChain()}
	case MTLSDisable:
		chains = []*listener.FilterChain{plainChain()}
	default:
		chains = []*listener.FilterChain{tlsChain(), plainChain()}
	}
	if IsTCP(s) {
		chains = g.inboundTCPChains(p, s)
	}
	return &listener.Listener{
		Name:             istionames.VirtualInboundListener,
		Address:          socketAddress("0.0.0.0", istionames.VirtualInboundPort),
		TrafficDirection: core.TrafficDirection_INBOUND,
		UseOriginalDst:   wrapperspb.Bool(true),
		ListenerFilters: []*listener.ListenerFilter{{Name: "envoy.filters.listener.tls_inspector",
			ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: mustAny(&tlsinspector.TlsInspector{})}}},
		FilterChains: chains,
	}
}

// gatewayListener is the ingress gateway's HTTP server listener 0.0.0.0_<port> with RDS http.<port>.
func gatewayListener(gw Gateway) *listener.Listener {
	return &listener.Listener{
		Name:             istionames.OutboundListenerName(gw.Port),
		Address:          socketAddress("0.0.0.0", gw.Port),
		TrafficDirection: core.TrafficDirection_OUTBOUND,
		FilterChains:     []*listener.FilterChain{httpFilterChain("outbound_0.0.0.0_"+strconv.Itoa(gw.Port), istionames.GatewayRouteName(gw.Port), nil, nil)},
	}
}
