package spec

import (
	"strings"

	"github.com/meshbench/meshbench/internal/suggest"
	"github.com/meshbench/meshbench/scenarios/spec/yamlnode"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// grpcCall checks how a service's pods (or a version's) make their gRPC
// calls: a known method of the echo service, stream parameters only for
// Stream (the durations' parser refuses negative ones), and at least one gRPC service among the
// calls it applies to, since it changes nothing else.
func (v *validator) grpcCall(p string, svc registry.Service) {
	check := func(gp string, g *registry.GRPCCall, calls []string) {
		if g == nil {
			return
		}
		l := v.l
		methods := []string{registry.GRPCMethodUnary, registry.GRPCMethodStream}
		if g.Method != "" && !contains(methods, g.Method) {
			l.at(gp+".method", "method %q is not one of the echo service's, %s%s", g.Method, strings.Join(methods, " or "), suggest.Hint(g.Method, methods))
		}
		if g.Count < 0 || g.Count > 1000 {
			l.at(gp+".count", "count %d is not in 1..1000", g.Count)
		}
		if g.Method != registry.GRPCMethodStream {
			if g.Count != 0 {
				l.at(gp+".count", "count applies to method Stream only")
			}
			if g.Interval != 0 {
				l.at(gp+".interval", "interval applies to method Stream only")
			}
		}
		for _, c := range calls {
			if t := v.services[c]; t != nil && xdsgen.ServiceProtocol(registry.ServiceInfo{Service: *t}).IsGRPC() {
				return
			}
		}
		l.at(gp, "grpcCall applies to gRPC calls, and none of %v is a gRPC service (protocol: grpc)", calls)
	}
	check(p+".grpcCall", svc.GRPCCall, svc.AllCalls())
	for j, ver := range svc.Versions {
		check(yamlnode.Item(p+".versions", j)+".grpcCall", ver.GRPCCall, svc.CallsOf(ver.Name))
	}
}
