package run

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshbench/meshbench/internal/syncbuf"
	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/local"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/meshmetrics"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/runtime"
)

func startScenarioMesh(t *testing.T, sc *spec.Scenario, log *slog.Logger) runtime.Mesh {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := local.Runtime{}.Start(ctx, runtime.Spec{Topology: registry.DefaultTopology(), Config: sc.Config, Seed: 3, Log: log})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Stop(context.Background())) })
	return m
}

// editVS returns cfg with a changed deep copy of its first VirtualService.
func editVS(cfg meshconfig.Config, edit func(*networking.VirtualService)) meshconfig.Config {
	vs := cfg.VirtualServices[0].DeepCopy()
	edit(&vs.Spec)
	cfg.VirtualServices = append([]*networkingv1.VirtualService{vs}, cfg.VirtualServices[1:]...)
	return cfg
}

func withDefaults(sc *spec.Scenario) *scenario {
	sc.Load.Path, sc.Load.Method, sc.Load.Timeout = "/orders", "POST", spec.DefaultTimeout
	return &scenario{Scenario: *sc}
}

// The push lands mid-load however slow the machine: the load runs until
// enough requests have been answered after the mesh converged on the new
// config, then stops (bounded by count, not by time).
func TestConfigPushDuringLoadLosesNoRequest(t *testing.T) {
	sc := withDefaults(loadString(t, strings.Replace(scenarioYAML(10, 10), "rate: 100/s, duration: 6s", "rate: 50/s, duration: 10m", 1)))
	sc.Load.Timeout = units.Duration(30 * time.Second) // a slow machine queues; nothing may be lost
	m := startScenarioMesh(t, &sc.Scenario, nil)
	require.Equal(t, "1", m.Version())

	loadCtx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	var samples []sample
	done := make(chan struct{})
	go func() {
		defer close(done)
		samples, _ = attack(loadCtx, m.Entry().URL, sc, "default")
	}()
	answered := func() int {
		hops, err := meshmetrics.Scrape(context.Background(), m.MetricsEndpoints(), 1)
		if err != nil || len(hops) == 0 {
			return 0
		}
		return hops[0].Requests
	}
	// Push 50/50 once load flows.
	require.Eventually(t, func() bool { return answered() > 100 }, 2*time.Minute, 10*time.Millisecond)
	next := editVS(sc.Config, func(vs *networking.VirtualService) {
		vs.Http[0].Route[0].Weight, vs.Http[0].Route[1].Weight = 50, 50
	})
	v, err := m.Apply(context.Background(), next)
	require.NoError(t, err)
	require.Equal(t, "2", v)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, m.WaitConverged(ctx, v))
	// 400 more answers, every one sent after every proxy ACKed version 2.
	converged := answered()
	require.Eventually(t, func() bool { return answered() >= converged+400 }, 5*time.Minute, 10*time.Millisecond)
	stopLoad()
	<-done

	require.Greater(t, len(samples), 500)
	byVersion := map[string]map[string]int{}
	for _, s := range samples {
		require.True(t, s.ok(), "request lost during the push: code %d err %q", s.code, s.err)
		if byVersion[s.config] == nil {
			byVersion[s.config] = map[string]int{}
		}
		byVersion[s.config][s.versions["payment"]]++
	}
	require.Contains(t, byVersion, "1")
	require.Contains(t, byVersion, "2", "no request was routed under the pushed config")
	after := byVersion["2"]
	n := after["v1"] + after["v2"]
	require.GreaterOrEqual(t, n, 300, "split after the push: %v", after)
	// 0.12 is over five standard deviations of the share at N=300.
	assert.InDelta(t, 0.5, float64(after["v2"])/float64(n), 0.12, "split after the push: %v", after)
}

func TestNackLeavesLastGoodConfigAndReachesTheLog(t *testing.T) {
	sc := withDefaults(loadString(t, scenarioYAML(10, 10)))
	var logs syncbuf.Buffer
	m := startScenarioMesh(t, &sc.Scenario, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})))

	// A route whose regex RE2 cannot compile: validation would refuse it in a
	// scenario file, so it is built here to reach the data plane.
	bad := editVS(sc.Config, func(vs *networking.VirtualService) {
		vs.Http[0].Match = []*networking.HTTPMatchRequest{{Uri: &networking.StringMatch{MatchType: &networking.StringMatch_Regex{Regex: "/orders/("}}}}
	})
	v, err := m.Apply(context.Background(), bad)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = m.WaitConverged(ctx, v)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "invalid regex")
	assert.Contains(t, logs.String(), "xds NACK")
	assert.Contains(t, logs.String(), "invalid regex")

	// Traffic is still routed under the last good config.
	sc.Load.Duration = units.Duration(500 * time.Millisecond)
	sc.Load.Rate.Freq = 200
	samples, _ := attack(context.Background(), m.Entry().URL, sc, "default")
	require.NotEmpty(t, samples)
	for _, s := range samples {
		require.True(t, s.ok(), "code %d err %q", s.code, s.err)
		require.Equal(t, "1", s.config)
	}
}
