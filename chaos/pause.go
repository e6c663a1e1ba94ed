package chaos

import (
	"context"

	"github.com/meshbench/meshbench/sim/runtime"
)

// Pause freezes the apps of the target's pods (docker pause; SIGSTOP): they
// accept connections but read and answer nothing until the fault ends, then
// go on with what was waiting. Their endpoints stay healthy in EDS (a
// frozen process fails no readiness probe before its timeout), so callers
// keep sending to them and wait for their own timeouts.
type Pause struct{}

// Kind implements Fault.
func (Pause) Kind() Kind { return KindPause }

// Scope implements Fault.
func (Pause) Scope() Scope { return ScopePods }

// String implements Fault.
func (Pause) String() string { return "paused" }

// Inject implements Fault.
func (Pause) Inject(ctx context.Context, t Target) (Rollback, error) {
	return each(ctx, t.Pods, func(p runtime.Pod) (Rollback, error) { return t.In.Pause(ctx, p) })
}
