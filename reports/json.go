package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// WriteJSON writes r as indented JSON. An empty Schema is written as
// SchemaVersion; r itself is not modified.
func WriteJSON(w io.Writer, r *Result) error {
	if r == nil {
		return errors.New("reports: nil result")
	}
	return writeIndented(w, withSchema(r))
}

// ReadJSON reads a result written by WriteJSON. It rejects a file whose schema
// is not SchemaVersion, so that a reader never misreads a newer or foreign
// format as this one. Unknown fields are ignored.
func ReadJSON(r io.Reader) (*Result, error) {
	var res Result
	if err := json.NewDecoder(r).Decode(&res); err != nil {
		return nil, fmt.Errorf("reports: decode result: %w", err)
	}
	if err := checkSchema(res.Schema); err != nil {
		return nil, err
	}
	return &res, nil
}

// writeSuiteJSON writes s as indented JSON with every empty Schema (the
// suite's and its scenarios') written as SchemaVersion.
func writeSuiteJSON(w io.Writer, s *Suite) error {
	c := *s
	if c.Schema == "" {
		c.Schema = SchemaVersion
	}
	c.Scenarios = make([]*Result, len(s.Scenarios))
	for i, r := range s.Scenarios {
		if r == nil {
			return fmt.Errorf("reports: suite scenario %d is nil", i)
		}
		c.Scenarios[i] = withSchema(r)
	}
	return writeIndented(w, &c)
}

// ErrSchema is wrapped by the error ReadJSON returns for a file in another
// format than SchemaVersion.
var ErrSchema = errors.New("unsupported schema")

func checkSchema(schema string) error {
	switch schema {
	case SchemaVersion:
		return nil
	case "":
		return fmt.Errorf("reports: %w: the file has no \"schema\" field; want %q", ErrSchema, SchemaVersion)
	default:
		return fmt.Errorf("reports: %w %q: this meshbench reads %q", ErrSchema, schema, SchemaVersion)
	}
}

// withSchema returns r, or a shallow copy of it with Schema set when empty.
func withSchema(r *Result) *Result {
	if r.Schema != "" {
		return r
	}
	c := *r
	c.Schema = SchemaVersion
	return &c
}

func writeIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // summaries hold "<" and ">="
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("reports: encode JSON: %w", err)
	}
	return nil
}
