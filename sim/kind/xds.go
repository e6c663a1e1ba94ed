package kind

import (
	"context"
	"fmt"
	"net/url"
)

// ConfigDump is what istiod generates for one proxy (a topology pod by its
// registry name, or istio-ingressgateway), as istiod's own
// /debug/config_dump?proxyID= serves it: an Envoy admin ConfigDump, the
// clusters, listeners, routes and endpoints istiod pushes that proxy.
// `istioctl proxy-config` reads the same from the proxy's side.
func (m *Mesh) ConfigDump(ctx context.Context, proxy string) ([]byte, error) {
	var id string
	if proxy == "istio-ingressgateway" {
		list, err := m.gatewayPods(ctx)
		if err != nil {
			return nil, err
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("istio-ingressgateway has no running pod")
		}
		id = list[0] + "." + istioNamespace
	} else {
		p, err := m.pod(ctx, proxy)
		if err != nil {
			return nil, err
		}
		if !hasProxy(p) {
			return nil, fmt.Errorf("pod %s has no istio-proxy: istiod sends it nothing", proxy)
		}
		id = p.Name + "." + p.Namespace
	}
	pod, err := m.istiodPod(ctx)
	if err != nil {
		return nil, err
	}
	return m.exec(ctx, istioNamespace, pod, "discovery", "pilot-discovery", "request", "GET", "/debug/config_dump?proxyID="+url.QueryEscape(id))
}
