package spec

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/meshbench/meshbench/internal/suggest"
	"github.com/meshbench/meshbench/scenarios/spec/yamlnode"
	"github.com/meshbench/meshbench/sim/registry"
)

// This file reads and checks Gateway API routes for mesh traffic (GAMMA:
// HTTPRoute and GRPCRoute of gateway.networking.k8s.io/v1 whose parentRef
// is a Service). The shape checks follow the standard-channel CRDs of
// sigs.k8s.io/gateway-api v1.6.3 (config/crd/standard), which the API
// server applies; the checks against the topology follow istiod's
// conversion (pilot/pkg/config/kube/gateway/conversion.go), translated by
// sim/xdsgen/gamma.go.

// gatewayAPIVersion is the one Gateway API version accepted: v1 holds
// HTTPRoute and GRPCRoute in the standard channel.
const gatewayAPIVersion = "gateway.networking.k8s.io/v1"

// decodeGatewaySpec checks the YAML of a Gateway API spec against its Go
// type (field names from the json tags, scalar kinds) and decodes it. The
// Go types have no strict decoder of their own: encoding/json ignores
// unknown fields unless told, and names no line. Each problem goes to add
// at its own line and field path.
func decodeGatewaySpec(n *yaml.Node, p string, out any, add func(line int, field, msg string)) {
	bad := false
	checkGatewayFields(n, reflect.TypeOf(out).Elem(), p, func(line int, field, msg string) {
		bad = true
		add(line, field, msg)
	})
	if bad {
		return
	}
	var v any
	if err := n.Decode(&v); err != nil {
		add(n.Line, p, err.Error())
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		add(n.Line, p, fmt.Sprintf("cannot convert to JSON: %v", err))
		return
	}
	// The final word, after the walk above: no unknown field gets through.
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		add(n.Line, p, err.Error())
	}
}

// checkGatewayFields walks a YAML node alongside the Go type it decodes
// into, following encoding/json's rules (json tags, embedded ",inline"
// structs), and reports unknown and repeated keys and scalars of the wrong
// kind: the CRD's structural schema refuses them, where encoding/json
// would drop an unknown field or name no line.
func checkGatewayFields(n *yaml.Node, t reflect.Type, p string, add func(line int, field, msg string)) {
	n = yamlnode.Deref(n)
	if n == nil || yamlnode.IsNull(n) {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			add(n.Line, p, fmt.Sprintf("want a mapping, got %s", yamlnode.Describe(n)))
			return
		}
		fields := jsonFields(t)
		names := make([]string, 0, len(fields))
		for k := range fields {
			names = append(names, k)
		}
		sort.Strings(names)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			kp := yamlnode.Join(p, k.Value)
			if line, dup := seen[k.Value]; dup {
				add(k.Line, kp, fmt.Sprintf("%s is set twice (first at line %d)", k.Value, line))
				continue
			}
			seen[k.Value] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				add(k.Line, kp, fmt.Sprintf("unknown field %q%s; known fields: %s", k.Value, suggest.Hint(k.Value, names), strings.Join(names, ", ")))
				continue
			}
			checkGatewayFields(n.Content[i+1], ft, kp, add)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			add(n.Line, p, fmt.Sprintf("want a list, got %s", yamlnode.Describe(n)))
			return
		}
		for i, c := range n.Content {
			checkGatewayFields(c, t.Elem(), yamlnode.Item(p, i), add)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			add(n.Line, p, fmt.Sprintf("want a mapping, got %s", yamlnode.Describe(n)))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkGatewayFields(n.Content[i+1], t.Elem(), yamlnode.Join(p, n.Content[i].Value), add)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			add(n.Line, p, fmt.Sprintf("want a string, got %s", yamlnode.Describe(n)))
		}
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint32:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			add(n.Line, p, fmt.Sprintf("want a whole number, got %s", yamlnode.Describe(n)))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			add(n.Line, p, fmt.Sprintf("want true or false, got %s", yamlnode.Describe(n)))
		}
	}
}

// jsonFields maps the JSON names of a struct's fields to their types,
// as encoding/json reads them: embedded structs without a name contribute
// their fields.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// selectingService checks a Service declared with selects: it names a
// service of the topology (not another selecting one) and one of its
// versions, and declares nothing a selecting Service cannot have: pods,
// calls, ports of its own.
func (v *validator) selectingService(p string, svc registry.Service) {
	l := v.l
	sel := svc.Selects
	target := v.services[sel.Service]
	switch {
	case sel.Service == "":
		l.at(p+".selects.service", "selects.service is required: the service whose pods this Service selects")
		return
	case target == nil || sel.Service == svc.Name:
		l.at(p+".selects.service", "selects %q, which matches no other service in the topology (services: %s)", sel.Service, v.serviceList())
		return
	case target.Selects != nil:
		l.at(p+".selects.service", "selects %s, which selects %s itself; select the service that has the versions", sel.Service, target.Selects.Service)
		return
	}
	if sel.Version != "" && !hasVersion(target, sel.Version) {
		l.at(p+".selects.version", "%s has no version %q (versions: %s)", sel.Service, sel.Version, strings.Join(versionNames(target), ", "))
	}
	// A selecting Service serves the selected pods' port: its own fields
	// would describe pods it does not have.
	for _, f := range []string{"versions", "calls", "onCalleeError", "port", "targetPort", "protocol", "appProtocol", "path"} {
		if l.ix.has(p + "." + f) {
			l.at(p+"."+f, "a Service with selects has the pods, ports and path of %s; remove %s", sel.Service, f)
		}
	}
}

// gamma checks the HTTPRoutes and GRPCRoutes against the topology, as
// istiod would accept and translate them, and warns where a
// VirtualService for the same host loses to one.
func (v *validator) gamma(objs []*meshObject) {
	routed := map[string]*meshObject{} // parent service → first route
	for _, o := range objs {
		var parents []gatewayv1.ParentReference
		switch {
		case o.hr != nil:
			parents = o.hr.Spec.ParentRefs
			v.httpRoute(o)
		case o.gr != nil:
			parents = o.gr.Spec.ParentRefs
			v.grpcRoute(o)
		default:
			continue
		}
		for _, pr := range parents {
			if isServiceRef(pr.Group, pr.Kind) && routed[string(pr.Name)] == nil {
				routed[string(pr.Name)] = o
			}
		}
	}
	// istiod puts the Gateway API routes of the proxy's namespace before
	// every VirtualService (pilot/pkg/model/virtualservice.go
	// SelectVirtualServices, gwMatch first), and a sidecar takes the first
	// VirtualService of a host: a VirtualService for a Service that a
	// route has as parent is ignored by sidecars.
	for _, o := range objs {
		if o.vs == nil || !boundToMeshSpec(o.vs.Spec.GetGateways()) {
			continue
		}
		for i, h := range o.vs.Spec.GetHosts() {
			svc, _ := v.resolveHost(h, o.namespace)
			if svc == nil || routed[svc.Name] == nil {
				continue
			}
			r := routed[svc.Name]
			v.objWarn(o, yamlnode.Item("spec.hosts", i), "sidecars ignore this VirtualService for %s: %s %s routes it, and istiod puts Gateway API routes of the namespace first (model/virtualservice.go SelectVirtualServices)", svc.Name, r.kind, r.name)
		}
	}
}

func boundToMeshSpec(gws []string) bool {
	if len(gws) == 0 {
		return true
	}
	for _, g := range gws {
		if g == "mesh" {
			return true
		}
	}
	return false
}

// isServiceRef reports whether a group and kind name a core Service. A
// parentRef's defaults are group gateway.networking.k8s.io and kind
// Gateway; a backendRef's are the core group and Service.
func isServiceRef(group *gatewayv1.Group, kind *gatewayv1.Kind) bool {
	g := "gateway.networking.k8s.io"
	if group != nil {
		g = string(*group)
	}
	return (g == "" || g == "core") && kind != nil && *kind == "Service"
}

// parentRefs checks that every parent is a Service of the topology: mesh
// routing (GAMMA). A Gateway parent (the default kind) is refused: meshbench
// translates mesh routes only.
func (v *validator) parentRefs(o *meshObject, refs []gatewayv1.ParentReference) {
	if len(refs) == 0 {
		v.objErr(o, "spec", "parentRefs is required: a mesh route names the Service it routes, e.g. parentRefs: [{group: \"\", kind: Service, name: payment}]")
		return
	}
	for i, r := range refs {
		p := yamlnode.Item("spec.parentRefs", i)
		if !isServiceRef(r.Group, r.Kind) {
			kind := "Gateway"
			if r.Kind != nil {
				kind = string(*r.Kind)
			}
			v.objErr(o, p, "parentRef %s %q is not a Service: meshbench supports Gateway API routes for mesh traffic only (GAMMA), whose parentRef is {group: \"\", kind: Service, name: <service>}; a Gateway parent (the default when kind is unset) is not translated", kind, r.Name)
			continue
		}
		v.serviceRef(o, p, string(r.Name), r.Namespace)
		svc := v.services[string(r.Name)]
		if r.SectionName != nil {
			v.objErr(o, p+".sectionName", "sectionName is not supported for a Service parent; name the port with port")
		}
		if r.Port != nil && svc != nil && int(*r.Port) != svc.Port {
			v.objErr(o, p+".port", "service %s has no port %d (its port is %d)", svc.Name, *r.Port, svc.Port)
		}
	}
}

// serviceRef checks that name (in namespace ns, if set) is a Service of
// the topology.
func (v *validator) serviceRef(o *meshObject, p, name string, ns *gatewayv1.Namespace) {
	if ns != nil && string(*ns) != v.s.Topology.Namespace {
		v.objErr(o, p+".namespace", "namespace %q: the topology's services are in %s", *ns, v.s.Topology.Namespace)
	}
	if v.services[name] == nil {
		// conversion.go buildDestination: "the name of the Service must be used, not the hostname".
		v.objErr(o, p+".name", "%q matches no service in the topology (services: %s); give the Service's name, not a hostname", name, v.serviceList())
	}
}

// backendRef checks a backend as conversion.go buildDestination reads it:
// a Service (kind and group default to it) of the topology, its port
// required and the Service's.
func (v *validator) backendRef(o *meshObject, p string, r gatewayv1.BackendObjectReference) {
	group, kind := "", "Service"
	if r.Group != nil {
		group = string(*r.Group)
	}
	if r.Kind != nil {
		kind = string(*r.Kind)
	}
	if (group != "" && group != "core") || kind != "Service" {
		v.objErr(o, p, "backendRef of group %q kind %q: meshbench routes to Services only (a Hostname or ServiceEntry has no place in the topology)", group, kind)
		return
	}
	v.serviceRef(o, p, string(r.Name), r.Namespace)
	svc := v.services[string(r.Name)]
	switch {
	case r.Port == nil:
		// conversion.go buildDestination: "port is required in backendRef".
		v.objErr(o, p, "port is required in a backendRef to a Service")
	case svc != nil && int(*r.Port) != svc.Port:
		v.objErr(o, p+".port", "service %s has no port %d (its port is %d)", svc.Name, *r.Port, svc.Port)
	}
}

// durationRE is the Gateway API Duration (GEP-2257), as the CRD's pattern.
var durationRE = regexp.MustCompile(`^([0-9]{1,5}(h|m|s|ms)){1,4}$`)

func (v *validator) gatewayDuration(o *meshObject, p string, d *gatewayv1.Duration) time.Duration {
	if d == nil {
		return 0
	}
	if !durationRE.MatchString(string(*d)) {
		v.objErr(o, p, "invalid duration %q: want a Gateway API duration such as 500ms, 10s or 1m30s", *d)
		return 0
	}
	out, _ := time.ParseDuration(string(*d))
	return out
}

// httpRoute checks an HTTPRoute.
func (v *validator) httpRoute(o *meshObject) {
	spec := &o.hr.Spec
	v.parentRefs(o, spec.ParentRefs)
	if len(spec.Rules) == 0 {
		v.objErr(o, "spec", "rules is required: an HTTPRoute without rules routes nothing")
	}
	for i, r := range spec.Rules {
		p := yamlnode.Item("spec.rules", i)
		for j, m := range r.Matches {
			v.httpMatch(o, yamlnode.Item(p+".matches", j), m)
		}
		for j, f := range r.Filters {
			v.httpFilter(o, yamlnode.Item(p+".filters", j), f, false)
		}
		weights := 0
		for j, b := range r.BackendRefs {
			bp := yamlnode.Item(p+".backendRefs", j)
			v.backendRef(o, bp, b.BackendObjectReference)
			weights += v.weight(o, bp, b.Weight)
			for k, f := range b.Filters {
				v.httpFilter(o, yamlnode.Item(bp+".filters", k), f, true)
			}
		}
		if weights == 0 {
			// conversion.go convertHTTPRoute: no backend of weight > 0 becomes a direct response 500.
			v.objErr(o, p, "no backendRef with a weight above 0: istiod answers such a rule with a direct response 500, which the builtin sidecar does not implement")
		}
		v.splitFilters(o, p, len(r.BackendRefs), func(j int) (*int32, int) { return r.BackendRefs[j].Weight, len(r.BackendRefs[j].Filters) })
		if r.Timeouts != nil {
			req := v.gatewayDuration(o, p+".timeouts.request", r.Timeouts.Request)
			back := v.gatewayDuration(o, p+".timeouts.backendRequest", r.Timeouts.BackendRequest)
			// The CRD's rule: backendRequest <= request unless request is 0.
			if req != 0 && back > req {
				v.objErr(o, p+".timeouts.backendRequest", "backendRequest timeout %s is longer than the request timeout %s", back, req)
			}
		}
		if r.Retry != nil {
			v.objErr(o, p+".retry", "retry is in the Gateway API's experimental channel only; the standard-channel CRD (which the kind runtime installs) has no such field, and the API server would drop it")
		}
		if r.SessionPersistence != nil {
			v.objErr(o, p+".sessionPersistence", "sessionPersistence is in the Gateway API's experimental channel only and not translated")
		}
	}
}

// weight checks a backend's weight (CRD: 0..1000000, default 1) and
// returns it.
func (v *validator) weight(o *meshObject, p string, w *int32) int {
	if w == nil {
		return 1
	}
	if *w < 0 || *w > 1000000 {
		v.objErr(o, p+".weight", "weight %d is not in 0..1000000", *w)
		return 0
	}
	return int(*w)
}

var (
	// HTTP header names as the CRD's HTTPHeaderName pattern.
	gatewayHeaderNameRE = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$`)
	pathMatchTypes      = []string{"Exact", "PathPrefix", "RegularExpression"}
	stringMatchTypes    = []string{"Exact", "RegularExpression"}
)

func (v *validator) regex(o *meshObject, p, expr string) {
	if err := checkRE2(expr); err != nil {
		v.objErr(o, p, "%v", err)
	}
}

// httpMatch checks one HTTPRouteMatch as the CRD does (path types and
// values, header and query names) and its regexes as Envoy's RE2 would.
func (v *validator) httpMatch(o *meshObject, p string, m gatewayv1.HTTPRouteMatch) {
	if m.Path != nil {
		tp, val := "PathPrefix", "/"
		if m.Path.Type != nil {
			tp = string(*m.Path.Type)
		}
		if m.Path.Value != nil {
			val = *m.Path.Value
		}
		switch {
		case !contains(pathMatchTypes, tp):
			v.objErr(o, p+".path.type", "unknown path match type %q; want %s", tp, strings.Join(pathMatchTypes, ", "))
		case tp == "RegularExpression":
			v.regex(o, p+".path.value", val)
		case !strings.HasPrefix(val, "/"):
			v.objErr(o, p+".path.value", "path %q must start with /", val)
		case strings.Contains(val, "//") || strings.Contains(val, "/./") || strings.Contains(val, "/../") || strings.HasSuffix(val, "/.") || strings.HasSuffix(val, "/.."):
			v.objErr(o, p+".path.value", "path %q must not contain //, /./ or /../ (the CRD refuses them)", val)
		}
	}
	seen := map[string]bool{}
	for i, h := range m.Headers {
		hp := yamlnode.Item(p+".headers", i)
		v.headerMatch(o, hp, string(h.Name), h.Type, h.Value, seen)
	}
	seen = map[string]bool{}
	for i, q := range m.QueryParams {
		qp := yamlnode.Item(p+".queryParams", i)
		tp := "Exact"
		if q.Type != nil {
			tp = string(*q.Type)
		}
		switch {
		case q.Name == "":
			v.objErr(o, qp+".name", "name is required")
		case seen[string(q.Name)]:
			v.objErr(o, qp+".name", "query parameter %q is matched twice", q.Name)
		case !contains(stringMatchTypes, tp):
			v.objErr(o, qp+".type", "unknown match type %q; want %s", tp, strings.Join(stringMatchTypes, ", "))
		case tp == "RegularExpression":
			v.regex(o, qp+".value", q.Value)
		}
		seen[string(q.Name)] = true
	}
	if m.Method != nil && !contains([]string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}, string(*m.Method)) {
		v.objErr(o, p+".method", "unknown method %q", *m.Method)
	}
}

// headerMatch checks one header match; names are case-insensitive and
// the CRD refuses one named twice.
func (v *validator) headerMatch(o *meshObject, p, name string, tp *gatewayv1.HeaderMatchType, value string, seen map[string]bool) {
	t := "Exact"
	if tp != nil {
		t = string(*tp)
	}
	switch {
	case !gatewayHeaderNameRE.MatchString(name):
		v.objErr(o, p+".name", "invalid header name %q", name)
	case seen[strings.ToLower(name)]:
		v.objErr(o, p+".name", "header %q is matched twice", name)
	case !contains(stringMatchTypes, t):
		v.objErr(o, p+".type", "unknown match type %q; want %s", t, strings.Join(stringMatchTypes, ", "))
	case t == "RegularExpression":
		v.regex(o, p+".value", value)
	}
	seen[strings.ToLower(name)] = true
}

// httpFilter checks one HTTPRoute filter. Translated: header modifiers,
// URLRewrite and RequestMirror (conversion.go convertHTTPRoute); a
// backend's filters may only modify headers (buildHTTPDestination).
// Refused: RequestRedirect (a redirect, which the builtin sidecar does not
// implement, as for VirtualService), CORS (not translated), ExtensionRef
// (istiod: "unsupported filter type").
func (v *validator) httpFilter(o *meshObject, p string, f gatewayv1.HTTPRouteFilter, backend bool) {
	set := map[string]bool{
		"RequestHeaderModifier":  f.RequestHeaderModifier != nil,
		"ResponseHeaderModifier": f.ResponseHeaderModifier != nil,
		"RequestMirror":          f.RequestMirror != nil,
		"RequestRedirect":        f.RequestRedirect != nil,
		"URLRewrite":             f.URLRewrite != nil,
		"CORS":                   f.CORS != nil,
		"ExtensionRef":           f.ExtensionRef != nil,
		"ExternalAuth":           f.ExternalAuth != nil,
	}
	v.filterShape(o, p, string(f.Type), set)
	switch t := string(f.Type); {
	case backend && t != "RequestHeaderModifier" && t != "ResponseHeaderModifier":
		v.objErr(o, p+".type", "a backendRef's filters may only modify headers (istiod refuses %s there: conversion.go buildHTTPDestination)", t)
	case t == "RequestHeaderModifier":
		v.headerFilter(o, p+".requestHeaderModifier", f.RequestHeaderModifier)
	case t == "ResponseHeaderModifier":
		v.headerFilter(o, p+".responseHeaderModifier", f.ResponseHeaderModifier)
	case t == "RequestMirror":
		v.mirrorFilter(o, p+".requestMirror", f.RequestMirror)
	case t == "URLRewrite":
		if f.URLRewrite != nil && f.URLRewrite.Path != nil {
			v.pathModifier(o, p+".urlRewrite.path", f.URLRewrite.Path)
		}
	case t == "RequestRedirect":
		v.objErr(o, p+".type", "RequestRedirect is not supported: istiod makes it a redirect, which the builtin sidecar does not implement")
	case t == "CORS":
		v.objErr(o, p+".type", "CORS is not translated by meshbench (nor a VirtualService's corsPolicy)")
	case t == "ExtensionRef", t == "ExternalAuth":
		v.objErr(o, p+".type", "%s is not supported: istiod refuses it (conversion.go: unsupported filter type)", t)
	}
}

// filterShape is the CRD's rule for every filter: the field of its type
// is set, and no other.
func (v *validator) filterShape(o *meshObject, p, t string, set map[string]bool) {
	if t == "" {
		v.objErr(o, p, "type is required")
		return
	}
	if _, ok := set[t]; !ok {
		var names []string
		for k := range set {
			names = append(names, k)
		}
		sort.Strings(names)
		v.objErr(o, p+".type", "unknown filter type %q; want one of %s", t, strings.Join(names, ", "))
		return
	}
	field := strings.ToLower(t[:1]) + t[1:]
	if t == "CORS" {
		field = "cors"
	}
	if !set[t] {
		v.objErr(o, p, "a filter of type %s needs its %s field", t, field)
	}
	for k, on := range set {
		if on && k != t {
			v.objErr(o, p+".type", "a filter of type %s must not set %s", t, strings.ToLower(k[:1])+k[1:])
		}
	}
}

// headerFilter checks a header modifier: valid names, each named once,
// values istiod accepts (conversion.go isValidHeaderValue).
func (v *validator) headerFilter(o *meshObject, p string, f *gatewayv1.HTTPHeaderFilter) {
	if f == nil {
		return
	}
	seen := map[string]bool{}
	check := func(kind string, hs []gatewayv1.HTTPHeader) {
		for i, h := range hs {
			hp := yamlnode.Item(p+"."+kind, i)
			switch {
			case !gatewayHeaderNameRE.MatchString(string(h.Name)):
				v.objErr(o, hp+".name", "invalid header name %q", h.Name)
			case seen[strings.ToLower(string(h.Name))]:
				v.objErr(o, hp+".name", "header %q is modified twice", h.Name)
			case !validHeaderValue(h.Value):
				v.objErr(o, hp+".value", "header %q value contains invalid characters", h.Name)
			}
			seen[strings.ToLower(string(h.Name))] = true
		}
	}
	check("set", f.Set)
	check("add", f.Add)
	for i, r := range f.Remove {
		if !gatewayHeaderNameRE.MatchString(r) {
			v.objErr(o, yamlnode.Item(p+".remove", i), "invalid header name %q", r)
		}
	}
}

// validHeaderValue is conversion.go isValidHeaderValue.
func validHeaderValue(s string) bool {
	for _, c := range []byte(s) {
		if c == 0x09 || c >= 0x20 && c != 0x7F {
			continue
		}
		return false
	}
	return true
}

// mirrorFilter checks a RequestMirror: a backend as any other, and a
// share as percent or fraction, not both (the CRD's rule).
func (v *validator) mirrorFilter(o *meshObject, p string, f *gatewayv1.HTTPRequestMirrorFilter) {
	if f == nil {
		return
	}
	v.backendRef(o, p+".backendRef", f.BackendRef)
	if f.Percent != nil && f.Fraction != nil {
		v.objErr(o, p, "set percent or fraction, not both")
	}
	if f.Percent != nil && (*f.Percent < 0 || *f.Percent > 100) {
		v.objErr(o, p+".percent", "percent %d is not in 0..100", *f.Percent)
	}
	if fr := f.Fraction; fr != nil {
		den := int32(100)
		if fr.Denominator != nil {
			den = *fr.Denominator
		}
		if den < 1 || fr.Numerator < 0 || fr.Numerator > den {
			v.objErr(o, p+".fraction", "fraction %d/%d is not a share between 0 and 1", fr.Numerator, den)
		}
	}
}

// pathModifier checks a URLRewrite's path: the field of its type set.
func (v *validator) pathModifier(o *meshObject, p string, m *gatewayv1.HTTPPathModifier) {
	switch m.Type {
	case gatewayv1.FullPathHTTPPathModifier:
		if m.ReplaceFullPath == nil || m.ReplacePrefixMatch != nil {
			v.objErr(o, p, "type ReplaceFullPath needs replaceFullPath, and only it")
		}
	case gatewayv1.PrefixMatchHTTPPathModifier:
		if m.ReplacePrefixMatch == nil || m.ReplaceFullPath != nil {
			v.objErr(o, p, "type ReplacePrefixMatch needs replacePrefixMatch, and only it")
		}
	default:
		v.objErr(o, p+".type", "unknown path modifier %q; want ReplaceFullPath or ReplacePrefixMatch", m.Type)
	}
}

// grpcRoute checks a GRPCRoute. It has no timeouts or retries in v1.
func (v *validator) grpcRoute(o *meshObject) {
	spec := &o.gr.Spec
	v.parentRefs(o, spec.ParentRefs)
	if len(spec.Rules) == 0 {
		v.objErr(o, "spec", "rules is required: a GRPCRoute without rules routes nothing")
	}
	for i, r := range spec.Rules {
		p := yamlnode.Item("spec.rules", i)
		for j, m := range r.Matches {
			mp := yamlnode.Item(p+".matches", j)
			if mm := m.Method; mm != nil {
				tp := "Exact"
				if mm.Type != nil {
					tp = string(*mm.Type)
				}
				switch {
				case mm.Service == nil && mm.Method == nil:
					// conversion.go createGRPCURIMatch: "gRPC match must have method or service defined".
					v.objErr(o, mp+".method", "a method match needs service, method or both")
				case !contains(stringMatchTypes, tp):
					v.objErr(o, mp+".method.type", "unknown match type %q; want %s", tp, strings.Join(stringMatchTypes, ", "))
				case tp == "RegularExpression":
					if mm.Service != nil {
						v.regex(o, mp+".method.service", *mm.Service)
					}
					if mm.Method != nil {
						v.regex(o, mp+".method.method", *mm.Method)
					}
				}
			}
			seen := map[string]bool{}
			for k, h := range m.Headers {
				v.headerMatch(o, yamlnode.Item(mp+".headers", k), string(h.Name), (*gatewayv1.HeaderMatchType)(h.Type), h.Value, seen)
			}
		}
		for j, f := range r.Filters {
			v.grpcFilter(o, yamlnode.Item(p+".filters", j), f, false)
		}
		weights := 0
		for j, b := range r.BackendRefs {
			bp := yamlnode.Item(p+".backendRefs", j)
			v.backendRef(o, bp, b.BackendObjectReference)
			weights += v.weight(o, bp, b.Weight)
			for k, f := range b.Filters {
				v.grpcFilter(o, yamlnode.Item(bp+".filters", k), f, true)
			}
		}
		if weights == 0 {
			v.objErr(o, p, "no backendRef with a weight above 0: istiod answers such a rule with a direct response 500, which the builtin sidecar does not implement")
		}
		v.splitFilters(o, p, len(r.BackendRefs), func(j int) (*int32, int) { return r.BackendRefs[j].Weight, len(r.BackendRefs[j].Filters) })
		if r.SessionPersistence != nil {
			v.objErr(o, p+".sessionPersistence", "sessionPersistence is in the Gateway API's experimental channel only and not translated")
		}
	}
}

// grpcFilter checks one GRPCRoute filter (conversion.go convertGRPCRoute:
// header modifiers and RequestMirror; a backend's: header modifiers).
func (v *validator) grpcFilter(o *meshObject, p string, f gatewayv1.GRPCRouteFilter, backend bool) {
	set := map[string]bool{
		"RequestHeaderModifier":  f.RequestHeaderModifier != nil,
		"ResponseHeaderModifier": f.ResponseHeaderModifier != nil,
		"RequestMirror":          f.RequestMirror != nil,
		"ExtensionRef":           f.ExtensionRef != nil,
	}
	v.filterShape(o, p, string(f.Type), set)
	switch t := string(f.Type); {
	case backend && t != "RequestHeaderModifier" && t != "ResponseHeaderModifier":
		v.objErr(o, p+".type", "a backendRef's filters may only modify headers (istiod refuses %s there: conversion.go buildGRPCDestination)", t)
	case t == "RequestHeaderModifier":
		v.headerFilter(o, p+".requestHeaderModifier", f.RequestHeaderModifier)
	case t == "ResponseHeaderModifier":
		v.headerFilter(o, p+".responseHeaderModifier", f.ResponseHeaderModifier)
	case t == "RequestMirror":
		v.mirrorFilter(o, p+".requestMirror", f.RequestMirror)
	case t == "ExtensionRef":
		v.objErr(o, p+".type", "ExtensionRef is not supported: istiod refuses it (conversion.go: unsupported filter type)")
	}
}

// httpRouteDefaults applies the standard-channel CRD's defaults, as the
// API server does before istiod sees the route (the kubebuilder:default
// markers of apis/v1): a rule without matches matches the prefix "/", a
// match without a path too; match types Exact; backendRefs are core
// Services of weight 1; parentRefs are Gateways unless they say otherwise.
// The matches' defaults change istiod's rule order (sortHTTPRoutes ranks
// a prefix match above none), so meshbench translates what a cluster
// would hold.
func httpRouteDefaults(spec *gatewayv1.HTTPRouteSpec) {
	parentDefaults(spec.ParentRefs)
	for i := range spec.Rules {
		r := &spec.Rules[i]
		if len(r.Matches) == 0 {
			r.Matches = []gatewayv1.HTTPRouteMatch{{}}
		}
		for j := range r.Matches {
			m := &r.Matches[j]
			if m.Path == nil {
				m.Path = &gatewayv1.HTTPPathMatch{}
			}
			if m.Path.Type == nil {
				m.Path.Type = ptrTo(gatewayv1.PathMatchPathPrefix)
			}
			if m.Path.Value == nil {
				m.Path.Value = ptrTo("/")
			}
			for k := range m.Headers {
				if m.Headers[k].Type == nil {
					m.Headers[k].Type = ptrTo(gatewayv1.HeaderMatchExact)
				}
			}
			for k := range m.QueryParams {
				if m.QueryParams[k].Type == nil {
					m.QueryParams[k].Type = ptrTo(gatewayv1.QueryParamMatchExact)
				}
			}
		}
		for j := range r.BackendRefs {
			backendDefaults(&r.BackendRefs[j].BackendRef)
		}
	}
}

// grpcRouteDefaults is httpRouteDefaults for a GRPCRoute, whose matches
// have no default (a rule without one matches every call).
func grpcRouteDefaults(spec *gatewayv1.GRPCRouteSpec) {
	parentDefaults(spec.ParentRefs)
	for i := range spec.Rules {
		r := &spec.Rules[i]
		for j := range r.Matches {
			m := &r.Matches[j]
			if m.Method != nil && m.Method.Type == nil {
				m.Method.Type = ptrTo(gatewayv1.GRPCMethodMatchExact)
			}
			for k := range m.Headers {
				if m.Headers[k].Type == nil {
					m.Headers[k].Type = ptrTo(gatewayv1.GRPCHeaderMatchExact)
				}
			}
		}
		for j := range r.BackendRefs {
			backendDefaults(&r.BackendRefs[j].BackendRef)
		}
	}
}

func parentDefaults(refs []gatewayv1.ParentReference) {
	for i := range refs {
		if refs[i].Group == nil {
			refs[i].Group = ptrTo(gatewayv1.Group(gatewayv1.GroupName))
		}
		if refs[i].Kind == nil {
			refs[i].Kind = ptrTo(gatewayv1.Kind("Gateway"))
		}
	}
}

func backendDefaults(b *gatewayv1.BackendRef) {
	if b.Group == nil {
		b.Group = ptrTo(gatewayv1.Group(""))
	}
	if b.Kind == nil {
		b.Kind = ptrTo(gatewayv1.Kind("Service"))
	}
	if b.Weight == nil {
		b.Weight = ptrTo(int32(1))
	}
}

func ptrTo[T any](v T) *T { return &v }

// splitFilters refuses a backend's filters in a weighted split: istiod
// puts them on the weighted cluster (route.go), which meshbench does not
// translate; on a rule's only backend they go on the route, as for a
// VirtualService's single destination.
func (v *validator) splitFilters(o *meshObject, p string, n int, backend func(int) (weight *int32, filters int)) {
	live := 0
	for j := 0; j < n; j++ {
		if w, _ := backend(j); w == nil || *w > 0 {
			live++
		}
	}
	if live < 2 {
		return
	}
	for j := 0; j < n; j++ {
		if _, f := backend(j); f > 0 {
			v.objErr(o, yamlnode.Item(p+".backendRefs", j)+".filters", "a backendRef's filters in a weighted split are not translated by meshbench (istiod puts them on the weighted cluster); put them on the rule, or give the rule one backend")
		}
	}
}
