package expect

import (
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/check"
)

// Split checks that a service's responses divide among its versions in
// the given proportions, within what chance explains at the given confidence.
type Split struct {
	// Service whose responses are counted.
	Service string `yaml:"service"`
	// Weights maps version name to its expected share, relative to the sum of
	// the weights (so {v1: 90, v2: 10} and {v1: 9, v2: 1} mean the same).
	Weights map[string]float64 `yaml:"weights"`
	// Confidence of the statistical test, in (0,1); default 0.999.
	Confidence float64 `yaml:"confidence"`
	// Tolerance, in percentage points, makes the check an equivalence test:
	// it passes unless some version's share is shown to lie further than
	// this from its weight's. For splits a load balancer makes, which lean
	// towards faster pods; a weighted route is judged exactly (0, the
	// default).
	Tolerance float64 `yaml:"tolerance"`
	// Variant restricts the check to one load variant's requests.
	Variant string `yaml:"variant"`
}

// Name is "split".
func (*Split) Name() string { return "split" }

// Default sets the default confidence.
func (e *Split) Default() { e.Confidence = orDefault(e.Confidence) }

// Validate checks the service, its versions and the weights.
func (e *Split) Validate(env Env) {
	const p = "split"
	versions, known := env.Versions(e.Service)
	switch {
	case e.Service == "":
		env.At(p, "split.service is required (services: %s)", serviceList(env))
	case !known:
		env.At(p+".service", "service %q matches no service in the topology (services: %s)", e.Service, serviceList(env))
	}
	if len(e.Weights) == 0 {
		env.At(p, "split.weights is required, like {v1: 90, v2: 10}")
	}
	keys := make([]string, 0, len(e.Weights))
	sum := 0.0
	for k, w := range e.Weights {
		keys = append(keys, k)
		sum += w
	}
	sort.Strings(keys)
	for _, k := range keys {
		wp := p + ".weights." + k
		if w := e.Weights[k]; w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			env.At(wp, "weight %g must be a number >= 0", w)
		}
		if e.Service != "" && known && !slices.Contains(versions, k) {
			env.At(wp, "%s has no version %q (versions: %s)", e.Service, k, strings.Join(versions, ", "))
		}
	}
	if len(e.Weights) > 0 && !(sum > 0) {
		env.At(p+".weights", "the weights sum to 0; they are shares of the responses")
	}
	if e.Tolerance < 0 || e.Tolerance >= 100 || math.IsNaN(e.Tolerance) {
		env.At(p+".tolerance", "tolerance %g must be percentage points, 0 <= tolerance < 100", e.Tolerance)
	}
	confidence(env, p+".confidence", e.Confidence)
	variant(env, p+".variant", e.Variant)
}

// Judge tests the versions' shares of the successful answers.
func (e *Split) Judge(out *Outcome) reports.Check {
	counts := map[string]int{}
	for _, s := range out.ofVariant(e.Variant) {
		if s.OK {
			if v, ok := s.Versions[e.Service]; ok {
				counts[v]++
			}
		}
	}
	c := check.SplitWithin(e.Service, e.Weights, counts, orDefault(e.Confidence), e.Tolerance)
	c.Name += variantSuffix(e.Variant)
	return c
}
