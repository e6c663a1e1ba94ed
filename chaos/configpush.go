package chaos

import (
	"context"
	"time"
)

// ConfigPush pushes the config in force to every proxy again, as a new
// version, in the middle of the load: every proxy rebuilds its listeners,
// routes and clusters. A mesh that handles pushes well drops nothing. The
// fault is over once every proxy has ACKed; there is nothing to take off.
type ConfigPush struct{}

// Kind implements Fault.
func (ConfigPush) Kind() Kind { return KindConfigPush }

// Scope implements Fault.
func (ConfigPush) Scope() Scope { return ScopeMesh }

// String implements Fault.
func (ConfigPush) String() string { return "push of the config in force" }

// Duration implements Timed: a push is a moment, its window ends as soon
// as every proxy has it.
func (ConfigPush) Duration() time.Duration { return time.Nanosecond }

// Inject implements Fault.
func (ConfigPush) Inject(ctx context.Context, t Target) (Rollback, error) {
	if err := t.In.Push(ctx); err != nil {
		return nil, err
	}
	return func(context.Context) error { return nil }, nil
}
