package spec

import (
	"github.com/meshbench/meshbench/scenarios/expect"
	"github.com/meshbench/meshbench/scenarios/spec/yamlnode"
)

// The expect lists, each expectation checked by its kind (package expect)
// against the scenario as expectEnv shows it.

// expectations checks the expect list at field path list: "expect" or
// "steadyState.expect", whose kinds must be judgeable on a steady-state
// phase.
func (v *validator) expectations(list string, es []expect.Expectation) {
	l := v.l
	if len(es) == 0 {
		line := l.ix.line(list)
		if n := l.ix.values[parent(list)]; !l.ix.has(list) && n != nil {
			line = n.Line // where the block that lacks the list starts
		}
		l.add(l.display, line, list, "expect is empty: say what the run must show (split, successRate or latency)")
	}
	steady := list != "expect"
	for i := range es {
		e := &es[i]
		env := expectEnv{v: v, prefix: yamlnode.Item(list, i)}
		if r, ok := e.Kind.(expect.SteadyStateRefuser); ok && steady {
			env.At(e.Kind.Name(), "%s", r.NotSteady())
			continue
		}
		e.Validate(env)
	}
}

// expectEnv is the scenario as an expectation's Validate sees it, with
// problems reported at the expectation's field path.
type expectEnv struct {
	v      *validator
	prefix string
}

func (e expectEnv) At(p, format string, args ...any) {
	e.v.l.at(yamlnode.Join(e.prefix, p), format, args...)
}

func (e expectEnv) Has(p string) bool { return e.v.l.ix.has(yamlnode.Join(e.prefix, p)) }

func (e expectEnv) Services() []string { return e.v.names }

func (e expectEnv) Versions(service string) ([]string, bool) {
	svc := e.v.services[service]
	if svc == nil {
		return nil, false
	}
	return versionNames(svc), true
}

func (e expectEnv) Variants() []string {
	var out []string
	for _, vr := range e.v.s.Load.Variants {
		out = append(out, vr.Name)
	}
	return out
}

func (e expectEnv) Plan() (planned bool, peak float64) {
	if p := e.v.s.Load.Plan; p != nil {
		return true, p.Peak()
	}
	return false, 0
}

func (e expectEnv) Chaos() (steps int, named []string) {
	for _, st := range e.v.s.Chaos {
		if st.Name != "" {
			named = append(named, st.Name)
		}
	}
	return len(e.v.s.Chaos), named
}
