package main

import (
	"context"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"
)

// defaultRateBudgetPerCPU is the request rate per CPU that scenarios run
// side by side may ask for together. The canary path (gateway, order,
// payment, three mTLS links) holds 1,000/s with p99 under 20 ms on 2 cores
// with its load generator, and breaks at 1,500/s (make bench, the canary
// knee); 500/s per CPU stays at that knee, not past it.
const defaultRateBudgetPerCPU = 500

// maxBusyToStart is the share of the machine's CPU above which a scenario
// would take it (predictBusy), and so does not start beside those running:
// the rest is the headroom their bursts (a fault's onset, a burst of
// retries) take.
const maxBusyToStart = 0.6

// busyWindow is how long the scheduler watches the CPU before it starts a
// scenario.
const busyWindow = 300 * time.Millisecond

// closedChan is ready at once: a select on it does not wait.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// defaultRateBudget is -rate-budget's default on this machine.
func defaultRateBudget() int { return defaultRateBudgetPerCPU * runtime.NumCPU() }

// job is what the scheduler knows of one scenario: the peak rate it
// drives and how long it drives load.
type job struct {
	rate   float64
	length time.Duration
}

// schedule runs a suite's scenarios side by side within two limits: at
// most limit at once, and, with budget > 0, their peak rates adding up
// to at most budget. Latency bounds need the cores a mesh uses to be
// free: too many scenarios at once saturate them and every latency in
// each mesh grows by the queue, while a count limit alone lets the few
// fastest scenarios land together.
//
// It starts one scenario at a time: the next only once the last started
// has warmed up (its mesh up, its load at full rate) or ended, since a
// mesh's start and warm-up take the cores in a burst that the rates do
// not show. It starts the longest first and then the first waiting one
// that fits
// (list scheduling, longest processing time first: Graham, 1969), so the
// short ones fill the gaps at the end. golang.org/x/sync/semaphore's
// Weighted would do the budget, but it admits in order only, and a big
// scenario would hold back the small ones behind it.
type schedule struct {
	limit  int
	budget int
	// busy, when set, measures the share of the machine's CPU that is
	// busy (busyShare over a short window); with others running, a
	// scenario starts only while it would keep it at most maxBusy
	// (predictBusy). Rates alone do
	// not tell a scenario's cost: a request through three mTLS hops, a
	// new TLS connection per TCP request, a delay that holds connections
	// open all cost more than a plain one.
	busy    func(context.Context) (float64, error)
	maxBusy float64
}

// predictBusy is the CPU share the machine would be busy with once a job
// driving next requests/s joins jobs driving running requests/s that keep
// it busy now: the running jobs' cost per request/s, extrapolated. A look at
// the CPU alone admits a heavy job into the gap before the last one has
// shown its cost (its connections still opening, its faults not yet on),
// and several such starts in a row took 6 scenarios on 2 cores to 100%
// and past: every latency queued, and in-flight requests, each with its
// own HTTP/1.1 connection, ran the process out of file descriptors.
func predictBusy(busy, running, next float64) float64 {
	if running <= 0 {
		return busy
	}
	return busy * (running + next) / running
}

// weight is what j takes of the budget: its rate, rounded up, or the whole
// budget when it asks for more, so that it runs alone rather than never.
func (s schedule) weight(j job) int {
	if s.budget <= 0 {
		return 0
	}
	return min(s.budget, int(math.Ceil(j.rate)))
}

// run calls do(i, warmed) for each job, each on a goroutine of its own,
// within the limits, and returns once every call has returned. do calls
// warmed once its scenario has warmed up, if it gets that far. Once ctx is done
// it starts no more, and it returns the indexes of the jobs it never
// started, in order.
func (s schedule) run(ctx context.Context, jobs []job, do func(i int, warmed func())) (notStarted []int) {
	pending := make([]int, len(jobs))
	for i := range pending {
		pending[i] = i
	}
	// Longest first; ties keep the suite's order.
	slices.SortStableFunc(pending, func(a, b int) int { return int(jobs[b].length - jobs[a].length) })

	freed := make(chan int, len(jobs))
	warm := make(chan int, len(jobs))
	var wg sync.WaitGroup
	running, used := 0, 0
	rate := 0.0   // the running jobs' peak rates, summed
	warming := -1 // the job started last, until it has warmed up or ended
	// take notes one job's end or warm-up, waiting for it if block.
	take := func(block bool) bool {
		wait := ctx.Done()
		if !block {
			wait = closedChan
		}
		select {
		case i := <-freed:
			running--
			used -= s.weight(jobs[i])
			rate -= jobs[i].rate
			if i == warming {
				warming = -1
			}
		case i := <-warm:
			if i == warming {
				warming = -1
			}
		case <-wait:
			return false
		}
		return true
	}
	for len(pending) > 0 && ctx.Err() == nil {
		for take(false) {
		}
		k := slices.IndexFunc(pending, func(i int) bool {
			return running < s.limit && (running == 0 || used+s.weight(jobs[i]) <= s.budget || s.budget <= 0)
		})
		if k < 0 || warming >= 0 {
			take(true)
			continue
		}
		if running > 0 && s.busy != nil {
			// The look takes a window of time; then look again, with what
			// ended meanwhile.
			if b, err := s.busy(ctx); err == nil && predictBusy(b, rate, jobs[pending[k]].rate) > s.maxBusy {
				continue
			}
		}
		i := pending[k]
		pending = slices.Delete(pending, k, k+1)
		running++
		used += s.weight(jobs[i])
		rate += jobs[i].rate
		warming = i
		wg.Add(1)
		go func() {
			defer wg.Done()
			do(i, sync.OnceFunc(func() { warm <- i }))
			freed <- i
		}()
	}
	wg.Wait()
	slices.Sort(pending)
	return pending
}
