package chaos

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/meshbench/meshbench/sim/runtime"
)

// Selector picks what a fault acts on: pods by service, version or name, a
// share of them, or (for mesh faults) a service's routes.
type Selector struct {
	// Service selects the pods (or routes) of a service.
	Service string
	// Version narrows to one version (a subset, for mesh faults).
	Version string
	// Pod selects one pod by name.
	Pod string
	// Route selects a named route (http[].name) of the service's VirtualServices.
	Route string
	// Percent picks that share of the matching pods, rounded up (at least one), at random.
	Percent float64
	// Count picks that many of the matching pods, at random.
	Count int
}

// IsZero reports an empty selector.
func (s Selector) IsZero() bool { return s == Selector{} }

// String is e.g. "payment/v2", "pod payment-v1-0", "50% of payment".
func (s Selector) String() string {
	var b strings.Builder
	switch {
	case s.Percent > 0:
		fmt.Fprintf(&b, "%g%% of ", s.Percent)
	case s.Count > 0:
		fmt.Fprintf(&b, "%d of ", s.Count)
	}
	switch {
	case s.Pod != "":
		b.WriteString("pod " + s.Pod)
	case s.Service != "":
		b.WriteString(s.Service)
		if s.Version != "" {
			b.WriteString("/" + s.Version)
		}
		if s.Route != "" {
			b.WriteString(" route " + s.Route)
		}
	default:
		b.WriteString("mesh")
	}
	return b.String()
}

// Pods resolves the selector against the pods of a mesh: the ready pods
// that match, sorted by name, then the share asked for, drawn with rng.
func (s Selector) Pods(all []runtime.Pod, rng *rand.Rand) ([]runtime.Pod, error) {
	if s.Service == "" && s.Pod == "" {
		return nil, errors.New("select pods by service or by pod name")
	}
	var match []runtime.Pod
	known := false
	for _, p := range all {
		if (s.Pod != "" && p.Name != s.Pod) || (s.Service != "" && p.Service != s.Service) || (s.Version != "" && p.Version != s.Version) {
			continue
		}
		known = true
		if p.Ready {
			match = append(match, p)
		}
	}
	if len(match) == 0 {
		if known {
			return nil, fmt.Errorf("no ready pod is %s", s)
		}
		return nil, fmt.Errorf("no pod is %s", s)
	}
	sort.Slice(match, func(i, j int) bool { return match[i].Name < match[j].Name })
	n := len(match)
	switch {
	case s.Percent > 0:
		n = max(1, int(math.Ceil(s.Percent/100*float64(len(match))-1e-9)))
	case s.Count > 0:
		n = s.Count
	}
	if n >= len(match) {
		return match, nil
	}
	if rng == nil {
		rng = rand.New(rand.NewPCG(1, 1))
	}
	rng.Shuffle(len(match), func(i, j int) { match[i], match[j] = match[j], match[i] })
	match = match[:n]
	sort.Slice(match, func(i, j int) bool { return match[i].Name < match[j].Name })
	return match, nil
}
