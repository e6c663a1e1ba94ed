// Package protoyaml decodes the YAML of an Istio spec into its proto
// message strictly: unknown fields, values of the wrong type, two members of
// a oneof and keys set twice are each reported at their own line.
package protoyaml

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/meshbench/meshbench/internal/suggest"
	"github.com/meshbench/meshbench/scenarios/spec/yamlnode"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Converter turns the YAML of an Istio spec into the JSON that protojson
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
type Converter struct {
	// Report receives each problem: its line, field path and message.
	Report func(line int, field, msg string)
	// Failed is set once a problem was reported; a Decode with Failed set
	// reports the spec's problems but does not decode it.
	Failed bool
}

func (c *Converter) errorf(n *yaml.Node, p, format string, args ...any) {
	c.Failed = true
	c.Report(n.Line, p, fmt.Sprintf(format, args...))
}

// Decode checks the spec node n (at field path p) and decodes it into m.
func (c *Converter) Decode(n *yaml.Node, p string, m proto.Message) {
	v := c.message(n, m.ProtoReflect().Descriptor(), p)
	if c.Failed {
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
func (c *Converter) protoError(n *yaml.Node, p string, err error) {
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
	n = yamlnode.Deref(n)
	if n == nil {
		return nil, ""
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Value == name {
				return k, yamlnode.Join(p, name)
			}
			if f, fp := findKey(n.Content[i+1], yamlnode.Join(p, k.Value), name); f != nil {
				return f, fp
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if f, fp := findKey(c, yamlnode.Item(p, i), name); f != nil {
				return f, fp
			}
		}
	}
	return nil, ""
}

// message converts a node that holds the message md.
func (c *Converter) message(n *yaml.Node, md protoreflect.MessageDescriptor, p string) any {
	n = yamlnode.Deref(n)
	if yamlnode.IsNull(n) {
		return nil
	}
	switch md.FullName() {
	case "google.protobuf.Duration":
		// Istio reads durations with time.ParseDuration ("250ms", "3m"; see
		// github.com/golang/protobuf/jsonpb/decode.go, which
		// istio.io/api's *_json.gen.go use) and its CRDs check them with CEL
		// duration(); protojson wants seconds ("0.250s"), so convert.
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			c.errorf(n, p, "want a duration like 250ms or 2s, got %s", yamlnode.Describe(n))
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
			c.errorf(n, p, "want a string, got %s", yamlnode.Describe(n))
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
		c.errorf(n, p, "want a mapping (%s), got %s", md.Name(), yamlnode.Describe(n))
		return nil
	}
	out := map[string]any{}
	seen := map[protoreflect.FullName]*yaml.Node{}
	oneofs := map[protoreflect.FullName]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kp := yamlnode.Join(p, k.Value)
		if k.Kind != yaml.ScalarNode || k.Value == "<<" {
			c.errorf(k, p, "want a field name, got %s", yamlnode.Describe(k))
			continue
		}
		fd := md.Fields().ByJSONName(k.Value)
		if fd == nil {
			fd = md.Fields().ByTextName(k.Value)
		}
		if fd == nil {
			c.errorf(k, kp, "unknown field %q%s; %s has %s", k.Value, suggest.Hint(k.Value, jsonNames(md)), md.Name(), strings.Join(jsonNames(md), ", "))
			continue
		}
		if first := seen[fd.FullName()]; first != nil {
			c.errorf(k, kp, "%s is set twice (first at line %d)", k.Value, first.Line)
			continue
		}
		seen[fd.FullName()] = k
		if yamlnode.IsNull(v) {
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
func (c *Converter) field(n *yaml.Node, fd protoreflect.FieldDescriptor, p string) any {
	n = yamlnode.Deref(n)
	switch {
	case fd.IsList():
		if n.Kind != yaml.SequenceNode {
			c.errorf(n, p, "want a list, got %s", yamlnode.Describe(n))
			return nil
		}
		out := make([]any, 0, len(n.Content))
		for i, e := range n.Content {
			if yamlnode.IsNull(e) {
				c.errorf(yamlnode.Deref(e), yamlnode.Item(p, i), "a list item may not be empty")
				continue
			}
			out = append(out, c.single(e, fd, yamlnode.Item(p, i)))
		}
		return out
	case fd.IsMap():
		if n.Kind != yaml.MappingNode {
			c.errorf(n, p, "want a mapping, got %s", yamlnode.Describe(n))
			return nil
		}
		out := map[string]any{}
		seen := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := yamlnode.Deref(n.Content[i]), n.Content[i+1]
			kp := yamlnode.Join(p, k.Value)
			if k.Kind != yaml.ScalarNode {
				c.errorf(k, p, "want a key, got %s", yamlnode.Describe(k))
				continue
			}
			if fd.MapKey().Kind() == protoreflect.StringKind && k.ShortTag() != "!!str" {
				c.errorf(k, kp, "want a string key, got %s; quote it", yamlnode.Describe(k))
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

func (c *Converter) single(n *yaml.Node, fd protoreflect.FieldDescriptor, p string) any {
	if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
		return c.message(n, fd.Message(), p)
	}
	return c.scalar(n, fd, p)
}

// scalar converts a value of a scalar or enum field. Types are strict, as in
// the CRD's schema: a string field takes only a YAML string, an integer
// field only a YAML integer.
func (c *Converter) scalar(n *yaml.Node, fd protoreflect.FieldDescriptor, p string) any {
	n = yamlnode.Deref(n)
	if yamlnode.IsNull(n) {
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
		c.errorf(n, p, "want %s, got %s%s", what, yamlnode.Describe(n), hint)
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
			c.errorf(n, p, "invalid value %q; want one of %s%s", n.Value, strings.Join(names, ", "), suggest.Hint(n.Value, names))
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
