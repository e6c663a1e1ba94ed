// Package expect holds the kinds of check a scenario's expect list may
// name: split, successRate, latency and the others. Each kind is a type
// in a file of its own, with the YAML fields of its mapping, that
// validates itself against the scenario (Env) and judges itself on the
// run's Outcome; the registry (registry.go) maps the YAML key to the type.
package expect

import "github.com/meshbench/meshbench/reports"

// Kind is one expectation kind, decoded from its mapping.
type Kind interface {
	// Name is the kind's YAML key, like "split".
	Name() string
	// Validate reports what is wrong with the expectation through env,
	// at field paths relative to the expectation ("split.weights.v1").
	Validate(env Env)
	// Judge checks the expectation on the run's outcome.
	Judge(out *Outcome) reports.Check
}

// Defaulter is a Kind with defaults to fill in after decoding and before
// Validate: a confidence, a statistic.
type Defaulter interface {
	Default()
}

// SteadyStateRefuser is a Kind that cannot be judged on a steady-state
// phase; NotSteady says why, as the error for steadyState.expect.
type SteadyStateRefuser interface {
	NotSteady() string
}

// Env is what validation needs to know of the scenario. The scenario's
// loader implements it; paths are relative to the expectation item.
type Env interface {
	// At reports a problem at the field path p ("" is the item itself).
	At(p, format string, args ...any)
	// Has says whether the field p is present in the file.
	Has(p string) bool
	// Services are the topology's service names, in its order.
	Services() []string
	// Versions are a service's version names; ok is false when the
	// topology has no such service.
	Versions(service string) (versions []string, ok bool)
	// Variants are the names of the load's variants, in the file's order.
	Variants() []string
	// Plan says whether the load has a steps or ramp plan, and its highest
	// rate in requests per second (0 when unknown).
	Plan() (planned bool, peak float64)
	// Chaos says how many chaos steps the scenario has and the names of
	// those that have one.
	Chaos() (steps int, named []string)
}
