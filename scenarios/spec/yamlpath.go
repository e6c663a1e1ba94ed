package spec

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/meshbench/meshbench/internal/suggest"
	"github.com/meshbench/meshbench/scenarios/expect"
	"github.com/meshbench/meshbench/scenarios/spec/yamlnode"
	"go.yaml.in/yaml/v3"
)

// Walking YAML nodes: unknown fields, field paths and their lines, and
// the words and suggestions of the loader's messages.

// checkFields walks a YAML node alongside the Go type it decodes into and
// reports unknown fields (with a suggestion) and values that the type's own
// UnmarshalYAML refuses, each at its line and field path. yaml.v3 reports
// unknown fields too (Decoder.KnownFields), but stops at the first failing
// UnmarshalYAML and then gives no line.
func checkFields(n *yaml.Node, t reflect.Type, p string, add func(line int, field, msg string)) {
	n = yamlnode.Deref(n)
	if n == nil || yamlnode.IsNull(n) {
		return
	}
	if t == reflect.TypeOf(yaml.Node{}) {
		return
	}
	if t == reflect.TypeFor[expect.Expectation]() {
		checkExpectation(n, p, add)
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
				checkFields(c, t.Elem(), yamlnode.Item(p, i), add)
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				checkFields(n.Content[i+1], t.Elem(), yamlnode.Join(p, n.Content[i].Value), add)
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
				// An ",inline" map takes the other keys (expect.Latency's
				// statistics); a scalar there is more likely a misspelt field.
				if et := inline.Elem(); et.Kind() != reflect.Struct || yamlnode.Deref(n.Content[i+1]).Kind == yaml.MappingNode {
					checkFields(n.Content[i+1], et, yamlnode.Join(p, k.Value), add)
					continue
				}
			}
			if !ok {
				add(k.Line, yamlnode.Join(p, k.Value), fmt.Sprintf("unknown field %q%s; known fields: %s",
					k.Value, suggest.Hint(k.Value, names), strings.Join(names, ", ")))
				continue
			}
			checkFields(n.Content[i+1], f, yamlnode.Join(p, k.Value), add)
		}
	}
}

// checkExpectation walks an expect item: each key names a kind, whose
// type the walk descends into.
func checkExpectation(n *yaml.Node, p string, add func(line int, field, msg string)) {
	if n.Kind != yaml.MappingNode {
		return // yaml.v3 reports the type mismatch
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		kind, ok := expect.New(k.Value)
		if !ok {
			add(k.Line, yamlnode.Join(p, k.Value), expect.UnknownKind(k.Value))
			continue
		}
		checkFields(n.Content[i+1], reflect.TypeOf(kind), yamlnode.Join(p, k.Value), add)
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
	n = yamlnode.Deref(n)
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
			c := yamlnode.Join(p, k.Value)
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
			cp := yamlnode.Item(p, i)
			if _, ok := ix.lines[yamlnode.Deref(c).Line]; !ok && yamlnode.Deref(c).Kind == yaml.ScalarNode {
				ix.lines[yamlnode.Deref(c).Line] = cp
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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
