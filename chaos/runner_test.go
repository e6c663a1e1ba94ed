package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/sim/local"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/runtime"
)

// journal is a fake fault that writes what happens to it.
type journal struct {
	mu  sync.Mutex
	log []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.log = append(j.log, s)
}

func (j *journal) lines() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.log...)
}

type fake struct {
	j    *journal
	name string
	fail bool
}

func (fake) Kind() Kind       { return "fake" }
func (fake) Scope() Scope     { return ScopeMesh }
func (f fake) String() string { return f.name }
func (f fake) Inject(ctx context.Context, _ Target) (Rollback, error) {
	if f.fail {
		f.j.add("fail " + f.name)
		return nil, errors.New("refused")
	}
	f.j.add("+" + f.name)
	return func(ctx context.Context) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f.j.add("-" + f.name)
		return nil
	}, nil
}

func TestRunnerPlaysTheScheduleAndRemovesTheRestOnStop(t *testing.T) {
	j := &journal{}
	ms := time.Millisecond
	r := Start(context.Background(), nil, []Step{
		{Name: "short", Faults: []Fault{fake{j: j, name: "a"}}, Schedule: Schedule{At: 0, For: 50 * ms}},
		{Name: "long", Faults: []Fault{fake{j: j, name: "b"}}, Schedule: Schedule{At: 20 * ms}},
		{Name: "late", Faults: []Fault{fake{j: j, name: "c"}}, Schedule: Schedule{At: 40 * ms}},
		{Name: "never", Faults: []Fault{fake{j: j, name: "d"}}, Schedule: Schedule{At: time.Hour}},
		{Name: "broken", Faults: []Fault{fake{j: j, name: "e", fail: true}}, Schedule: Schedule{At: 0}},
	}, Options{})
	require.Eventually(t, func() bool { return len(j.lines()) == 5 }, 5*time.Second, time.Millisecond)
	ws := r.Stop()
	require.Equal(t, []string{"+a", "+b", "+c", "-a", "-c", "-b"}, filter(j.lines(), "fail e"),
		"a ends on schedule; Stop takes the rest off, last in first out")
	require.Contains(t, j.lines(), "fail e")
	require.Len(t, ws, 4, "d never started")
	byStep := map[string]Window{}
	for _, w := range ws {
		byStep[w.Step] = w
	}
	require.Equal(t, "refused", byStep["broken"].Err)
	require.True(t, byStep["broken"].Start.IsZero())
	for _, s := range []string{"short", "long", "late"} {
		w := byStep[s]
		require.Empty(t, w.Err)
		require.False(t, w.End.Before(w.Start), s)
		require.False(t, w.Removed.IsZero(), s)
	}
	require.InDelta(t, 50, float64(byStep["short"].End.Sub(r.T0()).Milliseconds()), 40)
	require.Len(t, r.Stop(), 4, "stopping again takes nothing more off")
	require.Empty(t, r.Active())
	require.Len(t, j.lines(), 7)
}

func filter(lines []string, drop string) []string {
	var out []string
	for _, l := range lines {
		if l != drop {
			out = append(out, l)
		}
	}
	return out
}

func TestRunnerRampsEachStepInBeforeTheLastGoes(t *testing.T) {
	j := &journal{}
	steps := []Fault{fake{j: j, name: "1"}, fake{j: j, name: "2"}, fake{j: j, name: "3"}}
	r := Start(context.Background(), nil, []Step{{Faults: steps, Schedule: Schedule{For: 90 * time.Millisecond, Steps: 3, Every: time.Hour, Times: 1}}}, Options{})
	require.Eventually(t, func() bool { return len(j.lines()) == 6 }, 5*time.Second, time.Millisecond)
	ws := r.Stop()
	require.Equal(t, []string{"+1", "+2", "-1", "+3", "-2", "-3"}, j.lines())
	require.Len(t, ws, 3)
	for i, w := range ws {
		require.Equal(t, i, w.RampStep)
	}
}

func TestRunnerTakesFaultsOffAfterTheRunIsInterrupted(t *testing.T) {
	j := &journal{}
	ctx, cancel := context.WithCancel(context.Background())
	r := Start(ctx, nil, []Step{{Faults: []Fault{fake{j: j, name: "x"}}, Schedule: Schedule{For: time.Hour}}}, Options{})
	require.Eventually(t, func() bool { return len(r.Active()) == 1 }, 5*time.Second, time.Millisecond)
	cancel() // Ctrl-C
	ws := r.Stop()
	require.Equal(t, []string{"+x", "-x"}, j.lines(), "the rollback gets a live context")
	require.Empty(t, ws[0].Err)
}

// TestInterruptedInTheMiddleOfFaultsLeavesNothing puts one fault of every
// local kind in place, interrupts the run, and checks that no fault,
// listener or goroutine (goleak, in TestMain) is left.
func TestInterruptedInTheMiddleOfFaultsLeavesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topo := registry.DefaultTopology()
	m, err := local.Runtime{}.Start(ctx, runtime.Spec{Topology: topo, Config: meshconfig.Config{}, Seed: 1})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Stop(context.Background())) }()
	in, err := NewLocal(m, "local", "default", meshconfig.Config{})
	require.NoError(t, err)

	runCtx, interrupt := context.WithCancel(ctx)
	slow := registry.Latency{Mean: units.Duration(20 * time.Millisecond)}
	plan := []Step{
		{Faults: []Fault{Latency{Latency: 50 * time.Millisecond}}, Target: Selector{Service: "payment", Version: "v1"}},
		{Faults: []Fault{Partition{}}, Target: Selector{Pod: "payment-v2-0"}, Peer: Selector{Service: "order"}},
		{Faults: []Fault{Pause{}}, Target: Selector{Pod: "order-v1-1"}},
		{Faults: []Fault{AppLatency{Latency: slow}}, Target: Selector{Pod: "order-v1-0"}},
		{Faults: []Fault{Kill{NotReadyAfter: time.Hour}}, Target: Selector{Pod: "payment-v1-1"}, Schedule: Schedule{At: 100 * time.Millisecond}},
		{Faults: []Fault{Delay{Delay: 10 * time.Millisecond, Percent: 100}}, Target: Selector{Service: "order"}},
		{Faults: []Fault{ControlPlaneOutage{}}, Schedule: Schedule{At: 300 * time.Millisecond}},
	}
	r := Start(runCtx, in, plan, Options{})
	if !assert.Eventually(t, func() bool { return len(r.Active()) == len(plan) }, 20*time.Second, 10*time.Millisecond) {
		for _, w := range r.Stop() {
			t.Logf("%s %s: %s", w.Kind, w.Target, w.Err)
		}
		t.FailNow()
	}
	var addrs []string
	in.netMu.Lock()
	for _, np := range in.proxies {
		addrs = append(addrs, np.proxy.Listen)
	}
	in.netMu.Unlock()
	require.Len(t, addrs, 5, "both payment v1 pods, payment-v2-0, and both order pods for the partition")

	interrupt()
	for _, w := range r.Stop() {
		require.Empty(t, w.Err, "%s", w.Step)
	}
	require.NoError(t, in.Close(context.Background()))
	(&bench{t: t, in: in}).assertClean()
	for _, a := range addrs {
		_, err := net.DialTimeout("tcp", a, time.Second)
		require.Error(t, err, "a fault proxy still listens on %s", a)
	}
	for _, p := range m.Pods() {
		require.True(t, p.Ready, "%s", p.Name)
	}
	// The mesh answers as it did before: through every pod, at full speed.
	b := &bench{t: t, mesh: m, in: in, c: newClient()}
	defer b.c.CloseIdleConnections()
	rs := b.orders(40)
	allOK(t, rs)
	require.Less(t, median(rs), 20*time.Millisecond, fmt.Sprint(median(rs)))
}
