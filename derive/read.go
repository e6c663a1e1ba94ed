package derive

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/meshbench/meshbench/scenarios/spec"
)

// Stdin is the path that names standard input.
const Stdin = "-"

// ReadPaths reads the YAML of files, of folders (every *.yaml and *.yml
// under them, in name order) and, for "-", of stdin. Files are read as the
// scenario loader reads mesh files: regular files only, within its limits.
func ReadPaths(paths []string, stdin io.Reader) ([]spec.IstioInput, error) {
	var out []spec.IstioInput
	for _, p := range paths {
		if p == Stdin {
			data, err := io.ReadAll(io.LimitReader(stdin, spec.MaxFileSize+1))
			if err != nil {
				return nil, fmt.Errorf("stdin: %w", err)
			}
			out = append(out, spec.IstioInput{Name: "<stdin>", Data: data})
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, unwrap(err))
		}
		files := []string{p}
		if st.IsDir() {
			if files, err = yamlFiles(p); err != nil {
				return nil, err
			}
			if len(files) == 0 {
				return nil, fmt.Errorf("%s: no *.yaml or *.yml files in the folder", p)
			}
		}
		for _, f := range files {
			data, err := readFile(f)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			out = append(out, spec.IstioInput{Name: f, Data: data})
		}
	}
	return out, nil
}

// yamlFiles lists the YAML files under dir, in name order.
func yamlFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		ext := strings.ToLower(filepath.Ext(p))
		if !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

func readFile(p string) ([]byte, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, err
	}
	return spec.ReadInputFile(os.DirFS(filepath.Dir(abs)), filepath.Base(abs))
}

func unwrap(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}
