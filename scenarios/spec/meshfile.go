package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	telemetryv1 "istio.io/client-go/pkg/apis/telemetry/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/meshbench/meshbench/internal/suggest"
	"github.com/meshbench/meshbench/scenarios/spec/protoyaml"
	"github.com/meshbench/meshbench/scenarios/spec/yamlnode"
	"github.com/meshbench/meshbench/sim/meshconfig"
)

// Reading the Istio resources of a scenario and its mesh files.

// meshObject is one Istio resource read from the scenario or a mesh file.
type meshObject struct {
	kind, namespace, name string
	file                  string // display name of the file it is in
	prefix                string // field path of the object in its file ("mesh[0]" inline, "" in a mesh file)
	node                  *yaml.Node
	ix                    *nodeIndex // of node, paths relative to the object

	vs *networkingv1.VirtualService
	dr *networkingv1.DestinationRule
	gw *networkingv1.Gateway
	pa *securityv1.PeerAuthentication
	ap *securityv1.AuthorizationPolicy
	hr *gatewayv1.HTTPRoute // Gateway API (validate_gamma.go)
	gr *gatewayv1.GRPCRoute
	tm *telemetryv1.Telemetry // tracing.go
}

// field is the full field path of p (relative to the object) in its file.
func (o *meshObject) field(p string) string { return yamlnode.Join(o.prefix, p) }

// readMesh parses every mesh entry. ok is false when any entry failed to
// parse, in which case cross-resource checks would only add noise.
func (l *loader) readMesh(s *Scenario) (objs []*meshObject, ok bool) {
	before := len(l.errs)
	for i, e := range s.Mesh {
		if l.overBudget {
			break // reported once, where it happened
		}
		p := yamlnode.Item("mesh", i)
		if e.File == "" {
			if o := l.parseObject(e.Object, l.display, p); o != nil {
				objs = append(objs, o)
			}
			continue
		}
		objs = append(objs, l.readMeshFile(e.File, p)...)
	}
	return objs, len(l.errs) == before
}

// readMeshFile reads every document of a mesh file.
func (l *loader) readMeshFile(file, field string) []*meshObject {
	fieldPath := field + ".file"
	if path.IsAbs(file) || filepath.IsAbs(file) {
		l.at(fieldPath, "mesh file %q must be relative to the scenario file", file)
		return nil
	}
	name := path.Join(path.Dir(l.name), file)
	display := path.Join(path.Dir(filepath.ToSlash(l.display)), file)
	if !fs.ValidPath(name) {
		l.at(fieldPath, "mesh file %q is outside the directory tree the scenario is read from", file)
		return nil
	}
	data, err := l.readFile(name)
	if err != nil {
		l.at(fieldPath, "cannot read mesh file %s: %v", display, err)
		return nil
	}
	var objs []*meshObject
	docs := 0
	ok := l.eachDocument(data, display, func(n *yaml.Node) {
		docs++
		if o := l.parseDocument(n, display); o != nil {
			objs = append(objs, o)
		}
	})
	if ok && docs == 0 {
		l.at(fieldPath, "mesh file %s holds no Istio resources", display)
	}
	return objs
}

// eachDocument calls f with the root of each non-empty document of a
// multi-document file, within the node budget; a YAML error or a limit
// broken is reported for file, ends the reading and returns false.
func (l *loader) eachDocument(data []byte, file string, f func(*yaml.Node)) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			l.yamlError(file, err)
			return false
		}
		if !l.checkBudget(&doc, file) {
			return false
		}
		if len(doc.Content) == 0 || yamlnode.IsNull(doc.Content[0]) {
			continue // an empty document, as after a trailing ---
		}
		f(doc.Content[0])
	}
}

// Supported Istio API versions and kinds. The three versions serve the same
// schema (see the networking.istio.io CRDs in Istio's
// manifests/charts/base/files/crd-all.gen.yaml).
var (
	// canonicalAPIVersion is the version of the client-go types the objects are held in.
	canonicalAPIVersion = "networking.istio.io/v1"
	apiVersions         = []string{"networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"}
	securityAPIVersions = []string{"security.istio.io/v1", "security.istio.io/v1beta1"}
	kinds               = []string{"VirtualService", "DestinationRule", "Gateway", "PeerAuthentication", "AuthorizationPolicy", "HTTPRoute", "GRPCRoute", "Telemetry"}
	// The telemetry.istio.io versions serve one schema (crd-all.gen.yaml).
	telemetryAPIVersions = []string{"telemetry.istio.io/v1", "telemetry.istio.io/v1alpha1"}
	objectKeys           = []string{"apiVersion", "kind", "metadata", "spec"}
	metaKeys             = []string{"name", "namespace", "labels", "annotations"}
	// Kubernetes object names (DNS-1123 subdomain) and namespaces (DNS-1123 label).
	subdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	labelRE     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

// parseDocument checks one document of a mesh file. A document that is not
// a mapping with apiVersion or kind is described by its kind alone: the file
// may be anything but Istio YAML (../../etc/shadow parses as a mapping of
// odd keys), and its content is not ours to print.
func (l *loader) parseDocument(n *yaml.Node, file string) *meshObject {
	switch n := yamlnode.Deref(n); {
	case n.Kind != yaml.MappingNode:
		l.add(file, n.Line, "", "want an Istio object (apiVersion, kind, metadata, spec), got %s", yamlnode.DescribeKind(n))
		return nil
	case !hasAnyKey(n, []string{"apiVersion", "kind"}):
		l.add(file, n.Line, "", "not an Istio object: want a mapping with apiVersion, kind, metadata and spec, and this one has neither apiVersion nor kind")
		return nil
	}
	return l.parseObject(n, file, "")
}

// hasAnyKey reports whether n is a mapping with one of keys.
func hasAnyKey(n *yaml.Node, keys []string) bool {
	n = yamlnode.Deref(n)
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if contains(keys, n.Content[i].Value) {
			return true
		}
	}
	return false
}

// scenarioKeys are the top-level fields of a scenario.
func scenarioKeys() []string {
	var keys []string
	for k := range yamlFields(reflect.TypeOf(Scenario{})) {
		keys = append(keys, k)
	}
	return keys
}

// parseObject checks one Istio object and decodes it; nil when it has problems.
func (l *loader) parseObject(n *yaml.Node, file, prefix string) *meshObject {
	n = yamlnode.Deref(n)
	o := &meshObject{file: file, prefix: prefix, node: n, ix: indexNode(n)}
	bad := func(p string, format string, args ...any) {
		l.add(file, o.ix.line(p), o.field(p), format, args...)
	}
	if n.Kind != yaml.MappingNode {
		bad("", "want an Istio object (apiVersion, kind, metadata, spec), got %s", yamlnode.Describe(n))
		return nil
	}
	before := len(l.errs)
	fields := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !contains(objectKeys, k.Value):
			l.add(file, k.Line, o.field(k.Value), "unknown field %q%s", k.Value, suggest.Hint(k.Value, objectKeys))
		case fields[k.Value] != nil:
			l.add(file, k.Line, o.field(k.Value), "%s is set twice (first at line %d)", k.Value, fields[k.Value].Line)
		default:
			fields[k.Value] = v
		}
	}
	str := func(key string) string {
		v := fields[key]
		if v == nil || yamlnode.IsNull(v) {
			bad("", "%s is required", key)
			return ""
		}
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
			bad(key, "want a string, got %s", yamlnode.Describe(v))
			return ""
		}
		return v.Value
	}
	apiVersion, kind := str("apiVersion"), str("kind")
	security := kind == "PeerAuthentication" || kind == "AuthorizationPolicy"
	gatewayAPI := kind == "HTTPRoute" || kind == "GRPCRoute"
	telemetry := kind == "Telemetry"
	switch {
	case apiVersion == "":
	case telemetry && !contains(telemetryAPIVersions, apiVersion):
		bad("apiVersion", "unsupported apiVersion %q for %s; want %s", apiVersion, kind, strings.Join(telemetryAPIVersions, ", "))
	case telemetry:
	case gatewayAPI && apiVersion != gatewayAPIVersion:
		bad("apiVersion", "unsupported apiVersion %q for %s; want %s", apiVersion, kind, gatewayAPIVersion)
	case gatewayAPI:
	case security && !contains(securityAPIVersions, apiVersion):
		bad("apiVersion", "unsupported apiVersion %q for %s; want %s", apiVersion, kind, strings.Join(securityAPIVersions, ", "))
	case !security && !contains(apiVersions, apiVersion):
		bad("apiVersion", "unsupported apiVersion %q; want %s", apiVersion, strings.Join(apiVersions, ", "))
	}
	if kind != "" && !contains(kinds, kind) {
		bad("kind", "unsupported kind %q; meshbench supports %s", kind, strings.Join(kinds, ", "))
		kind = ""
	}
	o.kind = kind

	var meta struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	}
	switch m := fields["metadata"]; {
	case m == nil || yamlnode.IsNull(m):
		bad("", "metadata.name is required")
	case m.Kind != yaml.MappingNode:
		bad("metadata", "want a mapping with name (and namespace), got %s", yamlnode.Describe(m))
	default:
		for i := 0; i+1 < len(m.Content); i += 2 {
			if k := m.Content[i]; !contains(metaKeys, k.Value) {
				l.add(file, k.Line, o.field("metadata."+k.Value), "unknown field %q%s (metadata may hold %s)",
					k.Value, suggest.Hint(k.Value, metaKeys), strings.Join(metaKeys, ", "))
			}
		}
		// Node.Decode skips the unknown fields just reported.
		if err := m.Decode(&meta); err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) {
				for _, msg := range te.Errors {
					line := m.Line
					if mm := lineRE.FindStringSubmatch(msg); mm != nil {
						line, _ = strconv.Atoi(mm[1])
						msg = mm[2]
					}
					l.add(file, line, o.field("metadata"), "%s", friendlyYAML(msg))
				}
			} else {
				bad("metadata", "%v", err)
			}
		}
		switch {
		case meta.Name == "" && o.ix.has("metadata.name"):
			bad("metadata.name", "metadata.name must not be empty")
		case meta.Name == "":
			bad("metadata", "metadata.name is required")
		case len(meta.Name) > 253 || !subdomainRE.MatchString(meta.Name):
			bad("metadata.name", "invalid name %q: want lower-case letters, digits, '-' and '.'", meta.Name)
		}
		if meta.Namespace != "" && (len(meta.Namespace) > 63 || !labelRE.MatchString(meta.Namespace)) {
			bad("metadata.namespace", "invalid namespace %q: want lower-case letters, digits and '-'", meta.Namespace)
		}
	}
	if meta.Namespace == "" {
		meta.Namespace = l.defaultNS
	}
	o.name, o.namespace = meta.Name, meta.Namespace
	setMeta := func(om *metav1.ObjectMeta) {
		om.Name, om.Namespace, om.Labels, om.Annotations = meta.Name, meta.Namespace, meta.Labels, meta.Annotations
	}

	spec := fields["spec"]
	if spec == nil || yamlnode.IsNull(spec) {
		bad("", "spec is required")
	} else if kind != "" {
		c := &protoyaml.Converter{Report: func(line int, p, msg string) { l.add(file, line, o.field(p), "%s", msg) }}
		switch kind {
		case "VirtualService":
			o.vs = &networkingv1.VirtualService{}
			o.vs.APIVersion, o.vs.Kind = canonicalAPIVersion, kind
			setMeta(&o.vs.ObjectMeta)
			c.Decode(spec, "spec", &o.vs.Spec)
		case "DestinationRule":
			o.dr = &networkingv1.DestinationRule{}
			o.dr.APIVersion, o.dr.Kind = canonicalAPIVersion, kind
			setMeta(&o.dr.ObjectMeta)
			c.Decode(spec, "spec", &o.dr.Spec)
		case "Gateway":
			o.gw = &networkingv1.Gateway{}
			o.gw.APIVersion, o.gw.Kind = canonicalAPIVersion, kind
			setMeta(&o.gw.ObjectMeta)
			c.Decode(spec, "spec", &o.gw.Spec)
		case "PeerAuthentication":
			o.pa = &securityv1.PeerAuthentication{}
			o.pa.APIVersion, o.pa.Kind = "security.istio.io/v1", kind
			setMeta(&o.pa.ObjectMeta)
			c.Decode(spec, "spec", &o.pa.Spec)
		case "AuthorizationPolicy":
			o.ap = &securityv1.AuthorizationPolicy{}
			o.ap.APIVersion, o.ap.Kind = "security.istio.io/v1", kind
			setMeta(&o.ap.ObjectMeta)
			c.Decode(spec, "spec", &o.ap.Spec)
		case "HTTPRoute":
			o.hr = &gatewayv1.HTTPRoute{}
			o.hr.APIVersion, o.hr.Kind = gatewayAPIVersion, kind
			setMeta(&o.hr.ObjectMeta)
			decodeGatewaySpec(spec, "spec", &o.hr.Spec, c.Report)
			httpRouteDefaults(&o.hr.Spec)
		case "Telemetry":
			o.tm = &telemetryv1.Telemetry{}
			o.tm.APIVersion, o.tm.Kind = telemetryAPIVersions[0], kind
			setMeta(&o.tm.ObjectMeta)
			c.Decode(spec, "spec", &o.tm.Spec)
		case "GRPCRoute":
			o.gr = &gatewayv1.GRPCRoute{}
			o.gr.APIVersion, o.gr.Kind = gatewayAPIVersion, kind
			setMeta(&o.gr.ObjectMeta)
			decodeGatewaySpec(spec, "spec", &o.gr.Spec, c.Report)
			grpcRouteDefaults(&o.gr.Spec)
		}
	}
	if len(l.errs) == before {
		l.checkRegexes(o) // validate_regex.go
	}
	if len(l.errs) > before {
		return nil
	}
	return o
}

// buildConfig collects the checked objects, with their origin.
func buildConfig(objs []*meshObject) meshconfig.Config {
	cfg := meshconfig.Config{Origin: map[string]string{}}
	for _, o := range objs {
		switch {
		case o.vs != nil:
			cfg.VirtualServices = append(cfg.VirtualServices, o.vs)
		case o.dr != nil:
			cfg.DestinationRules = append(cfg.DestinationRules, o.dr)
		case o.gw != nil:
			cfg.Gateways = append(cfg.Gateways, o.gw)
		case o.pa != nil:
			cfg.PeerAuthentications = append(cfg.PeerAuthentications, o.pa)
		case o.ap != nil:
			cfg.AuthorizationPolicies = append(cfg.AuthorizationPolicies, o.ap)
		case o.hr != nil:
			cfg.HTTPRoutes = append(cfg.HTTPRoutes, o.hr)
		case o.gr != nil:
			cfg.GRPCRoutes = append(cfg.GRPCRoutes, o.gr)
		case o.tm != nil:
			cfg.Telemetries = append(cfg.Telemetries, o.tm)
		}
		cfg.Origin[meshconfig.Key(o.kind, o.namespace, o.name)] = fmt.Sprintf("%s:%d", o.file, o.node.Line)
	}
	return cfg
}
