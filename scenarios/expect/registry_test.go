package expect

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/units"
)

func TestDecodeEveryKind(t *testing.T) {
	for _, c := range []struct {
		src  string
		want Kind
	}{
		{"- split: {service: payment, weights: {v1: 90, v2: 10}, tolerance: 2}", &Split{Service: "payment", Weights: map[string]float64{"v1": 90, "v2": 10}, Tolerance: 2}},
		{"- successRate: {min: 0.99, variant: jason}", &SuccessRate{Min: 0.99, Variant: "jason"}},
		{"- latency: {p99: {max: 250ms}, variant: jason}", &Latency{Variant: "jason", Stats: map[string]Bound{"p99": {Max: units.Duration(250e6)}}}},
		{"- status: {code: 504, share: 0.2}", &Status{Code: 504, Share: ptr(0.2)}},
		{"- retries: {service: payment, min: 1}", &Retries{Count{Service: "payment", Min: ptr(1)}}},
		{"- ejections: {service: payment, max: 0}", &Ejections{Count{Service: "payment", Max: ptr(0)}}},
		{"- overflows: {service: payment, min: 5}", &Overflows{Count{Service: "payment", Min: ptr(5)}}},
		{"- responseFlags: {service: payment, flag: UO, min: 1}", &ResponseFlags{Service: "payment", Flag: "UO", Min: ptr(1)}},
		{"- attempts: {service: payment, max: 3}", &Attempts{Count{Service: "payment", Max: ptr(3)}}},
		{"- security: {service: payment, policy: mutual_tls, min: 1}", &Security{Service: "payment", Policy: "mutual_tls", Min: ptr(1)}},
		{"- rotations: {min: 1}", &Rotations{Count{Min: ptr(1)}}},
		{"- latencyShift: {fault: slow, min: 80ms}", &LatencyShift{Fault: "slow", Min: dur(80e6)}},
		{"- messages: {service: payment, min: 3}", &Messages{Count{Service: "payment", Min: ptr(3)}}},
		{"- deadline: {service: payment, max: 2s}", &Deadline{Service: "payment", Max: units.Duration(2e9)}},
		{"- capacity: {p99: 20ms, min: 800/s}", &Capacity{P99: units.Duration(20e6), Min: units.Rate{Freq: 800, Per: 1e9}}},
	} {
		e, err := decode(t, c.src)
		require.NoError(t, err, c.src)
		assert.Equal(t, c.want, e.Kind, c.src)
		assert.Equal(t, []string{c.want.Name()}, e.Set)
		assert.Equal(t, 1, e.Line)
	}
	assert.Len(t, Names(), 15)
	for _, n := range Names() {
		k, ok := New(n)
		require.True(t, ok, n)
		assert.Equal(t, n, k.Name(), "the kind registered under %s names itself so", n)
	}
}

func TestDecodeRefusesUnknownKind(t *testing.T) {
	_, err := decode(t, "- successRat: {min: 0.99}")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `line 1: unknown expectation kind "successRat" (did you mean "successRate"?) (known: split, successRate, latency, status, retries, ejections, overflows, responseFlags, attempts, security, rotations, latencyShift, messages, deadline, capacity)`)

	_, err = decode(t, "- bandwidth: {min: 1}")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown expectation kind "bandwidth" (known: split,`)
	_, ok := New("bandwidth")
	assert.False(t, ok)
}

// Unknown fields of a kind are refused at their line by the caller's
// strict decoder, as the scenario loader decodes.
func TestDecodeIsStrict(t *testing.T) {
	_, err := decode(t, "- split:\n    service: payment\n    weigths: {v1: 1}\n")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "line 3: field weigths not found in type expect.Split")

	_, err = decode(t, "- retries: {service: payment, min: many}")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot unmarshal !!str `many` into float64")

	_, err = decode(t, "- split")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot unmarshal !!str `split` into map[string]yaml.Node")
}

// An item naming no kind or several is read, and Validate says what is wrong.
func TestValidateOneKindPerItem(t *testing.T) {
	assert.Equal(t, []string{": an expectation sets exactly one of split, successRate, latency, status, retries, ejections, overflows, responseFlags, attempts, security, rotations, latencyShift, messages, deadline, capacity; this one sets split and successRate (make each its own list item)"},
		validate(t, newEnv(), "- {successRate: {min: 0.9}, split: {service: payment, weights: {v1: 1}}}"))
	assert.Equal(t, []string{": an expectation sets one of split, successRate, latency, status, retries, ejections, overflows, responseFlags, attempts, security, rotations, latencyShift, messages, deadline, capacity"},
		validate(t, newEnv(), "- {split: }"))
}

func ptr(f float64) *float64 { return &f }

func dur(d float64) *units.Duration { u := units.Duration(d); return &u }
