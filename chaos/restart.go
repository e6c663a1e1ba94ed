package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/meshbench/meshbench/sim/runtime"
)

// Restart kills the target's pods as Kill does and brings them back, same
// name, address and identity, Delay later: a crashed container that the
// kubelet restarts. Its occurrences last Delay unless the schedule says
// otherwise.
type Restart struct {
	// Delay is how long the pods are gone.
	Delay time.Duration
	// NotReadyAfter is how long the dead pods stay healthy in EDS (see Kill).
	NotReadyAfter time.Duration
}

// Kind implements Fault.
func (Restart) Kind() Kind { return KindRestart }

// Scope implements Fault.
func (Restart) Scope() Scope { return ScopePods }

// Duration implements Timed.
func (r Restart) Duration() time.Duration { return r.Delay }

// String implements Fault.
func (r Restart) String() string {
	return fmt.Sprintf("back after %s, not ready after %s", r.Delay, r.NotReadyAfter)
}

// Inject implements Fault.
func (r Restart) Inject(ctx context.Context, t Target) (Rollback, error) {
	return each(ctx, t.Pods, func(p runtime.Pod) (Rollback, error) {
		return t.In.Kill(ctx, p, r.NotReadyAfter)
	})
}
