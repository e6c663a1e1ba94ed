package kind

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/testcontainers/testcontainers-go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/meshbench/meshbench/sim/docker"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/runtime"
)

// proxyImage is the proxy image of `make kind-images` with this run's
// meshbench binary in it: the sidecar that runs is the code that runs the
// scenario, as on the docker runtime. Tagged with the binary's hash, built
// once per binary.
func proxyImage(ctx context.Context, cli *testcontainers.DockerClient, base, binary string) (string, error) {
	if _, err := cli.ImageInspect(ctx, base); err != nil {
		// Never let the build below look for it in a registry.
		return "", fmt.Errorf("the proxy image %s of `make kind-images` is not in the engine (a build from another checkout removes the images it does not use): run `make kind-images`: %w", base, err)
	}
	sum, err := docker.FileHash(binary)
	if err != nil {
		return "", err
	}
	repo, _, _ := strings.Cut(base, ":")
	tag := repo + ":" + strings.TrimPrefix(base, repo+":") + "-" + sum[:12]
	if _, err := cli.ImageInspect(ctx, tag); err == nil {
		return tag, nil
	}
	// pilot-agent execs /usr/local/bin/envoy (ProxyConfig binaryPath's default).
	dockerfile := fmt.Sprintf("FROM %s\nCOPY meshbench /usr/local/bin/meshbench\nRUN ln -sf meshbench /usr/local/bin/envoy\nLABEL meshbench.kind-proxy=%s\n", base, sum[:12])
	if err := docker.BuildImage(ctx, binary, dockerfile, tag); err != nil {
		return "", fmt.Errorf("proxy image %s: %w", tag, err)
	}
	return tag, nil
}

// installIstio applies the manifest istioctl rendered at build time
// (images/kind/istio-operator.yaml: the default profile) with the run's
// proxy image and the scenario's mesh settings in meshConfig, then waits for
// istiod.
func (m *Mesh) installIstio(ctx context.Context, im Images, proxy string, settings meshconfig.MeshSettings) error {
	raw, err := os.ReadFile(im.IstioInstall)
	if err != nil {
		return fmt.Errorf("%w (run `make kind-images`)", err)
	}
	// The injector's values and the gateway's Deployment name the proxy image.
	raw = bytes.ReplaceAll(raw, []byte(im.Proxy), []byte(proxy))
	objs, err := decodeAll(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", im.IstioInstall, err)
	}
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && o.GetName() == "istio" && o.GetNamespace() == istioNamespace {
			if err := setMeshConfig(o, settings); err != nil {
				return err
			}
		}
		if o.GetKind() == "Deployment" {
			// The images are loaded into the node; never pull.
			setPullNever(o)
		}
	}
	if err := m.apply.apply(ctx, namespaceObj(istioNamespace, false)); err != nil {
		return err
	}
	restart := m.reused && !reflect.DeepEqual(m.istiodInputsInCluster(ctx), istiodInputsOf(objs))
	if err := m.apply.applyAll(ctx, objs); err != nil {
		return fmt.Errorf("installing Istio: %w", err)
	}
	if restart {
		if err := m.restartIstiod(ctx); err != nil {
			return err
		}
	}
	// istiod must serve before any pod is made: its webhook injects them.
	return m.waitDeployment(ctx, istioNamespace, "istiod", 3*time.Minute)
}

// setMeshConfig writes the scenario's mesh-wide settings into meshConfig
// (the `mesh` key of the istio ConfigMap), as `istioctl install --set
// meshConfig...` would.
func setMeshConfig(cm *unstructured.Unstructured, s meshconfig.MeshSettings) error {
	text, _, _ := unstructured.NestedString(cm.Object, "data", "mesh")
	mc := map[string]any{}
	if err := yaml.Unmarshal([]byte(text), &mc); err != nil {
		return fmt.Errorf("istio ConfigMap mesh: %w", err)
	}
	if s.DefaultHTTPRetryPolicy != nil {
		raw, err := json.Marshal(s.DefaultHTTPRetryPolicy)
		if err != nil {
			return err
		}
		var p map[string]any
		if err := json.Unmarshal(raw, &p); err != nil {
			return err
		}
		mc["defaultHttpRetryPolicy"] = p
	}
	if s.Retry503ByDefault {
		return fmt.Errorf("the 1.23 compatibility profile (EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY=false) is %w on kind yet", runtime.ErrUnsupported)
	}
	if s.CertTTL > 0 {
		return fmt.Errorf("certTTL is %w on kind yet", runtime.ErrUnsupported)
	}
	if s.AccessLog.File != "" {
		// istiod would configure it, but the logs would stay in the
		// istio-proxy containers' output: collecting them is not done yet.
		return fmt.Errorf("accessLogFile is %w on kind yet", runtime.ErrUnsupported)
	}
	out, err := yaml.Marshal(mc)
	if err != nil {
		return err
	}
	return unstructured.SetNestedField(cm.Object, string(out), "data", "mesh")
}

func setPullNever(o *unstructured.Unstructured) {
	cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
	for i := range cs {
		if c, ok := cs[i].(map[string]any); ok {
			c["imagePullPolicy"] = "IfNotPresent"
		}
	}
	_ = unstructured.SetNestedSlice(o.Object, cs, "spec", "template", "spec", "containers")
}

// deploy applies the topology's objects. istiod's injection webhook may
// refuse pods for a moment after istiod is ready (it patches its own CA
// bundle into the webhook): those are retried.
func (m *Mesh) deploy(ctx context.Context, objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		if err := m.apply.apply(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// waitDeployment waits until a Deployment has all its replicas updated and available.
func (m *Mesh) waitDeployment(ctx context.Context, ns, name string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last string
	for {
		d, err := m.kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && deploymentAvailable(d) {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = m.podTrouble(ctx, ns, d.Spec.Selector.MatchLabels)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deployment %s/%s not available after %s: %s", ns, name, limit, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func deploymentAvailable(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == want && d.Status.AvailableReplicas == want
}

// podTrouble says why a Deployment's pods are not ready, for the error.
func (m *Mesh) podTrouble(ctx context.Context, ns string, sel map[string]string) string {
	var parts []string
	for k, v := range sel {
		parts = append(parts, k+"="+v)
	}
	list, err := m.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: strings.Join(parts, ",")})
	if err != nil {
		return err.Error()
	}
	if len(list.Items) == 0 {
		return "no pods (see the ReplicaSet's events)"
	}
	var out []string
	for _, p := range list.Items {
		s := p.Name + " " + string(p.Status.Phase)
		for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
			switch {
			case cs.State.Waiting != nil:
				s += fmt.Sprintf(", %s waiting: %s %s", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message)
			case cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0:
				s += fmt.Sprintf(", %s exited %d: %s", cs.Name, cs.State.Terminated.ExitCode, cs.State.Terminated.Message)
			case !cs.Ready && cs.State.Running != nil:
				s += ", " + cs.Name + " running, not ready"
			}
		}
		for _, c := range p.Status.Conditions {
			if c.Status != corev1.ConditionTrue && c.Message != "" {
				s += ", " + c.Message
			}
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

// waitPodsReady waits for the ingress gateway and every Deployment of the topology.
func (m *Mesh) waitPodsReady(ctx context.Context) error {
	if err := m.waitDeployment(ctx, istioNamespace, "istio-ingressgateway", 3*time.Minute); err != nil {
		return err
	}
	for _, s := range m.reg.Services {
		for _, v := range s.Versions {
			if err := m.waitDeployment(ctx, s.Namespace, s.Name+"-"+v.Name, 3*time.Minute); err != nil {
				return err
			}
		}
	}
	return nil
}
