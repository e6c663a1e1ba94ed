package chaos

import (
	"context"
	"errors"

	"github.com/meshbench/meshbench/sim/runtime"
)

// Partition cuts the network between two groups of pods, both directions:
// the traffic from the peers to the target's pods and from the target's
// pods to the peers is blackholed (connections open, nothing gets through),
// while both keep talking to everyone else.
type Partition struct{}

// Kind implements Fault.
func (Partition) Kind() Kind { return KindPartition }

// Scope implements Fault.
func (Partition) Scope() Scope { return ScopePair }

// String implements Fault.
func (Partition) String() string { return "partition, both directions" }

// Inject implements Fault.
func (Partition) Inject(ctx context.Context, t Target) (Rollback, error) {
	if len(t.Peers) == 0 {
		return nil, errors.New("a partition needs a peer: the other side")
	}
	in, err := each(ctx, t.Pods, func(p runtime.Pod) (Rollback, error) {
		return t.In.Network(ctx, p, t.Peers, NetEffect{Blackhole: true})
	})
	if err != nil {
		return nil, err
	}
	out, err := each(ctx, t.Peers, func(p runtime.Pod) (Rollback, error) {
		return t.In.Network(ctx, p, t.Pods, NetEffect{Blackhole: true})
	})
	if err != nil {
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		return nil, errors.Join(err, in(cctx))
	}
	return all([]Rollback{in, out}), nil
}
