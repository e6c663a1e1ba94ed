// Package kind is the kind runtime: a scenario's mesh in a real Kubernetes
// cluster (kind, one node, built offline by `make kind-images`) with the
// real istiod. The user's Istio resources go through the real API server and
// istiod's validation, translation and push; Services, EndpointSlices,
// kube-proxy and DNS are Kubernetes' own. Each pod's proxy is Istio's own
// pilot-agent (injected by istiod's webhook into a namespace labelled
// istio-injection=enabled, with istio-init's iptables) running the builtin
// sidecar as its Envoy: the xDS it acts on is istiod's, unmodified.
package kind

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshbench/meshbench/sim/docker"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/runtime"
)

// configVersionAnnotation carries the config version on the Istio objects
// the runtime applies.
const configVersionAnnotation = "meshbench.io/config-version"

// ClusterPrefix starts the name of every cluster the runtime creates
// (meshbench-<run>); `meshbench down` deletes what carries it.
const ClusterPrefix = "meshbench-"

// Runtime is the kind runtime.
type Runtime struct {
	// Binary is the static meshbench executable the app and proxy images
	// hold; empty: this process's own executable.
	Binary string
	// Keep leaves the cluster running after Stop, for debugging.
	Keep bool
	// Cluster, when set, names a kind cluster an earlier run kept (Keep)
	// to run in instead of creating one: what earlier scenarios made there
	// is removed first, and the cluster is left running after Stop.
	Cluster string
	// session is set by a Session, whose cluster outlives each scenario.
	session bool
	// ClusterName is the name of the cluster to create; empty: meshbench-<random>.
	ClusterName string
	// Log receives kind's and the runtime's progress.
	Log *slog.Logger
}

// Name implements runtime.Runtime.
func (Runtime) Name() string { return "kind" }

// DataPlane implements runtime.Runtime: the builtin sidecar under pilot-agent.
func (Runtime) DataPlane() string { return "builtin" }

// StartLimit implements runtime.StartLimiter: a cluster, images, Istio and
// the pods take one to three minutes on two cores.
func (Runtime) StartLimit() time.Duration { return 8 * time.Minute }

// Warmup is a 3 s ramp: in a cluster every new connection is a handshake
// between two proxies under Istio's own agent, on nodes that share the
// machine's cores with the control plane. At a cold start under per-try
// timeouts of 100 ms, the tries that a handshake outlasts are cut, and
// with them the connection, so the pool never grows: the resilience
// folder's per-try check saw 35% success after a 1 s ramp, and 99% on the
// same mesh once warm (p50 70 ms).
func (Runtime) Warmup() time.Duration { return clusterWarmup }

// clusterWarmup is the warm-up's ramp on a cluster.
const clusterWarmup = 3 * time.Second

// MaxRate implements runtime.RateLimiter. Measured through the ingress
// gateway on the default topology (5 proxies, istiod and the control plane
// of Kubernetes on the one node, the load generator beside them, 2 cores):
// p99 75 ms at 100/s, 470 ms at 300/s, saturated at 500/s, about half of
// it kernel time (iptables redirection, conntrack, veth); 150/s stays well
// inside.
func (Runtime) MaxRate() float64 { return 150 }

// Available reports why the runtime cannot run here, or nil: it needs a
// Docker engine and the images of `make kind-images`.
func Available(ctx context.Context) error {
	if err := docker.Available(ctx); err != nil {
		return err
	}
	_, err := FindImages()
	return err
}

// Mesh is a mesh running in a Kubernetes cluster with Istio: a kind
// cluster of its own, or (the kube runtime) a namespace of its own in an
// existing cluster.
type Mesh struct {
	name    string // the runtime's
	log     *slog.Logger
	cluster *cluster // nil: not ours (kube)
	forward *portForward
	// gatewayNS holds the Gateway the load enters through.
	gatewayNS string
	// ownNamespace: Stop deletes the topology's namespace (kube).
	ownNamespace bool
	keep         bool
	// reused: the cluster is one an earlier run kept (Runtime.Cluster).
	reused bool
	// shared: the cluster is a Session's.
	shared  bool
	kube    kubernetes.Interface
	rest    *rest.Config
	apply   *applier
	reg     *registry.Registry
	entry   string
	metrics *metricsProxy
	watch   *podWatch // the pods, for MetricsEndpoints

	mu      sync.Mutex
	version int
	// appliedAt is when each version's Apply began.
	appliedAt map[string]time.Time
	applied   []*unstructured.Unstructured // the scenario's Istio objects in force
	stopped   bool

	namesMu sync.Mutex
	names   podNames

	faultMu sync.Mutex
	crashed map[string]int32 // pod → its containers' restarts when CrashPod killed them
	drops   int              // packet-drop faults made, for their table names
}

// Start implements runtime.Runtime.
func (r Runtime) Start(ctx context.Context, spec runtime.Spec) (runtime.Mesh, error) {
	m, err := r.start(ctx, spec)
	if err != nil {
		if m != nil {
			// -keep keeps a cluster that failed to come up too: that is
			// when one is looked at.
			_ = m.Stop(context.Background())
		}
		return nil, err
	}
	return m, nil
}

func (r Runtime) start(ctx context.Context, spec runtime.Spec) (*Mesh, error) {
	log := spec.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := unsupportedTopology(spec.Topology); err != nil {
		return nil, err
	}
	if err := unsupportedTracing(spec.Config); err != nil {
		return nil, err
	}
	im, err := FindImages()
	if err != nil {
		return nil, err
	}
	bin := r.Binary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w (make docker-engine starts one here): %w", docker.ErrNoEngine, err)
	}
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("%w (make docker-engine starts one here): %w", docker.ErrNoEngine, err)
	}
	apps, err := docker.EnsureImages(ctx, cli, bin)
	if err != nil {
		return nil, err
	}
	proxy, err := proxyImage(ctx, cli, im.Proxy, bin)
	if err != nil {
		return nil, err
	}
	// Kubernetes gives the pods their addresses; the registry's are
	// placeholders from TEST-NET-1 (RFC 5737) that nothing dials.
	next := netip.MustParseAddr("192.0.2.0")
	reg, err := registry.New(spec.Topology, func() (netip.Addr, error) { next = next.Next(); return next, nil })
	if err != nil {
		return nil, err
	}

	t0 := time.Now()
	logger := kindLogger{debugf: func(f string, a ...any) { log.Debug(fmt.Sprintf(f, a...)) }}
	var c *cluster
	if r.Cluster != "" {
		log.Info("kind: reusing cluster", "name", r.Cluster)
		c, err = openCluster(ctx, cli, r.Cluster, logger)
	} else {
		name := r.ClusterName
		if name == "" {
			name = NewClusterName()
		}
		log.Info("kind: creating cluster", "name", name, "node", im.Node)
		c, err = createCluster(ctx, cli, name, im, logger)
	}
	if err != nil {
		return nil, err
	}
	reused := r.Cluster != ""
	m := &Mesh{name: "kind", gatewayNS: istioNamespace, log: log, cluster: c, keep: r.Keep || reused, reused: reused, shared: r.session, reg: reg, entry: "http://" + c.ingress}
	log.Info("kind: cluster up", "name", c.name, "took", time.Since(t0).Round(time.Millisecond))
	kc, err := c.kubeconfig()
	if err != nil {
		return m, err
	}
	if err := m.connect([]byte(kc)); err != nil {
		return m, err
	}
	if reused {
		if err := m.clearScenario(ctx); err != nil {
			return m, err
		}
		log.Info("kind: the last scenario cleared", "took", time.Since(t0).Round(time.Millisecond))
	}
	if err := c.load(ctx, im.Istiod, proxy, apps.App); err != nil {
		// Another meshbench build's run prunes the app images it does not
		// use (docker.EnsureImages); build ours again and load once more.
		if apps, err = docker.EnsureImages(ctx, cli, bin); err != nil {
			return m, err
		}
		if err := c.load(ctx, im.Istiod, proxy, apps.App); err != nil {
			return m, err
		}
	}
	log.Info("kind: images loaded", "took", time.Since(t0).Round(time.Millisecond))
	if err := m.installIstio(ctx, im, proxy, spec.Config.Mesh); err != nil {
		return m, err
	}
	log.Info("kind: istiod ready", "took", time.Since(t0).Round(time.Millisecond))
	return m, m.deployTopology(ctx, spec, apps.App, "Never", t0)
}

// deployTopology puts a scenario's topology and Istio resources in the
// mesh's namespace (labelled for injection) and waits until every pod is
// ready and every proxy has ACKed istiod's config. pull is the app
// containers' imagePullPolicy.
func (m *Mesh) deployTopology(ctx context.Context, spec runtime.Spec, appImage, pull string, t0 time.Time) error {
	var err error
	ns := namespaceObj(m.reg.Namespace, true)
	markManaged(ns)
	if err = m.apply.apply(ctx, ns); err != nil {
		return err
	}
	if _, err = m.Apply(ctx, spec.Config); err != nil {
		return err
	}
	objs := topologyObjects(m.reg, appImage, pull, spec.Seed)
	for _, o := range objs {
		markManaged(o)
	}
	if err = m.deploy(ctx, objs); err != nil {
		return err
	}
	if err = m.waitPodsReady(ctx); err != nil {
		return err
	}
	m.log.Info(m.name+": pods ready", "took", time.Since(t0).Round(time.Millisecond))
	var since time.Time
	if m.reused {
		since = m.appliedAt["1"] // see WaitConverged
	}
	if err = m.waitSynced(ctx, since); err != nil {
		return err
	}
	if m.metrics, err = startMetricsProxy(m.kube); err != nil {
		return err
	}
	if m.watch, err = startPodWatch(ctx, m.kube, m.reg.Namespace); err != nil {
		return err
	}
	m.log.Info(m.name+": mesh converged", "took", time.Since(t0).Round(time.Millisecond), "entry", m.entry)
	return nil
}

// NewClusterName is a name for a cluster of the runtime's own,
// meshbench-<six random hex digits>.
func NewClusterName() string { return ClusterPrefix + runID() }

// unsupportedTopology says what of a topology a cluster cannot give, before
// anything is made: a pod's certificate is the one pilot-agent gets from
// istiod's CA for the pod's service account, so a foreign or expired one
// (topology cert) cannot be handed to it.
func unsupportedTopology(t registry.Topology) error {
	for _, s := range t.Services {
		for _, v := range s.Versions {
			if v.Cert != "" {
				return fmt.Errorf("%s %s: a %s certificate (cert) is %w on %s: pilot-agent gets every pod's certificate from istiod's CA", s.Name, v.Name, v.Cert, runtime.ErrUnsupported, "a Kubernetes cluster")
			}
		}
	}
	return nil
}

// unsupportedTracing refuses Telemetry resources and meshConfig tracing:
// istiod would act on them, but the cluster runs no collector for the
// spans and none would reach the run folder (the local runtime serves one).
func unsupportedTracing(c meshconfig.Config) error {
	if len(c.Telemetries) > 0 {
		return fmt.Errorf("tracing by Telemetry resources is %w on a Kubernetes cluster yet: no trace collector runs there", runtime.ErrUnsupported)
	}
	if c.Mesh.Tracing != nil {
		return fmt.Errorf("meshConfig tracing is %w on a Kubernetes cluster yet: no trace collector runs there", runtime.ErrUnsupported)
	}
	return nil
}

// runID is six random hex digits: clusters of concurrent runs never collide.
func runID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (m *Mesh) connect(kubeconfig []byte) error {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return err
	}
	return m.connectTo(cfg)
}

func (m *Mesh) connectTo(cfg *rest.Config) error {
	var err error
	cfg.QPS, cfg.Burst = 50, 100
	m.rest = cfg
	if m.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	m.apply = newApplier(dyn, m.kube.Discovery())
	return nil
}

// Entry implements runtime.Mesh: istio-ingressgateway through the node port
// kind maps to 127.0.0.1.
func (m *Mesh) Entry() runtime.Entry { return runtime.Entry{URL: m.entry} }

// Cluster is the kind cluster's name ("" on an existing cluster).
func (m *Mesh) Cluster() string {
	if m.cluster == nil {
		return ""
	}
	return m.cluster.name
}

// Dynamic is a client of the cluster's API server for any kind.
func (m *Mesh) Dynamic() dynamic.Interface { return m.apply.dyn }

// Kube is a client of the cluster's API server.
func (m *Mesh) Kube() kubernetes.Interface { return m.kube }

// Apply implements runtime.Mesh: the resources go through the API server
// (and istiod's validating webhook), the ones of the last Apply that are
// gone are deleted. An error is the API server's refusal, as it says it.
func (m *Mesh) Apply(ctx context.Context, cfg meshconfig.Config) (string, error) {
	objs, err := istioObjects(cfg, m.reg, m.gatewayNS)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Each version is stamped on every object, so that an Apply of the
	// config in force (a chaos configPush, the push after an outage) is a
	// change istiod pushes, as a new version is on the other runtimes.
	v := fmt.Sprint(m.version + 1)
	for _, o := range objs {
		o.SetAnnotations(map[string]string{configVersionAnnotation: v})
		markManaged(o)
	}
	// istiod's pushes after this instant carry the change (it debounces
	// config events, then pushes to every proxy it affects).
	now := time.Now()
	for _, o := range objs {
		if err := m.apply.apply(ctx, o); err != nil {
			return "", fmt.Errorf("the API server refused %w", err)
		}
	}
	keep := map[string]bool{}
	for _, o := range objs {
		keep[o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName()] = true
	}
	for _, o := range m.applied {
		if !keep[o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName()] {
			if err := m.apply.delete(ctx, o); err != nil {
				return "", err
			}
		}
	}
	m.applied = objs
	m.version++
	if m.appliedAt == nil {
		m.appliedAt = map[string]time.Time{}
	}
	m.appliedAt[v] = now
	return v, nil
}

// Version implements runtime.Mesh.
func (m *Mesh) Version() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprint(m.version)
}

// WaitConverged implements runtime.Mesh: every proxy connected to istiod
// has had a push since the Apply of version and ACKed all istiod sent it;
// a NACK fails with the proxy's reason. With no Sidecar resources every
// change reaches every proxy, so each must see a push.
func (m *Mesh) WaitConverged(ctx context.Context, version string) error {
	m.mu.Lock()
	since := m.appliedAt[version]
	first := version == "1"
	m.mu.Unlock()
	if first && !m.reused {
		// The first config went in before the pods existed. In a reused
		// cluster the gateway was there, serving the last scenario's
		// routes: it must have had a push since.
		since = time.Time{}
	}
	return m.waitSynced(ctx, since)
}

// Pods implements runtime.Mesh, under the registry's pod names.
func (m *Mesh) Pods() []runtime.Pod {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods, err := m.pods(ctx)
	if err != nil {
		m.log.Warn("kind: listing pods", "err", err)
		return nil
	}
	var out []runtime.Pod
	for name, p := range pods {
		out = append(out, runtime.Pod{Name: name, Service: p.Labels["app"], Version: p.Labels["version"], IP: p.Status.PodIP, Ready: podReady(p)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// KillPod implements runtime.Mesh: the pod is deleted with no grace period;
// its Deployment makes a new one, which takes the name back.
func (m *Mesh) KillPod(ctx context.Context, name string) error {
	p, err := m.pod(ctx, name)
	if err != nil {
		return err
	}
	zero := int64(0)
	return m.kube.CoreV1().Pods(m.reg.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
}

// MetricsEndpoints implements runtime.Mesh: every proxy's Prometheus
// endpoint (15090), through the API server's pod proxy.
func (m *Mesh) MetricsEndpoints() map[string]string {
	out := map[string]string{}
	if m.metrics == nil || m.watch == nil {
		return out
	}
	list, err := m.watch.pods()
	if err != nil {
		m.log.Warn("kind: listing pods", "err", err)
	}
	for name, p := range m.named(list) {
		if hasProxy(p) && p.Status.Phase == corev1.PodRunning {
			out[name] = m.metrics.url(p.Namespace, p.Name)
		}
	}
	gws, err := m.watch.gateways()
	if err != nil {
		m.log.Warn("kind: listing pods", "err", err)
		return out
	}
	for _, gw := range gws {
		out["istio-ingressgateway"] = m.metrics.url(istioNamespace, gw)
	}
	return out
}

// hasProxy reports whether a pod runs istio-proxy (injected, or the gateway).
func hasProxy(p *corev1.Pod) bool {
	for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
		if c.Name == "istio-proxy" {
			return true
		}
	}
	return false
}

// Stop implements runtime.Mesh: the cluster and its network are deleted,
// unless Keep asked to leave them.
func (m *Mesh) Stop(ctx context.Context) error {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return nil
	}
	m.stopped = true
	m.mu.Unlock()
	if m.watch != nil {
		m.watch.stop()
	}
	if m.metrics != nil {
		m.metrics.close()
	}
	if m.forward != nil {
		m.forward.close()
	}
	if m.cluster == nil {
		return m.deleteNamespace(ctx)
	}
	if m.keep {
		if m.shared {
			return nil // the session deletes it after its last scenario
		}
		m.log.Warn("kind: cluster kept", "name", m.cluster.name, "kubeconfig", "kind get kubeconfig --name "+m.cluster.name)
		return nil
	}
	return m.cluster.delete(ctx)
}
