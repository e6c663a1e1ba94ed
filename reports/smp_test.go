package reports

import (
	"bytes"
	"encoding/json"
	"math"
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

// planFixture is the fixture with a three-step plan whose third step breaks
// a capacity check's p99 bound of 20 ms.
func planFixture() *Result {
	r := fixture()
	r.Load.Plan = "steps 200/s for 5s, 400/s for 5s, 800/s for 5s"
	for i, p99 := range []float64{5.5, 12.25, 31} {
		rate := 200 * math.Pow(2, float64(i))
		r.Steps = append(r.Steps, Step{Index: i + 1, Start: float64(5 * i), End: float64(5 * (i + 1)), TargetRate: rate, AchievedRate: rate - 0.5,
			Requests: int(5 * rate), Successes: int(5 * rate), SuccessRate: 1, Latency: Latency{P50: 1, P90: 2, P99: p99, P999: 2 * p99}})
	}
	r.Checks = append(r.Checks, Check{Name: "capacity", Kind: "capacity", Summary: "held up to 400/s (want >= 800/s)",
		Expected: map[string]float64{"min": 800, "p99": 20}, Observed: map[string]float64{"capacity": 400}})
	return r
}

func TestReportsShowThePlansSteps(t *testing.T) {
	var html, md bytes.Buffer
	require.NoError(t, HTML(&html, planFixture()))
	require.NoError(t, Markdown(&md, planFixture()))

	page := html.String()
	assert.Contains(t, page, `<table id="steps">`)
	assert.Contains(t, page, `<p id="step-break">p99 first exceeds the capacity bound of 20 ms at step 3 (800 req/s): 31 ms.</p>`)
	assert.Contains(t, page, `<td class="num bad">31</td>`)
	assert.Contains(t, page, `<td class="num">12.2</td>`)
	assert.Contains(t, page, "<dt>plan</dt><dd>steps 200/s for 5s, 400/s for 5s, 800/s for 5s</dd>")

	text := md.String()
	assert.Contains(t, text, "**Plan:** steps 200/s for 5s, 400/s for 5s, 800/s for 5s")
	assert.Contains(t, text, "| 3 | 10–15 s | 800 | 799.5 | 4000 | 100% | 1 | 2 | 31 ⚠ | 62 |")
	assert.Contains(t, text, "p99 first exceeds the capacity bound of 20 ms at step 3 (800 req/s): 31 ms.")

	// Without a plan, nothing of it shows.
	html.Reset()
	require.NoError(t, HTML(&html, fixture()))
	assert.NotContains(t, html.String(), `id="steps"`)
}
