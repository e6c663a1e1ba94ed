package spec

import (
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	security "istio.io/api/security/v1beta1"

	"github.com/meshbench/meshbench/internal/suggest"
	"github.com/meshbench/meshbench/scenarios/spec/yamlnode"
	"github.com/meshbench/meshbench/sim/meshconfig"
)

// This file checks PeerAuthentications and AuthorizationPolicies the way
// Istio does, so that a scenario Istio would refuse is refused here too:
//
//   - Istio's admission webhook (pkg/config/validation/validation.go
//     ValidatePeerAuthentication, ValidateAuthorizationPolicy, and
//     pkg/config/security/security.go ValidateAttribute, CheckEmptyValues);
//   - istioctl analyze (pkg/config/analysis/analyzers/authz:
//     NoMatchingWorkloadsFound), whose warning is an error here: a policy
//     that selects no pod is always a mistake in a scenario.
//
// Where meshbench is stricter than Istio the comment says so and why. The
// main reason: sim/xdsgen translates a subset of AuthorizationPolicy, and a
// field it would drop silently could widen an ALLOW policy or narrow a
// DENY one, which is the opposite of what a scenario about it would prove.

// security checks every PeerAuthentication and AuthorizationPolicy.
func (v *validator) security(objs []*meshObject) {
	for _, o := range objs {
		bad := func(p, format string, args ...any) { v.objErr(o, p, format, args...) }
		switch {
		case o.pa != nil:
			v.peerAuthentication(o, bad, &o.pa.Spec)
		case o.ap != nil:
			v.authorizationPolicy(o, bad, &o.ap.Spec)
		}
	}
}

// peerAuthentication: ValidatePeerAuthentication, and the selection rules of
// pilot/pkg/security/authn/policy_applier.go ComposePeerAuthentication.
func (v *validator) peerAuthentication(o *meshObject, bad fieldErr, spec *security.PeerAuthentication) {
	sel := spec.GetSelector().GetMatchLabels()
	switch {
	case len(sel) == 0 && len(spec.GetPortLevelMtls()) > 0:
		bad("spec.portLevelMtls", "mesh/namespace peer authentication cannot have port level mTLS: portLevelMtls requires a selector")
	case len(spec.GetPortLevelMtls()) == 0 && o.ix.has("spec.portLevelMtls"):
		bad("spec.portLevelMtls", "port level mTLS, if defined, must have at least one element")
	}
	if len(sel) > 0 && o.namespace == meshconfig.RootNamespace {
		// Istio's webhook accepts it; istiod then ignores it
		// (ComposePeerAuthentication: "Workload-level configs should not
		// be in root namespace").
		bad("spec.selector", "a PeerAuthentication with a selector in the root namespace %s applies to no workload: istiod ignores it; put it in namespace %s",
			meshconfig.RootNamespace, v.s.Topology.Namespace)
		return
	}
	targetPorts := v.selectedTargetPorts(o, bad, sel)
	ports := make([]int, 0, len(spec.GetPortLevelMtls()))
	for p := range spec.GetPortLevelMtls() {
		ports = append(ports, int(p))
	}
	sort.Ints(ports)
	for _, p := range ports {
		pp := "spec.portLevelMtls." + strconv.Itoa(p)
		switch {
		case p < 1 || p > 65535:
			bad(pp, "port must be in range 1..65535")
		case len(sel) > 0 && len(targetPorts) > 0 && !containsInt(targetPorts, p):
			// Stricter than Istio, which keys portLevelMtls by container
			// port and ignores a port no workload has: the service port
			// (80) written for the container port (8080) is a common slip,
			// and the setting then silently does nothing.
			bad(pp, "port %d is not a container port of the pods the selector selects (targetPort %s); portLevelMtls keys are container ports", p, joinInts(targetPorts))
		}
	}
}

// selectedTargetPorts reports a policy that applies to no pod and returns
// the container ports of the pods it does select (nil for a policy without
// a selector).
func (v *validator) selectedTargetPorts(o *meshObject, bad fieldErr, sel map[string]string) []int {
	ns := v.s.Topology.Namespace
	if o.namespace != ns && o.namespace != meshconfig.RootNamespace {
		bad("metadata.namespace", "%s %s applies to no workload: no pod runs in namespace %s (the services live in namespace %s)", o.kind, o.name, o.namespace, ns)
		return nil
	}
	if len(sel) == 0 {
		return nil
	}
	var ports []int
	for _, name := range v.names {
		if svc := v.services[name]; selectsPod(svc, sel) && !containsInt(ports, svc.TargetPort) {
			ports = append(ports, svc.TargetPort)
		}
	}
	if len(ports) == 0 {
		p := "spec.selector.matchLabels"
		if !o.ix.has(p) {
			p = "spec.selector"
		}
		bad(p, "selector %s selects no pod (pods are labelled app=<service>, version=<version> and their version's labels); istioctl analyze: NoMatchingWorkloadsFound", formatLabels(sel))
	}
	sort.Ints(ports)
	return ports
}

// AuthorizationPolicy fields sim/xdsgen translates (security.go
// translateRule); any other field set is refused rather than dropped.
var (
	authzSourceFields    = []string{"principals", "namespaces"}
	authzOperationFields = []string{"methods", "paths"}
)

// authorizationPolicy: ValidateAuthorizationPolicy and ValidateAttribute,
// NoMatchingWorkloadsFound, and what meshbench translates.
func (v *validator) authorizationPolicy(o *meshObject, bad fieldErr, spec *security.AuthorizationPolicy) {
	switch spec.GetAction() {
	case security.AuthorizationPolicy_ALLOW:
	case security.AuthorizationPolicy_DENY:
		if len(spec.GetRules()) == 0 && !o.ix.has("spec.rules") {
			bad("spec", "DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request")
		}
	default:
		bad("spec.action", "action %s is not supported by meshbench (ALLOW and DENY are)", spec.GetAction())
	}
	if spec.GetProvider() != nil {
		bad("spec.provider", "`provider` must not be with non CUSTOM action, found %s", spec.GetAction())
	}
	if spec.GetTargetRef() != nil || len(spec.GetTargetRefs()) > 0 {
		bad("spec", "targetRef and targetRefs are not supported by meshbench: use a selector")
	}
	v.selectedTargetPorts(o, bad, spec.GetSelector().GetMatchLabels())
	for i, r := range spec.GetRules() {
		rp := yamlnode.Item("spec.rules", i)
		// An empty list decodes as none: look at the YAML.
		if len(r.GetFrom()) == 0 && o.ix.has(rp+".from") {
			bad(rp+".from", "`from` must not be empty, found at rule %d", i)
		}
		for j, f := range r.GetFrom() {
			fp := yamlnode.Item(rp+".from", j)
			src := f.GetSource()
			if src == nil {
				bad(fp, "`from.source` must not be nil, found at rule %d", i)
				continue
			}
			if !hasSetField(src) {
				bad(fp+".source", "`from.source` must not be empty, found at rule %d", i)
			}
			unsupported(bad, fp+".source", src, authzSourceFields)
			for k, p := range src.GetPrincipals() {
				pp := yamlnode.Item(fp+".source.principals", k)
				switch {
				case p == "":
					bad(pp, "empty value not allowed, found in Principals")
				case strings.HasPrefix(p, "spiffe://"):
					// Stricter than Istio, which accepts it and then matches
					// spiffe://spiffe://... (authz/model/generator.go
					// srcPrincipalGenerator), which no peer ever is.
					bad(pp, "principal %q must not start with spiffe://: Istio puts spiffe:// in front of it, so it would match no peer; write %q", p, strings.TrimPrefix(p, "spiffe://"))
				}
			}
			for k, ns := range src.GetNamespaces() {
				np := yamlnode.Item(fp+".source.namespaces", k)
				switch {
				case ns == "":
					bad(np, "empty value not allowed, found in Namespaces")
				case !strings.Contains(ns, "*") && ns != v.s.Topology.Namespace && ns != meshconfig.RootNamespace:
					// istioctl analyze: ReferencedResourceNotFound.
					bad(np, "namespace %q has no workloads (the services live in namespace %s, the ingress gateway in %s)", ns, v.s.Topology.Namespace, meshconfig.RootNamespace)
				}
			}
		}
		if len(r.GetTo()) == 0 && o.ix.has(rp+".to") {
			bad(rp+".to", "`to` must not be empty, found at rule %d", i)
		}
		for j, t := range r.GetTo() {
			tp := yamlnode.Item(rp+".to", j)
			op := t.GetOperation()
			if op == nil {
				bad(tp, "`to.operation` must not be nil, found at rule %d", i)
				continue
			}
			if !hasSetField(op) {
				bad(tp+".operation", "`to.operation` must not be empty, found at rule %d", i)
			}
			unsupported(bad, tp+".operation", op, authzOperationFields)
			for k, m := range op.GetMethods() {
				if m == "" {
					bad(yamlnode.Item(tp+".operation.methods", k), "empty value not allowed, found in Methods")
				}
			}
			for k, p := range op.GetPaths() {
				pp := yamlnode.Item(tp+".operation.paths", k)
				switch {
				case p == "":
					bad(pp, "empty value not allowed, found in Paths")
				case strings.Contains(p, "{"):
					bad(pp, "path templates like %q are not supported by meshbench", p)
				}
			}
		}
		for j, c := range r.GetWhen() {
			wp := yamlnode.Item(rp+".when", j)
			v.condition(bad, wp, c)
		}
	}
}

// condition checks one `when`: ValidateAttribute's keys, of which meshbench
// translates request.headers[<name>] with values.
func (v *validator) condition(bad fieldErr, p string, c *security.Condition) {
	key := c.GetKey()
	kp := p + ".key"
	switch {
	case key == "":
		bad(kp, "`key` must not be empty")
		return
	case len(c.GetValues()) == 0 && len(c.GetNotValues()) == 0:
		bad(p, "at least one of `values` or `notValues` must be set for key %s", key)
		return
	}
	for k, val := range c.GetValues() {
		if val == "" {
			bad(yamlnode.Item(p+".values", k), "invalid `value` for `key` %s: empty value not allowed, found in %s", key, key)
		}
	}
	switch {
	case strings.HasPrefix(key, "request.headers"):
		open := strings.Index(key, "[")
		if !strings.HasSuffix(key, "]") || open <= 0 || open >= len(key)-2 || key[:open] != "request.headers" {
			bad(kp, "invalid `value` for `key` %s: bad key (%s): should have format a[b]", key, key)
			return
		}
		if len(c.GetNotValues()) > 0 {
			bad(p+".notValues", "notValues is not supported by meshbench (values is)")
		}
	case contains(istioConditionKeys, key) || hasAnyPrefix(key, istioConditionKeyPrefixes):
		// Stricter than Istio, which knows the key: sim/xdsgen does not
		// translate it, and dropping a condition widens an ALLOW rule.
		bad(kp, "when key %q is not supported by meshbench (request.headers[<name>] is)", key)
	default:
		bad(kp, "invalid `value` for `key` %s: unknown attribute: %s%s", key, key, suggest.Hint(key, append(append([]string{"request.headers[<name>]"}, istioConditionKeys...), istioConditionKeyPrefixes...)))
	}
}

// The condition keys Istio knows besides request.headers
// (pkg/config/security/security.go ValidateAttribute).
var (
	istioConditionKeys = []string{
		"source.ip", "remote.ip", "source.namespace", "source.serviceAccount", "source.principal", "source.trustDomain",
		"request.auth.principal", "request.auth.audiences", "request.auth.presenter",
		"destination.ip", "destination.port", "connection.sni",
	}
	istioConditionKeyPrefixes = []string{"request.auth.claims[", "experimental.envoy.filters."}
)

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// hasSetField reports whether a message has any field set.
func hasSetField(m proto.Message) bool {
	set := false
	m.ProtoReflect().Range(func(protoreflect.FieldDescriptor, protoreflect.Value) bool {
		set = true
		return false
	})
	return set
}

// unsupported reports each set field of m that meshbench does not translate.
func unsupported(bad fieldErr, p string, m proto.Message, ok []string) {
	var names []string
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if !contains(ok, fd.JSONName()) {
			names = append(names, fd.JSONName())
		}
		return true
	})
	sort.Strings(names)
	for _, n := range names {
		bad(yamlnode.Join(p, n), "%s is not supported by meshbench (it would be dropped; supported: %s)", n, strings.Join(ok, ", "))
	}
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}
