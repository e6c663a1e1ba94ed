package derive

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/registry"
)

// MeshDir is the folder, beside the scenarios, of the Istio resources
// they apply: its multi-document files are no scenarios, so that
// `meshbench run DIR/*.yaml` takes the scenarios alone.
const MeshDir = "mesh"

// MeshFile is the file, relative to the scenarios (as their mesh: entries
// name it), that holds the Istio resources every derived scenario applies.
const MeshFile = MeshDir + "/istio.yaml"

// EntryFile is the file, relative to the scenarios, that holds the
// policies letting the load in where an allow-nothing policy would refuse
// it (entryPolicies); written only then.
const EntryFile = MeshDir + "/entry.yaml"

// Scenario is a derived scenario as its file says it (scenarios/spec/format.go):
// Write puts it in YAML that spec.LoadFile reads unchanged.
type Scenario struct {
	Name        string              `yaml:"name"`
	Description string              `yaml:"description"`
	Seed        int64               `yaml:"seed"`
	Topology    *registry.Topology  `yaml:"topology"`
	Mesh        []map[string]string `yaml:"mesh"`
	Load        Load                `yaml:"load"`
	Chaos       []map[string]any    `yaml:"chaos,omitempty"`
	// Expect holds each check as {kind: {field: value}}.
	Expect []map[string]any `yaml:"expect"`
}

// Load is the scenario's load.
type Load struct {
	Target   string `yaml:"target"`
	Rate     string `yaml:"rate"`
	Duration string `yaml:"duration"`
	Timeout  string `yaml:"timeout,omitempty"`
	// Concurrency caps the requests in flight (spec.Load).
	Concurrency int               `yaml:"concurrency,omitempty"`
	Headers     map[string]string `yaml:"headers,omitempty"`
	// Method is the requests' method ("" POST).
	Method   string    `yaml:"method,omitempty"`
	Variants []Variant `yaml:"variants,omitempty"`
}

// Variant is a named share of the load.
type Variant struct {
	Name    string            `yaml:"name"`
	Weight  int               `yaml:"weight"`
	Headers map[string]string `yaml:"headers,omitempty"`
	Target  string            `yaml:"target,omitempty"`
	// Method is the variant's requests' method ("" the load's, POST); the
	// sample app calls on with it.
	Method string `yaml:"method,omitempty"`
}

// Write writes the plan into dir: MeshFile with every Istio resource as
// read (each after a comment naming its file and line; a Telemetry only
// named, as its providers are meshConfig's), EntryFile when needed, and a
// scenario file per checked promise, the only files directly in dir. It
// returns the scenario files' paths.
func (p *Plan) Write(dir string) ([]string, error) {
	if err := os.MkdirAll(filepath.Join(dir, MeshDir), 0o755); err != nil {
		return nil, err
	}
	var mesh bytes.Buffer
	for _, o := range p.Objects {
		if o.Telemetry != nil {
			// Its providers live in meshConfig, which a folder of resources
			// does not carry, and no check is derived from it (not checked).
			fmt.Fprintf(&mesh, "# %s %s/%s from %s:%d left out: its tracing providers are meshConfig's\n", o.Kind, o.Namespace, o.Name, o.File, o.Line)
			continue
		}
		fmt.Fprintf(&mesh, "---\n# %s %s/%s from %s:%d\n", o.Kind, o.Namespace, o.Name, o.File, o.Line)
		var doc bytes.Buffer
		enc := yaml.NewEncoder(&doc)
		enc.SetIndent(2)
		if err := enc.Encode(o.Node); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", o.File, o.Line, err)
		}
		if err := enc.Close(); err != nil {
			return nil, err
		}
		p.mapLines(bytes.Count(mesh.Bytes(), []byte("\n")), doc.Bytes(), o)
		mesh.Write(doc.Bytes())
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(MeshFile)), mesh.Bytes(), 0o644); err != nil {
		return nil, err
	}
	if p.entry {
		var b bytes.Buffer
		b.WriteString("# meshbench's own: lets the derived loads into the workloads they enter, which an allow-nothing policy closes.\n")
		for _, pol := range p.entryPolicies() {
			b.WriteString("---\n")
			enc := yaml.NewEncoder(&b)
			enc.SetIndent(2)
			if err := enc.Encode(pol); err != nil {
				return nil, err
			}
			if err := enc.Close(); err != nil {
				return nil, err
			}
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(EntryFile)), b.Bytes(), 0o644); err != nil {
			return nil, err
		}
	}
	var files []string
	for _, c := range p.Checks {
		if c.Scenario == nil {
			continue
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, "# Derived by meshbench check from %s (%s): %s\n", c.Source, c.Resource, c.Promise)
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(c.Scenario); err != nil {
			return nil, fmt.Errorf("%s: %w", c.Name, err)
		}
		if err := enc.Close(); err != nil {
			return nil, err
		}
		f := filepath.Join(dir, c.Name+".yaml")
		if err := os.WriteFile(f, b.Bytes(), 0o644); err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// mapLines records, for the lines of o's document as written at offset
// lines into MeshFile, the lines of o's input they were read from: the
// written document has the input's shape, node for node, but not its
// lines (comments and flow style are not kept).
func (p *Plan) mapLines(offset int, written []byte, o *spec.IstioObject) {
	var doc yaml.Node
	if yaml.Unmarshal(written, &doc) != nil || o.Node == nil {
		return
	}
	if p.meshLines == nil {
		p.meshLines = map[int]Source{}
	}
	var walk func(w, in *yaml.Node)
	walk = func(w, in *yaml.Node) {
		if _, seen := p.meshLines[offset+w.Line]; !seen {
			p.meshLines[offset+w.Line] = Source{o.File, in.Line}
		}
		if len(w.Content) != len(in.Content) {
			return
		}
		for i := range w.Content {
			walk(w.Content[i], in.Content[i])
		}
	}
	w, in := &doc, o.Node
	if w.Kind == yaml.DocumentNode && in.Kind != yaml.DocumentNode && len(w.Content) == 1 {
		w = w.Content[0]
	}
	walk(w, in)
}

// MeshSource is the input file and line that line of the last written
// MeshFile holds, for an error found there.
func (p *Plan) MeshSource(line int) (Source, bool) {
	s, ok := p.meshLines[line]
	return s, ok
}
