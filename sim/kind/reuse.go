package kind

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
)

// managedLabel marks every object a run puts in a cluster for its scenario
// (namespaces, workloads, Istio resources), so that the next run in a
// reused cluster finds and removes them before it deploys its own.
const managedLabel = "app.kubernetes.io/managed-by"

// managedBy is managedLabel's value, as Helm writes its own name there.
const managedBy = "meshbench"

// markManaged adds managedLabel to an object, and to a Deployment's pod
// template so that its pods carry it too.
func markManaged(o *unstructured.Unstructured) {
	l := o.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	l[managedLabel] = managedBy
	o.SetLabels(l)
	if o.GetKind() == "Deployment" {
		tl, _, _ := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "labels")
		if tl == nil {
			tl = map[string]string{}
		}
		tl[managedLabel] = managedBy
		_ = unstructured.SetNestedStringMap(o.Object, tl, "spec", "template", "metadata", "labels")
	}
}

// keptNamespaces are the namespaces a scenario may use that are not its
// to delete: Kubernetes refuses to delete default and kube-*, and Istio
// lives in istio-system. What the scenario made in them is deleted.
var keptNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true, "kube-node-lease": true, istioNamespace: true}

// scenarioKinds are the kinds of namespaced objects a run makes for a
// scenario: its workloads and every Istio kind the scenario format takes.
var scenarioKinds = []schema.GroupVersionResource{
	{Group: "apps", Version: "v1", Resource: "deployments"},
	{Version: "v1", Resource: "services"},
	{Version: "v1", Resource: "serviceaccounts"},
	{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"},
	{Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"},
	{Group: "networking.istio.io", Version: "v1", Resource: "gateways"},
	{Group: "security.istio.io", Version: "v1", Resource: "peerauthentications"},
	{Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"},
	{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"},
	{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "grpcroutes"},
}

// openCluster finds a kind cluster an earlier run kept (-keep), to run in
// it again: its node must be running and map the ingress gateway's node
// port to this host, as the runtime's own clusters do.
func openCluster(ctx context.Context, cli *testcontainers.DockerClient, name string, logger kindLogger) (*cluster, error) {
	p := kindcluster.NewProvider(kindcluster.ProviderWithDocker(), kindcluster.ProviderWithLogger(logger))
	names, err := p.List()
	if err != nil {
		return nil, fmt.Errorf("kind get clusters: %w", err)
	}
	if !slices.Contains(names, name) {
		return nil, fmt.Errorf("no kind cluster %q to reuse (kind has %q); `meshbench run -runtime kind -keep` leaves one", name, names)
	}
	c := &cluster{name: name, provider: p, docker: cli}
	ins, err := cli.ContainerInspect(ctx, c.nodeContainer(), client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("kind cluster %s: %w", name, err)
	}
	if ins.Container.State == nil || !ins.Container.State.Running {
		return nil, fmt.Errorf("kind cluster %s: its node %s is not running", name, c.nodeContainer())
	}
	for port, binds := range ins.Container.NetworkSettings.Ports {
		if port.Num() == ingressNodePort && len(binds) > 0 {
			c.ingress = binds[0].HostIP.String() + ":" + binds[0].HostPort
		}
	}
	if c.ingress == "" {
		return nil, fmt.Errorf("kind cluster %s maps no host port to the gateway's node port %d: only a cluster made by `meshbench run -runtime kind -keep` can be reused", name, ingressNodePort)
	}
	// A reused cluster belongs to this run while it lasts: `meshbench down`
	// leaves it alone until the run is over.
	if err := recordOwner(name); err != nil {
		return nil, err
	}
	return c, nil
}

// clearScenario removes what earlier runs in the cluster made for their
// scenarios (everything labelled managedLabel), and waits until their pods
// and namespaces are gone: a pod of the last run still terminating would
// be counted among this run's proxies.
func (m *Mesh) clearScenario(ctx context.Context) error {
	sel := metav1.ListOptions{LabelSelector: managedLabel + "=" + managedBy}
	for _, gvr := range scenarioKinds {
		list, err := m.apply.dyn.Resource(gvr).Namespace("").List(ctx, sel)
		if apierrors.IsNotFound(err) {
			continue // Istio's CRDs not installed yet
		}
		if err != nil {
			return fmt.Errorf("clearing the last scenario: listing %s: %w", gvr.Resource, err)
		}
		for _, o := range list.Items {
			err := m.apply.dyn.Resource(gvr).Namespace(o.GetNamespace()).Delete(ctx, o.GetName(), metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("clearing the last scenario: %w", err)
			}
		}
	}
	nss, err := m.kube.CoreV1().Namespaces().List(ctx, sel)
	if err != nil {
		return err
	}
	for _, ns := range nss.Items {
		if keptNamespaces[ns.Name] {
			continue // emptied above; Kubernetes will not delete it
		}
		if err := m.kube.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("clearing the last scenario: %w", err)
		}
	}
	zero := int64(0)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		pods, err := m.kube.CoreV1().Pods("").List(ctx, sel)
		if err != nil {
			return fmt.Errorf("clearing the last scenario: %w", err)
		}
		list, err := m.kube.CoreV1().Namespaces().List(ctx, sel)
		if err != nil {
			return fmt.Errorf("clearing the last scenario: %w", err)
		}
		var nss []string
		for _, ns := range list.Items {
			if !keptNamespaces[ns.Name] {
				nss = append(nss, ns.Name)
			}
		}
		if len(pods.Items) == 0 && len(nss) == 0 {
			return nil
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil || p.Status.Phase != corev1.PodSucceeded {
				_ = m.kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("clearing the last scenario: %d pods and namespaces %q of it still there: %w", len(pods.Items), nss, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// istiodInputs is what istiod reads only when it starts, in a reused
// cluster: meshConfig (the istio ConfigMap) and the injection template
// with the proxy image (istio-sidecar-injector). Kubernetes updates a
// mounted ConfigMap a minute or so late, so a change to either restarts
// istiod rather than wait for it.
var istiodInputs = []string{"istio", "istio-sidecar-injector"}

// istiodInputsInCluster returns the data of istiodInputs in the cluster.
func (m *Mesh) istiodInputsInCluster(ctx context.Context) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, n := range istiodInputs {
		cm, err := m.kube.CoreV1().ConfigMaps(istioNamespace).Get(ctx, n, metav1.GetOptions{})
		if err == nil {
			out[n] = cm.Data
		}
	}
	return out
}

// istiodInputsOf returns the data of istiodInputs among objects to apply.
func istiodInputsOf(objs []*unstructured.Unstructured) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && o.GetNamespace() == istioNamespace && slices.Contains(istiodInputs, o.GetName()) {
			d, _, _ := unstructured.NestedStringMap(o.Object, "data")
			out[o.GetName()] = d
		}
	}
	return out
}

// restartIstiod rolls istiod's Deployment as `kubectl rollout restart`
// does (a pod template annotation) and waits for the new pod.
func (m *Mesh) restartIstiod(ctx context.Context) error {
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339Nano))
	if _, err := m.kube.AppsV1().Deployments(istioNamespace).Patch(ctx, "istiod", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: fieldManager}); err != nil {
		return fmt.Errorf("restarting istiod: %w", err)
	}
	return nil
}
