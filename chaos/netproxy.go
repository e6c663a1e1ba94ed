package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"

	"github.com/meshbench/meshbench/sim/runtime"
)

// drainGrace is how long a proxy outlives its redirect: requests that a
// caller routed to it just before it took the EDS update get that long to
// finish before the proxy closes their connections. (Nothing at the TCP
// level says when a connection is idle, so this is a time, not an event.)
const drainGrace = 150 * time.Millisecond

// netProxy is a Toxiproxy proxy in front of a pod's inbound side, for the
// traffic from one set of callers, with the toxics of the network faults in
// force on it.
type netProxy struct {
	pod    string
	from   []string // caller pod names; empty: every caller
	proxy  *toxiproxy.Proxy
	toxics map[int][]string // fault id → its toxics' names
}

// toxic is one Toxiproxy toxic as its JSON API spells it.
type toxic struct {
	Name       string           `json:"name"`
	Type       string           `json:"type"`
	Stream     string           `json:"stream"`
	Toxicity   float32          `json:"toxicity"`
	Attributes map[string]int64 `json:"attributes"`
}

// toxics maps a network effect to Toxiproxy's toxics. Downstream is the
// answers (server to client), upstream the requests.
func toxics(e NetEffect) []toxic {
	var out []toxic
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	if e.Latency > 0 || e.Jitter > 0 {
		out = append(out, toxic{Type: "latency", Stream: "downstream", Attributes: map[string]int64{"latency": ms(e.Latency), "jitter": ms(e.Jitter)}})
	}
	if e.RateKBps > 0 {
		out = append(out, toxic{Type: "bandwidth", Stream: "downstream", Attributes: map[string]int64{"rate": e.RateKBps}})
	}
	if e.Reset {
		out = append(out, toxic{Type: "reset_peer", Stream: "upstream", Attributes: map[string]int64{"timeout": ms(e.ResetAfter)}})
	}
	if e.Blackhole {
		// Toxiproxy's timeout toxic with timeout 0 drops every byte and never closes.
		out = append(out, toxic{Type: "timeout", Stream: "upstream", Attributes: map[string]int64{"timeout": 0}},
			toxic{Type: "timeout", Stream: "downstream", Attributes: map[string]int64{"timeout": 0}})
	}
	if e.SlowClose > 0 {
		out = append(out, toxic{Type: "slow_close", Stream: "downstream", Attributes: map[string]int64{"delay": ms(e.SlowClose)}})
	}
	return out
}

// Network implements Injector. The first network fault on a pod starts a
// proxy on the pod's address, redirects the pod's EDS endpoint to it (for
// the callers in from, or all of them) and waits until every proxy has the
// update; later faults on the pod add their toxics to it; the last one to
// go redirects back and stops it. Faults on one pod at the same time must
// name the same callers.
func (l *Local) Network(ctx context.Context, pod runtime.Pod, from []runtime.Pod, e NetEffect) (Rollback, error) {
	if d, ok := l.mesh.(runtime.PacketDropper); ok && e == (NetEffect{Blackhole: true}) {
		return l.drop(ctx, d, pod, from)
	}
	txs := toxics(e)
	if len(txs) == 0 {
		return nil, errors.New("the network fault does nothing")
	}
	var callers []string
	for _, p := range from {
		callers = append(callers, p.Name)
	}
	sort.Strings(callers)
	id := l.id()

	l.netMu.Lock()
	defer l.netMu.Unlock()
	np := l.proxies[pod.Name]
	if np != nil && !slices.Equal(np.from, callers) {
		return nil, fmt.Errorf("%s already has network faults for the traffic from %s; on the %s runtime, network faults on one pod at the same time must name the same callers",
			pod.Name, callerList(np.from), l.name)
	}
	created := np == nil
	if created {
		upstream, err := l.hooks.InboundAddr(pod.Name)
		if err != nil {
			return nil, err
		}
		host, _, err := net.SplitHostPort(upstream)
		if err != nil {
			return nil, err
		}
		if h, ok := l.mesh.(runtime.FaultProxyHost); ok {
			host = h.FaultProxyHost() // the pods reach this process there, not on their own address
		}
		np = &netProxy{pod: pod.Name, from: callers, toxics: map[int][]string{},
			proxy: toxiproxy.NewProxy(l.tpx, "meshbench-"+pod.Name, net.JoinHostPort(host, "0"), upstream)}
	}
	var names []string
	for _, t := range txs {
		t.Name = fmt.Sprintf("f%d-%s-%s", id, t.Type, t.Stream)
		t.Toxicity = 1
		b, err := json.Marshal(t)
		if err != nil {
			return nil, err
		}
		if _, err := np.proxy.Toxics.AddToxicJson(strings.NewReader(string(b))); err != nil {
			l.dropToxics(np, names)
			return nil, fmt.Errorf("toxic %s: %w", t.Type, err)
		}
		names = append(names, t.Name)
	}
	np.toxics[id] = names
	if created {
		if err := np.proxy.Start(); err != nil {
			return nil, fmt.Errorf("network fault proxy for %s: %w", pod.Name, err)
		}
		err := l.hooks.RedirectInbound(ctx, pod.Name, callers, np.proxy.Listen)
		if err == nil {
			err = l.converge(ctx)
		}
		if err != nil {
			cctx, cancel := cleanupContext(ctx)
			defer cancel()
			_ = l.teardown(cctx, np)
			return nil, err
		}
		l.proxies[pod.Name] = np
	}
	return func(ctx context.Context) error {
		l.netMu.Lock()
		defer l.netMu.Unlock()
		l.dropToxics(np, np.toxics[id])
		delete(np.toxics, id)
		if len(np.toxics) > 0 {
			return nil
		}
		delete(l.proxies, pod.Name)
		return l.teardown(ctx, np)
	}, nil
}

// teardown redirects the pod's endpoint back, waits until every proxy has
// it, and stops the proxy once what was in flight through it had time to end.
func (l *Local) teardown(ctx context.Context, np *netProxy) error {
	err := l.hooks.RedirectInbound(ctx, np.pod, np.from, "")
	if err == nil {
		err = l.converge(ctx)
	}
	if err == nil {
		t := time.NewTimer(drainGrace)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	np.proxy.Stop()
	return err
}

func (l *Local) dropToxics(np *netProxy, names []string) {
	for _, n := range names {
		_ = np.proxy.Toxics.RemoveToxic(context.Background(), n)
	}
}

func callerList(from []string) string {
	if len(from) == 0 {
		return "every caller"
	}
	return strings.Join(from, ", ")
}

// drop blackholes a pod with real packet drops in its network namespace,
// where the runtime can: nothing reaches the pod's port from the callers
// in from (or from anyone), established connections included, and no EDS
// changes.
func (l *Local) drop(ctx context.Context, d runtime.PacketDropper, pod runtime.Pod, from []runtime.Pod) (Rollback, error) {
	var callers []string
	for _, p := range from {
		callers = append(callers, p.Name)
	}
	undo, err := d.DropInbound(ctx, pod.Name, callers)
	if err != nil {
		return nil, err
	}
	return Rollback(undo), nil
}

// Mechanism says how the runtime puts a kind of fault in place, where it says.
func (l *Local) Mechanism(k Kind) string {
	if m, ok := l.mesh.(runtime.Mechanisms); ok {
		return m.Mechanism(string(k))
	}
	return ""
}
