// Package derive turns a team's own Istio YAML into meshbench scenarios: it
// infers the topology the resources speak of (services, versions, callers)
// and derives, from each promise a resource makes (a weight, a match, a
// timeout, a retry policy, a fault, an mTLS mode, an outlier rule), a
// scenario that exercises it and the checks that judge it. Every service,
// version and check carries the file and line that gave rise to it; a
// promise that cannot be exercised is kept, with the reason.
package derive

import (
	"fmt"
	"sort"
	"strings"

	"github.com/meshbench/meshbench/scenarios/spec"
)

// Source is where a promise or an inferred item was read.
type Source struct {
	File string
	Line int
}

func (s Source) String() string { return fmt.Sprintf("%s:%d", s.File, s.Line) }

// Options shape the derived scenarios.
type Options struct {
	// Replicas is the pods per inferred version; default 2.
	Replicas int
	// Alpha is each statistical check's false-failure rate; default 1e-6.
	Alpha float64
	// Power is the probability that a check catches a deviation of Shift
	// from the promise; default 0.999.
	Power float64
	// Shift is the smallest deviation of a share (a split's weight, an
	// abort's percentage) that a check must catch; default 0.05.
	Shift float64
	// Rate is the load's requests per second; default 200.
	Rate int
	// MaxRate is how fast a load that needs more than loadTarget at Rate
	// may run instead (a split's thousands of requests); default 400, and
	// never below Rate.
	MaxRate int
}

// The design's α and power (DESIGN.md, "Facts that shape the checks": a
// split check at α = 1e-6 catching a 5-point shift with 99.9% power).
const (
	DefaultAlpha = 1e-6
	DefaultPower = 0.999
	DefaultShift = 0.05
	// DefaultRate is the derived loads' requests per second: a rate two
	// shared cores sustain beside the mesh they run.
	DefaultRate = 200
	// DefaultMaxRate is the most a long derived load is sped up to: two
	// of them at once stay within -parallel's default rate budget on two
	// cores (500/s per CPU) beside a load at DefaultRate.
	DefaultMaxRate = 400
)

func (o Options) withDefaults() Options {
	if o.Replicas <= 0 {
		o.Replicas = 2
	}
	if o.Alpha <= 0 || o.Alpha >= 1 {
		o.Alpha = DefaultAlpha
	}
	if o.Power <= 0 || o.Power >= 1 {
		o.Power = DefaultPower
	}
	if o.Shift <= 0 || o.Shift >= 1 {
		o.Shift = DefaultShift
	}
	if o.Rate <= 0 {
		o.Rate = DefaultRate
	}
	if o.MaxRate <= 0 {
		o.MaxRate = DefaultMaxRate
	}
	o.MaxRate = max(o.MaxRate, o.Rate)
	return o
}

// Check is one promise, the scenario that exercises it, or why there is none.
type Check struct {
	// Name is the scenario's name: unique, [a-z0-9-]+.
	Name string
	// Resource is "Kind namespace/name" of the resource that promises.
	Resource string
	// Promise says in words what the resource promises.
	Promise string
	// Source is the line of the promise.
	Source Source
	// Scenario exercises and judges the promise; nil when NotChecked.
	Scenario *Scenario
	// NotChecked says why the promise is not exercised.
	NotChecked string
}

// Note is an input document that is not taken, and why.
type Note struct {
	Source Source
	Text   string
}

// Plan is what a folder of Istio YAML promises, and how to check it.
type Plan struct {
	Topology Topology
	Checks   []Check
	// Notes are the documents left out (other Kubernetes kinds).
	Notes []Note
	// Objects are the Istio resources, as read; every scenario applies them all.
	Objects []*spec.IstioObject
	// entry is set when an allow-nothing policy would refuse the loads
	// where they enter: every scenario also applies EntryFile.
	entry bool
	// meshLines maps the lines of the written MeshFile to the input's.
	meshLines map[int]Source
}

// Derive reads Istio YAML and derives the plan. Bad input is an error with
// file and line (spec.Errors).
func Derive(inputs []spec.IstioInput, opt Options) (*Plan, error) {
	opt = opt.withDefaults()
	objs, skipped, err := spec.ReadIstio(inputs, "default")
	if err != nil {
		return nil, err
	}
	// Objects that name no namespace live in the one the others name, as
	// kubectl apply -n would put them.
	if ns := commonNamespace(objs); ns != "default" {
		if objs, skipped, err = spec.ReadIstio(inputs, ns); err != nil {
			return nil, err
		}
	}
	p := &Plan{Objects: objs}
	d := &deriver{opt: opt, plan: p, names: map[string]int{}}
	for _, s := range skipped {
		src := Source{s.File, s.Line}
		what := strings.TrimSpace(s.Kind + " " + s.Name)
		if s.Istio {
			d.notChecked(what, src, fmt.Sprintf("what %s %s promises", s.APIVersion, s.Kind),
				fmt.Sprintf("meshbench does not simulate %s; the other checks run without it", s.Kind))
			continue
		}
		p.Notes = append(p.Notes, Note{src, fmt.Sprintf("ignored %s (%s): not an Istio or Gateway API resource", what, s.APIVersion)})
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("no Istio or Gateway API resources in the input")
	}
	d.infer(objs)
	d.plan.Topology.paths = map[string]string{}
	for _, s := range d.plan.Topology.Services {
		if a := d.access(s); a.path != "" {
			d.plan.Topology.paths[s.Name] = a.path
		}
	}
	d.derive(objs)
	for _, o := range objs {
		if o.AuthorizationPolicy != nil && allowNothing(o, p.Topology.Namespace) {
			p.entry = true
		}
	}
	if p.entry {
		for _, c := range p.Checks {
			if c.Scenario != nil {
				c.Scenario.Mesh = append(c.Scenario.Mesh, map[string]string{"file": EntryFile})
			}
		}
	}
	return p, nil
}

// commonNamespace is the namespace the objects name, other than Istio's
// root namespace, when they agree on one; else "default".
func commonNamespace(objs []*spec.IstioObject) string {
	ns := ""
	for _, o := range objs {
		if !o.Has("metadata.namespace") || o.Namespace == rootNamespace {
			continue
		}
		if ns != "" && ns != o.Namespace {
			return "default"
		}
		ns = o.Namespace
	}
	if ns == "" {
		return "default"
	}
	return ns
}

// rootNamespace is Istio's default meshConfig.rootNamespace
// (sim/meshconfig.RootNamespace).
const rootNamespace = "istio-system"

// deriver holds the work in progress.
type deriver struct {
	opt   Options
	plan  *Plan
	names map[string]int
}

// add records a check, making its name unique.
func (d *deriver) add(c Check) {
	base := sanitize(c.Name)
	name := base
	if n := d.names[base]; n > 0 {
		name = fmt.Sprintf("%s-%d", base, n+1)
	}
	d.names[base]++
	c.Name = name
	if c.Scenario != nil {
		c.Scenario.Name = name
		c.Scenario.Description = fmt.Sprintf("%s: %s %s", c.Source, c.Resource, c.Promise)
	}
	d.plan.Checks = append(d.plan.Checks, c)
}

// notChecked records a promise that is not exercised.
func (d *deriver) notChecked(resource string, src Source, promise, why string) {
	d.add(Check{Name: resource + "-not-checked", Resource: resource, Promise: promise, Source: src, NotChecked: why})
}

// sanitize makes a scenario name: lower-case letters, digits and dashes.
func sanitize(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimRight(b.String(), "-")
	if len(out) > 60 {
		out = strings.TrimRight(out[:60], "-")
	}
	if out == "" {
		out = "check"
	}
	return out
}

// Item is one inferred service, version or check, with its source.
type Item struct {
	Kind   string // service, caller, version, check
	Name   string
	Source Source
	Detail string
}

// Inventory lists every inferred service (and caller), version and
// derived check, in that order, each with its source line.
func (p *Plan) Inventory() []Item {
	var out []Item
	for _, s := range p.Topology.Services {
		kind, detail := "service", ""
		if s.Caller {
			kind, detail = "caller", "calls what its AuthorizationPolicy guards"
		}
		if s.Port != 0 {
			detail = fmt.Sprintf("port %d", s.Port)
		}
		if s.Protocol != "" {
			detail = strings.TrimSpace(detail + " " + s.Protocol)
		}
		if s.Selects != nil {
			detail = fmt.Sprintf("selects %s version %s", s.Selects.Service, s.Selects.Version)
		}
		out = append(out, Item{kind, s.Name, s.Source, detail})
		for _, v := range s.Versions {
			detail := fmt.Sprintf("%d pods", v.Replicas)
			if len(v.Subsets) > 0 {
				detail += ", subsets " + strings.Join(v.Subsets, ", ")
			}
			out = append(out, Item{"version", s.Name + "/" + v.Name, v.Source, detail})
		}
	}
	for _, c := range p.Checks {
		if c.Scenario != nil {
			out = append(out, Item{"check", c.Name, c.Source, c.Resource + " " + c.Promise})
		}
	}
	return out
}

// Group is a resource and its promises' checks, in the order derived.
type Group struct {
	// Resource is "Kind namespace/name", as each check's Resource.
	Resource string
	// Source is where the resource starts; for a kind meshbench does not
	// simulate, the line of its first promise.
	Source Source
	Checks []Check
}

// ByResource groups the checks by the resource that promises them, in
// the order of the input (file, then line).
func (p *Plan) ByResource() []Group {
	starts := map[string]Source{}
	for _, o := range p.Objects {
		starts[o.Kind+" "+o.Namespace+"/"+o.Name] = Source{o.File, o.Line}
	}
	var out []Group
	index := map[string]int{}
	for _, c := range p.Checks {
		i, ok := index[c.Resource]
		if !ok {
			src, found := starts[c.Resource]
			if !found {
				src = c.Source
			}
			i = len(out)
			index[c.Resource] = i
			out = append(out, Group{Resource: c.Resource, Source: src})
		}
		out[i].Checks = append(out[i].Checks, c)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Source, out[j].Source
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	return out
}
