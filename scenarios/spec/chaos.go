package spec

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/meshbench/meshbench/chaos"
	"github.com/meshbench/meshbench/internal/suggest"
	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/scenarios/expect"
	"github.com/meshbench/meshbench/scenarios/spec/yamlnode"
	"github.com/meshbench/meshbench/sim/registry"
)

// SteadyState is a scenario's steady-state hypothesis: checks that must
// hold in a short load phase before the faults and again in one after them,
// apart from the checks of the main phase, during the faults.
type SteadyState struct {
	// Duration of each of the two phases; default 2s.
	Duration units.Duration `yaml:"duration"`
	// Rate of their load; default the main load's rate.
	Rate units.Rate `yaml:"rate"`
	// Expect lists the checks of each phase (any kind but latencyShift
	// and capacity: expect.SteadyStateRefuser).
	Expect []expect.Expectation `yaml:"expect"`
}

// DefaultSteadyStateDuration is the length of each steady-state phase when
// the scenario gives none.
const DefaultSteadyStateDuration = units.Duration(2 * time.Second)

// ChaosStep is one entry of a scenario's chaos list: a fault, what it acts
// on, and when, as offsets from the start of the main load phase.
type ChaosStep struct {
	// Name names the fault in checks (latencyShift.fault) and on the
	// timeline; default "<type> <target>".
	Name string `yaml:"name"`
	// Fault is the fault type and its parameters.
	Fault FaultSpec `yaml:"fault"`
	// Target selects what the fault acts on: pods (by service, version, pod
	// name, a percent or a count of them) or, for mesh faults, a service's
	// routes (service, version, route). Control-plane faults take none.
	Target *ChaosTarget `yaml:"target"`
	// Peer, for network faults, limits them to the traffic from these pods
	// (default: from every caller); for a partition it is the other side.
	Peer *ChaosTarget `yaml:"peer"`
	// At is when the fault starts; default 0, the start of the load.
	At units.Duration `yaml:"at"`
	// For is how long it lasts; default until the load ends (a restart
	// lasts its delay).
	For units.Duration `yaml:"for"`
	// Every repeats it with this period; Times bounds the repetitions
	// (default: until the load ends).
	Every units.Duration `yaml:"every"`
	Times int            `yaml:"times"`
	// Ramp steps the fault's strength over each occurrence.
	Ramp *ChaosRamp `yaml:"ramp"`

	// Line is where the step starts in the scenario file.
	Line int `yaml:"-"`
	// step is the step as package chaos plays it, built when the scenario is read.
	step chaos.Step
}

// ChaosTarget selects pods or routes.
type ChaosTarget struct {
	Service string  `yaml:"service"`
	Version string  `yaml:"version"`
	Pod     string  `yaml:"pod"`
	Route   string  `yaml:"route"`
	Percent float64 `yaml:"percent"`
	Count   int     `yaml:"count"`
}

// ChaosRamp steps a fault's strength from its own values to To's in Steps
// equal steps over each occurrence (e.g. a latency rising from 50ms to 200ms).
type ChaosRamp struct {
	Steps int `yaml:"steps"`
	// To holds the values of the last step; only the fault's strength
	// fields (latency, jitter, delay, percent, rate, errorRate, stddev).
	To FaultSpec `yaml:"to"`
}

// FaultSpec is a fault as a scenario writes it: a type and the parameters
// that type takes.
type FaultSpec struct {
	// Type is one of chaos.Kinds: delay, abort, latency, bandwidth, reset,
	// blackhole, slowClose, partition, kill, restart, pause, appErrors,
	// appLatency, xdsOutage, configPush (identity: not supported yet).
	Type string `yaml:"type"`
	// Delay: a delay fault's delay, a slow close's delay, a restart's downtime.
	Delay units.Duration `yaml:"delay"`
	// Percent of the requests a delay or abort takes, 0 to 100; default 100.
	Percent *float64 `yaml:"percent"`
	// Status of an abort, or of the errors of appErrors.
	Status int `yaml:"status"`
	// Latency: a network latency, or the app's service time (appLatency).
	Latency units.Duration `yaml:"latency"`
	// Jitter of a network latency (uniform, ±).
	Jitter units.Duration `yaml:"jitter"`
	// StdDev and Dist shape appLatency's service time, as in the topology.
	StdDev units.Duration `yaml:"stddev"`
	Dist   string         `yaml:"dist"`
	// Rate of a bandwidth limit, like 64KB/s.
	Rate ByteRate `yaml:"rate"`
	// ErrorRate of appErrors, 0 to 1.
	ErrorRate *float64 `yaml:"errorRate"`
	// After: a reset comes this long after a connection's first bytes.
	After units.Duration `yaml:"after"`
	// NotReadyAfter: a killed pod stays in EDS this long; default 1s.
	NotReadyAfter *units.Duration `yaml:"notReadyAfter"`
	// Mode of an identity fault.
	Mode string `yaml:"mode"`
}

// ByteRate is a bandwidth written like "64KB/s" or "1MB/s", in KB/s.
type ByteRate int64

// UnmarshalYAML reads N KB/s or N MB/s.
func (r *ByteRate) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	mult := int64(0)
	for _, u := range []struct {
		suffix string
		kb     int64
	}{{"KB/s", 1}, {"MB/s", 1024}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.kb
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	// v*mult must not overflow into a negative bandwidth.
	if mult == 0 || err != nil || v <= 0 || v > math.MaxInt64/mult {
		return fmt.Errorf("invalid rate %q: want a positive whole number of KB/s or MB/s, like 64KB/s", n.Value)
	}
	*r = ByteRate(v * mult)
	return nil
}

// Which fields each fault type takes, needs, and may ramp.
var (
	faultFields = map[chaos.Kind][]string{
		chaos.KindDelay: {"delay", "percent"}, chaos.KindAbort: {"status", "percent"},
		chaos.KindLatency: {"latency", "jitter"}, chaos.KindBandwidth: {"rate"}, chaos.KindReset: {"after"},
		chaos.KindBlackhole: {}, chaos.KindSlowClose: {"delay"}, chaos.KindPartition: {},
		chaos.KindKill: {"notReadyAfter"}, chaos.KindRestart: {"delay", "notReadyAfter"}, chaos.KindPause: {},
		chaos.KindAppErrors: {"errorRate", "status"}, chaos.KindAppLatency: {"latency", "stddev", "dist"},
		chaos.KindControlPlaneOutage: {}, chaos.KindConfigPush: {}, chaos.KindIdentity: {"mode"},
	}
	faultRequired = map[chaos.Kind][]string{
		chaos.KindDelay: {"delay"}, chaos.KindAbort: {"status"}, chaos.KindLatency: {"latency"},
		chaos.KindBandwidth: {"rate"}, chaos.KindSlowClose: {"delay"}, chaos.KindAppErrors: {"errorRate"},
		chaos.KindAppLatency: {"latency"},
	}
	rampFields = map[chaos.Kind][]string{
		chaos.KindDelay: {"delay", "percent"}, chaos.KindAbort: {"percent"}, chaos.KindLatency: {"latency", "jitter"},
		chaos.KindBandwidth: {"rate"}, chaos.KindAppErrors: {"errorRate"}, chaos.KindAppLatency: {"latency", "stddev"},
	}
)

func kindNames() []string {
	var out []string
	for _, k := range chaos.Kinds {
		out = append(out, string(k))
	}
	return out
}

// Steps returns the scenario's chaos as package chaos plays it.
func (s *Scenario) Steps() []chaos.Step {
	out := make([]chaos.Step, len(s.Chaos))
	for i := range s.Chaos {
		out[i] = s.Chaos[i].step
	}
	return out
}

// chaos checks the steadyState and chaos sections and builds the steps;
// objs are the scenario's Istio objects, for a dry run of the mesh faults
// when they and the topology are sound (meshOK).
func (l *loader) chaos(v *validator, s *Scenario, objs []*meshObject, meshOK bool) {
	if ss := s.SteadyState; ss != nil {
		l.steadyState(v, s, ss)
	}
	names := map[string]bool{}
	for i := range s.Chaos {
		st := &s.Chaos[i]
		p := yamlnode.Item("chaos", i)
		st.Line = l.ix.line(p)
		if st.Name != "" {
			if names[st.Name] {
				l.at(p+".name", "chaos step %q is named twice", st.Name)
			}
			names[st.Name] = true
		}
		l.chaosStep(v, s, p, st)
	}
	// Mesh faults change the scenario's own VirtualServices: try each on them now.
	if meshOK {
		cfg := buildConfig(objs)
		for i, st := range s.Chaos {
			f := st.step.Faults
			if len(f) == 0 || f[0].Scope() != chaos.ScopeRoute {
				continue
			}
			t := chaos.Target{Service: st.step.Target.Service, Version: st.step.Target.Version, Route: st.step.Target.Route}
			probe := &networking.HTTPFaultInjection{Abort: &networking.HTTPFaultInjection_Abort{}}
			c := chaos.CopyConfig(cfg)
			if err := chaos.RouteFault(s.Topology.Namespace, t, probe)(&c); err != nil {
				l.at(yamlnode.Item("chaos", i)+".target", "%v", err)
			}
		}
	}
}

// steadyState checks the steady-state block and its expectations.
func (l *loader) steadyState(v *validator, s *Scenario, ss *SteadyState) {
	if ss.Duration < MinDuration || ss.Duration > units.Duration(time.Minute) {
		l.at("steadyState.duration", "duration %s is not in %s..1m", ss.Duration, MinDuration)
	}
	switch {
	case ss.Rate.Per == 0 && s.Load.Plan != nil:
		l.at("steadyState", "steadyState.rate is required with a load plan: the steady-state phases run at one constant rate")
	case l.ix.has("steadyState.rate"):
		v.rateLimit("steadyState.rate", ss.Rate) // the load's own rate is checked as the load's
	}
	v.expectations("steadyState.expect", ss.Expect)
}

// chaosStep checks one chaos step and builds it.
func (l *loader) chaosStep(v *validator, s *Scenario, p string, st *ChaosStep) {
	before := len(l.errs)
	fp := p + ".fault"
	kind := chaos.Kind(st.Fault.Type)
	allowed, known := faultFields[kind]
	switch {
	case st.Fault.Type == "":
		l.at(fp, "fault.type is required: one of %s", strings.Join(kindNames(), ", "))
		return
	case !known:
		l.at(fp+".type", "unknown fault type %q%s; want one of %s", st.Fault.Type, suggest.Hint(st.Fault.Type, kindNames()), strings.Join(kindNames(), ", "))
		return
	case kind == chaos.KindIdentity:
		l.at(fp+".type", "identity faults (expired or foreign certificates, a CA that stops issuing) as a chaos step: %v; give a pod a bad certificate from its start with the topology's cert: expired|foreign, and rotate with meshConfig.certTTL", chaos.ErrNotSupportedYet)
		return
	}
	// Fields the type does not take, and fields it needs.
	for _, name := range sortedKeys(yamlFields(reflect.TypeOf(FaultSpec{}))) {
		if name == "type" || !l.ix.has(fp+"."+name) || contains(allowed, name) {
			continue
		}
		l.at(fp+"."+name, "%s fault takes no %s%s", article(string(kind)), name, takes(allowed))
	}
	for _, name := range faultRequired[kind] {
		if !l.ix.has(fp + "." + name) {
			l.at(fp, "a %s fault needs %s", kind, name)
		}
	}
	f := l.buildFault(fp, kind, st.Fault)

	// What it acts on.
	probe := chaos.Step{Faults: []chaos.Fault{f}}
	scope := f.Scope()
	if st.Target != nil {
		probe.Target = l.chaosTarget(v, s, p+".target", *st.Target, scope == chaos.ScopeRoute)
	}
	if st.Peer != nil {
		if kind != chaos.KindPartition && !isNetwork(kind) {
			l.at(p+".peer", "only network faults (latency, bandwidth, reset, blackhole, slowClose, partition) take a peer")
		} else {
			probe.Peer = l.chaosTarget(v, s, p+".peer", *st.Peer, false)
		}
	}
	switch scope {
	case chaos.ScopeMesh:
		if st.Target != nil {
			l.at(p+".target", "a %s fault acts on the whole mesh: it takes no target", kind)
		}
	case chaos.ScopeRoute:
		if st.Target == nil || st.Target.Service == "" {
			l.at(p, "a %s fault needs target.service: the service whose routes it acts on", kind)
		} else if callers := v.callers(st.Target.Service); len(callers) == 0 {
			l.at(p+".target.service", "no service calls %s through a sidecar: %s faults act at the calling sidecar (VirtualServices bound to the mesh); fault a service that another calls, or use a network or app fault", st.Target.Service, kind)
		}
	case chaos.ScopePods:
		if st.Target == nil {
			l.at(p, "a %s fault needs a target: a service (and version), a pod, a percent or a count of pods", kind)
		}
	case chaos.ScopePair:
		if st.Target == nil || st.Peer == nil {
			l.at(p, "a partition needs a target and a peer: the two sides")
		} else if st.Target.Service != "" && st.Target.Service == st.Peer.Service && st.Target.Version == st.Peer.Version && st.Target.Pod == st.Peer.Pod {
			l.at(p+".peer", "a partition's two sides must differ")
		}
	}

	// When.
	sched := chaos.Schedule{At: st.At.D(), For: st.For.D(), Every: st.Every.D(), Times: st.Times}
	if timed, ok := f.(chaos.Timed); ok && sched.For == 0 {
		sched.For = timed.Duration() // a restart lasts its delay, a push a moment
	}
	if st.Ramp != nil {
		sched.Steps = st.Ramp.Steps
	}
	if st.At >= s.Load.Duration && s.Load.Duration > 0 {
		l.at(p+".at", "at %s is not before the end of the load (%s)", st.At, s.Load.Duration)
	}
	if err := sched.Validate(); err != nil {
		l.at(p, "%v", err)
	}
	faults := []chaos.Fault{f}
	if r := st.Ramp; r != nil {
		rp := p + ".ramp"
		ramps := rampFields[kind]
		switch {
		case ramps == nil:
			l.at(rp, "a %s fault cannot ramp (these can: delay, abort, latency, bandwidth, appErrors, appLatency)", kind)
		case r.Steps < 2:
			l.at(rp+".steps", "a ramp needs at least 2 steps")
		default:
			to := st.Fault
			n := 0
			for _, name := range sortedKeys(yamlFields(reflect.TypeOf(FaultSpec{}))) {
				if !l.ix.has(rp + ".to." + name) {
					continue
				}
				if !contains(ramps, name) {
					l.at(rp+".to."+name, "a %s fault ramps only %s", kind, strings.Join(ramps, " and "))
					continue
				}
				n++
				setField(&to, name, fieldOf(&r.To, name))
			}
			if n == 0 {
				l.at(rp+".to", "ramp.to needs the last step's %s", strings.Join(ramps, " or "))
			}
			if len(l.errs) == before {
				steps, err := chaos.Ramp(f, l.buildFault(rp+".to", kind, to), r.Steps)
				if err != nil {
					l.at(rp, "%v", err)
				}
				faults = steps
			}
		}
	}
	if len(l.errs) > before {
		return
	}
	st.step = chaos.Step{Name: st.Name, Faults: faults, Target: probe.Target, Peer: probe.Peer, Schedule: sched}
	if st.step.Name == "" {
		st.step.Name = string(kind)
		if st.Target != nil {
			st.step.Name += " " + probe.Target.String()
		}
	}
	if err := st.step.Validate(); err != nil {
		l.at(p, "%v", err)
	}
}

// article is "a x" or "an x".
func article(x string) string {
	if x != "" && strings.ContainsRune("aeiou", rune(x[0])) {
		return "an " + x
	}
	return "a " + x
}

func isNetwork(k chaos.Kind) bool {
	switch k {
	case chaos.KindLatency, chaos.KindBandwidth, chaos.KindReset, chaos.KindBlackhole, chaos.KindSlowClose:
		return true
	}
	return false
}

func takes(allowed []string) string {
	if len(allowed) == 0 {
		return " (it takes no parameters)"
	}
	return " (it takes " + strings.Join(allowed, ", ") + ")"
}

// buildFault makes the fault of a spec, checking its values.
func (l *loader) buildFault(fp string, kind chaos.Kind, f FaultSpec) chaos.Fault {
	percent := 100.0
	if f.Percent != nil {
		percent = *f.Percent
		if percent < 0 || percent > 100 {
			l.at(fp+".percent", "percent %g is not in [0, 100]", percent)
		}
	}
	notReady := chaos.DefaultNotReadyAfter
	if f.NotReadyAfter != nil {
		notReady = f.NotReadyAfter.D()
	}
	switch kind {
	case chaos.KindDelay:
		return chaos.Delay{Delay: f.Delay.D(), Percent: percent}
	case chaos.KindAbort:
		if f.Status < 200 || f.Status > 599 {
			l.at(fp+".status", "status %d is not in [200, 599]", f.Status)
		}
		return chaos.Abort{Status: f.Status, Percent: percent}
	case chaos.KindLatency:
		if f.Jitter > f.Latency {
			l.at(fp+".jitter", "jitter %s is larger than the latency %s", f.Jitter, f.Latency)
		}
		return chaos.Latency{Latency: f.Latency.D(), Jitter: f.Jitter.D()}
	case chaos.KindBandwidth:
		return chaos.Bandwidth{KBps: int64(f.Rate)}
	case chaos.KindReset:
		return chaos.Reset{After: f.After.D()}
	case chaos.KindBlackhole:
		return chaos.Blackhole{}
	case chaos.KindSlowClose:
		return chaos.SlowClose{Delay: f.Delay.D()}
	case chaos.KindPartition:
		return chaos.Partition{}
	case chaos.KindKill:
		return chaos.Kill{NotReadyAfter: notReady}
	case chaos.KindRestart:
		d := f.Delay.D()
		if d == 0 {
			d = time.Second
		}
		return chaos.Restart{Delay: d, NotReadyAfter: notReady}
	case chaos.KindPause:
		return chaos.Pause{}
	case chaos.KindAppErrors:
		rate := 0.0
		if f.ErrorRate != nil {
			rate = *f.ErrorRate
		}
		if rate < 0 || rate > 1 {
			l.at(fp+".errorRate", "errorRate %g is not in [0, 1]", rate)
		}
		if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
			l.at(fp+".status", "status %d is not in [400, 599]", f.Status)
		}
		return chaos.AppErrors{Rate: rate, Status: f.Status}
	case chaos.KindAppLatency:
		if !contains(latencyDists, f.Dist) {
			l.at(fp+".dist", "unknown distribution %q; want normal, exponential or uniform (or none for a fixed latency)", f.Dist)
		}
		return chaos.AppLatency{Latency: registry.Latency{Mean: f.Latency, StdDev: f.StdDev, Dist: f.Dist}}
	case chaos.KindControlPlaneOutage:
		return chaos.ControlPlaneOutage{}
	case chaos.KindConfigPush:
		return chaos.ConfigPush{}
	}
	return chaos.Identity{Mode: f.Mode}
}

// chaosTarget checks a target or peer against the topology.
func (l *loader) chaosTarget(v *validator, s *Scenario, p string, t ChaosTarget, routes bool) chaos.Selector {
	sel := chaos.Selector{Service: t.Service, Version: t.Version, Pod: t.Pod, Route: t.Route, Percent: t.Percent, Count: t.Count}
	if t.Service == "" && t.Pod == "" {
		l.at(p, "select a service (services: %s) or a pod", v.serviceList())
		return sel
	}
	svc := v.services[t.Service]
	if t.Service != "" && svc == nil {
		l.at(p+".service", "service %q matches no service in the topology (services: %s)", t.Service, v.serviceList())
	}
	if t.Version != "" && svc != nil && !hasVersion(svc, t.Version) {
		l.at(p+".version", "%s has no version %q (versions: %s)", svc.Name, t.Version, strings.Join(versionNames(svc), ", "))
	}
	if t.Version != "" && t.Service == "" {
		l.at(p+".version", "version needs service")
	}
	if t.Pod != "" {
		pods := podNames(s.Topology)
		if !contains(pods, t.Pod) {
			l.at(p+".pod", "no pod is named %q (pods: %s)", t.Pod, strings.Join(pods, ", "))
		}
		if t.Service != "" && !strings.HasPrefix(t.Pod, t.Service+"-") {
			l.at(p+".pod", "pod %s is not a pod of %s", t.Pod, t.Service)
		}
	}
	if routes && v.isTCP(t.Service) {
		// delay and abort are HTTP route faults; a TCP port has no routes.
		l.at(p+".service", "%s is a TCP service: delay and abort act on HTTP routes (use a network fault: latency, reset, blackhole)", t.Service)
	}
	if routes {
		for _, k := range []string{"pod", "percent", "count"} {
			if l.ix.has(p + "." + k) {
				l.at(p+"."+k, "mesh faults act on a service's routes: select them by service, version or route, not by %s", k)
			}
		}
	} else if t.Route != "" {
		l.at(p+".route", "only mesh faults (delay, abort) select a route")
	}
	if t.Percent < 0 || t.Percent > 100 || (l.ix.has(p+".percent") && t.Percent == 0) {
		l.at(p+".percent", "percent %g is not in (0, 100]", t.Percent)
	}
	if t.Count < 0 || (l.ix.has(p+".count") && t.Count == 0) {
		l.at(p+".count", "count %d must be at least 1", t.Count)
	}
	if t.Percent != 0 && t.Count != 0 {
		l.at(p, "set percent or count, not both")
	}
	return sel
}

// callers lists the services that call service.
func (v *validator) callers(service string) []string {
	var out []string
	for _, name := range v.names {
		if contains(v.services[name].AllCalls(), service) {
			out = append(out, name)
		}
	}
	return out
}

func podNames(t *registry.Topology) []string {
	var out []string
	for _, s := range t.Services {
		for _, ver := range s.Versions {
			for i := 0; i < max(ver.Replicas, 1); i++ {
				out = append(out, fmt.Sprintf("%s-%s-%d", s.Name, ver.Name, i))
			}
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// fieldOf and setField read and write a FaultSpec field by its YAML name.
func fieldOf(f *FaultSpec, name string) reflect.Value {
	rv := reflect.ValueOf(f).Elem()
	for i := 0; i < rv.NumField(); i++ {
		tag, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("yaml"), ",")
		if tag == name {
			return rv.Field(i)
		}
	}
	return reflect.Value{}
}

func setField(f *FaultSpec, name string, v reflect.Value) {
	if dst := fieldOf(f, name); dst.IsValid() && v.IsValid() {
		dst.Set(v)
	}
}
