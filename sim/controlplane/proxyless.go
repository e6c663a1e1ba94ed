package controlplane

import (
	"context"
	"fmt"
	"strings"

	"github.com/meshbench/meshbench/fakesvc"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
	"github.com/meshbench/meshbench/sim/xdsserver"
)

// Proxyless gRPC callers (runtime.Spec.ProxylessGRPC): a pod that calls a
// gRPC service does so with grpc-go's xDS client, a node of its own beside
// the pod's sidecar, which keeps the inbound side and the HTTP calls. The
// control plane writes the client's bootstrap, as Istio's agent does for a
// proxyless pod (pkg/istio-agent/grpcxds), and serves it what istiod's
// grpcgen would (xdsgen.ForProxyless).

// Proxyless reports whether pod p's gRPC calls are proxyless.
func (c *ControlPlane) Proxyless(p *registry.Pod) bool {
	if !c.proxyless || !p.Sidecar {
		return false
	}
	svc, _ := c.reg.Service(p.Service)
	for _, name := range svc.CallsOf(p.Version) {
		if t, ok := c.reg.Service(name); ok && xdsgen.ServiceProtocol(t).IsGRPC() {
			return true
		}
	}
	return false
}

// ProxylessNodeID is the node id of pod p's gRPC client: the sidecar's
// with the node type "grpc", so that the two nodes of one pod differ.
func ProxylessNodeID(p *registry.Pod) string {
	return "grpc" + strings.TrimPrefix(p.NodeID(), "sidecar")
}

// bootstrap is the grpc-go bootstrap of pod p's gRPC client.
func (c *ControlPlane) bootstrap(p *registry.Pod) ([]byte, error) {
	id := ProxylessNodeID(p)
	return fakesvc.Bootstrap{
		Server: c.xds.Addr(), Token: c.tokens.Issue(id), NodeID: id,
		Metadata: map[string]string{
			xdsserver.GeneratorMetadataKey: xdsserver.GeneratorGRPC,
			"NAMESPACE":                    p.Namespace,
			"INSTANCE_IPS":                 p.IP.String(),
		},
	}.JSON()
}

// checkProxyless refuses what a proxyless caller cannot do here: reach a
// callee whose inbound is STRICT mTLS (the caller sends plaintext: grpcgen
// sends TLS only for a DestinationRule's ISTIO_MUTUAL, and meshbench gives
// grpc-go no xDS credentials or certificate providers), or a
// DestinationRule that asks for TLS, which it would ignore.
func (c *ControlPlane) checkProxyless() error {
	for _, p := range c.reg.Pods {
		if !c.Proxyless(p) {
			continue
		}
		svc, _ := c.reg.Service(p.Service)
		for _, name := range svc.CallsOf(p.Version) {
			t, ok := c.reg.Service(name)
			if !ok || !xdsgen.ServiceProtocol(t).IsGRPC() {
				continue
			}
			for _, q := range c.reg.PodsOf(t.Name) {
				if q.Sidecar && xdsgen.PeerMode(c.cfg, q, q.Port) == xdsgen.MTLSStrict {
					return fmt.Errorf("proxyless gRPC: %s calls %s in plaintext, and %s's inbound is STRICT mTLS, which refuses it; run it with the builtin data plane (docs/fidelity.md, proxyless gRPC)", p.Name, t.Name, q.Name)
				}
			}
			if g := xdsgen.New(c.reg, c.cfg); g.HasClientTLS(t) {
				return fmt.Errorf("proxyless gRPC: a DestinationRule asks for TLS to %s, which a proxyless caller here cannot do (no xDS credentials); run it with the builtin data plane", t.Name)
			}
		}
	}
	return nil
}

// pushProxyless publishes the proxyless snapshot of pod p's gRPC client.
// Push calls it with c.mu held.
func (c *ControlPlane) pushProxyless(ctx context.Context, gen *xdsgen.Generator, p *registry.Pod, version string) error {
	res := gen.ForProxyless(p)
	c.redirect(p.Name, res.Endpoints)
	snap, err := res.Snapshot(version)
	if err != nil {
		return err
	}
	return c.xds.SetProxylessSnapshot(ctx, ProxylessNodeID(p), snap)
}
