package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/scenarios/spec/protoyaml"
	"github.com/meshbench/meshbench/scenarios/spec/yamlnode"
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
		l.errs.Sort()
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
	v.expectations("expect", s.Expect)
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
	l.warns.Sort()
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
		c := &protoyaml.Converter{Report: func(line int, p, msg string) { l.add(l.display, line, p, "%s", msg) }}
		out.DefaultHTTPRetryPolicy = &networking.HTTPRetry{}
		c.Decode(n, "meshConfig.defaultHttpRetryPolicy", out.DefaultHTTPRetryPolicy)
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
		l.add(l.display, root.Line, "", "a scenario is a mapping with name, topology, mesh, load and expect; got %s", yamlnode.DescribeKind(root))
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
		case len(extra.Content) == 0 || yamlnode.IsNull(extra.Content[0]):
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
		return fmt.Sprintf("want %s, got %s %q", goTypeWord(m[3]), yamlnode.TagWord("!!"+m[1]), m[2])
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
		s.Expect[i].Line = l.ix.line(yamlnode.Item("expect", i))
	}
	if ss := s.SteadyState; ss != nil {
		for i := range ss.Expect {
			ss.Expect[i].Line = l.ix.line(yamlnode.Item("steadyState.expect", i))
		}
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
	*s.Topology = registry.WithDefaults(*s.Topology)
	t := s.Topology
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
	for i := range s.Expect {
		s.Expect[i].Default()
	}
	if ss := s.SteadyState; ss != nil {
		if ss.Duration == 0 {
			ss.Duration = DefaultSteadyStateDuration
		}
		if ss.Rate.Per == 0 && ld.Plan == nil {
			// The phases run at the load's rate; a plan has none to give
			// (validation asks for one).
			ss.Rate = ld.Rate
		}
		for i := range ss.Expect {
			ss.Expect[i].Default()
		}
	}
	if r := ld.Plan; r != nil && r.Ramp != nil && r.Ramp.Every == 0 {
		r.Ramp.Every = DefaultRampEvery
	}
}
