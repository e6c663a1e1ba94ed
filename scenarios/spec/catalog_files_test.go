package spec

import "os"

// catalogFS is the source folder of package catalog's embedded files, with
// the same paths: catalog/NAME.yaml and catalog/istio/.
var catalogFS = os.DirFS("..")

// catalogScenario reads a catalog scenario as package catalog does.
func catalogScenario(name string) (*Scenario, error) {
	return LoadFS(catalogFS, "catalog/"+name+".yaml", "scenarios/catalog/"+name+".yaml")
}
