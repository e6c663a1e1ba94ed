package observe

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

func TestPrometheusConfigScrapesEveryTargetWithItsPodLabels(t *testing.T) {
	targets := []Target{
		{Pod: "istio-ingressgateway", Namespace: "istio-system", App: "istio-ingressgateway", Version: "unknown", URL: "http://127.64.0.1:15090/stats/prometheus"},
		{Pod: "payment-v2-0", Namespace: "default", App: "payment", Version: "v2", URL: "http://127.64.0.6:15090/stats/prometheus"},
	}
	b, err := PrometheusConfig(targets, 1500*time.Millisecond)
	require.NoError(t, err)
	var cfg promConfig
	require.NoError(t, yaml.UnmarshalStrict(b, &cfg), "%s", b)
	assert.Equal(t, "1s500ms", cfg.Global.ScrapeInterval)
	require.Len(t, cfg.ScrapeConfigs, 1)
	sc := cfg.ScrapeConfigs[0]
	assert.Equal(t, Job, sc.JobName)
	assert.Equal(t, "/stats/prometheus", sc.MetricsPath)
	assert.Equal(t, "http", sc.Scheme)
	require.Len(t, sc.StaticConfigs, 2)
	assert.Equal(t, []string{"127.64.0.6:15090"}, sc.StaticConfigs[1].Targets)
	assert.Equal(t, map[string]string{"pod": "payment-v2-0", "namespace": "default", "app": "payment", "version": "v2"}, sc.StaticConfigs[1].Labels)
}

// kind's proxies are reached through one local proxy of the API server's
// pod proxy, each on its own path: a target sets it with __metrics_path__.
func TestPrometheusConfigTakesAPathPerTarget(t *testing.T) {
	b, err := PrometheusConfig([]Target{
		{Pod: "istio-ingressgateway", URL: "http://127.0.0.1:4000/pods/istio-system/istio-ingressgateway-7d9/stats/prometheus"},
		{Pod: "order-v1-0", URL: "http://127.0.0.1:4000/pods/mb-1/order-v1-5c8/stats/prometheus"},
	}, time.Second)
	require.NoError(t, err)
	var cfg promConfig
	require.NoError(t, yaml.UnmarshalStrict(b, &cfg), "%s", b)
	sc := cfg.ScrapeConfigs[0]
	assert.Equal(t, "/pods/istio-system/istio-ingressgateway-7d9/stats/prometheus", sc.MetricsPath)
	assert.NotContains(t, sc.StaticConfigs[0].Labels, "__metrics_path__", "the job's own path")
	assert.Equal(t, "/pods/mb-1/order-v1-5c8/stats/prometheus", sc.StaticConfigs[1].Labels["__metrics_path__"])
}

func TestPrometheusConfigRefusesWhatItCannotScrape(t *testing.T) {
	_, err := PrometheusConfig(nil, time.Second)
	assert.ErrorContains(t, err, "no proxy")
	_, err = PrometheusConfig([]Target{{Pod: "a", URL: "127.0.0.1:15090"}}, time.Second)
	assert.ErrorContains(t, err, "proxy a")
	_, err = PrometheusConfig([]Target{
		{Pod: "a", URL: "http://127.0.0.1:15090/stats/prometheus"},
		{Pod: "b", URL: "https://127.0.0.2:15000/metrics"},
	}, time.Second)
	assert.ErrorContains(t, err, "proxy b")
	_, err = PrometheusConfig([]Target{{Pod: "a", URL: "http://127.0.0.1:15090/stats/prometheus"}}, 0)
	assert.Error(t, err)
}

// The dashboard is JSON in Grafana's model: every panel has a unique id,
// a place on the grid, the datasource variable and at least one query,
// each with its own refId. That each query is valid PromQL over series our
// sidecars export is checked against a real Prometheus (prometheus_test.go).
func TestDashboardIsGrafanaJSON(t *testing.T) {
	b, err := Dashboard("meshbench: canary-90-10")
	require.NoError(t, err)
	var d struct {
		Title         string `json:"title"`
		UID           string `json:"uid"`
		SchemaVersion int    `json:"schemaVersion"`
		Templating    struct {
			List []struct{ Name, Type, Query string } `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID         int            `json:"id"`
			Type       string         `json:"type"`
			Title      string         `json:"title"`
			Datasource map[string]any `json:"datasource"`
			GridPos    struct{ H, W, X, Y int }
			Targets    []struct {
				Expr, RefID string
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(b, &d))
	assert.Equal(t, "meshbench: canary-90-10", d.Title)
	assert.NotEmpty(t, d.UID)
	assert.GreaterOrEqual(t, d.SchemaVersion, 36) // datasource refs as {type, uid}
	require.Len(t, d.Templating.List, 1)
	assert.Equal(t, "datasource", d.Templating.List[0].Type)
	assert.Equal(t, "prometheus", d.Templating.List[0].Query)
	require.Len(t, d.Panels, len(Panels))
	ids := map[int]bool{}
	titles := []string{}
	for _, p := range d.Panels {
		assert.False(t, ids[p.ID], "panel id %d twice", p.ID)
		ids[p.ID] = true
		titles = append(titles, p.Title)
		assert.Equal(t, "timeseries", p.Type)
		assert.Equal(t, "${datasource}", p.Datasource["uid"])
		assert.LessOrEqual(t, p.GridPos.X+p.GridPos.W, 24, p.Title)
		require.NotEmpty(t, p.Targets, p.Title)
		refs := map[string]bool{}
		for _, q := range p.Targets {
			assert.NotEmpty(t, q.Expr)
			assert.False(t, refs[q.RefID], "%s: refId %s twice", p.Title, q.RefID)
			refs[q.RefID] = true
		}
	}
	all := strings.Join(titles, ", ")
	for _, want := range []string{"Request volume", "Success rate", "p99", "Retries", "ejections", "TCP bytes"} {
		assert.Contains(t, strings.ToLower(all), strings.ToLower(want))
	}
}
