package expect

import (
	"slices"
	"sort"
	"strings"

	"github.com/meshbench/meshbench/internal/suggest"
	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/check"
)

// Latency bounds latency statistics, keyed by p50, p90, p99, p999, max or
// mean, of every request or of one variant's.
type Latency struct {
	// Variant restricts the check to one load variant's requests.
	Variant string `yaml:"variant"`
	// Stats bounds each named statistic.
	Stats map[string]Bound `yaml:",inline"`
}

// LatencyStats are the keys a Latency may use.
var LatencyStats = []string{"p50", "p90", "p99", "p999", "max", "mean"}

// Bound bounds a latency statistic from above, below or both.
type Bound struct {
	// Min is the smallest acceptable value ("a 504 after about 2 s"); 0: none.
	Min units.Duration `yaml:"min"`
	// Max is the largest acceptable value; 0: none. One of the two is required.
	Max units.Duration `yaml:"max"`
}

// Name is "latency".
func (*Latency) Name() string { return "latency" }

// Validate checks each statistic's name and bounds, and the variant.
func (e *Latency) Validate(env Env) {
	const p = "latency"
	if len(e.Stats) == 0 {
		env.At(p, "latency needs at least one of %s", strings.Join(LatencyStats, ", "))
	}
	keys := make([]string, 0, len(e.Stats))
	for k := range e.Stats {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b, kp := e.Stats[k], p
		if k != "" {
			kp += "." + k
		}
		switch {
		case !slices.Contains(LatencyStats, k):
			env.At(kp, "unknown latency statistic %q%s; want one of %s (or variant)", k, suggest.Hint(k, append(slices.Clone(LatencyStats), "variant")), strings.Join(LatencyStats, ", "))
		case b.Max < 0 || b.Min < 0:
			env.At(kp, "%s bounds must not be negative", k)
		case b.Max == 0 && b.Min == 0:
			env.At(kp, "%s needs max, min or both, like {max: 250ms} or {min: 1900ms, max: 2500ms}", k)
		case b.Max > 0 && b.Min > b.Max:
			env.At(kp, "%s: min %s is above max %s", k, b.Min, b.Max)
		}
	}
	variant(env, p+".variant", e.Variant)
}

// Judge compares the statistics of the requests (or the variant's) with the bounds.
func (e *Latency) Judge(out *Outcome) reports.Check {
	ms := func(d units.Duration) float64 { return float64(d.D().Microseconds()) / 1000 }
	minMs, maxMs := map[string]float64{}, map[string]float64{}
	for k, b := range e.Stats {
		if b.Min > 0 {
			minMs[k] = ms(b.Min)
		}
		if b.Max > 0 {
			maxMs[k] = ms(b.Max)
		}
	}
	lat := out.Latency
	if e.Variant != "" {
		lat = out.VariantLatency[e.Variant]
	}
	c := check.LatencyWithin(lat, minMs, maxMs, len(out.ofVariant(e.Variant)))
	c.Name += variantSuffix(e.Variant)
	return c
}
