package fidelity

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	meshapi "istio.io/api/mesh/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"
	telemetryapi "istio.io/api/telemetry/v1alpha1"
	telemetryv1 "istio.io/client-go/pkg/apis/telemetry/v1"

	"github.com/meshbench/meshbench/scenarios/catalog"
	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// knownDifferencesDoc is the document whose "Known differences" table
// lists the differences the oracle accepts.
const knownDifferencesDoc = "../docs/fidelity.md"

// dumpDir, when set (FIDELITY_DUMP=dir), receives per scenario the inputs
// given to Istio and both sides' xDS as JSON, to look into a difference.
var dumpDir = os.Getenv("FIDELITY_DUMP")

func TestMain(m *testing.M) {
	quietIstio()
	os.Exit(m.Run())
}

// probesGlob finds the oracle's own scenarios: they are never run as
// load tests, only translated, and exercise every VirtualService and
// DestinationRule field sim/xdsgen translates, plus some it does not.
const probesGlob = "testdata/probes/*.yaml"

// TestIstioOracle translates every catalog scenario, and every probe, with
// Istio's own translator and with sim/xdsgen, for the sidecar of the first
// service that calls another, and fails on any difference in the fields
// meshbench's sidecar acts on that docs/fidelity.md does not list as
// known. Subtests are catalog/<name> and probe/<name>.
func TestIstioOracle(t *testing.T) {
	known, err := ReadKnownDifferences(knownDifferencesDoc)
	if err != nil {
		t.Fatal(err)
	}
	all, err := catalog.All()
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	if len(all) == 0 {
		t.Fatal("the catalog is empty")
	}
	type testCase struct {
		name string
		sc   *spec.Scenario
	}
	var cases []testCase
	for _, sc := range all {
		cases = append(cases, testCase{"catalog/" + sc.Name, sc})
	}
	probes, err := filepath.Glob(probesGlob)
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range probes {
		sc, err := spec.LoadFile(file)
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		cases = append(cases, testCase{"probe/" + sc.Name, sc})
		// Mesh-wide settings change the retry policy of every route: the
		// retry probe runs again under each.
		if sc.Name == "probe-tracing" {
			for _, v := range tracingVariants(sc.Config) {
				vsc := *sc
				vsc.Config = v.config
				cases = append(cases, testCase{"probe/" + sc.Name + "+" + v.name, &vsc})
			}
		}
		if sc.Name == "probe-retries-timeouts" {
			for _, v := range meshVariants() {
				vsc := *sc
				vsc.Config.Mesh = v.settings
				cases = append(cases, testCase{"probe/" + sc.Name + "+" + v.name, &vsc})
			}
		}
	}
	used := map[*KnownDifference]bool{}
	compared := 0
	// unknown gathers the unlisted differences by field, with the
	// bracketed keys generalized, for the summary.
	type group struct {
		n       int
		example Diff
		cases   map[string]bool
	}
	unknown := map[string]*group{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			diffs := oracle(t, c.sc)
			compared++
			for _, d := range judge(t, known, diffs, used) {
				g := unknown[generalize(d.Path)]
				if g == nil {
					g = &group{example: d, cases: map[string]bool{}}
					unknown[generalize(d.Path)] = g
				}
				g.n++
				g.cases[c.name] = true
			}
		})
	}
	if len(unknown) > 0 {
		var b strings.Builder
		keys := make([]string, 0, len(unknown))
		for k := range unknown {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			g := unknown[k]
			fmt.Fprintf(&b, "\n  %3d × %s in %d cases\n        e.g. %s: istio %s, meshbench %s",
				g.n, k, len(g.cases), g.example.Path, g.example.Istio, g.example.Ours)
		}
		t.Errorf("summary of the differences not listed in %s, by field:%s", knownDifferencesDoc, b.String())
	}
	// A row that no case needs any more hides nothing today but would
	// hide a regression tomorrow: it must go. Only checked when every case
	// was selected (no -run) and got as far as the comparison.
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" {
		return
	}
	if compared != len(cases) {
		return
	}
	for _, k := range known {
		if !used[k] {
			t.Errorf("%s:%d: known difference `%s` matches no difference in any scenario; remove the row", knownDifferencesDoc, k.Line, k.Pattern)
		}
	}
}

// judge logs the differences that a row of docs/fidelity.md's Known
// differences table covers (marking the row in used), fails the test on
// the others and returns them.
func judge(t *testing.T, known []*KnownDifference, diffs []Diff, used map[*KnownDifference]bool) []Diff {
	t.Helper()
	var bad, ok strings.Builder
	var unlisted []Diff
	for _, d := range diffs {
		k := Known(known, d.Path)
		if k == nil {
			unlisted = append(unlisted, d)
			fmt.Fprintf(&bad, "\n  %s", d)
			continue
		}
		used[k] = true
		fmt.Fprintf(&ok, "\n  %s\n      (known: %s:%d)", d, knownDifferencesDoc, k.Line)
	}
	if ok.Len() > 0 {
		t.Logf("known differences:%s", ok.String())
	}
	if len(unlisted) > 0 {
		t.Errorf("%d differences not listed in %s:%s", len(unlisted), knownDifferencesDoc, bad.String())
	}
	return unlisted
}

// generalize replaces the keys in brackets by *, so that differences of
// one field in several clusters, routes or cases count together.
func generalize(path string) string {
	var b strings.Builder
	depth := 0
	for _, r := range path {
		switch {
		case r == '[':
			if depth == 0 {
				b.WriteString("[*]")
			}
			depth++
		case r == ']':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

type meshVariant struct {
	name     string
	settings meshconfig.MeshSettings
}

// meshVariants are the mesh-wide settings meshbench translates
// (meshConfig.defaultHttpRetryPolicy, and the 1.23 compatibility profile's
// retry of 503), alone and together.
func meshVariants() []meshVariant {
	policy := &networking.HTTPRetry{Attempts: 5, RetryOn: "gateway-error,connect-failure,504", PerTryTimeout: durationpb.New(time.Second)}
	bare := &networking.HTTPRetry{Attempts: 4}
	return []meshVariant{
		{"defaultHttpRetryPolicy", meshconfig.MeshSettings{DefaultHTTPRetryPolicy: policy}},
		{"compat-1.23", meshconfig.MeshSettings{Retry503ByDefault: true}},
		{"compat-1.23+defaultHttpRetryPolicy", meshconfig.MeshSettings{DefaultHTTPRetryPolicy: bare, Retry503ByDefault: true}},
		// meshConfig access logging: every HCM's and tcp_proxy's access_log.
		{"accessLogFile", meshconfig.MeshSettings{AccessLog: meshconfig.AccessLog{File: "/dev/stdout"}}},
		{"accessLogFile+JSON", meshconfig.MeshSettings{AccessLog: meshconfig.AccessLog{File: "/dev/stdout", JSON: true}}},
	}
}

type configVariant struct {
	name   string
	config meshconfig.Config
}

// tracingVariants are the tracing probe under other tracing settings:
// Istio's defaults (no Telemetry, no meshConfig tracing: the legacy path
// with PILOT_TRACE_SAMPLING), tracing off, defaultConfig.tracing,
// a default provider, a provider's own options, a client side turned off,
// a Telemetry that names no provider, and a server side turned off.
func tracingVariants(probe meshconfig.Config) []configVariant {
	providers := probe.Mesh.Tracing.Providers
	with := func(tr *meshconfig.Tracing, tms ...*telemetryv1.Telemetry) meshconfig.Config {
		c := probe.DeepCopy()
		c.Mesh.Tracing = tr
		c.Telemetries = tms
		return c
	}
	proxy := &meshapi.Tracing{
		Sampling:         25,
		MaxPathTagLength: 99,
		CustomTags: map[string]*meshapi.Tracing_CustomTag{
			"team": {Type: &meshapi.Tracing_CustomTag_Literal{Literal: &meshapi.Tracing_Literal{Value: "shop"}}},
			"user": {Type: &meshapi.Tracing_CustomTag_Header{Header: &meshapi.Tracing_RequestHeader{Name: "x-user"}}},
			"pod":  {Type: &meshapi.Tracing_CustomTag_Environment{Environment: &meshapi.Tracing_Environment{Name: "POD_NAME", DefaultValue: "-"}}},
		},
		Tracer: &meshapi.Tracing_Zipkin_{Zipkin: &meshapi.Tracing_Zipkin{Address: "zipkin.istio-system:9411"}},
	}
	tuned := &meshapi.MeshConfig_ExtensionProvider{Name: "tuned", Provider: &meshapi.MeshConfig_ExtensionProvider_Zipkin{
		Zipkin: &meshapi.MeshConfig_ExtensionProvider_ZipkinTracingProvider{
			Service: "istio-system/zipkin.istio-system.svc.cluster.local", Port: 9411, MaxTagLength: 128,
			Enable_64BitTraceId: true, Path: "/zipkin/spans", Timeout: durationpb.New(2 * time.Second),
			TraceContextOption: meshapi.MeshConfig_ExtensionProvider_ZipkinTracingProvider_USE_B3_WITH_W3C_PROPAGATION,
			Headers:            []*meshapi.MeshConfig_ExtensionProvider_HttpHeader{{Name: "x-tenant", HeaderValue: &meshapi.MeshConfig_ExtensionProvider_HttpHeader_Value{Value: "shop"}}},
		},
	}}
	telemetry := func(ns, name string, rule *telemetryapi.Tracing) *telemetryv1.Telemetry {
		t := &telemetryv1.Telemetry{}
		t.Name, t.Namespace = name, ns
		t.Spec.Tracing = []*telemetryapi.Tracing{rule}
		return t
	}
	clientOff := telemetry("default", "client-off", &telemetryapi.Tracing{
		Match:                &telemetryapi.Tracing_TracingSelector{Mode: telemetryapi.WorkloadMode_CLIENT},
		DisableSpanReporting: wrapperspb.Bool(true),
	})
	noProvider := telemetry("istio-system", "mesh-default", &telemetryapi.Tracing{RandomSamplingPercentage: wrapperspb.Double(10)})
	// Mesh-wide, a second rule turns the server side off: sidecars keep
	// outbound tracing, the gateway (a client) keeps its own.
	serverOff := telemetry("istio-system", "mesh-default", &telemetryapi.Tracing{
		Providers: []*telemetryapi.ProviderRef{{Name: "zipkin"}}, RandomSamplingPercentage: wrapperspb.Double(10),
	})
	serverOff.Spec.Tracing = append(serverOff.Spec.Tracing, &telemetryapi.Tracing{
		Match:                &telemetryapi.Tracing_TracingSelector{Mode: telemetryapi.WorkloadMode_SERVER},
		DisableSpanReporting: wrapperspb.Bool(true),
	})
	return []configVariant{
		{"defaults", with(nil)},
		{"enableTracing-false", with(&meshconfig.Tracing{Disabled: true})},
		{"defaultConfig", with(&meshconfig.Tracing{Proxy: proxy})},
		{"defaultProviders", with(&meshconfig.Tracing{Proxy: proxy, Providers: providers, DefaultProviders: []string{"zipkin"}})},
		{"provider-options", with(&meshconfig.Tracing{Providers: append(slices.Clone(providers), tuned), DefaultProviders: []string{"tuned"}})},
		{"client-off", with(probe.Mesh.Tracing, append(slices.Clone(probe.Telemetries), clientOff)...)},
		{"no-provider", with(probe.Mesh.Tracing, noProvider)},
		{"server-off", with(probe.Mesh.Tracing, serverOff)},
		{"enableTracing-false+telemetry", with(&meshconfig.Tracing{Disabled: true, Providers: providers}, probe.Telemetries...)},
	}
}

// oracle runs both translators on one scenario and returns the differences.
func oracle(t *testing.T, sc *spec.Scenario) []Diff {
	topo := registry.DefaultTopology()
	if sc.Topology != nil {
		topo = *sc.Topology
	}
	// Pod addresses as a cluster's pod network would give them; both
	// translators see the same pods.
	next := netip.MustParseAddr("10.0.0.0")
	reg, err := registry.New(topo, func() (netip.Addr, error) {
		next = next.Next()
		return next, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pod := callerPod(t, reg)
	t.Logf("sidecar of pod %s", pod.Name)

	text, n, err := istioYAML(sc.Config)
	if err != nil {
		t.Fatal(err)
	}
	cfgs, err := istioConfigs(text, n)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}

	istio := istioSide(t, reg, cfgs, sc.Config, pod)
	var opts []xdsgen.Option
	if tracingConfigured(sc.Config) {
		opts = append(opts, xdsgen.WithCollector(collector))
	}
	r := xdsgen.New(reg, sc.Config, opts...).ForSidecar(pod)
	ours := Side{Clusters: r.Clusters, Endpoints: r.Endpoints, Listeners: r.Listeners, Routes: r.Routes}

	scope := registryScope(reg)
	scope.InboundPorts = map[int]bool{pod.Port: true}
	if tracingConfigured(sc.Config) {
		// The collector's cluster and endpoint, which the tracer sends to.
		scope.Clusters = map[string]bool{collector.ClusterName(): true}
	}
	if dumpDir != "" {
		objs, _ := kubeObjects(reg)
		dump(t, strings.ReplaceAll(t.Name(), "/", "_"), map[string]string{
			"istio-config.yaml":  text,
			"kubernetes.yaml":    kubeYAML(objs),
			"istio.json":         sideJSON(istio),
			"meshbench.json":     sideJSON(ours),
			"istio.flat.txt":     flatText(Flatten(istio, scope)),
			"meshbench.flat.txt": flatText(Flatten(ours, scope)),
		})
	}
	want := outboundClusters(reg)
	for name := range scope.TCPListeners {
		// A TCP service's <VIP>_<port> listener, with its tcp_proxy.
		want = append(want, "listeners["+name+"].tcp_proxy")
	}
	requireObjects(t, scope, map[string]Side{"istio": istio, "meshbench": ours}, want)
	return Compare(istio, ours, scope)
}

// registryScope is what the oracle compares: the registry's services, each
// on its service port.
func registryScope(reg *registry.Registry) Scope {
	scope := Scope{Hosts: map[string]map[int]bool{}, TCPListeners: map[string]bool{}}
	for _, s := range reg.Services {
		scope.Hosts[s.FQDN()] = map[int]bool{s.Port: true}
		if xdsgen.IsTCP(s) {
			scope.TCPListeners[xdsgen.TCPListenerName(s)] = true
		}
	}
	return scope
}

// outboundClusters are the flattened paths of the registry's services'
// outbound clusters.
func outboundClusters(reg *registry.Registry) []string {
	var out []string
	for _, s := range reg.Services {
		out = append(out, fmt.Sprintf("clusters[outbound|%d||%s]", s.Port, s.FQDN()))
	}
	return out
}

// requireObjects guards against comparing nothing: every side must have
// built each of the objects, named by their flattened paths.
func requireObjects(t *testing.T, scope Scope, sides map[string]Side, paths []string) {
	t.Helper()
	for name, side := range sides {
		flat := Flatten(side, scope)
		for _, p := range paths {
			if flat[p] == "" {
				t.Fatalf("%s built no %s: the comparison would compare nothing", name, p)
			}
		}
	}
}

// callerPod is the first pod of the first service that calls another
// (order in the default topology), or of the first service when none calls.
func callerPod(t *testing.T, reg *registry.Registry) *registry.Pod {
	name := reg.Services[0].Name
	for _, s := range reg.Services {
		if len(s.Calls) > 0 {
			name = s.Name
			break
		}
	}
	pods := reg.PodsOf(name)
	if len(pods) == 0 {
		t.Fatalf("service %s has no pods", name)
	}
	return pods[0]
}

func sideJSON(s Side) string {
	var b strings.Builder
	m := protojson.MarshalOptions{Multiline: true, Indent: "  "}
	section := func(name string, msgs []proto.Message) {
		fmt.Fprintf(&b, "// %s\n", name)
		for _, x := range msgs {
			j, err := m.Marshal(x)
			if err != nil {
				fmt.Fprintf(&b, "// %v\n", err)
				continue
			}
			b.Write(j)
			b.WriteString("\n")
		}
	}
	section("clusters", toMsgs(s.Clusters))
	section("endpoints", toMsgs(s.Endpoints))
	section("listeners", toMsgs(s.Listeners))
	section("routes", toMsgs(s.Routes))
	return b.String()
}

func toMsgs[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, x := range in {
		out[i] = x
	}
	return out
}

func flatText(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, m[k])
	}
	return b.String()
}

func dump(t *testing.T, scenario string, files map[string]string) {
	dir := filepath.Join(dumpDir, scenario)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %s", dir)
}
