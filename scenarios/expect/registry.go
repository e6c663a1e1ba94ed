package expect

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/meshbench/meshbench/internal/suggest"
	"github.com/meshbench/meshbench/reports"
)

var (
	kinds = map[string]func() Kind{}
	// names are the registered kinds in the order messages list them.
	names []string
)

// Register makes a kind known under its YAML key; newKind returns a new,
// empty value to decode into. It panics on a key registered twice.
func Register(name string, newKind func() Kind) {
	if _, dup := kinds[name]; dup {
		panic("expect: kind " + name + " registered twice")
	}
	kinds[name] = newKind
	names = append(names, name)
}

// The kinds, in the order the messages list them.
func init() {
	Register("split", func() Kind { return new(Split) })
	Register("successRate", func() Kind { return new(SuccessRate) })
	Register("latency", func() Kind { return new(Latency) })
	Register("status", func() Kind { return new(Status) })
	Register("retries", func() Kind { return new(Retries) })
	Register("ejections", func() Kind { return new(Ejections) })
	Register("overflows", func() Kind { return new(Overflows) })
	Register("responseFlags", func() Kind { return new(ResponseFlags) })
	Register("attempts", func() Kind { return new(Attempts) })
	Register("security", func() Kind { return new(Security) })
	Register("rotations", func() Kind { return new(Rotations) })
	Register("latencyShift", func() Kind { return new(LatencyShift) })
	Register("messages", func() Kind { return new(Messages) })
	Register("deadline", func() Kind { return new(Deadline) })
	Register("capacity", func() Kind { return new(Capacity) })
}

// Names are the registered kinds' YAML keys, in the order messages list them.
func Names() []string { return append([]string(nil), names...) }

// New returns a new, empty value of the kind registered under name; ok is
// false when none is. A strict field walk can read its type.
func New(name string) (k Kind, ok bool) {
	f, ok := kinds[name]
	if !ok {
		return nil, false
	}
	return f(), true
}

// UnknownKind is the message for a key that names no kind.
func UnknownKind(name string) string {
	return fmt.Sprintf("unknown expectation kind %q%s (known: %s)", name, suggest.Hint(name, names), strings.Join(names, ", "))
}

// Expectation is one item of an expect list: a mapping whose one key
// names its kind.
type Expectation struct {
	// Kind is the decoded kind; nil when the mapping names none or several
	// (Set then lists them, and Validate says so).
	Kind Kind
	// Set are the kinds the mapping names, in the file's order.
	Set []string
	// Line is where the expectation starts in the file.
	Line int
}

// Of is an expectation of kind k, as a scenario built in code states it.
func Of(k Kind) Expectation { return Expectation{Kind: k, Set: []string{k.Name()}} }

// UnmarshalYAML reads the mapping. It is the older form of yaml.v3's
// unmarshaler on purpose: its unmarshal function decodes with the
// caller's decoder, so a Decoder.KnownFields(true) refuses unknown fields
// of the kind too, at their lines, where yaml.Node.Decode would not.
func (e *Expectation) UnmarshalYAML(unmarshal func(any) error) error {
	var g grab
	if err := unmarshal(&g); err != nil {
		return err
	}
	n := g.node
	*e = Expectation{Line: n.Line}
	if n.Kind != yaml.MappingNode {
		// yaml.v3's own words for a value that is not a mapping.
		var m map[string]yaml.Node
		return unmarshal(&m)
	}
	var unknown []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		if _, ok := kinds[key.Value]; !ok {
			unknown = append(unknown, fmt.Sprintf("line %d: %s", key.Line, UnknownKind(key.Value)))
			continue
		}
		// A key without a value sets nothing, as a nil field did.
		if value.ShortTag() != "!!null" {
			e.Set = append(e.Set, key.Value)
		}
	}
	if len(unknown) > 0 {
		return &yaml.TypeError{Errors: unknown}
	}
	if len(e.Set) != 1 {
		return nil
	}
	k, _ := New(e.Set[0])
	// Decode {name: {...}} as map[string]*T, strictly.
	m := reflect.New(reflect.MapOf(reflect.TypeFor[string](), reflect.TypeOf(k)))
	if err := unmarshal(m.Interface()); err != nil {
		return err
	}
	e.Kind = m.Elem().MapIndex(reflect.ValueOf(e.Set[0])).Interface().(Kind)
	return nil
}

// grab keeps the node it is decoded from.
type grab struct{ node *yaml.Node }

func (g *grab) UnmarshalYAML(n *yaml.Node) error {
	g.node = n
	return nil
}

// Default fills in the kind's defaults, if it has any.
func (e *Expectation) Default() {
	if d, ok := e.Kind.(Defaulter); ok {
		d.Default()
	}
}

// Validate reports what is wrong with the expectation: that it names no
// kind or several, or what its kind's Validate finds.
func (e *Expectation) Validate(env Env) {
	switch {
	case len(e.Set) == 0:
		env.At("", "an expectation sets one of %s", strings.Join(names, ", "))
	case len(e.Set) > 1:
		env.At("", "an expectation sets exactly one of %s; this one sets %s (make each its own list item)", strings.Join(names, ", "), strings.Join(e.sorted(), " and "))
	default:
		e.Kind.Validate(env)
	}
}

// sorted is Set in the order of names.
func (e *Expectation) sorted() []string {
	var out []string
	for _, n := range names {
		for _, s := range e.Set {
			if s == n {
				out = append(out, n)
			}
		}
	}
	return out
}

// Judge checks the expectation on the outcome; a valid expectation has a Kind.
func (e *Expectation) Judge(out *Outcome) reports.Check {
	return e.Kind.Judge(out)
}
