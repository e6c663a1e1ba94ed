package fidelity

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	meshapi "istio.io/api/mesh/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"
	istiocore "istio.io/istio/pilot/pkg/networking/core"

	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pilot/pkg/model"
	xdsfake "istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/constants"
	"istio.io/istio/pkg/config/mesh"
	istiolog "istio.io/istio/pkg/log"

	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// IstioVersion is the proxy version the oracle's sidecar announces to
// istiod; Istio gates some behaviour on it, so it is the version of the
// istio.io/istio module in go.mod (its VERSION file says 1.31).
const IstioVersion = "1.31.0"

// serviceCIDR is where the Kubernetes Services get their ClusterIPs; the
// Known differences table names these addresses (Istio adds a service's
// VIP to its virtual host's domains).
var serviceCIDR = netip.MustParsePrefix("10.96.0.0/16")

// quietIstio turns Istio's logging down to errors: at info it narrates
// every informer sync.
func quietIstio() {
	for _, s := range istiolog.Scopes() {
		s.SetOutputLevel(istiolog.ErrorLevel)
	}
}

// kubeObjects expresses a registry as what Kubernetes would hold for it: a
// Service per service (port <port> named as the service's protocol, http
// by default, with its appProtocol if any, from which Istio takes the
// port's protocol,
// targetPort <targetPort>, a ClusterIP, selector app=<name>), a running,
// ready Pod per pod with the registry's labels and IP, and an
// EndpointSlice per Service listing its pods, as the EndpointSlice
// controller would (the fake client runs no controllers).
func kubeObjects(reg *registry.Registry) ([]runtime.Object, error) {
	var objs []runtime.Object
	for _, s := range reg.Services {
		// The registry's VIP: meshbench binds a TCP port's outbound
		// listener there, as istiod binds <ClusterIP>_<port>.
		vip := s.VIP
		if !serviceCIDR.Contains(vip) {
			return nil, fmt.Errorf("VIP %s of %s is outside %s", vip, s.Name, serviceCIDR)
		}
		objs = append(objs, &corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, Labels: map[string]string{"app": s.Name}},
			Spec: corev1.ServiceSpec{
				ClusterIP:  vip.String(),
				ClusterIPs: []string{vip.String()},
				// app=<name>, or a selecting Service's app and version.
				Selector: s.SelectorLabels(),
				Ports: []corev1.ServicePort{{
					Name:        s.Protocol,
					AppProtocol: appProtocol(s.AppProtocol),
					Port:        int32(s.Port),
					TargetPort:  intstr.FromInt32(int32(s.TargetPort)),
					Protocol:    corev1.ProtocolTCP,
				}},
				Type: corev1.ServiceTypeClusterIP,
			},
		})
		slice := &discoveryv1.EndpointSlice{
			TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
			ObjectMeta: metav1.ObjectMeta{
				Name:      s.Name + "-oracle",
				Namespace: s.Namespace,
				Labels:    map[string]string{discoveryv1.LabelServiceName: s.Name},
			},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports: []discoveryv1.EndpointPort{{
				Name:     ptr(s.Protocol),
				Port:     ptr(int32(s.TargetPort)),
				Protocol: ptr(corev1.ProtocolTCP),
			}},
		}
		for _, p := range reg.PodsOf(s.Name) {
			ready := reg.Ready(p.Name)
			// Pods of a Deployment: a generated name, a ReplicaSet
			// <deployment>-<hash> as controller and the pod-template-hash
			// label, from which Istio derives the workload name
			// (pkg/kube/util.go GetDeployMetaFromPod).
			hash := templateHash(p.Workload)
			labels := map[string]string{"pod-template-hash": hash}
			for k, v := range xdsgen.InjectedLabels(p.Labels, p.Workload) {
				labels[k] = v
			}
			// A selecting Service lists pods its target already made.
			if s.Selects == nil {
				objs = append(objs, &corev1.Pod{
					TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
					ObjectMeta: metav1.ObjectMeta{
						Name:         p.Name,
						GenerateName: p.Workload + "-" + hash + "-",
						Namespace:    p.Namespace,
						Labels:       labels,
						OwnerReferences: []metav1.OwnerReference{{
							APIVersion: "apps/v1",
							Kind:       "ReplicaSet",
							Name:       p.Workload + "-" + hash,
							UID:        types.UID("rs-" + p.Workload),
							Controller: ptr(true),
						}},
					},
					Spec: corev1.PodSpec{
						ServiceAccountName: p.ServiceAccount,
						Containers: []corev1.Container{{
							Name:  "app",
							Image: "meshbench/fakesvc",
							Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(p.Port), Protocol: corev1.ProtocolTCP}},
						}},
					},
					Status: corev1.PodStatus{
						Phase:      corev1.PodRunning,
						PodIP:      p.IP.String(),
						PodIPs:     []corev1.PodIP{{IP: p.IP.String()}},
						Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: podCondition(ready)}},
					},
				})
			}
			slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{p.IP.String()},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr(ready), Serving: ptr(ready), Terminating: ptr(false)},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: p.Name, Namespace: p.Namespace},
			})
		}
		objs = append(objs, slice)
	}
	return objs, nil
}

// collector is the trace collector the oracle puts in the mesh when a
// scenario configures tracing: Istio's Zipkin addon, Service zipkin in
// istio-system on 9411 (samples/addons/extras/zipkin.yaml), its pod at an
// address after the registry's pods, its ClusterIP at the top of the
// service CIDR.
var collector = xdsgen.DefaultCollector(netip.MustParseAddrPort("10.0.255.1:9411"))

const collectorVIP = "10.96.255.254"

// collectorObjects are the collector's Service and EndpointSlice.
func collectorObjects(c xdsgen.Collector) []runtime.Object {
	port := int32(c.Port)
	return []runtime.Object{
		&corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: metav1.ObjectMeta{Name: c.Name, Namespace: c.Namespace, Labels: map[string]string{"app": c.Name}},
			Spec: corev1.ServiceSpec{
				ClusterIP:  collectorVIP,
				ClusterIPs: []string{collectorVIP},
				Selector:   map[string]string{"app": c.Name},
				Ports: []corev1.ServicePort{{
					Name: "http-query", Port: port, TargetPort: intstr.FromInt32(int32(c.Endpoint.Port())), Protocol: corev1.ProtocolTCP,
				}},
				Type: corev1.ServiceTypeClusterIP,
			},
		},
		&discoveryv1.EndpointSlice{
			TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
			ObjectMeta: metav1.ObjectMeta{
				Name: c.Name + "-oracle", Namespace: c.Namespace,
				Labels: map[string]string{discoveryv1.LabelServiceName: c.Name},
			},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports: []discoveryv1.EndpointPort{{
				Name: ptr("http-query"), Port: ptr(int32(c.Endpoint.Port())), Protocol: ptr(corev1.ProtocolTCP),
			}},
			Endpoints: []discoveryv1.Endpoint{{
				Addresses:  []string{c.Endpoint.Addr().String()},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr(true), Serving: ptr(true), Terminating: ptr(false)},
			}},
		},
	}
}

// tracingConfigured reports whether a scenario says anything of tracing:
// only then does the oracle run a collector, so that the other cases see
// the mesh they always saw.
func tracingConfigured(cfg meshconfig.Config) bool {
	return cfg.Mesh.Tracing != nil || len(cfg.Telemetries) > 0
}

// templateHash stands in for the pod-template-hash Kubernetes gives a
// Deployment's ReplicaSet: ten stable hex digits.
func templateHash(workload string) string {
	h := fnv.New64a()
	h.Write([]byte(workload))
	return fmt.Sprintf("%016x", h.Sum64())[:10]
}

func podCondition(ok bool) corev1.ConditionStatus {
	if ok {
		return corev1.ConditionTrue
	}
	return corev1.ConditionFalse
}

func ptr[T any](v T) *T { return &v }

// istioYAML serializes a scenario's Istio resources back to the YAML a user
// would kubectl apply, one document per resource.
func istioYAML(cfg meshconfig.Config) (string, int, error) {
	var docs []string
	add := func(kind, name, ns string, labels, annotations map[string]string, spec any) error {
		apiVersion := "networking.istio.io/v1"
		if kind == "Telemetry" {
			apiVersion = "telemetry.istio.io/v1"
		}
		// The spec types (istio.io/api) marshal themselves as protobuf JSON.
		specJSON, err := json.Marshal(spec)
		if err != nil {
			return fmt.Errorf("%s %s/%s: %w", kind, ns, name, err)
		}
		var specAny any
		if err := json.Unmarshal(specJSON, &specAny); err != nil {
			return err
		}
		meta := map[string]any{"name": name, "namespace": ns}
		if len(labels) > 0 {
			meta["labels"] = labels
		}
		if len(annotations) > 0 {
			meta["annotations"] = annotations
		}
		doc, err := yaml.Marshal(map[string]any{
			"apiVersion": apiVersion,
			"kind":       kind,
			"metadata":   meta,
			"spec":       specAny,
		})
		if err != nil {
			return err
		}
		docs = append(docs, string(doc))
		return nil
	}
	for _, o := range cfg.DestinationRules {
		if err := add("DestinationRule", o.Name, o.Namespace, o.Labels, o.Annotations, &o.Spec); err != nil {
			return "", 0, err
		}
	}
	for _, o := range cfg.VirtualServices {
		spec := &o.Spec
		if cfg.Mesh.Retry503ByDefault {
			spec = retries123(spec)
		}
		if err := add("VirtualService", o.Name, o.Namespace, o.Labels, o.Annotations, spec); err != nil {
			return "", 0, err
		}
	}
	for _, o := range cfg.Gateways {
		if err := add("Gateway", o.Name, o.Namespace, o.Labels, o.Annotations, &o.Spec); err != nil {
			return "", 0, err
		}
	}
	for _, o := range cfg.Telemetries {
		if err := add("Telemetry", o.Name, o.Namespace, o.Labels, o.Annotations, &o.Spec); err != nil {
			return "", 0, err
		}
	}
	return strings.Join(docs, "---\n"), len(docs), nil
}

// retryOn123 is Istio 1.23's default retry policy in the words of a
// retryOn: its default conditions plus status 503, which 1.23 (and the
// 1.23 compatibility profile, EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY=false)
// put in retriable_status_codes of every policy that set no retryOn
// (retry.go defaultPolicy before istio/istio 748c90d41d4). The Istio the
// oracle links no longer has the flag, so the oracle writes it out.
const retryOn123 = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes,503"

// retry123 gives a retry policy the 1.23 default retryOn if it sets none
// and retries at all: parseRetryOn then yields exactly 1.23's retry_on and
// retriable_status_codes [503].
func retry123(r *networking.HTTPRetry) *networking.HTTPRetry {
	if r == nil || r.GetAttempts() <= 0 || r.GetRetryOn() != "" {
		return r
	}
	c := proto.Clone(r).(*networking.HTTPRetry)
	c.RetryOn = retryOn123
	return c
}

// retries123 applies retry123 to every http route of a VirtualService.
func retries123(vs *networking.VirtualService) *networking.VirtualService {
	c := proto.Clone(vs).(*networking.VirtualService)
	for _, hr := range c.GetHttp() {
		hr.Retries = retry123(hr.GetRetries())
	}
	return c
}

// istioMeshConfig is Istio's default MeshConfig with the scenario's
// mesh-wide settings.
func istioMeshConfig(s meshconfig.MeshSettings) *meshapi.MeshConfig {
	m := mesh.DefaultMeshConfig()
	m.DefaultHttpRetryPolicy = s.DefaultHTTPRetryPolicy
	m.AccessLogFile = s.AccessLog.File
	m.AccessLogFormat = s.AccessLog.Format
	if s.AccessLog.JSON {
		m.AccessLogEncoding = meshapi.MeshConfig_JSON
	}
	if t := s.Tracing; t != nil {
		m.EnableTracing = !t.Disabled
		if t.Proxy != nil {
			m.DefaultConfig.Tracing = t.Proxy
		}
		m.ExtensionProviders = append(m.ExtensionProviders, t.Providers...)
		m.DefaultProviders.Tracing = t.DefaultProviders
	}
	if s.Retry503ByDefault {
		if m.DefaultHttpRetryPolicy == nil {
			// 1.23's built-in default: 2 attempts, retryOn as above.
			m.DefaultHttpRetryPolicy = &networking.HTTPRetry{Attempts: 2, RetryOn: retryOn123}
		} else {
			m.DefaultHttpRetryPolicy = retry123(m.DefaultHttpRetryPolicy)
		}
	}
	return m
}

// istioConfigs parses the YAML with Istio's own parser, as istioctl and the
// test harness do, and checks that every document came through.
func istioConfigs(yamlText string, want int) ([]config.Config, error) {
	if want == 0 {
		return nil, nil
	}
	cfgs, unknown, err := crd.ParseInputs(yamlText)
	if err != nil {
		return nil, err
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("Istio does not know the kinds %v", unknown)
	}
	// A missing "---" would silently merge two documents into one.
	if len(cfgs) != want {
		return nil, fmt.Errorf("Istio parsed %d resources, want %d", len(cfgs), want)
	}
	t0 := configTime
	for i := range cfgs {
		// Parsed configs get no Domain, and without it a short host such
		// as "payment" silently resolves to nothing.
		cfgs[i].Domain = istionames.ClusterDomain
		if cfgs[i].Namespace == "" {
			cfgs[i].Namespace = "default"
		}
		// One creation time for all: Istio then orders by name, as meshbench does.
		cfgs[i].CreationTimestamp = t0
	}
	return cfgs, nil
}

// istioSide runs Istio's translator (a fake istiod: Kubernetes registry,
// config store, push context, xDS generators) over the registry and config
// and returns the xDS it builds for the sidecar of pod.
func istioSide(t *testing.T, reg *registry.Registry, cfgs []config.Config, cfg meshconfig.Config, pod *registry.Pod) Side {
	settings := cfg.Mesh
	t.Helper()
	objs, err := kubeObjects(reg)
	if err != nil {
		t.Fatal(err)
	}
	// Gateway API routes are Kubernetes objects to istiod: its gateway
	// controller reads them from the API server (as Istio's own
	// sidecar_simulation_test.go feeds HTTPRoutes), with the creation time
	// of the other configs, so that it orders them by name as meshbench does.
	objs = append(objs, gatewayRoutes(cfg)...)
	if tracingConfigured(cfg) {
		objs = append(objs, collectorObjects(collector)...)
	}
	// The mesh's access log is cached across pushes in a package variable
	// until the mesh config changes (accesslog.go cachedMeshConfigAccessLog):
	// each case is a new mesh config, as istiod's MeshConfigChanged says.
	istiocore.NewConfigGenerator(nil).MeshConfigChanged(nil)
	s := xdsfake.NewFakeDiscoveryServer(t, xdsfake.FakeOptions{
		KubernetesObjects: objs,
		Configs:           cfgs,
		MeshConfig:        istioMeshConfig(settings),
	})
	p := s.SetupProxy(injectedProxy(model.SidecarProxy, pod.Name+"."+pod.Namespace, pod.Namespace, pod.IP, pod.Labels, pod.Workload, pod.ServiceAccount))
	listeners := s.Listeners(p)
	return Side{
		Clusters:  s.Clusters(p),
		Endpoints: s.Endpoints(p),
		Listeners: listeners,
		Routes:    s.RoutesFromListeners(p, listeners),
	}
}

// injectedProxy is a proxy as Istio's injector makes it: the pod's labels
// with the canonical service labels, and the mesh and cluster IDs
// (injection-template.yaml).
func injectedProxy(typ model.NodeType, id, ns string, ip netip.Addr, podLabels map[string]string, workload, serviceAccount string) *model.Proxy {
	labels := xdsgen.InjectedLabels(podLabels, workload)
	return &model.Proxy{
		Type:            typ,
		ID:              id,
		ConfigNamespace: ns,
		DNSDomain:       ns + ".svc." + istionames.ClusterDomain,
		IPAddresses:     []string{ip.String()},
		Labels:          labels,
		Metadata: &model.NodeMetadata{
			IstioVersion:   IstioVersion,
			Namespace:      ns,
			Labels:         labels,
			MeshID:         xdsgen.MeshID,
			ClusterID:      constants.DefaultClusterName,
			ServiceAccount: serviceAccount,
			WorkloadName:   workload,
		},
	}
}

// kubeYAML renders the Kubernetes objects for a failure report.
func kubeYAML(objs []runtime.Object) string {
	var docs []string
	for _, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			docs = append(docs, "# "+err.Error()+"\n")
			continue
		}
		docs = append(docs, string(b))
	}
	return strings.Join(docs, "---\n")
}

// appProtocol is a Service port's appProtocol: nil when unset.
func appProtocol(p string) *string {
	if p == "" {
		return nil
	}
	return &p
}

// configTime is the creation time the oracle gives every config, so that
// Istio orders them by name, as meshbench does.
var configTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// gatewayRoutes are the scenario's HTTPRoutes and GRPCRoutes as the API
// server would hold them: copies with the oracle's creation time.
func gatewayRoutes(cfg meshconfig.Config) []runtime.Object {
	var out []runtime.Object
	for _, r := range cfg.HTTPRoutes {
		c := r.DeepCopy()
		c.CreationTimestamp = metav1.NewTime(configTime)
		out = append(out, c)
	}
	for _, r := range cfg.GRPCRoutes {
		c := r.DeepCopy()
		c.CreationTimestamp = metav1.NewTime(configTime)
		out = append(out, c)
	}
	return out
}
