package fidelity

import (
	"net/netip"
	"path/filepath"
	"testing"

	istiocore "istio.io/istio/pilot/pkg/networking/core"

	"istio.io/istio/pilot/pkg/model"
	xdsfake "istio.io/istio/pilot/test/xds"

	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/controlplane"
	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// gatewayResource binds the ingress gateway's HTTP port, so that istiod
// builds its 0.0.0.0_8080 listener.
const gatewayResource = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
    - port: {number: 8080, name: http, protocol: HTTP}
      hosts: ["*"]
`

// TestIstioOracleGatewayTracing compares the tracing of the ingress
// gateway's HTTP connection manager (a Router: the client side of a
// Telemetry, and spawn_upstream_span with a provider) on the tracing probe
// and its variants.
func TestIstioOracleGatewayTracing(t *testing.T) {
	known, err := ReadKnownDifferences(knownDifferencesDoc)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := spec.LoadFile(filepath.Join("testdata", "probes", "tracing.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	variants := append([]configVariant{{"telemetry-10%", sc.Config}}, tracingVariants(sc.Config)...)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			istio, ours := gatewaySides(t, v.config)
			listener := istionames.OutboundListenerName(controlplane.Gateway.Port)
			scope := Scope{Listeners: map[string]bool{listener: true}}
			requireObjects(t, scope, map[string]Side{"istio": istio, "meshbench": ours}, []string{
				"listeners[" + listener + "].http_connection_manager[0].request_id_extension.typed_config.@type",
			})
			judge(t, known, Compare(istio, ours, scope), map[*KnownDifference]bool{})
		})
	}
}

// gatewaySides is istiod's and xdsgen's xDS for meshbench's ingress
// gateway under a scenario's tracing settings.
func gatewaySides(t *testing.T, cfg meshconfig.Config) (istio, ours Side) {
	t.Helper()
	ip := netip.MustParseAddr("10.0.0.0")
	reg, err := registry.New(registry.DefaultTopology(), func() (netip.Addr, error) {
		ip = ip.Next()
		return ip, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	text, n, err := istioYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		text += "---\n"
	}
	cfgs, err := istioConfigs(text+gatewayResource, n+1)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := kubeObjects(reg)
	if err != nil {
		t.Fatal(err)
	}
	if tracingConfigured(cfg) {
		objs = append(objs, collectorObjects(collector)...)
	}
	istiocore.NewConfigGenerator(nil).MeshConfigChanged(nil) // as istioSide
	s := xdsfake.NewFakeDiscoveryServer(t, xdsfake.FakeOptions{KubernetesObjects: objs, Configs: cfgs, MeshConfig: istioMeshConfig(cfg.Mesh)})
	gw := controlplane.Gateway
	gw.IP = netip.MustParseAddr("10.0.254.1")
	p := s.SetupProxy(injectedProxy(model.Router, gw.Name+"-0."+gw.Namespace, gw.Namespace, gw.IP, gw.Labels, gw.Name, ""))
	istio = Side{Listeners: s.Listeners(p)}
	var opts []xdsgen.Option
	if tracingConfigured(cfg) {
		opts = append(opts, xdsgen.WithCollector(collector))
	}
	ours = Side{Listeners: xdsgen.New(reg, cfg, opts...).ForGateway(gw).Listeners}
	return istio, ours
}
