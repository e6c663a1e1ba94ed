package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gatedJobs runs a schedule whose jobs each report their start and then
// wait to be released, so that a test decides when each one ends.
type gatedJobs struct {
	started chan int
	release []chan struct{}
	// warmed holds each job's warmed callback; with warmAtOnce the jobs
	// call it as they start.
	warmed []func()
	done   chan []int
}

func startGated(t *testing.T, ctx context.Context, s schedule, jobs []job) *gatedJobs {
	return startGatedWarm(t, ctx, s, jobs, true)
}

func startGatedWarm(t *testing.T, ctx context.Context, s schedule, jobs []job, warmAtOnce bool) *gatedJobs {
	t.Helper()
	g := &gatedJobs{started: make(chan int, len(jobs)), release: make([]chan struct{}, len(jobs)), warmed: make([]func(), len(jobs)), done: make(chan []int, 1)}
	for i := range g.release {
		g.release[i] = make(chan struct{})
	}
	var mu sync.Mutex
	go func() {
		g.done <- s.run(ctx, jobs, func(i int, warmed func()) {
			mu.Lock()
			g.warmed[i] = warmed
			mu.Unlock()
			if warmAtOnce {
				warmed()
			}
			g.started <- i
			<-g.release[i]
		})
	}()
	return g
}

// warm calls job i's warmed callback.
func (g *gatedJobs) warm(i int) {
	// The job stored it before it reported its start.
	g.warmed[i]()
}

// next is the next job to start; it fails the test if none starts.
func (g *gatedJobs) next(t *testing.T) int {
	t.Helper()
	select {
	case i := <-g.started:
		return i
	case <-time.After(5 * time.Second):
		t.Fatal("no job started")
		return -1
	}
}

// none asserts that no job has started past those the test took. It can
// miss a start still on its way, never report one that did not happen.
func (g *gatedJobs) none(t *testing.T) {
	t.Helper()
	select {
	case i := <-g.started:
		t.Fatalf("job %d started past the limits", i)
	default:
	}
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }

func TestScheduleLongestFirstAndTheSmallFillTheBudget(t *testing.T) {
	jobs := []job{
		{rate: 500, length: seconds(6)},  // 0
		{rate: 500, length: seconds(10)}, // 1
		{rate: 250, length: seconds(20)}, // 2
		{rate: 100, length: seconds(8)},  // 3
		{rate: 500, length: seconds(10)}, // 4
	}
	g := startGated(t, context.Background(), schedule{limit: 8, budget: 1000}, jobs)
	// Longest first: 2 (250), then 1 (500): 750 used; 4 (500) does not fit,
	// 3 (100) does: 850; 0 (500) does not.
	// (In suite order, 0 and 1 would have taken the whole budget.)
	assert.ElementsMatch(t, []int{2, 1, 3}, []int{g.next(t), g.next(t), g.next(t)})
	g.none(t)
	// Ending 1 frees 500: 4, the longest waiting, takes it (850).
	close(g.release[1])
	assert.Equal(t, 4, g.next(t))
	// Ending 3 frees 100 (750): 0 (500) still does not fit.
	close(g.release[3])
	close(g.release[2]) // 500 used: now 0 fits
	assert.Equal(t, 0, g.next(t))
	close(g.release[4])
	close(g.release[0])
	assert.Empty(t, <-g.done)
}

func TestScheduleNeverPastItsLimits(t *testing.T) {
	var jobs []job
	for i := range 40 {
		jobs = append(jobs, job{rate: float64(50 + 97*i%600), length: seconds(1 + i%7)})
	}
	s := schedule{limit: 4, budget: 900}
	var mu sync.Mutex
	running, used, peakRunning, peakUsed := 0, 0, 0, 0
	notStarted := s.run(context.Background(), jobs, func(i int, warmed func()) {
		warmed()
		mu.Lock()
		running++
		used += s.weight(jobs[i])
		peakRunning, peakUsed = max(peakRunning, running), max(peakUsed, used)
		mu.Unlock()
		time.Sleep(time.Millisecond) // work that overlaps, not synchronisation
		mu.Lock()
		running--
		used -= s.weight(jobs[i])
		mu.Unlock()
	})
	assert.Empty(t, notStarted)
	assert.LessOrEqual(t, peakRunning, 4)
	assert.LessOrEqual(t, peakUsed, 900)
	assert.Greater(t, peakRunning, 1, "it does run side by side")
}

func TestScheduleRunsAScenarioOverTheBudgetAlone(t *testing.T) {
	jobs := []job{{rate: 4000, length: seconds(9)}, {rate: 10, length: seconds(1)}}
	g := startGated(t, context.Background(), schedule{limit: 8, budget: 1000}, jobs)
	assert.Equal(t, 0, g.next(t), "over the budget, it still runs")
	g.none(t)
	close(g.release[0])
	assert.Equal(t, 1, g.next(t), "the next starts once it is over")
	close(g.release[1])
	assert.Empty(t, <-g.done)
}

func TestScheduleWithoutABudgetCountsOnly(t *testing.T) {
	jobs := []job{{rate: 5000, length: seconds(3)}, {rate: 5000, length: seconds(2)}, {rate: 5000, length: seconds(1)}}
	g := startGated(t, context.Background(), schedule{limit: 2, budget: 0}, jobs)
	assert.ElementsMatch(t, []int{0, 1}, []int{g.next(t), g.next(t)})
	g.none(t)
	close(g.release[0])
	assert.Equal(t, 2, g.next(t))
	close(g.release[1])
	close(g.release[2])
	assert.Empty(t, <-g.done)
}

func TestScheduleStopsStartingOnCancel(t *testing.T) {
	jobs := []job{{rate: 800, length: seconds(5)}, {rate: 800, length: seconds(4)}, {rate: 800, length: seconds(3)}}
	ctx, cancel := context.WithCancel(context.Background())
	g := startGated(t, ctx, schedule{limit: 8, budget: 1000}, jobs)
	require.Equal(t, 0, g.next(t))
	cancel()
	close(g.release[0])
	assert.Equal(t, []int{1, 2}, <-g.done, "the two that waited never start")
	g.none(t)
}

func TestScheduleStartsTheNextOnceTheLastHasWarmedUp(t *testing.T) {
	jobs := []job{{rate: 100, length: seconds(3)}, {rate: 100, length: seconds(2)}, {rate: 100, length: seconds(1)}}
	g := startGatedWarm(t, context.Background(), schedule{limit: 8, budget: 1000}, jobs, false)
	require.Equal(t, 0, g.next(t))
	g.none(t)
	g.warm(0)
	require.Equal(t, 1, g.next(t), "0 warmed up: 1 starts")
	g.none(t)
	close(g.release[1]) // ending unblocks as warming up does
	require.Equal(t, 2, g.next(t))
	g.warm(2)
	g.warm(2) // a second call is harmless
	close(g.release[0])
	close(g.release[2])
	assert.Empty(t, <-g.done)
}

// With others running, a scenario starts only while the CPU would be at
// most maxBusy with it: the running ones' cost per request/s, extrapolated
// to its rate. The first starts whatever the CPU does.
func TestScheduleWaitsForCPUHeadroom(t *testing.T) {
	busy := make(chan float64, 8)
	s := schedule{limit: 8, budget: 1000, maxBusy: 0.6, busy: func(context.Context) (float64, error) { return <-busy, nil }}
	jobs := []job{{rate: 100, length: seconds(2)}, {rate: 50, length: seconds(1)}}
	g := startGated(t, context.Background(), s, jobs)
	require.Equal(t, 0, g.next(t), "the first does not look at the CPU")
	busy <- 0.9
	busy <- 0.5 // 100/s keep it 50% busy: with 50/s more, 75%
	g.none(t)
	busy <- 0.4 // 60% with it
	require.Equal(t, 1, g.next(t), "started once the CPU had room for it")
	close(g.release[0])
	close(g.release[1])
	assert.Empty(t, <-g.done)
	assert.Empty(t, busy, "it looked three times")
}

func TestPredictBusyExtrapolatesTheRunningCost(t *testing.T) {
	assert.InDelta(t, 0.6, predictBusy(0.4, 200, 100), 1e-9, "200/s at 40%: 300/s at 60%")
	assert.InDelta(t, 0.3, predictBusy(0.3, 0, 100), 1e-9, "nothing running: nothing to extrapolate")
}
