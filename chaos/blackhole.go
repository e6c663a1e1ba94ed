package chaos

import (
	"context"

	"github.com/meshbench/meshbench/sim/runtime"
)

// Blackhole makes a workload's inbound side accept connections and never
// answer: every byte, both ways, is dropped (for every caller or for the
// traffic from the peer only). Callers wait for their own timeouts. Locally,
// Toxiproxy's timeout toxic with timeout 0, both ways; when it is taken off,
// the connections it swallowed are closed.
type Blackhole struct{}

// Kind implements Fault.
func (Blackhole) Kind() Kind { return KindBlackhole }

// Scope implements Fault.
func (Blackhole) Scope() Scope { return ScopePods }

// String implements Fault.
func (Blackhole) String() string { return "blackhole" }

// Inject implements Fault.
func (Blackhole) Inject(ctx context.Context, t Target) (Rollback, error) {
	return each(ctx, t.Pods, func(p runtime.Pod) (Rollback, error) {
		return t.In.Network(ctx, p, t.Peers, NetEffect{Blackhole: true})
	})
}
