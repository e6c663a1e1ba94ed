package chaos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
	zlog "github.com/rs/zerolog/log"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/runtime"
)

func init() {
	// Toxiproxy's toxics log through zerolog's global logger, down to trace
	// level, onto stderr; nothing else here uses it.
	zlog.Logger = zerolog.Nop()
}

// Local is the Injector of meshes whose runtime implements
// runtime.FaultInjector, the local runtime's: pod and control-plane faults
// through its hooks, network faults through Toxiproxy proxies run in this
// process in front of a pod's inbound side (the runtime redirects the pod's
// EDS endpoint to them), and mesh faults as VirtualService changes pushed
// with Apply.
type Local struct {
	mesh  runtime.Mesh
	hooks runtime.FaultInjector
	name  string
	ns    string
	layer configLayer
	tpx   *toxiproxy.ApiServer

	mu      sync.Mutex
	next    int
	paused  map[string]int        // pod → pause faults in force
	apps    map[string][]appLayer // pod → app changes in force, in order
	outages int                   // control-plane outages in force
	closed  bool

	netMu   sync.Mutex // serialises the set-up and tear-down of proxies
	proxies map[string]*netProxy

	sigMu   sync.Mutex
	down    bool          // the control plane is down
	changed chan struct{} // closed and replaced when a pod dies or the control plane goes down
}

type appLayer struct {
	id int
	b  runtime.AppBehaviour
}

// NewLocal returns the injector of mesh, which must implement
// runtime.FaultInjector; base is the Istio config the mesh runs.
func NewLocal(mesh runtime.Mesh, runtimeName, namespace string, base meshconfig.Config) (*Local, error) {
	hooks, ok := mesh.(runtime.FaultInjector)
	if !ok {
		return nil, fmt.Errorf("chaos: this %s mesh has no fault hooks: %w", runtimeName, runtime.ErrUnsupported)
	}
	return &Local{
		mesh: mesh, hooks: hooks, name: runtimeName, ns: namespace, layer: configLayer{base: CopyConfig(base)},
		tpx:    toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()),
		paused: map[string]int{}, apps: map[string][]appLayer{}, proxies: map[string]*netProxy{},
		changed: make(chan struct{}),
	}, nil
}

// Runtime implements Injector.
func (l *Local) Runtime() string { return l.name }

// Namespace implements Injector.
func (l *Local) Namespace() string { return l.ns }

// Pods implements Injector.
func (l *Local) Pods() []runtime.Pod { return l.mesh.Pods() }

func (l *Local) id() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.next++
	return l.next
}

// converge waits until every proxy has the config version last pushed.
// While the control plane is down no proxy can get it: then a push is
// done once it is made, and the proxies take it when they reconnect (the
// outage's rollback waits for that). A wait that a dead pod or an outage
// made stale starts again, over the proxies that are left.
func (l *Local) converge(ctx context.Context) error {
	for {
		l.sigMu.Lock()
		down, changed := l.down, l.changed
		l.sigMu.Unlock()
		if down {
			return nil
		}
		wctx, cancel := context.WithCancelCause(ctx)
		done := make(chan struct{})
		go func() {
			select {
			case <-changed:
				cancel(errStale)
			case <-done:
			}
		}()
		err := l.mesh.WaitConverged(wctx, l.mesh.Version())
		close(done)
		stale := errors.Is(context.Cause(wctx), errStale)
		cancel(nil)
		if err != nil && stale && ctx.Err() == nil {
			continue
		}
		return err
	}
}

var errStale = errors.New("the mesh changed while converging")

// signal tells waits for convergence that the set of proxies or the
// control plane changed.
func (l *Local) signal(down bool) {
	l.sigMu.Lock()
	defer l.sigMu.Unlock()
	l.down = down
	close(l.changed)
	l.changed = make(chan struct{})
}

// apply pushes cfg and waits until every proxy has ACKed it.
func (l *Local) apply(ctx context.Context, cfg meshconfig.Config) error {
	if _, err := l.mesh.Apply(ctx, cfg); err != nil {
		return err
	}
	return l.converge(ctx)
}

// Reconfigure implements Injector.
func (l *Local) Reconfigure(ctx context.Context, name string, change ConfigChange) (Rollback, error) {
	id, cfg, err := l.layer.add(name, change)
	if err != nil {
		return nil, err
	}
	undo := func(ctx context.Context) error {
		cfg, err := l.layer.remove(id)
		if err != nil {
			return err
		}
		return l.apply(ctx, cfg)
	}
	if err := l.apply(ctx, cfg); err != nil {
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		return nil, errors.Join(err, undo(cctx))
	}
	return undo, nil
}

// Push implements Injector.
func (l *Local) Push(ctx context.Context) error {
	cfg, err := l.layer.current()
	if err != nil {
		return err
	}
	return l.apply(ctx, cfg)
}

// Kill implements Injector.
func (l *Local) Kill(ctx context.Context, pod runtime.Pod, notReadyAfter time.Duration) (Rollback, error) {
	if err := l.hooks.CrashPod(ctx, pod.Name); err != nil {
		return nil, err
	}
	l.signal(false)
	stop, done := make(chan struct{}), make(chan struct{})
	if notReadyAfter <= 0 {
		close(done)
		if err := l.hooks.SetPodReady(ctx, pod.Name, false); err != nil {
			cctx, cancel := cleanupContext(ctx)
			defer cancel()
			return nil, errors.Join(err, l.mesh.RestartPod(cctx, pod.Name))
		}
	} else {
		go func() {
			defer close(done)
			t := time.NewTimer(notReadyAfter)
			defer t.Stop()
			select {
			case <-t.C:
				_ = l.hooks.SetPodReady(context.Background(), pod.Name, false)
			case <-stop:
			}
		}()
	}
	return func(ctx context.Context) error {
		close(stop)
		<-done
		if err := l.mesh.RestartPod(ctx, pod.Name); err != nil {
			return err
		}
		return l.converge(ctx)
	}, nil
}

// Pause implements Injector.
func (l *Local) Pause(ctx context.Context, pod runtime.Pod) (Rollback, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.paused[pod.Name] == 0 {
		if err := l.hooks.PausePod(ctx, pod.Name); err != nil {
			return nil, err
		}
	}
	l.paused[pod.Name]++
	return func(ctx context.Context) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.paused[pod.Name]--
		if l.paused[pod.Name] > 0 {
			return nil
		}
		delete(l.paused, pod.Name)
		return l.hooks.ResumePod(ctx, pod.Name)
	}, nil
}

// App implements Injector: changes stack, the latest one winning field by field.
func (l *Local) App(ctx context.Context, pod runtime.Pod, b runtime.AppBehaviour) (Rollback, error) {
	id := l.id()
	l.mu.Lock()
	defer l.mu.Unlock()
	prev := l.apps[pod.Name]
	l.apps[pod.Name] = append(append([]appLayer(nil), prev...), appLayer{id: id, b: b})
	if err := l.hooks.SetAppBehaviour(ctx, pod.Name, merged(l.apps[pod.Name])); err != nil {
		l.apps[pod.Name] = prev
		return nil, err
	}
	return func(ctx context.Context) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		var rest []appLayer
		for _, a := range l.apps[pod.Name] {
			if a.id != id {
				rest = append(rest, a)
			}
		}
		if len(rest) == 0 {
			delete(l.apps, pod.Name)
		} else {
			l.apps[pod.Name] = rest
		}
		err := l.hooks.SetAppBehaviour(ctx, pod.Name, merged(rest))
		if err != nil && !podRunning(l.mesh, pod.Name) {
			return nil // a pod killed meanwhile comes back as declared
		}
		return err
	}, nil
}

func merged(ls []appLayer) runtime.AppBehaviour {
	var out runtime.AppBehaviour
	for _, a := range ls {
		if a.b.Latency != nil {
			out.Latency = a.b.Latency
		}
		if a.b.ErrorRate != nil {
			out.ErrorRate = a.b.ErrorRate
		}
		if a.b.ErrorStatus != 0 {
			out.ErrorStatus = a.b.ErrorStatus
		}
	}
	return out
}

func podRunning(m runtime.Mesh, name string) bool {
	for _, p := range m.Pods() {
		if p.Name == name {
			return p.Ready
		}
	}
	return false
}

// ControlPlaneOutage implements Injector.
func (l *Local) ControlPlaneOutage(ctx context.Context) (Rollback, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.outages == 0 {
		if err := l.hooks.StopControlPlane(ctx); err != nil {
			return nil, err
		}
		l.signal(true)
	}
	l.outages++
	return func(ctx context.Context) error {
		l.mu.Lock()
		l.outages--
		last := l.outages == 0
		var err error
		if last {
			err = l.hooks.StartControlPlane(ctx)
			if err == nil {
				l.signal(false)
			}
		}
		l.mu.Unlock()
		if !last || err != nil {
			return err
		}
		// Every proxy has reconnected once it ACKs a new version.
		return l.Push(ctx)
	}, nil
}

// Close implements Injector: what the faults' rollbacks did not take off
// (they normally have) is taken off here.
func (l *Local) Close(ctx context.Context) error {
	var errs []error
	l.netMu.Lock()
	for name, np := range l.proxies {
		errs = append(errs, l.hooks.RedirectInbound(ctx, name, np.from, ""))
		np.proxy.Stop()
		delete(l.proxies, name)
	}
	l.netMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.Join(errs...)
	}
	l.closed = true
	for name := range l.paused {
		errs = append(errs, l.hooks.ResumePod(ctx, name))
	}
	l.paused = map[string]int{}
	for name := range l.apps {
		if podRunning(l.mesh, name) {
			errs = append(errs, l.hooks.SetAppBehaviour(ctx, name, runtime.AppBehaviour{}))
		}
	}
	l.apps = map[string][]appLayer{}
	if l.outages > 0 {
		l.outages = 0
		errs = append(errs, l.hooks.StartControlPlane(ctx))
		l.signal(false)
	}
	return errors.Join(errs...)
}
