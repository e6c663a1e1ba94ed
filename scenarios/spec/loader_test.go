package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/scenarios/expect"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
)

// wantError is one problem a bad input must produce.
type wantError struct {
	File  string // default: the scenario file
	Line  int
	Field string
	Msg   string // a part of the message
}

// errorCase is a bad scenario file and every problem it must produce, in order.
type errorCase struct {
	file string // under testdata/bad
	want []wantError
}

// runErrorCases loads each file and checks that it fails with exactly the
// wanted problems, each naming the file, the line and the field.
func runErrorCases(t *testing.T, cases []errorCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(strings.TrimSuffix(tc.file, ".yaml"), func(t *testing.T) {
			p := filepath.Join("testdata", "bad", tc.file)
			s, err := LoadFile(p)
			require.Error(t, err)
			assert.Nil(t, s, "nothing may come of a bad scenario")
			var errs Errors
			require.True(t, errors.As(err, &errs), "want Errors, got %T: %v", err, err)
			require.Len(t, errs, len(tc.want), "got:\n%v", err)
			for i, w := range tc.want {
				got := errs[i]
				file := w.File
				if file == "" {
					file = p
				}
				assert.Equal(t, file, got.File, "error %d: %v", i, got)
				assert.Equal(t, w.Line, got.Line, "error %d: %v", i, got)
				assert.Equal(t, w.Field, got.Field, "error %d: %v", i, got)
				assert.Contains(t, got.Msg, w.Msg, "error %d: %v", i, got)
				assert.True(t, strings.HasPrefix(got.Error(), file+":"), "error %d names its file: %v", i, got)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	runErrorCases(t, []errorCase{
		{"malformed.yaml", []wantError{
			{Line: 5, Msg: "invalid YAML: mapping values are not allowed in this context"},
		}},
		{"unknown-field.yaml", []wantError{
			{Line: 5, Field: "load.rat", Msg: `unknown field "rat" (did you mean "rate"?)`},
		}},
		{"type-mismatch.yaml", []wantError{
			{Line: 3, Field: "seed", Msg: `want a whole number, got the string "lucky"`},
		}},
		{"bad-duration.yaml", []wantError{
			{Line: 6, Field: "load.duration", Msg: `invalid duration "10": want a number with a unit`},
		}},
		{"two-documents.yaml", []wantError{
			{Line: 9, Msg: "a scenario file holds one YAML document"},
		}},
		{"chaos.yaml", []wantError{
			{Line: 8, Field: "chaos[0].kill", Msg: `unknown field "kill"`},
		}},
		{"chaos-steps.yaml", []wantError{
			{Line: 10, Field: "chaos[1].fault.type", Msg: `unknown fault type "latncy" (did you mean "latency"?)`},
			{Line: 12, Field: "chaos[2].fault.jitter", Msg: "an abort fault takes no jitter (it takes status, percent)"},
			{Line: 15, Field: "chaos[3].target.pod", Msg: `no pod is named "payment-v9-0"`},
			{Line: 16, Field: "chaos[3].at", Msg: "at 12s is not before the end of the load (10s)"},
			{Line: 17, Field: "chaos[4]", Msg: "a partition needs a target and a peer"},
			{Line: 19, Field: "chaos[5].fault.type", Msg: "identity faults"},
			{Line: 21, Field: "chaos[6]", Msg: "for 2s must be shorter than every 1s"},
			{Line: 28, Field: "chaos[7].ramp.to.delay", Msg: "a latency fault ramps only latency and jitter"},
			{Line: 31, Field: "expect[1].latencyShift.stat", Msg: `unknown statistic "p75"`},
			{Line: 31, Field: "expect[1].latencyShift", Msg: "set min, max or both"},
			{Line: 31, Field: "expect[1].latencyShift.fault", Msg: `no chaos step is named "nope" (no step has a name)`},
		}},
		{"chaos-mesh-fault.yaml", []wantError{
			{Line: 13, Field: "chaos[0].target", Msg: "splits payment's traffic between version v2 and others"},
			{Line: 17, Field: "chaos[1].target.service", Msg: "no service calls order through a sidecar"},
			{Line: 20, Field: "steadyState.expect[0].successRate.min", Msg: "min 2 is not in (0,1]"},
		}},
		{"missing-mesh-file.yaml", []wantError{
			{Line: 5, Field: "mesh[1].file", Msg: "cannot read mesh file testdata/bad/istio/no-such-file.yaml"},
		}},
		{"mesh-file-bad-doc.yaml", []wantError{
			// The second document of the mesh file, at its own line.
			{File: "testdata/bad/istio/two-docs-bad.yaml", Line: 20, Field: "spec.http[0].timeout", Msg: `invalid duration "2 seconds"`},
		}},
	})
}

func TestLoadFileMissing(t *testing.T) {
	s, err := LoadFile("testdata/bad/no-such-scenario.yaml")
	assert.Nil(t, s)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "testdata/bad/no-such-scenario.yaml: cannot read scenario")
}

// A mesh file is read whole: a VirtualService and the DestinationRule whose
// subsets it uses, in one file.
func TestLoadMultiDocumentMeshFile(t *testing.T) {
	s, err := LoadFile("testdata/good/multi-doc.yaml")
	require.NoError(t, err)
	require.Len(t, s.Config.VirtualServices, 1)
	require.Len(t, s.Config.DestinationRules, 1)

	vs := s.Config.VirtualServices[0]
	assert.Equal(t, "payment", vs.Name)
	assert.Equal(t, "default", vs.Namespace, "namespace defaults to the topology's")
	assert.Equal(t, "networking.istio.io/v1", vs.APIVersion)
	assert.Equal(t, "VirtualService", vs.Kind)
	route := vs.Spec.Http[0].Route
	require.Len(t, route, 2)
	assert.Equal(t, int32(75), route[0].Weight)
	assert.Equal(t, "v2", route[1].Destination.Subset)
	// Go duration text, as Istio reads it, not only proto3's "0.250s".
	assert.Equal(t, 250*time.Millisecond, vs.Spec.Http[0].Timeout.AsDuration())
	assert.Equal(t, 100*time.Millisecond, vs.Spec.Http[0].Retries.PerTryTimeout.AsDuration())
	assert.Equal(t, int32(3), vs.Spec.Http[0].Retries.Attempts)

	dr := s.Config.DestinationRules[0]
	assert.Equal(t, "networking.istio.io/v1", dr.APIVersion, "held as the v1 client-go type whatever the file says")
	assert.Equal(t, 3*time.Minute, dr.Spec.TrafficPolicy.OutlierDetection.BaseEjectionTime.AsDuration())
	assert.Equal(t, uint32(5), dr.Spec.TrafficPolicy.OutlierDetection.Consecutive_5XxErrors.GetValue())
	require.Len(t, dr.Spec.Subsets, 2)

	assert.Equal(t, map[string]string{
		meshconfig.Key("VirtualService", "default", "payment"):  "testdata/good/istio/vs-and-dr.yaml:2",
		meshconfig.Key("DestinationRule", "default", "payment"): "testdata/good/istio/vs-and-dr.yaml:18",
	}, s.Config.Origin)
}

func TestLoadDefaults(t *testing.T) {
	s, err := LoadFile("testdata/good/gateway.yaml")
	require.NoError(t, err)
	assert.Equal(t, "testdata/good/gateway.yaml", s.Path)
	assert.Equal(t, int64(1), s.Seed)

	topo := s.Topology
	require.NotNil(t, topo)
	assert.Equal(t, "shop", topo.Namespace)
	require.Len(t, topo.Services, 2)
	front, cart := topo.Services[0], topo.Services[1]
	assert.Equal(t, 80, front.Port)
	assert.Equal(t, 8080, front.TargetPort)
	assert.Equal(t, "/frontend", front.Path)
	assert.Equal(t, 1, front.Versions[0].Replicas)
	assert.Equal(t, 503, front.Versions[0].ErrorStatus)
	assert.Equal(t, 9090, cart.Port)
	assert.Equal(t, 3, cart.Versions[0].Replicas)

	ld := s.Load
	assert.Equal(t, "/frontend", ld.Path, "path defaults to the target's")
	assert.Equal(t, "GET", ld.Method)
	assert.Equal(t, units.Duration(5*time.Second), ld.Timeout)
	assert.Equal(t, 50.0, ld.Rate.PerSecond())
	assert.Equal(t, units.Duration(500*time.Millisecond), ld.Duration)

	require.Len(t, s.Expect, 1)
	assert.Equal(t, 49, s.Expect[0].Line)
	require.IsType(t, &expect.Latency{}, s.Expect[0].Kind)
	assert.Equal(t, units.Duration(time.Second), s.Expect[0].Kind.(*expect.Latency).Stats["max"].Max)

	assert.Len(t, s.Config.Gateways, 1)
	assert.Equal(t, "shop", s.Config.Gateways[0].Namespace)
	assert.Equal(t, "testdata/good/gateway.yaml:15", s.Config.Origin[meshconfig.Key("Gateway", "shop", "shop-gateway")])
}

// The loaded topology has every default registry.WithDefaults gives it,
// and no other: applying WithDefaults again changes nothing. The GAMMA
// scenario has selecting Services, which take their ports from the one
// they select.
func TestLoadedTopologyIsWithDefaultsOfItself(t *testing.T) {
	for _, name := range []string{"canary-90-10", "gamma-canary-90-10", "bookinfo-reviews-80-20", "grpc-deadline"} {
		s, err := catalogScenario(name)
		require.NoError(t, err, name)
		assert.Equal(t, registry.WithDefaults(*s.Topology), *s.Topology, name)
	}
	s, err := LoadFile("testdata/good/gateway.yaml")
	require.NoError(t, err)
	assert.Equal(t, registry.WithDefaults(*s.Topology), *s.Topology)
}

func TestLoadFSDisplayName(t *testing.T) {
	dr, err := os.ReadFile("testdata/bad/istio/subsets.yaml")
	require.NoError(t, err)
	fsys := fstest.MapFS{
		"s/scenario.yaml": {Data: []byte(`name: fs
mesh:
  - file: ../istio/dr.yaml
  - file: ../istio/missing.yaml
load: {target: order, rate: 10/s, duration: 1s}
expect:
  - split: {service: payment, weights: {v1: 2, v2: 1}, confidence: 0.99}
`)},
		"istio/dr.yaml": {Data: dr},
	}
	_, err = LoadFS(fsys, "s/scenario.yaml", "suite/scenario.yaml")
	require.Error(t, err)
	assert.Equal(t, "suite/scenario.yaml:4: mesh[1].file: cannot read mesh file istio/missing.yaml: file does not exist", err.Error())

	fsys["s/scenario.yaml"].Data = []byte(strings.Replace(string(fsys["s/scenario.yaml"].Data), "  - file: ../istio/missing.yaml\n", "", 1))
	s, err := LoadFS(fsys, "s/scenario.yaml", "suite/scenario.yaml")
	require.NoError(t, err)
	assert.Equal(t, "suite/scenario.yaml", s.Path)
	assert.Equal(t, "istio/dr.yaml:1", s.Config.Origin["DestinationRule/default/payment"])
	require.IsType(t, &expect.Split{}, s.Expect[0].Kind)
	assert.Equal(t, 0.99, s.Expect[0].Kind.(*expect.Split).Confidence)
}

func TestLoadFSEdgeCases(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"empty", "# nothing\n", "x.yaml: the file is empty"},
		{"not a mapping", "- a\n- b\n", "x.yaml:1: a scenario is a mapping"},
		{"duplicate key", "name: a\nname: b\n", `x.yaml:2: name: mapping key "name" already defined at line 1`},
		{"absolute mesh file", "name: a\nmesh:\n  - file: /etc/vs.yaml\n", "x.yaml:3: mesh[0].file: mesh file \"/etc/vs.yaml\" must be relative"},
		{"file and object", "name: a\nmesh:\n  - file: a.yaml\n    kind: VirtualService\n", "x.yaml:3: mesh[0]: a mesh entry is either {file: path.yaml} or an inline Istio object, not both"},
		{"unknown nested field", "name: a\ntopology:\n  services:\n    - name: a\n      versions:\n        - {name: v1, replica: 2}\n", `x.yaml:6: topology.services[0].versions[0].replica: unknown field "replica" (did you mean "replicas"?)`},
		{"bad rate", "name: a\nload:\n  rate: fast\n", `x.yaml:3: load.rate: invalid rate "fast"`},
		{"unknown expectation kind", "name: a\nexpect:\n  - sucessRate: {min: 0.99}\n", `x.yaml:3: expect[0].sucessRate: unknown expectation kind "sucessRate" (did you mean "successRate"?) (known: split, successRate,`},
		{"unknown field of a kind", "name: a\nexpect:\n  - split: {service: payment, wieghts: {v1: 1}}\n", `x.yaml:3: expect[0].split.wieghts: unknown field "wieghts" (did you mean "weights"?)`},
		{"kind refused in steadyState", "name: a\nload: {target: order, rate: 10/s, duration: 1s}\nchaos:\n  - {fault: {type: pause}, target: {service: payment}}\nsteadyState:\n  expect:\n    - latencyShift: {max: 10ms}\nexpect:\n  - successRate: {min: 0.9}\n",
			"x.yaml:7: steadyState.expect[0].latencyShift: latencyShift compares the faults with the steady state; it belongs in expect, not steadyState.expect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := LoadFS(fstest.MapFS{"x.yaml": {Data: []byte(tc.data)}}, "x.yaml", "x.yaml")
			assert.Nil(t, s)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestErrorFormat(t *testing.T) {
	errs := Errors{
		{File: "b.yaml", Line: 3, Msg: "m1"},
		{File: "a.yaml", Line: 9, Field: "load.rate", Msg: "m2"},
		{File: "a.yaml", Line: 2, Field: "name", Msg: "m3"},
		{File: "a.yaml", Msg: "m4"},
	}
	errs.Sort()
	assert.Equal(t, "a.yaml: m4\na.yaml:2: name: m3\na.yaml:9: load.rate: m2\nb.yaml:3: m1", errs.Error())
	assert.Equal(t, "m", (&Error{Msg: "m"}).Error())
}

// A steady state takes its defaults where every default is given, at load:
// 2 s phases at the load's rate unless it says otherwise.
func TestSteadyStateDefaultsAtLoad(t *testing.T) {
	s, err := catalogScenario("control-plane-outage-keeps-traffic")
	require.NoError(t, err)
	require.NotNil(t, s.SteadyState)
	assert.Equal(t, units.Duration(2*time.Second), s.SteadyState.Duration, "as the file says")
	assert.Equal(t, s.Load.Rate, s.SteadyState.Rate, "no rate given: the load's")

	s = &Scenario{SteadyState: &SteadyState{}, Load: Load{Rate: units.Rate{Freq: 7, Per: time.Second}}}
	applyDefaults(s)
	assert.Equal(t, DefaultSteadyStateDuration, s.SteadyState.Duration)
	assert.Equal(t, 7.0, s.SteadyState.Rate.PerSecond())

	s = &Scenario{SteadyState: &SteadyState{}, Load: Load{Plan: &Plan{Steps: []PlanStep{{}}}}}
	applyDefaults(s)
	assert.Zero(t, s.SteadyState.Rate.Per, "a plan has no one rate to give: validation asks for one")
}
