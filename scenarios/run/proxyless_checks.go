package run

import (
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/runtime"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// Services whose callers are proxyless gRPC clients. No sidecar sits on
// the caller's side, so nothing counts Envoy's
// envoy_cluster_upstream_rq_retry or sets response flags there: the
// retries and responseFlags kinds (package expect) judge them otherwise.

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
