package reports

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File names that WriteRun and WriteSuite write.
const (
	// ResultFile is the JSON of one result, written by WriteRun.
	ResultFile = "result.json"
	// SuiteFile is the JSON of a suite, written by WriteSuite.
	SuiteFile = "suite.json"
	// SummaryFile is the Markdown summary.
	SummaryFile = "summary.md"
	// JUnitFile is the JUnit XML report.
	JUnitFile = "junit.xml"
)

// junitDefault names the <testsuites> element of the files WriteRun and
// WriteSuite write.
const junitDefault = "meshbench"

// AccessLogDir is the folder of a scenario's run that holds one access log
// per proxy, <proxy>.log, when the scenario sets meshConfig.accessLogFile.
const AccessLogDir = "access-logs"

// WriteRun writes result.json, summary.md, junit.xml, report.html and
// smp.json (smp.go) for one result into dir, creating dir (mode 0755) if
// needed, and returns the paths written.
// When dir already holds the run's traces (TracesFile), WriteRun sets
// r.Traces to the traces that matter and draws them in report.html; a
// traces file that cannot be read is recorded in r.Traces.Error and the
// reports are written without traces, since the run's verdict stands
// without them.
// Each file is written to a temporary name and renamed, so a reader never
// sees a half-written file.
func WriteRun(dir string, r *Result) ([]string, error) {
	if r == nil {
		return nil, errors.New("reports: nil result")
	}
	traces, err := LoadTraces(dir)
	switch {
	case err != nil:
		r.Traces = &TraceRefs{File: TracesFile, Error: err.Error()}
	case traces != nil:
		r.Traces = traces.Refs(r)
	}
	return writeFiles(dir, []output{
		{ResultFile, func(b *bytes.Buffer) error { return WriteJSON(b, r) }},
		{SummaryFile, func(b *bytes.Buffer) error { return Markdown(b, r) }},
		{JUnitFile, func(b *bytes.Buffer) error { return JUnit(b, junitDefault, r) }},
		{HTMLFile, func(b *bytes.Buffer) error { return HTMLWithTraces(b, r, traces) }},
		{SMPFile, func(b *bytes.Buffer) error { return WriteSMP(b, r) }},
	})
}

// WriteSuite writes the index of a suite into dir: suite.json (the Suite),
// summary.md, junit.xml and index.html covering all its scenarios; a
// suite of meshbench check (with Resources) one section per resource. It creates dir (mode
// 0755) if needed and returns the paths written.
func WriteSuite(dir string, s *Suite) ([]string, error) {
	if s == nil {
		return nil, errors.New("reports: nil suite")
	}
	return writeFiles(dir, []output{
		{SuiteFile, func(b *bytes.Buffer) error { return writeSuiteJSON(b, s) }},
		{SummaryFile, func(b *bytes.Buffer) error { return suiteMarkdown(b, s) }},
		{JUnitFile, func(b *bytes.Buffer) error { return junitSuiteFile(b, s) }},
		{IndexFile, func(b *bytes.Buffer) error { return HTMLIndex(b, s, nil) }},
	})
}

type output struct {
	name   string
	render func(*bytes.Buffer) error
}

// writeFiles renders every output before writing any, so that a rendering
// error leaves dir untouched.
func writeFiles(dir string, outs []output) ([]string, error) {
	bufs := make([]bytes.Buffer, len(outs))
	for i, o := range outs {
		if err := o.render(&bufs[i]); err != nil {
			return nil, fmt.Errorf("reports: render %s: %w", o.name, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	paths := make([]string, 0, len(outs))
	for i, o := range outs {
		path := filepath.Join(dir, o.name)
		if err := writeAtomic(path, bufs[i].Bytes()); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("reports: write %s: %w", path, err)
	}
	return nil
}
