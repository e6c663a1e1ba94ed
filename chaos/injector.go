package chaos

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/runtime"
)

// Injector carries faults into one runtime. Fault types are written against
// it, so a runtime that implements it runs the whole catalog; a primitive it
// cannot do returns runtime.ErrUnsupported. Every primitive returns the
// Rollback that undoes exactly what it did, and primitives stack: two faults
// on the same pod are both in force, and taking one off leaves the other.
type Injector interface {
	// Runtime names the runtime, as the CLI spells it.
	Runtime() string
	// Namespace is the namespace of the mesh's services.
	Namespace() string
	// Pods lists the mesh's pods as they are now.
	Pods() []runtime.Pod
	// Reconfigure adds a change to the mesh's Istio config, pushes the
	// result and returns once every proxy has ACKed it; the rollback
	// removes the change the same way.
	Reconfigure(ctx context.Context, name string, change ConfigChange) (Rollback, error)
	// Push pushes the config in force again as a new version and returns
	// once every proxy has ACKed it.
	Push(ctx context.Context) error
	// Network puts an effect on the traffic that reaches pod's inbound side
	// from the pods in from (from every caller when from is empty).
	Network(ctx context.Context, pod runtime.Pod, from []runtime.Pod, e NetEffect) (Rollback, error)
	// Kill stops a pod abruptly; its endpoint leaves EDS notReadyAfter later,
	// as Kubernetes notices a dead pod. The rollback brings it back with the
	// same name, address and identity and waits until its proxy has the config.
	Kill(ctx context.Context, pod runtime.Pod, notReadyAfter time.Duration) (Rollback, error)
	// Pause freezes a pod's app: connections are accepted, nothing is answered.
	Pause(ctx context.Context, pod runtime.Pod) (Rollback, error)
	// App changes a pod's app behaviour (service time, error rate).
	App(ctx context.Context, pod runtime.Pod, b runtime.AppBehaviour) (Rollback, error)
	// ControlPlaneOutage stops the control plane; the rollback starts it
	// again and returns once every proxy has reconnected and ACKed.
	ControlPlaneOutage(ctx context.Context) (Rollback, error)
	// Close takes off whatever is still in place and releases the
	// injector's own resources (proxies, listeners).
	Close(ctx context.Context) error
}

// ConfigChange edits a copy of the mesh's Istio config.
type ConfigChange func(cfg *meshconfig.Config) error

// NetEffect is what a network fault does to the bytes of a connection, on
// the inbound side of a workload. Zero fields do nothing.
type NetEffect struct {
	// Latency delays every chunk of the answers by Latency ± Jitter (uniform).
	Latency, Jitter time.Duration
	// RateKBps limits the answers to this many kilobytes per second.
	RateKBps int64
	// Reset resets connections (TCP RST) ResetAfter after their first bytes.
	Reset      bool
	ResetAfter time.Duration
	// Blackhole accepts connections and drops every byte, both ways.
	Blackhole bool
	// SlowClose delays the close of connections by the server.
	SlowClose time.Duration
}

// String describes the effect.
func (e NetEffect) String() string {
	var out []string
	if e.Latency > 0 || e.Jitter > 0 {
		s := "latency " + e.Latency.String()
		if e.Jitter > 0 {
			s += " ±" + e.Jitter.String()
		}
		out = append(out, s)
	}
	if e.RateKBps > 0 {
		out = append(out, fmt.Sprintf("bandwidth %dKB/s", e.RateKBps))
	}
	if e.Reset {
		out = append(out, "reset after "+e.ResetAfter.String())
	}
	if e.Blackhole {
		out = append(out, "blackhole")
	}
	if e.SlowClose > 0 {
		out = append(out, "slow close "+e.SlowClose.String())
	}
	return strings.Join(out, ", ")
}

// For returns the injector for a running mesh: Local for meshes whose
// runtime implements runtime.FaultInjector, base being the Istio config the
// mesh was started with.
func For(mesh runtime.Mesh, runtimeName, namespace string, base meshconfig.Config) (Injector, error) {
	if _, ok := mesh.(runtime.FaultInjector); ok {
		return NewLocal(mesh, runtimeName, namespace, base)
	}
	return nil, fmt.Errorf("chaos: the %s runtime has no fault injector: %w", runtimeName, runtime.ErrUnsupported)
}
