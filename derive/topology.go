package derive

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/registry"
)

// Topology is the mesh the resources speak of.
type Topology struct {
	Namespace string
	Services  []*Service
	// Client is the service in the mesh that sends the load, and calls the
	// service a check is about.
	Client string
	// paths are the services' paths where AuthorizationPolicies let
	// callers in on one path only.
	paths map[string]string
}

// Service is one inferred service.
type Service struct {
	Name     string
	Port     int    // 0: the registry's default, 80
	Protocol string // "": http
	Versions []*Version
	Source   Source
	// Caller is true for a service inferred from an AuthorizationPolicy's
	// principals alone: it calls the services the policy guards, and
	// serves nothing (no versions, no routes).
	Caller bool
	// Principal is true for a service an AuthorizationPolicy's principals
	// name, a Caller or a server that also calls: the load may enter
	// there to call as it (access), so an allow-nothing policy must let
	// the load in (entryPolicies).
	Principal bool
	// Selects is set for a Service a Gateway API route names as a backend
	// for one version of its parent: it has no pods of its own.
	Selects *registry.Selector
}

// Version is one inferred version: a DestinationRule subset, or v1 for a
// service that has none.
type Version struct {
	Name string
	// Subsets are the DestinationRule subsets that select this version's pods.
	Subsets  []string
	Labels   map[string]string
	Replicas int
	Source   Source
}

// Service returns the service of that name, or nil.
func (t *Topology) Service(name string) *Service {
	for _, s := range t.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// versionOfSubset is the version a subset of the service selects, or "".
func (s *Service) versionOfSubset(subset string) string {
	for _, v := range s.Versions {
		if slices.Contains(v.Subsets, subset) {
			return v.Name
		}
	}
	return ""
}

// infer builds the topology: a service per host the routes and rules name,
// a version per DestinationRule subset, callers per principal.
func (d *deriver) infer(objs []*spec.IstioObject) {
	t := &d.plan.Topology
	t.Namespace = commonNamespace(objs)
	service := func(host string, src Source) *Service {
		name, ok := d.serviceName(host)
		if !ok {
			return nil
		}
		if s := t.Service(name); s != nil {
			return s
		}
		s := &Service{Name: name, Source: src}
		t.Services = append(t.Services, s)
		return s
	}
	// served are the services a route, a DestinationRule or a Gateway API
	// route names: servers, whatever a principal says.
	served := map[string]bool{}
	serve := func(host string, src Source) *Service {
		s := service(host, src)
		if s != nil {
			served[s.Name] = true
		}
		return s
	}
	// principals are the services AuthorizationPolicies' principals name,
	// with their lines: callers, decided once every resource is read.
	type principal struct {
		name string
		src  Source
	}
	var principals []principal
	at := func(o *spec.IstioObject, field string) Source { return Source{o.File, o.LineOf(field)} }
	setPort := func(s *Service, port uint32, proto string) {
		if s == nil {
			return
		}
		if s.Port == 0 && port > 0 {
			s.Port = int(port)
		}
		if s.Protocol == "" {
			s.Protocol = proto
		}
	}
	for _, o := range objs {
		switch {
		case o.VirtualService != nil:
			spec := &o.VirtualService.Spec
			for i, h := range spec.Hosts {
				serve(h, at(o, fmt.Sprintf("spec.hosts[%d]", i)))
			}
			for i, r := range spec.Http {
				for j, dst := range r.Route {
					f := fmt.Sprintf("spec.http[%d].route[%d].destination.host", i, j)
					setPort(serve(dst.GetDestination().GetHost(), at(o, f)), dst.GetDestination().GetPort().GetNumber(), "")
				}
				if m := r.GetMirror(); m != nil {
					serve(m.GetHost(), at(o, fmt.Sprintf("spec.http[%d].mirror.host", i)))
				}
				// mirrors (Istio 1.19+) names a destination per mirror, as
				// mirror does (virtual_service.proto HTTPMirrorPolicy).
				for j, m := range r.GetMirrors() {
					if h := m.GetDestination().GetHost(); h != "" {
						serve(h, at(o, fmt.Sprintf("spec.http[%d].mirrors[%d].destination.host", i, j)))
					}
				}
			}
			for i, r := range spec.Tcp {
				for j, dst := range r.Route {
					f := fmt.Sprintf("spec.tcp[%d].route[%d].destination.host", i, j)
					setPort(serve(dst.GetDestination().GetHost(), at(o, f)), dst.GetDestination().GetPort().GetNumber(), "tcp")
				}
			}
		case o.DestinationRule != nil:
			spec := &o.DestinationRule.Spec
			s := serve(spec.Host, at(o, "spec.host"))
			if s == nil {
				continue
			}
			for i, sub := range spec.Subsets {
				d.addVersion(s, sub.Name, sub.Labels, at(o, fmt.Sprintf("spec.subsets[%d]", i)))
			}
		case o.HTTPRoute != nil || o.GRPCRoute != nil:
			proto := ""
			parents, rules := gatewayRoute(o)
			if o.GRPCRoute != nil {
				proto = "grpc"
			}
			for i, name := range parents {
				setPort(serve(name, at(o, fmt.Sprintf("spec.parentRefs[%d].name", i))), 0, proto)
			}
			for i, backends := range rules {
				for j, b := range backends {
					src := at(o, fmt.Sprintf("spec.rules[%d].backendRefs[%d].name", i, j))
					if parent, version, ok := d.versionBackend(b.name, parents); ok {
						p := serve(parent, src)
						setPort(p, b.port, proto) // the backend serves the parent's pods' port
						d.addSelecting(p, b.name, version, src)
						continue
					}
					setPort(serve(b.name, src), b.port, proto)
				}
			}
			if o.HTTPRoute != nil {
				// A RequestMirror filter's backend receives the copies.
				for i, rule := range o.HTTPRoute.Spec.Rules {
					for k, f := range rule.Filters {
						if f.Type == gatewayv1.HTTPRouteFilterRequestMirror && f.RequestMirror != nil {
							src := at(o, fmt.Sprintf("spec.rules[%d].filters[%d].requestMirror.backendRef.name", i, k))
							b := f.RequestMirror.BackendRef
							if parent, version, ok := d.versionBackend(string(b.Name), parents); ok {
								d.addSelecting(serve(parent, src), string(b.Name), version, src)
								continue
							}
							setPort(serve(string(b.Name), src), uint32(ptrOr(b.Port, 0)), proto)
						}
					}
				}
			}
		case o.AuthorizationPolicy != nil:
			spec := &o.AuthorizationPolicy.Spec
			if app := spec.GetSelector().GetMatchLabels()["app"]; app != "" {
				service(app, at(o, "spec.selector.matchLabels.app"))
			}
			for i, r := range spec.Rules {
				for j, f := range r.From {
					for k, pr := range f.GetSource().GetPrincipals() {
						name, ok := principalService(pr, t.Namespace)
						if !ok {
							continue
						}
						principals = append(principals, principal{name, at(o, fmt.Sprintf("spec.rules[%d].from[%d].source.principals[%d]", i, j, k))})
					}
				}
			}
		case o.PeerAuthentication != nil:
			if app := o.PeerAuthentication.Spec.GetSelector().GetMatchLabels()["app"]; app != "" {
				service(app, at(o, "spec.selector.matchLabels.app"))
			}
		}
	}
	// A principal's service is a pure caller unless something else makes
	// it a server (versions, routes, a DestinationRule), in whatever order
	// the files came.
	for _, p := range principals {
		s := service(p.name, p.src)
		if s == nil {
			continue
		}
		s.Principal = true
		if !served[s.Name] && len(s.Versions) == 0 && s.Selects == nil {
			s.Caller = true
		}
	}
	for _, s := range t.Services {
		if len(s.Versions) == 0 && s.Selects == nil {
			s.Versions = []*Version{{Name: "v1", Replicas: d.opt.Replicas, Source: s.Source}}
		}
		if s.Caller {
			// A caller only calls: one pod is enough.
			s.Versions[0].Replicas = 1
		}
	}
	t.Client = "client"
	for i := 2; t.Service(t.Client) != nil; i++ {
		t.Client = fmt.Sprintf("client%d", i)
	}
}

// addVersion adds the version a subset selects: named by its version label,
// else by the subset. Subsets that select the same labels share a version.
func (d *deriver) addVersion(s *Service, subset string, labels map[string]string, src Source) {
	name := labels["version"]
	if name == "" {
		name = subset
	}
	extra := map[string]string{}
	for k, v := range labels {
		if k != "version" && k != "app" {
			extra[k] = v
		}
	}
	for _, v := range s.Versions {
		if v.Name == name {
			if subset != "" {
				v.Subsets = append(v.Subsets, subset)
			}
			maps.Copy(v.Labels, extra)
			return
		}
	}
	v := &Version{Name: sanitize(name), Labels: extra, Replicas: d.opt.Replicas, Source: src}
	if subset != "" {
		v.Subsets = []string{subset}
	}
	s.Versions = append(s.Versions, v)
}

// versionBackend reads a Gateway API backend named <parent>-<version> as
// the Service over one version of a parent's pods, as Istio's samples name
// them (samples/bookinfo/platform/kube/bookinfo-versions.yaml: reviews-v1
// selects app=reviews,version=v1). The backend's own Service manifest is
// not read: its selector is inferred from the name.
func (d *deriver) versionBackend(backend string, parents []string) (parent, version string, ok bool) {
	for _, p := range parents {
		if v, found := strings.CutPrefix(backend, p+"-"); found && v != "" && sanitize(v) == v {
			return p, v, true
		}
	}
	return "", "", false
}

// addSelecting adds the Service name over the given version of parent's
// pods, and the version to parent.
func (d *deriver) addSelecting(parent *Service, name, version string, src Source) {
	if parent == nil {
		return
	}
	d.addVersion(parent, "", map[string]string{"version": version}, src)
	t := &d.plan.Topology
	if s := t.Service(name); s != nil {
		if s.Selects == nil && len(s.Versions) == 0 {
			s.Selects = &registry.Selector{Service: parent.Name, Version: version}
		}
		return
	}
	t.Services = append(t.Services, &Service{Name: name, Source: src, Selects: &registry.Selector{Service: parent.Name, Version: version}})
}

// serviceName is the service a host in the topology's namespace names, as
// istiod resolves it (istionames.ResolveHost): "payment" or
// "payment.<ns>.svc.cluster.local". Wildcards, hosts of other namespaces
// and "payment.<ns>" (which istiod takes as written) name none.
func (d *deriver) serviceName(host string) (string, bool) {
	ns := d.plan.Topology.Namespace
	name, svcNs, ok := istionames.ParseServiceHost(istionames.ResolveHost(host, ns))
	if !ok || svcNs != ns {
		return "", false
	}
	return name, true
}

// principalService is the service account a principal names in namespace
// ns ("cluster.local/ns/default/sa/order" → order), as the registry names a
// service's account after the service.
func principalService(principal, ns string) (string, bool) {
	parts := strings.Split(strings.TrimPrefix(principal, "spiffe://"), "/")
	if len(parts) != 5 || parts[1] != "ns" || parts[2] != ns || parts[3] != "sa" || parts[4] == "" || strings.Contains(parts[4], "*") {
		return "", false
	}
	return parts[4], true
}

// backend is one backendRef of a Gateway API rule.
type backend struct {
	name   string
	port   uint32
	weight int32
}

// gatewayRoute is the parent Services and each rule's backends of an
// HTTPRoute or GRPCRoute.
func gatewayRoute(o *spec.IstioObject) (parents []string, rules [][]backend) {
	var refs []gatewayv1.ParentReference
	if o.HTTPRoute != nil {
		refs = o.HTTPRoute.Spec.ParentRefs
		for _, r := range o.HTTPRoute.Spec.Rules {
			rules = append(rules, backends(r.BackendRefs, func(b gatewayv1.HTTPBackendRef) gatewayv1.BackendRef { return b.BackendRef }))
		}
	} else {
		refs = o.GRPCRoute.Spec.ParentRefs
		for _, r := range o.GRPCRoute.Spec.Rules {
			rules = append(rules, backends(r.BackendRefs, func(b gatewayv1.GRPCBackendRef) gatewayv1.BackendRef { return b.BackendRef }))
		}
	}
	for _, p := range refs {
		parents = append(parents, string(p.Name))
	}
	return parents, rules
}

// backends reads a rule's backendRefs.
func backends[R any](refs []R, ref func(R) gatewayv1.BackendRef) []backend {
	var out []backend
	for _, r := range refs {
		b := ref(r)
		out = append(out, newBackend(string(b.Name), b.Port, b.Weight))
	}
	return out
}

func newBackend[P ~int32](name string, port *P, weight *int32) backend {
	b := backend{name: name, weight: 1}
	if port != nil {
		b.port = uint32(*port)
	}
	if weight != nil {
		b.weight = *weight
	}
	return b
}

// registryTopology is the topology of one scenario: every inferred
// service and the client, each calling what calls gives it, with what
// mutate changes.
func (t *Topology) registryTopology(calls map[string][]string, mutate func(s *registry.Service)) *registry.Topology {
	out := &registry.Topology{Namespace: t.Namespace}
	add := func(rs registry.Service) {
		rs.Calls = calls[rs.Name]
		if mutate != nil {
			mutate(&rs)
		}
		out.Services = append(out.Services, rs)
	}
	for _, s := range t.Services {
		if s.Selects != nil {
			// Its ports and path are the selected service's.
			add(registry.Service{Name: s.Name, Selects: &registry.Selector{Service: s.Selects.Service, Version: s.Selects.Version}})
			continue
		}
		rs := registry.Service{Name: s.Name, Port: s.Port, Protocol: s.Protocol, Path: t.paths[s.Name]}
		for _, v := range s.Versions {
			rs.Versions = append(rs.Versions, registry.Version{Name: v.Name, Replicas: v.Replicas, Labels: maps.Clone(v.Labels)})
		}
		add(rs)
	}
	add(registry.Service{Name: t.Client, Versions: []registry.Version{{Name: "v1"}}})
	return out
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
