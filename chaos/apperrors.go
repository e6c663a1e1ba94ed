package chaos

import (
	"context"
	"fmt"

	"github.com/meshbench/meshbench/sim/runtime"
)

// AppErrors makes the apps of the target's pods answer a share of their
// requests with an HTTP status: errors that come from the server, which a
// retry policy may retry and outlier detection may count (unlike Abort).
type AppErrors struct {
	// Rate is the share answered with Status, 0 to 1.
	Rate float64
	// Status of those answers; 0 keeps the topology's (503 by default).
	Status int
}

// Kind implements Fault.
func (AppErrors) Kind() Kind { return KindAppErrors }

// Scope implements Fault.
func (AppErrors) Scope() Scope { return ScopePods }

// String implements Fault.
func (a AppErrors) String() string {
	if a.Status == 0 {
		return fmt.Sprintf("%g%% errors", a.Rate*100)
	}
	return fmt.Sprintf("%g%% HTTP %d", a.Rate*100, a.Status)
}

// Inject implements Fault.
func (a AppErrors) Inject(ctx context.Context, t Target) (Rollback, error) {
	rate := a.Rate
	return each(ctx, t.Pods, func(p runtime.Pod) (Rollback, error) {
		return t.In.App(ctx, p, runtime.AppBehaviour{ErrorRate: &rate, ErrorStatus: a.Status})
	})
}

// Toward implements Rampable: the rate steps.
func (a AppErrors) Toward(to Fault, f float64) Fault {
	return AppErrors{Rate: lerp(a.Rate, to.(AppErrors).Rate, f), Status: a.Status}
}
