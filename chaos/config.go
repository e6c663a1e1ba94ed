package chaos

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/meshconfig"
)

// configLayer is the mesh's Istio config as faults change it: the config
// the mesh started with and the changes in force, applied in order. It is
// the same for every runtime.
type configLayer struct {
	mu      sync.Mutex
	base    meshconfig.Config
	changes []layeredChange
	next    int
}

type layeredChange struct {
	id     int
	name   string
	change ConfigChange
}

// add puts a change on top and returns its id and the config with it.
func (c *configLayer) add(name string, ch ConfigChange) (int, meshconfig.Config, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	changes := append(append([]layeredChange(nil), c.changes...), layeredChange{id: c.next, name: name, change: ch})
	cfg, err := render(c.base, changes)
	if err != nil {
		return 0, cfg, err
	}
	c.changes = changes
	return c.next, cfg, nil
}

// remove takes a change off and returns the config without it.
func (c *configLayer) remove(id int) (meshconfig.Config, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, ch := range c.changes {
		if ch.id == id {
			c.changes = append(c.changes[:i:i], c.changes[i+1:]...)
			break
		}
	}
	return render(c.base, c.changes)
}

// current is the config in force.
func (c *configLayer) current() (meshconfig.Config, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return render(c.base, c.changes)
}

func render(base meshconfig.Config, changes []layeredChange) (meshconfig.Config, error) {
	cfg := CopyConfig(base)
	for _, ch := range changes {
		if err := ch.change(&cfg); err != nil {
			return cfg, fmt.Errorf("%s: %w", ch.name, err)
		}
	}
	return cfg, nil
}

// CopyConfig deep-copies the resources of a config, so that a change to the
// copy never reaches the original.
func CopyConfig(c meshconfig.Config) meshconfig.Config { return c.DeepCopy() }

// ChaosVirtualService names the VirtualService a mesh fault adds for a
// service that has none.
func ChaosVirtualService(service string) string { return "meshbench-chaos-" + service }

// RouteFault returns the change that puts an HTTP fault on the routes to a
// service in namespace ns, as Istio's fault injection does
// (VirtualService http[].fault): on every route of the VirtualServices bound
// to the mesh that route to it; with version, only on the routes whose every
// destination is a subset of that version; with route, only on the route of
// that name. A service with no VirtualService gets one with Istio's default
// route and the fault. A route that already has a fault keeps the part the
// new one does not set.
func RouteFault(ns string, t Target, f *networking.HTTPFaultInjection) ConfigChange {
	return func(cfg *meshconfig.Config) error {
		if r := gatewayRouteOf(cfg, ns, t.Service); r != "" {
			// istiod puts Gateway API routes before VirtualServices
			// (model/virtualservice.go SelectVirtualServices): a fault put
			// in a VirtualService would never apply.
			return fmt.Errorf("%s is routed by %s, and a mesh fault is a VirtualService fault, which sidecars would ignore beside it; mesh faults on Gateway API routes are not supported", t.Service, r)
		}
		var vss []*networkingv1.VirtualService
		for _, vs := range cfg.VirtualServices {
			if !boundToMesh(vs) {
				continue
			}
			for _, h := range vs.Spec.GetHosts() {
				if istionames.NamesService(h, vs.Namespace, t.Service, ns) {
					vss = append(vss, vs)
					break
				}
			}
		}
		if len(vss) == 0 {
			switch {
			case t.Route != "":
				return fmt.Errorf("%s has no VirtualService, so no route named %q", t.Service, t.Route)
			case t.Version != "":
				return fmt.Errorf("%s has no VirtualService routing to subsets: a fault on version %s needs a route whose destinations are all subsets of %s (a VirtualService fault applies to whole routes)", t.Service, t.Version, t.Version)
			}
			cfg.VirtualServices = append(cfg.VirtualServices, &networkingv1.VirtualService{
				TypeMeta:   metav1.TypeMeta{APIVersion: "networking.istio.io/v1", Kind: "VirtualService"},
				ObjectMeta: metav1.ObjectMeta{Name: ChaosVirtualService(t.Service), Namespace: ns},
				Spec: networking.VirtualService{
					Hosts: []string{t.Service},
					Http:  []*networking.HTTPRoute{{Fault: f, Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: t.Service}}}}},
				},
			})
			return nil
		}
		subsets := versionSubsets(cfg, ns, t.Service, t.Version)
		n := 0
		var names []string
		for _, vs := range vss {
			for i, hr := range vs.Spec.GetHttp() {
				names = append(names, hr.GetName())
				if t.Route != "" && hr.GetName() != t.Route {
					continue
				}
				if t.Version != "" {
					in := 0
					for _, d := range hr.GetRoute() {
						if subsets[d.GetDestination().GetSubset()] && istionames.NamesService(d.GetDestination().GetHost(), vs.Namespace, t.Service, ns) {
							in++
						}
					}
					if in == 0 {
						continue
					}
					if in < len(hr.GetRoute()) {
						return fmt.Errorf("VirtualService %s http[%d] splits %s's traffic between version %s and others; a VirtualService fault applies to a whole route, so it cannot pick one version there (use a network or app fault on %s/%s)",
							vs.Name, i, t.Service, t.Version, t.Service, t.Version)
					}
				}
				hr.Fault = mergeFault(hr.GetFault(), f)
				n++
			}
		}
		if n == 0 {
			switch {
			case t.Route != "":
				sort.Strings(names)
				return fmt.Errorf("no route of %s is named %q (routes: %s)", t.Service, t.Route, strings.Join(names, ", "))
			case t.Version != "":
				return fmt.Errorf("no route of %s sends its traffic to version %s only", t.Service, t.Version)
			}
			return fmt.Errorf("the VirtualServices of %s have no HTTP route", t.Service)
		}
		return nil
	}
}

// versionSubsets names the subsets of a service's DestinationRules that
// select the pods of version.
func versionSubsets(cfg *meshconfig.Config, ns, service, version string) map[string]bool {
	out := map[string]bool{}
	for _, dr := range cfg.DestinationRules {
		if !istionames.NamesService(dr.Spec.GetHost(), dr.Namespace, service, ns) {
			continue
		}
		for _, s := range dr.Spec.GetSubsets() {
			if v, ok := s.GetLabels()["version"]; ok && v == version {
				out[s.GetName()] = true
			}
		}
	}
	return out
}

// boundToMesh reports whether a VirtualService applies to sidecars: no
// gateways, or "mesh" among them.
func boundToMesh(vs *networkingv1.VirtualService) bool {
	gws := vs.Spec.GetGateways()
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

func mergeFault(old, add *networking.HTTPFaultInjection) *networking.HTTPFaultInjection {
	if old == nil {
		return add
	}
	out := &networking.HTTPFaultInjection{Delay: old.GetDelay(), Abort: old.GetAbort()}
	if add.GetDelay() != nil {
		out.Delay = add.GetDelay()
	}
	if add.GetAbort() != nil {
		out.Abort = add.GetAbort()
	}
	return out
}

// gatewayRouteOf names the first HTTPRoute or GRPCRoute whose parent is the
// Service service of namespace ns, or "".
func gatewayRouteOf(cfg *meshconfig.Config, ns, service string) string {
	for _, r := range cfg.HTTPRoutes {
		for _, p := range r.Spec.ParentRefs {
			if p.Kind != nil && *p.Kind == "Service" && string(p.Name) == service && (p.Namespace == nil || string(*p.Namespace) == ns) {
				return "HTTPRoute " + r.Name
			}
		}
	}
	for _, r := range cfg.GRPCRoutes {
		for _, p := range r.Spec.ParentRefs {
			if p.Kind != nil && *p.Kind == "Service" && string(p.Name) == service && (p.Namespace == nil || string(*p.Namespace) == ns) {
				return "GRPCRoute " + r.Name
			}
		}
	}
	return ""
}
