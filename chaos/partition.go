package chaos

import (
	"context"
	"errors"
	"sync"

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
	// The two directions go in, and come off, at the same time: one after
	// the other, a partition would be one-way for as long as a rule takes
	// to put in place (a third of a second, with docker exec).
	var in, out Rollback
	var inErr, outErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		in, inErr = each(ctx, t.Pods, func(p runtime.Pod) (Rollback, error) {
			return t.In.Network(ctx, p, t.Peers, NetEffect{Blackhole: true})
		})
	})
	wg.Go(func() {
		out, outErr = each(ctx, t.Peers, func(p runtime.Pod) (Rollback, error) {
			return t.In.Network(ctx, p, t.Pods, NetEffect{Blackhole: true})
		})
	})
	wg.Wait()
	if err := errors.Join(inErr, outErr); err != nil {
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		var undo []error
		for _, rb := range []Rollback{in, out} {
			if rb != nil {
				undo = append(undo, rb(cctx))
			}
		}
		return nil, errors.Join(append([]error{err}, undo...)...)
	}
	return together(in, out), nil
}

// together runs rollbacks at the same time and joins their errors.
func together(rbs ...Rollback) Rollback {
	return func(ctx context.Context) error {
		errs := make([]error, len(rbs))
		var wg sync.WaitGroup
		for i, rb := range rbs {
			wg.Go(func() { errs[i] = rb(ctx) })
		}
		wg.Wait()
		return errors.Join(errs...)
	}
}
