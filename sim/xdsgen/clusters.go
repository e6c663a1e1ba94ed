package xdsgen

import (
	"fmt"
	"math"
	"sort"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	xdstype "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/meshbench/meshbench/sim/registry"
)

// DefaultConnectTimeout is meshConfig.connectTimeout's default, 10s (pkg/config/mesh/mesh.go DefaultMeshConfig).
const DefaultConnectTimeout = 10 * time.Second

// outboundClusters builds, for every service, the cluster of the service port
// and one per DestinationRule subset, each with its ClusterLoadAssignment.
func (g *Generator) outboundClusters() ([]*cluster.Cluster, []*endpoint.ClusterLoadAssignment) {
	var cs []*cluster.Cluster
	var eps []*endpoint.ClusterLoadAssignment
	for _, s := range g.reg.Services {
		dr := g.destinationRule(s)
		var policy *networking.TrafficPolicy
		if dr != nil {
			policy = dr.Spec.GetTrafficPolicy()
		}
		name := ClusterName(OutboundDirection, s.Port, "", s.FQDN())
		cs = append(cs, outboundCluster(name, s, policy))
		eps = append(eps, g.loadAssignment(name, s, nil))
		if dr == nil {
			continue
		}
		for _, sub := range dr.Spec.GetSubsets() {
			name := ClusterName(OutboundDirection, s.Port, sub.GetName(), s.FQDN())
			cs = append(cs, outboundCluster(name, s, mergeSubsetPolicy(policy, sub.GetTrafficPolicy())))
			eps = append(eps, g.loadAssignment(name, s, sub.GetLabels()))
		}
	}
	return cs, eps
}

// mergeSubsetPolicy applies a subset's traffic policy over the host-level one:
// Istio takes each top-level field of the subset policy when set
// (pilot/pkg/networking/util MergeSubsetTrafficPolicy).
func mergeSubsetPolicy(host, subset *networking.TrafficPolicy) *networking.TrafficPolicy {
	if subset == nil {
		return host
	}
	if host == nil {
		return subset
	}
	out := &networking.TrafficPolicy{
		ConnectionPool:   host.GetConnectionPool(),
		LoadBalancer:     host.GetLoadBalancer(),
		OutlierDetection: host.GetOutlierDetection(),
		Tls:              host.GetTls(),
	}
	if subset.GetConnectionPool() != nil {
		out.ConnectionPool = subset.GetConnectionPool()
	}
	if subset.GetLoadBalancer() != nil {
		out.LoadBalancer = subset.GetLoadBalancer()
	}
	if subset.GetOutlierDetection() != nil {
		out.OutlierDetection = subset.GetOutlierDetection()
	}
	if subset.GetTls() != nil {
		out.Tls = subset.GetTls()
	}
	return out
}

// outboundCluster shapes an EDS cluster as istiod does for a Kubernetes service.
func outboundCluster(name string, s registry.ServiceInfo, policy *networking.TrafficPolicy) *cluster.Cluster {
	c := &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{
			ServiceName: name,
			EdsConfig:   &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}, ResourceApiVersion: core.ApiVersion_V3},
		},
		ConnectTimeout: durationpb.New(DefaultConnectTimeout),
		// Istio's default LB is LEAST_REQUEST (cluster_traffic_policy.go defaultLBAlgorithm).
		LbPolicy: cluster.Cluster_LEAST_REQUEST,
		// Istio disables panic mode for services whose endpoints can be unhealthy
		// (cluster_traffic_policy.go applyLoadBalancer: HealthyPanicThreshold 0).
		CommonLbConfig:  &cluster.Cluster_CommonLbConfig{HealthyPanicThreshold: &xdstype.Percent{Value: 0}},
		CircuitBreakers: &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{defaultThresholds()}},
		Metadata: &core.Metadata{FilterMetadata: map[string]*structpb.Struct{
			"istio": mustStruct(map[string]any{"services": []any{map[string]any{
				"host": s.FQDN(), "name": s.Name, "namespace": s.Namespace,
			}}}),
		}},
	}
	applyTrafficPolicy(c, policy)
	return c
}

// defaultThresholds are Istio's circuit breaker defaults: every limit at
// MaxUint32, because Envoy's own default of 3 retries caused 503s during pod
// churn (cluster_traffic_policy.go getDefaultCircuitBreakerThresholds).
func defaultThresholds() *cluster.CircuitBreakers_Thresholds {
	return &cluster.CircuitBreakers_Thresholds{
		MaxRetries:         wrapperspb.UInt32(math.MaxUint32),
		MaxRequests:        wrapperspb.UInt32(math.MaxUint32),
		MaxConnections:     wrapperspb.UInt32(math.MaxUint32),
		MaxPendingRequests: wrapperspb.UInt32(math.MaxUint32),
		TrackRemaining:     true,
	}
}

// applyTrafficPolicy maps DestinationRule.trafficPolicy onto the cluster.
func applyTrafficPolicy(c *cluster.Cluster, p *networking.TrafficPolicy) {
	if p == nil {
		return
	}
	if lb := p.GetLoadBalancer(); lb != nil {
		switch lb.GetSimple() {
		case networking.LoadBalancerSettings_ROUND_ROBIN:
			c.LbPolicy = cluster.Cluster_ROUND_ROBIN
		case networking.LoadBalancerSettings_RANDOM:
			c.LbPolicy = cluster.Cluster_RANDOM
		case networking.LoadBalancerSettings_LEAST_REQUEST, networking.LoadBalancerSettings_UNSPECIFIED:
			c.LbPolicy = cluster.Cluster_LEAST_REQUEST
		}
	}
}

// loadAssignment lists the ready pods of a service whose labels match the
// subset selector, with Istio's endpoint metadata naming the workload.
func (g *Generator) loadAssignment(name string, s registry.ServiceInfo, selector map[string]string) *endpoint.ClusterLoadAssignment {
	var lbs []*endpoint.LbEndpoint
	pods := g.reg.PodsOf(s.Name)
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	for _, p := range pods {
		if !registry.Selects(selector, p.Labels) || !g.reg.Ready(p.Name) {
			continue
		}
		lbs = append(lbs, &endpoint.LbEndpoint{
			HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
				Address: socketAddress(p.IP.String(), p.Port),
			}},
			HealthStatus:        core.HealthStatus_HEALTHY,
			LoadBalancingWeight: wrapperspb.UInt32(1),
			Metadata: &core.Metadata{FilterMetadata: map[string]*structpb.Struct{
				// Istio's endpoint metadata: "workload" is name;namespace;app;version;cluster
				// (pilot/pkg/networking/util/util.go AppendLbEndpointMetadata).
				"istio": mustStruct(map[string]any{
					"workload": fmt.Sprintf("%s;%s;%s;%s;Kubernetes", p.Workload, p.Namespace, p.Service, p.Version),
					"pod":      p.Name,
				}),
			}},
		})
	}
	return &endpoint.ClusterLoadAssignment{
		ClusterName: name,
		Endpoints: []*endpoint.LocalityLbEndpoints{{
			Locality:            &core.Locality{},
			LbEndpoints:         lbs,
			LoadBalancingWeight: wrapperspb.UInt32(uint32(max(len(lbs), 1))),
		}},
	}
}

// inboundCluster is the static cluster from the sidecar to its app, inbound|<port>||.
func inboundCluster(p *registry.Pod, s registry.ServiceInfo) *cluster.Cluster {
	name := InboundClusterName(s.TargetPort)
	host, port := splitHostPort(p.AppAddr)
	return &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(DefaultConnectTimeout),
		CircuitBreakers:      &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{defaultThresholds()}},
		LoadAssignment: &endpoint.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpoint.LocalityLbEndpoints{{LbEndpoints: []*endpoint.LbEndpoint{{
				HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: socketAddress(host, port)}},
			}}}},
		},
	}
}

func mustStruct(m map[string]any) *structpb.Struct {
	s, err := structpb.NewStruct(m)
	if err != nil {
		panic(err) // only called with literal maps of plain values
	}
	return s
}
