package scenarios

import (
	"regexp"

	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// portNameRE is a Kubernetes Service port name (an IANA_SVC_NAME: at most
// 15 lower-case letters, digits and '-', k8s.io/apimachinery
// validation.IsValidPortName), which is what topology protocol names.
var portNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// protocol checks a service's protocol (its port name) and appProtocol:
// the protocol Istio reads from them (xdsgen.ConvertProtocol) must be one
// the builtin sidecar carries, HTTP, HTTP/2, gRPC or gRPC-Web; a port Istio
// would sniff, or TCP, is refused. The gRPC error code of each version
// must be a gRPC status (1..16).
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
	if got := xdsgen.ConvertProtocol(svc.Port, name, svc.AppProtocol); !got.IsHTTP() {
		field, value := p+".protocol", svc.Protocol
		if svc.AppProtocol != "" {
			field, value = p+".appProtocol", svc.AppProtocol
		}
		l.at(field, "protocol %q is %s to Istio; the builtin sidecar carries http, http2, grpc and grpc-web ports only", value, got)
	}
	for j, ver := range svc.Versions {
		if ver.GRPCErrorCode < 0 || ver.GRPCErrorCode > 16 {
			l.at(item(p+".versions", j)+".grpcErrorCode", "grpcErrorCode %d is not a gRPC status in 1..16", ver.GRPCErrorCode)
		}
	}
}
