package spec

import (
	"regexp"
	"strings"

	"github.com/meshbench/meshbench/scenarios/spec/yamlnode"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// portNameRE is a Kubernetes Service port name (an IANA_SVC_NAME: at most
// 15 lower-case letters, digits and '-', k8s.io/apimachinery
// validation.IsValidPortName), which is what topology protocol names.
var portNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// protocol checks a service's protocol (its port name) and appProtocol:
// the protocol Istio reads from them (xdsgen.ConvertProtocol) must be one
// the builtin sidecar carries, HTTP, HTTP/2, gRPC, gRPC-Web or TCP (tcp,
// mongo, redis, mysql, or a well-known TCP port such as 3306 with a name
// that says nothing); a port Istio would sniff, TLS or HTTPS is refused.
// A TCP service is fakesvc's TCP echo: it calls nothing. The gRPC error
// code of each version must be a gRPC status (1..16).
func (v *validator) protocol(p string, svc registry.Service) {
	l := v.l
	name := svc.Protocol
	if name == "" {
		name = "http"
	}
	if len(name) > 15 || !portNameRE.MatchString(name) {
		l.at(p+".protocol", "invalid protocol %q: it names the service port, so use at most 15 lower-case letters, digits and '-' (http, http2, grpc, grpc-web, grpc-<suffix>...)", svc.Protocol)
		return
	}
	got := xdsgen.ConvertProtocol(svc.Port, name, svc.AppProtocol)
	if !got.IsHTTP() && got != xdsgen.ProtocolTCP {
		field, value := p+".protocol", svc.Protocol
		if svc.AppProtocol != "" {
			field, value = p+".appProtocol", svc.AppProtocol
		}
		l.at(field, "protocol %q is %s to Istio; the builtin sidecar carries http, http2, grpc, grpc-web and tcp ports only", value, got)
	}
	if got == xdsgen.ProtocolTCP {
		if len(svc.Calls) > 0 {
			l.at(p+".calls", "%s is a TCP service (fakesvc's TCP echo), which calls nothing", svc.Name)
		}
		for j, ver := range svc.Versions {
			if len(ver.Calls) > 0 {
				l.at(yamlnode.Item(p+".versions", j)+".calls", "%s is a TCP service (fakesvc's TCP echo), which calls nothing", svc.Name)
			}
		}
	}
	for j, ver := range svc.Versions {
		if ver.GRPCErrorCode < 0 || ver.GRPCErrorCode > 16 {
			l.at(yamlnode.Item(p+".versions", j)+".grpcErrorCode", "grpcErrorCode %d is not a gRPC status in 1..16", ver.GRPCErrorCode)
		}
	}
}

// isTCP reports a topology service whose port Istio takes for TCP.
func (v *validator) isTCP(name string) bool {
	svc := v.services[name]
	if svc == nil {
		return false
	}
	proto := svc.Protocol
	if proto == "" {
		proto = "http"
	}
	port := svc.Port
	if port == 0 {
		port = 80
	}
	return xdsgen.ConvertProtocol(port, proto, svc.AppProtocol) == xdsgen.ProtocolTCP
}

// tcpTarget refuses a load target that is a TCP service: the load enters
// through the ingress gateway's HTTP port, which routes HTTP only.
func (v *validator) tcpTarget(p, target string) {
	if v.isTCP(target) {
		v.l.at(p, "target %q is a TCP service: the load enters through the ingress gateway over HTTP; target a service that calls it", target)
	}
}

// tcpRoutes checks what a VirtualService says of a TCP service: its http
// routes would be ignored (Istio builds no HTTP routes for a TCP port), so
// they are refused; of its tcp routes' matches the sidecar's port,
// sourceLabels, sourceNamespace and gateways are translated, and
// destinationSubnets is refused.
func (v *validator) tcpRoutes(o *meshObject) {
	spec := &o.vs.Spec
	var tcp []string
	for _, h := range spec.Hosts {
		if svc, _ := v.resolveHost(h, o.namespace); svc != nil && v.isTCP(svc.Name) {
			tcp = append(tcp, svc.Name)
		}
	}
	if len(tcp) > 0 && len(spec.Http) > 0 {
		v.objErr(o, "spec.http", "%s is a TCP service: Istio builds no HTTP routes for its port and would ignore these; use tcp routes", strings.Join(tcp, ", "))
	}
	for i, r := range spec.Tcp {
		for j, m := range r.Match {
			if len(m.DestinationSubnets) > 0 {
				v.objErr(o, yamlnode.Item(yamlnode.Item("spec.tcp", i)+".match", j)+".destinationSubnets", "destinationSubnets is not supported")
			}
		}
	}
}
