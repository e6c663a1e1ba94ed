package sidecar

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	// The types Istio's bootstrap template (tools/packaging/common/envoy_bootstrap.json)
	// names in typed_config, so that protojson can read them.
	_ "github.com/cncf/xds/go/udpa/type/v1"
	_ "github.com/cncf/xds/go/xds/type/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/metrics/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/bootstrap/internal_listener/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/brotli/compressor/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/gzip/compressor/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/zstd/compressor/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/compressor/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/proxy_protocol/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/downstream_connections/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// LoadBootstrap reads an Envoy bootstrap (envoy.config.bootstrap.v3) as
// Envoy's -c does: YAML for a .yaml or .yml file, JSON otherwise; then
// merges configYAML (--config-yaml) over it, as Envoy does. Unknown fields
// are an error unless allowUnknown (--allow-unknown-static-fields), which
// pilot-agent always passes (pkg/envoy/proxy.go).
func LoadBootstrap(path, configYAML string, allowUnknown bool) (*bootstrapv3.Bootstrap, error) {
	b := &bootstrapv3.Bootstrap{}
	opts := protojson.UnmarshalOptions{DiscardUnknown: allowUnknown}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if ext := filepath.Ext(path); ext == ".yaml" || ext == ".yml" {
			if data, err = yamlToJSON(data); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		}
		if err := opts.Unmarshal(data, b); err != nil {
			return nil, fmt.Errorf("unable to parse JSON as proto (%s): %w", path, err)
		}
	}
	if configYAML != "" {
		data, err := yamlToJSON([]byte(configYAML))
		if err != nil {
			return nil, fmt.Errorf("--config-yaml: %w", err)
		}
		over := &bootstrapv3.Bootstrap{}
		if err := opts.Unmarshal(data, over); err != nil {
			return nil, fmt.Errorf("--config-yaml: unable to parse as proto: %w", err)
		}
		proto.Merge(b, over)
	}
	if path == "" && configYAML == "" {
		return nil, errors.New("at least one of --config-path or --config-yaml must be given")
	}
	return b, nil
}

func yamlToJSON(data []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// bootstrapIgnored are the top-level bootstrap fields the sidecar reads
// nothing from; docs/fidelity.md ("Under pilot-agent") says why each is
// safe to ignore. Any other field set that FromBootstrap does not act on
// is refused.
var bootstrapIgnored = map[protoreflect.Name]bool{
	"application_log_config": true, "layered_runtime": true, "stats_config": true,
	"stats_flush_interval": true, "stats_eviction_interval": true, "overload_manager": true,
	"stats_sinks": true, "deferred_stat_options": true, "cluster_manager": true,
	"bootstrap_extensions": true, // checked below: only the internal listener extension
}

// bootstrapTracing refuses the bootstrap's tracing provider: Envoy uses it
// for an HCM whose tracing names no provider, which the sidecar does not
// do (istiod puts the provider in each HCM's tracing, sim/sidecar
// tracing.go); an empty tracing is nothing.
func bootstrapTracing(b *bootstrapv3.Bootstrap) error {
	//lint:ignore SA1019 a deprecated field set must still be refused, not ignored
	h := b.GetTracing().GetHttp()
	if h == nil {
		return nil
	}
	return fmt.Errorf("bootstrap tracing provider %q (%s) is not supported by meshbench's sidecar: it traces with the provider of each HTTP connection manager's tracing",
		h.GetName(), h.GetTypedConfig().GetTypeUrl())
}

// FromBootstrap derives the sidecar's config from the bootstrap pilot-agent
// writes (tools/packaging/common/envoy_bootstrap.json, rendered by
// pkg/bootstrap). cwd resolves relative pipe paths, as Envoy resolves them
// against its working directory.
func FromBootstrap(b *bootstrapv3.Bootstrap, cwd string) (Config, error) {
	var cfg Config
	var bad error
	b.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		switch n := fd.Name(); {
		case n == "node" || n == "static_resources" || n == "dynamic_resources" || n == "admin":
		case bootstrapIgnored[n]:
		case n == "tracing":
			bad = bootstrapTracing(b)
			return bad == nil
		default:
			bad = fmt.Errorf("bootstrap field %s is not supported by meshbench's sidecar", n)
			return false
		}
		return true
	})
	if bad != nil {
		return cfg, bad
	}
	for _, e := range b.GetBootstrapExtensions() {
		if e.GetName() != "envoy.bootstrap.internal_listener" {
			return cfg, fmt.Errorf("bootstrap extension %q is not supported by meshbench's sidecar", e.GetName())
		}
	}
	if err := nodeIdentity(&cfg, b.GetNode()); err != nil {
		return cfg, err
	}
	cfg.Bootstrap = b

	// Static clusters by name: a socket address, or a pipe for the gRPC ones.
	statics := map[string]*cluster.Cluster{}
	for _, c := range b.GetStaticResources().GetClusters() {
		statics[c.GetName()] = c
	}
	if len(b.GetStaticResources().GetSecrets()) > 0 {
		return cfg, errors.New("bootstrap static secrets are not supported; secrets come over SDS")
	}

	// ADS: dynamic_resources.ads_config → the cluster it names → its pipe.
	dr := b.GetDynamicResources()
	ads := dr.GetAdsConfig()
	if ads == nil {
		return cfg, errors.New("bootstrap has no dynamic_resources.ads_config; meshbench's sidecar takes its config over ADS only")
	}
	switch ads.GetApiType() {
	case core.ApiConfigSource_GRPC:
	case core.ApiConfigSource_DELTA_GRPC:
		return cfg, errors.New("ads_config api_type DELTA_GRPC: meshbench's sidecar speaks State-of-the-World xDS only; " +
			"set ISTIO_DELTA_XDS=false in the proxy's environment (meshConfig.defaultConfig.proxyMetadata) so pilot-agent writes GRPC")
	default:
		return cfg, fmt.Errorf("ads_config api_type %s is not supported", ads.GetApiType())
	}
	for name, cs := range map[string]*core.ConfigSource{"lds_config": dr.GetLdsConfig(), "cds_config": dr.GetCdsConfig()} {
		if cs.GetAds() == nil {
			return cfg, fmt.Errorf("dynamic_resources.%s must be ads", name)
		}
		// Envoy's default initial_fetch_timeout is 15s, after which it goes on
		// without the resource; the sidecar waits as Istio's "0s" asks.
		if t := cs.GetInitialFetchTimeout(); t == nil || t.AsDuration() != 0 {
			return cfg, fmt.Errorf("dynamic_resources.%s.initial_fetch_timeout must be 0s (wait for the first update), as Istio sets it", name)
		}
	}
	if len(dr.GetLdsResourcesLocator()+dr.GetCdsResourcesLocator()) > 0 {
		return cfg, errors.New("dynamic_resources: only lds_config, cds_config and ads_config are supported")
	}
	xdsCluster, err := grpcCluster(ads.GetGrpcServices())
	if err != nil {
		return cfg, fmt.Errorf("ads_config: %w", err)
	}
	if cfg.XDS, err = pipeOf(statics[xdsCluster], xdsCluster, cwd); err != nil {
		return cfg, err
	}
	cfg.NodeOnFirstMessageOnly = ads.GetSetNodeOnFirstMessageOnly()
	if c, ok := statics["sds-grpc"]; ok {
		if cfg.SDS, err = pipeOf(c, "sds-grpc", cwd); err != nil {
			return cfg, err
		}
	}

	// The admin.
	if a := b.GetAdmin().GetAddress(); a != nil {
		if cfg.Admin, err = socketAddr(a); err != nil {
			return cfg, fmt.Errorf("admin.address: %w", err)
		}
	} else {
		return cfg, errors.New("bootstrap has no admin.address; pilot-agent reads the proxy's readiness from it")
	}

	// The static listeners.
	for _, l := range b.GetStaticResources().GetListeners() {
		sl, err := staticListener(l, statics)
		if err != nil {
			return cfg, fmt.Errorf("static listener %s: %w", l.GetName(), err)
		}
		cfg.StaticListeners = append(cfg.StaticListeners, sl)
	}
	return cfg, nil
}

// nodeIdentity reads the workload's identity from Istio's node metadata
// (pkg/model's NodeMetadata: NAMESPACE, WORKLOAD_NAME, LABELS,
// SERVICE_ACCOUNT, INSTANCE_IPS), as the proxy's stats extension does.
func nodeIdentity(cfg *Config, n *core.Node) error {
	if n.GetId() == "" {
		return errors.New("bootstrap node.id is empty")
	}
	cfg.Node, cfg.NodeID = n, n.GetId()
	// Under pilot-agent, istio-iptables redirects the pod's traffic (or,
	// for a gateway, its listeners bind their own addresses): listeners
	// bind as istiod's LDS says and dispatch by original destination.
	cfg.Intercept = true
	// The node id is TYPE~IP~POD.NS~NS.svc.DOMAIN; pilot-agent writes
	// "router" for `proxy router`, a gateway (pkg/model/proxy.go NodeType).
	switch typ, _, _ := strings.Cut(n.GetId(), "~"); typ {
	case "sidecar":
	case "router":
		cfg.Router = true
	default:
		return fmt.Errorf("bootstrap node.id %q: proxy type %q is not supported (sidecar or router)", n.GetId(), typ)
	}
	md := n.GetMetadata().GetFields()
	str := func(k string) string { return md[k].GetStringValue() }
	cfg.Namespace, cfg.Workload = str("NAMESPACE"), str("WORKLOAD_NAME")
	labels := md["LABELS"].GetStructValue().GetFields()
	label := func(keys ...string) string {
		for _, k := range keys {
			if v := labels[k].GetStringValue(); v != "" {
				return v
			}
		}
		return ""
	}
	cfg.App = label("app", "service.istio.io/canonical-name", "app.kubernetes.io/name")
	cfg.Version = label("version", "service.istio.io/canonical-revision", "app.kubernetes.io/version")
	if sa := str("SERVICE_ACCOUNT"); sa != "" && cfg.Namespace != "" {
		// Istio's default trust domain; the certificate SDS delivers carries the real one.
		cfg.Principal = "spiffe://cluster.local/ns/" + cfg.Namespace + "/sa/" + sa
	}
	if ips := str("INSTANCE_IPS"); ips != "" {
		first, _, _ := strings.Cut(ips, ",")
		ip, err := netip.ParseAddr(first)
		if err != nil {
			return fmt.Errorf("node metadata INSTANCE_IPS: %w", err)
		}
		cfg.IP = ip
	} else {
		return errors.New("node metadata has no INSTANCE_IPS: the pod's IP is needed for the inbound listeners")
	}
	return nil
}

func grpcCluster(gs []*core.GrpcService) (string, error) {
	if len(gs) != 1 || gs[0].GetEnvoyGrpc() == nil {
		return "", errors.New("exactly one grpc_services entry with envoy_grpc is supported")
	}
	return gs[0].GetEnvoyGrpc().GetClusterName(), nil
}

// pipeOf is the gRPC address of a static cluster whose one endpoint is a
// pipe (a Unix socket), or a socket address.
func pipeOf(c *cluster.Cluster, name, cwd string) (string, error) {
	if c == nil {
		return "", fmt.Errorf("no static cluster %q", name)
	}
	a, err := oneEndpoint(c)
	if err != nil {
		return "", fmt.Errorf("cluster %s: %w", name, err)
	}
	if p := a.GetPipe(); p != nil {
		path := p.GetPath()
		if strings.HasPrefix(path, "@") {
			return "unix-abstract:" + path[1:], nil
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(cwd, path)
		}
		return "unix://" + path, nil
	}
	return socketAddr(a)
}

func oneEndpoint(c *cluster.Cluster) (*core.Address, error) {
	if t := c.GetType(); t != cluster.Cluster_STATIC {
		return nil, fmt.Errorf("type %s: only STATIC clusters are used", t)
	}
	var addrs []*core.Address
	for _, le := range c.GetLoadAssignment().GetEndpoints() {
		for _, e := range le.GetLbEndpoints() {
			addrs = append(addrs, e.GetEndpoint().GetAddress())
		}
	}
	if len(addrs) != 1 {
		return nil, fmt.Errorf("%d endpoints; one is supported", len(addrs))
	}
	return addrs[0], nil
}

func socketAddr(a *core.Address) (string, error) {
	sa := a.GetSocketAddress()
	if sa == nil || sa.GetProtocol() != core.SocketAddress_TCP {
		return "", errors.New("a TCP socket_address is needed")
	}
	if sa.GetResolverName() != "" || sa.GetIpv4Compat() {
		return "", errors.New("socket_address resolver_name and ipv4_compat are not supported")
	}
	if _, err := netip.ParseAddr(sa.GetAddress()); err != nil {
		return "", fmt.Errorf("address %q: %w", sa.GetAddress(), err)
	}
	return net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue()))), nil
}

// staticListener compiles a listener in the shape of Istio's 15090 and
// 15021 ones: one filter chain, one HTTP connection manager with an inline
// route table of path prefixes to static clusters. Anything else set is
// refused.
func staticListener(l *listener.Listener, statics map[string]*cluster.Cluster) (StaticListener, error) {
	sl := StaticListener{Name: l.GetName()}
	var bad error
	l.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		switch fd.Name() {
		case "name", "address", "additional_addresses", "filter_chains",
			// the global connection limit and the overload manager are ignored anyway
			"ignore_global_conn_limit", "bypass_overload_manager":
		default:
			bad = fmt.Errorf("field %s is not supported", fd.Name())
			return false
		}
		return true
	})
	if bad != nil {
		return sl, bad
	}
	a, err := socketAddr(l.GetAddress())
	if err != nil {
		return sl, err
	}
	sl.Addrs = append(sl.Addrs, a)
	for _, aa := range l.GetAdditionalAddresses() {
		a, err := socketAddr(aa.GetAddress())
		if err != nil {
			return sl, err
		}
		sl.Addrs = append(sl.Addrs, a)
	}
	if len(l.GetFilterChains()) != 1 {
		return sl, errors.New("exactly one filter chain is supported")
	}
	fc := l.GetFilterChains()[0]
	if fc.GetFilterChainMatch() != nil || fc.GetTransportSocket() != nil {
		return sl, errors.New("filter_chain_match and transport_socket are not supported on static listeners")
	}
	if len(fc.GetFilters()) != 1 {
		return sl, errors.New("exactly one network filter (the HTTP connection manager) is supported")
	}
	m := &hcm.HttpConnectionManager{}
	if err := fc.GetFilters()[0].GetTypedConfig().UnmarshalTo(m); err != nil {
		return sl, fmt.Errorf("filter %s: %w", fc.GetFilters()[0].GetName(), err)
	}
	for i, f := range m.GetHttpFilters() {
		switch name := f.GetName(); {
		case name == "envoy.filters.http.router" && i == len(m.GetHttpFilters())-1:
		case strings.HasPrefix(name, "envoy.filters.http.compressor."):
			// Response compression of the stats: the scraper gets them uncompressed.
		default:
			return sl, fmt.Errorf("http filter %s is not supported", name)
		}
	}
	rc := m.GetRouteConfig()
	if rc == nil {
		return sl, errors.New("an inline route_config is needed")
	}
	for _, vh := range rc.GetVirtualHosts() {
		if len(vh.GetDomains()) != 1 || vh.GetDomains()[0] != "*" {
			return sl, fmt.Errorf("virtual host %s: only domains [\"*\"] is supported", vh.GetName())
		}
		for _, r := range vh.GetRoutes() {
			prefix := r.GetMatch().GetPrefix()
			if prefix == "" || len(r.GetMatch().GetHeaders()) > 0 || len(r.GetMatch().GetQueryParameters()) > 0 {
				return sl, errors.New("only path prefix matches are supported")
			}
			name := r.GetRoute().GetCluster()
			c := statics[name]
			if name == "" || c == nil {
				return sl, fmt.Errorf("route to %q: only routes to a static cluster are supported", name)
			}
			up, err := oneEndpoint(c)
			if err != nil {
				return sl, fmt.Errorf("route to %s: %w", name, err)
			}
			addr, err := socketAddr(up)
			if err != nil {
				return sl, fmt.Errorf("route to %s: %w", name, err)
			}
			sl.Routes = append(sl.Routes, StaticRoute{Prefix: prefix, Cluster: name, Upstream: addr})
		}
	}
	return sl, nil
}
