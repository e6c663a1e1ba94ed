package fidelity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	admin "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	// Every Envoy extension type istiod may put in a typed config
	// (filter_types.gen.go imports them all for istiod's own binary), so
	// that the dump's Any fields resolve to the messages istiod marshalled.
	_ "istio.io/istio/pkg/config/xds"
)

// ParseConfigDump reads what istiod's /debug/config_dump?proxyID= serves
// (an Envoy admin ConfigDump as JSON, pilot/pkg/xds/debug.go
// connectionConfigDump: ClustersConfigDump, ListenersConfigDump,
// RoutesConfigDump, ... in that order) and returns its dynamic clusters and
// route configurations as a Side. Listeners and endpoints are left out: the
// live check compares clusters and routes only (the registry of a kind
// mesh holds placeholder addresses, not the pods').
//
// Typed configs (google.protobuf.Any) are parsed with the types this module
// links, which include every extension Istio's own binary links. A typed
// config whose type is not among them is kept as an Any with its type URL
// and an empty value, and its URL is returned in unresolved: Flatten then
// shows it as that @type alone. Nothing the comparison reads is such a
// config (a cluster's upstream HTTP options and a route's fault filter
// config are both linked); anywhere else, the JSON stays strictly parsed (an
// unknown field of a known message is an error).
func ParseConfigDump(raw []byte) (side Side, unresolved []string, err error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // 64-bit values stay exact on the way back out
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return Side{}, nil, fmt.Errorf("config dump: %w (starts %q)", err, head(raw))
	}
	unknown := map[string]bool{}
	tree = opaqueUnknownAnys(tree, unknown)
	clean, err := json.Marshal(tree)
	if err != nil {
		return Side{}, nil, err
	}
	var dump admin.ConfigDump
	if err := (protojson.UnmarshalOptions{Resolver: opaqueResolver{protoregistry.GlobalTypes}}).Unmarshal(clean, &dump); err != nil {
		return Side{}, nil, fmt.Errorf("config dump: %w", err)
	}
	for _, c := range dump.GetConfigs() {
		switch c.GetTypeUrl() {
		case "type.googleapis.com/envoy.admin.v3.ClustersConfigDump":
			cd := &admin.ClustersConfigDump{}
			if err := c.UnmarshalTo(cd); err != nil {
				return Side{}, nil, err
			}
			for _, dc := range cd.GetDynamicActiveClusters() {
				cl := &cluster.Cluster{}
				if err := dc.GetCluster().UnmarshalTo(cl); err != nil {
					return Side{}, nil, fmt.Errorf("config dump: a cluster: %w", err)
				}
				side.Clusters = append(side.Clusters, cl)
			}
		case "type.googleapis.com/envoy.admin.v3.RoutesConfigDump":
			rd := &admin.RoutesConfigDump{}
			if err := c.UnmarshalTo(rd); err != nil {
				return Side{}, nil, err
			}
			for _, dr := range rd.GetDynamicRouteConfigs() {
				rc := &route.RouteConfiguration{}
				if err := dr.GetRouteConfig().UnmarshalTo(rc); err != nil {
					return Side{}, nil, fmt.Errorf("config dump: a route configuration: %w", err)
				}
				side.Routes = append(side.Routes, rc)
			}
		}
	}
	for u := range unknown {
		unresolved = append(unresolved, u)
	}
	sort.Strings(unresolved)
	return side, unresolved, nil
}

func head(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}

// opaqueUnknownAnys replaces every typed config (a JSON object with an
// "@type") whose type is not linked by {"@type": url}, recording the URL:
// its fields cannot be read without the type.
func opaqueUnknownAnys(v any, unknown map[string]bool) any {
	switch x := v.(type) {
	case map[string]any:
		if u, ok := x["@type"].(string); ok {
			if _, err := protoregistry.GlobalTypes.FindMessageByURL(u); err != nil {
				unknown[u] = true
				return map[string]any{"@type": u}
			}
		}
		for k, e := range x {
			x[k] = opaqueUnknownAnys(e, unknown)
		}
	case []any:
		for i := range x {
			x[i] = opaqueUnknownAnys(x[i], unknown)
		}
	}
	return v
}

// opaqueResolver resolves the linked types as the global registry does and
// any other type URL to opaque, a message with no fields.
type opaqueResolver struct{ *protoregistry.Types }

func (r opaqueResolver) FindMessageByURL(url string) (protoreflect.MessageType, error) {
	if mt, err := r.Types.FindMessageByURL(url); err == nil {
		return mt, nil
	}
	return opaque, nil
}

// opaque stands for a typed config of a type not linked. It is not a
// well-known type, so protojson reads the Any's fields inline (there are
// none left) and keeps the Any's own type URL.
var opaque = func() protoreflect.MessageType {
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:        proto.String("meshbench/fidelity/opaque.proto"),
		Package:     proto.String("meshbench.fidelity"),
		Syntax:      proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("Opaque")}},
	}, nil)
	if err != nil {
		panic(err)
	}
	return dynamicpb.NewMessageType(fd.Messages().Get(0))
}()
