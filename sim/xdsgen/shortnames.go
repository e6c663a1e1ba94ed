package xdsgen

import (
	networking "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshbench/meshbench/sim/istionames"
)

// resolveShortnames returns copies of the VirtualServices whose hosts and
// destination hosts are resolved against each one's namespace, as istiod
// does once when it takes them in (pilot/pkg/model/virtualservice.go
// resolveVirtualServiceShortnames): from then on a destination names its
// service by FQDN, wherever the route that holds it is translated.
func resolveShortnames(vss []*networkingv1.VirtualService) []*networkingv1.VirtualService {
	out := make([]*networkingv1.VirtualService, len(vss))
	for i, vs := range vss {
		vs = vs.DeepCopy()
		resolve := func(d *networking.Destination) {
			if d != nil {
				d.Host = string(istionames.ResolveHost(d.GetHost(), vs.Namespace))
			}
		}
		for j, h := range vs.Spec.Hosts {
			vs.Spec.Hosts[j] = string(istionames.ResolveHost(h, vs.Namespace))
		}
		for _, hr := range vs.Spec.Http {
			for _, d := range hr.GetRoute() {
				resolve(d.GetDestination())
			}
			resolve(hr.GetMirror())
			for _, m := range hr.GetMirrors() {
				resolve(m.GetDestination())
			}
		}
		for _, tr := range vs.Spec.Tcp {
			for _, d := range tr.GetRoute() {
				resolve(d.GetDestination())
			}
		}
		for _, tr := range vs.Spec.Tls {
			for _, d := range tr.GetRoute() {
				resolve(d.GetDestination())
			}
		}
		out[i] = vs
	}
	return out
}
