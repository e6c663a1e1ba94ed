package expect

import (
	"math"

	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/check"
)

// Count bounds a count read for a service: the fields of retries,
// ejections, overflows, rotations, attempts and messages.
type Count struct {
	Service string   `yaml:"service"`
	Min     *float64 `yaml:"min"`
	Max     *float64 `yaml:"max"`
	// Variant restricts the check to one load variant's requests; only
	// for counts the load sees itself (attempts, messages), not the
	// sidecars' counters, which do not know the variant.
	Variant string `yaml:"variant"`
}

// validateCounter checks a count of the sidecars' counters, which takes no variant.
func (c *Count) validateCounter(env Env, kind string) {
	count(env, kind, c.Service, c.Min, c.Max)
	noVariant(env, kind+".variant", kind, c.Variant)
}

// Retries bounds the retries the sidecars sent to a service
// (envoy_cluster_upstream_rq_retry of its clusters, summed over every proxy).
type Retries struct {
	Count `yaml:",inline"`
}

// Name is "retries".
func (*Retries) Name() string { return "retries" }

// Validate checks the service and the bounds.
func (e *Retries) Validate(env Env) { e.validateCounter(env, "retries") }

// Judge bounds the sidecars' retries, or for a service called proxyless
// the retries its callers made as the service saw them.
func (e *Retries) Judge(out *Outcome) reports.Check {
	if out.Proxyless[e.Service] {
		return e.atServer(out)
	}
	return check.Bounds("retries to "+e.Service, "retries", out.Mesh.Retries[e.Service], e.Min, e.Max, len(out.Samples), "retries")
}

// atServer counts the retries a proxyless caller made from the attempts
// its callee saw. No sidecar on the caller's side counts
// envoy_cluster_upstream_rq_retry; each answer carries the attempt the
// callee saw (grpc-go's grpc-previous-rpc-attempts plus one, gRFC A6),
// and a call answered at attempt n was retried n-1 times. Calls whose
// every attempt failed carry no answer, so this is a lower bound, and it
// counts the measured load only, where the sidecars' counter counts the
// warm-up too.
func (e *Retries) atServer(out *Outcome) reports.Check {
	n := 0
	for _, s := range out.Samples {
		if a := s.Attempts[e.Service]; a > 1 {
			n += a - 1
		}
	}
	return check.Bounds("retries to "+e.Service+" (at the server)", "retries", float64(n), e.Min, e.Max, len(out.Samples),
		"retries (proxyless gRPC callers: attempts the service saw, a lower bound)")
}

// Ejections bounds the outlier-detection ejections of a service's hosts
// (envoy_cluster_outlier_detection_ejections_enforced_total).
type Ejections struct {
	Count `yaml:",inline"`
}

// Name is "ejections".
func (*Ejections) Name() string { return "ejections" }

// Validate checks the service and the bounds.
func (e *Ejections) Validate(env Env) { e.validateCounter(env, "ejections") }

// Judge bounds the sidecars' ejections of the service's hosts.
func (e *Ejections) Judge(out *Outcome) reports.Check {
	return check.Bounds("ejections of "+e.Service, "ejections", out.Mesh.Ejections[e.Service], e.Min, e.Max, len(out.Samples), "ejections")
}

// Overflows bounds the requests to a service refused by circuit breakers
// (envoy_cluster_upstream_rq_pending_overflow, flag UO).
type Overflows struct {
	Count `yaml:",inline"`
}

// Name is "overflows".
func (*Overflows) Name() string { return "overflows" }

// Validate checks the service and the bounds.
func (e *Overflows) Validate(env Env) { e.validateCounter(env, "overflows") }

// Judge bounds the requests the circuit breakers refused.
func (e *Overflows) Judge(out *Outcome) reports.Check {
	return check.Bounds("overflows to "+e.Service, "overflows", out.Mesh.Overflows[e.Service], e.Min, e.Max, len(out.Samples), "requests refused (UO)")
}

// Rotations bounds how many times the proxies' workload certificates
// changed during the run (SDS pushes of a new certificate); its service
// is not read.
type Rotations struct {
	Count `yaml:",inline"`
}

// Name is "rotations".
func (*Rotations) Name() string { return "rotations" }

// Validate checks the bounds.
func (e *Rotations) Validate(env Env) {
	bounds(env, "rotations", e.Min, e.Max, math.Inf(1))
	noVariant(env, "rotations.variant", "rotations", e.Variant)
}

// Judge bounds the rotations the proxies saw.
func (e *Rotations) Judge(out *Outcome) reports.Check {
	return check.Bounds("certificate rotations", "rotations", out.Mesh.Rotations, e.Min, e.Max, len(out.Samples), "certificate rotations seen by the proxies")
}
