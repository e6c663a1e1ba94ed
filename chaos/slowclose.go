package chaos

import (
	"context"
	"time"

	"github.com/meshbench/meshbench/sim/runtime"
)

// SlowClose delays by Delay the close that a workload's inbound side sends
// its callers (a FIN that arrives late), for every caller or for the
// traffic from the peer only. Locally, Toxiproxy's slow_close toxic.
type SlowClose struct {
	Delay time.Duration
}

// Kind implements Fault.
func (SlowClose) Kind() Kind { return KindSlowClose }

// Scope implements Fault.
func (SlowClose) Scope() Scope { return ScopePods }

// String implements Fault.
func (s SlowClose) String() string { return NetEffect{SlowClose: s.Delay}.String() }

// Inject implements Fault.
func (s SlowClose) Inject(ctx context.Context, t Target) (Rollback, error) {
	return each(ctx, t.Pods, func(p runtime.Pod) (Rollback, error) {
		return t.In.Network(ctx, p, t.Peers, NetEffect{SlowClose: s.Delay})
	})
}
