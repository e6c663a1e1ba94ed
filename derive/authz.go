package derive

import (
	"fmt"
	"slices"
	"strings"

	securityapi "istio.io/api/security/v1beta1"

	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/registry"
)

// access is how a caller reaches a service that AuthorizationPolicies
// guard: who calls, and on which path.
type access struct {
	caller string
	path   string // "" keeps the service's default path
	method string
}

// sendMethods are the methods a derived call can have, in the order a
// rule's request takes them: POST, the loads' default, first; HEAD last,
// as its answers have no body (the sample app passes its request's method
// on to its calls: fakesvc Server.ServeHTTP).
var sendMethods = []string{"POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"}

// otherMethods are the methods tried, in order, for a call with a method
// that a rule's operations do not take; never HEAD, whose answers have no
// body.
var otherMethods = []string{"DELETE", "PUT", "PATCH", "POST", "GET", "OPTIONS"}

// ruleRequest is a request a rule's operations take: a path, or "" when
// they name none, and a method, or "" when they name none (any is taken);
// ok is false when no call can match them.
// Istio's paths match exactly, by prefix ("/api/*") or suffix ("*.html")
// (authorization_policy.proto, Operation.paths), and so do its methods:
// "A list of methods as specified in the HTTP request. [...] If not set,
// any method is allowed" (Operation.methods; istio.io/api
// security/v1beta1/authorization_policy.proto).
func ruleRequest(r *securityapi.Rule) (path, method string, ok bool) {
	if len(r.To) == 0 {
		return "", "", true
	}
	for _, to := range r.To {
		op := to.GetOperation()
		if !judgeable(op) {
			continue
		}
		method = ""
		if len(op.GetMethods()) > 0 {
			i := slices.IndexFunc(sendMethods, func(m string) bool { return methodTaken(op, m) })
			if i < 0 {
				continue
			}
			method = sendMethods[i]
		}
		if len(op.GetPaths()) == 0 {
			return "", method, true
		}
		p := op.GetPaths()[0]
		switch {
		case p == "*":
			return "", method, true
		case strings.HasSuffix(p, "*"):
			return strings.TrimSuffix(p, "*") + "x", method, true
		case strings.HasPrefix(p, "*"):
			return "/x" + strings.TrimPrefix(p, "*"), method, true
		}
		return p, method, true
	}
	return "", "", false
}

// judgeable is whether an operation names only what a derived call can
// be judged against: methods and paths (the scenario loader refuses the
// other fields: spec authzOperationFields).
func judgeable(op *securityapi.Operation) bool {
	return len(op.GetNotMethods()) == 0 && len(op.GetNotPaths()) == 0 && len(op.GetHosts()) == 0 && len(op.GetNotHosts()) == 0 &&
		len(op.GetPorts()) == 0 && len(op.GetNotPorts()) == 0
}

// methodTaken is whether an operation takes a call with method: it names
// no methods, or one that matches.
func methodTaken(op *securityapi.Operation, method string) bool {
	return len(op.GetMethods()) == 0 || slices.ContainsFunc(op.GetMethods(), func(m string) bool { return istioMatch(m, method) })
}

// istioMatch is Istio's string match of authorization values: "*" any
// value, "*suffix", "prefix*", else exact (the translation's stringMatch,
// sim/xdsgen/security.go).
func istioMatch(pattern, v string) bool {
	switch {
	case pattern == "*":
		return v != ""
	case strings.HasPrefix(pattern, "*"):
		return strings.HasSuffix(v, strings.TrimPrefix(pattern, "*"))
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(v, strings.TrimSuffix(pattern, "*"))
	}
	return pattern == v
}

// ruleTakes is whether one of a rule's operations takes a call with path
// and method (a rule with none takes every call); an operation that
// names what a call cannot be judged against is taken as not matching.
func ruleTakes(r *securityapi.Rule, path, method string) bool {
	if len(r.To) == 0 {
		return true
	}
	for _, to := range r.To {
		op := to.GetOperation()
		if !judgeable(op) || !methodTaken(op, method) {
			continue
		}
		if len(op.GetPaths()) == 0 || slices.ContainsFunc(op.GetPaths(), func(p string) bool { return istioMatch(p, path) }) {
			return true
		}
	}
	return false
}

// ruleHeaders are the request headers a rule's conditions need, or ok
// false when a condition is on anything but a header the sample app
// passes on to its calls (authorization_policy.proto, Condition; keys as
// in Istio's conditions reference: request.headers[name]).
func ruleHeaders(r *securityapi.Rule) (map[string]string, bool) {
	h := map[string]string{}
	for _, c := range r.When {
		name, found := strings.CutPrefix(c.GetKey(), "request.headers[")
		name = strings.ToLower(strings.TrimSuffix(name, "]"))
		if !found || !slices.Contains(propagatedHeaders, name) || len(c.GetValues()) == 0 || len(c.GetNotValues()) > 0 ||
			strings.Contains(c.GetValues()[0], "*") {
			return nil, false
		}
		h[name] = c.GetValues()[0]
	}
	return h, true
}

// ruleCallers are the services a rule's sources allow: its principals of
// the namespace; all when it names no source; ok is false when a source
// names what the inferred callers cannot be (other namespaces, negations,
// IP blocks, request principals).
func ruleCallers(r *securityapi.Rule, ns string) (callers []string, anyone, ok bool) {
	if len(r.From) == 0 {
		return nil, true, true
	}
	for _, f := range r.From {
		src := f.GetSource()
		if len(src.GetNotPrincipals()) > 0 || len(src.GetNotNamespaces()) > 0 || len(src.GetIpBlocks()) > 0 ||
			len(src.GetNotIpBlocks()) > 0 || len(src.GetRequestPrincipals()) > 0 || len(src.GetNotRequestPrincipals()) > 0 ||
			len(src.GetRemoteIpBlocks()) > 0 || len(src.GetNotRemoteIpBlocks()) > 0 {
			return nil, false, false
		}
		if slices.Contains(src.GetNamespaces(), ns) {
			anyone = true
		}
		for _, p := range src.GetPrincipals() {
			if name, ok := principalService(p, ns); ok {
				callers = append(callers, name)
			}
		}
	}
	return callers, anyone, true
}

// authorizationPolicy: callers an ALLOW policy allows get 200, others 403;
// those a DENY policy names get 403 whatever an ALLOW policy says (Envoy
// runs the DENY filter first: pilot/pkg/security/authz/builder).
func (d *deriver) authorizationPolicy(o *spec.IstioObject) {
	spec := &o.AuthorizationPolicy.Spec
	res := "AuthorizationPolicy " + o.Namespace + "/" + o.Name
	src := Source{o.File, o.Line}
	ns := d.plan.Topology.Namespace
	app := spec.GetSelector().GetMatchLabels()["app"]
	switch {
	case allowNothing(o, ns):
		d.allowNothing(o)
		return
	case o.Namespace != ns || app == "" || len(spec.GetSelector().GetMatchLabels()) != 1:
		d.notChecked(res, src, "who may call what", "only a policy of the namespace selecting one app (matchLabels app) is derived")
		return
	case spec.GetAction() != securityapi.AuthorizationPolicy_ALLOW && spec.GetAction() != securityapi.AuthorizationPolicy_DENY:
		d.notChecked(res, src, "who may call what", "AUDIT and CUSTOM actions are not judged by status codes")
		return
	}
	svc := d.plan.Topology.Service(app)
	for i, r := range spec.Rules {
		at := Source{o.File, o.LineOf(fmt.Sprintf("spec.rules[%d]", i))}
		path, method, okReq := ruleRequest(r)
		callers, anyone, okFrom := ruleCallers(r, ns)
		verb := "allows"
		if spec.GetAction() == securityapi.AuthorizationPolicy_DENY {
			verb = "denies"
		}
		methods := ruleMethods(r)
		calls := "calls"
		if method != "" {
			calls = method + " calls"
		}
		promise := fmt.Sprintf("%s %s %s to %s", verb, describeCallers(callers, anyone), calls, app)
		if path != "" {
			promise += " on " + path
		}
		headers, okWhen := ruleHeaders(r)
		if len(headers) > 0 {
			promise += " with " + request{headers: headers}.headerText()
		}
		switch {
		case !okWhen:
			d.notChecked(res, at, promise, "its conditions name more than the end-user or x-meshbench-user header, which the sample app passes on")
			continue
		case len(callers) == 0 && !anyone:
			d.notChecked(res, at, promise, "its principals are of other namespaces than the inferred services'")
			continue
		case !okReq:
			d.notChecked(res, at, promise, "its operations' methods are none that a call can have ("+strings.Join(sendMethods, ", ")+")")
			continue
		case !okFrom:
			d.notChecked(res, at, promise, "its sources name what the inferred callers cannot be (other namespaces, negations, IPs, JWTs)")
			continue
		}
		d.authzRule(o, i, svc, path, method, headers, callers, anyone, promise, at)
		if path != "" {
			d.authzOtherPath(o, i, svc, r, method, headers, callers, anyone, at)
		}
		if len(methods) > 0 {
			d.authzOtherMethod(o, i, svc, r, path, headers, callers, anyone, at)
		}
	}
}

// ruleMethods are the methods a rule's operations name.
func ruleMethods(r *securityapi.Rule) []string {
	var out []string
	for _, to := range r.To {
		for _, m := range to.GetOperation().GetMethods() {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out
}

// otherPaths are the paths tried, in order, for a call on a path that a
// rule's operations do not take.
var otherPaths = []string{"/meshbench-other-path", "/x.meshbench-other"}

// otherPath is a path none of the rule's operations take, or "".
func otherPath(r *securityapi.Rule) string {
	for _, p := range otherPaths {
		if !pathMatches(r, p) {
			return p
		}
	}
	return ""
}

// authzOtherPath derives the check of a rule's paths: the callers it
// names, with the headers it needs, call on a path that none of its
// operations take and get what the policies in force give them. For an
// ALLOW rule that is 403: a request that no ALLOW policy matches is
// denied; for a DENY rule 200 (where no ALLOW policy refuses them): its
// action is taken only on a request it matches, all of whose fields must
// match (istio.io docs/reference/config/security/authorization-policy:
// the evaluation order, and its example policy whose operations name
// methods and paths, "any other requests will be denied").
// One path per service in a topology (the callers' calls use the
// service's path) makes this a scenario of its own, beside authzRule's
// on the rule's path.
func (d *deriver) authzOtherPath(o *spec.IstioObject, i int, svc *Service, r *securityapi.Rule, method string, headers map[string]string, callers []string, anyone bool, at Source) {
	deny := o.AuthorizationPolicy.Spec.GetAction() == securityapi.AuthorizationPolicy_DENY
	res := "AuthorizationPolicy " + o.Namespace + "/" + o.Name
	named := slices.Clone(callers)
	var a *access
	if anyone {
		a = d.authzAccess(svc)
		if !slices.Contains(named, a.caller) {
			named = append(named, a.caller)
		}
	}
	verb, want := "refuses", "403"
	if deny {
		verb, want = "does not deny", "200"
	}
	other := otherPath(r)
	var paths []string
	for _, to := range r.To {
		paths = append(paths, to.GetOperation().GetPaths()...)
	}
	promise := fmt.Sprintf("%s %s calls to %s on other paths than %s", verb, describeCallers(callers, anyone), svc.Name, strings.Join(paths, ", "))
	if len(headers) > 0 {
		promise += " with " + request{headers: headers}.headerText()
	}
	if other == "" {
		d.notChecked(res, at, promise, "its paths take every path a call could use")
		return
	}
	promise += fmt.Sprintf(": %s on %s", want, other)
	d.authzCallers(Check{Name: fmt.Sprintf("%s-rule%d-authz-other-path", o.Name, i), Resource: res, Promise: promise, Source: at},
		svc, named, headers, deny, other, func(c string) string { return callMethodOf(method, c, a) })
}

// authzCallers adds check, on a scenario where each of the callers calls
// svc on path (svc's default path when "") with the method call gives
// it and the headers, and gets what the policies in force give it; the
// promise notes each caller the policies together treat otherwise than
// the rule's action (deny) alone would.
func (d *deriver) authzCallers(check Check, svc *Service, callers []string, headers map[string]string, deny bool, path string, call func(caller string) (method string)) {
	load := d.opt.load(d.plan.Topology.Client, minRequests)
	var expect []map[string]any
	calls := map[string][]string{}
	judged := path
	if judged == "" {
		judged = "/" + svc.Name
	}
	for _, c := range callers {
		m := call(c)
		allowed := d.allowed(svc.Name, c, judged, m, headers)
		if allowed != deny {
			check.Promise += fmt.Sprintf(" (%s is %s by the policies together)", c, map[bool]string{true: "allowed", false: "denied"}[allowed])
		}
		calls[c] = []string{svc.Name}
		load.Variants = append(load.Variants, Variant{Name: c, Weight: 1, Target: c, Headers: headers, Method: variantMethod(m)})
		expect = append(expect, callerExpectation(c, allowed))
	}
	topo := d.plan.Topology.registryTopology(calls, func(s *registry.Service) {
		if s.Name == svc.Name && path != "" {
			s.Path = path
		}
	})
	check.Scenario = &Scenario{Seed: 1, Topology: topo, Mesh: []map[string]string{{"file": MeshFile}}, Load: load, Expect: expect}
	d.add(check)
}

// callMethodOf is the method caller calls with in a rule's checks: the
// rule's (method), else the one authzAccess found for the caller it
// found (a), else callMethod.
func callMethodOf(method, caller string, a *access) string {
	switch {
	case method != "":
		return method
	case a != nil && caller == a.caller && a.method != "":
		return a.method
	}
	return callMethod
}

// variantMethod is a variant's method: "" for callMethod, the load's.
func variantMethod(method string) string {
	if method == callMethod {
		return ""
	}
	return method
}

// otherMethod is a method that none of the rule's operations take on
// path, or "".
func otherMethod(r *securityapi.Rule, path string) string {
	for _, m := range otherMethods {
		if !ruleTakes(r, path, m) {
			return m
		}
	}
	return ""
}

// authzOtherMethod derives the check of a rule's methods: the callers it
// names, with the headers it needs, call on the path authzRule calls on
// with a method none of its operations take (never HEAD, whose answers
// have no body), and get what the policies in force give them: 403 past
// an ALLOW rule, 200 past a DENY rule where no ALLOW policy refuses them,
// as for authzOtherPath. Operation.methods: "A list of methods as
// specified in the HTTP request. For gRPC service, this will always be
// POST. If not set, any method is allowed" (istio.io/api
// security/v1beta1/authorization_policy.proto); a rule's operation
// matches a request only if all of its fields do (the authorization-policy
// reference's example "any other requests will be denied"). The sample
// app calls with the method of the request it serves, so a variant's
// method reaches the caller's call.
func (d *deriver) authzOtherMethod(o *spec.IstioObject, i int, svc *Service, r *securityapi.Rule, path string, headers map[string]string, callers []string, anyone bool, at Source) {
	deny := o.AuthorizationPolicy.Spec.GetAction() == securityapi.AuthorizationPolicy_DENY
	res := "AuthorizationPolicy " + o.Namespace + "/" + o.Name
	named := slices.Clone(callers)
	topoPath := path
	if anyone {
		a := d.authzAccess(svc)
		if !slices.Contains(named, a.caller) {
			named = append(named, a.caller)
		}
		if topoPath == "" {
			topoPath = a.path
		}
	}
	callPath := topoPath
	if callPath == "" {
		callPath = "/" + svc.Name
	}
	verb, want := "refuses", "403"
	if deny {
		verb, want = "does not deny", "200"
	}
	promise := fmt.Sprintf("%s %s calls to %s with other methods than %s", verb, describeCallers(callers, anyone), svc.Name, strings.Join(ruleMethods(r), ", "))
	if path != "" {
		promise += " on " + path
	}
	if len(headers) > 0 {
		promise += " with " + request{headers: headers}.headerText()
	}
	other := otherMethod(r, callPath)
	if other == "" {
		d.notChecked(res, at, promise, "its methods take every method a call is tried with ("+strings.Join(otherMethods, ", ")+")")
		return
	}
	promise += fmt.Sprintf(": %s on %s", want, other)
	d.authzCallers(Check{Name: fmt.Sprintf("%s-rule%d-authz-other-method", o.Name, i), Resource: res, Promise: promise, Source: at},
		svc, named, headers, deny, topoPath, func(string) string { return other })
}

// callerExpectation is what a caller's variant must get: answers, when
// the policies allow it, or 403 (RBAC: access denied) when they do not.
func callerExpectation(caller string, allowed bool) map[string]any {
	if allowed {
		return map[string]any{"successRate": map[string]any{"min": 0.99, "variant": caller}}
	}
	return map[string]any{"status": map[string]any{"code": 403, "min": 0.99, "variant": caller}}
}

// authzRule derives one rule's check: each caller it names gets what the
// policies in force give it, judged against the rule's action, and, for
// an ALLOW rule, a caller it does not name is refused.
func (d *deriver) authzRule(o *spec.IstioObject, i int, svc *Service, path, method string, headers map[string]string, callers []string, anyone bool, promise string, at Source) {
	deny := o.AuthorizationPolicy.Spec.GetAction() == securityapi.AuthorizationPolicy_DENY
	res := "AuthorizationPolicy " + o.Namespace + "/" + o.Name
	callPath := path
	if callPath == "" {
		callPath = "/" + svc.Name
	}
	var load Load
	var expect []map[string]any
	calls := map[string][]string{}
	var a *access
	variant := func(caller string, allowed bool) {
		calls[caller] = []string{svc.Name}
		load.Variants = append(load.Variants, Variant{Name: caller, Weight: 1, Target: caller, Headers: headers, Method: variantMethod(callMethodOf(method, caller, a))})
		expect = append(expect, callerExpectation(caller, allowed))
	}
	load = d.opt.load(d.plan.Topology.Client, minRequests)
	named := callers
	if anyone {
		// A DENY for everyone is shown on a caller the ALLOW policies let
		// in, with a method they let in: DENY wins over ALLOW.
		a = d.authzAccess(svc)
		named = append(named, a.caller)
		if path == "" && a.path != "" {
			callPath, path = a.path, a.path
		}
	}
	for _, c := range named {
		allowed := d.allowed(svc.Name, c, callPath, callMethodOf(method, c, a), headers)
		if deny == allowed {
			// The policies in force contradict the rule's own word for
			// this caller (another DENY wins over this ALLOW): judge what
			// they give, and say so.
			promise += fmt.Sprintf(" (%s is %s by the policies together)", c, map[bool]string{true: "allowed", false: "denied"}[allowed])
		}
		variant(c, allowed)
	}
	if !deny && !anyone && !slices.Contains(callers, d.plan.Topology.Client) {
		variant(d.plan.Topology.Client, d.allowed(svc.Name, d.plan.Topology.Client, callPath, callMethodOf(method, d.plan.Topology.Client, a), headers))
	}
	if len(load.Variants) == 0 {
		return
	}
	topo := d.plan.Topology.registryTopology(calls, func(s *registry.Service) {
		if s.Name == svc.Name && path != "" {
			s.Path = path
		}
	})
	d.add(Check{
		Name: fmt.Sprintf("%s-rule%d-authz", o.Name, i), Resource: res, Promise: promise, Source: at,
		Scenario: &Scenario{Seed: 1, Topology: topo, Mesh: []map[string]string{{"file": MeshFile}}, Load: load, Expect: expect},
	})
}

// allowed is whether the policies on service let caller call path with
// method and headers:
// no DENY rule matches, and no ALLOW policy exists or one of its rules
// matches (Istio's authorization semantics, authorization_policy.proto).
// Rules with conditions it cannot judge are taken as not matching.
func (d *deriver) allowed(service, caller, path, method string, headers map[string]string) bool {
	ns := d.plan.Topology.Namespace
	matches := func(r *securityapi.Rule) bool {
		need, ok := ruleHeaders(r)
		if !ok {
			return false
		}
		for k, v := range need {
			if headers[k] != v {
				return false
			}
		}
		if !ruleTakes(r, path, method) {
			return false
		}
		callers, anyone, ok := ruleCallers(r, ns)
		return ok && (anyone || slices.Contains(callers, caller))
	}
	hasAllow, allowed := false, false
	for _, o := range d.plan.Objects {
		ap := o.AuthorizationPolicy
		if ap == nil || o.Namespace != ns || !appliesTo(ap.Spec.GetSelector().GetMatchLabels(), service) {
			continue
		}
		for _, r := range ap.Spec.Rules {
			switch ap.Spec.GetAction() {
			case securityapi.AuthorizationPolicy_DENY:
				if matches(r) {
					return false
				}
			case securityapi.AuthorizationPolicy_ALLOW:
				allowed = allowed || matches(r)
			}
		}
		if ap.Spec.GetAction() == securityapi.AuthorizationPolicy_ALLOW {
			hasAllow = true
		}
	}
	return !hasAllow || allowed
}

// pathMatches is whether one of the rule's operation paths takes path
// (an operation without paths takes every path).
func pathMatches(r *securityapi.Rule, path string) bool {
	for _, to := range r.To {
		paths := to.GetOperation().GetPaths()
		if len(paths) == 0 || slices.ContainsFunc(paths, func(p string) bool { return istioMatch(p, path) }) {
			return true
		}
	}
	return false
}

func describeCallers(callers []string, anyone bool) string {
	switch {
	case anyone:
		return "every caller's"
	case len(callers) == 0:
		return "its principals'"
	}
	return strings.Join(callers, " and ") + "'s"
}

// appliesTo is whether a policy of the namespace with that selector
// governs the service's pods: one without a selector governs them all
// (authorization_policy.proto, selector).
func appliesTo(selector map[string]string, service string) bool {
	return len(selector) == 0 || (len(selector) == 1 && selector["app"] == service)
}

// allowNothing reports whether the policy is an allow-nothing policy of
// the namespace: ALLOW (the default action) with no selector and no
// rules, which matches no request, so every workload of the namespace
// refuses what no other ALLOW policy allows: with ALLOW policies on a
// workload and none matching, the request is denied (istio.io
// docs/reference/config/security/authorization-policy: the evaluation
// order and the allow-nothing example, spec: {}; the first step of
// docs/tasks/security/authorization/authz-http).
func allowNothing(o *spec.IstioObject, ns string) bool {
	spec := &o.AuthorizationPolicy.Spec
	return o.Namespace == ns && spec.GetSelector() == nil && spec.GetTargetRef() == nil && len(spec.GetTargetRefs()) == 0 &&
		spec.GetAction() == securityapi.AuthorizationPolicy_ALLOW && len(spec.Rules) == 0 && spec.GetProvider() == nil
}

// allowNothing: every call into the namespace is refused with 403, but
// for the services other ALLOW policies open, whose rules derive their
// own checks, and for the services principals name (callers, and servers
// that also call), which let the load in (entryPolicies).
// The load calls each closed service in a variant of its own, through the
// ingress gateway, whose principal nothing allows.
func (d *deriver) allowNothing(o *spec.IstioObject) {
	res := "AuthorizationPolicy " + o.Namespace + "/" + o.Name
	src := Source{o.File, o.Line}
	client := d.plan.Topology.Client
	var closed []string
	for _, s := range d.plan.Topology.Services {
		// A principal's service lets the load in (entryPolicies): it is
		// where the checks of the services it calls enter.
		if s.Selects != nil || s.Principal || d.opened(s.Name) {
			continue
		}
		closed = append(closed, s.Name)
	}
	promise := "allows nothing: every call into the namespace " + d.plan.Topology.Namespace + " is refused with 403"
	if len(closed) == 0 {
		d.notChecked(res, src, promise, "other ALLOW policies open every inferred service (their rules are checked), and the callers let the load in ("+EntryFile+")")
		return
	}
	load := d.opt.load(client, minRequests*len(closed))
	var expect []map[string]any
	for _, name := range closed {
		load.Variants = append(load.Variants, Variant{Name: name, Weight: 1, Target: name})
		expect = append(expect, map[string]any{"status": map[string]any{"code": 403, "min": 0.99, "variant": name}})
	}
	d.add(Check{
		Name: o.Name + "-allow-nothing", Resource: res, Promise: promise + " (" + strings.Join(closed, ", ") + ")", Source: src,
		Scenario: &Scenario{Seed: 1, Topology: d.plan.Topology.registryTopology(nil, nil),
			Mesh: []map[string]string{{"file": MeshFile}}, Load: load, Expect: expect},
	})
}

// opened is whether an ALLOW policy with rules of the namespace governs
// the service.
func (d *deriver) opened(service string) bool {
	for _, o := range d.plan.Objects {
		ap := o.AuthorizationPolicy
		if ap != nil && o.Namespace == d.plan.Topology.Namespace && ap.Spec.GetAction() == securityapi.AuthorizationPolicy_ALLOW &&
			len(ap.Spec.Rules) > 0 && appliesTo(ap.Spec.GetSelector().GetMatchLabels(), service) {
			return true
		}
	}
	return false
}

// entryPolicies let the derived loads in where an allow-nothing policy
// would refuse them at the workload they enter, the client or a service
// a principal names:
// meshbench's stand-ins for the team's callers, which the load reaches
// through the ingress gateway (a workload of the root namespace). One
// ALLOW policy per entry workload, for calls from the root namespace.
func (p *Plan) entryPolicies() []map[string]any {
	var out []map[string]any
	entries := []string{p.Topology.Client}
	for _, s := range p.Topology.Services {
		if s.Principal {
			entries = append(entries, s.Name)
		}
	}
	for _, name := range entries {
		out = append(out, map[string]any{
			"apiVersion": "security.istio.io/v1",
			"kind":       "AuthorizationPolicy",
			"metadata":   map[string]any{"name": "meshbench-entry-" + name, "namespace": p.Topology.Namespace},
			"spec": map[string]any{
				"selector": map[string]any{"matchLabels": map[string]string{"app": name}},
				"action":   "ALLOW",
				"rules":    []any{map[string]any{"from": []any{map[string]any{"source": map[string]any{"namespaces": []string{rootNamespace}}}}}},
			},
		})
	}
	return out
}

// refused is why the AuthorizationPolicies refuse every caller the
// checks of the service could call it through, or "": the load of a route
// or traffic policy check would get only 403s.
func (d *deriver) refused(s *Service) string {
	a := d.access(s)
	path := a.path
	if path == "" {
		path = "/" + s.Name
	}
	if d.allowed(s.Name, a.caller, path, callMethod, nil) {
		return ""
	}
	return "the AuthorizationPolicies on " + s.Name + " refuse every caller the load could call it through"
}
