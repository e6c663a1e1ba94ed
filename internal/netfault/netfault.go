// Package netfault puts network faults into the network namespace it runs
// in: nftables rules that drop the packets reaching a pod's ports (from
// given sources or from all), and probes of the traffic-control qdiscs
// (netem, tbf) the kernel offers. The docker runtime runs it in a helper
// container that joins a pod's network namespace with CAP_NET_ADMIN, as
// Istio's init container does for its iptables rules.
//
// It talks netlink through github.com/google/nftables and
// github.com/vishvananda/netlink, so the images need no iptables or tc
// binary (they are FROM scratch).
package netfault

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Table is the nftables table every fault's chain lives in.
const Table = "meshbench"

// Drop is one packet-drop fault: TCP packets to Ports from Sources (from
// anywhere when Sources is empty) are dropped on input.
type Drop struct {
	// ID names the fault's chain, so that faults stack and each is removed alone.
	ID      string
	Ports   []uint16
	Sources []netip.Addr
}

func (d Drop) chain() string { return "fault-" + d.ID }

func table() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyIPv4, Name: Table}
}

// Add installs d: a base chain of its own on the input hook, one rule per
// port and source.
func Add(d Drop) error {
	if d.ID == "" || strings.ContainsAny(d.ID, " \t") {
		return fmt.Errorf("netfault: bad id %q", d.ID)
	}
	if len(d.Ports) == 0 {
		return errors.New("netfault: no port to drop")
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("netfault: %w", err)
	}
	t := c.AddTable(table())
	policy := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{
		Name: d.chain(), Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &policy,
	})
	sources := d.Sources
	if len(sources) == 0 {
		sources = []netip.Addr{{}}
	}
	for _, port := range d.Ports {
		for _, src := range sources {
			exprs := []expr.Any{
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
			}
			if src.IsValid() {
				if !src.Is4() {
					return fmt.Errorf("netfault: %s is not IPv4", src)
				}
				a := src.As4()
				exprs = append(exprs,
					&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]})
			}
			exprs = append(exprs, &expr.Verdict{Kind: expr.VerdictDrop})
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("netfault: install %s: %w", d.chain(), err)
	}
	return nil
}

// Remove deletes the chain of the fault with this id; a missing one is not an error.
func Remove(id string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("netfault: %w", err)
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return fmt.Errorf("netfault: list chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table.Name == Table && ch.Name == (Drop{ID: id}).chain() {
			c.FlushChain(ch)
			c.DelChain(ch)
			if err := c.Flush(); err != nil {
				return fmt.Errorf("netfault: remove %s: %w", ch.Name, err)
			}
		}
	}
	return nil
}

// Chains lists the fault chains in force.
func Chains() ([]string, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("netfault: %w", err)
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("netfault: list chains: %w", err)
	}
	var out []string
	for _, ch := range chains {
		if ch.Table.Name == Table {
			out = append(out, ch.Name)
		}
	}
	return out, nil
}

// ProbeQdisc tries to put a qdisc of kind ("netem" or "tbf") on link and
// takes it off again: nil when the kernel has it.
func ProbeQdisc(link, kind string) error {
	l, err := netlink.LinkByName(link)
	if err != nil {
		return fmt.Errorf("netfault: link %s: %w", link, err)
	}
	attrs := netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(0xfa, 0), Parent: netlink.HANDLE_ROOT}
	var q netlink.Qdisc
	switch kind {
	case "netem":
		q = netlink.NewNetem(attrs, netlink.NetemQdiscAttrs{Latency: 1000})
	case "tbf":
		q = &netlink.Tbf{QdiscAttrs: attrs, Rate: 1 << 20, Limit: 1 << 16, Buffer: 1 << 14}
	default:
		return fmt.Errorf("netfault: unknown qdisc %q", kind)
	}
	if err := netlink.QdiscAdd(q); err != nil {
		return fmt.Errorf("sch_%s: %w", kind, err)
	}
	return netlink.QdiscDel(q)
}
