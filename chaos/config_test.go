package chaos

import (
	"testing"

	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshbench/meshbench/sim/meshconfig"
)

func canary(http ...*networking.HTTPRoute) meshconfig.Config {
	return meshconfig.Config{
		DestinationRules: []*networkingv1.DestinationRule{{
			ObjectMeta: metav1.ObjectMeta{Name: "payment", Namespace: "default"},
			Spec: networking.DestinationRule{Host: "payment", Subsets: []*networking.Subset{
				{Name: "stable", Labels: map[string]string{"version": "v1"}},
				{Name: "canary", Labels: map[string]string{"version": "v2"}},
			}},
		}},
		VirtualServices: []*networkingv1.VirtualService{{
			ObjectMeta: metav1.ObjectMeta{Name: "payment", Namespace: "default"},
			Spec:       networking.VirtualService{Hosts: []string{"payment"}, Http: http},
		}},
	}
}

func to(subset string, weight int32) *networking.HTTPRouteDestination {
	return &networking.HTTPRouteDestination{Destination: &networking.Destination{Host: "payment", Subset: subset}, Weight: weight}
}

var abort503 = &networking.HTTPFaultInjection{Abort: &networking.HTTPFaultInjection_Abort{
	Percentage: &networking.Percent{Value: 100}, ErrorType: &networking.HTTPFaultInjection_Abort_HttpStatus{HttpStatus: 503},
}}

func TestRouteFaultOnAVersionTakesOnlyItsRoutes(t *testing.T) {
	base := canary(
		&networking.HTTPRoute{Name: "jason", Match: []*networking.HTTPMatchRequest{{Headers: map[string]*networking.StringMatch{"end-user": {MatchType: &networking.StringMatch_Exact{Exact: "jason"}}}}},
			Route: []*networking.HTTPRouteDestination{to("canary", 0)}},
		&networking.HTTPRoute{Name: "rest", Route: []*networking.HTTPRouteDestination{to("stable", 0)}},
	)
	cfg := CopyConfig(base)
	require.NoError(t, RouteFault("default", Target{Service: "payment", Version: "v2"}, abort503)(&cfg))
	http := cfg.VirtualServices[0].Spec.Http
	require.NotNil(t, http[0].Fault, "the route to subset canary (version v2)")
	require.Nil(t, http[1].Fault)
	require.Nil(t, base.VirtualServices[0].Spec.Http[0].Fault, "the base config is never changed")

	cfg = CopyConfig(base)
	require.NoError(t, RouteFault("default", Target{Service: "payment", Route: "rest"}, abort503)(&cfg))
	require.Nil(t, cfg.VirtualServices[0].Spec.Http[0].Fault)
	require.NotNil(t, cfg.VirtualServices[0].Spec.Http[1].Fault)

	cfg = CopyConfig(base)
	require.ErrorContains(t, RouteFault("default", Target{Service: "payment", Route: "nope"}, abort503)(&cfg), `no route of payment is named "nope" (routes: jason, rest)`)
}

func TestRouteFaultRefusesAWeightedSplit(t *testing.T) {
	cfg := canary(&networking.HTTPRoute{Route: []*networking.HTTPRouteDestination{to("stable", 90), to("canary", 10)}})
	err := RouteFault("default", Target{Service: "payment", Version: "v2"}, abort503)(&cfg)
	require.ErrorContains(t, err, "splits payment's traffic between version v2 and others")
	cfg = canary(&networking.HTTPRoute{Route: []*networking.HTTPRouteDestination{to("stable", 90), to("canary", 10)}})
	require.NoError(t, RouteFault("default", Target{Service: "payment"}, abort503)(&cfg), "the whole service is fine")
}

func TestRouteFaultKeepsTheOtherPartOfAnExistingFault(t *testing.T) {
	delay := &networking.HTTPFaultInjection{Delay: &networking.HTTPFaultInjection_Delay{Percentage: &networking.Percent{Value: 10}}}
	cfg := canary(&networking.HTTPRoute{Fault: delay, Route: []*networking.HTTPRouteDestination{to("stable", 0)}})
	require.NoError(t, RouteFault("default", Target{Service: "payment"}, abort503)(&cfg))
	f := cfg.VirtualServices[0].Spec.Http[0].Fault
	require.Equal(t, delay.Delay, f.Delay)
	require.Equal(t, abort503.Abort, f.Abort)
}

func TestConfigLayerUnstacksInAnyOrder(t *testing.T) {
	var l configLayer
	a, cfg, err := l.add("a", RouteFault("default", Target{Service: "order"}, abort503))
	require.NoError(t, err)
	require.Len(t, cfg.VirtualServices, 1)
	_, cfg, err = l.add("b", RouteFault("default", Target{Service: "payment"}, abort503))
	require.NoError(t, err)
	require.Len(t, cfg.VirtualServices, 2)
	cfg, err = l.remove(a)
	require.NoError(t, err)
	require.Len(t, cfg.VirtualServices, 1)
	require.Equal(t, ChaosVirtualService("payment"), cfg.VirtualServices[0].Name)
	_, _, err = l.add("bad", RouteFault("default", Target{Service: "payment", Route: "x"}, abort503))
	require.Error(t, err)
	require.Len(t, l.changes, 1, "a change that fails is not kept")
}

// A VirtualService names a service as istiod resolves its hosts
// (istionames.NamesService): one of another namespace naming "payment"
// means payment.other, and "payment.default" is taken as written, so the
// fault goes on a VirtualService of its own for payment.
func TestRouteFaultTakesOnlyVirtualServicesThatNameTheService(t *testing.T) {
	for _, tc := range []struct {
		ns, host string
		names    bool
	}{
		{"default", "payment", true},
		{"other", "payment.default.svc.cluster.local", true},
		{"other", "payment", false},
		{"default", "payment.default", false},
	} {
		base := canary(&networking.HTTPRoute{Name: "rest", Route: []*networking.HTTPRouteDestination{to("stable", 0)}})
		base.VirtualServices[0].Namespace = tc.ns
		base.VirtualServices[0].Spec.Hosts = []string{tc.host}
		cfg := CopyConfig(base)
		require.NoError(t, RouteFault("default", Target{Service: "payment"}, abort503)(&cfg))
		require.Equal(t, tc.names, cfg.VirtualServices[0].Spec.Http[0].Fault != nil, "%q in namespace %s", tc.host, tc.ns)
		require.Equal(t, !tc.names, len(cfg.VirtualServices) == 2, "%q in namespace %s: a VirtualService of its own", tc.host, tc.ns)
	}
}
