package xdsgen_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// A VirtualService's hosts are resolved against its own namespace, and a
// name with a dot is taken as written (model.ResolveShortnameToFQDN): the
// short names a pod's DNS would complete name no service in config.
func TestVirtualServiceHostsResolveAsIstiod(t *testing.T) {
	for _, tc := range []struct {
		ns, host string
		applies  bool
	}{
		{"default", "payment", true},
		{"other", paymentHost, true},
		{"default", "*.default.svc.cluster.local", true},
		{"other", "payment", false}, // payment.other.svc.cluster.local
		{"default", "payment.default", false},
		{"default", "payment.default.svc", false},
		{"default", "*.default", false},
	} {
		v := vs("canary", &networking.VirtualService{Hosts: []string{tc.host}, Http: []*networking.HTTPRoute{{Name: "canary", Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: paymentHost}}}}}})
		v.Namespace = tc.ns
		routes := paymentRoutes(t, meshconfig.Config{VirtualServices: []*networkingv1.VirtualService{v}})
		require.Len(t, routes, 1)
		assert.Equal(t, tc.applies, routes[0].GetName() == "canary", "%q in namespace %s", tc.host, tc.ns)
	}
}

// A destination's short name means a service of the VirtualService's
// namespace, not of the host it routes.
func TestDestinationShortNameResolvesInTheVirtualServiceNamespace(t *testing.T) {
	for ns, want := range map[string]string{
		"default": paymentHost,
		"other":   "payment.other.svc.cluster.local",
	} {
		v := vs("payment", &networking.VirtualService{Hosts: []string{paymentHost}, Http: []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{dest("v2", 0)}}}})
		v.Namespace = ns
		cfg := meshconfig.Config{VirtualServices: []*networkingv1.VirtualService{v}}
		routes := paymentRoutes(t, cfg)
		require.Len(t, routes, 1)
		_, _, subset, host, ok := istionames.ParseClusterName(routes[0].GetRoute().GetCluster())
		require.True(t, ok)
		assert.Equal(t, []string{"v2", want}, []string{subset, host}, ns)
		assert.Equal(t, "payment", cfg.VirtualServices[0].Spec.Http[0].Route[0].Destination.Host, "the caller's config is not changed")
	}
}

// A DestinationRule's short host names the service of its own namespace.
func TestDestinationRuleHostResolvesInItsNamespace(t *testing.T) {
	for _, tc := range []struct {
		ns, host string
		applies  bool
	}{
		{"default", "payment", true},
		{"other", paymentHost, true},
		{"other", "*.svc.cluster.local", true},
		{"other", "payment", false},
		{"default", "payment.default", false},
	} {
		rule := dr("payment", versionSubsets(tc.host, "v1"))
		rule.Namespace = tc.ns
		reg := defaultRegistry(t)
		res := xdsgen.New(reg, meshconfig.Config{DestinationRules: []*networkingv1.DestinationRule{rule}}).ForSidecar(pod(t, reg, "order-v1-0"))
		var names []string
		for _, c := range res.Clusters {
			names = append(names, c.GetName())
		}
		assert.Equal(t, tc.applies, slices.Contains(names, "outbound|80|v1|"+paymentHost), "%q in namespace %s", tc.host, tc.ns)
	}
}
