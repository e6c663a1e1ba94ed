package reports

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// WriteRun writes smp.json beside result.json; decoded, it holds the
// spec's fields (proto3 JSON names) and the extensions.
func TestSMPExport(t *testing.T) {
	r := fixture()
	r.Latency.Min = 0.5
	r.Load.Plan = "steps 100/s for 10s, 300/s for 15s"
	r.Hops = []Hop{
		{Source: "ingress", Destination: "frontend", Flags: map[string]int{"UO": 2}},
		{Source: "frontend", Destination: "payment", Flags: map[string]int{"UO": 1, "URX": 4}},
	}
	r.Steps = []Step{{Index: 1, Start: 0, End: 10, TargetRate: 100, AchievedRate: 99.9, Requests: 1000, Successes: 1000, SuccessRate: 1, Latency: Latency{P99: 3}}}
	dir := t.TempDir()
	_, err := WriteRun(dir, r)
	require.NoError(t, err)

	data, err := os.ReadFile(filepath.Join(dir, SMPFile))
	require.NoError(t, err)
	// The spec's names, as protojson writes them.
	var raw struct {
		Config map[string]any `json:"config"`
		Result map[string]any `json:"result"`
	}
	require.NoError(t, json.Unmarshal(data, &raw))
	for _, k := range []string{"smpVersion", "id", "name", "labels", "clients", "duration"} {
		assert.Contains(t, raw.Config, k)
	}
	for _, k := range []string{"smpVersion", "id", "labels", "startTime", "endTime", "latenciesMs", "actualQPS", "testId"} {
		assert.Contains(t, raw.Result, k)
	}
	client := raw.Config["clients"].([]any)[0].(map[string]any)
	for _, k := range []string{"internal", "loadGenerator", "protocol", "rps", "endpointUrl"} {
		assert.Contains(t, client, k)
	}

	var got SMP
	require.NoError(t, json.Unmarshal(data, &got))
	res := got.Result
	assert.Equal(t, "canary-90-10-20260314T150926Z", res.ID)
	assert.Equal(t, "canary-90-10", res.TestID)
	assert.Equal(t, SMPSpec, res.SMPVersion)
	assert.Equal(t, time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC), res.StartTime)
	assert.Equal(t, time.Date(2026, 3, 14, 15, 9, 57, 250_000_000, time.UTC), res.EndTime)
	assert.Equal(t, SMPLatency{Min: 0.5, Average: 1.5, P50: 1.234, P90: 2.5, P99: 7.891, Max: 22.75, P999: 15.5}, res.LatenciesMs)
	assert.Equal(t, 199.8, res.ActualQPS)
	assert.Equal(t, map[string]int{"200": 4985, "503": 7, "0": 3}, res.StatusCodes)
	assert.Equal(t, map[string]int{"UO": 3, "URX": 4}, res.ResponseFlags)
	assert.Equal(t, r.Steps, res.Steps)
	assert.Equal(t, 0.998, res.SuccessRate)
	assert.Equal(t, "steps 100/s for 10s, 300/s for 15s", res.Labels["plan"])

	cfg := got.Config
	assert.Equal(t, "canary-90-10", cfg.Name)
	assert.Equal(t, "25s", cfg.Duration)
	assert.Equal(t, []SMPClient{{Internal: true, LoadGenerator: "vegeta", Protocol: "http", RPS: 200, EndpointURL: []string{"http://127.0.0.1:15001/checkout"}}}, cfg.Clients)
}
