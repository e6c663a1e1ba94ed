package kind

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// podWatch keeps the mesh's pods and the ingress gateway's in client-go
// informer caches, fed by one watch each, for what asks for them every
// second: the reaction sampler wants every proxy's stats endpoint once a
// second, and listing the pods through the API server each time put a
// second API request on a node already short of CPU while faults played
// (a control-plane outage on kind failed with the sampler on and passed
// with it off). A pod a fault kills, and the one that replaces it, reach
// the cache as watch events.
type podWatch struct {
	mesh, gateway         informers.SharedInformerFactory
	meshPods, gatewayPods listerscorev1.PodNamespaceLister
	cancel                context.CancelFunc
}

// startPodWatch starts the watches and returns once both caches hold what
// the API server has; ctx bounds only the wait.
func startPodWatch(ctx context.Context, kube kubernetes.Interface, namespace string) (*podWatch, error) {
	run, cancel := context.WithCancel(context.Background())
	w := &podWatch{
		cancel: cancel,
		mesh:   informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(namespace)),
		gateway: informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(istioNamespace),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = "istio=ingressgateway" })),
	}
	mp, gp := w.mesh.Core().V1().Pods(), w.gateway.Core().V1().Pods()
	synced := []cache.InformerSynced{mp.Informer().HasSynced, gp.Informer().HasSynced}
	w.meshPods, w.gatewayPods = mp.Lister().Pods(namespace), gp.Lister().Pods(istioNamespace)
	w.mesh.Start(run.Done())
	w.gateway.Start(run.Done())
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		w.stop()
		return nil, fmt.Errorf("watching pods: %w", context.Cause(ctx))
	}
	return w, nil
}

// stop ends the watches and waits for their goroutines.
func (w *podWatch) stop() {
	w.cancel()
	w.mesh.Shutdown()
	w.gateway.Shutdown()
}

// pods are the mesh namespace's pods as the cache has them.
func (w *podWatch) pods() ([]corev1.Pod, error) {
	ps, err := w.meshPods.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	out := make([]corev1.Pod, len(ps))
	for i, p := range ps {
		out[i] = *p
	}
	return out, nil
}

// gateways are the names of the running ingress gateway pods.
func (w *podWatch) gateways() ([]string, error) {
	ps, err := w.gatewayPods.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range ps {
		if running(p) {
			out = append(out, p.Name)
		}
	}
	return out, nil
}
