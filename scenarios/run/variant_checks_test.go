package run

import (
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/spec"
)

const variantHead = `name: variants
load:
  target: order
  rate: 100/s
  duration: 1s
  variants:
    - {name: jason, weight: 10, headers: {end-user: jason}}
    - {name: anonymous, weight: 90}
expect:
`

// Checks that read the load's own samples take a variant; checks that
// read the sidecars' counters refuse one, saying why, at its line.
func TestVariantOnChecks(t *testing.T) {
	for _, tc := range []struct{ expect, want string }{
		{"  - latency: {variant: jason, p50: {min: 1900ms, max: 2500ms}}\n", ""},
		{"  - latency: {variant: jason, p99: {min: 1s}}\n", ""},
		{"  - attempts: {service: payment, max: 1, variant: jason}\n", ""},
		{"  - responseFlags: {service: payment, flag: UT, min: 1, variant: jason}\n", ""},
		{"  - status: {code: 504, min: 1, variant: jason}\n", ""},
		{"  - latency: {variant: bob, p99: {max: 1s}}\n", `x.yaml:10: expect[0].latency.variant: variant "bob" is not a load variant (variants: jason, anonymous)`},
		{"  - latency: {p99: {min: 2s, max: 1s}}\n", "x.yaml:10: expect[0].latency.p99: p99: min 2s is above max 1s"},
		{"  - latency: {p99: {}}\n", "x.yaml:10: expect[0].latency.p99: p99 needs max, min or both"},
		{"  - latency: {p99: {mix: 1s}}\n", `x.yaml:10: expect[0].latency.p99.mix: unknown field "mix"`},
		{"  - latency: {varaint: jason, p99: {max: 1s}}\n", `x.yaml:10: expect[0].latency.varaint: unknown field "varaint" (did you mean "variant"?)`},
		{"  - retries: {service: payment, min: 1, variant: jason}\n", "x.yaml:10: expect[0].retries.variant: retries counts the sidecars' counters, which do not know the load's variants"},
		{"  - ejections: {service: payment, min: 1, variant: jason}\n", "x.yaml:10: expect[0].ejections.variant: ejections counts the sidecars' counters"},
		{"  - security: {service: payment, policy: none, max: 0, variant: jason}\n", `x.yaml:10: expect[0].security.variant: unknown field "variant"`},
	} {
		t.Run(tc.expect, func(t *testing.T) {
			s, err := spec.LoadFS(fstest.MapFS{"x.yaml": {Data: []byte(variantHead + tc.expect)}}, "x.yaml", "x.yaml")
			if tc.want == "" {
				require.NoError(t, err)
				require.NotNil(t, s)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// judge scopes latency, attempts and responseFlags to a variant's own
// samples: jason's slow 504s do not count against everyone else's
// latency, and everyone else's fast 200s do not hide jason's.
func TestJudgeScopesChecksToVariant(t *testing.T) {
	var samples []sample
	start := time.Now()
	for i := range 100 {
		s := sample{variant: "anonymous", code: 200, intended: start.Add(time.Duration(i) * time.Millisecond), latency: 3 * time.Millisecond,
			versions: map[string]string{"payment": "v1"}, attempts: map[string]int{"payment": 1}, flags: map[string][]string{}}
		if i%10 == 0 {
			s = sample{variant: "jason", code: 504, intended: s.intended, latency: 2010 * time.Millisecond,
				attempts: map[string]int{}, flags: map[string][]string{"payment": {"UT"}}}
		}
		samples = append(samples, s)
	}
	sc := loadString(t, variantHead+`  - latency: {variant: jason, p50: {min: 1900ms, max: 2500ms}}
  - latency: {variant: anonymous, p99: {max: 50ms}}
  - latency: {p50: {min: 1900ms}}
  - responseFlags: {service: payment, flag: UT, min: 10, max: 10, variant: jason}
  - responseFlags: {service: payment, flag: UT, max: 0, variant: anonymous}
  - attempts: {service: payment, min: 1, max: 1, variant: anonymous}
  - status: {code: 504, min: 1, variant: jason}
`)
	res := &reports.Result{}
	judge(res, sc.Expect, outcome(samples, nil, nil), nil)
	require.Len(t, res.Checks, 7)
	passed := map[string]bool{}
	for _, c := range res.Checks {
		passed[c.Name] = c.Passed
		t.Log(c.Name, ": ", c.Summary)
	}
	assert.Equal(t, map[string]bool{
		"latency (jason)": true, "latency (anonymous)": true,
		"latency":                    false, // every request: its p50 is the anonymous 3ms
		"flag UT to payment (jason)": true, "flag UT to payment (anonymous)": true,
		"attempts at payment (anonymous)": true, "status 504 share (jason)": true,
	}, passed)
	assert.Equal(t, 10, res.Checks[0].N)
	assert.Equal(t, 90, res.Checks[1].N)
}
