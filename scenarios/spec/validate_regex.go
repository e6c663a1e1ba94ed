package spec

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/meshbench/meshbench/scenarios/spec/yamlnode"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Regexes in Istio resources become Envoy safe_regex matchers, which use
// RE2; Go's regexp is RE2 too, so a pattern it cannot compile is one the
// sidecars would NACK. They are checked here, at load time, with their line
// (Istio's webhook does the same: validateStringRegexp in
// pkg/config/validation/validation.go).

// regexFields are the messages that hold an RE2 pattern, and the field.
var regexFields = map[protoreflect.FullName]protoreflect.Name{
	"istio.networking.v1alpha3.StringMatch":  "regex",
	"istio.networking.v1alpha3.RegexRewrite": "match",
}

// spec is the decoded spec of an object, nil when it has none.
func (o *meshObject) spec() proto.Message {
	switch {
	case o.vs != nil:
		return &o.vs.Spec
	case o.dr != nil:
		return &o.dr.Spec
	case o.gw != nil:
		return &o.gw.Spec
	case o.pa != nil:
		return &o.pa.Spec
	case o.ap != nil:
		return &o.ap.Spec
	}
	return nil
}

// checkRegexes reports every pattern of o's spec that RE2 refuses.
func (l *loader) checkRegexes(o *meshObject) {
	m := o.spec()
	if m == nil {
		return
	}
	walkRegexes(m.ProtoReflect(), "spec", func(p, expr string) {
		if err := checkRE2(expr); err != nil {
			l.add(o.file, o.ix.line(p), o.field(p), "%v", err)
		}
	})
}

// walkRegexes calls found with the field path and text of every regex
// under m. A header, query parameter, method or authority match of regex
// "*" is a presence match to Istio (route.go canBeConvertedToPresentMatch),
// not a pattern; it is skipped.
func walkRegexes(m protoreflect.Message, p string, found func(p, expr string)) {
	if name, ok := regexFields[m.Descriptor().FullName()]; ok {
		fd := m.Descriptor().Fields().ByName(name)
		if m.Has(fd) {
			expr := m.Get(fd).String()
			if !(expr == "*" && presenceMatchField(p)) {
				found(yamlnode.Join(p, fd.JSONName()), expr)
			}
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		fp := yamlnode.Join(p, fd.JSONName())
		switch {
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				walkRegexes(mv.Message(), yamlnode.Join(fp, k.String()), found)
				return true
			})
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				walkRegexes(v.List().Get(i).Message(), yamlnode.Item(fp, i), found)
			}
		case !fd.IsMap() && !fd.IsList() && fd.Message() != nil:
			walkRegexes(v.Message(), fp, found)
		}
		return true
	})
}

// presenceMatchField reports whether the match at field path p becomes an
// Envoy header or query parameter matcher (where regex "*" means present).
func presenceMatchField(p string) bool {
	i := strings.LastIndex(p, ".match[")
	if i < 0 {
		return false
	}
	rest := p[i+len(".match["):]
	_, field, _ := strings.Cut(rest, "].")
	name, _, _ := strings.Cut(field, ".")
	switch name {
	case "headers", "withoutHeaders", "queryParams", "method", "authority":
		return true
	}
	return false
}

// checkRE2 compiles expr as RE2, within Istio's length limit.
func checkRE2(expr string) error {
	if len(expr) > MaxRegexLength {
		return fmt.Errorf("regex is %d characters long; the limit is %d", len(expr), MaxRegexLength)
	}
	if _, err := regexp.Compile(expr); err != nil {
		return fmt.Errorf("invalid regex %q (RE2, as Envoy's safe_regex): %s", expr, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return nil
}
