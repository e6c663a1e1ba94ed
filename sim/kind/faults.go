package kind

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshbench/meshbench/sim/controlplane"
	"github.com/meshbench/meshbench/sim/runtime"
)

// The hooks package chaos builds its faults on, with Kubernetes' own
// mechanisms: containerd kills and freezes a pod's containers in the node,
// the kubelet restarts them and reports the pod not ready, the
// EndpointSlice controller and istiod take the endpoint out; istiod is
// scaled to zero for an xDS outage; packets are dropped in the pod's
// network namespace.
var (
	_ runtime.FaultInjector = (*Mesh)(nil)
	_ runtime.PacketDropper = (*Mesh)(nil)
	_ runtime.Mechanisms    = (*Mesh)(nil)
)

// faultLimit bounds each Kubernetes operation a fault waits on.
const faultLimit = 2 * time.Minute

// node runs a command in the cluster's node container and returns its
// standard output.
func (m *Mesh) node(ctx context.Context, stdin string, args ...string) (string, error) {
	if m.cluster == nil {
		return "", fmt.Errorf("%s: %w on the %s runtime: it needs the node's containerd, which only a cluster of its own (kind) gives", args[0], runtime.ErrUnsupported, m.name)
	}
	ns, err := m.cluster.provider.ListInternalNodes(m.cluster.name)
	if err != nil {
		return "", err
	}
	if len(ns) == 0 {
		return "", fmt.Errorf("kind cluster %s has no node", m.cluster.name)
	}
	var stdout, stderr bytes.Buffer
	cmd := ns[0].CommandContext(ctx, args[0], args[1:]...).SetStdout(&stdout).SetStderr(&stderr)
	if stdin != "" {
		cmd.SetStdin(strings.NewReader(stdin))
	}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s in node %s: %w: %s", strings.Join(args, " "), m.cluster.nodeContainer(), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// containerds lists the containerd ids of a pod's running containers.
func containerIDs(p *corev1.Pod) ([]string, error) {
	var ids []string
	for _, c := range append(append([]corev1.Container(nil), p.Spec.InitContainers...), p.Spec.Containers...) {
		if c.Name == "istio-init" || c.Name == "istio-validation" {
			continue // run to completion before the pod starts
		}
		id, err := containerID(p, c.Name)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// CrashPod implements runtime.FaultInjector: containerd SIGKILLs the pod's
// app and istio-proxy in the node, as a crash kills them. The kubelet sees
// them die, reports the pod not ready (the EndpointSlice controller and
// istiod then take its endpoint out) and restarts them in the same pod:
// same name, address and identity.
func (m *Mesh) CrashPod(ctx context.Context, name string) error {
	p, err := m.pod(ctx, name)
	if err != nil {
		return err
	}
	ids, err := containerIDs(p)
	if err != nil {
		return err
	}
	m.faultMu.Lock()
	if m.crashed == nil {
		m.crashed = map[string]int32{}
	}
	m.crashed[name] = restarts(p)
	m.faultMu.Unlock()
	for _, id := range ids {
		if _, err := m.node(ctx, "", "ctr", "--namespace=k8s.io", "task", "kill", "--signal", "SIGKILL", id); err != nil {
			return err
		}
	}
	return nil
}

// SetPodReady implements runtime.FaultInjector. On Kubernetes the kubelet
// decides readiness: it reports a crashed pod not ready as soon as it sees
// its containers dead, and ready when their probes pass again. Nothing is
// done here; Mechanism("kill") says so in the fault's record.
func (m *Mesh) SetPodReady(ctx context.Context, name string, ready bool) error {
	_, err := m.pod(ctx, name)
	return err
}

// RestartPod implements runtime.Mesh: the kubelet restarts a crashed pod's
// containers by itself; this waits until it has and the pod is ready.
func (m *Mesh) RestartPod(ctx context.Context, name string) error {
	m.faultMu.Lock()
	before, ok := m.crashed[name]
	m.faultMu.Unlock()
	if !ok {
		return fmt.Errorf("restart %s: %w: only a pod CrashPod killed comes back by name (a Deployment replaces a deleted pod under a new one)", name, runtime.ErrUnsupported)
	}
	ctx, cancel := context.WithTimeout(ctx, faultLimit)
	defer cancel()
	var last string
	for {
		p, err := m.pod(ctx, name)
		switch {
		case err != nil:
			last = err.Error()
		case restarts(p) > before && podReady(p):
			m.faultMu.Lock()
			delete(m.crashed, name)
			m.faultMu.Unlock()
			return nil
		default:
			last = fmt.Sprintf("restarts %d (were %d), ready %v", restarts(p), before, podReady(p))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pod %s not restarted by the kubelet after %s: %s", name, faultLimit, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// PausePod implements runtime.FaultInjector: containerd freezes the app's
// container (the cgroup freezer), as `docker pause` does. Its sidecar goes
// on; the kernel still accepts connections on the app's socket, so its
// tcpSocket readiness probe passes and nothing answers.
func (m *Mesh) PausePod(ctx context.Context, name string) error {
	return m.task(ctx, name, "pause")
}

// ResumePod implements runtime.FaultInjector.
func (m *Mesh) ResumePod(ctx context.Context, name string) error {
	return m.task(ctx, name, "resume")
}

func (m *Mesh) task(ctx context.Context, name, verb string) error {
	p, err := m.pod(ctx, name)
	if err != nil {
		return err
	}
	id, err := containerID(p, appContainer)
	if err != nil {
		return err
	}
	_, err = m.node(ctx, "", "ctr", "--namespace=k8s.io", "task", verb, id)
	return err
}

// SetAppBehaviour implements runtime.FaultInjector: the change goes to the
// app's behaviour endpoint on the pod's loopback, through `kubectl exec`.
func (m *Mesh) SetAppBehaviour(ctx context.Context, name string, b runtime.AppBehaviour) error {
	p, err := m.pod(ctx, name)
	if err != nil {
		return err
	}
	rp, ok := m.reg.Pod(name)
	if !ok {
		return fmt.Errorf("no pod %q in the topology", name)
	}
	svc, _ := m.reg.Service(rp.Service)
	var lat = svc.Versions[0].Latency
	var rate float64
	var status int
	for _, v := range svc.Versions {
		if v.Name == rp.Version {
			lat, rate, status = v.Latency, v.ErrorRate, v.ErrorStatus
		}
	}
	body, err := json.Marshal(controlplane.BehaviourOver(lat, rate, status, b))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err = m.exec(ctx, p.Namespace, p.Name, appContainer, "/meshbench", "appctl", "-admin", appAdmin, "-json", string(body))
	return err
}

// StopControlPlane implements runtime.FaultInjector: istiod is scaled to
// zero and this waits until its pod is gone. Proxies keep their config and
// pilot-agent keeps trying to reconnect.
func (m *Mesh) StopControlPlane(ctx context.Context) error {
	if err := m.scaleIstiod(ctx, 0); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, faultLimit)
	defer cancel()
	for {
		list, err := m.kube.CoreV1().Pods(istioNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=istiod"})
		if err == nil && len(list.Items) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("istiod's pod still there %s after scaling it to 0", faultLimit)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// StartControlPlane implements runtime.FaultInjector: istiod is scaled back
// to one replica and this waits until it is available.
func (m *Mesh) StartControlPlane(ctx context.Context) error {
	if err := m.scaleIstiod(ctx, 1); err != nil {
		return err
	}
	return m.waitDeployment(ctx, istioNamespace, "istiod", faultLimit)
}

func (m *Mesh) scaleIstiod(ctx context.Context, replicas int) error {
	patch := []byte(`{"spec":{"replicas":` + strconv.Itoa(replicas) + `}}`)
	_, err := m.kube.AppsV1().Deployments(istioNamespace).Patch(ctx, "istiod", types.MergePatchType, patch, metav1.PatchOptions{}, "scale")
	if err != nil {
		return fmt.Errorf("scale istiod to %d: %w", replicas, err)
	}
	return nil
}

// errNoRedirect is why network faults other than packet drops are refused.
var errNoRedirect = fmt.Errorf("%w: on kind, EDS is istiod's, from Kubernetes' EndpointSlices, and cannot send a pod's callers to a fault proxy; network latency, bandwidth, resets and slow closes need a traffic-control qdisc (tc netem), which this kernel lacks; blackhole and partition faults work (packet drops in the pod's network namespace)", runtime.ErrUnsupported)

// InboundAddr implements runtime.FaultInjector: refused, see errNoRedirect.
func (m *Mesh) InboundAddr(name string) (string, error) { return "", errNoRedirect }

// RedirectInbound implements runtime.FaultInjector: refused, see errNoRedirect.
func (m *Mesh) RedirectInbound(ctx context.Context, name string, from []string, addr string) error {
	if addr == "" {
		return nil // nothing was redirected
	}
	return errNoRedirect
}

// DropInbound implements runtime.PacketDropper: an nftables table in the
// pod's network namespace drops the TCP packets that reach its port from
// the pods in from (from anywhere when from is empty), at the prerouting
// hook with the raw priority, before istio-init's redirect to the sidecar.
// It is put there from the node (nsenter into the app container's
// namespace), as a node's agent would.
func (m *Mesh) DropInbound(ctx context.Context, name string, from []string) (func(context.Context) error, error) {
	p, err := m.pod(ctx, name)
	if err != nil {
		return nil, err
	}
	rp, ok := m.reg.Pod(name)
	if !ok {
		return nil, fmt.Errorf("no pod %q in the topology", name)
	}
	var srcs []string
	for _, f := range from {
		ip, err := m.podIP(ctx, f)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, ip)
	}
	pid, err := m.netnsPID(ctx, p)
	if err != nil {
		return nil, err
	}
	m.faultMu.Lock()
	m.drops++
	table := "meshbench_drop_" + strconv.Itoa(m.drops)
	m.faultMu.Unlock()
	rule := "tcp dport " + strconv.Itoa(rp.Port) + " drop"
	if len(srcs) > 0 {
		rule = "ip saddr { " + strings.Join(srcs, ", ") + " } " + rule
	}
	ruleset := "table inet " + table + " {\n chain prerouting {\n  type filter hook prerouting priority raw; policy accept;\n  " + rule + "\n }\n}\n"
	if _, err := m.node(ctx, ruleset, "nsenter", "--target", pid, "--net", "nft", "-f", "-"); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		_, err := m.node(ctx, "", "nsenter", "--target", pid, "--net", "nft", "delete", "table", "inet", table)
		if err != nil && m.pidGone(ctx, pid) {
			return nil // the pod's containers restarted meanwhile: a fresh namespace has no rule
		}
		return err
	}, nil
}

// podIP is the address of a topology pod, or of the ingress gateway.
func (m *Mesh) podIP(ctx context.Context, name string) (string, error) {
	if name == "istio-ingressgateway" {
		list, err := m.kube.CoreV1().Pods(istioNamespace).List(ctx, metav1.ListOptions{LabelSelector: "istio=ingressgateway"})
		if err != nil {
			return "", err
		}
		for _, p := range list.Items {
			if p.Status.PodIP != "" && p.DeletionTimestamp == nil {
				return p.Status.PodIP, nil
			}
		}
		return "", fmt.Errorf("istio-ingressgateway has no running pod")
	}
	p, err := m.pod(ctx, name)
	if err != nil {
		return "", err
	}
	if p.Status.PodIP == "" {
		return "", fmt.Errorf("pod %s has no address yet", name)
	}
	return p.Status.PodIP, nil
}

// netnsPID is the pid, in the node, of a process in the pod's network
// namespace: its app container's, from crictl.
func (m *Mesh) netnsPID(ctx context.Context, p *corev1.Pod) (string, error) {
	id, err := containerID(p, appContainer)
	if err != nil {
		return "", err
	}
	out, err := m.node(ctx, "", "crictl", "inspect", "--output", "json", id)
	if err != nil {
		return "", err
	}
	var st struct {
		Info struct {
			Pid int `json:"pid"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Info.Pid == 0 {
		return "", fmt.Errorf("crictl inspect %s: no pid (%v)", id, err)
	}
	return strconv.Itoa(st.Info.Pid), nil
}

func (m *Mesh) pidGone(ctx context.Context, pid string) bool {
	_, err := m.node(ctx, "", "test", "-e", "/proc/"+pid+"/ns/net")
	return err != nil
}

// Mechanism implements runtime.Mechanisms: how this runtime puts a fault
// kind in place, for the result's fault record.
func (m *Mesh) Mechanism(kind string) string {
	switch kind {
	case "kill", "restart":
		return "containerd SIGKILL of the pod's app and istio-proxy in the node (ctr task kill); the kubelet reports the pod not ready when it sees them dead and restarts them in the same pod (a notReadyAfter is not applied: the kubelet's own timing is)"
	case "pause":
		return "containerd freeze of the app's container in the node (ctr task pause, cgroup freezer)"
	case "blackhole", "partition":
		return "nftables drop rules in the pod's network namespace, from the node (nsenter)"
	case "latency", "bandwidth", "reset", "slowClose":
		return "refused: " + errNoRedirect.Error()
	case "appErrors", "appLatency":
		return "the app's behaviour endpoint on the pod's loopback, through kubectl exec"
	case "xdsOutage":
		return "istiod scaled to 0 replicas, then back to 1"
	case "configPush", "abort", "delay", "retries", "timeout":
		return "the Istio resources applied through the API server; istiod pushes"
	}
	return ""
}
