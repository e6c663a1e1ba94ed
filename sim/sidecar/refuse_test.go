package sidecar

import (
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func okCluster() *cluster.Cluster {
	return &cluster.Cluster{
		Name: "c", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		ConnectTimeout: durationpb.New(time.Second), LbPolicy: cluster.Cluster_ROUND_ROBIN,
	}
}

// A field whose behaviour the sidecar does not implement is refused with a
// NACK that names it, never acted on as if it were absent.
func TestUnimplementedFieldsAreRefused(t *testing.T) {
	od := func(o *cluster.OutlierDetection) *cluster.Cluster {
		c := okCluster()
		c.OutlierDetection = o
		return c
	}
	for name, c := range map[string]*cluster.Cluster{
		"success-rate detection on by default": od(&cluster.OutlierDetection{}),
		"success-rate detection enforced":      od(&cluster.OutlierDetection{EnforcingSuccessRate: wrapperspb.UInt32(100)}),
		"failure-percentage detection":         od(&cluster.OutlierDetection{EnforcingSuccessRate: wrapperspb.UInt32(0), EnforcingFailurePercentage: wrapperspb.UInt32(100)}),
		"retry budget": func() *cluster.Cluster {
			c := okCluster()
			c.CircuitBreakers = &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{{RetryBudget: &cluster.CircuitBreakers_Thresholds_RetryBudget{}}}}
			return c
		}(),
		"locality-weighted balancing": func() *cluster.Cluster {
			c := okCluster()
			c.CommonLbConfig = &cluster.Cluster_CommonLbConfig{LocalityConfigSpecifier: &cluster.Cluster_CommonLbConfig_LocalityWeightedLbConfig_{LocalityWeightedLbConfig: &cluster.Cluster_CommonLbConfig_LocalityWeightedLbConfig{}}}
			return c
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := compileCluster(c)
			assert.Error(t, err)
		})
	}
	_, err := compileCluster(od(&cluster.OutlierDetection{EnforcingSuccessRate: wrapperspb.UInt32(0)}))
	require.NoError(t, err, "consecutive-error detection as Istio sends it is taken")

	sock := &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{Address: "10.0.0.1", PortSpecifier: &core.SocketAddress_PortValue{PortValue: 80}}}}
	err = checkEndpoints(&endpoint.ClusterLoadAssignment{ClusterName: "c", Endpoints: []*endpoint.LocalityLbEndpoints{{
		Priority: 1, LbEndpoints: []*endpoint.LbEndpoint{{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: sock}}}},
	}}})
	assert.ErrorContains(t, err, "priority 1")

	action := &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "c"}}}
	for name, r := range map[string]*route.Route{
		"runtime_fraction": {Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}, RuntimeFraction: &core.RuntimeFractionalPercent{}}, Action: action},
		"route tracing":    {Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}}, Action: action, Tracing: &route.Tracing{}},
		"two hash policies": {Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}}, Action: &route.Route_Route{Route: &route.RouteAction{
			ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "c"},
			HashPolicy: []*route.RouteAction_HashPolicy{
				{PolicySpecifier: &route.RouteAction_HashPolicy_Header_{Header: &route.RouteAction_HashPolicy_Header{HeaderName: "a"}}},
				{PolicySpecifier: &route.RouteAction_HashPolicy_Header_{Header: &route.RouteAction_HashPolicy_Header{HeaderName: "b"}}},
			},
		}}},
		"retriable_headers": {Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}}, Action: &route.Route_Route{Route: &route.RouteAction{
			ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "c"},
			RetryPolicy:      &route.RetryPolicy{RetryOn: "retriable-headers", RetriableHeaders: []*route.HeaderMatcher{{Name: "x"}}},
		}}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := compileRoute(r)
			assert.Error(t, err)
		})
	}
}

// A virtual host's retry_policy is the policy of its routes that set none;
// a route's own replaces it (route_components.proto VirtualHost.retry_policy).
func TestVirtualHostRetryPolicyAppliesToRoutesWithoutOne(t *testing.T) {
	plain := &route.Route{Name: "plain", Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/a"}},
		Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "c"}}}}
	own := &route.Route{Name: "own", Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/b"}},
		Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "c"},
			RetryPolicy: &route.RetryPolicy{RetryOn: "connect-failure", NumRetries: wrapperspb.UInt32(1)}}}}
	rt, err := compileRoutes(&route.RouteConfiguration{Name: "80", VirtualHosts: []*route.VirtualHost{{
		Name: "v", Domains: []string{"*"}, Routes: []*route.Route{plain, own},
		RetryPolicy: &route.RetryPolicy{RetryOn: "5xx", NumRetries: wrapperspb.UInt32(4)},
	}}}, "1")
	require.NoError(t, err)
	routes := rt.vhosts[0].routes
	require.NotNil(t, routes[0].retry)
	assert.Equal(t, 4, routes[0].retry.numRetries)
	assert.True(t, routes[0].retry.on.has(retry5xx))
	assert.Equal(t, 1, routes[1].retry.numRetries)
	assert.False(t, routes[1].retry.on.has(retry5xx), "not merged")
}

// A CDS update that one cluster makes a NACK changes no cluster in force:
// every cluster is compiled before a live one is touched.
func TestNackedClusterUpdateChangesNoLiveCluster(t *testing.T) {
	m := newRig(t, rigOpts{topo: rigTopology(registry.Version{Name: "v1"})})
	caller := m.proxies[rigCaller]
	name := rigCluster["cluster_name"]
	before := caller.state.Load().clusters[name].conf.Load().limits.maxConnections
	bad := m.publish(func(res *xdsgen.Resources) {
		for _, c := range res.Clusters {
			if c.GetName() == name {
				c.CircuitBreakers = &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{{MaxConnections: wrapperspb.UInt32(7)}}}
			}
		}
		broken := okCluster()
		broken.Name, broken.LbPolicy = "zz-broken", cluster.Cluster_CLUSTER_PROVIDED
		broken.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_STATIC}
		res.Clusters = append(res.Clusters, broken)
	})
	require.Error(t, m.waitConverged(bad))
	assert.Equal(t, before, caller.state.Load().clusters[name].conf.Load().limits.maxConnections, "the refused update left the cluster as it was")
}
