// Package catalog holds the built-in scenarios: the YAML files of this
// folder and the Istio files they use (istio/), embedded in the binary.
package catalog

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/meshbench/meshbench/scenarios/spec"
)

// files holds the built-in scenarios (*.yaml) and the Istio files they
// use (istio/).
//
//go:embed *.yaml istio
var files embed.FS

// displayDir is how errors and Scenario.Path name catalog files: as they
// are in the source tree.
const displayDir = "scenarios/catalog"

// Names lists the built-in scenarios by name (the file name without
// .yaml), sorted.
func Names() []string {
	found, _ := fs.Glob(files, "*.yaml")
	names := make([]string, 0, len(found))
	for _, f := range found {
		names = append(names, strings.TrimSuffix(path.Base(f), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// Load reads and checks the built-in scenario name.
func Load(name string) (*spec.Scenario, error) {
	for _, n := range Names() {
		if n == name {
			file := name + ".yaml"
			return spec.LoadFS(files, file, displayDir+"/"+file)
		}
	}
	return nil, fmt.Errorf("no catalog scenario %q (catalog: %s)", name, strings.Join(Names(), ", "))
}

// All reads and checks every built-in scenario, in name order. The error,
// if any, holds the problems of all of them.
func All() ([]*spec.Scenario, error) {
	var out []*spec.Scenario
	var errs spec.Errors
	for _, name := range Names() {
		s, err := Load(name)
		if err != nil {
			if es, ok := err.(spec.Errors); ok {
				errs = append(errs, es...)
			} else {
				errs = append(errs, &spec.Error{File: displayDir + "/" + name + ".yaml", Msg: err.Error()})
			}
			continue
		}
		out = append(out, s)
	}
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return out, nil
}

// IstioFileSets lists, once each, the sets of Istio files (slash paths
// relative to the catalog) that the catalog's scenarios apply as their
// whole mesh; scenarios with inline resources beside their files are left
// out, since their files alone are not the mesh they promise about.
func IstioFileSets() ([][]string, error) {
	scs, err := All()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var sets [][]string
	for _, sc := range scs {
		var files []string
		for _, m := range sc.Mesh {
			if m.File == "" {
				files = nil
				break
			}
			files = append(files, m.File)
		}
		key := strings.Join(files, " ")
		if len(files) == 0 || seen[key] {
			continue
		}
		seen[key] = true
		sets = append(sets, files)
	}
	return sets, nil
}
