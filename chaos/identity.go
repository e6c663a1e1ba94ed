package chaos

import (
	"context"
	"fmt"
)

// Identity is the place of identity faults injected while a run goes on (a
// workload certificate that expires or is swapped for a foreign one, a CA
// that stops issuing). None is injected as a chaos step yet: Inject returns
// ErrNotSupportedYet. A pod that holds a bad certificate from its start is
// the topology's `cert: expired|foreign`, and rotation under load is
// meshConfig.certTTL (catalog: expired-or-foreign-cert-refused,
// cert-rotation-under-load).
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
	return nil, fmt.Errorf("identity faults (%s) as a chaos step: %w (a pod's certificate from its start: the topology's cert; rotation: meshConfig.certTTL)", i.Mode, ErrNotSupportedYet)
}
