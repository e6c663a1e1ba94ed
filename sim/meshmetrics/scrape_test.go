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
