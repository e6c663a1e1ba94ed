package fidelity

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meshbench/meshbench/internal/requiretest"
	"github.com/meshbench/meshbench/internal/staticbin"
	"github.com/meshbench/meshbench/scenarios/catalog"
	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/controlplane"
	"github.com/meshbench/meshbench/sim/kind"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/runtime"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// liveScenarios are the catalog scenarios the live check runs, one after
// another in one cluster: they share a topology, so the second is only an
// Apply of its config to the running mesh.
var liveScenarios = []string{"canary-90-10", "header-routing"}

// TestLiveIstiodMatchesXdsgen is the oracle against a running istiod: it
// brings a kind mesh up (the real API server, istiod and injection, see
// sim/kind), and for each of liveScenarios asks istiod what it sends the
// caller pod's sidecar (order-v1-0 in the default topology) and the ingress
// gateway (/debug/config_dump), and compares the clusters and route
// configurations with what sim/xdsgen builds for the same proxies from a
// registry of the same topology, with TestIstioOracle's Scope and its
// Known differences table: a difference the table does not list fails.
// Routes are compared for the sidecar only: a gateway's route
// configurations are named http.<port>, which Flatten leaves out (it
// compares the sidecars' per-port ones).
//
// It skips, saying why, where the kind runtime cannot run (no Docker
// engine, or no images from `make kind-images`); `make fidelity-live` runs
// it alone.
func TestLiveIstiodMatchesXdsgen(t *testing.T) {
	ctx := context.Background()
	if err := kind.Available(ctx); err != nil {
		requiretest.Missing(t, requiretest.Kind, fmt.Sprintf("the kind runtime cannot run here: %v", err))
	}
	known, err := ReadKnownDifferences(knownDifferencesDoc)
	if err != nil {
		t.Fatal(err)
	}
	var scs []*spec.Scenario
	for _, name := range liveScenarios {
		sc, err := catalog.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		scs = append(scs, sc)
	}
	topologyOf := func(sc *spec.Scenario) registry.Topology {
		if sc.Topology != nil {
			return *sc.Topology
		}
		return registry.DefaultTopology()
	}
	topo := topologyOf(scs[0])
	for _, sc := range scs[1:] {
		if !reflect.DeepEqual(topologyOf(sc), topo) {
			t.Fatalf("%s has another topology than %s: the live check runs them in one cluster", sc.Name, scs[0].Name)
		}
	}
	// Built in the main module, with its go.mod: the proxies must run the
	// product's build, not one resolved in this module's build list.
	bin, cleanup, err := staticbin.BuildIn("..")
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()

	t0 := time.Now()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	mesh, err := kind.Runtime{Binary: bin}.Start(ctx, runtime.Spec{Topology: topo, Config: scs[0].Config, Seed: scs[0].Seed, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer mesh.Stop(context.WithoutCancel(ctx))
	km := mesh.(*kind.Mesh)
	t.Logf("mesh up with %s in %s (cluster %s)", scs[0].Name, time.Since(t0).Round(time.Second), km.Cluster())

	// The kind runtime's registry is the topology with placeholder
	// addresses (Kubernetes gives the pods theirs); the same here, so
	// pods and services carry the names the runtime gives them.
	next := netip.MustParseAddr("192.0.2.0")
	reg, err := registry.New(topo, func() (netip.Addr, error) { next = next.Next(); return next, nil })
	if err != nil {
		t.Fatal(err)
	}
	scope := registryScope(reg)
	pod := callerPod(t, reg)
	used := map[*KnownDifference]bool{}

	for i, sc := range scs {
		if i > 0 {
			t1 := time.Now()
			v, err := mesh.Apply(ctx, sc.Config)
			if err != nil {
				t.Fatalf("%s: %v", sc.Name, err)
			}
			if err := mesh.WaitConverged(ctx, v); err != nil {
				t.Fatalf("%s: %v", sc.Name, err)
			}
			t.Logf("%s applied and converged in %s", sc.Name, time.Since(t1).Round(time.Millisecond))
		}
		gen := xdsgen.New(reg, sc.Config)
		proxies := []struct {
			name string
			ours xdsgen.Resources
		}{
			{pod.Name, gen.ForSidecar(pod)},
			{controlplane.Gateway.Name, gen.ForGateway(controlplane.Gateway)},
		}
		for _, px := range proxies {
			t.Run(sc.Name+"/"+px.name, func(t *testing.T) {
				raw, err := km.ConfigDump(ctx, px.name)
				if err != nil {
					t.Fatal(err)
				}
				live, unresolved, err := ParseConfigDump(raw)
				if err != nil {
					t.Fatal(err)
				}
				if len(unresolved) > 0 {
					t.Logf("typed configs of types not linked here, compared by type URL only: %s", strings.Join(unresolved, ", "))
				}
				ours := Side{Clusters: px.ours.Clusters, Routes: px.ours.Routes}
				if dumpDir != "" {
					dump(t, strings.ReplaceAll(t.Name(), "/", "_"), map[string]string{
						"config_dump.json":   string(raw),
						"istiod.json":        sideJSON(live),
						"meshbench.json":     sideJSON(ours),
						"istiod.flat.txt":    flatText(Flatten(live, scope)),
						"meshbench.flat.txt": flatText(Flatten(ours, scope)),
					})
				}
				// Guard against comparing nothing: both sides must have
				// built the registry's outbound clusters, and a sidecar's
				// its virtual hosts.
				want := outboundClusters(reg)
				if px.name == pod.Name {
					want = append(want, virtualHosts(reg)...)
				}
				requireObjects(t, scope, map[string]Side{"istiod": live, "meshbench": ours}, want)
				judge(t, known, Compare(live, ours, scope), used)
			})
		}
	}
}

// virtualHosts are the flattened paths of the sidecar virtual hosts of
// the registry's services, each on its port.
func virtualHosts(reg *registry.Registry) []string {
	var out []string
	for _, s := range reg.Services {
		out = append(out, fmt.Sprintf("routes[%d].virtual_hosts[%s:%d]", s.Port, s.FQDN(), s.Port))
	}
	return out
}
