package chaos

import (
	"context"
	"fmt"

	networking "istio.io/api/networking/v1alpha3"
)

// Abort answers a share of the requests to a service (a version of it, or
// one of its routes) with an HTTP status at the calling sidecar, with
// Istio's fault injection: a VirtualService http[].fault.abort. The fault
// filter runs before the router, so an abort is never retried (flag FI).
type Abort struct {
	// Status answered, 200 to 599.
	Status int
	// Percent of the requests aborted, 0 to 100.
	Percent float64
}

// Kind implements Fault.
func (Abort) Kind() Kind { return KindAbort }

// Scope implements Fault.
func (Abort) Scope() Scope { return ScopeRoute }

// String implements Fault.
func (a Abort) String() string { return fmt.Sprintf("HTTP %d%s", a.Status, pct(a.Percent)) }

// Inject implements Fault.
func (a Abort) Inject(ctx context.Context, t Target) (Rollback, error) {
	f := &networking.HTTPFaultInjection{Abort: &networking.HTTPFaultInjection_Abort{
		Percentage: &networking.Percent{Value: a.Percent},
		ErrorType:  &networking.HTTPFaultInjection_Abort_HttpStatus{HttpStatus: int32(a.Status)},
	}}
	return t.In.Reconfigure(ctx, "abort on "+t.String(), RouteFault(t.In.Namespace(), t, f))
}

// Toward implements Rampable: the percentage steps.
func (a Abort) Toward(to Fault, f float64) Fault {
	return Abort{Status: a.Status, Percent: lerp(a.Percent, to.(Abort).Percent, f)}
}
