package sidecar

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshbench/meshbench/sim/ca"
	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
	"github.com/meshbench/meshbench/sim/xdsserver"
)

// The sidecar as pilot-agent runs Envoy: a bootstrap in the shape of
// Istio's template (tools/packaging/common/envoy_bootstrap.json), xds-grpc
// and sds-grpc Unix sockets relative to the working directory as
// pilot-agent lays them out, a recording ADS proxy in front of a real
// xdsserver (as pilot-agent's own xDS proxy sits in front of istiod) and a
// real SDS server.

// istioBootstrap is Istio's template rendered for one sidecar, with the
// ports given (tests must not bind the fixed 15000/15090/15021).
const istioBootstrap = `{
  "application_log_config": {"log_format": {"text_format": "%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v\tthread=%t"}},
  "node": {
    "id": "{{NODE}}",
    "cluster": "order.default",
    "locality": {},
    "metadata": {"NAMESPACE": "default", "WORKLOAD_NAME": "order-v1", "SERVICE_ACCOUNT": "order",
      "INSTANCE_IPS": "{{IP}}", "CLUSTER_ID": "Kubernetes", "MESH_ID": "cluster.local",
      "LABELS": {"app": "order", "version": "v1", "service.istio.io/canonical-name": "order"},
      "ISTIO_VERSION": "1.31.0", "PROXY_CONFIG": {"binaryPath": "/usr/local/bin/envoy", "drainDuration": "45s"}}
  },
  "layered_runtime": {"layers": [{"name": "global config", "static_layer": {"envoy.reloadable_features.http_reject_path_with_fragment": "false"}}, {"name": "admin", "admin_layer": {}}]},
  "bootstrap_extensions": [{"name": "envoy.bootstrap.internal_listener", "typed_config": {"@type": "type.googleapis.com/udpa.type.v1.TypedStruct",
    "type_url": "type.googleapis.com/envoy.extensions.bootstrap.internal_listener.v3.InternalListener", "value": {"buffer_size_kb": 64}}}],
  "stats_config": {"use_all_default_tags": false, "stats_tags": [{"tag_name": "cluster_name", "regex": "^cluster(\\.(.+);)"}],
    "stats_matcher": {"inclusion_list": {"patterns": [{"prefix": "reporter="}, {"prefix": "component"}, {"prefix": "istio"}]}}},
  "admin": {
    "access_log": [{"name": "envoy.access_loggers.file", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": "/dev/null"}}],
    "profile_path": "/var/lib/istio/data/envoy.prof",
    "address": {"socket_address": {"address": "127.0.0.1", "port_value": {{ADMIN}}}}
  },
  "dynamic_resources": {
    "lds_config": {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"},
    "cds_config": {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"},
    "ads_config": {"api_type": "GRPC", "set_node_on_first_message_only": true, "transport_api_version": "V3",
      "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]}
  },
  "static_resources": {
    "clusters": [
      {"name": "prometheus_stats", "alt_stat_name": "prometheus_stats;", "type": "STATIC", "connect_timeout": "0.250s", "lb_policy": "ROUND_ROBIN",
       "load_assignment": {"cluster_name": "prometheus_stats", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"protocol": "TCP", "address": "127.0.0.1", "port_value": {{ADMIN}}}}}}]}]}},
      {"name": "agent", "alt_stat_name": "agent;", "type": "STATIC", "connect_timeout": "0.250s", "lb_policy": "ROUND_ROBIN",
       "load_assignment": {"cluster_name": "agent", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"protocol": "TCP", "address": "127.0.0.1", "port_value": {{AGENT}}}}}}]}]}},
      {"name": "sds-grpc", "alt_stat_name": "sds-grpc;", "type": "STATIC",
       "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {"@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions", "explicit_http_config": {"http2_protocol_options": {}}}},
       "connect_timeout": "1s", "lb_policy": "ROUND_ROBIN",
       "load_assignment": {"cluster_name": "sds-grpc", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"pipe": {"path": "./var/run/secrets/workload-spiffe-uds/socket"}}}}]}]}},
      {"name": "xds-grpc", "alt_stat_name": "xds-grpc;", "type": "STATIC", "connect_timeout": "1s", "lb_policy": "ROUND_ROBIN",
       "load_assignment": {"cluster_name": "xds-grpc", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"pipe": {"path": "./etc/istio/proxy/XDS"}}}}]}]},
       "circuit_breakers": {"thresholds": [{"priority": "DEFAULT", "max_connections": 100000, "max_pending_requests": 100000, "max_requests": 100000}]},
       "upstream_connection_options": {"tcp_keepalive": {"keepalive_time": 300}},
       "max_requests_per_connection": 1,
       "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {"@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions", "explicit_http_config": {"http2_protocol_options": {}}}}}
    ],
    "listeners": [
      {"name": "0.0.0.0_15090", "address": {"socket_address": {"protocol": "TCP", "address": "127.0.0.1", "port_value": {{PROM}}}},
       "ignore_global_conn_limit": true, "bypass_overload_manager": true,
       "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
         "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
         "codec_type": "AUTO", "stat_prefix": "stats",
         "route_config": {"virtual_hosts": [{"name": "backend", "domains": ["*"], "routes": [{"match": {"prefix": "/stats/prometheus"}, "route": {"cluster": "prometheus_stats"}}]}]},
         "http_filters": [
           {"name": "envoy.filters.http.compressor.gzip", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor",
             "compressor_library": {"name": "stats_gzip", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip"}},
             "response_direction_config": {"common_config": {"content_type": ["text/plain", "application/openmetrics-text"]}}}},
           {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]},
      {"name": "0.0.0.0_15021", "address": {"socket_address": {"protocol": "TCP", "address": "127.0.0.1", "port_value": {{HEALTH}}}},
       "ignore_global_conn_limit": true, "bypass_overload_manager": true,
       "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
         "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
         "codec_type": "AUTO", "stat_prefix": "agent",
         "route_config": {"virtual_hosts": [{"name": "backend", "domains": ["*"], "routes": [{"match": {"prefix": "/healthz/ready"}, "route": {"cluster": "agent"}}]}]},
         "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}
    ]
  },
  "overload_manager": {"resource_monitors": [{"name": "envoy.resource_monitors.global_downstream_max_connections",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig", "max_active_downstream_connections": 2147483647}}]},
  "deferred_stat_options": {"enable_deferred_creation_stats": true}
}`

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// adsRecorder is an ADS proxy that records what passes, as pilot-agent's
// xDS proxy sits between Envoy and istiod.
type adsRecorder struct {
	discovery.UnimplementedAggregatedDiscoveryServiceServer
	upstream string
	mu       sync.Mutex
	reqs     []*discovery.DiscoveryRequest
	resps    map[string]int // responses by type
}

func (r *adsRecorder) StreamAggregatedResources(down discovery.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	conn, err := grpc.NewClient(r.upstream, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	up, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(down.Context())
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() {
		for {
			req, err := down.Recv()
			if err != nil {
				errc <- err
				return
			}
			r.mu.Lock()
			r.reqs = append(r.reqs, proto.Clone(req).(*discovery.DiscoveryRequest))
			r.mu.Unlock()
			if err := up.Send(req); err != nil {
				errc <- err
				return
			}
		}
	}()
	go func() {
		for {
			resp, err := up.Recv()
			if err != nil {
				errc <- err
				return
			}
			r.mu.Lock()
			r.resps[resp.GetTypeUrl()]++
			r.mu.Unlock()
			if err := down.Send(resp); err != nil {
				errc <- err
				return
			}
		}
	}()
	return <-errc
}

// sdsRecorder serves the two secrets, one per stream, and records the requests of every stream.
type sdsRecorder struct {
	secretv3.UnimplementedSecretDiscoveryServiceServer
	secrets map[string]*anypb.Any
	mu      sync.Mutex
	streams [][]*discovery.DiscoveryRequest
}

func (r *sdsRecorder) StreamSecrets(st secretv3.SecretDiscoveryService_StreamSecretsServer) error {
	r.mu.Lock()
	i := len(r.streams)
	r.streams = append(r.streams, nil)
	r.mu.Unlock()
	for n := 0; ; n++ {
		req, err := st.Recv()
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.streams[i] = append(r.streams[i], proto.Clone(req).(*discovery.DiscoveryRequest))
		r.mu.Unlock()
		if n > 0 {
			continue // ACKs and NACKs
		}
		resp := &discovery.DiscoveryResponse{VersionInfo: "s1", Nonce: "nonce-" + strconv.Itoa(i), TypeUrl: resource.SecretType}
		for _, name := range req.GetResourceNames() {
			if a, ok := r.secrets[name]; ok {
				resp.Resources = append(resp.Resources, a)
			}
		}
		if err := st.Send(resp); err != nil {
			return err
		}
	}
}

func (r *sdsRecorder) snapshot() [][]*discovery.DiscoveryRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][]*discovery.DiscoveryRequest, len(r.streams))
	copy(out, r.streams)
	return out
}

func serveGRPC(t *testing.T, path string, register func(*grpc.Server)) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	l, err := net.Listen("unix", path)
	require.NoError(t, err)
	g := grpc.NewServer()
	register(g)
	go func() { _ = g.Serve(l) }()
	t.Cleanup(g.Stop)
}

func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err, u)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// underAgent is one sidecar started from an Istio-shaped bootstrap.
type underAgent struct {
	dir, path     string
	pod           *registry.Pod
	cert          *ca.Cert
	xds           *xdsserver.Server
	ads           *adsRecorder
	sds           *sdsRecorder
	snap          func()
	admin         string
	prom, health  string
	agentRequests chan string
}

func newUnderAgent(t *testing.T) *underAgent {
	t.Helper()
	reg, err := registry.New(rigTopology(registry.Version{Name: "v1"}), rigSubnet(t))
	require.NoError(t, err)
	pod, ok := reg.Pod(rigCaller)
	require.True(t, ok)
	authority, err := ca.New(istionames.TrustDomain, time.Hour)
	require.NoError(t, err)
	id, err := authority.WorkloadID(pod.Namespace, pod.ServiceAccount)
	require.NoError(t, err)
	cert, err := authority.Issue(id)
	require.NoError(t, err)

	// Unix socket paths are short: a directory of our own under /tmp.
	dir, err := os.MkdirTemp("", "mb-boot")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	u := &underAgent{dir: dir, pod: pod, cert: cert, agentRequests: make(chan string, 16)}

	u.xds = xdsserver.New(nil)
	require.NoError(t, u.xds.Start(context.Background(), "unix://"+filepath.Join(dir, "istiod.sock")))
	t.Cleanup(u.xds.Stop)
	u.ads = &adsRecorder{upstream: u.xds.Addr(), resps: map[string]int{}}
	serveGRPC(t, filepath.Join(dir, "etc/istio/proxy/XDS"), func(g *grpc.Server) { discovery.RegisterAggregatedDiscoveryServiceServer(g, u.ads) })
	u.sds = &sdsRecorder{secrets: map[string]*anypb.Any{}}
	for _, s := range xdsgen.Secrets(cert.CertPEM, cert.KeyPEM, authority.RootPEM()) {
		a, err := anypb.New(s)
		require.NoError(t, err)
		u.sds.secrets[s.GetName()] = a
	}
	serveGRPC(t, filepath.Join(dir, "var/run/secrets/workload-spiffe-uds/socket"), func(g *grpc.Server) { secretv3.RegisterSecretDiscoveryServiceServer(g, u.sds) })
	u.snap = func() {
		res := xdsgen.New(reg, meshconfig.Config{}).ForSidecar(pod)
		res.Secrets = nil // they come over SDS
		snap, err := res.Snapshot("1")
		require.NoError(t, err)
		require.NoError(t, u.xds.SetSnapshot(context.Background(), pod.NodeID(), snap))
	}

	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.agentRequests <- r.URL.Path
		fmt.Fprint(w, "agent says ready")
	}))
	t.Cleanup(agent.Close)
	adminPort, promPort, healthPort := freePort(t), freePort(t), freePort(t)
	u.admin = "127.0.0.1:" + strconv.Itoa(adminPort)
	u.prom, u.health = "127.0.0.1:"+strconv.Itoa(promPort), "127.0.0.1:"+strconv.Itoa(healthPort)
	b := strings.NewReplacer("{{NODE}}", pod.NodeID(), "{{IP}}", pod.IP.String(), "{{ADMIN}}", strconv.Itoa(adminPort),
		"{{AGENT}}", strconv.Itoa(agent.Listener.Addr().(*net.TCPAddr).Port),
		"{{PROM}}", strconv.Itoa(promPort), "{{HEALTH}}", strconv.Itoa(healthPort)).Replace(istioBootstrap)
	u.path = filepath.Join(dir, "etc/istio/proxy/envoy-rev.json")
	require.NoError(t, os.WriteFile(u.path, []byte(b), 0o644))
	return u
}

func TestUnderPilotAgent(t *testing.T) {
	u := newUnderAgent(t)
	b, err := LoadBootstrap(u.path, "", true)
	require.NoError(t, err)
	cfg, err := FromBootstrap(b, u.dir)
	require.NoError(t, err)
	assert.Equal(t, "unix://"+filepath.Join(u.dir, "etc/istio/proxy/XDS"), cfg.XDS)
	assert.Equal(t, "unix://"+filepath.Join(u.dir, "var/run/secrets/workload-spiffe-uds/socket"), cfg.SDS)
	assert.Equal(t, u.pod.IP, cfg.IP)
	assert.Equal(t, []string{"order-v1", "default", "order", "v1", "spiffe://cluster.local/ns/default/sa/order"},
		[]string{cfg.Workload, cfg.Namespace, cfg.App, cfg.Version, cfg.Principal})
	s, err := Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	adminURL := "http://" + u.admin

	// Before any config: not ready, and workers_started not yet used, as
	// pilot-agent's readiness check expects of Envoy.
	code, body := httpGet(t, adminURL+"/ready")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "PRE_INITIALIZING\n", body)
	_, body = httpGet(t, adminURL+`/stats?usedonly&filter=^(server\.state|listener_manager\.workers_started)`)
	assert.Equal(t, "server.state: 2\n", body)

	u.snap()
	select {
	case <-s.Ready():
	case <-time.After(rigWait):
		t.Fatal("sidecar not ready")
	}
	code, body = httpGet(t, adminURL+"/ready")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "LIVE\n", body)

	// The bootstrap's node went verbatim on the ADS stream's first request
	// only (set_node_on_first_message_only), and no secret was asked for on ADS.
	u.ads.mu.Lock()
	reqs := append([]*discovery.DiscoveryRequest(nil), u.ads.reqs...)
	cds, lds := u.ads.resps[resource.ClusterType], u.ads.resps[resource.ListenerType]
	u.ads.mu.Unlock()
	require.NotEmpty(t, reqs)
	assert.True(t, proto.Equal(b.GetNode(), reqs[0].GetNode()), "first ADS request carries the bootstrap's node")
	for _, r := range reqs[1:] {
		assert.Nil(t, r.GetNode())
	}
	for _, r := range reqs {
		assert.NotEqual(t, resource.SecretType, r.GetTypeUrl(), "secrets asked for on ADS")
	}

	// The secrets came over SDS, one stream a name, node on the first
	// message, each ACKed, and they are in force.
	assert.Equal(t, u.cert.Serial.String(), s.CertSerial())
	require.Eventually(t, func() bool {
		streams := u.sds.snapshot()
		acked := 0
		for _, st := range streams {
			if len(st) >= 2 && st[1].GetResponseNonce() != "" && st[1].GetErrorDetail() == nil && st[1].GetVersionInfo() == "s1" {
				acked++
			}
		}
		return len(streams) == 2 && acked == 2
	}, rigWait, 10*time.Millisecond)
	var names []string
	for _, st := range u.sds.snapshot() {
		require.Len(t, st[0].GetResourceNames(), 1)
		names = append(names, st[0].GetResourceNames()[0])
		assert.True(t, proto.Equal(b.GetNode(), st[0].GetNode()))
		assert.Nil(t, st[1].GetNode())
	}
	assert.ElementsMatch(t, []string{"default", "ROOTCA"}, names)

	// The counters pilot-agent reads, with the values the updates gave.
	_, body = httpGet(t, adminURL+`/stats?usedonly&filter=^(cluster_manager\.cds|listener_manager\.lds)\.(update_success|update_rejected)$`)
	assert.Equal(t, fmt.Sprintf("cluster_manager.cds.update_success: %d\nlistener_manager.lds.update_success: %d\n", cds, lds), body)
	_, body = httpGet(t, adminURL+`/stats?usedonly&filter=^(server\.state|listener_manager\.workers_started)`)
	assert.Equal(t, "listener_manager.workers_started: 1\nserver.state: 0\n", body)
	_, body = httpGet(t, adminURL+`/server_info`)
	// protojson varies its whitespace on purpose: compare values, not text.
	var info struct{ State string }
	require.NoError(t, json.Unmarshal([]byte(body), &info))
	assert.Equal(t, "LIVE", info.State)
	_, body = httpGet(t, adminURL+`/config_dump`)
	assert.Contains(t, body, `"dynamic_active_clusters"`)
	assert.Contains(t, body, `"name": "ROOTCA"`)

	// The static listeners: 15021's /healthz/ready goes to the agent,
	// 15090's /stats/prometheus to the admin's metrics, nothing else routes.
	code, body = httpGet(t, "http://"+u.health+"/healthz/ready")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "agent says ready", body)
	assert.Equal(t, "/healthz/ready", <-u.agentRequests)
	code, body = httpGet(t, "http://"+u.prom+"/stats/prometheus")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "meshbench_sds_certificate_rotations_total")
	code, _ = httpGet(t, "http://"+u.health+"/stats/prometheus")
	assert.Equal(t, http.StatusNotFound, code)

	// Health check fail and ok, and /quitquitquit.
	resp, err := http.Post(adminURL+"/healthcheck/fail", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	code, body = httpGet(t, adminURL+"/ready")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "DRAINING\n", body)
	resp, err = http.Post(adminURL+"/healthcheck/ok", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	code, _ = httpGet(t, adminURL+"/quitquitquit")
	assert.Equal(t, http.StatusMethodNotAllowed, code)
	resp, err = http.Post(adminURL+"/quitquitquit", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	select {
	case <-s.Quit():
	case <-time.After(time.Second):
		t.Fatal("/quitquitquit did not ask the proxy to exit")
	}
}

// TestBootstrapUnknownFieldNeedsAllowUnknown: Envoy refuses an unknown
// static field unless --allow-unknown-static-fields.
func TestBootstrapUnknownFieldNeedsAllowUnknown(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "b.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"node": {"id": "x", "not_a_field": 1}}`), 0o644))
	_, err := LoadBootstrap(path, "", false)
	require.ErrorContains(t, err, "not_a_field")
	b, err := LoadBootstrap(path, "", true)
	require.NoError(t, err)
	assert.Equal(t, "x", b.GetNode().GetId())
}

// TestBootstrapRefusesWhatItWouldIgnore: a field that changes behaviour
// and is not implemented is refused by name.
func TestBootstrapRefusesWhatItWouldIgnore(t *testing.T) {
	u := newUnderAgent(t)
	b, err := LoadBootstrap(u.path, "", true)
	require.NoError(t, err)
	for name, mutate := range map[string]func(){
		"DELTA_GRPC": func() { b.DynamicResources.AdsConfig.ApiType = core.ApiConfigSource_DELTA_GRPC },
		"hds_config": func() { b.HdsConfig = &core.ApiConfigSource{} },
		"metadata_discovery": func() {
			b.BootstrapExtensions = append(b.BootstrapExtensions, &core.TypedExtensionConfig{Name: "metadata_discovery"})
		},
		"envoy.tracers.datadog": func() {
			//lint:ignore SA1019 the deprecated field is what is refused
			b.Tracing = &tracev3.Tracing{Http: &tracev3.Tracing_Http{Name: "envoy.tracers.datadog"}}
		},
	} {
		b, err = LoadBootstrap(u.path, "", true)
		require.NoError(t, err)
		mutate()
		_, err := FromBootstrap(b, u.dir)
		assert.ErrorContains(t, err, name)
	}
}
