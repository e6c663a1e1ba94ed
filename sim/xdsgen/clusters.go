package xdsgen

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	httpopts "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	xdstype "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/registry"
)

// DefaultConnectTimeout is meshConfig.connectTimeout's default, 10s (pkg/config/mesh/mesh.go DefaultMeshConfig).
const DefaultConnectTimeout = 10 * time.Second

// outboundClusters builds, for every service, the cluster of the service port
// and one per DestinationRule subset, each with its ClusterLoadAssignment.
// sidecar is false for a gateway, whose clusters never use the downstream
// protocol (setUpstreamProtocol).
func (g *Generator) outboundClusters(sidecar bool) ([]*cluster.Cluster, []*endpoint.ClusterLoadAssignment) {
	var cs []*cluster.Cluster
	var eps []*endpoint.ClusterLoadAssignment
	for _, s := range g.reg.Services {
		dr := g.destinationRule(s)
		var policy *networking.TrafficPolicy
		if dr != nil {
			policy = dr.Spec.GetTrafficPolicy()
		}
		name := istionames.ClusterName(istionames.OutboundDirection, s.Port, "", s.FQDN())
		c := outboundCluster(name, s, policy, sidecar)
		g.applyOutboundTLS(c, s, policy.GetTls(), nil)
		cs = append(cs, c)
		eps = append(eps, g.loadAssignment(name, s, nil, policy))
		if dr == nil {
			continue
		}
		for _, sub := range dr.Spec.GetSubsets() {
			name := istionames.ClusterName(istionames.OutboundDirection, s.Port, sub.GetName(), s.FQDN())
			sp := mergeSubsetPolicy(policy, sub.GetTrafficPolicy())
			c := outboundCluster(name, s, sp, sidecar)
			g.applyOutboundTLS(c, s, sp.GetTls(), sub.GetLabels())
			cs = append(cs, c)
			eps = append(eps, g.loadAssignment(name, s, sub.GetLabels(), sp))
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
func outboundCluster(name string, s registry.ServiceInfo, policy *networking.TrafficPolicy, sidecar bool) *cluster.Cluster {
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
	// The upstream protocol first, then the rule's h2 upgrade and
	// connection pool (buildCluster, applyTrafficPolicy).
	proto := ServiceProtocol(s)
	opts := upstreamProtocol(proto, sidecar)
	if shouldH2Upgrade(proto, policy.GetConnectionPool().GetHttp()) {
		setH2(&opts)
	}
	applyTrafficPolicy(c, policy, &opts)
	setProtocolOptions(c, opts)
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
		// track_remaining stays off: PILOT_DISABLE_TRACK_REMAINING_CB_METRICS defaults to true (pilot/pkg/features/pilot.go).
	}
}

// applyTrafficPolicy maps DestinationRule.trafficPolicy onto the cluster
// (cluster_traffic_policy.go applyTrafficPolicy).
func applyTrafficPolicy(c *cluster.Cluster, p *networking.TrafficPolicy, opts **httpopts.HttpProtocolOptions) {
	if p == nil {
		return
	}
	applyConnectionPool(c, p.GetConnectionPool(), opts)
	applyOutlierDetection(c, p.GetOutlierDetection())
	if lb := p.GetLoadBalancer(); lb != nil {
		switch lb.GetSimple() {
		case networking.LoadBalancerSettings_ROUND_ROBIN:
			c.LbPolicy = cluster.Cluster_ROUND_ROBIN
		case networking.LoadBalancerSettings_RANDOM:
			c.LbPolicy = cluster.Cluster_RANDOM
		default:
			c.LbPolicy = cluster.Cluster_LEAST_REQUEST
		}
		applyRingHash(c, lb.GetConsistentHash())
	}
}

// applyRingHash is ApplyRingHashLoadBalancer: consistent hashing is RING_HASH
// with Envoy's minimum ring size 1024 unless the rule asks for Maglev.
func applyRingHash(c *cluster.Cluster, h *networking.LoadBalancerSettings_ConsistentHashLB) {
	if h == nil {
		return
	}
	if h.GetMaglev() != nil {
		c.LbPolicy = cluster.Cluster_MAGLEV
		if n := h.GetMaglev().GetTableSize(); n != 0 {
			c.LbConfig = &cluster.Cluster_MaglevLbConfig_{MaglevLbConfig: &cluster.Cluster_MaglevLbConfig{TableSize: wrapperspb.UInt64(n)}}
		}
		return
	}
	size := uint64(1024)
	if h.GetRingHash().GetMinimumRingSize() != 0 {
		size = h.GetRingHash().GetMinimumRingSize()
	} else if n := deprecatedMinRingSize(h); n != 0 {
		size = n
	}
	c.LbPolicy = cluster.Cluster_RING_HASH
	c.LbConfig = &cluster.Cluster_RingHashLbConfig_{RingHashLbConfig: &cluster.Cluster_RingHashLbConfig{MinimumRingSize: wrapperspb.UInt64(size)}}
}

// applyConnectionPool is applyConnectionPool: limits the rule sets replace
// Istio's MaxUint32 defaults; zero means unset. The upstream HTTP options
// go into opts; useClientProtocol makes the cluster use the downstream
// protocol.
func applyConnectionPool(c *cluster.Cluster, cp *networking.ConnectionPoolSettings, opts **httpopts.HttpProtocolOptions) {
	if cp == nil {
		return
	}
	t := defaultThresholds()
	if h := cp.GetHttp(); h != nil {
		if h.GetHttp2MaxRequests() > 0 {
			t.MaxRequests = wrapperspb.UInt32(uint32(h.GetHttp2MaxRequests()))
		}
		if h.GetHttp1MaxPendingRequests() > 0 {
			t.MaxPendingRequests = wrapperspb.UInt32(uint32(h.GetHttp1MaxPendingRequests()))
		}
		if h.GetMaxRetries() > 0 {
			t.MaxRetries = wrapperspb.UInt32(uint32(h.GetMaxRetries()))
		}
		common := &core.HttpProtocolOptions{}
		set := false
		if h.GetIdleTimeout() != nil {
			common.IdleTimeout, set = h.GetIdleTimeout(), true
		}
		if h.GetMaxRequestsPerConnection() > 0 {
			common.MaxRequestsPerConnection, set = wrapperspb.UInt32(uint32(h.GetMaxRequestsPerConnection())), true
		}
		if set {
			if *opts == nil {
				*opts = &httpopts.HttpProtocolOptions{}
			}
			(*opts).CommonHttpProtocolOptions = common
		}
		if h.GetUseClientProtocol() {
			if *opts == nil {
				*opts = &httpopts.HttpProtocolOptions{}
			}
			useDownstream(*opts)
		}
	}
	if tcp := cp.GetTcp(); tcp != nil {
		if tcp.GetConnectTimeout() != nil {
			c.ConnectTimeout = tcp.GetConnectTimeout()
		}
		if tcp.GetMaxConnections() > 0 {
			t.MaxConnections = wrapperspb.UInt32(uint32(tcp.GetMaxConnections()))
		}
	}
	c.CircuitBreakers = &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{t}}
}

// HTTPProtocolOptions is the key of upstream HTTP options in typed_extension_protocol_options.
const HTTPProtocolOptions = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// applyOutlierDetection is applyOutlierDetection: success-rate ejection off,
// enforcing 100 only for the consecutive-error kinds the rule sets, and the
// healthy panic threshold from minHealthPercent (0 by default: no panic mode).
func applyOutlierDetection(c *cluster.Cluster, o *networking.OutlierDetection) {
	if o == nil {
		return
	}
	out := &cluster.OutlierDetection{EnforcingSuccessRate: wrapperspb.UInt32(0)}
	if e := o.GetConsecutive_5XxErrors(); e != nil {
		out.Consecutive_5Xx = wrapperspb.UInt32(e.GetValue())
		out.EnforcingConsecutive_5Xx = wrapperspb.UInt32(enforcing(e.GetValue()))
	}
	if e := o.GetConsecutiveGatewayErrors(); e != nil {
		out.ConsecutiveGatewayFailure = wrapperspb.UInt32(e.GetValue())
		out.EnforcingConsecutiveGatewayFailure = wrapperspb.UInt32(enforcing(e.GetValue()))
	}
	if o.GetInterval() != nil {
		out.Interval = o.GetInterval()
	}
	if o.GetBaseEjectionTime() != nil {
		out.BaseEjectionTime = o.GetBaseEjectionTime()
	}
	if o.GetMaxEjectionPercent() > 0 {
		out.MaxEjectionPercent = wrapperspb.UInt32(uint32(o.GetMaxEjectionPercent()))
	}
	c.OutlierDetection = out
	if o.GetMinHealthPercent() >= 0 {
		c.CommonLbConfig.HealthyPanicThreshold = &xdstype.Percent{Value: float64(o.GetMinHealthPercent())}
	}
}

func enforcing(v uint32) uint32 {
	if v > 0 {
		return 100
	}
	return 0
}

// loadAssignment lists the ready pods of a service whose labels match the
// subset selector, with Istio's endpoint metadata naming the workload.
func (g *Generator) loadAssignment(name string, s registry.ServiceInfo, selector map[string]string, policy *networking.TrafficPolicy) *endpoint.ClusterLoadAssignment {
	// With outlierDetection.minHealthPercent > 0, Istio leaves endpoints that
	// are not ready out of EDS, so that panic mode never sends them traffic
	// (pilot/pkg/features PILOT_AUTO_SEND_UNHEALTHY_ENDPOINTS).
	dropUnready := policy.GetOutlierDetection().GetMinHealthPercent() > 0
	var lbs []*endpoint.LbEndpoint
	pods := g.reg.PodsOf(s.Name)
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	for _, p := range pods {
		if !registry.Selects(selector, p.Labels) {
			continue
		}
		// Istio sends endpoints that are not ready too, marked UNHEALTHY
		// (features PILOT_AUTO_SEND_UNHEALTHY_ENDPOINTS, default true).
		health := core.HealthStatus_HEALTHY
		if !g.reg.Ready(p.Name) {
			if dropUnready {
				continue
			}
			health = core.HealthStatus_UNHEALTHY
		}
		lbs = append(lbs, &endpoint.LbEndpoint{
			HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
				Address: socketAddress(p.IP.String(), p.Port),
			}},
			HealthStatus:        health,
			LoadBalancingWeight: wrapperspb.UInt32(1),
			Metadata:            endpointMetadata(p),
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

// endpointMetadata is Istio's endpoint metadata: "workload" is
// name;namespace;app;version;cluster, and pods with a sidecar carry
// tlsMode=istio for auto mTLS (pilot/pkg/networking/util/util.go AppendLbEndpointMetadata).
func endpointMetadata(p *registry.Pod) *core.Metadata {
	md := &core.Metadata{FilterMetadata: map[string]*structpb.Struct{
		"istio": mustStruct(map[string]any{
			"workload": fmt.Sprintf("%s;%s;%s;%s;Kubernetes", p.Workload, p.Namespace, p.Service, p.Version),
			"pod":      p.Name,
		}),
	}}
	if p.Sidecar {
		md.FilterMetadata[TransportSocketMatchKey] = mustStruct(map[string]any{"tlsMode": "istio"})
	}
	return md
}

// inboundCluster is the static cluster from the sidecar to its app, inbound|<port>||.
func inboundCluster(p *registry.Pod, s registry.ServiceInfo) *cluster.Cluster {
	name := istionames.InboundClusterName(s.TargetPort)
	addr := appAddress(p.AppAddr)
	c := &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(DefaultConnectTimeout),
		CircuitBreakers:      &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{defaultThresholds()}},
		LoadAssignment: &endpoint.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpoint.LocalityLbEndpoints{{LbEndpoints: []*endpoint.LbEndpoint{{
				HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: addr}},
			}}}},
		},
	}
	// The app gets the port's protocol too: istiod's inbound clusters go
	// through buildCluster and setUpstreamProtocol as the outbound ones do
	// (cluster_builder.go buildInboundCluster), so a grpc port's app is
	// spoken to over HTTP/2 (h2c).
	setProtocolOptions(c, upstreamProtocol(ServiceProtocol(s), true))
	return c
}

func mustStruct(m map[string]any) *structpb.Struct {
	s, err := structpb.NewStruct(m)
	if err != nil {
		panic(err) // only called with literal maps of plain values
	}
	return s
}

// deprecatedMinRingSize reads consistentHash.minimumRingSize, deprecated but
// still honoured by Istio (cluster_traffic_policy.go ApplyRingHashLoadBalancer).
func deprecatedMinRingSize(h *networking.LoadBalancerSettings_ConsistentHashLB) uint64 {
	//lint:ignore SA1019 Istio still honours the deprecated field.
	return h.GetMinimumRingSize()
}

// appAddress is the address of a pod's app: host:port, or "unix:/path" for
// an app on a Unix socket of its pod's own, which Envoy names a Pipe
// (envoy.config.core.v3.Pipe).
func appAddress(a string) *core.Address {
	if path, ok := strings.CutPrefix(a, "unix:"); ok {
		return &core.Address{Address: &core.Address_Pipe{Pipe: &core.Pipe{Path: path}}}
	}
	return socketAddress(splitHostPort(a))
}
