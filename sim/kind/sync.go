package kind

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/meshbench/meshbench/sim/istionames"
)

// syncStatus is one proxy's entry in istiod's /debug/syncz
// (pilot/pkg/xds/debug.go SyncStatus): the nonce istiod last sent each
// type and the one the proxy last ACKed, and the last NACK's reason.
type syncStatus struct {
	Proxy     string `json:"proxy"`
	Resources map[string]struct {
		Sent      string    `json:"sent"`
		Acked     string    `json:"acked"`
		SentTime  time.Time `json:"sentTime"`
		LastError string    `json:"lastError"`
	} `json:"resources"`
}

// syncz reads istiod's /debug/syncz. istiod serves its debug endpoints on
// the monitoring port (15014) only to callers it authenticates, or from its
// own pod: so it is asked in its pod, with `pilot-discovery request`, as an
// operator would (pilot/cmd/pilot-discovery/app/request.go).
func (m *Mesh) syncz(ctx context.Context) ([]syncStatus, error) {
	pod, err := m.istiodPod(ctx)
	if err != nil {
		return nil, err
	}
	raw, err := m.exec(ctx, istioNamespace, pod, "discovery", "pilot-discovery", "request", "GET", "/debug/syncz")
	if err != nil {
		return nil, fmt.Errorf("istiod /debug/syncz: %w", err)
	}
	var out []syncStatus
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("istiod /debug/syncz: %w", err)
	}
	return out, nil
}

// istiodPod is the name of a running istiod pod.
func (m *Mesh) istiodPod(ctx context.Context) (string, error) {
	pods, err := m.kube.CoreV1().Pods(istioNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=istiod"})
	if err != nil {
		return "", err
	}
	for _, p := range pods.Items {
		if running(&p) {
			return p.Name, nil
		}
	}
	return "", errors.New("istiod is not running")
}

// running reports whether a pod runs and is not being deleted.
func running(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil
}

// gatewayPods are the names of the running istio-ingressgateway pods.
func (m *Mesh) gatewayPods(ctx context.Context) ([]string, error) {
	list, err := m.kube.CoreV1().Pods(istioNamespace).List(ctx, metav1.ListOptions{LabelSelector: "istio=ingressgateway"})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range list.Items {
		if running(&p) {
			out = append(out, p.Name)
		}
	}
	return out, nil
}

// exec runs a command in a pod's container, as `kubectl exec`, and returns
// its standard output.
func (m *Mesh) exec(ctx context.Context, ns, pod, container string, cmd ...string) ([]byte, error) {
	req := m.kube.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: cmd, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(m.rest, "POST", req.URL())
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		return nil, fmt.Errorf("%s in %s/%s: %w: %s", strings.Join(cmd, " "), ns, pod, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// expectedProxies are the xDS node ids istiod must be serving: every
// running pod with an istio-proxy container, as pilot-agent names them
// (sidecar~IP~pod.ns~ns.svc.cluster.local; router~ for the gateway).
func (m *Mesh) expectedProxies(ctx context.Context) ([]string, error) {
	var out []string
	for _, ns := range []string{m.reg.Namespace, istioNamespace} {
		list, err := m.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		for _, p := range list.Items {
			if !hasProxy(&p) || p.DeletionTimestamp != nil || p.Status.PodIP == "" {
				continue
			}
			out = append(out, p.Name+"."+p.Namespace)
		}
	}
	sort.Strings(out)
	return out, nil
}

// waitSynced waits until every proxy is connected to istiod and has ACKed
// everything istiod sent it, sent after since. A NACK fails at once with
// the proxy's reason.
func (m *Mesh) waitSynced(ctx context.Context, since time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var last string
	for {
		want, err := m.expectedProxies(ctx)
		if err == nil {
			var st []syncStatus
			if st, err = m.syncz(ctx); err == nil {
				var missing []string
				last, missing, err = judgeSync(want, st, since)
				if err != nil {
					return err
				}
				if last == "" && len(missing) == 0 {
					return nil
				}
				if len(missing) > 0 {
					last = "not connected to istiod: " + strings.Join(missing, ", ")
				}
			}
		}
		if err != nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("proxies not in sync with istiod: %s", last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// judgeSync compares istiod's view with the proxies expected: what is
// still pending, who is missing, or a NACK.
func judgeSync(want []string, st []syncStatus, since time.Time) (pending string, missing []string, nack error) {
	byPod := map[string]syncStatus{}
	for _, s := range st {
		// syncz names a proxy pod.ns (model.Proxy.ID), the part of its
		// node id TYPE~IP~pod.ns~ns.svc.cluster.local between the 2nd "~" and the 3rd
		id := s.Proxy
		if parts := strings.Split(id, "~"); len(parts) == 4 {
			id = parts[2]
		}
		byPod[id] = s
	}
	for _, w := range want {
		s, ok := byPod[w]
		if !ok {
			missing = append(missing, w)
			continue
		}
		var newest time.Time
		for typ, r := range s.Resources {
			if r.LastError != "" {
				return "", nil, fmt.Errorf("%s refused istiod's %s: %s", w, shortType(typ), r.LastError)
			}
			if r.Sent != r.Acked && pending == "" {
				pending = fmt.Sprintf("%s has not ACKed %s", w, shortType(typ))
			}
			if r.SentTime.After(newest) {
				newest = r.SentTime
			}
		}
		if len(s.Resources) == 0 && pending == "" {
			pending = w + " has been sent nothing"
		}
		if !since.IsZero() && !newest.After(since) && pending == "" {
			pending = w + " has had no push since the change"
		}
	}
	return pending, missing, nil
}

func shortType(t string) string { return t[strings.LastIndex(t, ".")+1:] }

// metricsProxy serves, on 127.0.0.1, each proxy's Prometheus endpoint
// (:15090/stats/prometheus) through the API server's pod proxy: the pods'
// addresses are inside the node, out of this host's reach.
type metricsProxy struct {
	srv  *http.Server
	addr string
}

func startMetricsProxy(kube kubernetes.Interface) (*metricsProxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /pods/{ns}/{pod}/stats/prometheus", func(w http.ResponseWriter, r *http.Request) {
		raw, err := kube.CoreV1().RESTClient().Get().Namespace(r.PathValue("ns")).Resource("pods").
			Name(fmt.Sprintf("%s:%d", r.PathValue("pod"), istionames.PrometheusPort)).SubResource("proxy").
			Suffix("stats/prometheus").DoRaw(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(raw)
	})
	p := &metricsProxy{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, addr: l.Addr().String()}
	go func() { _ = p.srv.Serve(l) }()
	return p, nil
}

func (p *metricsProxy) url(ns, pod string) string {
	return "http://" + p.addr + "/pods/" + ns + "/" + pod + "/stats/prometheus"
}

func (p *metricsProxy) close() { _ = p.srv.Close() }
