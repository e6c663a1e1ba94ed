package scenarios

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	telemetryv1 "istio.io/client-go/pkg/apis/telemetry/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/sim/accesslog"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
)

// LoadFile reads the scenario file at p, and the mesh files it names, and
// checks all of it. Errors name p as given. On any problem it returns a nil
// Scenario and Errors.
func LoadFile(p string) (*Scenario, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, Errors{{File: p, Msg: err.Error()}}
	}
	// Serve the whole file system so that mesh files may live beside or above
	// the scenario file ("../istio/vs.yaml").
	root := filepath.VolumeName(abs) + string(filepath.Separator)
	rel, err := filepath.Rel(root, abs)
	if err != nil {
		return nil, Errors{{File: p, Msg: err.Error()}}
	}
	return LoadFS(os.DirFS(root), filepath.ToSlash(rel), p)
}

// LoadFS reads the scenario file name from fsys, and the mesh files it names
// (relative to name's directory, inside fsys), and checks all of it.
// displayName is how errors and Scenario.Path name the file. On any problem
// it returns a nil Scenario and Errors, sorted by file and line.
func LoadFS(fsys fs.FS, name, displayName string) (*Scenario, error) {
	l := &loader{fsys: fsys, name: name, display: displayName, budget: newNodeBudget()}
	s := l.load()
	if len(l.errs) > 0 {
		l.errs.sort()
		return nil, l.errs
	}
	return s, nil
}

// loader reads one scenario and collects the problems it finds.
type loader struct {
	fsys    fs.FS
	name    string // in fsys
	display string // as the user named it
	errs    Errors
	warns   Errors
	ix      *nodeIndex // of the scenario document
	// What the scenario's files have used of the limits (limits.go).
	budget     *nodeBudget
	inputBytes int
	overBudget bool
	// defaultNS is the namespace of Istio objects that name none: the topology's.
	defaultNS string
}

func (l *loader) add(file string, line int, field, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// warn records a problem that does not stop the scenario: it is said in
// the run's output (Scenario.Warnings).
func (l *loader) warn(file string, line int, field, format string, args ...any) {
	l.warns = append(l.warns, &Error{File: file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// at reports a problem in the scenario file at the field path p.
func (l *loader) at(p, format string, args ...any) {
	l.add(l.display, l.ix.line(p), p, format, args...)
}

func (l *loader) load() *Scenario {
	data, err := l.readFile(l.name)
	if err != nil {
		l.add(l.display, 0, "", "cannot read scenario: %v", err)
		return nil
	}
	s := l.decodeScenario(data)
	if s == nil {
		return nil
	}
	s.Path = l.display
	l.fillLines(s)
	applyDefaults(s)

	l.defaultNS = s.Topology.Namespace
	objs, meshOK := l.readMesh(s)
	v := newValidator(l, s)
	topoOK := v.topology()
	v.load()
	v.expectations()
	l.chaos(v, s, objs, meshOK && topoOK) // chaos.go
	settings := l.meshSettings(s)
	if meshOK && topoOK {
		v.mesh(objs)
		v.telemetry(objs, settings.TracingOrDefault()) // tracing.go
	}
	if len(l.errs) > 0 {
		return nil
	}
	s.Config = buildConfig(objs)
	s.Config.Mesh = settings
	l.warns.sort()
	s.Warnings = l.warns
	return s
}

// meshSettings reads the meshConfig block: the default retry policy as an
// Istio HTTPRetry (checked like any spec) and the compatibility version.
func (l *loader) meshSettings(s *Scenario) meshconfig.MeshSettings {
	var out meshconfig.MeshSettings
	mc := s.MeshConfig
	if mc == nil {
		return out
	}
	if n := &mc.DefaultHTTPRetryPolicy; n.Kind != 0 {
		c := &specConverter{add: func(line int, p, msg string) { l.add(l.display, line, p, "%s", msg) }}
		out.DefaultHTTPRetryPolicy = &networking.HTTPRetry{}
		c.decode(n, "meshConfig.defaultHttpRetryPolicy", out.DefaultHTTPRetryPolicy)
	}
	out.AccessLog = l.accessLog(mc)
	out.Tracing = l.meshTracing(s, mc) // tracing.go
	out.CertTTL = mc.CertTTL.D()
	if mc.CertTTL != 0 && mc.CertTTL.D() < time.Second {
		l.at("meshConfig.certTTL", "certTTL %s is below 1s; rotation happens at half the lifetime", mc.CertTTL)
	}
	if v := mc.CompatibilityVersion; v != "" {
		major, minor, ok := strings.Cut(v, ".")
		m, err := strconv.Atoi(minor)
		if !ok || major != "1" || err != nil {
			l.at("meshConfig.compatibilityVersion", "compatibilityVersion %q is not an Istio release like 1.23", v)
		} else {
			// The 1.23 profile (and older releases) retried 503 by default;
			// 1.24 made EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY true.
			out.Retry503ByDefault = m <= 23
		}
	}
	return out
}

// accessLog reads accessLogFile, accessLogEncoding and accessLogFormat.
// Stricter than Istio, which checks none of them (ValidateMeshConfig) and
// falls back to its default format on a JSON format that does not parse
// (FileAccessLogFromMeshConfig in pilot/pkg/model/telemetry_logging.go):
// a format is parsed here as the builtin sidecar parses it, since Envoy
// refuses a listener whose format it cannot read, and a format or an
// encoding without a file would silently do nothing.
func (l *loader) accessLog(mc *MeshConfigSpec) meshconfig.AccessLog {
	out := meshconfig.AccessLog{File: mc.AccessLogFile, Format: mc.AccessLogFormat}
	switch mc.AccessLogEncoding {
	case "", "TEXT":
	case "JSON":
		out.JSON = true
	default:
		l.at("meshConfig.accessLogEncoding", "accessLogEncoding %q is not TEXT or JSON", mc.AccessLogEncoding)
	}
	if mc.AccessLogFile == "" {
		for _, f := range []struct{ name, value string }{{"accessLogEncoding", mc.AccessLogEncoding}, {"accessLogFormat", mc.AccessLogFormat}} {
			if f.value != "" {
				l.at("meshConfig."+f.name, "%s has no effect without meshConfig.accessLogFile (e.g. /dev/stdout)", f.name)
			}
		}
		return out
	}
	if out.Format == "" {
		return out
	}
	parse := func(s string) error { _, err := accesslog.ParseText(accesslog.TextFormat(s)); return err }
	if out.JSON {
		parse = func(s string) error { _, err := accesslog.ParseJSONText(s); return err }
	}
	if err := parse(out.Format); err != nil {
		l.at("meshConfig.accessLogFormat", "accessLogFormat: %v (implemented: %s)", err, strings.Join(accesslog.Operators(), ", "))
	}
	return out
}

// decodeScenario parses the scenario document strictly: YAML syntax, one
// document, no unknown fields, values of the right types.
func (l *loader) decodeScenario(data []byte) *Scenario {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.add(l.display, 0, "", "the file is empty; a scenario needs at least name, load and expect")
		} else {
			l.yamlError(l.display, err)
		}
		return nil
	}
	if !l.checkBudget(&doc, l.display) || !l.onlyEmptyDocuments(dec) {
		return nil
	}
	root := doc.Content[0]
	// Only the kind, never a value or key: the file may be anything but a
	// scenario (/etc/shadow parses as a mapping of odd keys), and its
	// content is not ours to print.
	switch {
	case root.Kind != yaml.MappingNode:
		l.add(l.display, root.Line, "", "a scenario is a mapping with name, topology, mesh, load and expect; got %s", describeKind(root))
		return nil
	case !hasAnyKey(root, scenarioKeys()):
		l.add(l.display, root.Line, "", "not a scenario: a scenario is a mapping with name, topology, mesh, load and expect, and this one has none of them")
		return nil
	}
	l.ix = indexNode(root)

	// First our own walk, which names the field path and suggests the
	// intended field; then yaml.v3 with KnownFields as the final word.
	checkFields(root, reflect.TypeOf(Scenario{}), "", func(line int, field, msg string) {
		l.add(l.display, line, field, "%s", msg)
	})
	if len(l.errs) > 0 {
		return nil
	}
	dec = yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		l.yamlError(l.display, err)
		return nil
	}
	return &s
}

// onlyEmptyDocuments reads the documents after the first: empty ones (a
// trailing ---, as kubectl accepts) are fine, anything else is refused.
func (l *loader) onlyEmptyDocuments(dec *yaml.Decoder) bool {
	for {
		var extra yaml.Node
		switch err := dec.Decode(&extra); {
		case errors.Is(err, io.EOF):
			return true
		case err != nil:
			l.yamlError(l.display, err)
			return false
		case !l.checkBudget(&extra, l.display):
			return false
		case len(extra.Content) == 0 || isNull(extra.Content[0]):
			continue
		default:
			l.add(l.display, extra.Line, "", "a scenario file holds one YAML document; remove the second one (put Istio resources in a mesh file)")
			return false
		}
	}
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError turns a yaml.v3 error, which carries its line in the text, into
// Errors for file.
func (l *loader) yamlError(file string, err error) {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, msg := range te.Errors {
			l.yamlMessage(file, msg, "")
		}
		return
	}
	l.yamlMessage(file, err.Error(), "invalid YAML: ")
}

func (l *loader) yamlMessage(file, msg, prefix string) {
	line := 0
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	field := ""
	if l.ix != nil && file == l.display && line > 0 {
		field = l.ix.pathAtLine(line)
	}
	l.add(file, line, field, "%s%s", prefix, friendlyYAML(msg))
}

var (
	notFoundRE  = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	unmarshalRE = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (.+)$")
)

// unknownAnchorRE is yaml.v3's message for an alias without its anchor; the
// name is left out because a file that does not parse as YAML may be
// anything, and its content is not ours to print.
var unknownAnchorRE = regexp.MustCompile(`^unknown anchor '.*' referenced$`)

// friendlyYAML rewords yaml.v3's messages that speak of Go types.
func friendlyYAML(msg string) string {
	if unknownAnchorRE.MatchString(msg) {
		return "an alias (*name) refers to no anchor (&name) defined before it"
	}
	if m := notFoundRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("unknown field %q", m[1])
	}
	if m := unmarshalRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("want %s, got %s %q", goTypeWord(m[3]), tagWord("!!"+m[1]), m[2])
	}
	return msg
}

func goTypeWord(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "a whole number"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "a string"
	case strings.HasPrefix(t, "map["), strings.Contains(t, "."):
		return "a mapping"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	}
	return t
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// fillLines records where each expectation starts.
func (l *loader) fillLines(s *Scenario) {
	for i := range s.Expect {
		s.Expect[i].Line = l.ix.line(item("expect", i))
	}
}

// applyDefaults fills in what the scenario left out.
func applyDefaults(s *Scenario) {
	if s.Seed == 0 {
		s.Seed = 1
	}
	if s.Topology == nil {
		t := registry.DefaultTopology()
		s.Topology = &t
	}
	t := s.Topology
	if t.Namespace == "" {
		t.Namespace = "default"
	}
	for i := range t.Services {
		svc := &t.Services[i]
		if svc.Port == 0 {
			svc.Port = 80
		}
		if svc.TargetPort == 0 {
			svc.TargetPort = 8080
		}
		if svc.Path == "" {
			svc.Path = "/" + svc.Name
		}
		for j := range svc.Versions {
			ver := &svc.Versions[j]
			if ver.Replicas == 0 {
				ver.Replicas = 1
			}
			if ver.ErrorStatus == 0 {
				ver.ErrorStatus = 503
			}
		}
	}
	selectingServiceDefaults(t) // validate_gamma.go
	ld := &s.Load
	if ld.Plan != nil && ld.Duration == 0 {
		// Chaos schedules, the progress line and the send limit read the
		// load's length.
		ld.Duration = units.Duration(ld.Plan.Length())
	}
	if ld.Method == "" {
		ld.Method = "POST"
	}
	if ld.Timeout == 0 {
		ld.Timeout = DefaultTimeout
	}
	if ld.Path == "" {
		for _, svc := range t.Services {
			if svc.Name == ld.Target {
				ld.Path = svc.Path
			}
		}
	}
	for _, e := range s.Expect {
		if e.Split != nil && e.Split.Confidence == 0 {
			e.Split.Confidence = DefaultConfidence
		}
		if e.SuccessRate != nil && e.SuccessRate.Confidence == 0 {
			e.SuccessRate.Confidence = DefaultConfidence
		}
		if e.Status != nil && e.Status.Confidence == 0 {
			e.Status.Confidence = DefaultConfidence
		}
		if e.Capacity != nil && e.Capacity.Confidence == 0 {
			e.Capacity.Confidence = DefaultConfidence
		}
	}
	if r := ld.Plan; r != nil && r.Ramp != nil && r.Ramp.Every == 0 {
		r.Ramp.Every = DefaultRampEvery
	}
}

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
func (o *meshObject) field(p string) string { return join(o.prefix, p) }

// readMesh parses every mesh entry. ok is false when any entry failed to
// parse, in which case cross-resource checks would only add noise.
func (l *loader) readMesh(s *Scenario) (objs []*meshObject, ok bool) {
	before := len(l.errs)
	for i, e := range s.Mesh {
		if l.overBudget {
			break // reported once, where it happened
		}
		p := item("mesh", i)
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
		if len(doc.Content) == 0 || isNull(doc.Content[0]) {
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
	switch n := deref(n); {
	case n.Kind != yaml.MappingNode:
		l.add(file, n.Line, "", "want an Istio object (apiVersion, kind, metadata, spec), got %s", describeKind(n))
		return nil
	case !hasAnyKey(n, []string{"apiVersion", "kind"}):
		l.add(file, n.Line, "", "not an Istio object: want a mapping with apiVersion, kind, metadata and spec, and this one has neither apiVersion nor kind")
		return nil
	}
	return l.parseObject(n, file, "")
}

// hasAnyKey reports whether n is a mapping with one of keys.
func hasAnyKey(n *yaml.Node, keys []string) bool {
	n = deref(n)
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
	n = deref(n)
	o := &meshObject{file: file, prefix: prefix, node: n, ix: indexNode(n)}
	bad := func(p string, format string, args ...any) {
		l.add(file, o.ix.line(p), o.field(p), format, args...)
	}
	if n.Kind != yaml.MappingNode {
		bad("", "want an Istio object (apiVersion, kind, metadata, spec), got %s", describeNode(n))
		return nil
	}
	before := len(l.errs)
	fields := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !contains(objectKeys, k.Value):
			l.add(file, k.Line, o.field(k.Value), "unknown field %q%s", k.Value, suggest(k.Value, objectKeys))
		case fields[k.Value] != nil:
			l.add(file, k.Line, o.field(k.Value), "%s is set twice (first at line %d)", k.Value, fields[k.Value].Line)
		default:
			fields[k.Value] = v
		}
	}
	str := func(key string) string {
		v := fields[key]
		if v == nil || isNull(v) {
			bad("", "%s is required", key)
			return ""
		}
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
			bad(key, "want a string, got %s", describeNode(v))
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
	case m == nil || isNull(m):
		bad("", "metadata.name is required")
	case m.Kind != yaml.MappingNode:
		bad("metadata", "want a mapping with name (and namespace), got %s", describeNode(m))
	default:
		for i := 0; i+1 < len(m.Content); i += 2 {
			if k := m.Content[i]; !contains(metaKeys, k.Value) {
				l.add(file, k.Line, o.field("metadata."+k.Value), "unknown field %q%s (metadata may hold %s)",
					k.Value, suggest(k.Value, metaKeys), strings.Join(metaKeys, ", "))
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
	if spec == nil || isNull(spec) {
		bad("", "spec is required")
	} else if kind != "" {
		c := &specConverter{add: func(line int, p, msg string) { l.add(file, line, o.field(p), "%s", msg) }}
		switch kind {
		case "VirtualService":
			o.vs = &networkingv1.VirtualService{}
			o.vs.APIVersion, o.vs.Kind = canonicalAPIVersion, kind
			setMeta(&o.vs.ObjectMeta)
			c.decode(spec, "spec", &o.vs.Spec)
		case "DestinationRule":
			o.dr = &networkingv1.DestinationRule{}
			o.dr.APIVersion, o.dr.Kind = canonicalAPIVersion, kind
			setMeta(&o.dr.ObjectMeta)
			c.decode(spec, "spec", &o.dr.Spec)
		case "Gateway":
			o.gw = &networkingv1.Gateway{}
			o.gw.APIVersion, o.gw.Kind = canonicalAPIVersion, kind
			setMeta(&o.gw.ObjectMeta)
			c.decode(spec, "spec", &o.gw.Spec)
		case "PeerAuthentication":
			o.pa = &securityv1.PeerAuthentication{}
			o.pa.APIVersion, o.pa.Kind = "security.istio.io/v1", kind
			setMeta(&o.pa.ObjectMeta)
			c.decode(spec, "spec", &o.pa.Spec)
		case "AuthorizationPolicy":
			o.ap = &securityv1.AuthorizationPolicy{}
			o.ap.APIVersion, o.ap.Kind = "security.istio.io/v1", kind
			setMeta(&o.ap.ObjectMeta)
			c.decode(spec, "spec", &o.ap.Spec)
		case "HTTPRoute":
			o.hr = &gatewayv1.HTTPRoute{}
			o.hr.APIVersion, o.hr.Kind = gatewayAPIVersion, kind
			setMeta(&o.hr.ObjectMeta)
			decodeGatewaySpec(spec, "spec", &o.hr.Spec, c.add)
			httpRouteDefaults(&o.hr.Spec)
		case "Telemetry":
			o.tm = &telemetryv1.Telemetry{}
			o.tm.APIVersion, o.tm.Kind = telemetryAPIVersions[0], kind
			setMeta(&o.tm.ObjectMeta)
			c.decode(spec, "spec", &o.tm.Spec)
		case "GRPCRoute":
			o.gr = &gatewayv1.GRPCRoute{}
			o.gr.APIVersion, o.gr.Kind = gatewayAPIVersion, kind
			setMeta(&o.gr.ObjectMeta)
			decodeGatewaySpec(spec, "spec", &o.gr.Spec, c.add)
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

// checkFields walks a YAML node alongside the Go type it decodes into and
// reports unknown fields (with a suggestion) and values that the type's own
// UnmarshalYAML refuses, each at its line and field path. yaml.v3 reports
// unknown fields too (Decoder.KnownFields), but stops at the first failing
// UnmarshalYAML and then gives no line.
func checkFields(n *yaml.Node, t reflect.Type, p string, add func(line int, field, msg string)) {
	n = deref(n)
	if n == nil || isNull(n) {
		return
	}
	if t == reflect.TypeOf(yaml.Node{}) {
		return
	}
	if u, ok := reflect.New(t).Interface().(yaml.Unmarshaler); ok {
		if err := u.UnmarshalYAML(n); err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) {
				for _, msg := range te.Errors {
					line := n.Line
					if m := lineRE.FindStringSubmatch(msg); m != nil {
						line, _ = strconv.Atoi(m[1])
						msg = m[2]
					}
					add(line, p, msg)
				}
			} else {
				add(n.Line, p, err.Error())
			}
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		checkFields(n, t.Elem(), p, add)
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				checkFields(c, t.Elem(), item(p, i), add)
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				checkFields(n.Content[i+1], t.Elem(), join(p, n.Content[i].Value), add)
			}
		}
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // yaml.v3 reports the type mismatch
		}
		fields := yamlFields(t)
		var names []string
		for name := range fields {
			names = append(names, name)
		}
		sort.Strings(names)
		inline := inlineMap(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			f, ok := fields[k.Value]
			if !ok && inline != nil {
				// An ",inline" map takes the other keys (LatencyExpect's
				// statistics); a scalar there is more likely a misspelt field.
				if et := inline.Elem(); et.Kind() != reflect.Struct || deref(n.Content[i+1]).Kind == yaml.MappingNode {
					checkFields(n.Content[i+1], et, join(p, k.Value), add)
					continue
				}
			}
			if !ok {
				add(k.Line, join(p, k.Value), fmt.Sprintf("unknown field %q%s; known fields: %s",
					k.Value, suggest(k.Value, names), strings.Join(names, ", ")))
				continue
			}
			checkFields(n.Content[i+1], f, join(p, k.Value), add)
		}
	}
}

// inlineMap is the type of a struct's ",inline" map field, or nil.
func inlineMap(t reflect.Type) reflect.Type {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		_, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.IsExported() && f.Type.Kind() == reflect.Map && strings.Contains(","+opts+",", ",inline,") {
			return f.Type
		}
	}
	return nil
}

// yamlFields maps the YAML names of a struct's fields to their types,
// following yaml.v3's rules: the tag's name, else the lower-cased field name;
// ",inline" structs contribute their fields.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range yamlFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// nodeIndex finds the nodes of a YAML tree by field path ("load.rate",
// "spec.http[0].route[1]").
type nodeIndex struct {
	keys   map[string]*yaml.Node // mapping keys
	values map[string]*yaml.Node
	lines  map[int]string // the first field path that starts at each line
}

func indexNode(root *yaml.Node) *nodeIndex {
	ix := &nodeIndex{keys: map[string]*yaml.Node{}, values: map[string]*yaml.Node{}, lines: map[int]string{}}
	ix.walk(root, "", 0)
	return ix
}

func (ix *nodeIndex) walk(n *yaml.Node, p string, depth int) {
	n = deref(n)
	if n == nil || depth > 100 {
		return
	}
	if _, ok := ix.values[p]; !ok {
		ix.values[p] = n
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			c := join(p, k.Value)
			if _, ok := ix.keys[c]; !ok {
				ix.keys[c] = k
			}
			if _, ok := ix.lines[k.Line]; !ok {
				ix.lines[k.Line] = c
			}
			ix.walk(n.Content[i+1], c, depth+1)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			cp := item(p, i)
			if _, ok := ix.lines[deref(c).Line]; !ok && deref(c).Kind == yaml.ScalarNode {
				ix.lines[deref(c).Line] = cp
			}
			ix.walk(c, cp, depth+1)
		}
	}
}

// line is the line of the field p: its key if it is a mapping entry, else its
// value; for a field that is absent, the line of the nearest ancestor.
func (ix *nodeIndex) line(p string) int {
	if ix == nil {
		return 0
	}
	for {
		if k, ok := ix.keys[p]; ok {
			return k.Line
		}
		if v, ok := ix.values[p]; ok {
			return v.Line
		}
		if p == "" {
			return 0
		}
		p = parent(p)
	}
}

// has reports whether the field p is present.
func (ix *nodeIndex) has(p string) bool {
	_, ok := ix.keys[p]
	return ok
}

// pathAtLine is the field path of the first field at line, or "".
func (ix *nodeIndex) pathAtLine(line int) string { return ix.lines[line] }

// parent drops the last element of a field path.
func parent(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func join(p, key string) string {
	if p == "" {
		return key
	}
	if key == "" {
		return p
	}
	return p + "." + key
}

func item(p string, i int) string { return fmt.Sprintf("%s[%d]", p, i) }

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return n.Content[0]
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describeNode names a node's type for messages: `a string "x"`, `a list`.
func describeNode(n *yaml.Node) string {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "nothing (null)"
		}
		return fmt.Sprintf("%s %q", tagWord(n.ShortTag()), n.Value)
	}
	return "nothing"
}

// describeKind names a node's kind without its value: "a string", "a list".
func describeKind(n *yaml.Node) string {
	n = deref(n)
	switch {
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
		return "nothing (null)"
	case n.Kind == yaml.ScalarNode && scalarKinds[n.ShortTag()] != "":
		return scalarKinds[n.ShortTag()]
	case n.Kind == yaml.ScalarNode:
		return "a scalar"
	}
	return "nothing"
}

var scalarKinds = map[string]string{"!!str": "a string", "!!int": "an integer", "!!float": "a number", "!!bool": "a boolean", "!!binary": "binary data", "!!timestamp": "a timestamp"}

func tagWord(tag string) string {
	switch tag {
	case "!!str":
		return "the string"
	case "!!int":
		return "the integer"
	case "!!float":
		return "the number"
	case "!!bool":
		return "the boolean"
	case "!!null":
		return "null"
	case "!!map":
		return "a mapping"
	case "!!seq":
		return "a list"
	}
	return "the " + strings.TrimPrefix(tag, "!!")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest returns ` (did you mean "x"?)` for the candidate closest to s, if
// it is close: same letters ignoring case, '_' and '-', or at most two edits.
func suggest(s string, candidates []string) string {
	norm := func(x string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(x))
	}
	best, bestD := "", 3
	for _, c := range candidates {
		if norm(c) == norm(s) {
			return fmt.Sprintf(" (did you mean %q?)", c)
		}
		if d := editDistance(norm(s), norm(c)); d < bestD && d < len(c) {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
