// Package observe writes what a user points Prometheus and Grafana at to
// watch a running mesh: a prometheus.yml that scrapes every proxy, and a
// Grafana dashboard of the Istio-standard metrics our sidecars export.
package observe

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"

	"github.com/meshbench/meshbench/sim/controlplane"
	"github.com/meshbench/meshbench/sim/runtime"
)

// Job is the job label of every target: the scrape job of Istio's
// Prometheus addon that scrapes the pods' proxies (istio/istio
// samples/addons/prometheus.yaml, job_name kubernetes-pods), so queries
// written against that addon find our series too.
const Job = "kubernetes-pods"

// Target is one proxy's Prometheus endpoint and the labels Istio's addon
// gives a pod's series: its pod labels app and version (labelmap of
// __meta_kubernetes_pod_label_(.+)), namespace and pod.
type Target struct {
	Pod, Namespace, App, Version string
	// URL is the proxy's metrics endpoint, e.g. http://127.64.0.3:15090/stats/prometheus.
	URL string
}

// Targets are the proxies of mesh, sorted by pod name: every pod with a
// sidecar, in namespace, and the ingress gateway, in its own namespace.
func Targets(mesh runtime.Mesh, namespace string) []Target {
	pods := map[string]runtime.Pod{}
	for _, p := range mesh.Pods() {
		pods[p.Name] = p
	}
	var out []Target
	for name, u := range mesh.MetricsEndpoints() {
		t := Target{Pod: name, URL: u}
		if p, ok := pods[name]; ok {
			t.Namespace, t.App, t.Version = namespace, p.Service, p.Version
		} else {
			// The gateway: Istio's labels it app=istio-ingressgateway, in
			// istio-system; it has no version label, and our gateway
			// reports its version as "unknown" (sim/local).
			gw := controlplane.Gateway
			t.Namespace, t.App, t.Version = gw.Namespace, gw.Labels["app"], "unknown"
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Target) int { return cmp.Compare(a.Pod, b.Pod) })
	return out
}

// The shape of prometheus.yml, the fields we write (prometheus.io docs,
// configuration: scrape_config and static_config).
type promConfig struct {
	Global        promGlobal     `json:"global"`
	ScrapeConfigs []scrapeConfig `json:"scrape_configs"`
}

type promGlobal struct {
	ScrapeInterval     string `json:"scrape_interval"`
	EvaluationInterval string `json:"evaluation_interval"`
}

type scrapeConfig struct {
	JobName        string         `json:"job_name"`
	ScrapeInterval string         `json:"scrape_interval,omitempty"`
	ScrapeTimeout  string         `json:"scrape_timeout,omitempty"`
	MetricsPath    string         `json:"metrics_path"`
	Scheme         string         `json:"scheme"`
	StaticConfigs  []staticConfig `json:"static_configs"`
}

type staticConfig struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// PrometheusConfig is a prometheus.yml that scrapes every target every
// interval. Each target is a static config of its own, so that each
// carries its pod's labels; all share one job.
func PrometheusConfig(targets []Target, interval time.Duration) ([]byte, error) {
	if interval <= 0 {
		return nil, fmt.Errorf("scrape interval %s: must be positive", interval)
	}
	iv := model.Duration(interval).String()
	sc := scrapeConfig{JobName: Job, ScrapeInterval: iv, ScrapeTimeout: iv}
	for _, t := range targets {
		u, err := url.Parse(t.URL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("proxy %s: metrics URL %q: not an http URL", t.Pod, t.URL)
		}
		// One job has one scheme. Its path is the first proxy's (Envoy's
		// /stats/prometheus on 15090 in Istio); a proxy reached on another
		// path (kind's, through the API server's pod proxy) sets its own
		// with the __metrics_path__ label (prometheus.io docs,
		// configuration: relabel_config, "__metrics_path__").
		labels := map[string]string{"pod": t.Pod, "namespace": t.Namespace, "app": t.App, "version": t.Version}
		if sc.MetricsPath == "" {
			sc.MetricsPath, sc.Scheme = u.Path, u.Scheme
		} else if u.Scheme != sc.Scheme {
			return nil, fmt.Errorf("proxy %s: metrics URL %q: scheme differs from the others' %s", t.Pod, t.URL, sc.Scheme)
		}
		if u.Path != sc.MetricsPath {
			labels["__metrics_path__"] = u.Path
		}
		sc.StaticConfigs = append(sc.StaticConfigs, staticConfig{Targets: []string{u.Host}, Labels: labels})
	}
	if len(sc.StaticConfigs) == 0 {
		return nil, fmt.Errorf("no proxy to scrape")
	}
	b, err := yaml.Marshal(promConfig{Global: promGlobal{ScrapeInterval: iv, EvaluationInterval: iv}, ScrapeConfigs: []scrapeConfig{sc}})
	if err != nil {
		return nil, err
	}
	return append([]byte("# Written by meshbench up: every proxy of the mesh, as Istio's Prometheus addon labels them.\n"), b...), nil
}
