package spec

import (
	"strings"

	"github.com/meshbench/meshbench/internal/suggest"
	"github.com/meshbench/meshbench/internal/units"
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

// DeadlineExpect bounds the time a caller's gRPC deadline left the calls
// Service answered when they reached it: every answered call must carry a
// deadline (grpc-timeout), none more than Max nor less than Min. A mesh
// that dropped the caller's grpc-timeout on the way leaves the service
// without one.
type DeadlineExpect struct {
	Service string         `yaml:"service"`
	Min     units.Duration `yaml:"min"`
	Max     units.Duration `yaml:"max"`
	Variant string         `yaml:"variant"`
}

// deadline validates a deadline expectation.
func (v *validator) deadline(p string, e *DeadlineExpect) {
	switch {
	case e.Service == "":
		v.l.at(p, "service is required (services: %s)", v.serviceList())
	case v.services[e.Service] == nil:
		v.l.at(p+".service", "service %q matches no service in the topology (services: %s)", e.Service, v.serviceList())
	}
	if e.Min == 0 && e.Max == 0 {
		v.l.at(p, "set min, max or both")
	}
	if e.Max > 0 && e.Min > e.Max {
		v.l.at(p+".min", "min %s is more than max %s", e.Min.D(), e.Max.D())
	}
	v.variant(p+".variant", e.Variant)
}
