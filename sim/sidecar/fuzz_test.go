package sidecar

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbacfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// The fuzz targets feed the sidecar's xDS compilers what a control plane
// (or anything that reaches the xDS stream) could send: RouteConfigurations
// and RBAC filters as wire bytes. The seeds are what xdsgen generates for
// the scenario catalog (scenarios/catalog), read here without the scenarios
// package, which imports this one.

const catalogDir = "../../scenarios/catalog"

// catalogMesh is one catalog scenario's topology and Istio objects.
type catalogMesh struct {
	topo registry.Topology
	cfg  meshconfig.Config
}

// readCatalog reads every catalog scenario's topology and Istio objects
// (inline and from its mesh files); objects that do not decode are skipped.
func readCatalog(f *testing.F) []catalogMesh {
	f.Helper()
	names, err := filepath.Glob(filepath.Join(catalogDir, "*.yaml"))
	if err != nil || len(names) == 0 {
		f.Fatalf("no catalog in %s: %v", catalogDir, err)
	}
	var out []catalogMesh
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		var sc struct {
			Topology *registry.Topology `yaml:"topology"`
			Mesh     []yaml.Node        `yaml:"mesh"`
		}
		if err := yaml.Unmarshal(data, &sc); err != nil {
			f.Fatalf("%s: %v", name, err)
		}
		m := catalogMesh{topo: registry.DefaultTopology(), cfg: meshconfig.Config{Origin: map[string]string{}}}
		if sc.Topology != nil {
			m.topo = *sc.Topology
		}
		ns := m.topo.Namespace
		if ns == "" {
			ns = "default"
		}
		for i := range sc.Mesh {
			for _, obj := range meshObjects(&sc.Mesh[i]) {
				addObject(&m.cfg, obj, ns)
			}
		}
		out = append(out, m)
	}
	return out
}

// meshObjects are the objects of one mesh entry: inline, or every document
// of the file it names.
func meshObjects(entry *yaml.Node) []map[string]any {
	var e struct {
		File string `yaml:"file"`
	}
	if entry.Decode(&e) != nil {
		return nil
	}
	if e.File == "" {
		var obj map[string]any
		if entry.Decode(&obj) != nil {
			return nil
		}
		return []map[string]any{obj}
	}
	data, err := os.ReadFile(filepath.Join(catalogDir, e.File))
	if err != nil {
		return nil
	}
	var out []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var obj map[string]any
		if dec.Decode(&obj) != nil {
			return out
		}
		if obj != nil {
			out = append(out, obj)
		}
	}
}

// addObject decodes obj by its kind into cfg, through JSON as the API
// server would hand it over, in namespace ns if it names none.
func addObject(cfg *meshconfig.Config, obj map[string]any, ns string) {
	if meta, ok := obj["metadata"].(map[string]any); ok && meta["namespace"] == nil {
		meta["namespace"] = ns
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return
	}
	decode := func(v any) bool { return json.Unmarshal(b, v) == nil }
	switch obj["kind"] {
	case "VirtualService":
		if v := (&networkingv1.VirtualService{}); decode(v) {
			cfg.VirtualServices = append(cfg.VirtualServices, v)
		}
	case "DestinationRule":
		if v := (&networkingv1.DestinationRule{}); decode(v) {
			cfg.DestinationRules = append(cfg.DestinationRules, v)
		}
	case "Gateway":
		if v := (&networkingv1.Gateway{}); decode(v) {
			cfg.Gateways = append(cfg.Gateways, v)
		}
	case "PeerAuthentication":
		if v := (&securityv1.PeerAuthentication{}); decode(v) {
			cfg.PeerAuthentications = append(cfg.PeerAuthentications, v)
		}
	case "AuthorizationPolicy":
		if v := (&securityv1.AuthorizationPolicy{}); decode(v) {
			cfg.AuthorizationPolicies = append(cfg.AuthorizationPolicies, v)
		}
	}
}

// catalogResources is what xdsgen generates for every pod of every catalog
// scenario.
func catalogResources(f *testing.F) []xdsgen.Resources {
	f.Helper()
	var out []xdsgen.Resources
	for _, m := range readCatalog(f) {
		next := byte(10)
		alloc := func() (netip.Addr, error) { next++; return netip.AddrFrom4([4]byte{127, 64, 0, next}), nil }
		reg, err := registry.New(registry.WithDefaults(m.topo), alloc)
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range reg.Pods {
			p.AppAddr = netip.AddrPortFrom(p.IP, 18080).String()
		}
		gen := xdsgen.New(reg, m.cfg)
		for _, p := range reg.Pods {
			out = append(out, gen.ForSidecar(p))
		}
	}
	return out
}

// rbacFiltersOf are the RBAC filters of a listener's HTTP connection managers.
func rbacFiltersOf(l *listener.Listener) []*rbacfilter.RBAC {
	var out []*rbacfilter.RBAC
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			m := &hcm.HttpConnectionManager{}
			if f.GetTypedConfig().UnmarshalTo(m) != nil {
				continue
			}
			for _, hf := range m.GetHttpFilters() {
				r := &rbacfilter.RBAC{}
				if hf.GetName() == rbacFilterName && hf.GetTypedConfig().UnmarshalTo(r) == nil {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// fuzzRequests are what a compiled config is matched against.
func fuzzRequests() []*http.Request {
	a := httptest.NewRequest("GET", "http://payment.default.svc.cluster.local/pay?user=jason", nil)
	a.Header.Set("end-user", "jason")
	b := httptest.NewRequest("POST", "http://order:80/orders/42", nil)
	b.Header.Set("x-team", "checkout")
	b.Header.Set("content-type", "application/json")
	return []*http.Request{a, b}
}

// FuzzCompileRoutes: any RouteConfiguration either NACKs with an error or
// compiles into a table that matches requests and picks clusters without
// panicking.
func FuzzCompileRoutes(f *testing.F) {
	seen := map[string]bool{}
	for _, res := range catalogResources(f) {
		for _, rc := range res.Routes {
			if b, err := proto.Marshal(rc); err == nil && !seen[string(b)] {
				seen[string(b)] = true
				f.Add(b)
			}
		}
	}
	reqs := fuzzRequests()
	f.Fuzz(func(t *testing.T, data []byte) {
		rc := &route.RouteConfiguration{}
		if proto.Unmarshal(data, rc) != nil {
			return
		}
		rt, err := compileRoutes(rc, "1")
		if err != nil {
			return
		}
		n := uint64(0)
		rnd := func() uint64 { n += 0x9e3779b97f4a7c15; return n }
		for _, r := range reqs {
			for _, vh := range append(rt.vhosts, rt.virtualHost(r.Host)) {
				if vh == nil {
					continue
				}
				if cr := vh.match(r); cr != nil {
					_ = cr.pickCluster(rnd)
				}
			}
		}
	})
}

// FuzzRouteRegexMatch: a path regex compiles as RE2 or NACKs, and a
// compiled one matches a path exactly when the whole path matches it, as
// Envoy's safe_regex does.
func FuzzRouteRegexMatch(f *testing.F) {
	for _, s := range [][2]string{{"/pay/[0-9]+", "/pay/42"}, {"ja(son", "/json"}, {"/orders/.*", "/orders/1"}, {"a|b", "/a"}, {"(?i)/PAY", "/pay"}, {"", "/"}, {"/x$|^/y", "/y"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, expr, path string) {
		r := &route.Route{
			Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: expr}}},
			Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "c"}}},
		}
		cr, err := compileRoute(r)
		want, werr := regexp.Compile("^(?:" + expr + ")$")
		if (err == nil) != (werr == nil) {
			t.Fatalf("regex %q: compiled %v, RE2 says %v", expr, err, werr)
		}
		if err != nil {
			return
		}
		req := httptest.NewRequest("GET", "http://payment/", nil)
		req.URL.Path = path
		if got := cr.match.matches(req); got != want.MatchString(path) {
			t.Fatalf("regex %q on path %q: matched %v, want %v", expr, path, got, !got)
		}
	})
}

// FuzzCompileRBAC: any RBAC filter config either NACKs with an error or
// compiles into policies that judge requests without panicking.
func FuzzCompileRBAC(f *testing.F) {
	seen := map[string]bool{}
	for _, res := range catalogResources(f) {
		for _, l := range res.Listeners {
			for _, r := range rbacFiltersOf(l) {
				if b, err := proto.Marshal(r); err == nil && !seen[string(b)] {
					seen[string(b)] = true
					f.Add(b)
				}
			}
		}
	}
	reqs := fuzzRequests()
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &rbacfilter.RBAC{}
		if proto.Unmarshal(data, r) != nil {
			return
		}
		typed, err := anypb.New(r)
		if err != nil {
			return
		}
		confs, err := compileRBACFilters([]*hcm.HttpFilter{{Name: rbacFilterName, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: typed}}})
		if err != nil {
			return
		}
		for _, req := range reqs {
			for _, principal := range []string{"", "spiffe://cluster.local/ns/default/sa/order"} {
				_ = allowed(confs, rbacInput{r: req, principal: principal})
			}
		}
	})
}
