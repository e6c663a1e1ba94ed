package xdsgen_test

import (
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// The proxyless shape follows istiod's grpcgen (pilot/pkg/networking/grpcgen).
func TestForProxylessShape(t *testing.T) {
	reg := defaultRegistry(t)
	d := versionSubsets("payment", "v1", "v2")
	d.TrafficPolicy = &networking.TrafficPolicy{
		LoadBalancer:   &networking.LoadBalancerSettings{LbPolicy: &networking.LoadBalancerSettings_Simple{Simple: networking.LoadBalancerSettings_LEAST_REQUEST}},
		ConnectionPool: &networking.ConnectionPoolSettings{Http: &networking.ConnectionPoolSettings_HTTPSettings{Http2MaxRequests: 7}},
	}
	cfg := meshconfig.Config{
		DestinationRules: []*networkingv1.DestinationRule{dr("payment", d)},
		VirtualServices: []*networkingv1.VirtualService{vs("payment", &networking.VirtualService{
			Hosts: []string{"payment"},
			Http:  []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{dest("v1", 90), dest("v2", 10)}, Timeout: durationpb.New(100e6)}},
		})},
	}
	r := xdsgen.New(reg, cfg).ForProxyless(pod(t, reg, "order-v1-0"))

	// LDS: ApiListeners named as grpc-go asks (host:port), FQDN and the
	// same-namespace short names, each naming RDS outbound|80||FQDN (lds.go).
	byName := map[string]string{}
	for _, l := range r.Listeners {
		require.NotNil(t, l.GetApiListener(), l.GetName())
		m := &hcm.HttpConnectionManager{}
		require.NoError(t, l.GetApiListener().GetApiListener().UnmarshalTo(m))
		byName[l.GetName()] = m.GetRds().GetRouteConfigName()
		// supportedFilters: fault, then router, which grpc-go needs last.
		require.Len(t, m.GetHttpFilters(), 2)
		assert.Equal(t, "envoy.filters.http.fault", m.GetHttpFilters()[0].GetName())
		assert.Equal(t, "envoy.filters.http.router", m.GetHttpFilters()[1].GetName())
	}
	for _, n := range []string{paymentHost + ":80", "payment:80", "payment.default:80", "payment.default.svc:80"} {
		assert.Equal(t, "outbound|80||"+paymentHost, byName[n], n)
	}

	// RDS: one virtual host, domains with the port, the timeout also as
	// max_stream_duration (route.go setTimeout), the weights kept.
	var found bool
	for _, rc := range r.Routes {
		if rc.GetName() != "outbound|80||"+paymentHost {
			continue
		}
		found = true
		require.Len(t, rc.GetVirtualHosts(), 1)
		vh := rc.GetVirtualHosts()[0]
		assert.Contains(t, vh.GetDomains(), paymentHost+":80")
		assert.Contains(t, vh.GetDomains(), "payment:80")
		a := vh.GetRoutes()[0].GetRoute()
		assert.Equal(t, 100e6, float64(a.GetMaxStreamDuration().GetMaxStreamDuration().AsDuration()))
		assert.Equal(t, 100e6, float64(a.GetTimeout().AsDuration()))
		w := a.GetWeightedClusters().GetClusters()
		require.Len(t, w, 2)
		assert.Equal(t, "outbound|80|v1|"+paymentHost, w[0].GetName())
		assert.Equal(t, uint32(90), w[0].GetWeight().GetValue())
		assert.NotNil(t, a.GetRetryPolicy(), "Istio's default retry policy")
	}
	assert.True(t, found)

	// CDS: bare EDS clusters with LEAST_REQUEST and max_requests only (cds.go).
	c := findCluster(t, r, "outbound|80|v2|"+paymentHost)
	assert.Equal(t, cluster.Cluster_EDS, c.GetType())
	assert.Equal(t, "outbound|80|v2|"+paymentHost, c.GetEdsClusterConfig().GetServiceName())
	assert.Equal(t, cluster.Cluster_LEAST_REQUEST, c.GetLbPolicy())
	require.Len(t, c.GetCircuitBreakers().GetThresholds(), 1)
	assert.Equal(t, uint32(7), c.GetCircuitBreakers().GetThresholds()[0].GetMaxRequests().GetValue())
	assert.Nil(t, c.GetOutlierDetection())
	assert.Nil(t, c.GetTransportSocket())
	assert.Nil(t, c.GetConnectTimeout())

	// EDS: the locality has a weight, or grpc-go drops it.
	cla := findCLA(t, r, "outbound|80|v1|"+paymentHost)
	require.Len(t, cla.GetEndpoints(), 1)
	assert.Equal(t, uint32(2), cla.GetEndpoints()[0].GetLoadBalancingWeight().GetValue())
}

// Without a route timeout, max_stream_duration is 0s: no limit (route.go
// setTimeout, Notimeout), and ROUND_ROBIN is grpc-go's default, left unset.
func TestForProxylessNoTimeout(t *testing.T) {
	reg := defaultRegistry(t)
	r := xdsgen.New(reg, meshconfig.Config{}).ForProxyless(pod(t, reg, "order-v1-0"))
	for _, rc := range r.Routes {
		for _, rt := range rc.GetVirtualHosts()[0].GetRoutes() {
			assert.Equal(t, int64(0), int64(rt.GetRoute().GetMaxStreamDuration().GetMaxStreamDuration().AsDuration()))
			assert.NotNil(t, rt.GetRoute().GetMaxStreamDuration().GetMaxStreamDuration())
		}
	}
	assert.Equal(t, cluster.Cluster_ROUND_ROBIN, findCluster(t, r, "outbound|80||"+paymentHost).GetLbPolicy())
}
