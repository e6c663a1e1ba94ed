package spec

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/meshbench/meshbench/scenarios/spec/yamlnode"
	"go.yaml.in/yaml/v3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	telemetryv1 "istio.io/client-go/pkg/apis/telemetry/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// IstioObject is one resource of a team's own Istio YAML, read and checked
// exactly as a scenario's mesh files are. One of the typed fields is set.
type IstioObject struct {
	Kind, Namespace, Name string
	// File is the file as the user named it; Line where the object starts.
	File string
	Line int
	// Node is the object as read, to be written out again unchanged.
	Node *yaml.Node

	VirtualService      *networkingv1.VirtualService
	DestinationRule     *networkingv1.DestinationRule
	Gateway             *networkingv1.Gateway
	PeerAuthentication  *securityv1.PeerAuthentication
	AuthorizationPolicy *securityv1.AuthorizationPolicy
	HTTPRoute           *gatewayv1.HTTPRoute
	GRPCRoute           *gatewayv1.GRPCRoute
	Telemetry           *telemetryv1.Telemetry

	ix *nodeIndex
}

// LineOf is the line of a field of the object ("spec.http[0].route[1].weight");
// for an absent field, its nearest present ancestor's.
func (o *IstioObject) LineOf(field string) int { return o.ix.line(field) }

// Has reports whether the object sets the field.
func (o *IstioObject) Has(field string) bool { return o.ix.has(field) }

// Skipped is a document of the input that is not an object meshbench
// simulates, and why.
type Skipped struct {
	File             string
	Line             int
	APIVersion, Kind string
	Name             string
	// Istio is true for a resource of an Istio or Gateway API group that
	// meshbench does not simulate (a Sidecar, a ServiceEntry): it changes
	// what the mesh does, so what it promises is not checked. Other kinds
	// (Deployments, Services) say nothing about the mesh's behaviour.
	Istio bool
}

// IstioInput is one file of Istio YAML: its name as the user gave it and
// its content.
type IstioInput struct {
	Name string
	Data []byte
}

// ReadInputFile reads a file the way the loader reads mesh files: regular
// files only, at most MaxFileSize.
func ReadInputFile(fsys fs.FS, name string) ([]byte, error) { return readInputFile(fsys, name) }

// istioGroups are the API groups whose kinds change the mesh's behaviour.
var istioGroups = []string{"networking.istio.io", "security.istio.io", "telemetry.istio.io", "extensions.istio.io", "gateway.networking.k8s.io"}

// ReadIstio reads Istio YAML as a team keeps it: multi-document files, and
// the `kind: List` that kubectl get -o yaml prints. Every resource of a
// kind the scenario loader takes is checked as strictly as a mesh file's,
// its objects in namespace when they name none; the rest are returned as
// Skipped. Problems come as Errors with file, line and field.
func ReadIstio(inputs []IstioInput, namespace string) ([]*IstioObject, []Skipped, error) {
	l := &loader{budget: newNodeBudget(), defaultNS: namespace}
	var objs []*IstioObject
	var skipped []Skipped
	for _, in := range inputs {
		if l.overBudget {
			break
		}
		l.inputBytes += len(in.Data)
		if len(in.Data) > MaxFileSize {
			l.add(in.Name, 0, "", "the file is larger than %s", sizeText(MaxFileSize))
			continue
		}
		if l.inputBytes > MaxTotalInput {
			l.add(in.Name, 0, "", "the files add up to more than %s", sizeText(MaxTotalInput))
			break
		}
		l.eachDocument(in.Data, in.Name, func(n *yaml.Node) {
			o, s := l.readIstioDocument(n, in.Name)
			objs = append(objs, o...)
			skipped = append(skipped, s...)
		})
	}
	if len(l.errs) > 0 {
		l.errs.Sort()
		return nil, nil, l.errs
	}
	return objs, skipped, nil
}

// readIstioDocument reads one document: an object, or a List of them.
func (l *loader) readIstioDocument(n *yaml.Node, file string) ([]*IstioObject, []Skipped) {
	n = yamlnode.Deref(n)
	if n.Kind != yaml.MappingNode || !hasAnyKey(n, []string{"apiVersion", "kind"}) {
		l.add(file, n.Line, "", "want a Kubernetes object (apiVersion, kind, metadata, spec), got %s", yamlnode.DescribeKind(n))
		return nil, nil
	}
	apiVersion, kind := scalarField(n, "apiVersion"), scalarField(n, "kind")
	if kind == "List" && apiVersion == "v1" {
		items := mappingValue(n, "items")
		if items == nil || yamlnode.IsNull(items) {
			return nil, nil
		}
		if items.Kind != yaml.SequenceNode {
			l.add(file, items.Line, "items", "want a list of objects, got %s", yamlnode.DescribeKind(items))
			return nil, nil
		}
		var objs []*IstioObject
		var skipped []Skipped
		for _, it := range items.Content {
			o, s := l.readIstioDocument(it, file)
			objs = append(objs, o...)
			skipped = append(skipped, s...)
		}
		return objs, skipped
	}
	group, _, _ := strings.Cut(apiVersion, "/")
	if !strings.Contains(apiVersion, "/") {
		group = "" // the core group: v1
	}
	istio := contains(istioGroups, group)
	taken := istio && contains(kinds, kind) && (kind != "Gateway" || group == "networking.istio.io")
	if !taken {
		name := ""
		if m := mappingValue(n, "metadata"); m != nil {
			name = scalarField(m, "name")
		}
		return nil, []Skipped{{File: file, Line: n.Line, APIVersion: apiVersion, Kind: kind, Name: name, Istio: istio}}
	}
	n = withoutServerFields(n)
	mo := l.parseObject(n, file, "")
	if mo == nil {
		return nil, nil
	}
	return []*IstioObject{{
		Kind: mo.kind, Namespace: mo.namespace, Name: mo.name, File: file, Line: n.Line, Node: n,
		VirtualService: mo.vs, DestinationRule: mo.dr, Gateway: mo.gw, PeerAuthentication: mo.pa,
		AuthorizationPolicy: mo.ap, HTTPRoute: mo.hr, GRPCRoute: mo.gr, Telemetry: mo.tm, ix: mo.ix,
	}}, nil
}

// mappingValue is the value of key in the mapping n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	n = yamlnode.Deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return yamlnode.Deref(n.Content[i+1])
		}
	}
	return nil
}

// scalarField is the string value of key in the mapping n, or "".
func scalarField(n *yaml.Node, key string) string {
	if v := mappingValue(n, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

// String is "Kind namespace/name (file:line)".
func (o *IstioObject) String() string {
	return fmt.Sprintf("%s %s/%s (%s:%d)", o.Kind, o.Namespace, o.Name, o.File, o.Line)
}

// serverMetadata are the metadata fields the API server sets, which
// kubectl get -o yaml prints (ObjectMeta in k8s.io/apimachinery
// pkg/apis/meta/v1/types.go): they say nothing of the mesh.
var serverMetadata = []string{"resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences", "finalizers"}

// withoutServerFields is the object without what the API server adds to
// what was applied: its status and server-set metadata. The spec is left
// as it is, to be checked strictly.
func withoutServerFields(n *yaml.Node) *yaml.Node {
	drop := func(m *yaml.Node, keys []string) *yaml.Node {
		out := *m
		out.Content = nil
		for i := 0; i+1 < len(m.Content); i += 2 {
			if !contains(keys, m.Content[i].Value) {
				out.Content = append(out.Content, m.Content[i], m.Content[i+1])
			}
		}
		return &out
	}
	out := drop(n, []string{"status"})
	for i := 0; i+1 < len(out.Content); i += 2 {
		if out.Content[i].Value == "metadata" && yamlnode.Deref(out.Content[i+1]).Kind == yaml.MappingNode {
			out.Content[i+1] = drop(yamlnode.Deref(out.Content[i+1]), serverMetadata)
		}
	}
	return out
}
