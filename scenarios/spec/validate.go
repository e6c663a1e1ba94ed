package spec

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/meshbench/meshbench/internal/suggest"
	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/scenarios/spec/yamlnode"
	"github.com/meshbench/meshbench/sim/registry"
)

// The validator checks a scenario once it is read: the topology and the
// load (here), the expectations (validate_expect.go), and the Istio
// resources both on their own (strict decoding of each spec, package protoyaml)
// and against the topology (hosts, subsets, ports, weights:
// validate_mesh.go and the other validate_*.go).
//
// The Istio rules follow Istio's own code, cited where they are applied:
// pkg/config/validation/validation.go (the admission webhook's checks),
// pilot/pkg/model/config.go (how short host names resolve) and
// pilot/pkg/networking/core/route/route.go (how routes become Envoy config).
// Where meshbench is stricter than Istio the comment says so and why.

// ---------------------------------------------------------------------------
// Checks against the topology.

// validator checks a decoded scenario; problems go to the loader.
type validator struct {
	l *loader
	s *Scenario
	// services by name, in topology order.
	services map[string]*registry.Service
	names    []string
	// subsets by service name, from the DestinationRules.
	subsets map[string]map[string]subsetDef
}

type subsetDef struct {
	labels map[string]string
	origin string // file:line of the subset
	// empty is a subset whose labels select no pod of the service (IST0173).
	empty bool
}

func newValidator(l *loader, s *Scenario) *validator {
	v := &validator{l: l, s: s, services: map[string]*registry.Service{}, subsets: map[string]map[string]subsetDef{}}
	for i := range s.Topology.Services {
		svc := &s.Topology.Services[i]
		if _, dup := v.services[svc.Name]; !dup && svc.Name != "" {
			v.services[svc.Name] = svc
			v.names = append(v.names, svc.Name)
		}
	}
	return v
}

// serviceList is "order, payment" for messages.
func (v *validator) serviceList() string { return strings.Join(v.names, ", ") }

var (
	// Kubernetes label values (version names and label values).
	labelValueRE = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`)
	// Kubernetes label keys: an optional DNS prefix and a name.
	labelKeyRE = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
	// HTTP header field names (RFC 9110 token).
	headerNameRE   = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")
	scenarioNameRE = regexp.MustCompile(`^[a-z0-9-]+$`)
	httpMethods    = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	latencyDists   = []string{"", "normal", "exponential", "uniform"}
)

// Load limits: long enough to measure, short enough for a test suite.
const (
	MinDuration = units.Duration(100 * time.Millisecond)
	MaxDuration = units.Duration(10 * time.Minute)
)

// topology checks the services; false when the topology is unusable, in
// which case checks of the mesh resources against it are skipped.
func (v *validator) topology() bool {
	before := len(v.l.errs)
	s, l := v.s, v.l
	if !scenarioNameRE.MatchString(s.Name) {
		if s.Name == "" {
			l.at("name", "name is required")
		} else {
			l.at("name", "invalid name %q: use lower-case letters, digits and '-'", s.Name)
		}
	}
	t := s.Topology
	if !labelRE.MatchString(t.Namespace) || len(t.Namespace) > 63 {
		l.at("topology.namespace", "invalid namespace %q: want lower-case letters, digits and '-'", t.Namespace)
	}
	if len(t.Services) == 0 {
		l.at("topology.services", "the topology has no services")
	}
	first := map[string]string{}
	for i, svc := range t.Services {
		p := yamlnode.Item("topology.services", i)
		switch {
		case svc.Name == "":
			l.at(p, "service name is required")
		case len(svc.Name) > 63 || !labelRE.MatchString(svc.Name):
			l.at(p+".name", "invalid service name %q: want lower-case letters, digits and '-'", svc.Name)
		case first[svc.Name] != "":
			l.at(p+".name", "service %s is declared twice (first at %s)", svc.Name, first[svc.Name])
		default:
			first[svc.Name] = fmt.Sprintf("line %d", l.ix.line(p+".name"))
		}
		if svc.Port < 1 || svc.Port > 65535 {
			l.at(p+".port", "port %d is not in 1..65535", svc.Port)
		}
		if svc.TargetPort < 1 || svc.TargetPort > 65535 {
			l.at(p+".targetPort", "targetPort %d is not in 1..65535", svc.TargetPort)
		}
		if !strings.HasPrefix(svc.Path, "/") {
			l.at(p+".path", "path %q must start with /", svc.Path)
		}
		v.protocol(p, svc)
		v.grpcCall(p, svc)
		if svc.Selects != nil {
			v.selectingService(p, svc) // validate_gamma.go
		} else if len(svc.Versions) == 0 {
			l.at(p, "service %s has no versions; give it at least one, like {name: v1}", svc.Name)
		}
		seen := map[string]bool{}
		for j, ver := range svc.Versions {
			vp := yamlnode.Item(p+".versions", j)
			switch {
			case ver.Name == "":
				l.at(vp, "version name is required")
			case len(ver.Name) > 63 || !labelValueRE.MatchString(ver.Name):
				l.at(vp+".name", "invalid version name %q: it becomes the label version=%s, so use letters, digits, '-', '_' and '.'", ver.Name, ver.Name)
			case seen[ver.Name]:
				l.at(vp+".name", "version %s of %s is declared twice", ver.Name, svc.Name)
			}
			seen[ver.Name] = true
			if ver.Replicas < 0 {
				l.at(vp+".replicas", "replicas %d must not be negative", ver.Replicas)
			}
			if ver.Cert != "" && ver.Cert != "foreign" && ver.Cert != "expired" {
				l.at(vp+".cert", "cert %q is not one of foreign, expired", ver.Cert)
			}
			if ver.Cert != "" && !ver.HasSidecar() {
				l.at(vp+".cert", "a version without a sidecar holds no certificate")
			}
			if ver.ErrorRate < 0 || ver.ErrorRate > 1 {
				l.at(vp+".errorRate", "errorRate %g is not in [0,1]", ver.ErrorRate)
			}
			if ver.ErrorStatus < 100 || ver.ErrorStatus > 599 {
				l.at(vp+".errorStatus", "errorStatus %d is not an HTTP status", ver.ErrorStatus)
			}
			if !contains(latencyDists, ver.Latency.Dist) {
				l.at(vp+".latency.dist", "unknown distribution %q; want normal, exponential or uniform (or none for a fixed latency)", ver.Latency.Dist)
			}
			keys := make([]string, 0, len(ver.Labels))
			for k := range ver.Labels {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				lp := vp + ".labels." + k
				switch {
				case k == "app" || k == "version":
					l.at(lp, "label %s is set by meshbench (app=<service>, version=<version>)", k)
				case len(k) > 317 || !labelKeyRE.MatchString(k):
					l.at(lp, "invalid label key %q", k)
				case len(ver.Labels[k]) > 63 || !labelValueRE.MatchString(ver.Labels[k]):
					l.at(lp, "invalid label value %q", ver.Labels[k])
				}
			}
		}
		v.calls(p+".calls", svc.Name, svc.Calls)
		v.onCalleeError(p+".onCalleeError", svc.OnCalleeError)
		for j, ver := range svc.Versions {
			v.calls(yamlnode.Item(p+".versions", j)+".calls", svc.Name+"/"+ver.Name, ver.Calls)
			v.onCalleeError(yamlnode.Item(p+".versions", j)+".onCalleeError", ver.OnCalleeError)
		}
	}
	v.podCount()
	if cycle := v.callCycle(); cycle != nil {
		l.at("topology.services", "the calls form a cycle: %s", strings.Join(cycle, " → "))
	}
	return len(v.l.errs) == before
}

// calls checks one calls list of the service svc (of a version of it,
// caller "svc/version").
func (v *validator) calls(p, caller string, calls []string) {
	svc, _, _ := strings.Cut(caller, "/")
	for j, callee := range calls {
		cp := yamlnode.Item(p, j)
		switch {
		case callee == svc:
			v.l.at(cp, "service %s calls itself", caller)
		case !contains(v.names, callee):
			v.l.at(cp, "%s calls %q, which matches no service in the topology (services: %s)", caller, callee, v.serviceList())
		}
	}
}

// onCalleeError checks what a service (or version) does when a call fails.
func (v *validator) onCalleeError(p, mode string) {
	if mode != "" && mode != "fail" && mode != "degrade" {
		v.l.at(p, "onCalleeError %q is not fail or degrade%s", mode, suggest.Hint(mode, []string{"fail", "degrade"}))
	}
}

// podCount refuses a topology of more than MaxPods pods, at the replicas
// (or the version) that go past the limit.
func (v *validator) podCount() {
	const huge = 1 << 30 // per version, so that the sum cannot overflow
	total, crossing := 0, ""
	for i, svc := range v.s.Topology.Services {
		for j, ver := range svc.Versions {
			total += max(0, min(ver.Replicas, huge))
			if total > MaxPods && crossing == "" {
				crossing = yamlnode.Item(yamlnode.Item("topology.services", i)+".versions", j) + ".replicas"
			}
		}
	}
	if crossing != "" {
		v.l.at(crossing, "the topology has %d pods; a mesh holds at most %d (each pod and the ingress gateway take an address of one loopback /24)", total, MaxPods)
	}
}

// callCycle finds a cycle in the call graph, as the list of services on it
// with the first repeated at the end; nil when there is none.
func (v *validator) callCycle() []string {
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(name string) []string
	visit = func(name string) []string {
		state[name] = active
		stack = append(stack, name)
		// A version's own calls are edges too: any version's call may close a cycle.
		for _, callee := range v.services[name].AllCalls() {
			if callee == name || v.services[callee] == nil {
				continue // reported on its own
			}
			switch state[callee] {
			case active:
				for i, s := range stack {
					if s == callee {
						return append(append([]string{}, stack[i:]...), callee)
					}
				}
			case unseen:
				if c := visit(callee); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
		return nil
	}
	for _, name := range v.names {
		if state[name] == unseen {
			if c := visit(name); c != nil {
				return c
			}
		}
	}
	return nil
}

// load checks the load section.
func (v *validator) load() {
	ld, l := &v.s.Load, v.l
	switch {
	case ld.Target == "":
		l.at("load.target", "load.target is required: the service the requests go to (services: %s)", v.serviceList())
	case v.services[ld.Target] == nil:
		l.at("load.target", "target %q matches no service in the topology (services: %s)", ld.Target, v.serviceList())
	default:
		v.tcpTarget("load.target", ld.Target)
	}
	if ld.Path != "" && !strings.HasPrefix(ld.Path, "/") {
		l.at("load.path", "path %q must start with /", ld.Path)
	}
	if !contains(httpMethods, ld.Method) {
		l.at("load.method", "unsupported method %q; want one of %s", ld.Method, strings.Join(httpMethods, ", "))
	}
	if ld.Plan != nil {
		v.plan() // validate_plan.go
	} else if ld.Rate.Per == 0 || ld.Rate.Freq <= 0 {
		l.at("load.rate", "load.rate is required, like 500/s (or a load.plan)")
	}
	v.rateLimit("load.rate", ld.Rate)
	switch {
	case ld.Plan != nil:
	case ld.Duration == 0:
		l.at("load.duration", "load.duration is required, like 10s")
	case ld.Duration < MinDuration || ld.Duration > MaxDuration:
		l.at("load.duration", "duration %s is not in %s..%s", ld.Duration, MinDuration, MaxDuration)
	case ld.Rate.PerSecond() <= MaxRate && ld.Rate.PerSecond()*ld.Duration.D().Seconds() > MaxRequests:
		l.at("load.duration", "%s for %s is %.0f requests; the limit is %d (every sample is kept for the checks)",
			ld.Rate, ld.Duration, ld.Rate.PerSecond()*ld.Duration.D().Seconds(), MaxRequests)
	}
	if ld.Timeout <= 0 {
		l.at("load.timeout", "timeout must be positive")
	}
	if ld.Concurrency < 0 || ld.Concurrency > MaxWorkers {
		l.at("load.concurrency", "concurrency %d is not in 1..%d (0 or absent: no cap but the load generator's)", ld.Concurrency, MaxWorkers)
	}
	v.headers("load.headers", ld.Headers)
	seen := map[string]bool{}
	for i, vr := range ld.Variants {
		p := yamlnode.Item("load.variants", i)
		switch {
		case vr.Name == "":
			l.at(p, "variant name is required")
		case !scenarioNameRE.MatchString(vr.Name):
			l.at(p+".name", "invalid variant name %q: use lower-case letters, digits and '-'", vr.Name)
		case seen[vr.Name]:
			l.at(p+".name", "variant %s is declared twice", vr.Name)
		}
		seen[vr.Name] = true
		if vr.Weight <= 0 {
			l.at(p+".weight", "variant weight must be > 0 (it is the variant's share of the requests)")
		}
		v.headers(p+".headers", vr.Headers)
		if vr.Method != "" && !contains(httpMethods, vr.Method) {
			l.at(p+".method", "unsupported method %q; want one of %s", vr.Method, strings.Join(httpMethods, ", "))
		}
		if vr.Target != "" && v.services[vr.Target] == nil {
			l.at(p+".target", "target %q matches no service in the topology (services: %s)", vr.Target, v.serviceList())
		} else if vr.Target != "" {
			v.tcpTarget(p+".target", vr.Target)
		}
	}
}

// rateLimit refuses a rate above MaxRate.
func (v *validator) rateLimit(p string, r units.Rate) {
	if r.PerSecond() > MaxRate {
		v.l.at(p, "rate %s is %.0f requests per second; the limit is %.0f/s", r, r.PerSecond(), MaxRate)
	}
}

func (v *validator) headers(p string, h map[string]string) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !headerNameRE.MatchString(k) {
			v.l.at(yamlnode.Join(p, k), "invalid header name %q", k)
		}
	}
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
