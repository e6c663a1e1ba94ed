package scenarios

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// catalogFS holds the built-in scenarios (catalog/*.yaml) and the Istio
// files they use (catalog/istio/).
//
//go:embed catalog
var catalogFS embed.FS

// catalogDisplayDir is how errors and Scenario.Path name catalog files: as
// they are in the source tree.
const catalogDisplayDir = "scenarios/catalog"

// CatalogNames lists the built-in scenarios by name (the file name without
// .yaml), sorted.
func CatalogNames() []string {
	files, _ := fs.Glob(catalogFS, "catalog/*.yaml")
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, strings.TrimSuffix(path.Base(f), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// CatalogScenario reads and checks the built-in scenario name.
func CatalogScenario(name string) (*Scenario, error) {
	for _, n := range CatalogNames() {
		if n == name {
			file := name + ".yaml"
			return LoadFS(catalogFS, "catalog/"+file, catalogDisplayDir+"/"+file)
		}
	}
	return nil, fmt.Errorf("no catalog scenario %q (catalog: %s)", name, strings.Join(CatalogNames(), ", "))
}

// Catalog reads and checks every built-in scenario, in name order. The
// error, if any, holds the problems of all of them.
func Catalog() ([]*Scenario, error) {
	var out []*Scenario
	var errs Errors
	for _, name := range CatalogNames() {
		s, err := CatalogScenario(name)
		if err != nil {
			if es, ok := err.(Errors); ok {
				errs = append(errs, es...)
			} else {
				errs = append(errs, &Error{File: catalogDisplayDir + "/" + name + ".yaml", Msg: err.Error()})
			}
			continue
		}
		out = append(out, s)
	}
	if len(errs) > 0 {
		errs.sort()
		return nil, errs
	}
	return out, nil
}
