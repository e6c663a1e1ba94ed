package xdsgen

import (
	"strings"

	"github.com/meshbench/meshbench/sim/registry"
)

// Protocol is the protocol Istio gives a service port, as
// pkg/config/protocol/instance.go names them.
type Protocol string

// The protocols of Istio's protocol.Instance that change what istiod sends
// an HTTP service (pkg/config/protocol/instance.go).
const (
	ProtocolHTTP        Protocol = "HTTP"
	ProtocolHTTP2       Protocol = "HTTP2"
	ProtocolGRPC        Protocol = "GRPC"
	ProtocolGRPCWeb     Protocol = "GRPC-Web"
	ProtocolHTTPS       Protocol = "HTTPS"
	ProtocolTCP         Protocol = "TCP"
	ProtocolTLS         Protocol = "TLS"
	ProtocolUnsupported Protocol = "UnsupportedProtocol"
)

// parseProtocol is protocol.Parse: the lower-cased name, or Unsupported
// (the ports Istio sniffs).
func parseProtocol(s string) Protocol {
	switch strings.ToLower(s) {
	case "http", "http_proxy":
		return ProtocolHTTP
	case "http2":
		return ProtocolHTTP2
	case "grpc":
		return ProtocolGRPC
	case "grpc-web":
		return ProtocolGRPCWeb
	case "https":
		return ProtocolHTTPS
	case "tcp", "mongo", "redis", "mysql":
		return ProtocolTCP
	case "tls":
		return ProtocolTLS
	}
	return ProtocolUnsupported
}

// wellKnownTCPPorts are the ports Istio takes for TCP when their name says
// nothing: SMTP, DNS, MySQL, MongoDB (pkg/config/kube/conversion.go wellKnownPorts).
var wellKnownTCPPorts = map[int]bool{25: true, 53: true, 3306: true, 27017: true}

// ConvertProtocol is Istio's kube.ConvertProtocol for a TCP Service port
// (pkg/config/kube/conversion.go): appProtocol wins over the port name,
// with Kubernetes' standard kubernetes.io/h2c (HTTP2), kubernetes.io/ws
// (HTTP) and kubernetes.io/wss (HTTPS); a name starting grpc-web is
// GRPC-Web; otherwise the name's prefix before the first '-' is parsed, and
// an unknown one is sniffed (Unsupported) unless the port is well known.
func ConvertProtocol(port int, portName, appProtocol string) Protocol {
	name := portName
	if appProtocol != "" {
		name = appProtocol
		switch name {
		case "kubernetes.io/h2c":
			return ProtocolHTTP2
		case "kubernetes.io/ws":
			return ProtocolHTTP
		case "kubernetes.io/wss":
			return ProtocolHTTPS
		}
	}
	if len(name) >= len("grpc-web") && strings.EqualFold(name[:len("grpc-web")], "grpc-web") {
		return ProtocolGRPCWeb
	}
	if i := strings.IndexByte(name, '-'); i >= 0 {
		name = name[:i]
	}
	p := parseProtocol(name)
	if p == ProtocolUnsupported && wellKnownTCPPorts[port] {
		return ProtocolTCP
	}
	return p
}

// IsHTTP2 is Instance.IsHTTP2: HTTP2, GRPC and GRPC-Web use HTTP/2 as their transport.
func (p Protocol) IsHTTP2() bool {
	return p == ProtocolHTTP2 || p == ProtocolGRPC || p == ProtocolGRPCWeb
}

// IsHTTP is Instance.IsHTTP: HTTP/1.x or HTTP/2, gRPC included.
func (p Protocol) IsHTTP() bool { return p == ProtocolHTTP || p.IsHTTP2() }

// IsGRPC is Instance.IsGRPC.
func (p Protocol) IsGRPC() bool { return p == ProtocolGRPC || p == ProtocolGRPCWeb }

// ServiceProtocol is the protocol Istio gives a registry service's port.
func ServiceProtocol(s registry.ServiceInfo) Protocol {
	name := s.Protocol
	if name == "" {
		name = "http"
	}
	return ConvertProtocol(s.Port, name, s.AppProtocol)
}
