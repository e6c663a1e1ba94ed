package fidelity

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	admin "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	fault "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// unlinkedType is a typed config no linked package defines.
const unlinkedType = "type.googleapis.com/example.NotLinked"

// testDump is an admin ConfigDump as istiod's debug handler writes it: one
// cluster with a typed config of a type this module does not link, one
// route configuration with a fault filter config.
func testDump(t *testing.T) (raw []byte, c *cluster.Cluster, rc *route.RouteConfiguration) {
	t.Helper()
	c = &cluster.Cluster{
		Name:           "outbound|80||payment.default.svc.cluster.local",
		ConnectTimeout: durationpb.New(10e9),
		LbPolicy:       cluster.Cluster_LEAST_REQUEST,
		// Stands for istio.metadata_exchange: its typed config is replaced below.
		Filters: []*cluster.Filter{{Name: "istio.metadata_exchange", TypedConfig: mustAny(t, &core.Metadata{})}},
	}
	rc = &route.RouteConfiguration{Name: "80", VirtualHosts: []*route.VirtualHost{{
		Name: "payment.default.svc.cluster.local:80", Domains: []string{"payment"},
		Routes: []*route.Route{{
			Match:                &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
			Action:               &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: c.Name}}},
			TypedPerFilterConfig: map[string]*anypb.Any{FaultFilter: mustAny(t, &fault.HTTPFault{})},
		}},
	}}}
	d := &admin.ConfigDump{Configs: []*anypb.Any{
		mustAny(t, &admin.BootstrapConfigDump{}),
		mustAny(t, &admin.ClustersConfigDump{DynamicActiveClusters: []*admin.ClustersConfigDump_DynamicCluster{{Cluster: mustAny(t, c)}}}),
		mustAny(t, &admin.RoutesConfigDump{DynamicRouteConfigs: []*admin.RoutesConfigDump_DynamicRouteConfig{{RouteConfig: mustAny(t, rc)}}}),
	}}
	pj, err := protojson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	// protojson varies its white space on purpose: compact it.
	var buf bytes.Buffer
	if err := json.Compact(&buf, pj); err != nil {
		t.Fatal(err)
	}
	raw = buf.Bytes()
	// The metadata stand-in becomes a config of a type not linked, with a field.
	const md = `{"@type":"type.googleapis.com/envoy.config.core.v3.Metadata"}`
	if !strings.Contains(string(raw), md) {
		t.Fatalf("no %s in %s", md, raw)
	}
	raw = []byte(strings.Replace(string(raw), md, `{"@type":"`+unlinkedType+`","protocol":"istio-peer-exchange"}`, 1))
	return raw, c, rc
}

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A config dump's clusters and routes come back as they were; a typed
// config of a type not linked is kept by its type URL, and said so.
func TestParseConfigDump(t *testing.T) {
	raw, c, rc := testDump(t)
	side, unresolved, err := ParseConfigDump(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(unresolved) != 1 || unresolved[0] != unlinkedType {
		t.Errorf("unresolved = %v, want [%s]", unresolved, unlinkedType)
	}
	if len(side.Clusters) != 1 || len(side.Routes) != 1 || side.Listeners != nil || side.Endpoints != nil {
		t.Fatalf("got %d clusters, %d routes, %d listeners, %d endpoints; want 1, 1, 0, 0",
			len(side.Clusters), len(side.Routes), len(side.Listeners), len(side.Endpoints))
	}
	if got := side.Clusters[0].GetFilters()[0].GetTypedConfig(); got.GetTypeUrl() != unlinkedType || len(got.GetValue()) != 0 {
		t.Errorf("the unlinked config came back as %v, want its type URL and no value", got)
	}
	scope := Scope{Hosts: map[string]map[int]bool{"payment.default.svc.cluster.local": {80: true}}}
	if d := Compare(Side{Clusters: []*cluster.Cluster{c}, Routes: []*route.RouteConfiguration{rc}}, side, scope); len(d) != 0 {
		t.Errorf("the parsed dump differs from what was dumped: %v", d)
	}
}

// An unknown field of a linked message is an error, not dropped.
func TestParseConfigDumpRefusesUnknownFields(t *testing.T) {
	raw, _, _ := testDump(t)
	bad := strings.Replace(string(raw), `"lbPolicy":`, `"lbPolicyy":`, 1)
	if bad == string(raw) {
		t.Fatal("no lbPolicy in the dump")
	}
	if _, _, err := ParseConfigDump([]byte(bad)); err == nil || !strings.Contains(err.Error(), "lbPolicyy") {
		t.Errorf("err = %v, want one naming lbPolicyy", err)
	}
}
