package observe

import (
	"encoding/json"
	"strings"
)

// Panel is one graph of the dashboard: its title, unit and queries.
type Panel struct {
	Title, Description string
	// Unit is Grafana's unit id (reqps, percentunit, ms, Bps, short).
	Unit    string
	Queries []Query
}

// Query is one PromQL expression of a panel and its series' legend.
type Query struct {
	Expr, Legend string
}

// RateInterval is the range of the dashboard's rate() and increase()
// windows: Grafana's $__rate_interval, at least four scrape intervals
// (grafana.com docs, "$__rate_interval"), so that every window holds two
// samples at least.
const RateInterval = "$__rate_interval"

// The selectors every panel builds on. Requests are counted where the
// caller's proxy reports them (reporter="source"): that is what the
// callers got, failures to reach a pod (response flags UF, UH) included,
// and every hop has a source proxy (the gateway for the load). A success
// is a 2xx or 3xx answer, as a run's success rate counts one; 4xx and 5xx
// and "0" (no answer) are failures.
const (
	requests = `istio_requests_total{reporter="source"}`
	ok       = `istio_requests_total{reporter="source",response_code=~"[23].."}`
	buckets  = `istio_request_duration_milliseconds_bucket{reporter="source"}`
	byDest   = "destination_workload, destination_version"
)

func rate(sel string) string { return "rate(" + sel + "[" + RateInterval + "])" }

func latency(q string) Query {
	return Query{
		Expr:   "histogram_quantile(" + q + ", sum by (" + byDest + ", le) (" + rate(buckets) + "))",
		Legend: "p" + strings.TrimPrefix(q, "0.") + " {{destination_workload}} {{destination_version}}",
	}
}

// Panels are the dashboard's graphs, over the metric and label names our
// sidecars export (sim/sidecar/metrics.go): Istio's standard metrics
// (istio.io docs, reference/config/metrics) and Envoy's cluster stats as
// Envoy's Prometheus endpoint names them.
var Panels = []Panel{
	{
		Title: "Request volume", Unit: "reqps",
		Description: "Requests per second to each workload and version, as their callers' proxies count them.",
		Queries:     []Query{{Expr: "sum by (" + byDest + ") (" + rate(requests) + ")", Legend: "{{destination_workload}} {{destination_version}}"}},
	},
	{
		Title: "Success rate", Unit: "percentunit",
		Description: "Share of 2xx and 3xx answers from each workload and version.",
		Queries: []Query{{
			Expr:   "sum by (" + byDest + ") (" + rate(ok) + ") / sum by (" + byDest + ") (" + rate(requests) + ")",
			Legend: "{{destination_workload}} {{destination_version}}",
		}},
	},
	{
		Title: "Traffic split by version", Unit: "percentunit",
		Description: "Each version's share of its service's requests: a canary's weights.",
		Queries: []Query{{
			Expr: "sum by (destination_service_name, destination_version) (" + rate(requests) + ")" +
				" / ignoring (destination_version) group_left sum by (destination_service_name) (" + rate(requests) + ")",
			Legend: "{{destination_service_name}} {{destination_version}}",
		}},
	},
	{
		Title: "Latency p50, p90, p99", Unit: "ms",
		Description: "Request duration quantiles per workload and version, interpolated within istio_request_duration_milliseconds' buckets.",
		Queries:     []Query{latency("0.50"), latency("0.90"), latency("0.99")},
	},
	{
		Title: "Response flags", Unit: "reqps",
		Description: "Requests Envoy flagged (UF, UH, UO, URX, UT, DC...), per destination.",
		Queries: []Query{{
			Expr:   `sum by (destination_workload, response_flags) (rate(istio_requests_total{reporter="source",response_flags!="-"}[` + RateInterval + "]))",
			Legend: "{{destination_workload}} {{response_flags}}",
		}},
	},
	{
		Title: "Retries", Unit: "reqps",
		Description: "Retries sent per upstream cluster (Envoy's cluster.<name>.upstream_rq_retry), and retries refused by the retry budget.",
		Queries: []Query{
			{Expr: "sum by (cluster_name) (" + rate("envoy_cluster_upstream_rq_retry") + ")", Legend: "retries {{cluster_name}}"},
			{Expr: "sum by (cluster_name) (" + rate("envoy_cluster_upstream_rq_retry_overflow") + ")", Legend: "overflow {{cluster_name}}"},
		},
	},
	{
		Title: "Outlier ejections", Unit: "short",
		Description: "Hosts ejected now, and ejections enforced, per upstream cluster (Envoy's outlier_detection stats).",
		Queries: []Query{
			{Expr: "sum by (cluster_name) (envoy_cluster_outlier_detection_ejections_active)", Legend: "ejected {{cluster_name}}"},
			{Expr: "sum by (cluster_name) (increase(envoy_cluster_outlier_detection_ejections_enforced_total[" + RateInterval + "]))", Legend: "enforced {{cluster_name}}"},
		},
	},
	{
		Title: "TCP bytes", Unit: "Bps",
		Description: "Bytes per second through TCP proxies, per connection's source and destination workload.",
		Queries: []Query{
			{Expr: "sum by (source_workload, destination_workload) (" + rate(`istio_tcp_sent_bytes_total{reporter="source"}`) + ")", Legend: "sent {{source_workload}} → {{destination_workload}}"},
			{Expr: "sum by (source_workload, destination_workload) (" + rate(`istio_tcp_received_bytes_total{reporter="source"}`) + ")", Legend: "received {{source_workload}} → {{destination_workload}}"},
		},
	},
}

// Dashboard is a Grafana dashboard of Panels, in the JSON model Grafana
// imports (grafana.com docs, "JSON model"; schemaVersion 39 is Grafana
// 10.4's, which Grafana 11 and 12 migrate on import). Its datasource is a
// variable, so it imports against any Prometheus datasource.
func Dashboard(title string) ([]byte, error) {
	ds := map[string]any{"type": "prometheus", "uid": "${datasource}"}
	var panels []map[string]any
	for i, p := range Panels {
		var targets []map[string]any
		for j, q := range p.Queries {
			targets = append(targets, map[string]any{
				"datasource": ds, "expr": q.Expr, "legendFormat": q.Legend, "refId": string(rune('A' + j)), "range": true,
			})
		}
		panels = append(panels, map[string]any{
			"id": i + 1, "type": "timeseries", "title": p.Title, "description": p.Description,
			"datasource": ds,
			// Two panels a row, 8 units high, on Grafana's 24-column grid.
			"gridPos":     map[string]int{"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i / 2)},
			"fieldConfig": map[string]any{"defaults": map[string]any{"unit": p.Unit}, "overrides": []any{}},
			"options":     map[string]any{"legend": map[string]any{"displayMode": "table", "placement": "bottom", "showLegend": true}, "tooltip": map[string]any{"mode": "multi"}},
			"targets":     targets,
		})
	}
	d := map[string]any{
		"title": title, "uid": "meshbench-mesh", "schemaVersion": 39, "version": 1, "editable": true,
		"tags": []string{"meshbench", "istio"}, "timezone": "browser", "refresh": "5s",
		"time": map[string]string{"from": "now-15m", "to": "now"},
		"templating": map[string]any{"list": []any{map[string]any{
			"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
			"current": map[string]any{}, "hide": 0, "refresh": 1,
		}}},
		"annotations": map[string]any{"list": []any{}},
		"panels":      panels,
	}
	return json.MarshalIndent(d, "", "  ")
}
