package derive

import (
	"fmt"
	"math"
	"slices"
	"time"

	networking "istio.io/api/networking/v1alpha3"
	securityapi "istio.io/api/security/v1beta1"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/registry"
)

// Envoy's outlier detection defaults (api/envoy/config/cluster/v3/outlier_detection.proto):
// consecutive_5xx 5, interval 10s, base_ejection_time 30s, max_ejection_percent 10.
const (
	envoyConsecutive5xx     = 5
	envoyBaseEjectionTime   = 30 * time.Second
	envoyMaxEjectionPercent = 10
	envoyInterval           = 10 * time.Second
	maxOutlierReplicas      = 10
)

// destinationRule derives the outlier detection check; the rest of a
// DestinationRule's traffic policy is listed as not checked.
func (d *deriver) destinationRule(o *spec.IstioObject) {
	spec := &o.DestinationRule.Spec
	res := "DestinationRule " + o.Namespace + "/" + o.Name
	at := func(f string) Source { return Source{o.File, o.LineOf(f)} }
	name, ok := d.serviceName(spec.Host)
	if !ok {
		return
	}
	svc := d.plan.Topology.Service(name)
	tp := spec.GetTrafficPolicy()
	switch why := d.refused(svc); {
	case why != "" && (tp.GetOutlierDetection() != nil || tp.GetConnectionPool() != nil):
		d.notChecked(res, at("spec.trafficPolicy"), "its outlier detection and connection pool", why)
	default:
		if tp.GetOutlierDetection() != nil {
			d.outlier(o, svc)
		}
		if tp.GetConnectionPool() != nil {
			d.connectionPool(o, svc)
		}
	}
	if tp.GetLoadBalancer() != nil {
		d.notChecked(res, at("spec.trafficPolicy.loadBalancer"), "the load balancing policy", "no check judges how requests spread over pods")
	}
	if tp.GetTls() != nil {
		d.notChecked(res, at("spec.trafficPolicy.tls"), "the client TLS mode", "checked only through PeerAuthentication's derived checks")
	}
	for i, s := range spec.Subsets {
		if s.GetTrafficPolicy() != nil {
			d.notChecked(res, at(fmt.Sprintf("spec.subsets[%d].trafficPolicy", i)), "subset "+s.Name+"'s traffic policy",
				"a subset's own traffic policy is not derived yet")
		}
	}
}

// poolLatency is the app's service time in a connection pool check.
const poolLatency = 100 * time.Millisecond

// maxPoolRate bounds the load a connection pool check may drive.
const maxPoolRate = 1000

// connectionPool: requests beyond the pool's connections and pending
// queue (or its active request limit) are refused at once, 503 UO
// (Envoy's circuit breakers: max_connections + max_pending_requests,
// max_requests; Istio maps tcp.maxConnections, http.http1MaxPendingRequests
// and http.http2MaxRequests to them and leaves the others at 2^32-1:
// cluster_traffic_policy.go applyConnectionPool and
// getDefaultCircuitBreakerThresholds, as sim/xdsgen applyConnectionPool).
func (d *deriver) connectionPool(o *spec.IstioObject, svc *Service) {
	res := "DestinationRule " + o.Namespace + "/" + o.Name
	src := Source{o.File, o.LineOf("spec.trafficPolicy.connectionPool")}
	limit := poolLimit(o.DestinationRule.Spec.GetTrafficPolicy().GetConnectionPool())
	promise := fmt.Sprintf("refuses requests beyond %d in flight with 503 UO", limit)
	if limit == 0 {
		d.notChecked(res, src, "connection pool limits",
			"no pending or active request limit: requests beyond the connections queue, and no check counts connections")
		return
	}
	// In flight ≈ rate × latency (Little's law): twice the limit overflows.
	rate := int(math.Ceil(2 * float64(limit) / poolLatency.Seconds()))
	if rate > maxPoolRate {
		d.notChecked(res, src, promise, fmt.Sprintf("exceeding it needs %d requests/s, more than the derived load sends (%d/s)", rate, maxPoolRate))
		return
	}
	caller := d.callerFor(svc)
	load := Options{Rate: rate}.load(caller, minRequests)
	expect := []map[string]any{
		{"overflows": map[string]any{"service": svc.Name, "min": 1}},
		{"responseFlags": map[string]any{"service": svc.Name, "flag": "UO", "min": 1}},
	}
	topo := d.plan.Topology.registryTopology(map[string][]string{caller: {svc.Name}}, func(s *registry.Service) {
		if s.Name == svc.Name {
			for i := range s.Versions {
				s.Versions[i].Latency = registry.Latency{Mean: units.Duration(poolLatency)}
			}
		}
	})
	d.add(Check{
		Name: o.Name + "-connection-pool", Resource: res, Source: src,
		Promise:  promise + fmt.Sprintf(": at %d requests/s of %s each, some overflow", rate, poolLatency),
		Scenario: &Scenario{Seed: 1, Topology: topo, Mesh: []map[string]string{{"file": MeshFile}}, Load: load, Expect: expect},
	})
}

// smallestPool is the lowest limit (poolLimit) of the connection pools
// the DestinationRules for the services set, at any level (the rule's,
// a port's, a subset's), 0 when none limits them.
func (d *deriver) smallestPool(services []string) int {
	smallest := 0
	take := func(cp *networking.ConnectionPoolSettings) {
		if l := poolLimit(cp); l > 0 && (smallest == 0 || l < smallest) {
			smallest = l
		}
	}
	policy := func(tp *networking.TrafficPolicy) {
		take(tp.GetConnectionPool())
		for _, pl := range tp.GetPortLevelSettings() {
			take(pl.GetConnectionPool())
		}
	}
	for _, o := range d.plan.Objects {
		dr := o.DestinationRule
		if dr == nil {
			continue
		}
		if name, ok := d.serviceName(dr.Spec.Host); !ok || !slices.Contains(services, name) {
			continue
		}
		policy(dr.Spec.GetTrafficPolicy())
		for _, sub := range dr.Spec.Subsets {
			policy(sub.GetTrafficPolicy())
		}
	}
	return smallest
}

// poolLimit is the requests a connection pool admits in flight before it
// refuses with 503 UO (connections plus the pending queue, or the active
// request limit when lower), 0 when it sets no such limit.
func poolLimit(cp *networking.ConnectionPoolSettings) int {
	c, p, r := int(cp.GetTcp().GetMaxConnections()), int(cp.GetHttp().GetHttp1MaxPendingRequests()), int(cp.GetHttp().GetHttp2MaxRequests())
	limit := 0
	if c > 0 && p > 0 {
		limit = c + p
	}
	if r > 0 && (limit == 0 || r < limit) {
		limit = r
	}
	return limit
}

// outlier: one pod that fails every request is ejected, and the success
// rate holds but for the errors before each ejection.
func (d *deriver) outlier(o *spec.IstioObject, svc *Service) {
	od := o.DestinationRule.Spec.GetTrafficPolicy().GetOutlierDetection()
	res := "DestinationRule " + o.Namespace + "/" + o.Name
	src := Source{o.File, o.LineOf("spec.trafficPolicy.outlierDetection")}
	k := envoyConsecutive5xx
	switch {
	case od.GetConsecutive_5XxErrors() != nil:
		k = int(od.GetConsecutive_5XxErrors().GetValue())
	case od.GetConsecutiveGatewayErrors() != nil:
		// A 503 is a gateway error (502, 503, 504: Envoy's outlier
		// detection docs, consecutive gateway failure).
		k = int(od.GetConsecutiveGatewayErrors().GetValue())
	}
	base := envoyBaseEjectionTime
	if od.GetBaseEjectionTime() != nil {
		base = od.GetBaseEjectionTime().AsDuration()
	}
	maxPct := envoyMaxEjectionPercent
	if od.GetMaxEjectionPercent() > 0 {
		maxPct = int(od.GetMaxEjectionPercent())
	}
	promise := fmt.Sprintf("ejects a pod after %d consecutive 5xx for %s", k, base)
	if k <= 0 {
		d.notChecked(res, src, promise, "no consecutive-error rule is enforced")
		return
	}
	// The pod is ejected only while the ejected hosts stay within
	// maxEjectionPercent (sim/sidecar outlier.go, Envoy's outlier detector):
	// the cluster needs 100/maxEjectionPercent hosts.
	version, hosts := d.trafficVersion(svc)
	need := max(2, int(math.Ceil(100/float64(maxPct))))
	if need > maxOutlierReplicas {
		d.notChecked(res, src, promise, fmt.Sprintf("maxEjectionPercent %d%% needs %d pods behind the service before one may be ejected", maxPct, need))
		return
	}
	extra := max(0, need-hosts)
	interval := envoyInterval
	if od.GetInterval() != nil {
		interval = od.GetInterval().AsDuration()
	}
	caller := d.callerFor(svc)
	load := d.opt.load(caller, minRequests)
	// Each ejection costs k errors; the pod comes back after base × the
	// times it was ejected, and again k errors eject it. Envoy ejects on
	// the k-th consecutive 5xx at once, inline; interval is only the sweep
	// that brings hosts back (and runs the success-rate detectors):
	// outlier_detection.proto's interval, "the time interval between
	// ejection analysis sweeps", and the architecture overview's ejection
	// algorithm, which "runs inline (for example in the case of consecutive
	// 5xx)". So past the first interval the errors are those of the
	// returns alone: the check of the requests sent after it (the issue's
	// "ejected within the interval, and the success rate after holds")
	// allows k a return, plus one return's margin for a fault that went in
	// late. The load runs a window after the interval of requests enough
	// for that bound; growing it may add returns, hence the few rounds
	// (the bounds are those of the load's final length).
	dur, _ := time.ParseDuration(load.Duration)
	returns := 1 + outlierReturns(dur, base, interval)
	failures := float64(k * (1 + returns))
	n := max(requestsOf(load), int(40*failures*float64(hosts+extra)))
	// The check is about time (the interval), so its load keeps Rate: a
	// faster one would shorten the window past the interval.
	atRate := d.opt
	atRate.MaxRate = atRate.Rate
	for range 8 {
		load = atRate.load(caller, n)
		dur, _ = time.ParseDuration(load.Duration)
		returns = 1 + outlierReturns(dur, base, interval)
		failures = float64(k * (1 + returns))
		want := int(math.Ceil(interval.Seconds()*float64(rateOf(load)))) + 40*(k*returns+5)
		if want <= n || n >= maxRequests {
			break
		}
		n = min(want, maxRequests)
	}
	// A connection pool on the same rule refuses what exceeds its limit
	// (503 UO), its own promise: half its limit in flight keeps this one
	// about ejection, however slow the machine runs.
	poolNote := ""
	if limit := poolLimit(o.DestinationRule.Spec.GetTrafficPolicy().GetConnectionPool()); limit > 0 {
		load.Concurrency = max(1, limit/2)
		poolNote = fmt.Sprintf(" (%d in flight at most, within its connection pool)", load.Concurrency)
	}
	rn := float64(requestsOf(load))
	min := 1 - 2*(failures+5)/rn
	expect := []map[string]any{
		{"ejections": map[string]any{"service": svc.Name, "min": 1}},
		{"successRate": map[string]any{"min": round(min), "confidence": 1 - d.opt.Alpha}},
	}
	after := ""
	rnAfter := rn - interval.Seconds()*float64(rateOf(load))
	if minAfter := 1 - 2*float64(k*returns+5)/rnAfter; rnAfter > 0 && minAfter > 0.5 {
		expect = append(expect, map[string]any{"successRate": map[string]any{
			"min": round(minAfter), "confidence": 1 - d.opt.Alpha, "after": interval.String()}})
		after = fmt.Sprintf(", ≥ %.2f%% of the requests sent after the %s interval", 100*minAfter, interval)
	}
	chaos := []map[string]any{{
		"name":   "one-pod-always-fails",
		"fault":  map[string]any{"type": "appErrors", "errorRate": 1.0, "status": 503},
		"target": map[string]any{"service": svc.Name, "version": version, "count": 1},
		"at":     "0s",
	}}
	topo := d.plan.Topology.registryTopology(map[string][]string{caller: {svc.Name}}, func(s *registry.Service) {
		if s.Name != svc.Name {
			return
		}
		for i := range s.Versions {
			if s.Versions[i].Name == version {
				s.Versions[i].Replicas += extra
			}
		}
	})
	d.add(Check{
		Name: o.Name + "-outlier", Resource: res, Source: src,
		Promise:  promise + fmt.Sprintf(": with one %s pod failing every request, it is ejected and success stays ≥ %.2f%%%s%s", version, 100*min, after, poolNote),
		Scenario: &Scenario{Seed: 1, Topology: topo, Mesh: []map[string]string{{"file": MeshFile}}, Load: load, Expect: expect, Chaos: chaos},
	})
}

// outlierReturns is how many times an always-failing pod comes back
// within d of its first ejection: its i-th ejection lasts i × base (Envoy
// multiplies base_ejection_time by the times the host was ejected; a pod
// re-ejected before the next sweep keeps its count), and it comes back
// only at a sweep, once an interval at most.
func outlierReturns(d, base, interval time.Duration) int {
	base, interval = max(base, time.Millisecond), max(interval, time.Millisecond) // Istio refuses less
	m, spent := 0, time.Duration(0)
	for {
		spent += time.Duration(m+1) * base
		if spent > d {
			break
		}
		m++
	}
	return min(m, int(d/interval))
}

// trafficVersion is the version of svc that the client's calls reach (the
// heaviest destination of the first catch-all route of a VirtualService
// for it, else its first version), and the pods of the cluster that
// serves them.
func (d *deriver) trafficVersion(svc *Service) (string, int) {
	for _, o := range d.plan.Objects {
		vs := o.VirtualService
		if vs == nil {
			continue
		}
		for _, h := range vs.Spec.Hosts {
			if n, ok := d.serviceName(h); !ok || n != svc.Name {
				continue
			}
			for _, hr := range vs.Spec.Http {
				if len(hr.GetMatch()) > 0 {
					continue
				}
				if dst, w, why := d.weights(hr); why == "" && dst == svc {
					best, bw := "", -1.0
					for v, x := range w {
						if x > bw || (x == bw && v < best) {
							best, bw = v, x
						}
					}
					for _, v := range svc.Versions {
						if v.Name == best {
							return best, v.Replicas
						}
					}
				}
				break
			}
		}
	}
	pods := 0
	for _, v := range svc.Versions {
		pods += v.Replicas
	}
	return svc.Versions[0].Name, pods
}

// peerAuthentication: STRICT refuses a plaintext caller outside the mesh,
// PERMISSIVE and DISABLE accept it, and the servers' sidecars label what
// they received (connection_security_policy).
func (d *deriver) peerAuthentication(o *spec.IstioObject, objs []*spec.IstioObject) {
	spec := &o.PeerAuthentication.Spec
	res := "PeerAuthentication " + o.Namespace + "/" + o.Name
	src := Source{o.File, o.LineOf("spec.mtls.mode")}
	if len(spec.PortLevelMtls) > 0 {
		d.notChecked(res, Source{o.File, o.LineOf("spec.portLevelMtls")}, "per-port mTLS modes", "per-port modes are not derived yet")
	}
	mode := spec.GetMtls().GetMode()
	if mode == securityapi.PeerAuthentication_MutualTLS_UNSET {
		return // inherits its parent's mode: the parent's check covers it
	}
	promise := map[securityapi.PeerAuthentication_MutualTLS_Mode]string{
		securityapi.PeerAuthentication_MutualTLS_STRICT:     "STRICT: plaintext from outside the mesh is refused, mTLS accepted",
		securityapi.PeerAuthentication_MutualTLS_PERMISSIVE: "PERMISSIVE: plaintext and mTLS are both accepted",
		securityapi.PeerAuthentication_MutualTLS_DISABLE:    "DISABLE: plaintext is accepted",
	}[mode]
	if o.Namespace != rootNamespace && o.Namespace != d.plan.Topology.Namespace {
		d.notChecked(res, src, promise, "its namespace holds none of the inferred services")
		return
	}
	var targets []string
	for _, s := range d.plan.Topology.Services {
		// A Service that selects another's version (a Gateway API backend)
		// has no pods of its own: its pods' sidecars report the requests
		// under the service they belong to, which is checked itself.
		if s.Selects != nil {
			continue
		}
		if !s.Caller && governing(s.Name, objs, d.plan.Topology.Namespace) == o {
			targets = append(targets, s.Name)
		}
	}
	if len(targets) == 0 {
		d.notChecked(res, src, promise, "it governs none of the inferred services (a more specific policy overrides it, or its selector selects none)")
		return
	}
	legacy := "legacy"
	for i := 2; d.plan.Topology.Service(legacy) != nil; i++ {
		legacy = fmt.Sprintf("legacy%d", i)
	}
	caller := d.callerFor(d.plan.Topology.Service(targets[0]))
	load := d.opt.load(caller, minRequests)
	load.Variants = []Variant{{Name: "meshed", Weight: 1}, {Name: "plaintext", Weight: 1, Target: legacy}}
	// The meshed caller calls every target, one after another on each
	// request (fakesvc Calls), through its sidecar's clusters: a connection
	// pool another DestinationRule sets on a target refuses what exceeds it
	// with 503 UO, that rule's own promise, which would fail the meshed
	// success rate here. The load keeps half the smallest pool in flight,
	// as the outlier check does, so that the success rate stays a verdict
	// on mTLS alone (a failed handshake still fails it, which the security
	// counts alone would not show while some requests pass).
	// (DISABLE's load is plaintext alone, from a caller without a sidecar.)
	poolNote := ""
	if limit := d.smallestPool(targets); limit > 0 && mode != securityapi.PeerAuthentication_MutualTLS_DISABLE {
		load.Concurrency = max(1, limit/2)
		poolNote = fmt.Sprintf(", %d in flight at most, within their connection pools", load.Concurrency)
	}
	var expect []map[string]any
	switch mode {
	case securityapi.PeerAuthentication_MutualTLS_STRICT:
		expect = append(expect,
			map[string]any{"successRate": map[string]any{"min": 0.99, "variant": "meshed"}},
			map[string]any{"status": map[string]any{"code": 502, "min": 0.99, "variant": "plaintext"}})
	case securityapi.PeerAuthentication_MutualTLS_PERMISSIVE:
		expect = append(expect,
			map[string]any{"successRate": map[string]any{"min": 0.99, "variant": "meshed"}},
			map[string]any{"successRate": map[string]any{"min": 0.99, "variant": "plaintext"}})
	case securityapi.PeerAuthentication_MutualTLS_DISABLE:
		// Callers' auto mTLS still sends mTLS to a workload whose own policy
		// says DISABLE (istiod reads only namespace and mesh policies for it,
		// BestEffortInferServiceMTLSMode): only plaintext is promised.
		load.Variants = []Variant{{Name: "plaintext", Weight: 1, Target: legacy}}
		expect = append(expect, map[string]any{"successRate": map[string]any{"min": 0.99, "variant": "plaintext"}})
	}
	for _, t := range targets {
		switch mode {
		case securityapi.PeerAuthentication_MutualTLS_STRICT:
			expect = append(expect, map[string]any{"security": map[string]any{"service": t, "policy": "none", "max": 0}},
				map[string]any{"security": map[string]any{"service": t, "policy": "mutual_tls", "min": 1}})
		default:
			expect = append(expect, map[string]any{"security": map[string]any{"service": t, "policy": "none", "min": 1}})
		}
	}
	topo := d.plan.Topology.registryTopology(map[string][]string{caller: targets, legacy: targets}, nil)
	topo.Services = append(topo.Services, registry.Service{Name: legacy, Calls: targets, Versions: []registry.Version{{Name: "v1", Sidecar: new(false)}}})
	d.add(Check{
		Name: o.Name + "-mtls", Resource: res, Source: src, Promise: promise + " (" + joinNames(targets) + poolNote + ")",
		Scenario: &Scenario{Seed: 1, Topology: topo, Mesh: []map[string]string{{"file": MeshFile}}, Load: load, Expect: expect},
	})
}

// governing is the PeerAuthentication whose mode applies to the service's
// pods: a workload policy (selector app=<service>) over the namespace's
// over the root namespace's (Istio's PeerAuthentication precedence,
// security/v1beta1/peer_authentication.proto). nil when none.
func governing(service string, objs []*spec.IstioObject, ns string) *spec.IstioObject {
	var workload, namespace, mesh *spec.IstioObject
	for _, o := range objs {
		pa := o.PeerAuthentication
		if pa == nil || pa.Spec.GetMtls().GetMode() == securityapi.PeerAuthentication_MutualTLS_UNSET {
			continue
		}
		sel := pa.Spec.GetSelector().GetMatchLabels()
		switch {
		case o.Namespace == ns && len(sel) > 0:
			if sel["app"] == service && len(sel) == 1 && workload == nil {
				workload = o
			}
		case o.Namespace == ns && namespace == nil:
			namespace = o
		case o.Namespace == rootNamespace && len(sel) == 0 && mesh == nil:
			mesh = o
		}
	}
	switch {
	case workload != nil:
		return workload
	case namespace != nil:
		return namespace
	}
	return mesh
}

func joinNames(ns []string) string {
	out := ""
	for i, n := range ns {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}

func unitsDuration(d time.Duration) units.Duration { return units.Duration(d) }
