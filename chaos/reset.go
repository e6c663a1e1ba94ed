package chaos

import (
	"context"
	"time"

	"github.com/meshbench/meshbench/sim/runtime"
)

// Reset resets the connections to a workload's inbound side (TCP RST, so the
// caller sees "connection reset by peer") After their first bytes, for every
// caller or for the traffic from the peer only. Locally, Toxiproxy's
// reset_peer toxic on a proxy started with it.
type Reset struct {
	After time.Duration
}

// Kind implements Fault.
func (Reset) Kind() Kind { return KindReset }

// Scope implements Fault.
func (Reset) Scope() Scope { return ScopePods }

// String implements Fault.
func (r Reset) String() string { return NetEffect{Reset: true, ResetAfter: r.After}.String() }

// Inject implements Fault.
func (r Reset) Inject(ctx context.Context, t Target) (Rollback, error) {
	return each(ctx, t.Pods, func(p runtime.Pod) (Rollback, error) {
		return t.In.Network(ctx, p, t.Peers, NetEffect{Reset: true, ResetAfter: r.After})
	})
}
