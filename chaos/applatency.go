package chaos

import (
	"context"
	"time"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/runtime"
)

// AppLatency changes the service time of the apps of the target's pods: the
// app itself got slow (a GC pause, a slow dependency), as opposed to the
// network (Latency).
type AppLatency struct {
	// Latency is the new service time: a fixed mean or a distribution.
	Latency registry.Latency
}

// Kind implements Fault.
func (AppLatency) Kind() Kind { return KindAppLatency }

// Scope implements Fault.
func (AppLatency) Scope() Scope { return ScopePods }

// String implements Fault.
func (a AppLatency) String() string {
	s := "service time " + a.Latency.Mean.D().String()
	if a.Latency.StdDev > 0 {
		s += " ±" + a.Latency.StdDev.D().String()
	}
	if a.Latency.Dist != "" {
		s += " " + a.Latency.Dist
	}
	return s
}

// Inject implements Fault.
func (a AppLatency) Inject(ctx context.Context, t Target) (Rollback, error) {
	lat := a.Latency
	return each(ctx, t.Pods, func(p runtime.Pod) (Rollback, error) {
		return t.In.App(ctx, p, runtime.AppBehaviour{Latency: &lat})
	})
}

// Toward implements Rampable: the mean and the spread step.
func (a AppLatency) Toward(to Fault, f float64) Fault {
	o := to.(AppLatency).Latency
	l := a.Latency
	l.Mean = units.Duration(time.Duration(lerp(float64(l.Mean), float64(o.Mean), f)))
	l.StdDev = units.Duration(time.Duration(lerp(float64(l.StdDev), float64(o.StdDev), f)))
	return AppLatency{Latency: l}
}
