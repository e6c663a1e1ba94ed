package run

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/catalog"
	"github.com/meshbench/meshbench/sim/local"
)

// verdicts are what the comparison reads of one run.
type verdicts struct {
	split, splitP        string // payment's v1/v2 shares and the split check's p-value
	splitOK, successOK   bool
	success              float64
	retries              float64 // the retries check's value
	retriesOK            bool
	attempts             float64 // most attempts the service saw
	failShare            float64 // share of calls that failed (the timeout cut them)
	codes                string
	p99                  float64
	latencyOK, proxyless bool
}

func verdictsOf(res *reports.Result) verdicts {
	v := verdicts{success: res.Status.SuccessRate, p99: res.Latency.P99, proxyless: true}
	if s := res.Split["payment"]; s != nil {
		n := float64(s["v1"] + s["v2"])
		v.split = fmt.Sprintf("%.1f/%.1f", 100*float64(s["v1"])/n, 100*float64(s["v2"])/n)
	}
	for _, c := range res.Checks {
		switch c.Kind {
		case "split":
			v.splitOK = c.Passed
			if c.PValue != nil {
				v.splitP = fmt.Sprintf("%.3g", *c.PValue)
			}
		case "successRate":
			v.successOK = c.Passed
		case "retries":
			v.retries, v.retriesOK = c.Observed["value"], c.Passed
		case "attempts":
			v.attempts = c.Observed["value"]
		case "latency":
			v.latencyOK = c.Passed
		}
	}
	// The codes, most frequent first: a route timeout races the deadline it
	// sets in the upstream's grpc-timeout, so a few calls end with the
	// server's DEADLINE_EXCEEDED even where the sidecar's UNAVAILABLE rules.
	var failed []string
	fail := 0
	for code, n := range res.Status.Codes {
		if code != "200" {
			fail += n
			failed = append(failed, code)
		}
	}
	sort.Slice(failed, func(i, j int) bool {
		ni, nj := res.Status.Codes[failed[i]], res.Status.Codes[failed[j]]
		return ni > nj || ni == nj && failed[i] < failed[j]
	})
	codes := make([]string, len(failed))
	for i, code := range failed {
		codes[i] = fmt.Sprintf("%s×%d", code, res.Status.Codes[code])
	}
	v.codes = strings.Join(codes, " ")
	if res.Load.Requests > 0 {
		v.failShare = float64(fail) / float64(res.Load.Requests)
	}
	// The calling sidecar reports order → payment only if the calls went through it.
	for _, h := range res.Hops {
		if strings.HasPrefix(h.Destination, "payment") {
			v.proxyless = false
		}
	}
	return v
}

// TestProxylessGRPCMatchesBuiltin runs the catalog's gRPC scenarios with
// the builtin sidecar and with proxyless gRPC (grpc-go's own xDS client,
// code no one here wrote) and asserts the same verdicts on the split, the
// retries and the deadline. Where they differ by design it asserts the
// difference (docs/fidelity.md, proxyless gRPC): a route timeout ends a
// proxyless call DEADLINE_EXCEEDED (order answers 504), where Envoy's local
// reply is UNAVAILABLE (503); UT cannot be judged without a sidecar.
func TestProxylessGRPCMatchesBuiltin(t *testing.T) {
	if testing.Short() {
		t.Skip("runs six scenarios, about 90 s")
	}
	names := []string{"grpc-canary-90-10", "grpc-retries-on-unavailable", "grpc-route-timeout"}
	got := map[string][2]verdicts{}
	for _, name := range names {
		var pair [2]verdicts
		for i, proxyless := range []bool{false, true} {
			sc, err := catalog.Load(name)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			res, err := Run(ctx, sc, Options{Runtime: local.Runtime{ProxylessGRPC: proxyless}, LoadTimeLimit: 5 * time.Minute})
			cancel()
			require.NoError(t, err, "%s proxyless=%v", name, proxyless)
			pair[i] = verdictsOf(res)
			require.Equal(t, proxyless, pair[i].proxyless, "%s: the calls to payment went through order's sidecar: %v", name, proxyless)
		}
		got[name] = pair
	}
	var tb strings.Builder
	fmt.Fprintf(&tb, "\n%-28s %-9s %-10s %-8s %-8s %-8s %-8s %-8s %-16s %-8s\n", "scenario", "data", "split", "p", "success", "retries", "attempts", "failed", "codes", "p99 ms")
	for _, name := range names {
		for i, dp := range []string{"builtin", "proxyless"} {
			v := got[name][i]
			fmt.Fprintf(&tb, "%-28s %-9s %-10s %-8s %-8.4f %-8.0f %-8.0f %-8.3f %-16s %-8.1f\n", name, dp, v.split, v.splitP, v.success, v.retries, v.attempts, v.failShare, v.codes, v.p99)
		}
	}
	t.Log(tb.String())

	// Split: both pass the chi-square test of 90/10.
	c := got["grpc-canary-90-10"]
	for i := range c {
		assert.True(t, c[i].splitOK, "split, data plane %d", i)
		assert.True(t, c[i].successOK, "success, data plane %d", i)
	}
	// Retries: both keep the success rate, retry about 0.42 times a call,
	// and never make more than 1 + 3 attempts.
	r := got["grpc-retries-on-unavailable"]
	for i := range r {
		assert.True(t, r[i].successOK, "success, data plane %d", i)
		assert.True(t, r[i].retriesOK, "retries, data plane %d", i)
		assert.InDelta(t, 4, r[i].attempts, 1e-9, "most attempts, data plane %d", i)
	}
	// Deadline: both cut the 400ms calls (about 20% of them) at 100ms.
	d := got["grpc-route-timeout"]
	for i := range d {
		assert.True(t, d[i].latencyOK, "latency bound, data plane %d", i)
		assert.GreaterOrEqual(t, d[i].failShare, 0.15)
		assert.LessOrEqual(t, d[i].failShare, 0.30)
	}
	assert.True(t, strings.HasPrefix(d[0].codes, "503×"), "builtin: mostly Envoy's local reply, UNAVAILABLE: %s", d[0].codes)
	assert.True(t, strings.HasPrefix(d[1].codes, "504×"), "proxyless: mostly grpc-go's DEADLINE_EXCEEDED: %s", d[1].codes)
}
