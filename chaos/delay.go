package chaos

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"
)

// Delay holds a share of the requests to a service (a version of it, or one
// of its routes) for a fixed time at the calling sidecar, with Istio's fault
// injection: a VirtualService http[].fault.delay, pushed as xDS and taken
// out the same way. Envoy's fault filter runs before the router, so the
// delay adds to the caller's view of the request, route timeouts included.
type Delay struct {
	// Delay is the fixed delay.
	Delay time.Duration
	// Percent of the requests delayed, 0 to 100.
	Percent float64
}

// Kind implements Fault.
func (Delay) Kind() Kind { return KindDelay }

// Scope implements Fault.
func (Delay) Scope() Scope { return ScopeRoute }

// String implements Fault.
func (d Delay) String() string { return d.Delay.String() + pct(d.Percent) }

// Inject implements Fault.
func (d Delay) Inject(ctx context.Context, t Target) (Rollback, error) {
	f := &networking.HTTPFaultInjection{Delay: &networking.HTTPFaultInjection_Delay{
		Percentage:    &networking.Percent{Value: d.Percent},
		HttpDelayType: &networking.HTTPFaultInjection_Delay_FixedDelay{FixedDelay: durationpb.New(d.Delay)},
	}}
	return t.In.Reconfigure(ctx, "delay on "+t.String(), RouteFault(t.In.Namespace(), t, f))
}

// Toward implements Rampable: the delay and the percentage step.
func (d Delay) Toward(to Fault, f float64) Fault {
	o := to.(Delay)
	return Delay{Delay: time.Duration(lerp(float64(d.Delay), float64(o.Delay), f)), Percent: lerp(d.Percent, o.Percent, f)}
}
