package reports

import (
	"errors"
	"io"
	"strconv"
	"time"
)

// SMPFile is the result in the shape of Layer5's Service Mesh Performance
// spec, written by WriteRun beside result.json.
const SMPFile = "smp.json"

// SMPSpec names the spec file the export follows: the proto gives no
// release number, so this is the file and the commit it was read at.
const SMPSpec = "service-mesh-performance/protos/service_mesh_performance.proto@1a82110"

// SMP is one run as the Service Mesh Performance spec's
// PerformanceTestConfig and PerformanceTestResult messages
// (github.com/service-mesh-performance/service-mesh-performance,
// protos/service_mesh_performance.proto), in proto3's JSON mapping:
// lowerCamelCase names, enums by name, timestamps in RFC 3339.
//
// The types are written by hand: the spec's generated Go package brings
// protobuf and every other spec message for a dozen fields, and the
// extensions the issue asks for (p99.9, status codes, response flags, the
// plan's steps) are not in the proto. A reader using protojson with
// DiscardUnknown reads the spec's fields and skips the extensions.
type SMP struct {
	Config SMPConfig `json:"config"`
	Result SMPResult `json:"result"`
}

// SMPConfig is PerformanceTestConfig.
type SMPConfig struct {
	SMPVersion string            `json:"smpVersion"`
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Labels     map[string]string `json:"labels,omitempty"`
	Clients    []SMPClient       `json:"clients"`
	// Duration is how long the endpoint was under load, as Go duration text.
	Duration string `json:"duration"`
}

// SMPClient is PerformanceTestConfig.Client.
type SMPClient struct {
	Internal      bool              `json:"internal"`
	LoadGenerator string            `json:"loadGenerator"`
	Protocol      string            `json:"protocol"` // the Protocol enum by name: http
	RPS           int64             `json:"rps"`
	Headers       map[string]string `json:"headers,omitempty"`
	EndpointURL   []string          `json:"endpointUrl"`
}

// SMPResult is PerformanceTestResult, with meshbench's extensions after
// the spec's fields.
type SMPResult struct {
	SMPVersion  string            `json:"smpVersion"`
	ID          string            `json:"id"`
	Labels      map[string]string `json:"labels,omitempty"`
	StartTime   time.Time         `json:"startTime"`
	EndTime     time.Time         `json:"endTime"`
	LatenciesMs SMPLatency        `json:"latenciesMs"`
	ActualQPS   float64           `json:"actualQPS"`
	TestID      string            `json:"testId"`

	// Extensions, not in the spec.

	// SuccessRate is the share of requests answered 2xx or 3xx.
	SuccessRate float64 `json:"successRate"`
	// StatusCodes counts the load's responses by status ("0": a transport error).
	StatusCodes map[string]int `json:"statusCodes"`
	// ResponseFlags counts the responses the proxies marked with each
	// Envoy response flag, summed over the service graph's hops.
	ResponseFlags map[string]int `json:"responseFlags,omitempty"`
	// Steps are a load plan's steps, as in result.json.
	Steps []Step `json:"steps,omitempty"`
}

// SMPLatency is PerformanceTestResult.Latency (ms), with P999 added.
type SMPLatency struct {
	Min     float64 `json:"min"`
	Average float64 `json:"average"`
	P50     float64 `json:"p50"`
	P90     float64 `json:"p90"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
	// P999 is an extension: the spec stops at p99.
	P999 float64 `json:"p999"`
}

// ToSMP maps a result to the SMP shape.
func ToSMP(r *Result) *SMP {
	id := r.Scenario + "-" + r.Started.UTC().Format("20060102T150405Z")
	labels := map[string]string{
		"scenario": r.Scenario, "runtime": r.Environment.Runtime, "dataPlane": r.Environment.DataPlane,
		"seed": strconv.FormatInt(r.Environment.Seed, 10), "passed": strconv.FormatBool(r.Passed),
	}
	if r.Load.Plan != "" {
		labels["plan"] = r.Load.Plan
	}
	d := time.Duration(r.Load.Duration * float64(time.Second)).Round(time.Millisecond)
	var flags map[string]int
	for _, h := range r.Hops {
		for f, n := range h.Flags {
			if flags == nil {
				flags = map[string]int{}
			}
			flags[f] += n
		}
	}
	codes := r.Status.Codes
	if codes == nil {
		codes = map[string]int{}
	}
	lat := r.Latency
	return &SMP{
		Config: SMPConfig{
			SMPVersion: SMPSpec, ID: id, Name: r.Scenario, Labels: labels, Duration: d.String(),
			Clients: []SMPClient{{
				Internal: true, LoadGenerator: "vegeta", Protocol: "http",
				RPS: int64(r.Load.TargetRate + 0.5), EndpointURL: []string{r.Load.URL},
			}},
		},
		Result: SMPResult{
			SMPVersion: SMPSpec, ID: id, Labels: labels, TestID: r.Scenario,
			StartTime: r.Started.UTC(), EndTime: r.Started.UTC().Add(time.Duration(r.Duration * float64(time.Second))),
			LatenciesMs: SMPLatency{Min: lat.Min, Average: lat.Mean, P50: lat.P50, P90: lat.P90, P99: lat.P99, Max: lat.Max, P999: lat.P999},
			ActualQPS:   r.Load.AchievedRate,
			SuccessRate: r.Status.SuccessRate, StatusCodes: codes, ResponseFlags: flags, Steps: r.Steps,
		},
	}
}

// WriteSMP writes r in the SMP shape as indented JSON.
func WriteSMP(w io.Writer, r *Result) error {
	if r == nil {
		return errors.New("reports: nil result")
	}
	return writeIndented(w, ToSMP(r))
}
