// Package yamlnode words messages about a YAML document: the path of a
// field ("mesh[0].spec.http[1].retries"), what a node holds ("a list", the
// string "x"). The name a typo meant is internal/suggest's.
package yamlnode

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Join appends key to the field path p.
func Join(p, key string) string {
	if p == "" {
		return key
	}
	if key == "" {
		return p
	}
	return p + "." + key
}

// Item is the i-th element of the list at p.
func Item(p string, i int) string { return fmt.Sprintf("%s[%d]", p, i) }

// Deref follows aliases (at most 100) and unwraps a document node.
func Deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return n.Content[0]
	}
	return n
}

// IsNull reports whether n is missing or null.
func IsNull(n *yaml.Node) bool {
	n = Deref(n)
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// Describe names a node's type for messages: `a string "x"`, `a list`.
func Describe(n *yaml.Node) string {
	n = Deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "nothing (null)"
		}
		return fmt.Sprintf("%s %q", TagWord(n.ShortTag()), n.Value)
	}
	return "nothing"
}

// DescribeKind names a node's kind without its value: "a string", "a list".
func DescribeKind(n *yaml.Node) string {
	n = Deref(n)
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

// TagWord names a scalar's tag for messages: "the string", "the integer".
func TagWord(tag string) string {
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
