package kind

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshbench/meshbench/fakesvc"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// Names and ports of what the runtime deploys.
const (
	appContainer = "app"
	// appAdmin is where the app takes behaviour changes, on the pod's loopback.
	appAdmin = "127.0.0.1:9901"
	// istioNamespace is where istiod and the ingress gateway run (the profile's).
	istioNamespace = "istio-system"
	// ingressGateway is the Gateway resource the runtime adds so that the
	// load reaches the services through istio-ingressgateway: Istio's
	// gateway serves nothing without one.
	ingressGateway = "meshbench-ingress"
)

// obj builds an unstructured object from a map literal.
func obj(m map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: m} }

// namespaceObj is a namespace with sidecar injection on, as the seed's step
// 3 labels it (istio-injection=enabled).
func namespaceObj(name string, inject bool) *unstructured.Unstructured {
	labels := map[string]any{}
	if inject {
		labels["istio-injection"] = "enabled"
	}
	return obj(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name, "labels": labels}})
}

// topologyObjects are the Kubernetes objects of a topology: per service a
// ServiceAccount, a Service (port named http so Istio treats it as HTTP,
// selector app=<name>) and per version a Deployment <service>-<version>
// of fakesvc pods labelled app and version.
func topologyObjects(reg *registry.Registry, appImage, pull string, seed int64) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, s := range reg.Services {
		out = append(out,
			obj(map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": s.Name, "namespace": s.Namespace}}),
			obj(map[string]any{"apiVersion": "v1", "kind": "Service",
				"metadata": map[string]any{"name": s.Name, "namespace": s.Namespace, "labels": map[string]any{"app": s.Name}},
				"spec": map[string]any{
					// app=<name>, or a selecting Service's app and version.
					"selector": labelsAny(s.SelectorLabels()),
					"ports":    []any{servicePort(s)},
				}}))
		for _, v := range s.Versions {
			out = append(out, deployment(reg, s, v, appImage, pull, seed))
		}
	}
	return out
}

func deployment(reg *registry.Registry, s registry.ServiceInfo, v registry.Version, appImage, pull string, seed int64) *unstructured.Unstructured {
	name := s.Name + "-" + v.Name
	labels := map[string]any{"app": s.Name, "version": v.Name}
	for k, val := range v.Labels {
		labels[k] = val
	}
	annotations := map[string]any{}
	if !v.HasSidecar() {
		// The documented per-pod opt-out of injection.
		annotations["sidecar.istio.io/inject"] = "false"
	}
	replicas := v.Replicas
	if replicas == 0 {
		replicas = 1
	}
	args := []any{
		"fakesvc", "-service", s.Name, "-version", v.Name, "-pod", "$(POD_NAME)", "-namespace", s.Namespace,
		"-listen", ":" + strconv.Itoa(s.TargetPort), "-admin", appAdmin,
		"-latency", time.Duration(v.Latency.Mean).String(), "-latency-stddev", time.Duration(v.Latency.StdDev).String(),
		"-error-rate", strconv.FormatFloat(v.ErrorRate, 'g', -1, 64), "-seed", strconv.FormatInt(seed, 10),
		// the replicas of a Deployment share these arguments: each mixes
		// its own name into the seed, as the local runtime seeds each pod
		"-seed-by-pod",
	}
	if v.Latency.Dist != "" {
		args = append(args, "-latency-dist", v.Latency.Dist)
	}
	if v.ErrorStatus != 0 {
		args = append(args, "-error-status", strconv.Itoa(v.ErrorStatus))
	}
	if mode := s.OnCalleeErrorOf(v.Name); mode != "" {
		args = append(args, "-on-callee-error", mode)
	}
	if v.GRPCErrorCode != 0 {
		args = append(args, "-grpc-error-code", strconv.Itoa(v.GRPCErrorCode))
	}
	for _, a := range fakesvc.GRPCCallArgs(s.GRPCCallOf(v.Name)) {
		args = append(args, a)
	}
	if xdsgen.IsTCP(s) {
		args = append(args, "-tcp") // fakesvc's TCP echo
	}
	var calls string
	for _, c := range s.CallsOf(v.Name) {
		if t, ok := reg.Service(c); ok {
			if calls != "" {
				calls += ","
			}
			// The service's DNS name, short in its own namespace: the app
			// calls it as any Kubernetes client does, and the sidecar
			// captures the connection.
			host := t.Name
			if t.Namespace != s.Namespace {
				host += "." + t.Namespace
			}
			switch {
			case xdsgen.ServiceProtocol(t).IsGRPC():
				calls += "grpc://" // a gRPC service is called with gRPC
			case xdsgen.IsTCP(t):
				// Raw TCP to the name: DNS gives the ClusterIP and
				// istio-iptables captures the connection.
				calls += "tcp://" + host + ":" + strconv.Itoa(t.Port)
				continue
			}
			calls += host + ":" + strconv.Itoa(t.Port) + t.Path
		}
	}
	if calls != "" {
		args = append(args, "-calls", calls)
	}
	return obj(map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": name, "namespace": s.Namespace, "labels": labels},
		"spec": map[string]any{
			"replicas": int64(replicas),
			"selector": map[string]any{"matchLabels": map[string]any{"app": s.Name, "version": v.Name}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels, "annotations": annotations},
				"spec": map[string]any{
					"serviceAccountName":            s.Name,
					"terminationGracePeriodSeconds": int64(1),
					"containers": []any{map[string]any{
						"name": appContainer, "image": appImage, "imagePullPolicy": pull,
						"command": []any{"/meshbench"}, "args": args,
						"env":            []any{map[string]any{"name": "POD_NAME", "valueFrom": map[string]any{"fieldRef": map[string]any{"fieldPath": "metadata.name"}}}},
						"ports":          []any{map[string]any{"name": s.Protocol, "containerPort": int64(s.TargetPort), "protocol": "TCP"}},
						"readinessProbe": map[string]any{"tcpSocket": map[string]any{"port": int64(s.TargetPort)}, "periodSeconds": int64(1)},
					}},
				},
			},
		}})
}

// istioObjects renders a scenario's Istio resources for the API server,
// with the Gateway (in gatewayNS) and VirtualServices the runtime adds so
// the load enters through istio-ingressgateway: one VirtualService per
// service that no resource of the scenario binds to a gateway.
func istioObjects(cfg meshconfig.Config, reg *registry.Registry, gatewayNS string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	add := func(apiVersion, kind, name, namespace string, spec any) error {
		raw, err := json.Marshal(spec)
		if err != nil {
			return fmt.Errorf("%s %s: %w", kind, name, err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			return err
		}
		if namespace == "" {
			namespace = reg.Namespace
		}
		out = append(out, obj(map[string]any{"apiVersion": apiVersion, "kind": kind,
			"metadata": map[string]any{"name": name, "namespace": namespace}, "spec": m}))
		return nil
	}
	const net, sec, gatewayAPI = "networking.istio.io/v1", "security.istio.io/v1", "gateway.networking.k8s.io/v1"
	bound := map[string]bool{}
	for _, r := range cfg.VirtualServices {
		if err := add(net, "VirtualService", r.Name, r.Namespace, &r.Spec); err != nil {
			return nil, err
		}
		if len(r.Spec.GetGateways()) > 0 {
			for _, h := range r.Spec.GetHosts() {
				bound[h] = true
			}
		}
	}
	for _, r := range cfg.DestinationRules {
		if err := add(net, "DestinationRule", r.Name, r.Namespace, &r.Spec); err != nil {
			return nil, err
		}
	}
	for _, r := range cfg.Gateways {
		if err := add(net, "Gateway", r.Name, r.Namespace, &r.Spec); err != nil {
			return nil, err
		}
	}
	// Gateway API routes (GAMMA); their CRDs come with the Istio install
	// (images/kind/build.sh adds the Gateway API's standard channel).
	for _, r := range cfg.HTTPRoutes {
		if err := add(gatewayAPI, "HTTPRoute", r.Name, r.Namespace, &r.Spec); err != nil {
			return nil, err
		}
	}
	for _, r := range cfg.GRPCRoutes {
		if err := add(gatewayAPI, "GRPCRoute", r.Name, r.Namespace, &r.Spec); err != nil {
			return nil, err
		}
	}
	for _, r := range cfg.PeerAuthentications {
		if err := add(sec, "PeerAuthentication", r.Name, r.Namespace, &r.Spec); err != nil {
			return nil, err
		}
	}
	for _, r := range cfg.AuthorizationPolicies {
		if err := add(sec, "AuthorizationPolicy", r.Name, r.Namespace, &r.Spec); err != nil {
			return nil, err
		}
	}
	// In a cluster of its own, the gateway takes every host; in a namespace
	// of its own (kube), only the topology's, beside the cluster's other
	// Gateways on port 80 (a host of the form "./name" is bound to
	// VirtualServices of the Gateway's namespace).
	hosts := []any{"*/*"}
	if gatewayNS != istioNamespace {
		hosts = nil
		for _, s := range reg.Services {
			hosts = append(hosts, "./"+s.FQDN())
		}
	}
	out = append(out, obj(map[string]any{"apiVersion": net, "kind": "Gateway",
		"metadata": map[string]any{"name": ingressGateway, "namespace": gatewayNS},
		"spec": map[string]any{
			"selector": map[string]any{"istio": "ingressgateway"},
			"servers":  []any{map[string]any{"port": map[string]any{"number": int64(80), "name": "http", "protocol": "HTTP"}, "hosts": hosts}},
		}}))
	for _, s := range reg.Services {
		if bound[s.FQDN()] || bound[s.Name] || xdsgen.IsTCP(s) {
			continue // a TCP service is not reached through the gateway's HTTP port
		}
		out = append(out, obj(map[string]any{"apiVersion": net, "kind": "VirtualService",
			"metadata": map[string]any{"name": ingressGateway + "-" + s.Name, "namespace": s.Namespace},
			"spec": map[string]any{
				"hosts":    []any{s.FQDN()},
				"gateways": []any{gatewayNS + "/" + ingressGateway},
				"http":     []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": s.FQDN(), "port": map[string]any{"number": int64(s.Port)}}}}}},
			}}))
	}
	return out, nil
}

// servicePort is a service's Service port: named after its protocol, with
// its appProtocol if any, from which istiod reads the port's protocol
// (pkg/config/kube/conversion.go ConvertProtocol).
func servicePort(s registry.ServiceInfo) map[string]any {
	p := map[string]any{"name": s.Protocol, "port": int64(s.Port), "targetPort": int64(s.TargetPort), "protocol": "TCP"}
	if s.AppProtocol != "" {
		p["appProtocol"] = s.AppProtocol
	}
	return p
}

func labelsAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
