// Package reports holds the result model of a run and writes it out as JSON,
// a Markdown summary and JUnit XML.
package reports

import (
	"time"
)

// SchemaVersion is the version of the JSON result format; bump it on any
// change that a reader of old files would notice.
const SchemaVersion = "meshbench.result/v1"

// Suite is the result of running several scenarios.
type Suite struct {
	Schema    string    `json:"schema"`
	Started   time.Time `json:"started"`
	Duration  float64   `json:"durationSeconds"`
	Scenarios []*Result `json:"scenarios"`
	// NotChecked lists the promises of the input that no scenario
	// exercises (meshbench check), each with why.
	NotChecked []NotChecked `json:"notChecked,omitempty"`
	// Inferred lists what meshbench check inferred from the input: each
	// service, version and check with its source line.
	Inferred []Inferred `json:"inferred,omitempty"`
	// Resources are the resources meshbench check read, in the input's
	// order, each with the scenarios its promises derived. The suite's
	// index, summary.md and junit.xml have a section for each, with its
	// promises not checked (those of NotChecked naming it). Empty for
	// meshbench run.
	Resources []Resource `json:"resources,omitempty"`
}

// Resource is one resource meshbench check read.
type Resource struct {
	// Resource is "Kind namespace/name", as NotChecked.Resource.
	Resource string `json:"resource"`
	// Source is "file:line" where the resource starts.
	Source string `json:"source"`
	// Checks are its promises that a scenario exercises.
	Checks []ResourceCheck `json:"checks,omitempty"`
}

// ResourceCheck is a promise of a resource and the scenario that
// exercises it.
type ResourceCheck struct {
	// Scenario is the scenario's name (Result.Scenario).
	Scenario string `json:"scenario"`
	// Source is "file:line" of the promise.
	Source  string `json:"source"`
	Promise string `json:"promise"`
}

// Inferred is one item meshbench check inferred from the input.
type Inferred struct {
	Kind string `json:"kind"` // service, caller, version, check
	Name string `json:"name"`
	// Source is "file:line" where it was read.
	Source string `json:"source"`
	Detail string `json:"detail,omitempty"`
}

// NotChecked is a promise that was read but not exercised.
type NotChecked struct {
	Resource string `json:"resource"`
	// Source is "file:line" of the promise.
	Source  string `json:"source"`
	Promise string `json:"promise"`
	Why     string `json:"why"`
}

// Result is everything one scenario run produced.
type Result struct {
	Schema      string `json:"schema"`
	Scenario    string `json:"scenario"`
	Description string `json:"description,omitempty"`
	File        string `json:"file,omitempty"`
	// Warnings are what the scenario's files may say but likely did not
	// mean, each "file:line: field: message" (a subset that selects no pod).
	Warnings    []string    `json:"warnings,omitempty"`
	Started     time.Time   `json:"started"`
	Duration    float64     `json:"durationSeconds"` // wall time of the whole run
	Environment Environment `json:"environment"`
	Load        Load        `json:"load"`
	Latency     Latency     `json:"latency"`
	Status      Status      `json:"status"`
	// Split counts responses by the version of each service that served them,
	// as the load generator saw it in the response bodies: service → version → count.
	Split map[string]map[string]int `json:"split,omitempty"`
	// Pods counts responses by pod: service → pod → count.
	Pods map[string]map[string]int `json:"pods,omitempty"`
	// ConfigVersions counts responses by the xDS config version they were routed under.
	ConfigVersions map[string]int `json:"configVersions,omitempty"`
	// Timeline has one point per second of load, for plots over time.
	Timeline []TimelinePoint `json:"timeline,omitempty"`
	// Steps are the figures of each step of a load plan (each bucket of a
	// ramp), in order; none for a constant load.
	Steps []Step `json:"steps,omitempty"`
	// Faults are the windows in which the scenario's faults were in place, in
	// the order they started.
	Faults []FaultWindow `json:"faults,omitempty"`
	// Reactions are the mesh's reactions during the load, one point a second,
	// from the sidecars' counters (runs with chaos or a steady state).
	Reactions []ReactionPoint `json:"reactions,omitempty"`
	// Hops are the edges of the service graph as the sidecars' metrics saw them.
	Hops   []Hop   `json:"hops,omitempty"`
	Checks []Check `json:"checks"`
	// Traces points at the run's sampled traces and the ones the report
	// draws; only when the run folder has a traces file (traces.go).
	Traces *TraceRefs `json:"traces,omitempty"`
	// Passed is true when every check held.
	Passed bool `json:"passed"`
	// Error is set when the run itself failed (not a check).
	Error string `json:"error,omitempty"`
}

// Environment says where the run happened.
type Environment struct {
	Runtime   string `json:"runtime"`
	DataPlane string `json:"dataPlane"`
	GoVersion string `json:"goVersion"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CPUs      int    `json:"cpus"`
	Seed      int64  `json:"seed"`
}

// Load describes the load phase.
type Load struct {
	Target       string  `json:"target"`
	URL          string  `json:"url"`
	TargetRate   float64 `json:"targetRate"`   // requests per second asked for
	AchievedRate float64 `json:"achievedRate"` // requests per second sent
	Throughput   float64 `json:"throughput"`   // successful requests per second
	Duration     float64 `json:"durationSeconds"`
	Requests     int     `json:"requests"`
	// Note says how the runtime changed the load the scenario asked for
	// (a lower rate for longer, the same requests), if it did.
	Note string `json:"note,omitempty"`
	// Plan describes a steps or ramp plan ("steps 200/s for 5s, 400/s for
	// 5s"); TargetRate is then its mean rate. Empty for a constant rate.
	Plan string `json:"plan,omitempty"`
}

// Step is one step of a load plan, or one bucket of a ramp. Its requests
// are those the pacer planned in its window, so a request that queued
// counts, with its queueing, in the step that asked for it.
type Step struct {
	Index int     `json:"index"` // 1-based
	Start float64 `json:"start"` // seconds since the load started
	End   float64 `json:"end"`
	// TargetRate is the rate the plan asked for, per second (a ramp
	// bucket's mean); AchievedRate the requests actually sent in the
	// window, per second.
	TargetRate   float64 `json:"targetRate"`
	AchievedRate float64 `json:"achievedRate"`
	Requests     int     `json:"requests"`
	Successes    int     `json:"successes"`
	SuccessRate  float64 `json:"successRate"`
	Latency      Latency `json:"latency"`
}

// Latency holds exact percentiles in milliseconds from an HDR histogram,
// corrected for coordinated omission at the constant target rate.
type Latency struct {
	// Min is the fastest request; left out of files written before it was kept.
	Min  float64 `json:"min,omitempty"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Status summarises answers.
type Status struct {
	SuccessRate float64        `json:"successRate"`
	Codes       map[string]int `json:"codes"`            // "200" → count; "0" is a transport error
	Errors      map[string]int `json:"errors,omitempty"` // transport error text → count
}

// Check is one expectation and its verdict.
type Check struct {
	Name       string   `json:"name"`             // e.g. "split payment"
	Kind       string   `json:"kind"`             // split | successRate | latency
	Passed     bool     `json:"passed"`           // the verdict
	Summary    string   `json:"summary"`          // one line a person reads
	Test       string   `json:"test,omitempty"`   // the statistical test used, e.g. "chi-square goodness of fit"
	N          int      `json:"n,omitempty"`      // sample size
	PValue     *float64 `json:"pValue,omitempty"` // where a test gives one
	Confidence float64  `json:"confidence,omitempty"`
	// Observed and Expected values by label (a version's share, a percentile).
	Observed map[string]float64 `json:"observed,omitempty"`
	Expected map[string]float64 `json:"expected,omitempty"`
}

// TimelinePoint summarises one second of load, by the requests' intended send time.
type TimelinePoint struct {
	Second   int     `json:"second"`   // seconds since the load started
	Requests int     `json:"requests"` // requests sent in that second
	Errors   int     `json:"errors"`   // of which failed (non-2xx/3xx or transport error)
	P50      float64 `json:"p50"`      // ms
	P99      float64 `json:"p99"`      // ms
	Max      float64 `json:"max"`      // ms
	// Versions counts successful responses by the version of the split
	// service that served them ("payment/v2" → n), for split-over-time plots.
	Versions map[string]int `json:"versions,omitempty"`
}

// Hop is one edge of the service graph: requests from one workload to
// another, read from the source side's istio_requests_total and
// istio_request_duration_milliseconds (reporter="source").
type Hop struct {
	Source      string  `json:"source"`      // source_workload
	Destination string  `json:"destination"` // destination_workload
	Service     string  `json:"service"`     // destination_service
	Requests    int     `json:"requests"`
	RPS         float64 `json:"rps"`
	SuccessRate float64 `json:"successRate"`
	P99         float64 `json:"p99"` // ms, from histogram buckets (an upper bound)
	MTLS        bool    `json:"mtls"`
	// Flags counts responses by Envoy response flag other than "-" (URX, UO, UH, ...).
	Flags map[string]int `json:"flags,omitempty"`
	// Codes counts responses by status code.
	Codes map[string]int `json:"codes,omitempty"`
}

// FaultWindow is one fault as it was in place: one occurrence (or one ramp
// step) of a scenario's chaos step.
type FaultWindow struct {
	Name   string `json:"name"`             // the chaos step
	Kind   string `json:"kind"`             // fault type: latency, kill, xdsOutage, ...
	Target string `json:"target"`           // what it acted on, e.g. "payment-v1-0,payment-v1-1" or "payment/v2"
	Detail string `json:"detail,omitempty"` // its parameters, e.g. "latency 100ms ±10ms"
	// Mechanism is how the runtime put it in place, e.g. "docker pause of
	// the app's container (cgroup freezer)", or a fallback and why.
	Mechanism string `json:"mechanism,omitempty"`
	// Start is when the fault was in place and End when its removal began,
	// in seconds since the load started (the timeline's second 0); both 0
	// when it never took effect.
	Start float64 `json:"start"`
	End   float64 `json:"end"`
	// Error says why injecting or removing it failed.
	Error string `json:"error,omitempty"`
}

// ReactionPoint is what the mesh did in one second of the load, summed over
// every sidecar and the gateway.
type ReactionPoint struct {
	// Second is when the interval ended, in seconds since the load started.
	Second    float64 `json:"second"`
	Retries   int     `json:"retries"`   // retries sent (envoy_cluster_upstream_rq_retry)
	Ejections int     `json:"ejections"` // outlier ejections enforced
	Ejected   int     `json:"ejected"`   // hosts ejected at the end of the interval
	Overflows int     `json:"overflows"` // requests refused by circuit breakers (UO)
	// Flags counts responses by Envoy response flag (reporter=source).
	Flags map[string]int `json:"flags,omitempty"`
}
