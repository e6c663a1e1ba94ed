package meshmetrics

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

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
