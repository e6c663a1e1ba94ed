package expect

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// testEnv is a scenario as validation sees it: the order → payment
// topology, two variants, and what the test sets.
type testEnv struct {
	present  map[string]bool
	variants []string
	planned  bool
	peak     float64
	steps    int
	named    []string
	problems []string
}

func newEnv() *testEnv {
	return &testEnv{present: map[string]bool{}, variants: []string{"jason", "others"}}
}

func (e *testEnv) At(p, format string, args ...any) {
	e.problems = append(e.problems, p+": "+fmt.Sprintf(format, args...))
}
func (e *testEnv) Has(p string) bool      { return e.present[p] }
func (e *testEnv) Services() []string     { return []string{"order", "payment"} }
func (e *testEnv) Variants() []string     { return e.variants }
func (e *testEnv) Plan() (bool, float64)  { return e.planned, e.peak }
func (e *testEnv) Chaos() (int, []string) { return e.steps, e.named }
func (e *testEnv) Versions(s string) ([]string, bool) {
	switch s {
	case "order":
		return []string{"v1"}, true
	case "payment":
		return []string{"v1", "v2"}, true
	}
	return nil, false
}

// decode reads one expectation strictly, as the scenario loader does.
func decode(t *testing.T, src string) (*Expectation, error) {
	t.Helper()
	var list []Expectation
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&list); err != nil {
		return nil, err
	}
	require.Len(t, list, 1)
	return &list[0], nil
}

// validate decodes one expectation, applies its defaults and returns what
// Validate reports.
func validate(t *testing.T, env *testEnv, src string) []string {
	t.Helper()
	e, err := decode(t, src)
	require.NoError(t, err)
	e.Default()
	e.Validate(env)
	return env.problems
}
