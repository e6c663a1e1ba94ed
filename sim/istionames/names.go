// Package istionames holds the names and ports Istio gives proxies'
// listeners, clusters and routes, which the translator (sim/xdsgen) makes
// and the sidecar (sim/sidecar) reads back: one home for both.
package istionames

import (
	"fmt"
	"strconv"
	"strings"
)

// ClusterDomain is the Kubernetes cluster DNS suffix Istio assumes by
// default: a Service's hostname is <name>.<namespace>.svc.<ClusterDomain>.
const ClusterDomain = "cluster.local"

// TrustDomain is the mesh's trust domain, Istio's default
// (meshConfig.trustDomain): SPIFFE IDs are spiffe://<TrustDomain>/ns/…/sa/….
const TrustDomain = "cluster.local"

// ServiceHost is a Service's cluster-local hostname, e.g.
// payment.default.svc.cluster.local.
func ServiceHost(name, namespace string) string {
	return name + "." + namespace + ".svc." + ClusterDomain
}

// Listener and cluster names and ports as istiod uses them.
const (
	// VirtualOutboundListener captures the app's outbound traffic (iptables sends it to 15001 in Istio).
	VirtualOutboundListener = "virtualOutbound"
	VirtualOutboundPort     = 15001
	// VirtualInboundListener receives traffic for the app (iptables sends it to 15006 in Istio).
	VirtualInboundListener = "virtualInbound"
	VirtualInboundPort     = 15006
	// PrometheusPort is where Envoy's Prometheus stats are scraped in Istio (/stats/prometheus).
	PrometheusPort = 15090
	// DefaultRouteName is the name Istio gives the catch-all route of a service without a VirtualService.
	DefaultRouteName = "default"
	// OutboundDirection and InboundDirection are the first field of an Istio cluster name.
	OutboundDirection = "outbound"
	InboundDirection  = "inbound"
)

// ClusterName builds an Istio cluster name: direction|port|subset|host, e.g.
// outbound|80|v1|payment.default.svc.cluster.local (pilot/pkg/model/service.go BuildSubsetKey).
func ClusterName(direction string, port int, subset, host string) string {
	return fmt.Sprintf("%s|%d|%s|%s", direction, port, subset, host)
}

// InboundClusterName is inbound|<port>|| as Istio names inbound clusters since 1.10.
func InboundClusterName(port int) string { return ClusterName(InboundDirection, port, "", "") }

// ParseClusterName splits an Istio cluster name into its parts. It does
// not allocate: sidecars call it on every request.
func ParseClusterName(name string) (direction string, port int, subset, host string, ok bool) {
	direction, rest, ok1 := strings.Cut(name, "|")
	portText, rest, ok2 := strings.Cut(rest, "|")
	subset, host, ok3 := strings.Cut(rest, "|")
	if !ok1 || !ok2 || !ok3 || strings.Contains(host, "|") {
		return "", 0, "", "", false
	}
	p, err := strconv.Atoi(portText)
	if err != nil {
		return "", 0, "", "", false
	}
	return direction, p, subset, host, true
}

// OutboundListenerName is the per-port outbound HTTP listener, e.g. 0.0.0.0_80.
func OutboundListenerName(port int) string { return fmt.Sprintf("0.0.0.0_%d", port) }

// OutboundRouteName is the RDS name of a sidecar's outbound HTTP port: just the port, e.g. "80".
func OutboundRouteName(port int) string { return strconv.Itoa(port) }

// GatewayRouteName is the RDS name of a gateway's HTTP server port, e.g. http.8080.
func GatewayRouteName(port int) string { return fmt.Sprintf("http.%d", port) }

// VirtualHostName is host:port, as Istio names outbound virtual hosts.
func VirtualHostName(host string, port int) string { return fmt.Sprintf("%s:%d", host, port) }

// WebSocketUpgrade is the upgrade type istiod allows on every HTTP
// connection manager (listener_builder.go).
const WebSocketUpgrade = "websocket"
