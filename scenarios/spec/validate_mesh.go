package spec

import (
	"fmt"
	"sort"
	"strings"

	networking "istio.io/api/networking/v1alpha3"

	"github.com/meshbench/meshbench/scenarios/spec/yamlnode"
	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/registry"
)

// Istio resources against the topology: hosts, subsets, ports, weights.

func (v *validator) fqdn(svc *registry.Service) string {
	return istionames.ServiceHost(svc.Name, v.s.Topology.Namespace)
}

// resolveHost finds the service a host names, the way istiod does
// (istionames.ResolveHost): a name without a dot is completed with the
// namespace of the resource it is written in, any name with a dot is taken
// as written. So "payment.default" and "payment.default.svc" name no
// service to istiod (a destination host like that becomes a cluster no
// endpoint backs); istioctl analyze agrees
// (pkg/config/analysis/analyzers/util/hosts.go ConvertHostToFQDN). They are
// refused with a hint, rather than accepted and silently black-holed.
// The second result explains a failure.
func (v *validator) resolveHost(host, ns string) (*registry.Service, string) {
	if host == "" {
		return nil, "host is required"
	}
	for _, name := range v.names {
		if svc := v.services[name]; istionames.NamesService(host, ns, svc.Name, v.s.Topology.Namespace) {
			return svc, ""
		}
	}
	for _, name := range v.names {
		svc := v.services[name]
		if istionames.DNSNames(host, v.s.Topology.Namespace, svc.Name, v.s.Topology.Namespace) && strings.Contains(host, ".") {
			return nil, fmt.Sprintf("host %q matches no service: Istio completes only names without a dot (pilot/pkg/model/config.go ResolveShortnameToFQDN) and takes %q as written; write %q or %q",
				host, host, svc.Name, v.fqdn(svc))
		}
	}
	if v.services[host] != nil {
		return nil, fmt.Sprintf("host %q in namespace %s means %s, which matches no service (the services live in namespace %s)",
			host, ns, istionames.ResolveHost(host, ns), v.s.Topology.Namespace)
	}
	return nil, fmt.Sprintf("host %q matches no service in the topology (services: %s)", host, v.serviceList())
}

// matchWildcard returns the services a wildcard host ("*.default.svc.cluster.local") covers.
func (v *validator) matchWildcard(host, ns string) []*registry.Service {
	var out []*registry.Service
	for _, name := range v.names {
		if svc := v.services[name]; istionames.CoversService(host, ns, svc.Name, v.s.Topology.Namespace) {
			out = append(out, svc)
		}
	}
	return out
}

// mesh checks the Istio resources against each other and the topology.
func (v *validator) mesh(objs []*meshObject) {
	// Duplicate names: the API server keeps one object per kind/namespace/name.
	first := map[string]*meshObject{}
	gateways := map[string]bool{}
	for _, o := range objs {
		key := o.kind + "/" + o.namespace + "/" + o.name
		if f := first[key]; f != nil {
			v.objErr(o, "metadata.name", "%s %s/%s is defined twice (first at %s:%d)", o.kind, o.namespace, o.name, f.file, f.node.Line)
			continue
		}
		first[key] = o
		if o.gw != nil {
			gateways[o.namespace+"/"+o.name] = true
		}
	}
	for _, o := range objs {
		if o.dr != nil {
			v.destinationRule(o)
		}
	}
	for _, o := range objs {
		switch {
		case o.vs != nil:
			v.virtualService(o, gateways)
		case o.gw != nil:
			v.gateway(o)
		}
	}
	v.gamma(objs)      // Gateway API routes (validate_gamma.go)
	v.resilience(objs) // Istio's checks of timeouts, retries, faults, mirrors and traffic policies (validate_resilience.go)
	v.security(objs)   // Istio's checks of PeerAuthentications and AuthorizationPolicies (validate_security.go)
}

func (v *validator) objErr(o *meshObject, p, format string, args ...any) {
	v.l.add(o.file, o.ix.line(p), o.field(p), format, args...)
}

// objWarn records a warning about the object o at its field p: accepted, but
// said in the run's output.
func (v *validator) objWarn(o *meshObject, p, format string, args ...any) {
	v.l.warn(o.file, o.ix.line(p), o.field(p), format, args...)
}

// destinationRule checks a DestinationRule and records its subsets.
func (v *validator) destinationRule(o *meshObject) {
	spec := &o.dr.Spec
	// PASSTHROUGH makes Istio send to the original destination address
	// (ORIGINAL_DST); local services have no VIP to pass through to.
	if spec.GetTrafficPolicy().GetLoadBalancer().GetSimple() == networking.LoadBalancerSettings_PASSTHROUGH {
		v.objErr(o, "spec.trafficPolicy.loadBalancer.simple", "PASSTHROUGH is not supported: local services have no address to pass through to")
	}
	for i, sub := range spec.GetSubsets() {
		if sub.GetTrafficPolicy().GetLoadBalancer().GetSimple() == networking.LoadBalancerSettings_PASSTHROUGH {
			v.objErr(o, yamlnode.Item("spec.subsets", i)+".trafficPolicy.loadBalancer.simple", "PASSTHROUGH is not supported: local services have no address to pass through to")
		}
	}
	var svcs []*registry.Service
	switch {
	case spec.Host == "":
		v.objErr(o, "spec", "spec.host is required")
		return
	case strings.HasPrefix(spec.Host, "*"):
		if svcs = v.matchWildcard(spec.Host, o.namespace); len(svcs) == 0 {
			v.objErr(o, "spec.host", "host %q matches no service in the topology (services: %s)", spec.Host, v.serviceList())
			return
		}
	default:
		svc, why := v.resolveHost(spec.Host, o.namespace)
		if svc == nil {
			v.objErr(o, "spec.host", "%s", why)
			return
		}
		svcs = []*registry.Service{svc}
	}
	seen := map[string]bool{}
	for i, sub := range spec.Subsets {
		p := yamlnode.Item("spec.subsets", i)
		// Istio requires a DNS-1123 label as subset name (validateSubsetName
		// in pkg/config/validation/validation.go).
		switch {
		case sub.Name == "":
			v.objErr(o, p, "subset name is required")
			continue
		case len(sub.Name) > 63 || !labelRE.MatchString(sub.Name):
			v.objErr(o, p+".name", "invalid subset name %q: want lower-case letters, digits and '-'", sub.Name)
			continue
		case seen[sub.Name]:
			v.objErr(o, p+".name", "subset %s is defined twice", sub.Name)
			continue
		}
		seen[sub.Name] = true
		// Stricter than Istio, which accepts a subset without labels: it
		// selects every pod of the service, which is never what a subset is
		// written for.
		if len(sub.Labels) == 0 {
			v.objErr(o, p, "subset %s has no labels; give it the labels of the pods it selects, like {version: %s}", sub.Name, sub.Name)
			continue
		}
		for _, svc := range svcs {
			// Istio accepts a subset that selects no pod: the webhook has no
			// such check, istiod serves the subset's cluster with no
			// endpoints, and only istioctl analyze reports it, as IST0173
			// DestinationRuleSubsetNotSelectPods (pkg/config/analysis/msg/messages.yaml;
			// analyzers/destinationrule/subset.go). Istio's own samples
			// define subsets for versions not yet deployed
			// (samples/bookinfo/networking/destination-rule-all.yaml), so it
			// is a warning here; a route that sends such a subset traffic is
			// refused (routeDestinations).
			empty := !selectsPod(svc, sub.Labels)
			if empty {
				v.objWarn(o, p+".labels", "IST0173: The Subset %s defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream). (no version of %s has labels %s; versions: %s)",
					sub.Name, svc.Name, formatLabels(sub.Labels), strings.Join(versionNames(svc), ", "))
			}
			if v.subsets[svc.Name] == nil {
				v.subsets[svc.Name] = map[string]subsetDef{}
			}
			origin := fmt.Sprintf("%s:%d", o.file, o.ix.line(p))
			if prev, dup := v.subsets[svc.Name][sub.Name]; dup {
				// istiod merges DestinationRules for one host and keeps the
				// first definition of a subset (pilot/pkg/model/destination_rule.go).
				v.objErr(o, p+".name", "subset %s of %s is already defined at %s", sub.Name, svc.Name, prev.origin)
				continue
			}
			v.subsets[svc.Name][sub.Name] = subsetDef{labels: sub.Labels, origin: origin, empty: empty}
		}
	}
}

func selectsPod(svc *registry.Service, sel map[string]string) bool {
	for _, ver := range svc.Versions {
		pl := podLabels(svc, ver)
		ok := true
		for k, val := range sel {
			if pl[k] != val {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func formatLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

// virtualService checks a VirtualService's hosts, gateways and routes.
func (v *validator) virtualService(o *meshObject, gateways map[string]bool) {
	spec := &o.vs.Spec
	// A VirtualService with no gateways applies to the sidecars ("mesh");
	// one bound only to Gateways may name any host, since it is matched
	// against the Host header at the gateway (ValidateVirtualService in
	// pkg/config/validation/validation.go: appliesToMesh / isGateway).
	appliesToMesh := len(spec.Gateways) == 0
	for i, g := range spec.Gateways {
		if g == "mesh" {
			appliesToMesh = true
			continue
		}
		// "name" is a Gateway in the VirtualService's namespace; "ns/name" anywhere.
		key := o.namespace + "/" + g
		if strings.Contains(g, "/") {
			key = g
		}
		if !gateways[key] {
			v.objErr(o, yamlnode.Item("spec.gateways", i), "gateway %q is defined by no Gateway in this scenario", g)
		}
	}
	if len(spec.Hosts) == 0 {
		v.objErr(o, "spec", "spec.hosts is required (delegate VirtualServices are not supported)")
	}
	if appliesToMesh {
		for i, h := range spec.Hosts {
			p := yamlnode.Item("spec.hosts", i)
			switch {
			case h == "*":
				v.objErr(o, p, "wildcard host * is not allowed for virtual services bound to the mesh gateway")
			case strings.HasPrefix(h, "*"):
				if len(v.matchWildcard(h, o.namespace)) == 0 {
					v.objErr(o, p, "host %q matches no service in the topology (services: %s)", h, v.serviceList())
				}
			default:
				if svc, why := v.resolveHost(h, o.namespace); svc == nil {
					v.objErr(o, p, "%s", why)
				}
			}
		}
	}
	if len(spec.Http) == 0 && len(spec.Tcp) == 0 && len(spec.Tls) == 0 {
		v.objErr(o, "spec", "http, tcp or tls must be provided in virtual service")
	}
	v.tcpRoutes(o)
	for i, r := range spec.Http {
		p := yamlnode.Item("spec.http", i)
		if len(r.Route) == 0 && r.Redirect == nil && r.DirectResponse == nil && r.Delegate == nil {
			v.objErr(o, p, "an http route needs route, redirect or directResponse")
		}
		if r.Delegate != nil {
			v.objErr(o, p+".delegate", "delegate is not supported")
		}
		// The builtin sidecar only forwards: redirect and directResponse would
		// be answered by Envoy itself, which meshbench does not model yet.
		if r.Redirect != nil {
			v.objErr(o, p+".redirect", "redirect is not supported by the builtin sidecar yet")
		}
		if r.DirectResponse != nil {
			v.objErr(o, p+".directResponse", "directResponse is not supported by the builtin sidecar yet")
		}
		dests := make([]routeDest, len(r.Route))
		for j, d := range r.Route {
			dests[j] = routeDest{d.Destination, d.Weight}
		}
		v.routeDestinations(o, p+".route", dests)
		if r.Mirror != nil {
			v.destination(o, p+".mirror", r.Mirror)
		}
		for j, m := range r.Mirrors {
			v.destination(o, yamlnode.Item(p+".mirrors", j)+".destination", m.Destination)
		}
	}
	for i, r := range spec.Tcp {
		dests := make([]routeDest, len(r.Route))
		for j, d := range r.Route {
			dests[j] = routeDest{d.Destination, d.Weight}
		}
		v.routeDestinations(o, yamlnode.Item("spec.tcp", i)+".route", dests)
	}
	for i, r := range spec.Tls {
		dests := make([]routeDest, len(r.Route))
		for j, d := range r.Route {
			dests[j] = routeDest{d.Destination, d.Weight}
		}
		v.routeDestinations(o, yamlnode.Item("spec.tls", i)+".route", dests)
	}
}

type routeDest struct {
	dest   *networking.Destination
	weight int32
}

// routeDestinations checks the destinations of one route and their weights.
//
// Weights: meshbench requires, when a route has more than one destination,
// a weight on every destination and a total of exactly 100. This is
// stricter than Istio today, on purpose:
//   - Istio's webhook (validateHTTPRouteDestinations and
//     validateRouteDestinations in pkg/config/validation/validation.go)
//     required "total destination weight %v != 100" until Istio 1.15
//     (istio/istio#39544, commit ac641d0); it now only refuses negative
//     weights and a total of 0 ("total destination weight = 0"), and the
//     weights are relative.
//   - A destination without a weight is not an error to Istio but is
//     dropped: pilot/pkg/networking/core/route/route.go skips 0-weight
//     destinations of a multi-destination route ("Ignore 0 weighted
//     clusters if there are other clusters in the route"), since Envoy's
//     weighted_clusters need a weight on each cluster and a positive sum
//     (envoy.config.route.v3.WeightedCluster.ClusterWeight.weight).
//
// So a forgotten weight silently sends that destination nothing, and
// 80+10 silently means 89%/11%: both are almost always typos in a scenario
// meant to prove a split, so they are errors here. An explicit `weight: 0`
// (a drained destination) is accepted.
func (v *validator) routeDestinations(o *meshObject, p string, dests []routeDest) {
	for j, d := range dests {
		dp := yamlnode.Item(p, j)
		if d.dest == nil {
			v.objErr(o, dp, "destination is required")
		} else {
			v.destination(o, dp+".destination", d.dest)
		}
		if d.weight < 0 {
			v.objErr(o, dp+".weight", "weight %d < 0", d.weight)
		}
		// One destination takes every request whatever its weight
		// (pilot/pkg/networking/core/route/route.go builds a single
		// cluster, not weighted_clusters); of several, those with weight > 0
		// take a share.
		if d.dest != nil && (len(dests) == 1 || d.weight > 0) {
			if sub, ok := v.emptySubset(o, d.dest); ok {
				share := "every request"
				if len(dests) > 1 {
					share = fmt.Sprintf("weight %d", d.weight)
				}
				v.objErr(o, dp+".destination.subset", "the route sends %s to subset %s of %s, which selects no pod (defined at %s): Envoy would answer those requests 503 UH; deploy the version, or give the destination weight 0",
					share, d.dest.Subset, d.dest.Host, sub.origin)
			}
		}
	}
	if len(dests) < 2 {
		return
	}
	var missing []int
	var sum int64
	var parts []string
	for j, d := range dests {
		if !o.ix.has(yamlnode.Item(p, j) + ".weight") {
			missing = append(missing, j)
		}
		sum += int64(d.weight)
		parts = append(parts, fmt.Sprintf("%s %d", destName(d.dest), d.weight))
	}
	if len(missing) > 0 {
		for _, j := range missing {
			v.objErr(o, yamlnode.Item(p, j), "destination %s has no weight: a route with %d destinations needs a weight on each, summing to 100 (Istio would send it no traffic)",
				destName(dests[j].dest), len(dests))
		}
		return
	}
	if sum != 100 {
		v.objErr(o, p, "the destination weights sum to %d, want 100 (%s)", sum, strings.Join(parts, ", "))
	}
}

// emptySubset is the subset d names when it selects no pod.
func (v *validator) emptySubset(o *meshObject, d *networking.Destination) (subsetDef, bool) {
	if d.Subset == "" {
		return subsetDef{}, false
	}
	svc, _ := v.resolveHost(d.Host, o.namespace)
	if svc == nil {
		return subsetDef{}, false
	}
	sub, ok := v.subsets[svc.Name][d.Subset]
	return sub, ok && sub.empty
}

func destName(d *networking.Destination) string {
	if d == nil {
		return "(none)"
	}
	if d.Subset != "" {
		return d.Host + "/" + d.Subset
	}
	return d.Host
}

// destination checks that a destination names a service, a subset a
// DestinationRule defines for it, and a port of it.
func (v *validator) destination(o *meshObject, p string, d *networking.Destination) {
	if d == nil {
		v.objErr(o, p, "destination is required")
		return
	}
	svc, why := v.resolveHost(d.Host, o.namespace)
	if svc == nil {
		v.objErr(o, p+".host", "%s", why)
		return
	}
	if d.Subset != "" {
		if _, ok := v.subsets[svc.Name][d.Subset]; !ok {
			var defined []string
			for name := range v.subsets[svc.Name] {
				defined = append(defined, name)
			}
			sort.Strings(defined)
			msg := fmt.Sprintf("subset %s of %s is defined by no DestinationRule", d.Subset, svc.Name)
			if len(defined) > 0 {
				msg += fmt.Sprintf(" (defined subsets: %s)", strings.Join(defined, ", "))
			}
			v.objErr(o, p+".subset", "%s", msg)
		}
	}
	if port := d.GetPort().GetNumber(); port != 0 && int(port) != svc.Port {
		hint := ""
		if int(port) == svc.TargetPort {
			hint = fmt.Sprintf("; %d is its targetPort, destinations use the service port", port)
		}
		v.objErr(o, p+".port.number", "port %d is not a port of %s (ports: %d)%s", port, svc.Name, svc.Port, hint)
	}
}

// gateway checks a Gateway: Istio's webhook requires at least one server,
// each with a port and hosts (validateServer in pkg/config/validation/validation.go).
func (v *validator) gateway(o *meshObject) {
	spec := &o.gw.Spec
	if len(spec.Servers) == 0 {
		v.objErr(o, "spec", "gateway must have at least one server")
	}
	for i, srv := range spec.Servers {
		p := yamlnode.Item("spec.servers", i)
		if srv.Port == nil {
			v.objErr(o, p, "server port is required")
		}
		if len(srv.Hosts) == 0 {
			v.objErr(o, p, "server config must contain at least one host")
		}
	}
}
