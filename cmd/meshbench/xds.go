package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/kind"
	"github.com/meshbench/meshbench/sim/local"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/runtime"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// cmdXDS prints what the control plane sends one proxy. On the local
// runtime (the default) it starts nothing and prints our translator's
// resources, as `istioctl proxy-config all -o json` would; on kind and
// kube it brings the scenario's mesh up and prints istiod's own config
// dump for that proxy, then tears the mesh down (kind: -keep keeps it).
func cmdXDS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("xds", flag.ContinueOnError)
	fs.SetOutput(stderr)
	proxy := fs.String("proxy", "", "pod name (e.g. order-v1-0) or istio-ingressgateway; default the first pod")
	typ := fs.String("type", "all", "clusters, endpoints, listeners, routes or all (local runtime)")
	var rf runtimeFlags
	rf.register(fs)
	if err := fs.Parse(args); err != nil {
		return badInput(err)
	}
	if fs.NArg() != 1 {
		return badInput(errors.New("xds: name one scenario or scenario file"))
	}
	scs, err := resolve(fs.Args())
	if err != nil {
		return badInput(err)
	}
	sc := scs[0]
	topo := registry.DefaultTopology()
	if sc.Topology != nil {
		topo = *sc.Topology
	}
	switch rf.name {
	case "local":
	case "kind", "kube":
		if *typ != "all" {
			return badInput(errors.New("xds: -type is for the local runtime; istiod's config dump holds every type"))
		}
		rt, err := rf.runtime()
		if err != nil {
			return badInput(err)
		}
		return liveXDS(ctx, rt, sc, topo, *proxy, stdout, stderr)
	default:
		return badInput(fmt.Errorf("xds: -runtime %s: the local runtime computes the xDS, kind and kube ask istiod", rf.name))
	}
	// Addresses as a local run would give them, from a fixed subnet.
	next := byte(10)
	alloc := func() (netip.Addr, error) { next++; return netip.AddrFrom4([4]byte{127, 64, 0, next}), nil }
	reg, err := registry.New(topo, alloc)
	if err != nil {
		return badInput(err)
	}
	for _, p := range reg.Pods {
		p.AppAddr = netip.AddrPortFrom(p.IP, 18080).String()
	}
	gen := xdsgen.New(reg, sc.Config)
	var res xdsgen.Resources
	switch {
	case *proxy == local.Gateway.Name:
		gw := local.Gateway
		gw.IP = netip.AddrFrom4([4]byte{127, 64, 0, 1})
		res = gen.ForGateway(gw)
	default:
		name := *proxy
		if name == "" {
			name = reg.Pods[0].Name
		}
		p, ok := reg.Pod(name)
		if !ok {
			var names []string
			for _, p := range reg.Pods {
				names = append(names, p.Name)
			}
			return badInput(fmt.Errorf("xds: no proxy %q (pods: %v, or %s)", name, names, local.Gateway.Name))
		}
		res = gen.ForSidecar(p)
	}
	out := map[string][]json.RawMessage{}
	add := func(kind string, m proto.Message) error {
		b, err := protojson.MarshalOptions{UseProtoNames: false}.Marshal(m)
		if err != nil {
			return err
		}
		out[kind] = append(out[kind], b)
		return nil
	}
	for _, c := range res.Clusters {
		if err := add("clusters", c); err != nil {
			return err
		}
	}
	for _, e := range res.Endpoints {
		if err := add("endpoints", e); err != nil {
			return err
		}
	}
	for _, l := range res.Listeners {
		if err := add("listeners", l); err != nil {
			return err
		}
	}
	for _, r := range res.Routes {
		if err := add("routes", r); err != nil {
			return err
		}
	}
	var v any = out
	if *typ != "all" {
		sel, ok := out[*typ]
		if !ok {
			return badInput(fmt.Errorf("xds: unknown type %q (clusters, endpoints, listeners, routes, all)", *typ))
		}
		v = sel
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// liveXDS brings the scenario's mesh up on rt and prints istiod's config
// dump for proxy.
func liveXDS(ctx context.Context, rt runtime.Runtime, sc *spec.Scenario, topo registry.Topology, proxy string, stdout, stderr io.Writer) error {
	if proxy == "" {
		proxy = topo.Services[0].Name + "-" + topo.Services[0].Versions[0].Name + "-0"
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	mesh, err := rt.Start(ctx, runtime.Spec{Topology: topo, Config: sc.Config, Seed: sc.Seed, Log: log})
	if err != nil {
		return err
	}
	defer mesh.Stop(context.WithoutCancel(ctx))
	km, ok := mesh.(*kind.Mesh)
	if !ok {
		return fmt.Errorf("xds: the %s runtime has no istiod to ask", rt.Name())
	}
	dump, err := km.ConfigDump(ctx, proxy)
	if err != nil {
		return err
	}
	_, err = stdout.Write(dump)
	return err
}
