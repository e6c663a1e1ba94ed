package scenarios

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/registry"
)

// This file checks a scenario once it is read: the topology, the load, the
// expectations, and the Istio resources both on their own (strict decoding
// of each spec) and against the topology (hosts, subsets, ports, weights).
//
// The Istio rules follow Istio's own code, cited where they are applied:
// pkg/config/validation/validation.go (the admission webhook's checks),
// pilot/pkg/model/config.go (how short host names resolve) and
// pilot/pkg/networking/core/route/route.go (how routes become Envoy config).
// Where meshbench is stricter than Istio the comment says so and why.

// ---------------------------------------------------------------------------
// Strict decoding of Istio specs.

// specConverter turns the YAML of an Istio spec into the JSON that protojson
// reads, checking it against the proto message's descriptor on the way:
// unknown fields, values of the wrong type, two members of a oneof, keys set
// twice. Each problem is reported at its own line.
//
// Why not just decode: istio.io/client-go's types decode spec with
// github.com/golang/protobuf/jsonpb and AllowUnknownFields: true
// (istio.io/api/networking/v1alpha3/virtual_service_json.gen.go), so
// `retries: {atempts: 3}` is silently dropped, even under
// sigs.k8s.io/yaml.UnmarshalStrict; and proto3 JSON accepts `weight: "90"`
// for an int32, where the CRD schema (type: integer in Istio's
// manifests/charts/base/files/crd-all.gen.yaml) makes the Kubernetes API
// server refuse it. protojson.Unmarshal with default options rejects unknown
// fields and is the final decoder.
type specConverter struct {
	add func(line int, field, msg string)
	bad bool
}

func (c *specConverter) errorf(n *yaml.Node, p, format string, args ...any) {
	c.bad = true
	c.add(n.Line, p, fmt.Sprintf(format, args...))
}

// decode checks the spec node n (at field path p) and decodes it into m.
func (c *specConverter) decode(n *yaml.Node, p string, m proto.Message) {
	v := c.message(n, m.ProtoReflect().Descriptor(), p)
	if c.bad {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		c.errorf(n, p, "cannot convert to JSON: %v", err)
		return
	}
	if err := protojson.Unmarshal(b, m); err != nil {
		c.protoError(n, p, err)
	}
}

var (
	protoPrefixRE = regexp.MustCompile(`^proto:[\s\x{00a0}]*(\(line \d+:\d+\):[\s\x{00a0}]*)?`)
	quotedRE      = regexp.MustCompile(`"([^"]+)"`)
)

// protoError maps a protojson error back to the YAML: the key it quotes, if
// it can be found in the spec, else the spec itself.
func (c *specConverter) protoError(n *yaml.Node, p string, err error) {
	msg := protoPrefixRE.ReplaceAllString(err.Error(), "")
	if m := quotedRE.FindStringSubmatch(msg); m != nil {
		if k, kp := findKey(n, p, m[1]); k != nil {
			c.errorf(k, kp, "%s", msg)
			return
		}
	}
	c.errorf(n, p, "%s", msg)
}

// findKey finds the first mapping key named name under n, depth first.
func findKey(n *yaml.Node, p, name string) (*yaml.Node, string) {
	n = deref(n)
	if n == nil {
		return nil, ""
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Value == name {
				return k, join(p, name)
			}
			if f, fp := findKey(n.Content[i+1], join(p, k.Value), name); f != nil {
				return f, fp
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if f, fp := findKey(c, item(p, i), name); f != nil {
				return f, fp
			}
		}
	}
	return nil, ""
}

// message converts a node that holds the message md.
func (c *specConverter) message(n *yaml.Node, md protoreflect.MessageDescriptor, p string) any {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	switch md.FullName() {
	case "google.protobuf.Duration":
		// Istio reads durations with time.ParseDuration ("250ms", "3m"; see
		// github.com/golang/protobuf/jsonpb/decode.go, which
		// istio.io/api's *_json.gen.go use) and its CRDs check them with CEL
		// duration(); protojson wants seconds ("0.250s"), so convert.
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			c.errorf(n, p, "want a duration like 250ms or 2s, got %s", describeNode(n))
			return nil
		}
		d, err := time.ParseDuration(n.Value)
		if err != nil {
			c.errorf(n, p, "invalid duration %q: want a number with a unit, like 250ms or 2s", n.Value)
			return nil
		}
		b, _ := protojson.Marshal(durationpb.New(d))
		var s string
		_ = json.Unmarshal(b, &s)
		return s
	case "google.protobuf.Timestamp", "google.protobuf.FieldMask":
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			c.errorf(n, p, "want a string, got %s", describeNode(n))
			return nil
		}
		return n.Value
	case "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
		"google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
		"google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue":
		// Wrappers are written as their bare value.
		return c.scalar(n, md.Fields().ByName("value"), p)
	case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue",
		"google.protobuf.Any", "google.protobuf.Empty":
		var v any
		if err := n.Decode(&v); err != nil {
			c.errorf(n, p, "%v", err)
		}
		return v
	}
	if n.Kind != yaml.MappingNode {
		c.errorf(n, p, "want a mapping (%s), got %s", md.Name(), describeNode(n))
		return nil
	}
	out := map[string]any{}
	seen := map[protoreflect.FullName]*yaml.Node{}
	oneofs := map[protoreflect.FullName]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kp := join(p, k.Value)
		if k.Kind != yaml.ScalarNode || k.Value == "<<" {
			c.errorf(k, p, "want a field name, got %s", describeNode(k))
			continue
		}
		fd := md.Fields().ByJSONName(k.Value)
		if fd == nil {
			fd = md.Fields().ByTextName(k.Value)
		}
		if fd == nil {
			c.errorf(k, kp, "unknown field %q%s; %s has %s", k.Value, suggest(k.Value, jsonNames(md)), md.Name(), strings.Join(jsonNames(md), ", "))
			continue
		}
		if first := seen[fd.FullName()]; first != nil {
			c.errorf(k, kp, "%s is set twice (first at line %d)", k.Value, first.Line)
			continue
		}
		seen[fd.FullName()] = k
		if isNull(v) {
			continue // null means unset, as in protojson
		}
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if first := oneofs[od.FullName()]; first != nil {
				var names []string
				for j := 0; j < od.Fields().Len(); j++ {
					names = append(names, od.Fields().Get(j).JSONName())
				}
				c.errorf(k, kp, "only one of %s may be set; %s is already set at line %d",
					strings.Join(names, ", "), first.Value, first.Line)
				continue
			}
			oneofs[od.FullName()] = k
		}
		out[fd.JSONName()] = c.field(v, fd, kp)
	}
	return out
}

func jsonNames(md protoreflect.MessageDescriptor) []string {
	var names []string
	for i := 0; i < md.Fields().Len(); i++ {
		names = append(names, md.Fields().Get(i).JSONName())
	}
	return names
}

// field converts the value of a field: a list, a map or a single value.
func (c *specConverter) field(n *yaml.Node, fd protoreflect.FieldDescriptor, p string) any {
	n = deref(n)
	switch {
	case fd.IsList():
		if n.Kind != yaml.SequenceNode {
			c.errorf(n, p, "want a list, got %s", describeNode(n))
			return nil
		}
		out := make([]any, 0, len(n.Content))
		for i, e := range n.Content {
			if isNull(e) {
				c.errorf(deref(e), item(p, i), "a list item may not be empty")
				continue
			}
			out = append(out, c.single(e, fd, item(p, i)))
		}
		return out
	case fd.IsMap():
		if n.Kind != yaml.MappingNode {
			c.errorf(n, p, "want a mapping, got %s", describeNode(n))
			return nil
		}
		out := map[string]any{}
		seen := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := deref(n.Content[i]), n.Content[i+1]
			kp := join(p, k.Value)
			if k.Kind != yaml.ScalarNode {
				c.errorf(k, p, "want a key, got %s", describeNode(k))
				continue
			}
			if fd.MapKey().Kind() == protoreflect.StringKind && k.ShortTag() != "!!str" {
				c.errorf(k, kp, "want a string key, got %s; quote it", describeNode(k))
				continue
			}
			if first := seen[k.Value]; first != nil {
				c.errorf(k, kp, "key %q is set twice (first at line %d)", k.Value, first.Line)
				continue
			}
			seen[k.Value] = k
			out[k.Value] = c.single(v, fd.MapValue(), kp)
		}
		return out
	}
	return c.single(n, fd, p)
}

func (c *specConverter) single(n *yaml.Node, fd protoreflect.FieldDescriptor, p string) any {
	if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
		return c.message(n, fd.Message(), p)
	}
	return c.scalar(n, fd, p)
}

// scalar converts a value of a scalar or enum field. Types are strict, as in
// the CRD's schema: a string field takes only a YAML string, an integer
// field only a YAML integer.
func (c *specConverter) scalar(n *yaml.Node, fd protoreflect.FieldDescriptor, p string) any {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	tag := n.ShortTag()
	want := func(what string) any {
		hint := ""
		if n.Kind == yaml.ScalarNode && tag == "!!str" && what != "a string" {
			hint = "; write it without quotes"
		} else if n.Kind == yaml.ScalarNode && what == "a string" {
			hint = fmt.Sprintf("; quote it: \"%s\"", n.Value)
		}
		c.errorf(n, p, "want %s, got %s%s", what, describeNode(n), hint)
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return want(kindWord(fd))
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		if tag != "!!str" {
			return want("a string")
		}
		return n.Value
	case protoreflect.BytesKind:
		if tag != "!!str" && tag != "!!binary" {
			return want("base64 text")
		}
		return n.Value
	case protoreflect.BoolKind:
		if tag != "!!bool" {
			return want("true or false")
		}
		var b bool
		_ = n.Decode(&b)
		return b
	case protoreflect.EnumKind:
		ed := fd.Enum()
		if ed.FullName() == "google.protobuf.NullValue" {
			return nil
		}
		var names []string
		for i := 0; i < ed.Values().Len(); i++ {
			names = append(names, string(ed.Values().Get(i).Name()))
		}
		if tag != "!!str" || ed.Values().ByName(protoreflect.Name(n.Value)) == nil {
			c.errorf(n, p, "invalid value %q; want one of %s%s", n.Value, strings.Join(names, ", "), suggest(n.Value, names))
			return nil
		}
		return n.Value
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		if tag != "!!int" && tag != "!!float" {
			return want("a number")
		}
		var f float64
		if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return want("a finite number")
		}
		return f
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if tag != "!!int" {
			return want("a whole number")
		}
		var u uint64
		if err := n.Decode(&u); err != nil {
			c.errorf(n, p, "want a whole number >= 0, got %s", n.Value)
			return nil
		}
		if (fd.Kind() == protoreflect.Uint32Kind || fd.Kind() == protoreflect.Fixed32Kind) && u > math.MaxUint32 {
			c.errorf(n, p, "%s is too large (at most %d)", n.Value, uint64(math.MaxUint32))
			return nil
		}
		return json.Number(strconv.FormatUint(u, 10))
	default: // signed integers
		if tag != "!!int" {
			return want("a whole number")
		}
		var i int64
		if err := n.Decode(&i); err != nil {
			c.errorf(n, p, "want a whole number, got %s", n.Value)
			return nil
		}
		if (fd.Kind() == protoreflect.Int32Kind || fd.Kind() == protoreflect.Sint32Kind || fd.Kind() == protoreflect.Sfixed32Kind) &&
			(i > math.MaxInt32 || i < math.MinInt32) {
			c.errorf(n, p, "%s is out of range for a 32-bit number", n.Value)
			return nil
		}
		return json.Number(strconv.FormatInt(i, 10))
	}
}

func kindWord(fd protoreflect.FieldDescriptor) string {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return "a string"
	case protoreflect.BoolKind:
		return "true or false"
	case protoreflect.EnumKind:
		return "one of the names of " + string(fd.Enum().Name())
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return "a number"
	case protoreflect.BytesKind:
		return "base64 text"
	}
	return "a whole number"
}

// ---------------------------------------------------------------------------
// Checks against the topology.

// validator checks a decoded scenario; problems go to the loader.
type validator struct {
	l *loader
	s *Scenario
	// services by name, in topology order.
	services map[string]*registry.Service
	names    []string
	// subsets by service name, from the DestinationRules.
	subsets map[string]map[string]subsetDef
}

type subsetDef struct {
	labels map[string]string
	origin string // file:line of the subset
	// empty is a subset whose labels select no pod of the service (IST0173).
	empty bool
}

func newValidator(l *loader, s *Scenario) *validator {
	v := &validator{l: l, s: s, services: map[string]*registry.Service{}, subsets: map[string]map[string]subsetDef{}}
	for i := range s.Topology.Services {
		svc := &s.Topology.Services[i]
		if _, dup := v.services[svc.Name]; !dup && svc.Name != "" {
			v.services[svc.Name] = svc
			v.names = append(v.names, svc.Name)
		}
	}
	return v
}

// serviceList is "order, payment" for messages.
func (v *validator) serviceList() string { return strings.Join(v.names, ", ") }

var (
	// Kubernetes label values (version names and label values).
	labelValueRE = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`)
	// Kubernetes label keys: an optional DNS prefix and a name.
	labelKeyRE = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
	// HTTP header field names (RFC 9110 token).
	headerNameRE   = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")
	scenarioNameRE = regexp.MustCompile(`^[a-z0-9-]+$`)
	httpMethods    = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	latencyDists   = []string{"", "normal", "exponential", "uniform"}
)

// Load limits: long enough to measure, short enough for a test suite.
const (
	MinDuration = units.Duration(100 * time.Millisecond)
	MaxDuration = units.Duration(10 * time.Minute)
)

// topology checks the services; false when the topology is unusable, in
// which case checks of the mesh resources against it are skipped.
func (v *validator) topology() bool {
	before := len(v.l.errs)
	s, l := v.s, v.l
	if !scenarioNameRE.MatchString(s.Name) {
		if s.Name == "" {
			l.at("name", "name is required")
		} else {
			l.at("name", "invalid name %q: use lower-case letters, digits and '-'", s.Name)
		}
	}
	t := s.Topology
	if !labelRE.MatchString(t.Namespace) || len(t.Namespace) > 63 {
		l.at("topology.namespace", "invalid namespace %q: want lower-case letters, digits and '-'", t.Namespace)
	}
	if len(t.Services) == 0 {
		l.at("topology.services", "the topology has no services")
	}
	first := map[string]string{}
	for i, svc := range t.Services {
		p := item("topology.services", i)
		switch {
		case svc.Name == "":
			l.at(p, "service name is required")
		case len(svc.Name) > 63 || !labelRE.MatchString(svc.Name):
			l.at(p+".name", "invalid service name %q: want lower-case letters, digits and '-'", svc.Name)
		case first[svc.Name] != "":
			l.at(p+".name", "service %s is declared twice (first at %s)", svc.Name, first[svc.Name])
		default:
			first[svc.Name] = fmt.Sprintf("line %d", l.ix.line(p+".name"))
		}
		if svc.Port < 1 || svc.Port > 65535 {
			l.at(p+".port", "port %d is not in 1..65535", svc.Port)
		}
		if svc.TargetPort < 1 || svc.TargetPort > 65535 {
			l.at(p+".targetPort", "targetPort %d is not in 1..65535", svc.TargetPort)
		}
		if !strings.HasPrefix(svc.Path, "/") {
			l.at(p+".path", "path %q must start with /", svc.Path)
		}
		v.protocol(p, svc)
		v.grpcCall(p, svc)
		if svc.Selects != nil {
			v.selectingService(p, svc) // validate_gamma.go
		} else if len(svc.Versions) == 0 {
			l.at(p, "service %s has no versions; give it at least one, like {name: v1}", svc.Name)
		}
		seen := map[string]bool{}
		for j, ver := range svc.Versions {
			vp := item(p+".versions", j)
			switch {
			case ver.Name == "":
				l.at(vp, "version name is required")
			case len(ver.Name) > 63 || !labelValueRE.MatchString(ver.Name):
				l.at(vp+".name", "invalid version name %q: it becomes the label version=%s, so use letters, digits, '-', '_' and '.'", ver.Name, ver.Name)
			case seen[ver.Name]:
				l.at(vp+".name", "version %s of %s is declared twice", ver.Name, svc.Name)
			}
			seen[ver.Name] = true
			if ver.Replicas < 0 {
				l.at(vp+".replicas", "replicas %d must not be negative", ver.Replicas)
			}
			if ver.Cert != "" && ver.Cert != "foreign" && ver.Cert != "expired" {
				l.at(vp+".cert", "cert %q is not one of foreign, expired", ver.Cert)
			}
			if ver.Cert != "" && !ver.HasSidecar() {
				l.at(vp+".cert", "a version without a sidecar holds no certificate")
			}
			if ver.ErrorRate < 0 || ver.ErrorRate > 1 {
				l.at(vp+".errorRate", "errorRate %g is not in [0,1]", ver.ErrorRate)
			}
			if ver.ErrorStatus < 100 || ver.ErrorStatus > 599 {
				l.at(vp+".errorStatus", "errorStatus %d is not an HTTP status", ver.ErrorStatus)
			}
			if !contains(latencyDists, ver.Latency.Dist) {
				l.at(vp+".latency.dist", "unknown distribution %q; want normal, exponential or uniform (or none for a fixed latency)", ver.Latency.Dist)
			}
			keys := make([]string, 0, len(ver.Labels))
			for k := range ver.Labels {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				lp := vp + ".labels." + k
				switch {
				case k == "app" || k == "version":
					l.at(lp, "label %s is set by meshbench (app=<service>, version=<version>)", k)
				case len(k) > 317 || !labelKeyRE.MatchString(k):
					l.at(lp, "invalid label key %q", k)
				case len(ver.Labels[k]) > 63 || !labelValueRE.MatchString(ver.Labels[k]):
					l.at(lp, "invalid label value %q", ver.Labels[k])
				}
			}
		}
		v.calls(p+".calls", svc.Name, svc.Calls)
		v.onCalleeError(p+".onCalleeError", svc.OnCalleeError)
		for j, ver := range svc.Versions {
			v.calls(item(p+".versions", j)+".calls", svc.Name+"/"+ver.Name, ver.Calls)
			v.onCalleeError(item(p+".versions", j)+".onCalleeError", ver.OnCalleeError)
		}
	}
	v.podCount()
	if cycle := v.callCycle(); cycle != nil {
		l.at("topology.services", "the calls form a cycle: %s", strings.Join(cycle, " → "))
	}
	return len(v.l.errs) == before
}

// calls checks one calls list of the service svc (of a version of it,
// caller "svc/version").
func (v *validator) calls(p, caller string, calls []string) {
	svc, _, _ := strings.Cut(caller, "/")
	for j, callee := range calls {
		cp := item(p, j)
		switch {
		case callee == svc:
			v.l.at(cp, "service %s calls itself", caller)
		case !contains(v.names, callee):
			v.l.at(cp, "%s calls %q, which matches no service in the topology (services: %s)", caller, callee, v.serviceList())
		}
	}
}

// onCalleeError checks what a service (or version) does when a call fails.
func (v *validator) onCalleeError(p, mode string) {
	if mode != "" && mode != "fail" && mode != "degrade" {
		v.l.at(p, "onCalleeError %q is not fail or degrade%s", mode, suggest(mode, []string{"fail", "degrade"}))
	}
}

// podCount refuses a topology of more than MaxPods pods, at the replicas
// (or the version) that go past the limit.
func (v *validator) podCount() {
	const huge = 1 << 30 // per version, so that the sum cannot overflow
	total, crossing := 0, ""
	for i, svc := range v.s.Topology.Services {
		for j, ver := range svc.Versions {
			total += max(0, min(ver.Replicas, huge))
			if total > MaxPods && crossing == "" {
				crossing = item(item("topology.services", i)+".versions", j) + ".replicas"
			}
		}
	}
	if crossing != "" {
		v.l.at(crossing, "the topology has %d pods; a mesh holds at most %d (each pod and the ingress gateway take an address of one loopback /24)", total, MaxPods)
	}
}

// callCycle finds a cycle in the call graph, as the list of services on it
// with the first repeated at the end; nil when there is none.
func (v *validator) callCycle() []string {
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(name string) []string
	visit = func(name string) []string {
		state[name] = active
		stack = append(stack, name)
		// A version's own calls are edges too: any version's call may close a cycle.
		for _, callee := range v.services[name].AllCalls() {
			if callee == name || v.services[callee] == nil {
				continue // reported on its own
			}
			switch state[callee] {
			case active:
				for i, s := range stack {
					if s == callee {
						return append(append([]string{}, stack[i:]...), callee)
					}
				}
			case unseen:
				if c := visit(callee); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
		return nil
	}
	for _, name := range v.names {
		if state[name] == unseen {
			if c := visit(name); c != nil {
				return c
			}
		}
	}
	return nil
}

// load checks the load section.
func (v *validator) load() {
	ld, l := &v.s.Load, v.l
	switch {
	case ld.Target == "":
		l.at("load.target", "load.target is required: the service the requests go to (services: %s)", v.serviceList())
	case v.services[ld.Target] == nil:
		l.at("load.target", "target %q matches no service in the topology (services: %s)", ld.Target, v.serviceList())
	default:
		v.tcpTarget("load.target", ld.Target)
	}
	if ld.Path != "" && !strings.HasPrefix(ld.Path, "/") {
		l.at("load.path", "path %q must start with /", ld.Path)
	}
	if !contains(httpMethods, ld.Method) {
		l.at("load.method", "unsupported method %q; want one of %s", ld.Method, strings.Join(httpMethods, ", "))
	}
	if ld.Plan != nil {
		v.plan() // validate_plan.go
	} else if ld.Rate.Per == 0 || ld.Rate.Freq <= 0 {
		l.at("load.rate", "load.rate is required, like 500/s (or a load.plan)")
	}
	v.rateLimit("load.rate", ld.Rate)
	switch {
	case ld.Plan != nil:
	case ld.Duration == 0:
		l.at("load.duration", "load.duration is required, like 10s")
	case ld.Duration < MinDuration || ld.Duration > MaxDuration:
		l.at("load.duration", "duration %s is not in %s..%s", ld.Duration, MinDuration, MaxDuration)
	case ld.Rate.PerSecond() <= MaxRate && ld.Rate.PerSecond()*ld.Duration.D().Seconds() > MaxRequests:
		l.at("load.duration", "%s for %s is %.0f requests; the limit is %d (every sample is kept for the checks)",
			ld.Rate, ld.Duration, ld.Rate.PerSecond()*ld.Duration.D().Seconds(), MaxRequests)
	}
	if ld.Timeout <= 0 {
		l.at("load.timeout", "timeout must be positive")
	}
	if ld.Concurrency < 0 || ld.Concurrency > maxWorkers {
		l.at("load.concurrency", "concurrency %d is not in 1..%d (0 or absent: no cap but the load generator's)", ld.Concurrency, maxWorkers)
	}
	v.headers("load.headers", ld.Headers)
	seen := map[string]bool{}
	for i, vr := range ld.Variants {
		p := item("load.variants", i)
		switch {
		case vr.Name == "":
			l.at(p, "variant name is required")
		case !scenarioNameRE.MatchString(vr.Name):
			l.at(p+".name", "invalid variant name %q: use lower-case letters, digits and '-'", vr.Name)
		case seen[vr.Name]:
			l.at(p+".name", "variant %s is declared twice", vr.Name)
		}
		seen[vr.Name] = true
		if vr.Weight <= 0 {
			l.at(p+".weight", "variant weight must be > 0 (it is the variant's share of the requests)")
		}
		v.headers(p+".headers", vr.Headers)
		if vr.Target != "" && v.services[vr.Target] == nil {
			l.at(p+".target", "target %q matches no service in the topology (services: %s)", vr.Target, v.serviceList())
		} else if vr.Target != "" {
			v.tcpTarget(p+".target", vr.Target)
		}
	}
}

// rateLimit refuses a rate above MaxRate.
func (v *validator) rateLimit(p string, r units.Rate) {
	if r.PerSecond() > MaxRate {
		v.l.at(p, "rate %s is %.0f requests per second; the limit is %.0f/s", r, r.PerSecond(), MaxRate)
	}
}

func (v *validator) headers(p string, h map[string]string) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !headerNameRE.MatchString(k) {
			v.l.at(join(p, k), "invalid header name %q", k)
		}
	}
}

// expectations checks the expect list.
func (v *validator) expectations() {
	s, l := v.s, v.l
	if len(s.Expect) == 0 {
		l.at("expect", "expect is empty: say what the run must show (split, successRate or latency)")
	}
	for i, e := range s.Expect {
		p := item("expect", i)
		var set []string
		if e.Split != nil {
			set = append(set, "split")
		}
		if e.SuccessRate != nil {
			set = append(set, "successRate")
		}
		if e.Latency != nil {
			set = append(set, "latency")
		}
		for _, k := range []struct {
			name string
			set  bool
		}{{"status", e.Status != nil}, {"retries", e.Retries != nil}, {"ejections", e.Ejections != nil},
			{"overflows", e.Overflows != nil}, {"responseFlags", e.ResponseFlags != nil}, {"attempts", e.Attempts != nil},
			{"security", e.Security != nil}, {"rotations", e.Rotations != nil}, {"latencyShift", e.LatencyShift != nil},
			{"messages", e.Messages != nil}, {"deadline", e.Deadline != nil}, {"capacity", e.Capacity != nil}} {
			if k.set {
				set = append(set, k.name)
			}
		}
		switch len(set) {
		case 0:
			l.at(p, "an expectation sets one of %s", strings.Join(ExpectationKinds, ", "))
			continue
		case 1:
		default:
			l.at(p, "an expectation sets exactly one of %s; this one sets %s (make each its own list item)", strings.Join(ExpectationKinds, ", "), strings.Join(set, " and "))
			continue
		}
		switch {
		case e.Split != nil:
			v.split(p+".split", e.Split)
		case e.SuccessRate != nil:
			sp := p + ".successRate"
			if e.SuccessRate.Min <= 0 || e.SuccessRate.Min > 1 {
				if !l.ix.has(sp + ".min") {
					l.at(sp, "successRate.min is required, in (0,1], like 0.999")
				} else {
					l.at(sp+".min", "min %g is not in (0,1]", e.SuccessRate.Min)
				}
			}
			v.confidence(sp+".confidence", e.SuccessRate.Confidence)
			v.variant(sp+".variant", e.SuccessRate.Variant)
		case e.Status != nil:
			v.status(p+".status", e.Status)
		case e.Retries != nil:
			v.count(p+".retries", e.Retries.Service, e.Retries.Min, e.Retries.Max)
			v.noVariant(p+".retries.variant", "retries", e.Retries.Variant)
		case e.Ejections != nil:
			v.count(p+".ejections", e.Ejections.Service, e.Ejections.Min, e.Ejections.Max)
			v.noVariant(p+".ejections.variant", "ejections", e.Ejections.Variant)
		case e.Overflows != nil:
			v.count(p+".overflows", e.Overflows.Service, e.Overflows.Min, e.Overflows.Max)
			v.noVariant(p+".overflows.variant", "overflows", e.Overflows.Variant)
		case e.LatencyShift != nil:
			v.latencyShift(p+".latencyShift", e.LatencyShift)
		case e.Attempts != nil:
			v.count(p+".attempts", e.Attempts.Service, e.Attempts.Min, e.Attempts.Max)
			v.variant(p+".attempts.variant", e.Attempts.Variant)
		case e.Messages != nil:
			v.count(p+".messages", e.Messages.Service, e.Messages.Min, e.Messages.Max)
			v.variant(p+".messages.variant", e.Messages.Variant)
		case e.Deadline != nil:
			v.deadline(p+".deadline", e.Deadline)
		case e.Capacity != nil:
			v.capacity(p+".capacity", e.Capacity) // validate_plan.go
		case e.Security != nil:
			sp := p + ".security"
			v.count(sp, e.Security.Service, e.Security.Min, e.Security.Max)
			if e.Security.Policy != "mutual_tls" && e.Security.Policy != "none" {
				l.at(sp+".policy", "policy %q is not mutual_tls or none", e.Security.Policy)
			}
		case e.Rotations != nil:
			v.bounds(p+".rotations", e.Rotations.Min, e.Rotations.Max, math.Inf(1))
			v.noVariant(p+".rotations.variant", "rotations", e.Rotations.Variant)
		case e.ResponseFlags != nil:
			fp := p + ".responseFlags"
			v.count(fp, e.ResponseFlags.Service, e.ResponseFlags.Min, e.ResponseFlags.Max)
			if !contains(ResponseFlagNames, e.ResponseFlags.Flag) {
				l.at(fp+".flag", "unknown response flag %q%s; want one of %s", e.ResponseFlags.Flag, suggest(e.ResponseFlags.Flag, ResponseFlagNames), strings.Join(ResponseFlagNames, ", "))
			}
			v.variant(fp+".variant", e.ResponseFlags.Variant)
		case e.Latency != nil:
			lp := p + ".latency"
			stats := e.Latency.Stats
			if len(stats) == 0 {
				l.at(lp, "latency needs at least one of %s", strings.Join(LatencyStats, ", "))
			}
			keys := make([]string, 0, len(stats))
			for k := range stats {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				b := stats[k]
				switch {
				case !contains(LatencyStats, k):
					l.at(join(lp, k), "unknown latency statistic %q%s; want one of %s (or variant)", k, suggest(k, append(LatencyStats, "variant")), strings.Join(LatencyStats, ", "))
				case b.Max < 0 || b.Min < 0:
					l.at(join(lp, k), "%s bounds must not be negative", k)
				case b.Max == 0 && b.Min == 0:
					l.at(join(lp, k), "%s needs max, min or both, like {max: 250ms} or {min: 1900ms, max: 2500ms}", k)
				case b.Max > 0 && b.Min > b.Max:
					l.at(join(lp, k), "%s: min %s is above max %s", k, b.Min, b.Max)
				}
			}
			v.variant(lp+".variant", e.Latency.Variant)
		}
	}
}

func (v *validator) split(p string, e *SplitExpect) {
	l := v.l
	svc := v.services[e.Service]
	switch {
	case e.Service == "":
		l.at(p, "split.service is required (services: %s)", v.serviceList())
	case svc == nil:
		l.at(p+".service", "service %q matches no service in the topology (services: %s)", e.Service, v.serviceList())
	}
	if len(e.Weights) == 0 {
		l.at(p, "split.weights is required, like {v1: 90, v2: 10}")
	}
	keys := make([]string, 0, len(e.Weights))
	sum := 0.0
	for k, w := range e.Weights {
		keys = append(keys, k)
		sum += w
	}
	sort.Strings(keys)
	for _, k := range keys {
		wp := p + ".weights." + k
		if e.Weights[k] < 0 || math.IsNaN(e.Weights[k]) || math.IsInf(e.Weights[k], 0) {
			l.at(wp, "weight %g must be a number >= 0", e.Weights[k])
		}
		if svc != nil && !hasVersion(svc, k) {
			l.at(wp, "%s has no version %q (versions: %s)", svc.Name, k, strings.Join(versionNames(svc), ", "))
		}
	}
	if len(e.Weights) > 0 && !(sum > 0) {
		l.at(p+".weights", "the weights sum to 0; they are shares of the responses")
	}
	if e.Tolerance < 0 || e.Tolerance >= 100 || math.IsNaN(e.Tolerance) {
		l.at(p+".tolerance", "tolerance %g must be percentage points, 0 <= tolerance < 100", e.Tolerance)
	}
	v.confidence(p+".confidence", e.Confidence)
	v.variant(p+".variant", e.Variant)
}

// ExpectationKinds are the keys an expectation may have.
var ExpectationKinds = []string{"split", "successRate", "latency", "status", "retries", "ejections", "overflows", "responseFlags", "attempts", "security", "rotations", "latencyShift", "messages", "deadline", "capacity"}

// ResponseFlagNames are the Envoy response flags the builtin sidecar sets
// (Envoy access log docs, %RESPONSE_FLAGS%).
var ResponseFlagNames = []string{"UH", "UF", "UO", "NR", "URX", "NC", "DC", "UT", "UR", "DI", "FI"}

// count checks a service-scoped count bound.
func (v *validator) count(p, service string, lo, hi *float64) {
	l := v.l
	switch {
	case service == "":
		l.at(p, "service is required (services: %s)", v.serviceList())
	case v.services[service] == nil:
		l.at(p+".service", "service %q matches no service in the topology (services: %s)", service, v.serviceList())
	}
	v.bounds(p, lo, hi, math.Inf(1))
}

// bounds checks optional min/max: at least one, non-negative, min <= max <= limit.
func (v *validator) bounds(p string, lo, hi *float64, limit float64) {
	l := v.l
	if lo == nil && hi == nil {
		l.at(p, "set min, max or both")
		return
	}
	for _, b := range []struct {
		name string
		v    *float64
	}{{"min", lo}, {"max", hi}} {
		if b.v != nil && (*b.v < 0 || *b.v > limit || math.IsNaN(*b.v)) {
			l.at(p+"."+b.name, "%s %g is not in [0, %g]", b.name, *b.v, limit)
		}
	}
	if lo != nil && hi != nil && *lo > *hi {
		l.at(p, "min %g is above max %g", *lo, *hi)
	}
}

func (v *validator) status(p string, e *StatusExpect) {
	l := v.l
	if e.Code < 100 || e.Code > 599 {
		l.at(p+".code", "status code %d is not in [100, 599]", e.Code)
	}
	if e.Share != nil {
		if *e.Share < 0 || *e.Share > 1 {
			l.at(p+".share", "share %g is not in [0, 1]", *e.Share)
		}
		if e.Min != nil || e.Max != nil {
			l.at(p, "set either share (a binomial test) or min/max bounds, not both")
		}
		v.confidence(p+".confidence", e.Confidence)
	} else {
		v.bounds(p, e.Min, e.Max, 1)
	}
	v.variant(p+".variant", e.Variant)
}

func (v *validator) confidence(p string, c float64) {
	if !(c > 0 && c < 1) {
		v.l.at(p, "confidence %g is not in (0,1); default %g", c, DefaultConfidence)
	}
}

// noVariant refuses a variant on a check that reads the sidecars'
// counters: they count every request, whatever variant sent it.
func (v *validator) noVariant(p, kind, name string) {
	if name != "" {
		v.l.at(p, "%s counts the sidecars' counters, which do not know the load's variants; a variant applies to split, successRate, latency, status, attempts and responseFlags", kind)
	}
}

func (v *validator) variant(p, name string) {
	if name == "" {
		return
	}
	var names []string
	for _, vr := range v.s.Load.Variants {
		if vr.Name == name {
			return
		}
		if !contains(names, vr.Name) {
			names = append(names, vr.Name)
		}
	}
	if len(names) == 0 {
		v.l.at(p, "variant %q: load has no variants", name)
		return
	}
	v.l.at(p, "variant %q is not a load variant (variants: %s)", name, strings.Join(names, ", "))
}

func hasVersion(svc *registry.Service, name string) bool {
	for _, ver := range svc.Versions {
		if ver.Name == name {
			return true
		}
	}
	return false
}

func versionNames(svc *registry.Service) []string {
	var out []string
	for _, ver := range svc.Versions {
		out = append(out, ver.Name)
	}
	return out
}

// podLabels are the labels of the pods of one version of a service.
func podLabels(svc *registry.Service, ver registry.Version) map[string]string {
	out := map[string]string{"app": svc.Name, "version": ver.Name}
	for k, val := range ver.Labels {
		out[k] = val
	}
	return out
}

// ---------------------------------------------------------------------------
// Istio resources against the topology.

func (v *validator) fqdn(svc *registry.Service) string {
	return istionames.ServiceHost(svc.Name, v.s.Topology.Namespace)
}

// resolveHost finds the service a host names, the way istiod does
// (istionames.ResolveHost): a name without a dot is completed with the
// namespace of the resource it is written in, any name with a dot is taken
// as written. So "payment.default" and "payment.default.svc" name no
// service to istiod (a destination host like that becomes a cluster no
// endpoint backs); istioctl analyze agrees
// (pkg/config/analysis/analyzers/util/hosts.go ConvertHostToFQDN). They are
// refused with a hint, rather than accepted and silently black-holed.
// The second result explains a failure.
func (v *validator) resolveHost(host, ns string) (*registry.Service, string) {
	if host == "" {
		return nil, "host is required"
	}
	for _, name := range v.names {
		if svc := v.services[name]; istionames.NamesService(host, ns, svc.Name, v.s.Topology.Namespace) {
			return svc, ""
		}
	}
	for _, name := range v.names {
		svc := v.services[name]
		if istionames.DNSNames(host, v.s.Topology.Namespace, svc.Name, v.s.Topology.Namespace) && strings.Contains(host, ".") {
			return nil, fmt.Sprintf("host %q matches no service: Istio completes only names without a dot (pilot/pkg/model/config.go ResolveShortnameToFQDN) and takes %q as written; write %q or %q",
				host, host, svc.Name, v.fqdn(svc))
		}
	}
	if v.services[host] != nil {
		return nil, fmt.Sprintf("host %q in namespace %s means %s, which matches no service (the services live in namespace %s)",
			host, ns, istionames.ResolveHost(host, ns), v.s.Topology.Namespace)
	}
	return nil, fmt.Sprintf("host %q matches no service in the topology (services: %s)", host, v.serviceList())
}

// matchWildcard returns the services a wildcard host ("*.default.svc.cluster.local") covers.
func (v *validator) matchWildcard(host, ns string) []*registry.Service {
	var out []*registry.Service
	for _, name := range v.names {
		if svc := v.services[name]; istionames.CoversService(host, ns, svc.Name, v.s.Topology.Namespace) {
			out = append(out, svc)
		}
	}
	return out
}

// mesh checks the Istio resources against each other and the topology.
func (v *validator) mesh(objs []*meshObject) {
	// Duplicate names: the API server keeps one object per kind/namespace/name.
	first := map[string]*meshObject{}
	gateways := map[string]bool{}
	for _, o := range objs {
		key := o.kind + "/" + o.namespace + "/" + o.name
		if f := first[key]; f != nil {
			v.objErr(o, "metadata.name", "%s %s/%s is defined twice (first at %s:%d)", o.kind, o.namespace, o.name, f.file, f.node.Line)
			continue
		}
		first[key] = o
		if o.gw != nil {
			gateways[o.namespace+"/"+o.name] = true
		}
	}
	for _, o := range objs {
		if o.dr != nil {
			v.destinationRule(o)
		}
	}
	for _, o := range objs {
		switch {
		case o.vs != nil:
			v.virtualService(o, gateways)
		case o.gw != nil:
			v.gateway(o)
		}
	}
	v.gamma(objs)      // Gateway API routes (validate_gamma.go)
	v.resilience(objs) // Istio's checks of timeouts, retries, faults, mirrors and traffic policies (validate_resilience.go)
	v.security(objs)   // Istio's checks of PeerAuthentications and AuthorizationPolicies (validate_security.go)
}

func (v *validator) objErr(o *meshObject, p, format string, args ...any) {
	v.l.add(o.file, o.ix.line(p), o.field(p), format, args...)
}

// objWarn records a warning about the object o at its field p: accepted, but
// said in the run's output.
func (v *validator) objWarn(o *meshObject, p, format string, args ...any) {
	v.l.warn(o.file, o.ix.line(p), o.field(p), format, args...)
}

// destinationRule checks a DestinationRule and records its subsets.
func (v *validator) destinationRule(o *meshObject) {
	spec := &o.dr.Spec
	// PASSTHROUGH makes Istio send to the original destination address
	// (ORIGINAL_DST); local services have no VIP to pass through to.
	if spec.GetTrafficPolicy().GetLoadBalancer().GetSimple() == networking.LoadBalancerSettings_PASSTHROUGH {
		v.objErr(o, "spec.trafficPolicy.loadBalancer.simple", "PASSTHROUGH is not supported: local services have no address to pass through to")
	}
	for i, sub := range spec.GetSubsets() {
		if sub.GetTrafficPolicy().GetLoadBalancer().GetSimple() == networking.LoadBalancerSettings_PASSTHROUGH {
			v.objErr(o, item("spec.subsets", i)+".trafficPolicy.loadBalancer.simple", "PASSTHROUGH is not supported: local services have no address to pass through to")
		}
	}
	var svcs []*registry.Service
	switch {
	case spec.Host == "":
		v.objErr(o, "spec", "spec.host is required")
		return
	case strings.HasPrefix(spec.Host, "*"):
		if svcs = v.matchWildcard(spec.Host, o.namespace); len(svcs) == 0 {
			v.objErr(o, "spec.host", "host %q matches no service in the topology (services: %s)", spec.Host, v.serviceList())
			return
		}
	default:
		svc, why := v.resolveHost(spec.Host, o.namespace)
		if svc == nil {
			v.objErr(o, "spec.host", "%s", why)
			return
		}
		svcs = []*registry.Service{svc}
	}
	seen := map[string]bool{}
	for i, sub := range spec.Subsets {
		p := item("spec.subsets", i)
		// Istio requires a DNS-1123 label as subset name (validateSubsetName
		// in pkg/config/validation/validation.go).
		switch {
		case sub.Name == "":
			v.objErr(o, p, "subset name is required")
			continue
		case len(sub.Name) > 63 || !labelRE.MatchString(sub.Name):
			v.objErr(o, p+".name", "invalid subset name %q: want lower-case letters, digits and '-'", sub.Name)
			continue
		case seen[sub.Name]:
			v.objErr(o, p+".name", "subset %s is defined twice", sub.Name)
			continue
		}
		seen[sub.Name] = true
		// Stricter than Istio, which accepts a subset without labels: it
		// selects every pod of the service, which is never what a subset is
		// written for.
		if len(sub.Labels) == 0 {
			v.objErr(o, p, "subset %s has no labels; give it the labels of the pods it selects, like {version: %s}", sub.Name, sub.Name)
			continue
		}
		for _, svc := range svcs {
			// Istio accepts a subset that selects no pod: the webhook has no
			// such check, istiod serves the subset's cluster with no
			// endpoints, and only istioctl analyze reports it, as IST0173
			// DestinationRuleSubsetNotSelectPods (pkg/config/analysis/msg/messages.yaml;
			// analyzers/destinationrule/subset.go). Istio's own samples
			// define subsets for versions not yet deployed
			// (samples/bookinfo/networking/destination-rule-all.yaml), so it
			// is a warning here; a route that sends such a subset traffic is
			// refused (routeDestinations).
			empty := !selectsPod(svc, sub.Labels)
			if empty {
				v.objWarn(o, p+".labels", "IST0173: The Subset %s defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream). (no version of %s has labels %s; versions: %s)",
					sub.Name, svc.Name, formatLabels(sub.Labels), strings.Join(versionNames(svc), ", "))
			}
			if v.subsets[svc.Name] == nil {
				v.subsets[svc.Name] = map[string]subsetDef{}
			}
			origin := fmt.Sprintf("%s:%d", o.file, o.ix.line(p))
			if prev, dup := v.subsets[svc.Name][sub.Name]; dup {
				// istiod merges DestinationRules for one host and keeps the
				// first definition of a subset (pilot/pkg/model/destination_rule.go).
				v.objErr(o, p+".name", "subset %s of %s is already defined at %s", sub.Name, svc.Name, prev.origin)
				continue
			}
			v.subsets[svc.Name][sub.Name] = subsetDef{labels: sub.Labels, origin: origin, empty: empty}
		}
	}
}

func selectsPod(svc *registry.Service, sel map[string]string) bool {
	for _, ver := range svc.Versions {
		pl := podLabels(svc, ver)
		ok := true
		for k, val := range sel {
			if pl[k] != val {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func formatLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

// virtualService checks a VirtualService's hosts, gateways and routes.
func (v *validator) virtualService(o *meshObject, gateways map[string]bool) {
	spec := &o.vs.Spec
	// A VirtualService with no gateways applies to the sidecars ("mesh");
	// one bound only to Gateways may name any host, since it is matched
	// against the Host header at the gateway (ValidateVirtualService in
	// pkg/config/validation/validation.go: appliesToMesh / isGateway).
	appliesToMesh := len(spec.Gateways) == 0
	for i, g := range spec.Gateways {
		if g == "mesh" {
			appliesToMesh = true
			continue
		}
		// "name" is a Gateway in the VirtualService's namespace; "ns/name" anywhere.
		key := o.namespace + "/" + g
		if strings.Contains(g, "/") {
			key = g
		}
		if !gateways[key] {
			v.objErr(o, item("spec.gateways", i), "gateway %q is defined by no Gateway in this scenario", g)
		}
	}
	if len(spec.Hosts) == 0 {
		v.objErr(o, "spec", "spec.hosts is required (delegate VirtualServices are not supported)")
	}
	if appliesToMesh {
		for i, h := range spec.Hosts {
			p := item("spec.hosts", i)
			switch {
			case h == "*":
				v.objErr(o, p, "wildcard host * is not allowed for virtual services bound to the mesh gateway")
			case strings.HasPrefix(h, "*"):
				if len(v.matchWildcard(h, o.namespace)) == 0 {
					v.objErr(o, p, "host %q matches no service in the topology (services: %s)", h, v.serviceList())
				}
			default:
				if svc, why := v.resolveHost(h, o.namespace); svc == nil {
					v.objErr(o, p, "%s", why)
				}
			}
		}
	}
	if len(spec.Http) == 0 && len(spec.Tcp) == 0 && len(spec.Tls) == 0 {
		v.objErr(o, "spec", "http, tcp or tls must be provided in virtual service")
	}
	v.tcpRoutes(o)
	for i, r := range spec.Http {
		p := item("spec.http", i)
		if len(r.Route) == 0 && r.Redirect == nil && r.DirectResponse == nil && r.Delegate == nil {
			v.objErr(o, p, "an http route needs route, redirect or directResponse")
		}
		if r.Delegate != nil {
			v.objErr(o, p+".delegate", "delegate is not supported")
		}
		// The builtin sidecar only forwards: redirect and directResponse would
		// be answered by Envoy itself, which meshbench does not model yet.
		if r.Redirect != nil {
			v.objErr(o, p+".redirect", "redirect is not supported by the builtin sidecar yet")
		}
		if r.DirectResponse != nil {
			v.objErr(o, p+".directResponse", "directResponse is not supported by the builtin sidecar yet")
		}
		dests := make([]routeDest, len(r.Route))
		for j, d := range r.Route {
			dests[j] = routeDest{d.Destination, d.Weight}
		}
		v.routeDestinations(o, p+".route", dests)
		if r.Mirror != nil {
			v.destination(o, p+".mirror", r.Mirror)
		}
		for j, m := range r.Mirrors {
			v.destination(o, item(p+".mirrors", j)+".destination", m.Destination)
		}
	}
	for i, r := range spec.Tcp {
		dests := make([]routeDest, len(r.Route))
		for j, d := range r.Route {
			dests[j] = routeDest{d.Destination, d.Weight}
		}
		v.routeDestinations(o, item("spec.tcp", i)+".route", dests)
	}
	for i, r := range spec.Tls {
		dests := make([]routeDest, len(r.Route))
		for j, d := range r.Route {
			dests[j] = routeDest{d.Destination, d.Weight}
		}
		v.routeDestinations(o, item("spec.tls", i)+".route", dests)
	}
}

type routeDest struct {
	dest   *networking.Destination
	weight int32
}

// routeDestinations checks the destinations of one route and their weights.
//
// Weights: meshbench requires, when a route has more than one destination,
// a weight on every destination and a total of exactly 100. This is
// stricter than Istio today, on purpose:
//   - Istio's webhook (validateHTTPRouteDestinations and
//     validateRouteDestinations in pkg/config/validation/validation.go)
//     required "total destination weight %v != 100" until Istio 1.15
//     (istio/istio#39544, commit ac641d0); it now only refuses negative
//     weights and a total of 0 ("total destination weight = 0"), and the
//     weights are relative.
//   - A destination without a weight is not an error to Istio but is
//     dropped: pilot/pkg/networking/core/route/route.go skips 0-weight
//     destinations of a multi-destination route ("Ignore 0 weighted
//     clusters if there are other clusters in the route"), since Envoy's
//     weighted_clusters need a weight on each cluster and a positive sum
//     (envoy.config.route.v3.WeightedCluster.ClusterWeight.weight).
//
// So a forgotten weight silently sends that destination nothing, and
// 80+10 silently means 89%/11%: both are almost always typos in a scenario
// meant to prove a split, so they are errors here. An explicit `weight: 0`
// (a drained destination) is accepted.
func (v *validator) routeDestinations(o *meshObject, p string, dests []routeDest) {
	for j, d := range dests {
		dp := item(p, j)
		if d.dest == nil {
			v.objErr(o, dp, "destination is required")
		} else {
			v.destination(o, dp+".destination", d.dest)
		}
		if d.weight < 0 {
			v.objErr(o, dp+".weight", "weight %d < 0", d.weight)
		}
		// One destination takes every request whatever its weight
		// (pilot/pkg/networking/core/route/route.go builds a single
		// cluster, not weighted_clusters); of several, those with weight > 0
		// take a share.
		if d.dest != nil && (len(dests) == 1 || d.weight > 0) {
			if sub, ok := v.emptySubset(o, d.dest); ok {
				share := "every request"
				if len(dests) > 1 {
					share = fmt.Sprintf("weight %d", d.weight)
				}
				v.objErr(o, dp+".destination.subset", "the route sends %s to subset %s of %s, which selects no pod (defined at %s): Envoy would answer those requests 503 UH; deploy the version, or give the destination weight 0",
					share, d.dest.Subset, d.dest.Host, sub.origin)
			}
		}
	}
	if len(dests) < 2 {
		return
	}
	var missing []int
	var sum int64
	var parts []string
	for j, d := range dests {
		if !o.ix.has(item(p, j) + ".weight") {
			missing = append(missing, j)
		}
		sum += int64(d.weight)
		parts = append(parts, fmt.Sprintf("%s %d", destName(d.dest), d.weight))
	}
	if len(missing) > 0 {
		for _, j := range missing {
			v.objErr(o, item(p, j), "destination %s has no weight: a route with %d destinations needs a weight on each, summing to 100 (Istio would send it no traffic)",
				destName(dests[j].dest), len(dests))
		}
		return
	}
	if sum != 100 {
		v.objErr(o, p, "the destination weights sum to %d, want 100 (%s)", sum, strings.Join(parts, ", "))
	}
}

// emptySubset is the subset d names when it selects no pod.
func (v *validator) emptySubset(o *meshObject, d *networking.Destination) (subsetDef, bool) {
	if d.Subset == "" {
		return subsetDef{}, false
	}
	svc, _ := v.resolveHost(d.Host, o.namespace)
	if svc == nil {
		return subsetDef{}, false
	}
	sub, ok := v.subsets[svc.Name][d.Subset]
	return sub, ok && sub.empty
}

func destName(d *networking.Destination) string {
	if d == nil {
		return "(none)"
	}
	if d.Subset != "" {
		return d.Host + "/" + d.Subset
	}
	return d.Host
}

// destination checks that a destination names a service, a subset a
// DestinationRule defines for it, and a port of it.
func (v *validator) destination(o *meshObject, p string, d *networking.Destination) {
	if d == nil {
		v.objErr(o, p, "destination is required")
		return
	}
	svc, why := v.resolveHost(d.Host, o.namespace)
	if svc == nil {
		v.objErr(o, p+".host", "%s", why)
		return
	}
	if d.Subset != "" {
		if _, ok := v.subsets[svc.Name][d.Subset]; !ok {
			var defined []string
			for name := range v.subsets[svc.Name] {
				defined = append(defined, name)
			}
			sort.Strings(defined)
			msg := fmt.Sprintf("subset %s of %s is defined by no DestinationRule", d.Subset, svc.Name)
			if len(defined) > 0 {
				msg += fmt.Sprintf(" (defined subsets: %s)", strings.Join(defined, ", "))
			}
			v.objErr(o, p+".subset", "%s", msg)
		}
	}
	if port := d.GetPort().GetNumber(); port != 0 && int(port) != svc.Port {
		hint := ""
		if int(port) == svc.TargetPort {
			hint = fmt.Sprintf("; %d is its targetPort, destinations use the service port", port)
		}
		v.objErr(o, p+".port.number", "port %d is not a port of %s (ports: %d)%s", port, svc.Name, svc.Port, hint)
	}
}

// gateway checks a Gateway: Istio's webhook requires at least one server,
// each with a port and hosts (validateServer in pkg/config/validation/validation.go).
func (v *validator) gateway(o *meshObject) {
	spec := &o.gw.Spec
	if len(spec.Servers) == 0 {
		v.objErr(o, "spec", "gateway must have at least one server")
	}
	for i, srv := range spec.Servers {
		p := item("spec.servers", i)
		if srv.Port == nil {
			v.objErr(o, p, "server port is required")
		}
		if len(srv.Hosts) == 0 {
			v.objErr(o, p, "server config must contain at least one host")
		}
	}
}
