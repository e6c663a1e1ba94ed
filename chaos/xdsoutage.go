package chaos

import "context"

// ControlPlaneOutage stops the control plane (a crashed istiod): proxies
// keep the config they have and serve with it, and try to reconnect. When
// the fault ends the control plane starts again on the same address, and
// the fault is over once every proxy has reconnected and ACKed a push.
type ControlPlaneOutage struct{}

// Kind implements Fault.
func (ControlPlaneOutage) Kind() Kind { return KindControlPlaneOutage }

// Scope implements Fault.
func (ControlPlaneOutage) Scope() Scope { return ScopeMesh }

// String implements Fault.
func (ControlPlaneOutage) String() string { return "xDS server down" }

// Inject implements Fault.
func (ControlPlaneOutage) Inject(ctx context.Context, t Target) (Rollback, error) {
	return t.In.ControlPlaneOutage(ctx)
}
