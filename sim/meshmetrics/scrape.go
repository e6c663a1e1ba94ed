// Package meshmetrics is the telemetry the sidecars export and the runs
// read: the metric names (Istio's standard metrics and Envoy's cluster
// stats) and the scraping of the proxies' Prometheus endpoints into
// service-graph edges and per-service counters.
package meshmetrics

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/sim/istionames"
)

// Counters are per-service sums of the sidecars' Envoy cluster stats
// and response flags, keyed by service short name.
type Counters struct {
	Retries, Ejections, Overflows map[string]float64
	// Security counts requests and TCP connections received by service and
	// connection_security_policy.
	Security  map[string]map[string]float64
	Rotations float64
	Flags     map[string]map[string]float64 // service → single flag → responses
}

// NewCounters are counters at zero.
func NewCounters() *Counters {
	return &Counters{Retries: map[string]float64{}, Ejections: map[string]float64{}, Overflows: map[string]float64{},
		Flags: map[string]map[string]float64{}, Security: map[string]map[string]float64{}}
}

// serviceOfCluster maps an Istio cluster name to its service's short name.
func serviceOfCluster(name string) string {
	if _, _, _, host, ok := istionames.ParseClusterName(name); ok {
		if i := strings.IndexByte(host, '.'); i > 0 {
			return host[:i]
		}
		return host
	}
	return ""
}

// Scrape reads every proxy's Prometheus endpoint and folds the
// source-reported istio_requests_total into service-graph edges.
func Scrape(ctx context.Context, endpoints map[string]string, seconds float64) ([]reports.Hop, error) {
	snap, err := Read(ctx, endpoints)
	if err != nil {
		return nil, err
	}
	hops, _ := Summarize(snap, seconds)
	return hops, nil
}

// Summarize folds a snapshot (or what moved between two) into
// service-graph edges and the per-service counters the checks read.
func Summarize(snap Snapshot, seconds float64) ([]reports.Hop, *Counters) {
	counters := NewCounters()
	type key struct{ src, dst, svc string }
	type acc struct {
		reports.Hop
		ok      int
		buckets map[float64]float64
		count   float64
	}
	edges := map[key]*acc{}
	mtls := map[key]bool{}
	names := make([]string, 0, len(snap))
	for n := range snap {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		fams := snap[name]

		sumByCluster := func(metric string, into map[string]float64) {
			for _, m := range fams[metric].GetMetric() {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "cluster_name" {
						if svc := serviceOfCluster(lp.GetValue()); svc != "" {
							into[svc] += m.GetCounter().GetValue()
						}
					}
				}
			}
		}
		sumByCluster(UpstreamRetries, counters.Retries)
		sumByCluster(EjectionsEnforced, counters.Ejections)
		sumByCluster(PendingOverflow, counters.Overflows)
		for _, m := range fams[CertificateRotations].GetMetric() {
			counters.Rotations += m.GetCounter().GetValue()
		}
		get := func(m *dto.Metric) (map[string]string, bool) {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			return l, l["reporter"] == "source"
		}
		edge := func(l map[string]string) *acc {
			k := key{l["source_workload"], l["destination_workload"], l["destination_service"]}
			e := edges[k]
			if e == nil {
				e = &acc{Hop: reports.Hop{Source: k.src, Destination: k.dst, Service: k.svc, Codes: map[string]int{}}, buckets: map[float64]float64{}}
				edges[k] = e
			}
			return e
		}
		// received counts, at the destination, n requests or connections
		// under their connection_security_policy.
		received := func(l map[string]string, n float64) {
			if l["connection_security_policy"] == "mutual_tls" {
				mtls[key{l["source_workload"], l["destination_workload"], l["destination_service"]}] = true
			}
			svc := l["destination_service_name"]
			if counters.Security[svc] == nil {
				counters.Security[svc] = map[string]float64{}
			}
			counters.Security[svc][l["connection_security_policy"]] += n
		}
		if f := fams[RequestsTotal]; f != nil {
			for _, m := range f.GetMetric() {
				l, src := get(m)
				if !src {
					// The destination side knows whether the connection was
					// mTLS; Istio's source reporter says "unknown".
					received(l, m.GetCounter().GetValue())
					continue
				}
				e := edge(l)
				n := int(m.GetCounter().GetValue())
				e.Requests += n
				e.Codes[l["response_code"]] += n
				if c, _ := strconv.Atoi(l["response_code"]); c >= 200 && c < 400 {
					e.ok += n
				}
				if f := l["response_flags"]; f != "-" && f != "" {
					if e.Flags == nil {
						e.Flags = map[string]int{}
					}
					e.Flags[f] += n
					svc := l["destination_service_name"]
					if counters.Flags[svc] == nil {
						counters.Flags[svc] = map[string]float64{}
					}
					for _, one := range strings.Split(f, ",") {
						counters.Flags[svc][one] += float64(n)
					}
				}
			}
		}
		// TCP connections (istio_tcp_connections_opened_total): at the
		// destination, each counts under its connection_security_policy
		// as a request does; at the source, each is an edge's request,
		// failed when a response flag (UF, UH, NC) marks it.
		if f := fams[TCPConnectionsOpened]; f != nil {
			for _, m := range f.GetMetric() {
				l, src := get(m)
				n := m.GetCounter().GetValue()
				if !src {
					received(l, n)
					continue
				}
				e := edge(l)
				e.Requests += int(n)
				e.ok += int(n)
			}
		}
		if f := fams[TCPConnectionsClosed]; f != nil {
			for _, m := range f.GetMetric() {
				l, src := get(m)
				fl := l["response_flags"]
				if !src || fl == "-" || fl == "" {
					continue
				}
				n := int(m.GetCounter().GetValue())
				e := edge(l)
				e.ok -= n
				if e.Flags == nil {
					e.Flags = map[string]int{}
				}
				e.Flags[fl] += n
				svc := l["destination_service_name"]
				if counters.Flags[svc] == nil {
					counters.Flags[svc] = map[string]float64{}
				}
				counters.Flags[svc][fl] += float64(n)
			}
		}
		if f := fams[RequestDuration]; f != nil {
			for _, m := range f.GetMetric() {
				l, src := get(m)
				if !src {
					continue
				}
				e := edge(l)
				for _, b := range m.GetHistogram().GetBucket() {
					e.buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
				}
				e.count += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	var out []reports.Hop
	for k, e := range edges {
		e.MTLS = mtls[k]
		if e.Requests > 0 {
			e.SuccessRate = float64(e.ok) / float64(e.Requests)
			if seconds > 0 {
				e.RPS = float64(e.Requests) / seconds
			}
		}
		e.P99 = bucketQuantile(e.buckets, e.count, 0.99)
		out = append(out, e.Hop)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Source != out[j].Source {
			return out[i].Source < out[j].Source
		}
		return out[i].Destination < out[j].Destination
	})
	return out, counters
}

// Fetch reads one proxy's Prometheus endpoint.
func Fetch(ctx context.Context, c *http.Client, url string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// bucketQuantile is the upper bound of the first bucket that holds the
// quantile: coarse, and never an underestimate.
func bucketQuantile(buckets map[float64]float64, count, q float64) float64 {
	if count == 0 {
		return 0
	}
	bounds := make([]float64, 0, len(buckets))
	for b := range buckets {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	last := 0.0
	for _, b := range bounds {
		if math.IsInf(b, 1) {
			continue
		}
		last = b
		if buckets[b] >= q*count {
			return b
		}
	}
	return last // beyond the last finite bucket: report its bound
}

// Snapshot is every proxy's metric families at one moment, by proxy.
type Snapshot map[string]map[string]*dto.MetricFamily

// Read reads every proxy's Prometheus endpoint.
func Read(ctx context.Context, endpoints map[string]string) (Snapshot, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	snap := Snapshot{}
	for name, url := range endpoints {
		fams, err := Fetch(ctx, client, url)
		if err != nil {
			return nil, fmt.Errorf("scrape %s: %w", name, err)
		}
		snap[name] = fams
	}
	return snap, nil
}

// Since is what moved from base to s: each counter and histogram series
// less its value in base, matched by proxy and label set. A series absent
// from base counts whole; one that went down (its proxy restarted, or a
// kept proxy, such as a reused cluster's gateway, was replaced) counts from
// zero. Without this, a proxy that outlives a scenario, such as the
// gateway of a reused kind cluster, reports the earlier scenarios' traffic.
func (s Snapshot) Since(base Snapshot) Snapshot {
	out := Snapshot{}
	for proxy, fams := range s {
		out[proxy] = map[string]*dto.MetricFamily{}
		for name, f := range fams {
			old := map[string]*dto.Metric{}
			if bf := base[proxy][name]; bf != nil {
				for _, m := range bf.GetMetric() {
					old[seriesKey(m)] = m
				}
			}
			d := proto.Clone(f).(*dto.MetricFamily)
			for _, m := range d.GetMetric() {
				if b := old[seriesKey(m)]; b != nil {
					subtractSeries(m, b)
				}
			}
			out[proxy][name] = d
		}
	}
	return out
}

// seriesKey identifies a series in its family by its label set.
func seriesKey(m *dto.Metric) string {
	pairs := make([]string, 0, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		pairs = append(pairs, l.GetName()+"\x00"+l.GetValue())
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "\x01")
}

// subtractSeries takes base's counts from m, a later reading of the same
// series, unless they went down.
func subtractSeries(m, base *dto.Metric) {
	if c := m.GetCounter(); c != nil && base.GetCounter() != nil {
		if v, b := c.GetValue(), base.GetCounter().GetValue(); v >= b {
			c.Value = proto.Float64(v - b)
		}
	}
	h, bh := m.GetHistogram(), base.GetHistogram()
	if h == nil || bh == nil || h.GetSampleCount() < bh.GetSampleCount() {
		return
	}
	h.SampleCount = proto.Uint64(h.GetSampleCount() - bh.GetSampleCount())
	h.SampleSum = proto.Float64(h.GetSampleSum() - bh.GetSampleSum())
	was := map[float64]uint64{}
	for _, b := range bh.GetBucket() {
		was[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	for _, b := range h.GetBucket() {
		if n := b.GetCumulativeCount(); n >= was[b.GetUpperBound()] {
			b.CumulativeCount = proto.Uint64(n - was[b.GetUpperBound()])
		}
	}
}
