package run

import (
	"fmt"

	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/check"
	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/runtime"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// Checks of a service whose callers are proxyless gRPC clients. No sidecar
// sits on the caller's side, so nothing counts Envoy's
// envoy_cluster_upstream_rq_retry or sets response flags there:
//   - retries are read from the server side instead: each answer carries
//     the attempt the callee saw (grpc-go's grpc-previous-rpc-attempts plus
//     one, gRFC A6; fakesvc attemptOf), and a call answered at attempt n
//     was retried n-1 times. Calls whose every attempt failed carry no
//     answer, so this is a lower bound, and it counts the measured load
//     only, where the sidecars' counter counts the warm-up too.
//   - responseFlags cannot be judged, and the check fails saying so: a
//     flag is Envoy's account of why it answered as it did (UT, URX, UO…),
//     and grpc-go keeps none.

// proxylessCallees are the services called proxyless in a mesh of rt:
// every gRPC service when rt makes gRPC calls proxyless.
func proxylessCallees(rt runtime.Runtime, topo registry.Topology) map[string]bool {
	if rt.DataPlane() != runtime.DataPlaneProxylessGRPC {
		return nil
	}
	out := map[string]bool{}
	for _, s := range topo.Services {
		if xdsgen.ServiceProtocol(registry.ServiceInfo{Service: s, Namespace: topo.Namespace}).IsGRPC() {
			out[s.Name] = true
		}
	}
	return out
}

// serverSideRetries counts the retries a proxyless caller made from the
// attempts its callee saw.
func serverSideRetries(e *spec.CountExpect, samples []sample) reports.Check {
	n := 0
	for _, s := range samples {
		if a := s.attempts[e.Service]; a > 1 {
			n += a - 1
		}
	}
	return check.Bounds("retries to "+e.Service+" (at the server)", "retries", float64(n), e.Min, e.Max, len(samples),
		"retries (proxyless gRPC callers: attempts the service saw, a lower bound)")
}

// refuseFlags fails a responseFlags check of a service called proxyless.
func refuseFlags(e *spec.FlagExpect) reports.Check {
	return reports.Check{
		Name: fmt.Sprintf("flag %s to %s", e.Flag, e.Service) + variantSuffix(e.Variant), Kind: "responseFlags",
		Summary: fmt.Sprintf("not judged: %s is called by proxyless gRPC clients, and no sidecar on their side sets response flags (docs/fidelity.md, proxyless gRPC)", e.Service),
	}
}
