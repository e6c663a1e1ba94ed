package run

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/scenarios/catalog"
	"github.com/meshbench/meshbench/sim/local"
)

// TestRunCountsOnlyItsOwnTraffic drives one mesh twice, as a reused kind
// cluster's gateway serves scenario after scenario: the second run's hops
// count its own requests (and its warm-up's), not the first run's too.
func TestRunCountsOnlyItsOwnTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a mesh")
	}
	sc, err := catalog.Load("canary-90-10")
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
