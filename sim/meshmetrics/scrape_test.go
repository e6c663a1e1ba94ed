package meshmetrics

import (
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func parseSnapshot(t *testing.T, proxy, text string) Snapshot {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	require.NoError(t, err)
	return Snapshot{proxy: fams}
}

func TestSnapshotSinceSubtractsSeriesBySeries(t *testing.T) {
	base := parseSnapshot(t, "gw", `# TYPE c counter
c{a="1"} 10
c{a="2"} 5
# TYPE h histogram
h_bucket{a="1",le="10"} 4
h_bucket{a="1",le="+Inf"} 6
h_sum{a="1"} 100
h_count{a="1"} 6
`)
	now := parseSnapshot(t, "gw", `# TYPE c counter
c{a="1"} 25
c{a="2"} 3
c{a="3"} 7
# TYPE h histogram
h_bucket{a="1",le="10"} 9
h_bucket{a="1",le="+Inf"} 16
h_sum{a="1"} 250
h_count{a="1"} 16
`)
	d := now.Since(base)
	got := map[string]float64{}
	for _, m := range d["gw"]["c"].GetMetric() {
		got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
	}
	// a=2 went down (a restart): it counts from zero; a=3 is new: whole.
	assert.Equal(t, map[string]float64{"1": 15, "2": 3, "3": 7}, got)
	h := d["gw"]["h"].GetMetric()[0].GetHistogram()
	assert.EqualValues(t, 10, h.GetSampleCount())
	assert.EqualValues(t, 150, h.GetSampleSum())
	assert.EqualValues(t, 5, h.GetBucket()[0].GetCumulativeCount())
	// The snapshot it was taken from is left as it was.
	assert.EqualValues(t, 25, now["gw"]["c"].GetMetric()[0].GetCounter().GetValue())
}

// What a destination reports counts under its connection_security_policy,
// requests and TCP connections alike, and marks the hop it ends as mTLS;
// the source side makes the hop.
func TestSummarizeCountsWhatEachDestinationReceived(t *testing.T) {
	snap := parseSnapshot(t, "payment-v1-0", `# TYPE istio_requests_total counter
istio_requests_total{reporter="destination",source_workload="order-v1",destination_workload="payment-v1",destination_service="payment.default.svc.cluster.local",destination_service_name="payment",connection_security_policy="mutual_tls",response_code="200",response_flags="-"} 7
istio_requests_total{reporter="destination",source_workload="unknown",destination_workload="payment-v1",destination_service="payment.default.svc.cluster.local",destination_service_name="payment",connection_security_policy="none",response_code="200",response_flags="-"} 2
istio_requests_total{reporter="source",source_workload="order-v1",destination_workload="payment-v1",destination_service="payment.default.svc.cluster.local",destination_service_name="payment",connection_security_policy="unknown",response_code="200",response_flags="-"} 7
# TYPE istio_tcp_connections_opened_total counter
istio_tcp_connections_opened_total{reporter="destination",source_workload="order-v1",destination_workload="echo-v1",destination_service="echo.default.svc.cluster.local",destination_service_name="echo",connection_security_policy="mutual_tls"} 3
`)
	hops, c := Summarize(snap, 1)
	assert.Equal(t, map[string]map[string]float64{
		"payment": {"mutual_tls": 7, "none": 2},
		"echo":    {"mutual_tls": 3},
	}, c.Security)
	require.Len(t, hops, 1)
	assert.Equal(t, "order-v1", hops[0].Source)
	assert.Equal(t, 7, hops[0].Requests)
	assert.True(t, hops[0].MTLS, "the destination saw the hop's requests over mTLS")
}
