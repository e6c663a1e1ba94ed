package chaos

import (
	"context"
	"time"

	"github.com/meshbench/meshbench/sim/runtime"
)

// Latency delays the answers a workload sends back on its inbound side by
// Latency ± Jitter (uniform), for every caller or for the traffic from the
// peer only: the network between two workloads got slow. Locally, a
// Toxiproxy latency toxic on the answers.
type Latency struct {
	Latency, Jitter time.Duration
}

// Kind implements Fault.
func (Latency) Kind() Kind { return KindLatency }

// Scope implements Fault.
func (Latency) Scope() Scope { return ScopePods }

// String implements Fault.
func (l Latency) String() string { return NetEffect{Latency: l.Latency, Jitter: l.Jitter}.String() }

// Inject implements Fault.
func (l Latency) Inject(ctx context.Context, t Target) (Rollback, error) {
	return each(ctx, t.Pods, func(p runtime.Pod) (Rollback, error) {
		return t.In.Network(ctx, p, t.Peers, NetEffect{Latency: l.Latency, Jitter: l.Jitter})
	})
}

// Toward implements Rampable.
func (l Latency) Toward(to Fault, f float64) Fault {
	o := to.(Latency)
	return Latency{Latency: time.Duration(lerp(float64(l.Latency), float64(o.Latency), f)), Jitter: time.Duration(lerp(float64(l.Jitter), float64(o.Jitter), f))}
}
