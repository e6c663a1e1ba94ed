package chaos

import (
	"context"
	"math"

	"github.com/meshbench/meshbench/sim/runtime"
)

// Bandwidth limits the answers a workload sends back on its inbound side to
// a rate, for every caller or for the traffic from the peer only. Locally,
// a Toxiproxy bandwidth toxic.
type Bandwidth struct {
	// KBps is the limit in kilobytes per second.
	KBps int64
}

// Kind implements Fault.
func (Bandwidth) Kind() Kind { return KindBandwidth }

// Scope implements Fault.
func (Bandwidth) Scope() Scope { return ScopePods }

// String implements Fault.
func (b Bandwidth) String() string { return NetEffect{RateKBps: b.KBps}.String() }

// Inject implements Fault.
func (b Bandwidth) Inject(ctx context.Context, t Target) (Rollback, error) {
	return each(ctx, t.Pods, func(p runtime.Pod) (Rollback, error) {
		return t.In.Network(ctx, p, t.Peers, NetEffect{RateKBps: b.KBps})
	})
}

// Toward implements Rampable.
func (b Bandwidth) Toward(to Fault, f float64) Fault {
	return Bandwidth{KBps: int64(math.Round(lerp(float64(b.KBps), float64(to.(Bandwidth).KBps), f)))}
}
