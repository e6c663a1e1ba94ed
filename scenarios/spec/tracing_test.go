package spec

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	telemetryapi "istio.io/api/telemetry/v1alpha1"

	"github.com/meshbench/meshbench/sim/meshconfig"
)

// The testdata example loads: meshConfig's tracing and both Telemetries,
// as Istio's types.
func TestLoadTracing(t *testing.T) {
	s, err := LoadFile("testdata/good/tracing.yaml")
	require.NoError(t, err)
	tr := s.Config.Mesh.Tracing
	require.NotNil(t, tr)
	assert.False(t, tr.Disabled)
	assert.Equal(t, 5.0, tr.Proxy.GetSampling())
	assert.Equal(t, uint32(256), tr.Proxy.GetMaxPathTagLength())
	assert.Equal(t, "shop", tr.Proxy.GetCustomTags()["team"].GetLiteral().GetValue())
	require.NotNil(t, tr.Provider("zipkin"))
	assert.Equal(t, "zipkin.istio-system.svc.cluster.local", tr.Provider("zipkin").GetZipkin().GetService())

	require.Len(t, s.Config.Telemetries, 2)
	mesh, payment := s.Config.Telemetries[0], s.Config.Telemetries[1]
	assert.Equal(t, meshconfig.RootNamespace, mesh.Namespace)
	assert.Equal(t, 10.0, mesh.Spec.GetTracing()[0].GetRandomSamplingPercentage().GetValue())
	assert.Equal(t, "zipkin", mesh.Spec.GetTracing()[0].GetProviders()[0].GetName())
	assert.Equal(t, "default", payment.Namespace)
	assert.Equal(t, telemetryapi.WorkloadMode_SERVER, payment.Spec.GetTracing()[0].GetMatch().GetMode())
	assert.Equal(t, "x-user", payment.Spec.GetTracing()[0].GetCustomTags()["user"].GetHeader().GetName())
	assert.Equal(t, "testdata/good/istio/telemetry-tracing.yaml:4", s.Config.Origin[meshconfig.Key("Telemetry", "istio-system", "mesh-default")])
}

// A scenario that says nothing of tracing keeps Istio's defaults (nil).
func TestTracingDefaultsUnset(t *testing.T) {
	s, err := LoadFile("testdata/good/multi-doc.yaml")
	require.NoError(t, err)
	assert.Nil(t, s.Config.Mesh.Tracing)
	assert.Empty(t, s.Config.Telemetries)
}

// Istio's ValidateTelemetry and ValidateProxyConfig, and what meshbench
// refuses, each at its file, line and field.
func TestValidateTracingErrors(t *testing.T) {
	runErrorCases(t, []errorCase{
		{"tracing-telemetry.yaml", []wantError{
			{Line: 9, Field: "mesh[0].spec.metrics", Msg: "metrics is not supported by meshbench (only tracing)"},
			{Line: 13, Field: "mesh[0].spec.tracing[0].providers[0].name", Msg: `tracing provider "jaeger" is not one of meshConfig.extensionProviders (zipkin)`},
			{Line: 14, Field: "mesh[0].spec.tracing[0].randomSamplingPercentage", Msg: "randomSamplingPercentage must be in range [0.0, 100.0], got 120"},
			{Line: 17, Field: "mesh[0].spec.tracing[0].customTags.env.formatter", Msg: "formatter tags are not supported by meshbench"},
			{Line: 18, Field: "mesh[0].spec.tracing[0].useRequestIdForTraceSampling", Msg: "useRequestIdForTraceSampling is not supported by meshbench"},
			{Line: 25, Field: "mesh[1].spec.selector.matchLabels", Msg: "selector app=billing selects no pod"},
			{Line: 33, Field: "mesh[2].metadata.name", Msg: "namespace default has two Telemetries without a selector (the first, sampling, at testdata/bad/tracing-telemetry.yaml:4)"},
			{Line: 43, Field: "mesh[3].spec.selector", Msg: "a Telemetry with a selector in the root namespace istio-system applies only to proxies there"},
		}},
		{"tracing-meshconfig.yaml", []wantError{
			{Line: 10, Field: "mesh[0].spec.tracing[0].match.mode", Msg: `invalid value "BOTH"; want one of CLIENT_AND_SERVER, CLIENT, SERVER`},
			{Line: 11, Field: "mesh[1].apiVersion", Msg: `unsupported apiVersion "telemetry.istio.io/v2" for Telemetry`},
			{Line: 18, Field: "meshConfig.defaultConfig.tracing.sampling", Msg: "sampling must be in range [0.0, 100.0], got 150"},
			{Line: 20, Field: "meshConfig.defaultConfig.tracing.zipkin.address", Msg: "invalid zipkin config: address zipkin: missing port in address"},
			{Line: 23, Field: "meshConfig.extensionProviders[0].zipkin.service", Msg: `istiod finds no Service "zipkin"`},
			{Line: 24, Field: "meshConfig.extensionProviders[1]", Msg: `extension provider "otel": kind opentelemetry is not supported by meshbench (only zipkin)`},
			{Line: 26, Field: "meshConfig.extensionProviders[2].name", Msg: `extension provider "zipkin" is defined twice (first at line 22)`},
			{Line: 27, Field: "meshConfig.extensionProviders[2].zipkin.port", Msg: "meshbench's collector zipkin.istio-system.svc.cluster.local listens on port 9411, not 9412"},
			{Line: 29, Field: "meshConfig.defaultProviders.metrics", Msg: "defaultProviders.metrics is not supported by meshbench"},
			{Line: 30, Field: "meshConfig.defaultProviders.tracing[0]", Msg: `tracing provider "jaeger" is not one of meshConfig.extensionProviders (otel, zipkin)`},
		}},
	})
}

// What Istio accepts and meshbench translates stays accepted, in the
// spellings Istio takes (camelCase and the proto's snake_case); each case
// differs from a valid scenario in one place. warn is a warning the run
// states.
func TestValidateTracingInline(t *testing.T) {
	const provider = "  extensionProviders: [{name: zipkin, zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411}}]\n"
	const tail = "load: {target: order, rate: 100/s, duration: 1s}\nexpect:\n  - successRate: {min: 0.99}\n"
	tm := func(ns, spec string) string {
		return "mesh:\n  - {apiVersion: telemetry.istio.io/v1, kind: Telemetry, metadata: {name: t, namespace: " + ns + "}, spec: " + spec + "}\n"
	}
	for _, tc := range []struct {
		name, mesh, meshConfig, want, warn string
	}{
		{"tracing off", "", "  enableTracing: false\n", "", ""},
		{"snake_case proxy tracing", "", "  defaultConfig: {tracing: {sampling: 10, max_path_tag_length: 99, custom_tags: {a: {header: {name: x-a}}}, zipkin: {address: 'zipkin.istio-system:9411'}}}\n", "", ""},
		{"sampling 0 is unset", "", "  defaultConfig: {tracing: {sampling: 0}}\n", "", "sampling 0 means unset to istiod"},
		{"lightstep", "", "  defaultConfig: {tracing: {lightstep: {address: 'ls:8080'}}}\n", "x.yaml:3: meshConfig.defaultConfig.tracing.lightstep: tracer lightstep is not supported by meshbench (only zipkin)", ""},
		{"tls to the collector", "", "  defaultConfig: {tracing: {tlsSettings: {mode: SIMPLE}}}\n", "tlsSettings is not supported by meshbench", ""},
		{"default provider", "", provider + "  defaultProviders: {tracing: [zipkin]}\n", "", ""},
		{"a topology service as collector", "", "  extensionProviders: [{name: z, zipkin: {service: default/payment.default.svc.cluster.local, port: 80}}]\n", "", ""},
		{"env header", "", "  extensionProviders: [{name: z, zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411, headers: [{name: a, envName: A}]}}]\n", "envName is not supported by meshbench", ""},
		{"mesh-wide 10%", tm("istio-system", "{tracing: [{providers: [{name: zipkin}], randomSamplingPercentage: 10}]}"), provider, "", ""},
		{"client side off", tm("default", "{tracing: [{match: {mode: CLIENT}, disableSpanReporting: true}]}"), provider, "", ""},
		{"workload selector", tm("default", "{selector: {matchLabels: {app: payment, version: v1}}, tracing: [{providers: [{name: zipkin}], customTags: {t: {literal: {value: x}}}}]}"), provider, "", ""},
		{"no provider anywhere", tm("default", "{tracing: [{randomSamplingPercentage: 10}]}"), provider, "", "no tracing provider: neither this entry nor meshConfig.defaultProviders.tracing names one"},
		{"negative sampling", tm("default", "{tracing: [{providers: [{name: zipkin}], randomSamplingPercentage: -1}]}"), provider, "randomSamplingPercentage must be in range [0.0, 100.0], got -1", ""},
		{"empty literal", tm("default", "{tracing: [{providers: [{name: zipkin}], customTags: {t: {literal: {value: ''}}}}]}"), provider, "literal tag value may not be empty", ""},
		{"unknown field", tm("default", "{tracing: [{randomSampling: 10}]}"), provider, "randomSampling", ""},
		{"other namespace", tm("shop", "{tracing: [{providers: [{name: zipkin}]}]}"), provider, "Telemetry t applies to no workload: no pod runs in namespace shop", ""},
		{"accessLogging", tm("default", "{accessLogging: [{providers: [{name: envoy}]}]}"), provider, "accessLogging is not supported by meshbench", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := "name: x\nmeshConfig:\n" + tc.meshConfig + tc.mesh + tail
			s, err := LoadFS(fstest.MapFS{"x.yaml": {Data: []byte(doc)}}, "x.yaml", "x.yaml")
			if tc.want != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.want)
				assert.Regexp(t, `^x\.yaml:\d+: `, err.Error(), "the error names file and line")
				return
			}
			require.NoError(t, err)
			var warns []string
			for _, w := range s.Warnings {
				warns = append(warns, w.Error())
			}
			if tc.warn == "" {
				assert.Empty(t, warns)
			} else {
				assert.Contains(t, strings.Join(warns, "\n"), tc.warn)
			}
		})
	}
}
