package registry

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync"

	"github.com/meshbench/meshbench/sim/istionames"
)

// Pod is one workload instance: an app and its sidecar sharing one loopback address.
type Pod struct {
	Name      string // e.g. payment-v1-0
	Namespace string
	Service   string // app label
	Version   string // version label
	Workload  string // the Deployment: <service>-<version>, as Istio's destination_workload
	Labels    map[string]string
	// IP is the pod's own loopback address; the sidecar's listeners bind to it.
	IP netip.Addr
	// Port is the container port (the service's targetPort): EDS endpoints are IP:Port.
	Port int
	// ServiceAccount the pod runs as (the service name, as in the Bookinfo samples).
	ServiceAccount string
	// AppAddr is where the app itself listens, behind the sidecar's inbound listener; set by the runtime.
	AppAddr string
	// Sidecar is false for a pod out of the mesh: its app listens on IP:Port itself.
	Sidecar bool
	// Cert is "", "foreign" or "expired" (see Version.Cert).
	Cert string
}

// SPIFFEID is the identity Istio gives the pod's service account.
func (p *Pod) SPIFFEID(trustDomain string) string {
	return "spiffe://" + trustDomain + "/ns/" + p.Namespace + "/sa/" + p.ServiceAccount
}

// NodeID is the xDS node id Istio gives a sidecar: sidecar~IP~pod.namespace~namespace.svc.cluster.local.
func (p *Pod) NodeID() string {
	return fmt.Sprintf("sidecar~%s~%s.%s~%s.svc.%s", p.IP, p.Name, p.Namespace, p.Namespace, istionames.ClusterDomain)
}

// ServiceInfo is a resolved Service of the registry.
type ServiceInfo struct {
	Service
	Namespace string
	// VIP is the service's ClusterIP: the address cluster DNS answers for
	// its name, and where istiod binds the outbound listener of a TCP port
	// (<VIP>_<port>). Services get 10.96.0.1, 10.96.0.2, ... in order, from
	// ServiceCIDR as a Kubernetes API server's default allocator would.
	VIP netip.Addr
}

// ServiceCIDR is where the services' VIPs come from (kubeadm's and kind's
// default service subnet).
var ServiceCIDR = netip.MustParsePrefix("10.96.0.0/16")

// FQDN is the service's cluster-local hostname, e.g. payment.default.svc.cluster.local.
func (s ServiceInfo) FQDN() string {
	return istionames.ServiceHost(s.Name, s.Namespace)
}

// Registry holds the services and pods of a mesh. Pod readiness may change
// while the mesh runs (a killed pod leaves EDS); everything else is fixed.
type Registry struct {
	Namespace string
	Services  []ServiceInfo
	Pods      []*Pod

	mu       sync.Mutex
	notReady map[string]bool
	// podsOf indexes the pods by service, once in New: xdsgen asks PodsOf
	// for every cluster of every proxy, and a scan of every pod each time
	// made a push of 1,000 services to 100 proxies take 30 s
	// (BenchmarkPushToFullACK).
	podsOf map[string][]*Pod
}

// WithDefaults fills in the defaults of a topology: namespace "default", port
// 80 named "http", targetPort 8080, one replica, error status 503, path
// "/<name>", and for a selecting Service the ports, protocol and path of
// the service it selects. It is the one place these defaults are written;
// applied to its own result it changes nothing.
func WithDefaults(t Topology) Topology {
	if t.Namespace == "" {
		t.Namespace = "default"
	}
	svcs := make([]Service, len(t.Services))
	for i, s := range t.Services {
		if s.Port == 0 {
			s.Port = 80
		}
		if s.TargetPort == 0 {
			s.TargetPort = 8080
		}
		if s.Path == "" {
			s.Path = "/" + s.Name
		}
		if s.Protocol == "" {
			s.Protocol = "http"
		}
		vs := make([]Version, len(s.Versions))
		for j, v := range s.Versions {
			if v.Replicas == 0 {
				v.Replicas = 1
			}
			if v.ErrorStatus == 0 {
				v.ErrorStatus = 503
			}
			vs[j] = v
		}
		s.Versions = vs
		svcs[i] = s
	}
	// A selecting Service serves the selected one's pods on its ports. It
	// has no pods of its own (New makes none); versions declared on it are
	// kept, for a validator to refuse.
	for i, s := range svcs {
		if s.Selects == nil {
			continue
		}
		for _, target := range svcs {
			if target.Name == s.Selects.Service && target.Selects == nil {
				s.Port, s.TargetPort, s.Protocol, s.AppProtocol, s.Path = target.Port, target.TargetPort, target.Protocol, target.AppProtocol, target.Path
			}
		}
		svcs[i] = s
	}
	t.Services = svcs
	return t
}

// New builds the registry of a topology, giving each pod the next address from alloc.
func New(t Topology, alloc func() (netip.Addr, error)) (*Registry, error) {
	t = WithDefaults(t)
	r := &Registry{Namespace: t.Namespace, notReady: map[string]bool{}}
	vip := ServiceCIDR.Addr()
	for _, s := range t.Services {
		vip = vip.Next()
		if !ServiceCIDR.Contains(vip) {
			return nil, fmt.Errorf("more services than %s holds", ServiceCIDR)
		}
		r.Services = append(r.Services, ServiceInfo{Service: s, Namespace: t.Namespace, VIP: vip})
		if s.Selects != nil {
			continue // its pods are the selected service's
		}
		for _, v := range s.Versions {
			for i := 0; i < v.Replicas; i++ {
				ip, err := alloc()
				if err != nil {
					return nil, err
				}
				labels := map[string]string{"app": s.Name, "version": v.Name}
				for k, val := range v.Labels {
					labels[k] = val
				}
				r.Pods = append(r.Pods, &Pod{
					Name:           fmt.Sprintf("%s-%s-%d", s.Name, v.Name, i),
					Namespace:      t.Namespace,
					Service:        s.Name,
					Version:        v.Name,
					Workload:       s.Name + "-" + v.Name,
					Labels:         labels,
					IP:             ip,
					Port:           s.TargetPort,
					ServiceAccount: s.Name,
					Sidecar:        v.HasSidecar(),
					Cert:           v.Cert,
				})
			}
		}
	}
	r.podsOf = make(map[string][]*Pod, len(r.Services))
	for _, s := range r.Services {
		r.podsOf[s.Name] = r.selectPods(s.Name)
	}
	return r, nil
}

// Service finds a service by any name a pod of its namespace may dial:
// payment, payment.default, payment.default.svc or
// payment.default.svc.cluster.local (the pod DNS search path,
// istionames.DNSNames). A host in Istio config is resolved by Lookup.
func (r *Registry) Service(host string) (ServiceInfo, bool) {
	for _, s := range r.Services {
		if istionames.DNSNames(host, s.Namespace, s.Name, s.Namespace) {
			return s, true
		}
	}
	return ServiceInfo{}, false
}

// Lookup finds the service a host in an Istio config of namespace
// configNamespace names, as istiod resolves it (istionames.NamesService):
// payment in that namespace, or the FQDN.
func (r *Registry) Lookup(host, configNamespace string) (ServiceInfo, bool) {
	for _, s := range r.Services {
		if istionames.NamesService(host, configNamespace, s.Name, s.Namespace) {
			return s, true
		}
	}
	return ServiceInfo{}, false
}

// Pod finds a pod by name.
func (r *Registry) Pod(name string) (*Pod, bool) {
	for _, p := range r.Pods {
		if p.Name == name {
			return p, true
		}
	}
	return nil, false
}

// PodsOf returns the pods of a service, sorted by name: for a selecting
// Service (Service.Selects), the selected service's pods its labels select.
func (r *Registry) PodsOf(service string) []*Pod {
	return slices.Clone(r.podsOf[service])
}

// selectPods finds the pods a service selects, for the index in New.
func (r *Registry) selectPods(service string) []*Pod {
	sel := map[string]string{"app": service}
	for _, s := range r.Services {
		if s.Name == service {
			sel = s.SelectorLabels()
		}
	}
	var out []*Pod
	for _, p := range r.Pods {
		if Selects(sel, p.Labels) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SetReady marks a pod ready or not; a pod that is not ready leaves EDS, as a
// Kubernetes EndpointSlice drops a pod whose readiness probe fails.
func (r *Registry) SetReady(pod string, ready bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ready {
		delete(r.notReady, pod)
	} else {
		r.notReady[pod] = true
	}
}

// Ready reports whether a pod is ready.
func (r *Registry) Ready(pod string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.notReady[pod]
}

// Selects reports whether labels match every key of selector.
func Selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
