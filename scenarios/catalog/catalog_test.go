package catalog

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/scenarios/expect"
	"github.com/meshbench/meshbench/sim/meshconfig"
)

func TestCatalog(t *testing.T) {
	names := Names()
	assert.Subset(t, names, []string{"canary-90-10", "header-routing", "no-mesh-config"})
	assert.IsIncreasing(t, names)

	all, err := All()
	require.NoError(t, err, "every catalog scenario loads clean")
	require.Len(t, all, len(names))
	for i, s := range all {
		assert.Equal(t, names[i], s.Name, "a catalog file is named after its scenario")
		assert.Equal(t, "scenarios/catalog/"+names[i]+".yaml", s.Path)
		assert.NotEmpty(t, s.Description)
		assert.NotEmpty(t, s.Load.Target)
		assert.NotEmpty(t, s.Load.Path)
		assert.NotEmpty(t, s.Expect)
		data, err := files.ReadFile(names[i] + ".yaml")
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(string(data), "# Proves "), "%s starts with a comment saying what it proves", s.Path)
	}

	canary, err := Load("canary-90-10")
	require.NoError(t, err)
	require.Len(t, canary.Config.VirtualServices, 1)
	route := canary.Config.VirtualServices[0].Spec.Http[0].Route
	assert.Equal(t, []int32{90, 10}, []int32{route[0].Weight, route[1].Weight})
	require.IsType(t, &expect.Split{}, canary.Expect[0].Kind)
	assert.Equal(t, map[string]float64{"v1": 90, "v2": 10}, canary.Expect[0].Kind.(*expect.Split).Weights)
	require.IsType(t, &expect.Latency{}, canary.Expect[2].Kind)
	assert.Equal(t, units.Duration(time.Second), canary.Expect[2].Kind.(*expect.Latency).Stats["p99"].Max)
	assert.Equal(t, "scenarios/catalog/istio/payment-canary-90-10.yaml:2",
		canary.Config.Origin[meshconfig.Key("VirtualService", "default", "payment")])

	header, err := Load("header-routing")
	require.NoError(t, err)
	require.Len(t, header.Load.Variants, 2)
	assert.Equal(t, map[string]string{"end-user": "jason"}, header.Load.Variants[0].Headers)
	require.IsType(t, &expect.Split{}, header.Expect[0].Kind)
	assert.Equal(t, "jason", header.Expect[0].Kind.(*expect.Split).Variant)
	assert.Equal(t, expect.DefaultConfidence, header.Expect[0].Kind.(*expect.Split).Confidence)
	assert.Equal(t, "jason", header.Config.VirtualServices[0].Spec.Http[0].Match[0].Headers["end-user"].GetExact())

	plain, err := Load("no-mesh-config")
	require.NoError(t, err)
	assert.Empty(t, plain.Mesh)
	assert.Empty(t, plain.Config.VirtualServices)
	require.IsType(t, &expect.Split{}, plain.Expect[0].Kind)
	w := plain.Expect[0].Kind.(*expect.Split).Weights
	assert.InDelta(t, 2.0, w["v1"]/w["v2"], 0.001)

	_, err = Load("nope")
	assert.ErrorContains(t, err, `no catalog scenario "nope"`)
}
