package expect

import (
	"math"
	"slices"
	"strings"
)

// Validation rules shared by several kinds.

// DefaultConfidence is the confidence of a statistical check when the
// scenario gives none.
const DefaultConfidence = 0.999

// orDefault is a confidence, or DefaultConfidence for none (0): the one
// place that default is given.
func orDefault(c float64) float64 {
	if c == 0 {
		return DefaultConfidence
	}
	return c
}

func confidence(env Env, p string, c float64) {
	if !(c > 0 && c < 1) {
		env.At(p, "confidence %g is not in (0,1); default %g", c, DefaultConfidence)
	}
}

func serviceList(env Env) string { return strings.Join(env.Services(), ", ") }

// service checks that a required service names one of the topology's.
func service(env Env, p, name string) {
	if name == "" {
		env.At(p, "service is required (services: %s)", serviceList(env))
	} else if _, ok := env.Versions(name); !ok {
		env.At(p+".service", "service %q matches no service in the topology (services: %s)", name, serviceList(env))
	}
}

// count checks a service-scoped count bound.
func count(env Env, p, svc string, lo, hi *float64) {
	service(env, p, svc)
	bounds(env, p, lo, hi, math.Inf(1))
}

// bounds checks optional min/max: at least one, non-negative, min <= max <= limit.
func bounds(env Env, p string, lo, hi *float64, limit float64) {
	if lo == nil && hi == nil {
		env.At(p, "set min, max or both")
		return
	}
	for _, b := range []struct {
		name string
		v    *float64
	}{{"min", lo}, {"max", hi}} {
		if b.v != nil && (*b.v < 0 || *b.v > limit || math.IsNaN(*b.v)) {
			env.At(p+"."+b.name, "%s %g is not in [0, %g]", b.name, *b.v, limit)
		}
	}
	if lo != nil && hi != nil && *lo > *hi {
		env.At(p, "min %g is above max %g", *lo, *hi)
	}
}

// variant checks that a variant, if named, is one of the load's.
func variant(env Env, p, name string) {
	if name == "" {
		return
	}
	var names []string
	for _, v := range env.Variants() {
		if v == name {
			return
		}
		if !slices.Contains(names, v) {
			names = append(names, v)
		}
	}
	if len(names) == 0 {
		env.At(p, "variant %q: load has no variants", name)
		return
	}
	env.At(p, "variant %q is not a load variant (variants: %s)", name, strings.Join(names, ", "))
}

// noVariant refuses a variant on a check that reads the sidecars'
// counters: they count every request, whatever variant sent it.
func noVariant(env Env, p, kind, name string) {
	if name != "" {
		env.At(p, "%s counts the sidecars' counters, which do not know the load's variants; a variant applies to split, successRate, latency, status, attempts and responseFlags", kind)
	}
}
