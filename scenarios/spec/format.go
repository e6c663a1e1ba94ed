// Package spec is the scenario format: its types, defaults, loading and
// validation. Package run drives a scenario; package catalog holds the
// built-in ones.
//
// A scenario is one YAML file: the topology of the mesh, the Istio resources
// to apply to it (inline or from other YAML files), the load to drive and what
// to expect of the outcome. Reading a scenario checks all of it before
// anything is started: bad input gets an error naming the file, the line and
// the field, never a half-started mesh.
package spec

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/scenarios/expect"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
)

// Scenario is one scenario file, read and checked.
type Scenario struct {
	// Name identifies the scenario in reports; required, lower-case letters,
	// digits and dashes.
	Name string `yaml:"name"`
	// Description says in a sentence what the scenario proves.
	Description string `yaml:"description"`
	// Seed makes the run reproducible (variant assignment, latency draws); 0 means 1.
	Seed int64 `yaml:"seed"`
	// Topology is the mesh's services; when the file has none it is
	// registry.DefaultTopology(). Defaults are filled in after reading:
	// namespace "default", port 80, targetPort 8080, replicas 1,
	// errorStatus 503 and path "/"+name.
	Topology *registry.Topology `yaml:"topology"`
	// Mesh lists the Istio resources to apply: each item is either
	// {file: rel/path.yaml}, a YAML file relative to the scenario file that may
	// hold several documents, or an inline Istio object (apiVersion, kind,
	// metadata, spec).
	Mesh []MeshEntry `yaml:"mesh"`
	// MeshConfig changes mesh-wide settings.
	MeshConfig *MeshConfigSpec `yaml:"meshConfig"`
	// Load is the traffic meshbench drives into the mesh.
	Load Load `yaml:"load"`
	// SteadyState is the hypothesis checked in short load phases before and
	// after the main one (chaos.go).
	SteadyState *SteadyState `yaml:"steadyState"`
	// Chaos lists the faults injected during the main load phase, on a
	// schedule (chaos.go).
	Chaos []ChaosStep `yaml:"chaos"`
	// Expect lists the checks the run must pass.
	Expect []expect.Expectation `yaml:"expect"`

	// Path is the file the scenario was read from, as the user named it.
	Path string `yaml:"-"`
	// Config holds the Istio resources of Mesh, parsed and checked.
	Config meshconfig.Config `yaml:"-"`
	// Warnings are what the scenario may do but likely did not mean, with
	// file and line, as istioctl analyze warns (a subset that selects no
	// pod); the run prints them.
	Warnings Errors `yaml:"-"`
}

// MeshEntry is one item of Scenario.Mesh: a reference to a YAML file of Istio
// resources, or one inline Istio object.
type MeshEntry struct {
	// File is the path of a YAML file of Istio resources, relative to the
	// scenario file; every document in it is read.
	File string
	// Object is an inline Istio object, kept as YAML so that problems in it can
	// be reported with their line.
	Object *yaml.Node
	// Line is where the entry starts in the scenario file.
	Line int
}

// UnmarshalYAML reads {file: path} or an inline object.
func (m *MeshEntry) UnmarshalYAML(n *yaml.Node) error {
	*m = MeshEntry{Line: n.Line}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return typeError(n.Line, "a mesh entry is {file: path.yaml} or an inline Istio object (apiVersion, kind, metadata, spec)")
	}
	var file *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "file" {
			file = n.Content[i+1]
		}
	}
	if file == nil {
		m.Object = n
		return nil
	}
	if len(n.Content) != 2 {
		return typeError(n.Line, "a mesh entry is either {file: path.yaml} or an inline Istio object, not both")
	}
	if file.Kind != yaml.ScalarNode || file.Tag != "!!str" || file.Value == "" {
		return typeError(file.Line, "file: want the path of a YAML file, relative to the scenario file")
	}
	m.File = file.Value
	return nil
}

// typeError is an error that yaml.v3 collects (instead of stopping) and that
// carries its line the way yaml.v3's own errors do.
func typeError(line int, msg string) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", line, msg)}}
}

// Load is the traffic meshbench drives into the mesh: requests at a fixed
// rate to one service, for a while.
type Load struct {
	// Target is the name of the service the requests go to; required.
	Target string `yaml:"target"`
	// Path of the requests; default: the target service's Path.
	Path string `yaml:"path"`
	// Method of the requests; default POST. Only POST, PUT and PATCH
	// requests carry a body (a small JSON object).
	Method string `yaml:"method"`
	// Rate of requests; required, > 0, unless Plan is set.
	Rate units.Rate `yaml:"rate"`
	// Duration of the load phase; required, 100ms to 10m, unless Plan is
	// set (then it is filled in as the plan's length).
	Duration units.Duration `yaml:"duration"`
	// Plan replaces the constant Rate with steps or a ramp (plan.go); it
	// is refused together with rate or duration.
	Plan *Plan `yaml:"plan"`
	// Timeout of one request; default 5s.
	Timeout units.Duration `yaml:"timeout"`
	// Concurrency caps the requests in flight (fortio's -c, vegeta's
	// -max-workers); 0 leaves the pacer open-loop up to 512. At the cap,
	// sends wait, and the wait counts as latency (from the intended time).
	Concurrency int `yaml:"concurrency"`
	// Headers sent with every request.
	Headers map[string]string `yaml:"headers"`
	// Variants split the requests deterministically by weight into named groups with their own headers,
	// target, path or method (e.g. 20% with end-user: jason); checks can be restricted to one variant.
	Variants []Variant `yaml:"variants"`
}

// Variant is a named share of the requests with its own headers, target,
// path or method.
type Variant struct {
	// Name identifies the variant in expectations; unique.
	Name string `yaml:"name"`
	// Weight is the variant's share of the requests relative to the other
	// variants' weights; > 0.
	Weight int `yaml:"weight"`
	// Headers are added to the variant's requests, over Load.Headers.
	Headers map[string]string `yaml:"headers"`
	// Target sends the variant's requests to another service (through the
	// ingress gateway), with Path as that service's default path.
	Target string `yaml:"target"`
	// Path overrides the path of the variant's requests.
	Path string `yaml:"path"`
	// Method overrides Load.Method for the variant's requests. The sample
	// app makes its own calls with the method it was called with.
	Method string `yaml:"method"`
}

// MeshConfigSpec holds the mesh-wide settings a scenario may change.
type MeshConfigSpec struct {
	// DefaultHTTPRetryPolicy is meshConfig.defaultHttpRetryPolicy, an Istio HTTPRetry.
	DefaultHTTPRetryPolicy yaml.Node `yaml:"defaultHttpRetryPolicy"`
	// CompatibilityVersion picks an Istio release's defaults, as the Helm value
	// of that name: "1.23" (or older) restores the default retry of 503.
	CompatibilityVersion string `yaml:"compatibilityVersion"`
	// CertTTL is the lifetime of workload certificates (Istio's default 24h);
	// a few seconds makes the run rotate them under load.
	CertTTL units.Duration `yaml:"certTTL"`
	// AccessLogFile is meshConfig.accessLogFile (usually /dev/stdout): every
	// proxy logs each request there. On local, every path becomes one file
	// per proxy in the run folder (access-logs/<proxy>.log).
	AccessLogFile string `yaml:"accessLogFile"`
	// AccessLogEncoding is meshConfig.accessLogEncoding: TEXT (default) or JSON.
	AccessLogEncoding string `yaml:"accessLogEncoding"`
	// AccessLogFormat is meshConfig.accessLogFormat: a text format string,
	// or under JSON an object of labels; empty: Istio's default.
	AccessLogFormat string `yaml:"accessLogFormat"`
	// EnableTracing is meshConfig.enableTracing (Istio's default: true).
	EnableTracing *bool `yaml:"enableTracing"`
	// DefaultConfig is meshConfig.defaultConfig, the proxies' ProxyConfig:
	// only its tracing.
	DefaultConfig *ProxyConfigSpec `yaml:"defaultConfig"`
	// ExtensionProviders are meshConfig.extensionProviders (Istio's
	// MeshConfig.ExtensionProvider): tracing providers of kind zipkin.
	ExtensionProviders yaml.Node `yaml:"extensionProviders"`
	// DefaultProviders is meshConfig.defaultProviders: only tracing.
	DefaultProviders yaml.Node `yaml:"defaultProviders"`
}

// ProxyConfigSpec is the part of meshConfig.defaultConfig a scenario may set.
type ProxyConfigSpec struct {
	// Tracing is defaultConfig.tracing, an Istio Tracing: sampling,
	// zipkin.address, customTags, maxPathTagLength.
	Tracing yaml.Node `yaml:"tracing"`
}

// DefaultTimeout is the per-request timeout when the scenario gives none.
const DefaultTimeout = units.Duration(5 * time.Second)

// Error is one problem in an input file.
type Error struct {
	// File is the file as the user named it.
	File string
	// Line is 1-based; 0 when the problem has no single line.
	Line int
	// Field is the path of the offending field, like mesh[0].spec.http[0].route.
	Field string
	// Msg says what is wrong.
	Msg string
}

// Error formats as "file:line: field: msg", leaving out empty parts.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a scenario, sorted by file and line.
type Errors []*Error

// Error joins the problems with newlines.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Lines formats each problem as "file:line: field: msg"; nil when there is none.
func (es Errors) Lines() []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Error())
	}
	return out
}

// Sort orders the problems by file and line, keeping the order of discovery
// among equals.
func (es Errors) Sort() {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].File != es[j].File {
			return es[i].File < es[j].File
		}
		return es[i].Line < es[j].Line
	})
}
