package scenarios

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/sim/local"
)

func parseSnapshot(t *testing.T, proxy, text string) metricsSnapshot {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	require.NoError(t, err)
	return metricsSnapshot{proxy: fams}
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
	d := now.since(base)
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

// TestRunCountsOnlyItsOwnTraffic drives one mesh twice, as a reused kind
// cluster's gateway serves scenario after scenario: the second run's hops
// count its own requests (and its warm-up's), not the first run's too.
func TestRunCountsOnlyItsOwnTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a mesh")
	}
	sc, err := CatalogScenario("canary-90-10")
	require.NoError(t, err)
	sc.Load.Rate = units.Rate{Freq: 100, Per: time.Second}
	sc.Load.Duration = units.Duration(time.Second)
	sc.Expect = nil
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := Options{Runtime: local.Runtime{}}
	mesh, err := StartMesh(ctx, sc, opts)
	require.NoError(t, err)
	defer mesh.Stop(context.Background())
	for run := 1; run <= 2; run++ {
		res, err := Drive(ctx, mesh, sc, opts)
		require.NoError(t, err)
		gw := 0
		for _, h := range res.Hops {
			if h.Source == "istio-ingressgateway" {
				gw += h.Requests
			}
		}
		assert.GreaterOrEqual(t, gw, res.Load.Requests, "run %d", run)
		assert.LessOrEqual(t, gw, res.Load.Requests+WarmupRequests(100), "run %d: the gateway's hop counted another run's requests", run)
	}
}
