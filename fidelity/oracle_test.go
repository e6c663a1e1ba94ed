package fidelity

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/meshbench/meshbench/scenarios"
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

// TestIstioOracle translates every catalog scenario with Istio's own
// translator and with sim/xdsgen, for the sidecar of the first service
// that calls another, and fails on any difference in the fields
// meshbench's sidecar acts on that docs/fidelity.md does not list as
// known.
func TestIstioOracle(t *testing.T) {
	known, err := ReadKnownDifferences(knownDifferencesDoc)
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := scenarios.Catalog()
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	if len(catalog) == 0 {
		t.Fatal("the catalog is empty")
	}
	used := map[*KnownDifference]bool{}
	for _, sc := range catalog {
		t.Run(sc.Name, func(t *testing.T) {
			for _, d := range oracle(t, sc) {
				k := Known(known, d.Path)
				if k == nil {
					t.Errorf("difference not listed in %s:\n    %s", knownDifferencesDoc, d)
					continue
				}
				used[k] = true
				t.Logf("known difference (%s:%d):\n    %s", knownDifferencesDoc, k.Line, d)
			}
		})
	}
	// A row that no scenario needs any more hides nothing today but would
	// hide a regression tomorrow: it must go. Only checked when every
	// scenario ran.
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" {
		return
	}
	if t.Failed() {
		return
	}
	for _, k := range known {
		if !used[k] {
			t.Errorf("%s:%d: known difference `%s` matches no difference in any scenario; remove the row", knownDifferencesDoc, k.Line, k.Pattern)
		}
	}
}

// oracle runs both translators on one scenario and returns the differences.
func oracle(t *testing.T, sc *scenarios.Scenario) []Diff {
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

	istio := istioSide(t, reg, cfgs, pod)
	r := xdsgen.New(reg, sc.Config).ForSidecar(pod)
	ours := Side{Clusters: r.Clusters, Endpoints: r.Endpoints, Listeners: r.Listeners, Routes: r.Routes}

	scope := Scope{Hosts: map[string]bool{}}
	for _, s := range reg.Services {
		scope.Hosts[s.FQDN()] = true
	}
	if dumpDir != "" {
		objs, _ := kubeObjects(reg)
		dump(t, sc.Name, map[string]string{
			"istio-config.yaml":  text,
			"kubernetes.yaml":    kubeYAML(objs),
			"istio.json":         sideJSON(istio),
			"meshbench.json":     sideJSON(ours),
			"istio.flat.txt":     flatText(Flatten(istio, scope)),
			"meshbench.flat.txt": flatText(Flatten(ours, scope)),
		})
	}
	// Guard against comparing nothing: both sides must have built the
	// outbound clusters and route configurations of the registry.
	for _, side := range []struct {
		name string
		flat map[string]string
	}{{"istio", Flatten(istio, scope)}, {"meshbench", Flatten(ours, scope)}} {
		for _, s := range reg.Services {
			c := fmt.Sprintf("clusters[outbound|%d||%s]", s.Port, s.FQDN())
			if side.flat[c] == "" {
				t.Fatalf("%s built no cluster %s: the oracle compares nothing", side.name, c)
			}
		}
	}
	return Compare(istio, ours, scope)
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
