package derive

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	networking "istio.io/api/networking/v1alpha3"

	"github.com/meshbench/meshbench/internal/stats"
	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// derive derives the checks of every resource, in input order.
func (d *deriver) derive(objs []*spec.IstioObject) {
	for _, o := range objs {
		res := o.Kind + " " + o.Namespace + "/" + o.Name
		src := Source{o.File, o.Line}
		switch {
		case o.VirtualService != nil:
			d.virtualService(o)
		case o.DestinationRule != nil:
			d.destinationRule(o)
		case o.PeerAuthentication != nil:
			d.peerAuthentication(o, objs)
		case o.AuthorizationPolicy != nil:
			d.authorizationPolicy(o)
		case o.HTTPRoute != nil:
			d.httpRoute(o)
		case o.GRPCRoute != nil:
			d.notChecked(res, src, "the route's rules",
				"deriving checks from GRPCRoutes is not implemented yet")
		case o.Telemetry != nil:
			d.notChecked(res, src, "the traces it asks for",
				"deriving checks from Telemetry resources is not implemented yet")
		case o.Gateway != nil:
			d.notChecked(res, src, "what the gateway serves",
				"the derived load enters through the mesh's sidecars, not through a Gateway's listeners")
		}
	}
}

// route is one reachable HTTP route of a VirtualService (or of the one
// istiod makes of an HTTPRoute), with what a request must carry to take it.
type route struct {
	o       *spec.IstioObject
	service *Service // the VirtualService's host, which the client calls
	i       int
	hr      *networking.HTTPRoute
	req     request
	// routes is how many HTTP routes the resource has; part names this
	// one in check names ("http1", "rule0") and text in promises.
	routes int
	part   string
	// textOf names a route of the resource by its index in promises.
	textOf func(i int) string
	// field is the resource's field that holds a field of the route
	// (".timeout", ".route"; "" for the route itself).
	field func(string) string
}

func (r *route) resource() string { return r.o.Kind + " " + r.o.Namespace + "/" + r.o.Name }

func (r *route) at(field string) Source {
	return Source{r.o.File, r.o.LineOf(r.field(field))}
}

// name names a check of the route: the resource's, and the route's when
// the resource has several.
func (r *route) name(kind string) string {
	if r.routes == 1 {
		return r.o.Name + "-" + kind
	}
	return r.o.Name + "-" + r.part + "-" + kind
}

func (r *route) label() string { return r.textOf(r.i) }

// virtualService derives the checks of each HTTP route.
func (d *deriver) virtualService(o *spec.IstioObject) {
	spec := &o.VirtualService.Spec
	res := "VirtualService " + o.Namespace + "/" + o.Name
	svc := d.firstService(spec.Hosts)
	if svc == nil {
		d.notChecked(res, Source{o.File, o.LineOf("spec.hosts")}, "its routes",
			"no host names a service of the namespace "+d.plan.Topology.Namespace)
		return
	}
	if hr := d.gatewayRouteFor(svc.Name); hr != nil {
		// istiod selects a Service's Gateway API routes over its
		// VirtualServices for mesh traffic (README, GAMMA).
		d.notChecked(res, Source{o.File, o.LineOf("spec.hosts")}, "its routes",
			fmt.Sprintf("%s %s routes %s, so the sidecars ignore this VirtualService", hr.Kind, hr.Name, svc.Name))
		return
	}
	if why := d.refused(svc); why != "" {
		d.notChecked(res, Source{o.File, o.LineOf("spec.hosts")}, "its routes", why)
		return
	}
	if gws := spec.Gateways; len(gws) > 0 && !slices.Contains(gws, "mesh") {
		d.notChecked(res, Source{o.File, o.LineOf("spec.gateways")}, "its routes",
			"it binds to gateways only, and the derived load reaches services through the mesh's sidecars")
		return
	}
	for i := range spec.Tcp {
		d.notChecked(res, Source{o.File, o.LineOf(fmt.Sprintf("spec.tcp[%d]", i))}, "its TCP route",
			"deriving checks from TCP routes is not implemented yet")
	}
	d.httpRoutes(spec.Http, func(i int) *route {
		hr := spec.Http[i]
		r := &route{o: o, service: svc, i: i, hr: hr, routes: len(spec.Http), part: fmt.Sprintf("http%d", i)}
		if n := hr.GetName(); n != "" {
			r.part = n
		}
		r.textOf = func(k int) string {
			if n := spec.Http[k].GetName(); n != "" {
				return fmt.Sprintf("route %q", n)
			}
			return fmt.Sprintf("http[%d]", k)
		}
		r.field = func(f string) string { return fmt.Sprintf("spec.http[%d]", i) + f }
		return r
	})
}

// firstService is the service the first host of the namespace names, or nil.
func (d *deriver) firstService(hosts []string) *Service {
	for _, h := range hosts {
		if name, ok := d.serviceName(h); ok {
			return d.plan.Topology.Service(name)
		}
	}
	return nil
}

// httpRoutes derives the checks of each of a resource's HTTP routes.
func (d *deriver) httpRoutes(routes []*networking.HTTPRoute, newRoute func(i int) *route) {
	defaultRetriesChecked := false
	for i, hr := range routes {
		r := newRoute(i)
		if why := d.reach(r, routes); why != "" {
			d.notChecked(r.resource(), r.at(""), r.label()+"'s promises", why)
			continue
		}
		d.routing(r, routes)
		if hr.GetTimeout() != nil {
			d.timeout(r)
		}
		switch {
		case hr.GetRetries() != nil:
			d.retries(r)
			d.perTryTimeout(r)
		case !defaultRetriesChecked && hr.GetFault() == nil:
			defaultRetriesChecked = d.defaultRetries(r)
		}
		if hr.GetFault() != nil {
			d.fault(r)
		}
		d.mirrors(r)
	}
}

// gatewayRouteFor is an HTTPRoute or GRPCRoute whose parent is the
// service, or nil.
func (d *deriver) gatewayRouteFor(service string) *spec.IstioObject {
	for _, o := range d.plan.Objects {
		if o.HTTPRoute == nil && o.GRPCRoute == nil {
			continue
		}
		parents, _ := gatewayRoute(o)
		if slices.Contains(parents, service) {
			return o
		}
	}
	return nil
}

// reach finds a request that the route takes and no route before it
// does; "" when found, else why there is none.
func (d *deriver) reach(r *route, routes []*networking.HTTPRoute) string {
	path := "/" + r.service.Name // registry.WithDefaults's default path
	if len(r.hr.GetMatch()) == 0 {
		r.req = request{path: path, headers: map[string]string{}}
	} else {
		why := ""
		found := false
		for _, m := range r.hr.GetMatch() {
			req, w := satisfy(m, path)
			if w != "" {
				why = w
				continue
			}
			r.req, found = req, true
			break
		}
		if !found {
			return why
		}
	}
	switch first, ok := firstRouteTaking(routes, r.req); {
	case !ok:
		return "a route before it matches on what the sample client cannot vary"
	case first != r.i:
		return fmt.Sprintf("http[%d] before it takes the same requests", first)
	}
	return ""
}

// weights is the version split of a route's destinations, when they all
// name subsets of one service; else why not.
func (d *deriver) weights(hr *networking.HTTPRoute) (*Service, map[string]float64, string) {
	var svc *Service
	w := map[string]float64{}
	for _, dst := range hr.GetRoute() {
		name, ok := d.serviceName(dst.GetDestination().GetHost())
		if !ok {
			return nil, nil, fmt.Sprintf("destination %s is not a service of the namespace", dst.GetDestination().GetHost())
		}
		s := d.plan.Topology.Service(name)
		v := ""
		if sel := s.Selects; sel != nil {
			// A Service over one version's pods (a Gateway API backend).
			s, v = d.plan.Topology.Service(sel.Service), sel.Version
		}
		if svc != nil && s != svc {
			return nil, nil, "its destinations are several services, and a split is judged among one service's versions"
		}
		svc = s
		if subset := dst.GetDestination().GetSubset(); v == "" {
			if subset == "" {
				return nil, nil, "a destination names no subset: its pods' share is the load balancer's, not a promise"
			}
			if v = s.versionOfSubset(subset); v == "" {
				return nil, nil, fmt.Sprintf("subset %s is defined by no DestinationRule", subset)
			}
		}
		weight := float64(dst.GetWeight())
		if len(hr.GetRoute()) == 1 {
			weight = 100 // a single destination takes all (virtual_service.proto, weight)
		}
		w[v] += weight
	}
	if svc == nil {
		return nil, nil, "the route has no destination"
	}
	return svc, w, ""
}

// routing derives the split (weights) or the match (only its destination)
// check of a route.
func (d *deriver) routing(r *route, routes []*networking.HTTPRoute) {
	if f := r.hr.GetFault().GetAbort(); f != nil && abortPercent(f) >= 100 {
		return // nothing reaches the destinations: the fault check judges the route
	}
	dst, w, why := d.weights(r.hr)
	promise := "routes " + describeWeights(w)
	if len(r.hr.GetMatch()) > 0 {
		promise = fmt.Sprintf("routes requests with %s %s", r.req, describeWeights(w))
	}
	if why != "" {
		d.notChecked(r.resource(), r.at(".route"), "routes to its destinations", why)
		return
	}
	conf := 1 - d.opt.Alpha
	n := splitRequests(shares(w), d.opt)
	load := d.opt.load(d.callerFor(r.service), n)
	expect := []map[string]any{{"split": map[string]any{"service": dst.Name, "weights": w, "confidence": conf, "variant": "matching"}}}
	load.Variants = []Variant{r.req.variant("matching", 1)}
	if len(r.hr.GetMatch()) > 0 {
		// The requests without the match's headers must land elsewhere.
		others := request{path: r.req.path, headers: map[string]string{}}
		if len(r.req.headers) > 0 || r.req.methodOr() != callMethod {
			if k, ok := firstRouteTaking(routes, others); ok && k >= 0 && k != r.i {
				if odst, ow, why := d.weights(routes[k]); why == "" {
					// Each variant gets the requests its own split needs. When
					// http[k] is judged by a split check of its own, these
					// requests need only show that none reach this route's
					// destinations: a stray share judged like a weight of 0.
					no := splitRequests(shares(ow), d.opt)
					if f := routes[k].GetFault().GetAbort(); f == nil || abortPercent(f) < 100 {
						no = minRequests
					}
					load.Variants[0].Weight = n
					load.Variants = append(load.Variants, Variant{Name: "others", Weight: no})
					load = d.opt.load(load.Target, n+no).withVariants(load.Variants)
					expect = append(expect, map[string]any{"split": map[string]any{"service": odst.Name, "weights": ow, "confidence": conf, "variant": "others"}})
					promise += fmt.Sprintf(", and the others %s (%s)", describeWeights(ow), r.textOf(k))
				}
			}
		} else {
			d.notChecked(r.resource(), r.at(".match"), "requests with other paths do not take "+r.label(),
				"the sample client calls a service on one path only")
		}
	}
	kind := "split"
	if len(r.hr.GetMatch()) > 0 {
		kind = "match"
	}
	d.add(Check{
		Name: r.name(kind), Resource: r.resource(), Promise: promise, Source: r.at(""),
		Scenario: d.scenario(r, load, expect, nil, nil),
	})
}

func (l Load) withVariants(v []Variant) Load { l.Variants = v; return l }

// timeout: an app slower than the route's timeout gives 504 UT, and the
// latency is the timeout's.
func (d *deriver) timeout(r *route) {
	t := r.hr.GetTimeout().AsDuration()
	promise := fmt.Sprintf("times requests out after %s (504, flag UT)", t)
	if t <= 0 {
		return // 0 disables the timeout (virtual_service.proto, HTTPRoute.timeout)
	}
	if t > 3*time.Second {
		d.notChecked(r.resource(), r.at(".timeout"), promise, "a timeout over 3s would hold the derived load's requests too long")
		return
	}
	dst, _, why := d.weights(r.hr)
	if why != "" {
		dst = d.destService(r.hr)
	}
	slow := 3*t + 300*time.Millisecond
	// The earliest a slow request can end: the route's timeout, or the
	// end of its last try when a per-try timeout cuts every try first.
	earliest := t
	if rp := r.hr.GetRetries(); rp.GetAttempts() > 0 {
		if pt := rp.GetPerTryTimeout().AsDuration(); pt > 0 && pt < t {
			tries := 1
			if retriesPerTryTimeout(rp.GetRetryOn()) {
				tries += int(rp.GetAttempts())
			}
			earliest = min(t, time.Duration(tries)*pt)
		}
	}
	load := d.opt.load(d.callerFor(r.service), minRequests)
	load.Rate = "100/s"
	load.Duration = "2s"
	load.Timeout = (slow + 2*time.Second).String()
	load.Variants = []Variant{r.req.variant("matching", 1)}
	expect := []map[string]any{
		{"status": map[string]any{"code": 504, "min": 0.95, "variant": "matching"}},
		{"responseFlags": map[string]any{"service": r.service.Name, "flag": "UT", "min": 1, "variant": "matching"}},
		{"latency": map[string]any{"variant": "matching", "p50": map[string]string{"min": (earliest * 9 / 10).String()}, "p90": map[string]string{"max": (2*t + 200*time.Millisecond).String()}}},
	}
	d.add(Check{
		Name: r.name("timeout"), Resource: r.resource(), Promise: promise, Source: r.at(".timeout"),
		Scenario: d.scenario(r, load, expect, func(s *registry.Service) {
			if dst != nil && s.Name == dst.Name {
				for i := range s.Versions {
					s.Versions[i].Latency = registry.Latency{Mean: unitsDuration(slow)}
				}
			}
		}, nil),
	})
}

// retriedStatus is an HTTP status that a retryOn retries and an app can
// answer, or 0 (retry.go parseRetryOn: bare codes become
// retriable_status_codes; Envoy's 5xx and gateway-error cover 503,
// router_filter docs, x-envoy-retry-on).
func retriedStatus(retryOn string) int {
	for _, tok := range strings.Split(retryOn, ",") {
		tok = strings.TrimSpace(tok)
		if code, err := strconv.Atoi(tok); err == nil && code >= 500 && code < 600 {
			return code
		}
	}
	for _, tok := range strings.Split(retryOn, ",") {
		switch strings.TrimSpace(tok) {
		case "5xx", "gateway-error":
			return 503
		}
	}
	return 0
}

// retryErrorRate is the share of answers the app fails in a retries check.
const retryErrorRate = 0.3

// retries: with app errors at p on a retried status, success rises to
// 1 - p^(attempts+1), and no request is tried more than attempts+1 times.
func (d *deriver) retries(r *route) {
	rp := r.hr.GetRetries()
	a := int(rp.GetAttempts())
	promise := fmt.Sprintf("retries up to %d times on %q", a, rp.GetRetryOn())
	if a <= 0 {
		return // attempts 0 disables retries: the default-retries check does not apply either
	}
	code := retriedStatus(rp.GetRetryOn())
	if code == 0 {
		d.notChecked(r.resource(), r.at(".retries"), promise,
			"retryOn retries no HTTP status an app answers (connection failures and resets are not injected here)")
		return
	}
	dst := d.destService(r.hr)
	if dst == nil {
		d.notChecked(r.resource(), r.at(".retries"), promise, "the route has no destination in the namespace")
		return
	}
	p := retryErrorRate
	expected := 1 - math.Pow(p, float64(a+1))
	without := 1 - p
	min := expected - (expected-without)/3
	n := max(minRequests, shareRequests(min, d.opt.Alpha, d.opt.Power, min-without))
	load := d.opt.load(d.callerFor(r.service), n)
	r.req.onto(&load)
	expect := []map[string]any{
		{"successRate": map[string]any{"min": round(min), "confidence": 1 - d.opt.Alpha}},
		{"attempts": map[string]any{"service": dst.Name, "min": 2, "max": a + 1}},
		{"retries": map[string]any{"service": dst.Name, "min": 1}},
	}
	d.add(Check{
		Name: r.name("retries"), Resource: r.resource(),
		Promise:  promise + fmt.Sprintf(": with %.0f%% %d errors, success ≥ %.1f%% (1-p^%d = %.2f%%) and at most %d attempts", 100*p, code, 100*min, a+1, 100*expected, a+1),
		Source:   r.at(".retries"),
		Scenario: d.scenario(r, load, expect, failing(dst.Name, p, code), nil),
	})
}

// defaultErrorRate is the share of 503s in a default-retries check.
const defaultErrorRate = 0.2

// defaultRetries: a route without retries has Istio's default policy,
// which since 1.24 does not retry a 503 (retry.go defaultRetryOn;
// sim/xdsgen.DefaultRetryOn): the app's 503s reach the client as they are.
func (d *deriver) defaultRetries(r *route) bool {
	dst := d.destService(r.hr)
	if dst == nil {
		return false
	}
	p := defaultErrorRate
	// A mesh that retried 503 twice would show p³.
	n := max(minRequests, shareRequests(p, d.opt.Alpha, d.opt.Power, p-math.Pow(p, 3)))
	load := d.opt.load(d.callerFor(r.service), n)
	r.req.onto(&load)
	expect := []map[string]any{
		{"status": map[string]any{"code": 503, "share": p, "confidence": 1 - d.opt.Alpha}},
		{"retries": map[string]any{"service": dst.Name, "max": 0}},
	}
	d.add(Check{
		Name: r.name("default-retries"), Resource: r.resource(),
		Promise: fmt.Sprintf("sets no retries, so Istio's default policy applies: a 503 is not retried (with %.0f%% 503s, %.0f%% reach the client)", 100*p, 100*p),
		Source:  r.at(""), Scenario: d.scenario(r, load, expect, failing(dst.Name, p, 503), nil),
	})
	return true
}

// abortPercent is an abort's percentage; an unset one aborts nothing
// (Envoy's FractionalPercent default numerator is 0, and Istio's
// TranslateFault leaves it unset: sim/sidecar perMillion).
func abortPercent(a *networking.HTTPFaultInjection_Abort) float64 {
	return a.GetPercentage().GetValue()
}

// fault: the configured share of aborts with the status, and of delays.
func (d *deriver) fault(r *route) {
	f := r.hr.GetFault()
	z := stats.CriticalZ(d.opt.Alpha)
	load := d.opt.load(d.callerFor(r.service), minRequests)
	var expect []map[string]any
	var promises []string
	n := minRequests
	if a := f.GetAbort(); a != nil && a.GetHttpStatus() != 0 {
		pct := abortPercent(a)
		promises = append(promises, fmt.Sprintf("aborts %g%% with %d (flag FI)", pct, a.GetHttpStatus()))
		share := pct / 100
		st := map[string]any{"code": int(a.GetHttpStatus()), "variant": "faulted"}
		switch {
		case share >= 1:
			st["min"] = 0.999
		case share <= 0:
			st["max"] = 0.001
		default:
			st["share"] = share
			st["confidence"] = 1 - d.opt.Alpha
			n = max(n, shareRequests(share, d.opt.Alpha, d.opt.Power, d.opt.Shift))
		}
		expect = append(expect, map[string]any{"status": st})
		if share > 0 {
			expect = append(expect, map[string]any{"responseFlags": map[string]any{"service": r.service.Name, "flag": "FI", "min": 1, "variant": "faulted"}})
		}
	}
	var delay time.Duration
	if dl := f.GetDelay(); dl != nil && dl.GetFixedDelay() != nil {
		delay = dl.GetFixedDelay().AsDuration()
		pct := dl.GetPercentage().GetValue()
		promises = append(promises, fmt.Sprintf("delays %g%% by %s (flag DI)", pct, delay))
		share := pct / 100
		if share > 0 && share < 1 {
			n = max(n, shareRequests(share, d.opt.Alpha, d.opt.Power, d.opt.Shift))
		}
		if delay >= time.Second {
			load.Rate = "50/s"
		}
		load = load.resized(n, delay, d.opt)
		rn := float64(requestsOf(load))
		sd := z * math.Sqrt(rn*share*(1-share))
		fl := map[string]any{"service": r.service.Name, "flag": "DI", "variant": "faulted",
			"min": math.Max(0, math.Floor(rn*share-sd-1)), "max": math.Ceil(rn*share + sd + 1)}
		expect = append(expect, map[string]any{"responseFlags": fl})
		if share >= 0.6 {
			expect = append(expect, map[string]any{"latency": map[string]any{"variant": "faulted", "p50": map[string]string{"min": (delay * 9 / 10).String()}}})
		}
	} else {
		load = load.resized(n, 0, d.opt)
	}
	if len(expect) == 0 {
		return
	}
	load.Variants = []Variant{r.req.variant("faulted", 1)}
	d.add(Check{
		Name: r.name("fault"), Resource: r.resource(), Promise: strings.Join(promises, " and "),
		Source: r.at(".fault"), Scenario: d.scenario(r, load, expect, nil, nil),
	})
}

// mirrorPolicy is one mirror of a route: its destination, the percentage
// of requests it copies, and the route's field that says so.
type mirrorPolicy struct {
	dst     *networking.Destination
	percent float64
	field   string
}

// mirrorsOf are a route's mirrors as istiod translates them
// (pilot/pkg/networking/core/route/route.go applyHTTPRouteDestination):
// mirror with mirrorPercentage, else the deprecated mirrorPercent, else
// 100% (MirrorPercent); then each of mirrors (Istio 1.19+) with its own
// percentage, 100% when unset (MirrorPercentByPolicy), one without a
// destination skipped. A percentage of 0 mirrors nothing.
func mirrorsOf(hr *networking.HTTPRoute) []mirrorPolicy {
	var out []mirrorPolicy
	if m := hr.GetMirror(); m != nil {
		pct := 100.0
		switch {
		case hr.GetMirrorPercentage() != nil:
			pct = hr.GetMirrorPercentage().GetValue()
		case xdsgen.DeprecatedMirrorPercent(hr) != nil:
			pct = float64(xdsgen.DeprecatedMirrorPercent(hr).GetValue())
		}
		out = append(out, mirrorPolicy{m, pct, ".mirror"})
	}
	for i, m := range hr.GetMirrors() {
		if m.GetDestination() == nil {
			continue
		}
		pct := 100.0
		if m.GetPercentage() != nil {
			pct = m.GetPercentage().GetValue()
		}
		out = append(out, mirrorPolicy{m.GetDestination(), pct, fmt.Sprintf(".mirrors[%d]", i)})
	}
	return out
}

// mirrors derives a check per mirror of the route.
func (d *deriver) mirrors(r *route) {
	ms := mirrorsOf(r.hr)
	for i, m := range ms {
		kind := "mirror"
		if len(ms) > 1 {
			kind = fmt.Sprintf("mirror%d", i)
		}
		d.mirror(r, m, kind)
	}
}

// mirror: the mirror's failures never reach the client, and the copies
// reach the mirror. Its inbound sidecars count every request they
// receive, whatever the Host (the inbound virtual host takes "*", so a
// "-shadow" suffix does not matter) and whatever the answer:
// security {policy: any} bounds that count from below at the copies a
// share p of the load makes (copiesAtLeast), or at none for p = 0. The
// count includes the warm-up's copies, which outnumber those of the last
// requests that may still be in flight when the run reads it.
func (d *deriver) mirror(r *route, m mirrorPolicy, kind string) {
	promise := "mirrors to " + m.dst.GetHost()
	if m.percent < 100 {
		promise = fmt.Sprintf("mirrors %g%% to %s", m.percent, m.dst.GetHost())
	}
	name, ok := d.serviceName(m.dst.GetHost())
	if !ok {
		d.notChecked(r.resource(), r.at(m.field), promise, "the mirror is not a service of the namespace")
		return
	}
	svc := d.plan.Topology.Service(name)
	if svc == nil {
		d.notChecked(r.resource(), r.at(m.field), promise, "the mirror is not in the inferred topology")
		return
	}
	mv := ""
	if sel := svc.Selects; sel != nil {
		// A Service over one version's pods: those pods receive the copies.
		svc, mv = d.plan.Topology.Service(sel.Service), sel.Version
	}
	if sub := m.dst.GetSubset(); sub != "" && mv == "" {
		if mv = svc.versionOfSubset(sub); mv == "" {
			d.notChecked(r.resource(), r.at(m.field), promise, fmt.Sprintf("subset %s is defined by no DestinationRule", sub))
			return
		}
	}
	caller := d.callerFor(r.service)
	// The fault filter runs before the router: an aborted request is not
	// mirrored (sim/sidecar route.go; Envoy's filter chain order).
	p := math.Max(0, math.Min(m.percent, 100)) / 100
	if a := r.hr.GetFault().GetAbort(); a != nil {
		p *= 1 - math.Min(abortPercent(a), 100)/100
	}
	load := d.opt.load(caller, copiesRequests(p))
	r.req.onto(&load)
	expect := []map[string]any{{"successRate": map[string]any{"min": 0.99, "confidence": 1 - d.opt.Alpha}}}
	promise += ": a mirror that fails every request changes nothing for the client"
	switch n := requestsOf(load); {
	case d.receivesPrimary(r, svc, caller):
		promise += fmt.Sprintf(" (that the copies arrive is not checked: %s also receives the route's own requests)", svc.Name)
	case p <= 0:
		promise += fmt.Sprintf(", and %s receives no copy", svc.Name)
		expect = append(expect, map[string]any{"security": map[string]any{"service": svc.Name, "policy": "any", "max": 0}})
	default:
		k := copiesAtLeast(n, p, d.opt.Alpha)
		promise += fmt.Sprintf(", and %s receives the copies: at least %d of %d requests' (%g%%)", svc.Name, k, n, 100*p)
		expect = append(expect, map[string]any{"security": map[string]any{"service": svc.Name, "policy": "any", "min": k}})
	}
	d.add(Check{
		Name: r.name(kind), Resource: r.resource(), Promise: promise, Source: r.at(m.field),
		Scenario: d.scenario(r, load, expect, func(s *registry.Service) {
			if s.Name != svc.Name {
				return
			}
			for i := range s.Versions {
				if mv == "" || s.Versions[i].Name == mv {
					s.Versions[i].ErrorRate, s.Versions[i].ErrorStatus = 1, 503
				}
			}
		}, nil),
	})
}

// receivesPrimary reports whether svc's sidecars see requests of the
// route's scenario other than the mirror's copies: it is the service the
// caller calls, a destination of the route, or the caller.
func (d *deriver) receivesPrimary(r *route, svc *Service, caller string) bool {
	if svc == r.service || svc.Name == caller {
		return true
	}
	for _, dst := range r.hr.GetRoute() {
		name, ok := d.serviceName(dst.GetDestination().GetHost())
		if !ok {
			continue
		}
		s := d.plan.Topology.Service(name)
		if s != nil && s.Selects != nil {
			s = d.plan.Topology.Service(s.Selects.Service)
		}
		if s == svc {
			return true
		}
	}
	return false
}

// destService is the service a route's first destination names, or nil.
func (d *deriver) destService(hr *networking.HTTPRoute) *Service {
	for _, dst := range hr.GetRoute() {
		if name, ok := d.serviceName(dst.GetDestination().GetHost()); ok {
			if s := d.plan.Topology.Service(name); s.Selects != nil {
				return d.plan.Topology.Service(s.Selects.Service) // whose pods answer
			}
			return d.plan.Topology.Service(name)
		}
	}
	return nil
}

// failing makes every version of the service fail a share p with code.
func failing(service string, p float64, code int) func(s *registry.Service) {
	return func(s *registry.Service) {
		if s.Name != service {
			return
		}
		for i := range s.Versions {
			s.Versions[i].ErrorRate, s.Versions[i].ErrorStatus = p, code
		}
	}
}

// scenario builds the scenario of a route's check: the client (or an
// allowed caller) calls the route's service on the path the route needs.
func (d *deriver) scenario(r *route, load Load, expect []map[string]any, mutate func(*registry.Service), chaos []map[string]any) *Scenario {
	caller := load.Target
	topo := d.plan.Topology.registryTopology(map[string][]string{caller: {r.service.Name}}, func(s *registry.Service) {
		if s.Name == r.service.Name && r.req.path != "/"+s.Name {
			s.Path = r.req.path // the route's match needs it
		}
		if mutate != nil {
			mutate(s)
		}
	})
	return &Scenario{Seed: 1, Topology: topo, Mesh: []map[string]string{{"file": MeshFile}}, Load: load, Expect: expect, Chaos: chaos}
}

// callerFor is the service that calls service in checks that are not
// about authorization: the client, or a caller the AuthorizationPolicies
// on it let in (access).
func (d *deriver) callerFor(service *Service) string { return d.access(service).caller }

// access finds a caller and a path that the AuthorizationPolicies on the
// service let through with callMethod, the method of the checks that are
// not about authorization: the client on the default path when they do,
// else the first caller a policy's principals name, on a path its rule
// allows.
func (d *deriver) access(service *Service) access {
	return d.accessBy(service, []string{callMethod})
}

// authzAccess is access with any method a call can have, POST first: the
// caller an authorization check for everyone is shown on.
func (d *deriver) authzAccess(service *Service) *access {
	a := d.accessBy(service, sendMethods)
	return &a
}

// accessBy is access with the first of methods that some caller and path
// are let through with.
func (d *deriver) accessBy(service *Service, methods []string) access {
	def := "/" + service.Name
	callers := []string{d.plan.Topology.Client}
	paths := []string{""}
	for _, o := range d.plan.Objects {
		ap := o.AuthorizationPolicy
		if ap == nil || ap.Spec.GetSelector().GetMatchLabels()["app"] != service.Name {
			continue
		}
		for _, r := range ap.Spec.Rules {
			if p, _, ok := ruleRequest(r); ok && p != "" {
				paths = append(paths, p)
			}
			if cs, _, ok := ruleCallers(r, d.plan.Topology.Namespace); ok {
				callers = append(callers, cs...)
			}
		}
	}
	for _, m := range methods {
		for _, c := range callers {
			for _, p := range paths {
				path := p
				if path == "" {
					path = def
				}
				if d.allowed(service.Name, c, path, m, nil) {
					return access{caller: c, path: p, method: m}
				}
			}
		}
	}
	return access{caller: d.plan.Topology.Client, method: callMethod}
}

// shares are the weights as fractions of their sum.
func shares(w map[string]float64) []float64 {
	sum := 0.0
	for _, x := range w {
		sum += x
	}
	var out []float64
	for _, x := range w {
		if sum > 0 {
			out = append(out, x/sum)
		}
	}
	return out
}

func describeWeights(w map[string]float64) string {
	var vs []string
	for v := range w {
		vs = append(vs, v)
	}
	sort.Strings(vs)
	var parts []string
	for _, v := range vs {
		parts = append(parts, fmt.Sprintf("%s %g", v, w[v]))
	}
	if len(parts) == 1 {
		return "all to " + vs[0]
	}
	return "by weight: " + strings.Join(parts, ", ")
}

func (r request) String() string {
	s := "path " + r.path
	if r.methodOr() != callMethod {
		s = "method " + r.method + ", " + s
	}
	if len(r.headers) == 0 {
		return s
	}
	return r.headerText() + ", " + s
}

// headerText is "name: value, ..." in name order.
func (r request) headerText() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(r.headers)) {
		parts = append(parts, k+": "+r.headers[k])
	}
	return strings.Join(parts, ", ")
}

// resized is the load that sends at least n requests, with a request
// timeout that outlasts delay.
func (l Load) resized(n int, delay time.Duration, o Options) Load {
	rate := rateOf(l)
	if rate >= o.Rate { // a rate lowered on purpose (long delays) is kept
		rate = o.rateFor(n, rate)
		l.Rate = fmt.Sprintf("%d/s", rate)
	}
	l.Duration = durationFor(n, rate).String()
	if delay > 0 {
		l.Timeout = (delay + 3*time.Second).String()
	}
	return l
}

func round(x float64) float64 { return math.Floor(x*10000) / 10000 }
