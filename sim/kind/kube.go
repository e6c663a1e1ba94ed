package kind

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/runtime"
)

// Kube is the kube runtime: a scenario's mesh in an existing cluster that
// already runs Istio (istiod in istio-system, istio-ingressgateway), in a
// namespace of its own (meshbench-<run>) that Stop deletes. The proxies are
// the cluster's own, real Envoy where Istio runs it. The cluster's Istio is
// left as it is: a scenario that needs other mesh-wide settings, or puts a
// resource in another namespace, is refused before anything is made.
type Kube struct {
	// Kubeconfig is the kubeconfig file; empty: $KUBECONFIG, then
	// ~/.kube/config, as kubectl reads them.
	Kubeconfig string
	// Context is the kubeconfig context; empty: its current one.
	Context string
	// AppImage holds the static meshbench binary at /meshbench, in a
	// registry (or node cache) the cluster's nodes pull from.
	AppImage string
	// Entry is the ingress gateway's URL where this machine reaches it
	// directly (a LoadBalancer address, a node port): the load then goes
	// there rather than through a port forward, whose relay through the API
	// server and the kubelet adds its own stalls to the latency measured.
	// Empty: a port forward to the gateway pod.
	Entry string
	// Log receives the runtime's progress.
	Log *slog.Logger
}

// Name implements runtime.Runtime.
func (Kube) Name() string { return "kube" }

// DataPlane implements runtime.Runtime: whatever the cluster's Istio injects.
func (Kube) DataPlane() string { return "istio-proxy" }

// StartLimit implements runtime.StartLimiter: pods are pulled and scheduled
// by a cluster we do not size.
func (Kube) StartLimit() time.Duration { return 8 * time.Minute }

// Warmup is the kind runtime's (Runtime.Warmup).
func (Kube) Warmup() time.Duration { return clusterWarmup }

// MaxRate implements runtime.RateLimiter: through a port forward (the API
// server and the kubelet relay every byte) 100/s, measured on the kind
// cluster here; through a direct Entry the kind runtime's own figure.
func (k Kube) MaxRate() float64 {
	if k.Entry != "" {
		return Runtime{}.MaxRate()
	}
	return 100
}

// RESTConfig reads the kubeconfig as kubectl does.
func (k Kube) RESTConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if k.Kubeconfig != "" {
		rules.ExplicitPath = k.Kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: k.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return cfg, nil
}

// Start implements runtime.Runtime.
func (k Kube) Start(ctx context.Context, spec runtime.Spec) (runtime.Mesh, error) {
	m, err := k.start(ctx, spec)
	if err != nil {
		if m != nil {
			_ = m.Stop(context.Background())
		}
		return nil, err
	}
	return m, nil
}

func (k Kube) start(ctx context.Context, spec runtime.Spec) (*Mesh, error) {
	log := spec.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if k.AppImage == "" {
		return nil, errors.New("the kube runtime needs the app image (-image): the static meshbench binary at /meshbench, pullable by the cluster's nodes")
	}
	if err := checkEntry(k.Entry); err != nil {
		return nil, err
	}
	if err := unsupportedTopology(spec.Topology); err != nil {
		return nil, err
	}
	ns := ClusterPrefix + runID()
	if err := unsupportedTracing(spec.Config); err != nil {
		return nil, err
	}
	if err := kubeRefusals(spec, ns); err != nil {
		return nil, err
	}
	cfg, err := k.RESTConfig()
	if err != nil {
		return nil, err
	}
	if len(spec.Config.HTTPRoutes)+len(spec.Config.GRPCRoutes) > 0 {
		// Their parentRefs and backendRefs name the scenario's namespace,
		// which the run's own namespace replaces; not rewritten yet.
		return nil, errors.New("the kube runtime does not support Gateway API routes (HTTPRoute, GRPCRoute) yet; use -runtime kind or local")
	}
	t0 := time.Now()
	// What named the scenario's namespace now names the run's.
	home := spec.Topology.Namespace
	spec.Config = spec.Config.DeepCopy()
	for _, r := range spec.Config.VirtualServices {
		r.Namespace = rehome(r.Namespace, home)
	}
	for _, r := range spec.Config.DestinationRules {
		r.Namespace = rehome(r.Namespace, home)
	}
	for _, r := range spec.Config.Gateways {
		r.Namespace = rehome(r.Namespace, home)
	}
	for _, r := range spec.Config.PeerAuthentications {
		r.Namespace = rehome(r.Namespace, home)
	}
	for _, r := range spec.Config.AuthorizationPolicies {
		r.Namespace = rehome(r.Namespace, home)
	}
	spec.Topology.Namespace = ns
	next := netip.MustParseAddr("192.0.2.0")
	reg, err := registry.New(spec.Topology, func() (netip.Addr, error) { next = next.Next(); return next, nil })
	if err != nil {
		return nil, err
	}
	m := &Mesh{name: "kube", gatewayNS: ns, log: log, reg: reg}
	if err := m.connectTo(cfg); err != nil {
		return nil, err
	}
	if _, err := m.kube.AppsV1().Deployments(istioNamespace).Get(ctx, "istiod", metav1.GetOptions{}); err != nil {
		return nil, fmt.Errorf("the kube runtime needs a cluster running Istio (a Deployment istiod in %s): %w", istioNamespace, err)
	}
	// Asked with an Entry too: a cluster without a running gateway is
	// refused before anything is made there.
	gw, port, err := m.gatewayPod(ctx)
	if err != nil {
		return nil, err
	}
	log.Info("kube: deploying", "namespace", ns, "server", cfg.Host)
	m.ownNamespace = true
	if k.Entry != "" {
		m.entry = strings.TrimSuffix(k.Entry, "/")
	} else {
		if m.forward, err = startPortForward(cfg, m.kube, istioNamespace, gw, port); err != nil {
			return m, err
		}
		m.entry = "http://" + m.forward.addr
	}
	return m, m.deployTopology(ctx, spec, k.AppImage, "IfNotPresent", t0)
}

// checkEntry refuses an Entry the load cannot be sent to.
func checkEntry(entry string) error {
	if entry == "" {
		return nil
	}
	u, err := url.Parse(entry)
	if err != nil || u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("the gateway entry %q is not an http://HOST:PORT URL", entry)
	}
	return nil
}

// kubeRefusals says what of a scenario the kube runtime will not do to a
// cluster it does not own; nothing has been made when it says so.
func kubeRefusals(spec runtime.Spec, ns string) error {
	var errs []error
	if spec.Config.Mesh != (meshconfig.MeshSettings{}) {
		errs = append(errs, errors.New("the scenario sets mesh-wide settings (meshConfig); the kube runtime leaves the cluster's Istio as it is"))
	}
	home := spec.Topology.Namespace
	if home == "" {
		home = "default"
	}
	for _, r := range resourcesOf(spec.Config) {
		at := r.kind + " " + r.name
		if o := spec.Config.Origin[meshconfig.Key(r.kind, r.ns, r.name)]; o != "" {
			at = o + ": " + at
		}
		if r.ns != "" && r.ns != home {
			errs = append(errs, fmt.Errorf("%s is in namespace %s: the kube runtime applies resources only in its own namespace (%s)", at, r.ns, ns))
			continue
		}
		raw, _ := json.Marshal(r.spec)
		if namesNamespace(string(raw), home) {
			errs = append(errs, fmt.Errorf("%s names namespace %s (a principal, host or namespace list): the kube runtime runs the topology in a namespace of its own (%s) and does not rewrite what a resource says", at, home, ns))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w on the kube runtime: %w", runtime.ErrUnsupported, errors.Join(errs...))
	}
	return nil
}

// rehome maps the scenario's own namespace to "" (the run's).
func rehome(ns, home string) string {
	if ns == home {
		return ""
	}
	return ns
}

type resource struct {
	kind, name, ns string
	spec           any
}

func resourcesOf(c meshconfig.Config) []resource {
	var out []resource
	for _, r := range c.VirtualServices {
		out = append(out, resource{"VirtualService", r.Name, r.Namespace, &r.Spec})
	}
	for _, r := range c.DestinationRules {
		out = append(out, resource{"DestinationRule", r.Name, r.Namespace, &r.Spec})
	}
	for _, r := range c.Gateways {
		out = append(out, resource{"Gateway", r.Name, r.Namespace, &r.Spec})
	}
	for _, r := range c.PeerAuthentications {
		out = append(out, resource{"PeerAuthentication", r.Name, r.Namespace, &r.Spec})
	}
	for _, r := range c.AuthorizationPolicies {
		out = append(out, resource{"AuthorizationPolicy", r.Name, r.Namespace, &r.Spec})
	}
	return out
}

// namesNamespace reports whether a resource's JSON spells namespace ns in
// an identity (…/ns/NS/…), a host (name.NS, name.NS.svc…) or a namespace
// list.
func namesNamespace(spec, ns string) bool {
	return strings.Contains(spec, "/ns/"+ns+"/") || strings.Contains(spec, "."+ns+`"`) ||
		strings.Contains(spec, "."+ns+".svc") || strings.Contains(spec, `"`+ns+`"`)
}

// gatewayPod is a running istio-ingressgateway pod and the container port
// behind its Service's port 80.
func (m *Mesh) gatewayPod(ctx context.Context) (string, int, error) {
	svc, err := m.kube.CoreV1().Services(istioNamespace).Get(ctx, "istio-ingressgateway", metav1.GetOptions{})
	if err != nil {
		return "", 0, fmt.Errorf("the kube runtime sends the load through istio-ingressgateway in %s: %w", istioNamespace, err)
	}
	port := 0
	for _, p := range svc.Spec.Ports {
		if p.Port == 80 {
			port = p.TargetPort.IntValue()
		}
	}
	if port == 0 {
		return "", 0, fmt.Errorf("service istio-ingressgateway has no port 80 with a numeric targetPort")
	}
	list, err := m.kube.CoreV1().Pods(istioNamespace).List(ctx, metav1.ListOptions{LabelSelector: "istio=ingressgateway"})
	if err != nil {
		return "", 0, err
	}
	for _, p := range list.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && podReady(&p) {
			return p.Name, port, nil
		}
	}
	return "", 0, fmt.Errorf("istio-ingressgateway has no ready pod")
}

// deleteNamespace deletes the run's namespace and waits until it is gone:
// its pods, Services and Istio resources with it.
func (m *Mesh) deleteNamespace(ctx context.Context) error {
	if !m.ownNamespace {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	ns := m.reg.Namespace
	err := m.kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete namespace %s: %w", ns, err)
	}
	for {
		if _, err := m.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s still terminating after 2m", ns)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// portForward relays 127.0.0.1:<port> to a pod's port through the API
// server, as `kubectl port-forward` does (client-go's portforward).
type portForward struct {
	addr string
	stop chan struct{}
	done chan struct{}
}

func startPortForward(cfg *rest.Config, kube kubernetes.Interface, ns, pod string, port int) (*portForward, error) {
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return nil, err
	}
	req := kube.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Name(pod).SubResource("portforward")
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, req.URL())
	pf := &portForward{stop: make(chan struct{}), done: make(chan struct{})}
	ready := make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)}, pf.stop, ready, io.Discard, io.Discard)
	if err != nil {
		return nil, err
	}
	errc := make(chan error, 1)
	go func() {
		defer close(pf.done)
		errc <- fw.ForwardPorts()
	}()
	select {
	case <-ready:
	case err := <-errc:
		return nil, fmt.Errorf("port-forward to %s/%s:%d: %w", ns, pod, port, err)
	case <-time.After(30 * time.Second):
		close(pf.stop)
		return nil, fmt.Errorf("port-forward to %s/%s:%d: not ready after 30s", ns, pod, port)
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) == 0 {
		close(pf.stop)
		return nil, fmt.Errorf("port-forward to %s/%s:%d: %v", ns, pod, port, err)
	}
	pf.addr = fmt.Sprintf("127.0.0.1:%d", ports[0].Local)
	return pf, nil
}

func (p *portForward) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}
