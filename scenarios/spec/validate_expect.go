package spec

import (
	"math"
	"sort"
	"strings"

	"github.com/meshbench/meshbench/internal/suggest"
	"github.com/meshbench/meshbench/scenarios/spec/yamlnode"
	"github.com/meshbench/meshbench/sim/registry"
)

// The expect list, checked against the topology and the load.

// expectations checks the expect list.
func (v *validator) expectations() {
	s, l := v.s, v.l
	if len(s.Expect) == 0 {
		l.at("expect", "expect is empty: say what the run must show (split, successRate or latency)")
	}
	for i, e := range s.Expect {
		p := yamlnode.Item("expect", i)
		var set []string
		if e.Split != nil {
			set = append(set, "split")
		}
		if e.SuccessRate != nil {
			set = append(set, "successRate")
		}
		if e.Latency != nil {
			set = append(set, "latency")
		}
		for _, k := range []struct {
			name string
			set  bool
		}{{"status", e.Status != nil}, {"retries", e.Retries != nil}, {"ejections", e.Ejections != nil},
			{"overflows", e.Overflows != nil}, {"responseFlags", e.ResponseFlags != nil}, {"attempts", e.Attempts != nil},
			{"security", e.Security != nil}, {"rotations", e.Rotations != nil}, {"latencyShift", e.LatencyShift != nil},
			{"messages", e.Messages != nil}, {"deadline", e.Deadline != nil}, {"capacity", e.Capacity != nil}} {
			if k.set {
				set = append(set, k.name)
			}
		}
		switch len(set) {
		case 0:
			l.at(p, "an expectation sets one of %s", strings.Join(ExpectationKinds, ", "))
			continue
		case 1:
		default:
			l.at(p, "an expectation sets exactly one of %s; this one sets %s (make each its own list item)", strings.Join(ExpectationKinds, ", "), strings.Join(set, " and "))
			continue
		}
		switch {
		case e.Split != nil:
			v.split(p+".split", e.Split)
		case e.SuccessRate != nil:
			sp := p + ".successRate"
			if e.SuccessRate.Min <= 0 || e.SuccessRate.Min > 1 {
				if !l.ix.has(sp + ".min") {
					l.at(sp, "successRate.min is required, in (0,1], like 0.999")
				} else {
					l.at(sp+".min", "min %g is not in (0,1]", e.SuccessRate.Min)
				}
			}
			v.confidence(sp+".confidence", e.SuccessRate.Confidence)
			v.variant(sp+".variant", e.SuccessRate.Variant)
		case e.Status != nil:
			v.status(p+".status", e.Status)
		case e.Retries != nil:
			v.count(p+".retries", e.Retries.Service, e.Retries.Min, e.Retries.Max)
			v.noVariant(p+".retries.variant", "retries", e.Retries.Variant)
		case e.Ejections != nil:
			v.count(p+".ejections", e.Ejections.Service, e.Ejections.Min, e.Ejections.Max)
			v.noVariant(p+".ejections.variant", "ejections", e.Ejections.Variant)
		case e.Overflows != nil:
			v.count(p+".overflows", e.Overflows.Service, e.Overflows.Min, e.Overflows.Max)
			v.noVariant(p+".overflows.variant", "overflows", e.Overflows.Variant)
		case e.LatencyShift != nil:
			v.latencyShift(p+".latencyShift", e.LatencyShift)
		case e.Attempts != nil:
			v.count(p+".attempts", e.Attempts.Service, e.Attempts.Min, e.Attempts.Max)
			v.variant(p+".attempts.variant", e.Attempts.Variant)
		case e.Messages != nil:
			v.count(p+".messages", e.Messages.Service, e.Messages.Min, e.Messages.Max)
			v.variant(p+".messages.variant", e.Messages.Variant)
		case e.Deadline != nil:
			v.deadline(p+".deadline", e.Deadline)
		case e.Capacity != nil:
			v.capacity(p+".capacity", e.Capacity) // validate_plan.go
		case e.Security != nil:
			sp := p + ".security"
			v.count(sp, e.Security.Service, e.Security.Min, e.Security.Max)
			if e.Security.Policy != "mutual_tls" && e.Security.Policy != "none" {
				l.at(sp+".policy", "policy %q is not mutual_tls or none", e.Security.Policy)
			}
		case e.Rotations != nil:
			v.bounds(p+".rotations", e.Rotations.Min, e.Rotations.Max, math.Inf(1))
			v.noVariant(p+".rotations.variant", "rotations", e.Rotations.Variant)
		case e.ResponseFlags != nil:
			fp := p + ".responseFlags"
			v.count(fp, e.ResponseFlags.Service, e.ResponseFlags.Min, e.ResponseFlags.Max)
			if !contains(ResponseFlagNames, e.ResponseFlags.Flag) {
				l.at(fp+".flag", "unknown response flag %q%s; want one of %s", e.ResponseFlags.Flag, suggest.Hint(e.ResponseFlags.Flag, ResponseFlagNames), strings.Join(ResponseFlagNames, ", "))
			}
			v.variant(fp+".variant", e.ResponseFlags.Variant)
		case e.Latency != nil:
			lp := p + ".latency"
			stats := e.Latency.Stats
			if len(stats) == 0 {
				l.at(lp, "latency needs at least one of %s", strings.Join(LatencyStats, ", "))
			}
			keys := make([]string, 0, len(stats))
			for k := range stats {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				b := stats[k]
				switch {
				case !contains(LatencyStats, k):
					l.at(yamlnode.Join(lp, k), "unknown latency statistic %q%s; want one of %s (or variant)", k, suggest.Hint(k, append(LatencyStats, "variant")), strings.Join(LatencyStats, ", "))
				case b.Max < 0 || b.Min < 0:
					l.at(yamlnode.Join(lp, k), "%s bounds must not be negative", k)
				case b.Max == 0 && b.Min == 0:
					l.at(yamlnode.Join(lp, k), "%s needs max, min or both, like {max: 250ms} or {min: 1900ms, max: 2500ms}", k)
				case b.Max > 0 && b.Min > b.Max:
					l.at(yamlnode.Join(lp, k), "%s: min %s is above max %s", k, b.Min, b.Max)
				}
			}
			v.variant(lp+".variant", e.Latency.Variant)
		}
	}
}

func (v *validator) split(p string, e *SplitExpect) {
	l := v.l
	svc := v.services[e.Service]
	switch {
	case e.Service == "":
		l.at(p, "split.service is required (services: %s)", v.serviceList())
	case svc == nil:
		l.at(p+".service", "service %q matches no service in the topology (services: %s)", e.Service, v.serviceList())
	}
	if len(e.Weights) == 0 {
		l.at(p, "split.weights is required, like {v1: 90, v2: 10}")
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
		if e.Weights[k] < 0 || math.IsNaN(e.Weights[k]) || math.IsInf(e.Weights[k], 0) {
			l.at(wp, "weight %g must be a number >= 0", e.Weights[k])
		}
		if svc != nil && !hasVersion(svc, k) {
			l.at(wp, "%s has no version %q (versions: %s)", svc.Name, k, strings.Join(versionNames(svc), ", "))
		}
	}
	if len(e.Weights) > 0 && !(sum > 0) {
		l.at(p+".weights", "the weights sum to 0; they are shares of the responses")
	}
	if e.Tolerance < 0 || e.Tolerance >= 100 || math.IsNaN(e.Tolerance) {
		l.at(p+".tolerance", "tolerance %g must be percentage points, 0 <= tolerance < 100", e.Tolerance)
	}
	v.confidence(p+".confidence", e.Confidence)
	v.variant(p+".variant", e.Variant)
}

// ExpectationKinds are the keys an expectation may have.
var ExpectationKinds = []string{"split", "successRate", "latency", "status", "retries", "ejections", "overflows", "responseFlags", "attempts", "security", "rotations", "latencyShift", "messages", "deadline", "capacity"}

// ResponseFlagNames are the Envoy response flags the builtin sidecar sets
// (Envoy access log docs, %RESPONSE_FLAGS%).
var ResponseFlagNames = []string{"UH", "UF", "UO", "NR", "URX", "NC", "DC", "UT", "UR", "DI", "FI"}

// count checks a service-scoped count bound.
func (v *validator) count(p, service string, lo, hi *float64) {
	l := v.l
	switch {
	case service == "":
		l.at(p, "service is required (services: %s)", v.serviceList())
	case v.services[service] == nil:
		l.at(p+".service", "service %q matches no service in the topology (services: %s)", service, v.serviceList())
	}
	v.bounds(p, lo, hi, math.Inf(1))
}

// bounds checks optional min/max: at least one, non-negative, min <= max <= limit.
func (v *validator) bounds(p string, lo, hi *float64, limit float64) {
	l := v.l
	if lo == nil && hi == nil {
		l.at(p, "set min, max or both")
		return
	}
	for _, b := range []struct {
		name string
		v    *float64
	}{{"min", lo}, {"max", hi}} {
		if b.v != nil && (*b.v < 0 || *b.v > limit || math.IsNaN(*b.v)) {
			l.at(p+"."+b.name, "%s %g is not in [0, %g]", b.name, *b.v, limit)
		}
	}
	if lo != nil && hi != nil && *lo > *hi {
		l.at(p, "min %g is above max %g", *lo, *hi)
	}
}

func (v *validator) status(p string, e *StatusExpect) {
	l := v.l
	if e.Code < 100 || e.Code > 599 {
		l.at(p+".code", "status code %d is not in [100, 599]", e.Code)
	}
	if e.Share != nil {
		if *e.Share < 0 || *e.Share > 1 {
			l.at(p+".share", "share %g is not in [0, 1]", *e.Share)
		}
		if e.Min != nil || e.Max != nil {
			l.at(p, "set either share (a binomial test) or min/max bounds, not both")
		}
		v.confidence(p+".confidence", e.Confidence)
	} else {
		v.bounds(p, e.Min, e.Max, 1)
	}
	v.variant(p+".variant", e.Variant)
}

func (v *validator) confidence(p string, c float64) {
	if !(c > 0 && c < 1) {
		v.l.at(p, "confidence %g is not in (0,1); default %g", c, DefaultConfidence)
	}
}

// noVariant refuses a variant on a check that reads the sidecars'
// counters: they count every request, whatever variant sent it.
func (v *validator) noVariant(p, kind, name string) {
	if name != "" {
		v.l.at(p, "%s counts the sidecars' counters, which do not know the load's variants; a variant applies to split, successRate, latency, status, attempts and responseFlags", kind)
	}
}

func (v *validator) variant(p, name string) {
	if name == "" {
		return
	}
	var names []string
	for _, vr := range v.s.Load.Variants {
		if vr.Name == name {
			return
		}
		if !contains(names, vr.Name) {
			names = append(names, vr.Name)
		}
	}
	if len(names) == 0 {
		v.l.at(p, "variant %q: load has no variants", name)
		return
	}
	v.l.at(p, "variant %q is not a load variant (variants: %s)", name, strings.Join(names, ", "))
}

func hasVersion(svc *registry.Service, name string) bool {
	for _, ver := range svc.Versions {
		if ver.Name == name {
			return true
		}
	}
	return false
}

func versionNames(svc *registry.Service) []string {
	var out []string
	for _, ver := range svc.Versions {
		out = append(out, ver.Name)
	}
	return out
}

// podLabels are the labels of the pods of one version of a service.
func podLabels(svc *registry.Service, ver registry.Version) map[string]string {
	out := map[string]string{"app": svc.Name, "version": ver.Name}
	for k, val := range ver.Labels {
		out[k] = val
	}
	return out
}
