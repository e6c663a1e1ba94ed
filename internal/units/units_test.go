package units

import (
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// A Duration written as YAML reads back as the same value.
func TestDurationYAMLRoundTrip(t *testing.T) {
	for _, d := range []Duration{0, Duration(250 * time.Millisecond), Duration(3*time.Second + 300*time.Millisecond)} {
		b, err := yaml.Marshal(struct{ D Duration }{d})
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ D Duration }
		if err := yaml.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got.D != d {
			t.Errorf("%s read back as %v, want %v", b, got.D, d)
		}
	}
}
