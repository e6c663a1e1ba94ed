package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Step is one entry of a plan: a fault, what it acts on and when.
type Step struct {
	// Name names the step in windows and checks; default "<kind> <target>".
	Name string
	// Faults holds the fault, or one fault per ramp step (Schedule.Steps of them).
	Faults []Fault
	// Target selects what the fault acts on (nothing for ScopeMesh faults).
	Target Selector
	// Peer selects, for network faults, the callers whose traffic is
	// affected (empty: every caller); for a partition, the other side.
	Peer Selector
	// Schedule says when.
	Schedule Schedule
}

// Timed is a fault whose occurrences last a time of their own when the
// schedule gives none (a restart lasts its delay).
type Timed interface {
	Duration() time.Duration
}

// Validate reports a step that cannot be played.
func (s Step) Validate() error {
	if len(s.Faults) == 0 {
		return errors.New("the step has no fault")
	}
	if err := s.schedule().Validate(); err != nil {
		return err
	}
	if n := max(s.Schedule.Steps, 1); n != len(s.Faults) {
		return fmt.Errorf("the schedule has %d steps but the step %d faults", n, len(s.Faults))
	}
	f := s.Faults[0]
	switch f.Scope() {
	case ScopeRoute:
		if s.Target.Service == "" {
			return fmt.Errorf("a %s fault needs a target service", f.Kind())
		}
	case ScopePods:
		if s.Target.Service == "" && s.Target.Pod == "" {
			return fmt.Errorf("a %s fault needs a target service or pod", f.Kind())
		}
	case ScopePair:
		if (s.Target.Service == "" && s.Target.Pod == "") || (s.Peer.Service == "" && s.Peer.Pod == "") {
			return fmt.Errorf("a %s fault needs a target and a peer", f.Kind())
		}
	case ScopeMesh:
		if !s.Target.IsZero() || !s.Peer.IsZero() {
			return fmt.Errorf("a %s fault acts on the whole mesh: it takes no target", f.Kind())
		}
	}
	return nil
}

// schedule is the step's schedule with a Timed fault's own duration.
func (s Step) schedule() Schedule {
	sc := s.Schedule
	if sc.For == 0 && len(s.Faults) > 0 {
		if t, ok := s.Faults[0].(Timed); ok {
			sc.For = t.Duration()
		}
	}
	return sc
}

// Window is one fault as it was in place: one occurrence (one ramp step) of a step.
type Window struct {
	Step   string
	Kind   Kind
	Target string
	Detail string
	// Mechanism is how the runtime put the fault in place, where it says
	// (a container mechanism, or a fallback and why).
	Mechanism  string
	Occurrence int
	RampStep   int
	// Start is when the fault was in place (Inject returned).
	Start time.Time
	// End is when its removal began; zero if it never took effect.
	End time.Time
	// Removed is when its removal completed.
	Removed time.Time
	// Err says why injecting or removing it failed.
	Err string
}

// Options tune a Runner.
type Options struct {
	// Seed draws the pods of percentage and count selectors.
	Seed uint64
	// Log receives a line per fault put in place and taken off; nil discards.
	Log *slog.Logger
	// InjectTimeout bounds one injection; default 20s.
	InjectTimeout time.Duration
	// RollbackTimeout bounds one removal, which runs even after the run's
	// context has ended; default 20s.
	RollbackTimeout time.Duration
}

// Runner plays a plan against a mesh. Every fault it puts in place is on
// its stack until taken off, and Stop takes off whatever remains.
type Runner struct {
	in     Injector
	opts   Options
	t0     time.Time
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	stack   []*active
	windows []*Window
	stopped bool
}

// active is a fault in place.
type active struct {
	w    *Window
	undo Rollback
	once sync.Once
}

// Start plays plan from now (time 0 of every schedule) until Stop. Steps
// must be valid (Step.Validate).
func Start(ctx context.Context, in Injector, plan []Step, opts Options) *Runner {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.InjectTimeout == 0 {
		opts.InjectTimeout = 20 * time.Second
	}
	if opts.RollbackTimeout == 0 {
		opts.RollbackTimeout = 20 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Runner{in: in, opts: opts, t0: time.Now(), cancel: cancel}
	for i, s := range plan {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.play(ctx, i, s)
		}()
	}
	return r
}

// T0 is time 0 of the schedules.
func (r *Runner) T0() time.Time { return r.t0 }

// Stop ends the plan: nothing more is put in place, and everything still in
// place is taken off, last in first out, even when the run's context has
// ended. It returns every window, in the order they started. Stop may be
// called more than once.
func (r *Runner) Stop() []Window {
	r.cancel()
	r.wg.Wait()
	r.mu.Lock()
	r.stopped = true
	stack := r.stack
	r.stack = nil
	r.mu.Unlock()
	for i := len(stack) - 1; i >= 0; i-- {
		r.remove(stack[i])
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Window, len(r.windows))
	for i, w := range r.windows {
		out[i] = *w
	}
	return out
}

// Active returns the windows of the faults in place now.
func (r *Runner) Active() []Window {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Window, 0, len(r.stack))
	for _, a := range r.stack {
		out = append(out, *a.w)
	}
	return out
}

// play runs one step's occurrences and ramp steps.
func (r *Runner) play(ctx context.Context, idx int, s Step) {
	sched := s.schedule()
	for k := 0; ; k++ {
		start, ok := sched.Occurrence(k)
		if !ok || !r.sleepUntil(ctx, start) {
			return
		}
		rng := rand.New(rand.NewPCG(r.opts.Seed, uint64(idx)<<32|uint64(k)))
		t, err := r.resolve(s, rng)
		var prev *active
		var late time.Duration // how long the first fault took to be in place
		for i, f := range s.Faults {
			if i > 0 && !r.sleepUntil(ctx, sched.StepAt(start, i)) {
				return
			}
			w := &Window{Step: s.Name, Kind: f.Kind(), Target: t.String(), Detail: f.String(), Mechanism: r.mechanism(f.Kind()), Occurrence: k, RampStep: i}
			if w.Step == "" {
				w.Step = string(f.Kind()) + " " + w.Target
			}
			a := r.inject(ctx, w, f, t, err)
			if i == 0 && a != nil {
				late = max(a.w.Start.Sub(r.t0.Add(start)), 0)
			}
			if prev != nil {
				r.remove(prev)
			}
			prev = a
		}
		// A fault lasts its time from when it is in place: on runtimes
		// where injecting takes a while (a helper container), the window
		// keeps its length instead of losing the injection time.
		end, ok := sched.End(start)
		end += late
		if !ok || !r.sleepUntil(ctx, end) {
			return // Stop takes it off
		}
		if prev != nil {
			r.remove(prev)
		}
	}
}

// resolve selects the target of one occurrence against the mesh as it is.
func (r *Runner) resolve(s Step, rng *rand.Rand) (Target, error) {
	t := Target{In: r.in}
	switch s.Faults[0].Scope() {
	case ScopeRoute:
		t.Service, t.Version, t.Route = s.Target.Service, s.Target.Version, s.Target.Route
	case ScopePods, ScopePair:
		pods := r.in.Pods()
		var err error
		if t.Pods, err = s.Target.Pods(pods, rng); err != nil {
			return t, err
		}
		if !s.Peer.IsZero() {
			if t.Peers, err = s.Peer.Pods(pods, rng); err != nil {
				return t, fmt.Errorf("peer: %w", err)
			}
		}
	}
	return t, nil
}

// inject puts one fault in place and records its window; nil when it failed.
func (r *Runner) inject(ctx context.Context, w *Window, f Fault, t Target, resolveErr error) *active {
	r.mu.Lock()
	r.windows = append(r.windows, w)
	r.mu.Unlock()
	if resolveErr != nil {
		r.fail(w, resolveErr)
		return nil
	}
	ictx, cancel := context.WithTimeout(ctx, r.opts.InjectTimeout)
	undo, err := f.Inject(ictx, t)
	cancel()
	if err != nil {
		r.fail(w, err)
		return nil
	}
	a := &active{w: w, undo: undo}
	r.mu.Lock()
	w.Start = time.Now()
	if r.stopped {
		// Stop ran while this was being injected: take it off at once.
		r.mu.Unlock()
		r.remove(a)
		return nil
	}
	r.stack = append(r.stack, a)
	r.mu.Unlock()
	r.opts.Log.Info("fault in place", "step", w.Step, "kind", w.Kind, "target", w.Target, "detail", w.Detail, "at", w.Start.Sub(r.t0).Round(time.Millisecond))
	return a
}

func (r *Runner) fail(w *Window, err error) {
	r.mu.Lock()
	w.Err = err.Error()
	r.mu.Unlock()
	r.opts.Log.Warn("fault not injected", "step", w.Step, "kind", w.Kind, "target", w.Target, "err", err)
}

// remove takes a fault off, once, whatever the run's context says.
func (r *Runner) remove(a *active) {
	if a == nil {
		return
	}
	a.once.Do(func() {
		r.mu.Lock()
		for i, x := range r.stack {
			if x == a {
				r.stack = append(r.stack[:i:i], r.stack[i+1:]...)
				break
			}
		}
		a.w.End = time.Now()
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.RollbackTimeout)
		err := a.undo(ctx)
		cancel()
		r.mu.Lock()
		a.w.Removed = time.Now()
		if err != nil {
			a.w.Err = "removing it: " + err.Error()
		}
		r.mu.Unlock()
		if err != nil {
			r.opts.Log.Warn("fault removal failed", "step", a.w.Step, "kind", a.w.Kind, "target", a.w.Target, "err", err)
		} else {
			r.opts.Log.Info("fault removed", "step", a.w.Step, "kind", a.w.Kind, "target", a.w.Target, "at", a.w.End.Sub(r.t0).Round(time.Millisecond))
		}
	})
}

// sleepUntil waits until offset d from t0; false when ctx ended first.
func (r *Runner) sleepUntil(ctx context.Context, d time.Duration) bool {
	wait := time.Until(r.t0.Add(d))
	if wait <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// mechanism asks the injector how it puts a kind of fault in place.
func (r *Runner) mechanism(k Kind) string {
	if m, ok := r.in.(interface{ Mechanism(Kind) string }); ok {
		return m.Mechanism(k)
	}
	return ""
}
