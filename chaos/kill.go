package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/meshbench/meshbench/sim/runtime"
)

// DefaultNotReadyAfter is how long a killed pod stays in EDS by default:
// about the time Kubernetes takes to see a dead container (the kubelet's
// 1s relist), mark the pod not ready and update its EndpointSlice, and
// istiod to push.
const DefaultNotReadyAfter = time.Second

// Kill stops the target's pods abruptly: the app and the sidecar close their
// listeners and every open connection at once. Callers keep the pods' endpoints
// until NotReadyAfter has passed (then EDS marks them unhealthy), so in
// between they meet refused connections: the window retries and outlier
// detection are for. The pods come back, same name, address and identity,
// when the fault ends.
type Kill struct {
	// NotReadyAfter is how long the dead pods stay healthy in EDS.
	NotReadyAfter time.Duration
}

// Kind implements Fault.
func (Kill) Kind() Kind { return KindKill }

// Scope implements Fault.
func (Kill) Scope() Scope { return ScopePods }

// String implements Fault.
func (k Kill) String() string { return fmt.Sprintf("not ready after %s", k.NotReadyAfter) }

// Inject implements Fault.
func (k Kill) Inject(ctx context.Context, t Target) (Rollback, error) {
	return each(ctx, t.Pods, func(p runtime.Pod) (Rollback, error) {
		return t.In.Kill(ctx, p, k.NotReadyAfter)
	})
}
