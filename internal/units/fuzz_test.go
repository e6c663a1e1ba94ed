package units

import (
	"testing"

	"go.yaml.in/yaml/v3"
)

// Seeds: the durations and rates of the catalog (scenarios/catalog/*.yaml)
// and the forms the scenario format documents, with a few that must fail.
var (
	durationSeeds = []string{"250ms", "10s", "1m", "5s", "2s", "100ms", "1h30m", "0s", "-1s", "10", "", " 3s ", "1.5h", "9223372036854775807ns", "1e3s"}
	rateSeeds     = []string{"500/s", "1000/s", "200/s", "30000/m", "500", "10/1s", "1/h", "5/250ms", "0/s", "-1/s", "1/0s", "1/-1s", "fast", "1000000000000/s", "1/1ns", " 7 / s "}
)

// FuzzParseDuration: a duration that parses is never negative and reads
// back as itself from its own text and from YAML.
func FuzzParseDuration(f *testing.F) {
	for _, s := range durationSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v: negative", s, d)
		}
		again, err := ParseDuration(d.String())
		if err != nil || again != d {
			t.Fatalf("ParseDuration(%q) = %v, but its text %q reads as %v, %v", s, d, d.String(), again, err)
		}
		var fromYAML Duration
		if err := fromYAML.UnmarshalYAML(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}); err != nil || fromYAML != d {
			t.Fatalf("YAML %q reads as %v, %v; want %v", s, fromYAML, err, d)
		}
	})
}

// FuzzParseRate: a rate that parses has a positive count and period, a
// positive finite rate per second, and reads back as itself from its text.
func FuzzParseRate(f *testing.F) {
	for _, s := range rateSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if r.Freq <= 0 || r.Per <= 0 {
			t.Fatalf("ParseRate(%q) = %+v: want a positive count and period", s, r)
		}
		if ps := r.PerSecond(); !(ps > 0) || ps > 1e30 {
			t.Fatalf("ParseRate(%q) = %+v: %v per second", s, r, ps)
		}
		again, err := ParseRate(r.String())
		if err != nil || again.PerSecond() != r.PerSecond() {
			t.Fatalf("ParseRate(%q) = %+v, but its text %q reads as %+v, %v", s, r, r.String(), again, err)
		}
	})
}
