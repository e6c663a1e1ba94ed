package chaos

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/meshbench/meshbench/sim/runtime"
)

// Kind names a fault type as scenarios spell it.
type Kind string

// The fault types.
const (
	KindDelay              Kind = "delay"
	KindAbort              Kind = "abort"
	KindLatency            Kind = "latency"
	KindBandwidth          Kind = "bandwidth"
	KindReset              Kind = "reset"
	KindBlackhole          Kind = "blackhole"
	KindSlowClose          Kind = "slowClose"
	KindPartition          Kind = "partition"
	KindKill               Kind = "kill"
	KindRestart            Kind = "restart"
	KindPause              Kind = "pause"
	KindAppErrors          Kind = "appErrors"
	KindAppLatency         Kind = "appLatency"
	KindControlPlaneOutage Kind = "xdsOutage"
	KindConfigPush         Kind = "configPush"
	KindIdentity           Kind = "identity"
)

// Kinds lists every fault type, in the order of the catalog.
var Kinds = []Kind{KindDelay, KindAbort, KindLatency, KindBandwidth, KindReset, KindBlackhole, KindSlowClose, KindPartition,
	KindKill, KindRestart, KindPause, KindAppErrors, KindAppLatency, KindControlPlaneOutage, KindConfigPush, KindIdentity}

// Scope says what a fault acts on, and so what its Target must hold.
type Scope int

const (
	// ScopeRoute faults act on the routes to a service (Target.Service,
	// optionally Version or Route): mesh faults.
	ScopeRoute Scope = iota
	// ScopePods faults act on pods (Target.Pods); network faults among them
	// may be limited to the traffic from Target.Peers.
	ScopePods
	// ScopePair faults act between two groups of pods, Target.Pods and Target.Peers.
	ScopePair
	// ScopeMesh faults act on the whole mesh: no target.
	ScopeMesh
)

// Rollback takes a fault off. A Runner calls it exactly once.
type Rollback func(ctx context.Context) error

// Fault is one fault type with its parameters. Inject puts it on target
// and returns how to take it off; when it fails, nothing of it stays in place.
type Fault interface {
	// Kind is the fault's type.
	Kind() Kind
	// Scope says what Target must hold.
	Scope() Scope
	// Inject puts the fault in place.
	Inject(ctx context.Context, t Target) (Rollback, error)
	// String describes the fault's parameters for the timeline, e.g. "100ms ±10ms".
	String() string
}

// Target is what a fault acts on, resolved against the running mesh.
type Target struct {
	// In is the runtime's injector.
	In Injector
	// Pods are the pods selected (pod and network faults: the receiving side).
	Pods []runtime.Pod
	// Peers are the other side of a network fault between two workloads: the
	// callers whose traffic to Pods it affects (none: every caller), or the
	// other side of a partition.
	Peers []runtime.Pod
	// Service, Version and Route select routes for mesh faults.
	Service, Version, Route string
}

// String names the target for the timeline: "payment/v2", "payment-v1-0 ← order", "payment (route canary)".
func (t Target) String() string {
	names := func(ps []runtime.Pod) string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return strings.Join(out, ",")
	}
	switch {
	case t.Service != "" && t.Route != "":
		return fmt.Sprintf("%s (route %s)", t.Service, t.Route)
	case t.Service != "" && t.Version != "":
		return t.Service + "/" + t.Version
	case t.Service != "":
		return t.Service
	case len(t.Pods) > 0 && len(t.Peers) > 0:
		return names(t.Pods) + " ← " + names(t.Peers)
	case len(t.Pods) > 0:
		return names(t.Pods)
	}
	return "mesh"
}

// ErrNotSupportedYet is returned by fault types whose runtime support is still to come.
var ErrNotSupportedYet = errors.New("not supported yet")

// each calls inject for every pod and returns one rollback for all; on error
// it takes off what it had put in place.
func each(ctx context.Context, pods []runtime.Pod, inject func(runtime.Pod) (Rollback, error)) (Rollback, error) {
	if len(pods) == 0 {
		return nil, errors.New("the target selects no pod")
	}
	var done []Rollback
	for _, p := range pods {
		rb, err := inject(p)
		if err != nil {
			cctx, cancel := cleanupContext(ctx)
			_ = all(done)(cctx)
			cancel()
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		done = append(done, rb)
	}
	return all(done), nil
}

// all runs rollbacks in reverse order, every one of them, and joins their errors.
func all(rbs []Rollback) Rollback {
	return func(ctx context.Context) error {
		var errs []error
		for i := len(rbs) - 1; i >= 0; i-- {
			if err := rbs[i](ctx); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}

// cleanupTimeout bounds the undoing of what a failed injection had done.
const cleanupTimeout = 10 * time.Second

// cleanupContext is for undoing what an injection did when it fails: it
// outlives ctx's cancellation (an interrupted injection must still clean
// up) but not cleanupTimeout.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

// pct formats a percentage unless it is 100.
func pct(p float64) string {
	if p >= 100 {
		return ""
	}
	return fmt.Sprintf(" on %g%%", p)
}
