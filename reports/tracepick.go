package reports

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TraceRefs is the traces section of result.json, present only when the
// run folder holds a traces file: where the spans are and which traces
// the report draws. Trace ids are Zipkin's hex ids, to look up in File or
// in a Jaeger that imported it.
type TraceRefs struct {
	File   string `json:"file"`   // relative to result.json
	Traces int    `json:"traces"` // sampled traces in File
	Spans  int    `json:"spans"`
	// Slowest is the id of the longest sampled trace.
	Slowest string `json:"slowest,omitempty"`
	// Checks has one entry per failed check: the trace that shows the
	// failure, or why no trace can.
	Checks []CheckTrace `json:"checks,omitempty"`
	// Error says why File could not be read; the report then has no traces.
	Error string `json:"error,omitempty"`
}

// CheckTrace ties a failed check to a trace.
type CheckTrace struct {
	Check string `json:"check"` // the check's name
	Index int    `json:"index"` // its position in checks
	Trace string `json:"trace,omitempty"`
	// Why says how the trace was chosen, or why there is none.
	Why string `json:"why"`
}

// Refs returns the traces section of r's result.json: the slowest trace
// and one entry per failed check of r. A nil t gives nil.
func (t *Traces) Refs(r *Result) *TraceRefs {
	if t == nil {
		return nil
	}
	refs := &TraceRefs{File: TracesFile, Traces: len(t.List), Spans: t.Spans}
	if s := t.Slowest(); s != nil {
		refs.Slowest = s.ID
	}
	for i, c := range r.Checks {
		if c.Passed {
			continue
		}
		id, why := t.ForCheck(c)
		refs.Checks = append(refs.Checks, CheckTrace{Check: c.Name, Index: i, Trace: id, Why: why})
	}
	return refs
}

// ForCheck picks the trace that best shows why the check failed and says
// how it chose, or returns no id and says why none can. A check carries its
// kind and name (scenarios/run/judge.go writes "status 503 share", "flag UO to
// payment", "retries to payment"), so the rule is by kind, reading the
// service, code or flag from the name:
//   - latency-like checks (latency, latencyShift, capacity, deadline): the
//     slowest trace;
//   - successRate: the slowest trace whose root failed (non-2xx/3xx);
//   - status: the slowest trace whose root answered that code;
//   - responseFlags and overflows (UO): the slowest trace with a span to
//     the service carrying the flag;
//   - retries and attempts: the trace with the most retries towards the
//     service (retry annotations, URX, or several client spans to it);
//   - everything else is judged over many requests (a split's shares,
//     ejections, mTLS counts, faults' windows), and no single trace fails it.
//
// Among several matches the slowest wins, so the choice is deterministic.
func (t *Traces) ForCheck(c Check) (id, why string) {
	if t == nil || len(t.List) == 0 {
		return "", "no sampled traces"
	}
	switch c.Kind {
	case "latency", "latencyShift", "capacity", "deadline":
		s := t.Slowest()
		return s.ID, fmt.Sprintf("the slowest of %d sampled traces (%s ms)", len(t.List), fmtNum(ms(s.Duration)))
	case "successRate":
		return t.slowestWhere(func(tr *Trace) bool { return tr.Roots[0].Failed() },
			"the slowest trace whose root failed", "no sampled trace failed")
	case "status":
		var code int
		if _, err := fmt.Sscanf(c.Name, "status %d share", &code); err != nil {
			return "", "cannot read the status code from the check's name"
		}
		return t.slowestWhere(func(tr *Trace) bool { return tr.Status == code },
			fmt.Sprintf("the slowest trace whose root answered %d", code), fmt.Sprintf("no sampled trace answered %d", code))
	case "responseFlags", "overflows":
		flag, service, ok := flagAndService(c)
		if !ok {
			return "", "cannot read the flag and service from the check's name"
		}
		return t.slowestWhere(func(tr *Trace) bool {
			for _, s := range tr.Spans {
				if s.hasFlag(flag) && spanTo(s, service) {
					return true
				}
			}
			return false
		}, fmt.Sprintf("the slowest trace with a span to %s flagged %s", service, flag), fmt.Sprintf("no sampled span to %s is flagged %s", service, flag))
	case "retries", "attempts":
		_, service, ok := strings.Cut(stripVariant(c.Name), " to ")
		if !ok {
			_, service, ok = strings.Cut(stripVariant(c.Name), " at ")
		}
		if !ok {
			return "", "cannot read the service from the check's name"
		}
		service = strings.TrimSuffix(service, " (at the server)")
		var best *Trace
		most := 0
		for _, tr := range t.List {
			if n := retriesTo(tr, service); n > most || (n == most && n > 0 && tr.Duration > best.Duration) {
				best, most = tr, n
			}
		}
		if best == nil {
			return "", fmt.Sprintf("no sampled trace shows a retry to %s", service)
		}
		return best.ID, fmt.Sprintf("the trace with the most retries to %s (%d)", service, most)
	case "split":
		return "", "a split is a share of many requests; no single trace fails it"
	case "ejections":
		return "", "ejections are counted per host over the run; no single request shows one"
	case "chaos":
		return "", "faults are judged by their windows, not by a request"
	default:
		return "", fmt.Sprintf("a %s check is judged over the run; no single trace shows it", c.Kind)
	}
}

// slowestWhere returns the slowest trace for which match holds.
func (t *Traces) slowestWhere(match func(*Trace) bool, found, none string) (string, string) {
	var best *Trace
	n := 0
	for _, tr := range t.List {
		if len(tr.Roots) == 0 || !match(tr) {
			continue
		}
		n++
		if best == nil || tr.Duration > best.Duration {
			best = tr
		}
	}
	if best == nil {
		return "", none
	}
	return best.ID, fmt.Sprintf("%s (%d of %d sampled traces match)", found, n, len(t.List))
}

// flagAndService reads "flag UO to payment" or "overflows to payment".
func flagAndService(c Check) (flag, service string, ok bool) {
	name := stripVariant(c.Name)
	if c.Kind == "overflows" {
		// Envoy's UO: upstream overflow (circuit breaking), Envoy docs
		// "Access logging", %RESPONSE_FLAGS%.
		service, ok = strings.CutPrefix(name, "overflows to ")
		return "UO", service, ok
	}
	rest, ok := strings.CutPrefix(name, "flag ")
	if !ok {
		return "", "", false
	}
	flag, service, ok = strings.Cut(rest, " to ")
	return flag, service, ok
}

// stripVariant drops the " (variant)" suffix scenarios/run/judge.go adds to a name.
func stripVariant(name string) string {
	if i := strings.LastIndex(name, " ("); i > 0 && strings.HasSuffix(name, ")") && !strings.HasSuffix(name, "(at the server)") {
		return name[:i]
	}
	return name
}

// spanTo reports whether s is a call to service: a client span whose
// upstream cluster's host is the service (Istio's cluster names are
// "outbound|port|subset|host", istio/istio pilot/pkg/model/service.go
// BuildSubsetKey), or the service's own server span.
func spanTo(s *Span, service string) bool {
	if s.Kind == "SERVER" {
		return s.Tags[tagCanonicalService] == service || s.Service == service || strings.HasPrefix(s.Service, service+".")
	}
	cluster := s.Tags[tagUpstreamCluster]
	host := cluster[strings.LastIndexByte(cluster, '|')+1:]
	return host == service || strings.HasPrefix(host, service+".")
}

// retriesTo counts the retries a trace shows towards service: retry
// annotations on client spans to it, URX flags (Envoy: upstream retry
// limit exceeded), and under one parent the client spans to it beyond the
// first (Envoy's per-attempt upstream spans) or the retry.count tag our
// sidecar sets, whichever is more (an attempt span carries its own
// number, a sidecar's span without attempts its request's retries).
func retriesTo(tr *Trace, service string) int {
	n := 0
	attempts, counted := map[*Span]int{}, map[*Span]int{}
	for _, s := range tr.Spans {
		if s.Kind == "SERVER" || !spanTo(s, service) {
			continue
		}
		for _, a := range s.Annotations {
			if isRetry(a.Value) {
				n++
			}
		}
		if s.hasFlag("URX") {
			n++
		}
		attempts[s.Parent]++
		if c, _ := strconv.Atoi(s.Tags[tagRetryCount]); c > counted[s.Parent] {
			counted[s.Parent] = c
		}
	}
	for parent, k := range attempts {
		n += max(k-1, counted[parent])
	}
	return n
}

func isRetry(annotation string) bool {
	return strings.Contains(strings.ToLower(annotation), "retr")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
