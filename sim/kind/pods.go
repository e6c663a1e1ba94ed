package kind

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// podNames gives the pods of a Deployment the registry's names
// (payment-v1-0, payment-v1-1, ...) so that a scenario names a pod the same
// on every runtime: a chaos target, a report row. A pod keeps its name for
// its life; a replacement takes the lowest ordinal no live pod holds.
type podNames struct {
	byKube map[string]string // Kubernetes pod name → registry name
}

// assign names the live pods of list (one namespace), dropping the names of
// pods that are gone, and returns registry name → pod.
func (n *podNames) assign(list []corev1.Pod) map[string]*corev1.Pod {
	if n.byKube == nil {
		n.byKube = map[string]string{}
	}
	live := map[string]bool{}
	for _, p := range list {
		live[p.Name] = true
	}
	taken := map[string]bool{}
	for k, name := range n.byKube {
		if !live[k] {
			delete(n.byKube, k)
			continue
		}
		taken[name] = true
	}
	// The oldest pods first: at start, ordinals follow creation.
	pods := append([]corev1.Pod(nil), list...)
	sort.Slice(pods, func(i, j int) bool {
		ti, tj := pods[i].CreationTimestamp, pods[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return pods[i].Name < pods[j].Name
	})
	out := map[string]*corev1.Pod{}
	for i := range pods {
		p := &pods[i]
		app, ver := p.Labels["app"], p.Labels["version"]
		if app == "" || ver == "" || p.DeletionTimestamp != nil {
			continue
		}
		name, ok := n.byKube[p.Name]
		if !ok {
			for ord := 0; ; ord++ {
				name = app + "-" + ver + "-" + strconv.Itoa(ord)
				if !taken[name] {
					break
				}
			}
			n.byKube[p.Name] = name
			taken[name] = true
		}
		out[name] = p
	}
	return out
}

// pods lists the topology's pods under their registry names.
func (m *Mesh) pods(ctx context.Context) (map[string]*corev1.Pod, error) {
	list, err := m.kube.CoreV1().Pods(m.reg.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	return m.named(list.Items), nil
}

// named gives list's pods their registry names.
func (m *Mesh) named(list []corev1.Pod) map[string]*corev1.Pod {
	m.namesMu.Lock()
	defer m.namesMu.Unlock()
	return m.names.assign(list)
}

// pod is one pod of the topology, by its registry name.
func (m *Mesh) pod(ctx context.Context, name string) (*corev1.Pod, error) {
	pods, err := m.pods(ctx)
	if err != nil {
		return nil, err
	}
	p, ok := pods[name]
	if !ok {
		return nil, fmt.Errorf("no pod %q in namespace %s", name, m.reg.Namespace)
	}
	return p, nil
}

// containerID is the containerd id of a pod's running container (an
// injected istio-proxy is a native sidecar: an init container that runs).
func containerID(p *corev1.Pod, container string) (string, error) {
	for _, s := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if s.Name != container {
			continue
		}
		if s.State.Running == nil {
			return "", fmt.Errorf("pod %s: container %s is not running", p.Name, container)
		}
		id, ok := strings.CutPrefix(s.ContainerID, "containerd://")
		if !ok {
			return "", fmt.Errorf("pod %s: container %s: id %q is not containerd's", p.Name, container, s.ContainerID)
		}
		return id, nil
	}
	return "", fmt.Errorf("pod %s has no container %s", p.Name, container)
}

// restarts is the sum of a pod's containers' restart counts.
func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, s := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		n += s.RestartCount
	}
	return n
}
