package run

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/meshbench/meshbench/fakesvc"
	"github.com/meshbench/meshbench/scenarios/spec"
	"github.com/meshbench/meshbench/sim/registry"
)

// sample is one request's outcome as the load generator saw it.
type sample struct {
	variant string
	code    int
	err     string
	// intended is when the pacer meant to send the request; latency counts
	// from it, so a stalled system cannot hide its queueing (coordinated omission).
	intended time.Time
	latency  time.Duration
	// planned is when, from the start of its stream, the pacer meant to
	// send it, and sent when it was sent: a plan's steps are reported by
	// the one (plan.go), their achieved rates by the other.
	planned, sent time.Duration
	// versions maps each service that answered to the version and pod that served it.
	versions map[string]string
	pods     map[string]string
	// attempts maps each service that answered to the x-envoy-attempt-count it saw.
	attempts map[string]int
	// messages maps each service called with a gRPC stream to the replies
	// the stream delivered; deadlines each service that answered a call
	// under a gRPC deadline to the time it had left (judged by package expect).
	messages  map[string]int
	deadlines map[string]time.Duration
	// config is the mesh config version the deepest call was routed under.
	config string
	// flags maps each service called to the Envoy response flags its
	// caller's sidecar set on the answer (x-meshbench-response-flags): the
	// gateway's for the load's target, the calling service's sidecar's for
	// the others.
	flags map[string][]string
}

// attackPlan is one constant-rate stream of requests.
type attackPlan struct {
	variant string
	rate    vegeta.Rate
	header  http.Header
	target  string // service the requests go to ("" the load's target)
	path    string
	method  string // "" the load's method
	// share is the stream's part of the load, by which a plan's rates are scaled.
	share float64
}

// plans splits the load into one constant-rate stream per variant, each at
// its weight's share of the rate, so every stream is paced on its own.
func plans(l spec.Load) []attackPlan {
	base := http.Header{}
	for k, v := range l.Headers {
		base.Set(k, v)
	}
	perSec := l.Rate.PerSecond()
	if len(l.Variants) == 0 {
		return []attackPlan{{rate: vegeta.Rate{Freq: l.Rate.Freq, Per: l.Rate.Per}, header: base, share: 1}}
	}
	total := 0
	for _, v := range l.Variants {
		total += v.Weight
	}
	var out []attackPlan
	for _, v := range l.Variants {
		h := base.Clone()
		for k, val := range v.Headers {
			h.Set(k, val)
		}
		// Requests per minute, so that shares of small rates keep their precision.
		perMin := int(math.Round(perSec * 60 * float64(v.Weight) / float64(total)))
		out = append(out, attackPlan{variant: v.Name, rate: vegeta.Rate{Freq: max(perMin, 1), Per: time.Minute}, header: h, target: v.Target, path: v.Path,
			method: v.Method, share: float64(v.Weight) / float64(total)})
	}
	return out
}

// hasBody is whether the load's requests of that method carry a body:
// those of the methods whose content has a meaning (RFC 9110 9.3: GET,
// HEAD, DELETE and OPTIONS requests have none defined) do.
func hasBody(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
}

// streamWorkers is a stream's cap on requests in flight: its share of the
// load's concurrency (at least one), or spec.MaxWorkers when it has none.
// vegeta's attacker never runs more workers than MaxWorkers, each with
// one request in flight, so the cap holds whatever the machine's speed.
func streamWorkers(concurrency int, share float64) uint64 {
	if concurrency <= 0 {
		return spec.MaxWorkers
	}
	return uint64(max(1, int(math.Round(float64(concurrency)*share))))
}

// attack drives the scenario's load at url through a client of its own and
// returns every sample. It stops early, with what it has, when ctx ends.
func attack(ctx context.Context, url string, sc *scenario, ns string) ([]sample, time.Duration) {
	return attackWithProgress(ctx, url, sc, ns, nil)
}

// attackWithProgress is attack, counting finished requests into pr when it is not nil.
func attackWithProgress(ctx context.Context, url string, sc *scenario, ns string, pr *progress) ([]sample, time.Duration) {
	l := sc.Load
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 10000,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: l.Timeout.D()}
	type stream struct {
		plan    attackPlan
		results <-chan *vegeta.Result
		atk     *vegeta.Attacker
		// offsetOf is when, from the stream's start, the pacer plans request seq.
		offsetOf func(seq uint64) time.Duration
	}
	start := time.Now()
	var streams []stream
	for _, p := range plans(l) {
		hdr := p.header.Clone()
		name, path := l.Target, l.Path
		if p.target != "" {
			name, path = p.target, pathOf(sc, p.target)
		}
		if p.path != "" {
			path = p.path
		}
		method := l.Method
		if p.method != "" {
			method = p.method
		}
		svc := registry.ServiceInfo{Service: registry.Service{Name: name}, Namespace: ns}
		hdr.Set("Host", svc.FQDN())
		target := vegeta.Target{Method: method, URL: url + path, Header: hdr}
		if hasBody(method) {
			hdr.Set("Content-Type", "application/json")
			target.Body = []byte(`{"item":"book","amount":42}`)
		}
		// A bounded worker pool: when the mesh stalls, sends wait instead of
		// piling up thousands of connections, and the wait shows up as latency
		// because latency counts from the intended send time.
		workers := streamWorkers(l.Concurrency, p.share)
		atk := vegeta.NewAttacker(vegeta.Client(client), vegeta.MaxBody(64<<10), vegeta.Workers(min(16, workers)), vegeta.MaxWorkers(workers))
		perSecond := float64(p.rate.Freq) * float64(time.Second) / float64(p.rate.Per)
		n := int(math.Round(perSecond * l.Duration.D().Seconds()))
		var pacer vegeta.Pacer = vegeta.ConstantPacer{Freq: p.rate.Freq, Per: p.rate.Per}
		interval := time.Duration(float64(p.rate.Per) / float64(p.rate.Freq))
		offsetOf := func(seq uint64) time.Duration { return time.Duration(seq) * interval }
		if segs := l.Segments(p.share); segs != nil && sc.rampFrom == 0 {
			// A steps or ramp plan (plan.go).
			pp := newPlanPacer(segs)
			pacer, n, offsetOf = pp, pp.total(), pp.offsetOf
		} else if sc.rampFrom > 0 {
			// The warm-up: a linear ramp up to the measured rate, so that
			// connection pools grow to what the measured phase needs.
			var from int
			from, n = ramp(sc.rampFrom, perSecond, l.Duration.D())
			pacer = vegeta.LinearPacer{
				StartAt: vegeta.Rate{Freq: from, Per: time.Second},
				Slope:   (perSecond - float64(from)) / l.Duration.D().Seconds(),
			}
		}
		// Bounded in count (rate × duration requests, whatever the machine's
		// load) and in time (sendLimit).
		streams = append(streams, stream{plan: p, atk: atk, offsetOf: offsetOf, results: atk.Attack(countedTargeter(target, n), pacer, sc.sendLimit(), p.variant)})
	}
	stop := context.AfterFunc(ctx, func() {
		for _, s := range streams {
			s.atk.Stop()
		}
	})
	defer stop()
	// Every stream's results are read at once: a stream whose results wait
	// would hold its workers and delay its own sends.
	collected := make([][]*vegeta.Result, len(streams))
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range s.results {
				if r.Error == vegeta.ErrNoTargets.Error() {
					continue // a worker that found the count reached: no request was sent
				}
				collected[i] = append(collected[i], r)
				if pr != nil {
					pr.requests.Add(1)
					if r.Error != "" || r.Code < 200 || r.Code >= 400 {
						pr.errors.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	var out []sample
	for i, s := range streams {
		rs := collected[i]
		// The pacer's start: the earliest send, less its sequence's share of time.
		var began time.Time
		for _, r := range rs {
			b := r.Timestamp.Add(-s.offsetOf(r.Seq))
			if began.IsZero() || b.Before(began) {
				began = b
			}
		}
		target := l.Target
		if s.plan.target != "" {
			target = s.plan.target
		}
		for _, r := range rs {
			sm := toSample(r, s.plan.variant, target, began.Add(s.offsetOf(r.Seq)))
			sm.planned, sm.sent = s.offsetOf(r.Seq), r.Timestamp.Sub(began)
			out = append(out, sm)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].intended.Before(out[j].intended) })
	return out, time.Since(start)
}

// ramp is a linear ramp's starting rate (per second) and its number of
// requests, from share×perSecond up to perSecond over d.
func ramp(share, perSecond float64, d time.Duration) (from, n int) {
	from = max(1, int(math.Round(share*perSecond)))
	return from, int(math.Round((float64(from) + perSecond) / 2 * d.Seconds()))
}

// sendLimit is how long a load phase may take to send its requests:
// Options.LoadTimeLimit, else three times its duration.
func (sc *scenario) sendLimit() time.Duration {
	if sc.timeLimit > 0 {
		return sc.timeLimit
	}
	return 3 * sc.Load.Duration.D()
}

// pathOf is a service's path from the topology.
func pathOf(sc *scenario, service string) string {
	t := registry.DefaultTopology()
	if sc.Topology != nil {
		t = *sc.Topology
	}
	for _, s := range registry.WithDefaults(t).Services {
		if s.Name == service {
			return s.Path
		}
	}
	return "/"
}

// countedTargeter yields the same target n times, then ends the attack.
func countedTargeter(t vegeta.Target, n int) vegeta.Targeter {
	var mu sync.Mutex
	left := n
	return func(tgt *vegeta.Target) error {
		mu.Lock()
		defer mu.Unlock()
		if left <= 0 {
			return vegeta.ErrNoTargets
		}
		left--
		*tgt = t
		tgt.Header = t.Header.Clone()
		return nil
	}
}

func toSample(r *vegeta.Result, variant, target string, intended time.Time) sample {
	s := sample{variant: variant, code: int(r.Code), err: r.Error, intended: intended, flags: map[string][]string{}}
	s.latency = r.Timestamp.Add(r.Latency).Sub(intended)
	if s.latency < r.Latency {
		s.latency = r.Latency
	}
	if f := r.Headers.Get(fakesvc.HeaderFlags); f != "" {
		s.flags[target] = splitFlags(f)
	}
	var reply fakesvc.Reply
	if len(r.Body) > 0 && json.Unmarshal(r.Body, &reply) == nil && reply.Service != "" {
		s.versions, s.pods, s.attempts = map[string]string{}, map[string]string{}, map[string]int{}
		s.messages, s.deadlines = map[string]int{}, map[string]time.Duration{}
		walk(reply, &s)
	}
	return s
}

// splitFlags reads Envoy's %RESPONSE_FLAGS% list ("UT", "URX,UF"); "-" is none.
func splitFlags(f string) []string {
	var out []string
	for _, x := range strings.Split(f, ",") {
		if x = strings.TrimSpace(x); x != "" && x != "-" {
			out = append(out, x)
		}
	}
	return out
}

// walk records who served each hop of the call tree.
func walk(r fakesvc.Reply, s *sample) {
	if r.Version != "" {
		s.versions[r.Service] = r.Version
		s.pods[r.Service] = r.Pod
	}
	if n, err := strconv.Atoi(r.Attempt); err == nil {
		s.attempts[r.Service] = n
	}
	if r.Messages != nil {
		s.messages[r.Service] = *r.Messages
	}
	if d, err := time.ParseDuration(r.Deadline); err == nil && r.Version != "" {
		s.deadlines[r.Service] = d
	}
	if r.ConfigVersion != "" {
		s.config = r.ConfigVersion
	}
	for _, c := range r.Calls {
		if c.Flags != "" {
			s.flags[c.Service] = splitFlags(c.Flags)
		}
		walk(c, s)
	}
}

func (s sample) ok() bool { return s.code >= 200 && s.code < 400 && s.err == "" }

func describeErr(e string) string {
	// Keep the kind of failure, not the addresses, so identical failures count together.
	if i := strings.LastIndex(e, ": "); i >= 0 {
		return e[i+2:]
	}
	return fmt.Sprint(e)
}
