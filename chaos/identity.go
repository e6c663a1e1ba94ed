package chaos

import (
	"context"
	"fmt"
)

// Identity is the place of identity faults (a workload certificate that
// expires or comes from a foreign trust domain, a CA that stops issuing).
// They come with the mTLS work; until then Inject returns ErrNotSupportedYet.
type Identity struct {
	// Mode names the identity fault, e.g. "expired", "foreign", "caDown".
	Mode string
}

// Kind implements Fault.
func (Identity) Kind() Kind { return KindIdentity }

// Scope implements Fault.
func (Identity) Scope() Scope { return ScopePods }

// String implements Fault.
func (i Identity) String() string { return "identity " + i.Mode }

// Inject implements Fault.
func (i Identity) Inject(context.Context, Target) (Rollback, error) {
	return nil, fmt.Errorf("identity faults (%s) come with the mTLS work: %w", i.Mode, ErrNotSupportedYet)
}
