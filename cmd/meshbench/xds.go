package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/meshbench/meshbench/sim/local"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// cmdXDS prints what the control plane would send one proxy, as
// `istioctl proxy-config all -o json` does, without starting anything.
func cmdXDS(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("xds", flag.ContinueOnError)
	proxy := fs.String("proxy", "", "pod name (e.g. order-v1-0) or istio-ingressgateway; default the first pod")
	typ := fs.String("type", "all", "clusters, endpoints, listeners, routes or all")
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
