package spec

import "github.com/meshbench/meshbench/sim/registry"

// MeshTopology is the topology the scenario's mesh runs: its own or the
// default sample, with defaults filled in.
func (s *Scenario) MeshTopology() registry.Topology {
	topo := registry.DefaultTopology()
	if s.Topology != nil {
		topo = *s.Topology
	}
	return registry.WithDefaults(topo)
}

// LoadTarget is where the scenario's load goes through the gateway: the
// Host it names (the target service's FQDN) and the path (the load's own,
// else the service's).
func (s *Scenario) LoadTarget() (host, path string) {
	topo := s.MeshTopology()
	svc := registry.ServiceInfo{Service: registry.Service{Name: s.Load.Target}, Namespace: topo.Namespace}
	path = s.Load.Path
	if path == "" {
		if info, ok := (&registry.Registry{Services: servicesOf(topo)}).Service(s.Load.Target); ok {
			path = info.Path
		}
	}
	return svc.FQDN(), path
}

// RunSeed is the scenario's seed; 1 when it gives none.
func (s *Scenario) RunSeed() int64 {
	if s.Seed == 0 {
		return 1
	}
	return s.Seed
}

func servicesOf(t registry.Topology) []registry.ServiceInfo {
	var out []registry.ServiceInfo
	for _, s := range t.Services {
		out = append(out, registry.ServiceInfo{Service: s, Namespace: t.Namespace})
	}
	return out
}
