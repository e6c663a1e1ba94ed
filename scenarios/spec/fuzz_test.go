package spec

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/meshbench/meshbench/scenarios/spec/protoyaml"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
)

// fuzzMeshFile is where the fuzzed mesh file sits, beside the catalog's.
const fuzzMeshFile = "catalog/istio/fuzz.yaml"

var meshFileRE = regexp.MustCompile(`file: (istio/[^\s}]+)`)

// catalogSeeds are the catalog's scenarios and testdata's, each with the
// first mesh file it names moved to fuzzMeshFile (and that file's content),
// so that both the scenario and a mesh file get mutated.
func catalogSeeds(f *testing.F) (seeds [][2][]byte) {
	f.Helper()
	files, err := fs.Glob(catalogFS, "catalog/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, _ := fs.ReadFile(catalogFS, name)
		seeds = append(seeds, seedWithMeshFile(data, func(p string) []byte {
			b, _ := fs.ReadFile(catalogFS, path.Join("catalog", p))
			return b
		}))
	}
	for _, dir := range []string{"testdata/good", "testdata/bad"} {
		names, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, name := range names {
			data, _ := os.ReadFile(name)
			seeds = append(seeds, seedWithMeshFile(data, func(p string) []byte {
				b, _ := os.ReadFile(filepath.Join(dir, p))
				return b
			}))
		}
	}
	return seeds
}

func seedWithMeshFile(scenario []byte, read func(string) []byte) [2][]byte {
	m := meshFileRE.FindSubmatchIndex(scenario)
	if m == nil {
		return [2][]byte{scenario, nil}
	}
	mesh := read(string(scenario[m[2]:m[3]]))
	out := append(append(append([]byte{}, scenario[:m[2]]...), "istio/fuzz.yaml"...), scenario[m[3]:]...)
	return [2][]byte{out, mesh}
}

// catalogFiles is the embedded catalog as a MapFS, to add fuzzed files to.
func catalogFiles(f *testing.F) fstest.MapFS {
	f.Helper()
	out := fstest.MapFS{}
	err := fs.WalkDir(catalogFS, "catalog", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(catalogFS, p)
		out[p] = &fstest.MapFile{Data: data}
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
	return out
}

// FuzzLoadFS: whatever the scenario and mesh file hold, loading returns
// either a scenario within the limits or Errors that each name a file and
// say something; it never panics.
func FuzzLoadFS(f *testing.F) {
	for _, s := range catalogSeeds(f) {
		f.Add(s[0], s[1])
	}
	base := catalogFiles(f)
	f.Fuzz(func(t *testing.T, scenario, mesh []byte) {
		fsys := fstest.MapFS{}
		for k, v := range base {
			fsys[k] = v
		}
		fsys["catalog/fuzz-scenario.yaml"] = &fstest.MapFile{Data: scenario}
		fsys[fuzzMeshFile] = &fstest.MapFile{Data: mesh}
		s, err := LoadFS(fsys, "catalog/fuzz-scenario.yaml", "fuzz.yaml")
		if err != nil {
			checkErrors(t, err)
			if s != nil {
				t.Fatalf("a scenario and an error: %v", err)
			}
			return
		}
		checkWithinLimits(t, s)
	})
}

func checkErrors(t *testing.T, err error) {
	t.Helper()
	var errs Errors
	if !errors.As(err, &errs) || len(errs) == 0 {
		t.Fatalf("want Errors, got %T: %v", err, err)
	}
	for _, e := range errs {
		if e.File == "" || e.Msg == "" || e.Line < 0 {
			t.Fatalf("an error without its file, line or message: %#v", e)
		}
	}
}

func checkWithinLimits(t *testing.T, s *Scenario) {
	t.Helper()
	if r := s.Load.Rate.PerSecond(); !(r > 0) || r > MaxRate {
		t.Fatalf("accepted rate %s (%v/s)", s.Load.Rate, r)
	}
	if s.Load.Duration < MinDuration || s.Load.Duration > MaxDuration {
		t.Fatalf("accepted duration %s", s.Load.Duration)
	}
	pods := 0
	for _, svc := range s.Topology.Services {
		for _, v := range svc.Versions {
			pods += v.Replicas
		}
	}
	if pods > MaxPods {
		t.Fatalf("accepted %d pods", pods)
	}
}

// specTypes are the Istio specs the converter decodes, by kind.
var specTypes = map[string]func() proto.Message{
	"VirtualService":      func() proto.Message { return &networking.VirtualService{} },
	"DestinationRule":     func() proto.Message { return &networking.DestinationRule{} },
	"Gateway":             func() proto.Message { return &networking.Gateway{} },
	"PeerAuthentication":  func() proto.Message { return &security.PeerAuthentication{} },
	"AuthorizationPolicy": func() proto.Message { return &security.AuthorizationPolicy{} },
	"HTTPRetry":           func() proto.Message { return &networking.HTTPRetry{} },
}

// specSeeds are the Istio objects of the catalog and testdata, inline or
// in mesh files, as (kind, spec YAML).
func specSeeds(f *testing.F) (seeds [][2]string) {
	f.Helper()
	var docs [][]byte
	_ = fs.WalkDir(catalogFS, "catalog", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(catalogFS, p)
			docs = append(docs, b)
		}
		return nil
	})
	for _, g := range []string{"testdata/*/*.yaml", "testdata/*/istio/*.yaml"} {
		names, _ := filepath.Glob(g)
		for _, n := range names {
			b, _ := os.ReadFile(n)
			docs = append(docs, b)
		}
	}
	for _, b := range docs {
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var n yaml.Node
			if dec.Decode(&n) != nil {
				break
			}
			collectSpecs(&n, &seeds)
		}
	}
	return seeds
}

// collectSpecs finds every mapping with kind and spec under n.
func collectSpecs(n *yaml.Node, seeds *[][2]string) {
	if n.Kind == yaml.MappingNode {
		var kind string
		var spec *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			switch n.Content[i].Value {
			case "kind":
				kind = n.Content[i+1].Value
			case "spec":
				spec = n.Content[i+1]
			}
		}
		if specTypes[kind] != nil && spec != nil {
			if b, err := yaml.Marshal(spec); err == nil {
				*seeds = append(*seeds, [2]string{kind, string(b)})
			}
		}
	}
	for _, c := range n.Content {
		collectSpecs(c, seeds)
	}
}

// FuzzSpecConverter: the strict YAML→proto converter never panics, reports
// each problem at a line of the input, and what it accepts is a valid
// message of its kind.
func FuzzSpecConverter(f *testing.F) {
	for _, s := range specSeeds(f) {
		f.Add(s[0], s[1])
	}
	f.Add("HTTPRetry", "{attempts: 3, retryOn: 5xx, perTryTimeout: 250ms}")
	f.Fuzz(func(t *testing.T, kind, spec string) {
		newMsg := specTypes[kind]
		if newMsg == nil {
			return
		}
		var doc yaml.Node
		if yaml.Unmarshal([]byte(spec), &doc) != nil || len(doc.Content) == 0 {
			return
		}
		l := &loader{display: "fuzz.yaml", budget: newNodeBudget()}
		if !l.checkBudget(&doc, "fuzz.yaml") {
			return // what the loader refuses before converting
		}
		// YAML breaks lines at \n, \r and \r\n (YAML 1.2, 5.4).
		lines := strings.Count(strings.ReplaceAll(spec, "\r\n", "\n"), "\n") + strings.Count(strings.ReplaceAll(spec, "\r\n", ""), "\r") + 1
		c := &protoyaml.Converter{Report: func(line int, p, msg string) {
			if line < 0 || line > lines || msg == "" {
				t.Fatalf("problem at line %d of %d: %s: %q", line, lines, p, msg)
			}
		}}
		m := newMsg()
		c.Decode(doc.Content[0], "spec", m)
		if c.Failed {
			return
		}
		if _, err := proto.Marshal(m); err != nil {
			t.Fatalf("accepted %s does not marshal: %v", kind, err)
		}
	})
}

// FuzzByteRate: a bandwidth that parses is positive.
func FuzzByteRate(f *testing.F) {
	for _, s := range []string{"64KB/s", "1MB/s", "512 KB/s", "0KB/s", "-1MB/s", "9007199254740993MB/s", "1GB/s", "KB/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var r ByteRate
		if err := r.UnmarshalYAML(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}); err == nil && r <= 0 {
			t.Fatalf("%q reads as %d KB/s", s, r)
		}
	})
}
