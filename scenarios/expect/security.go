package expect

import (
	"fmt"

	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/check"
)

// Security bounds the requests a service received over one
// connection_security_policy (mutual_tls or none), or over any, as its
// sidecars report them (istio_requests_total, reporter=destination).
type Security struct {
	Service string   `yaml:"service"`
	Policy  string   `yaml:"policy"` // mutual_tls, none, or any (their sum)
	Min     *float64 `yaml:"min"`
	Max     *float64 `yaml:"max"`
}

// Name is "security".
func (*Security) Name() string { return "security" }

// Validate checks the service, the bounds and the policy.
func (e *Security) Validate(env Env) {
	const p = "security"
	count(env, p, e.Service, e.Min, e.Max)
	if e.Policy != "mutual_tls" && e.Policy != "none" && e.Policy != PolicyAny {
		env.At(p+".policy", "policy %q is not mutual_tls, none or any", e.Policy)
	}
}

// PolicyAny is the policy that counts what a service received whatever
// its connection_security_policy: that it arrived at all (the copies a
// mirror receives, which no caller's answer shows).
const PolicyAny = "any"

// Judge bounds what the service's sidecars received with the policy.
func (e *Security) Judge(out *Outcome) reports.Check {
	if e.Policy == PolicyAny {
		n := 0.0
		for _, v := range out.Mesh.Security[e.Service] {
			n += v
		}
		return check.Bounds("requests to "+e.Service, "security", n, e.Min, e.Max, len(out.Samples),
			"requests and TCP connections received, over any connection_security_policy")
	}
	return check.Bounds(fmt.Sprintf("%s requests to %s", e.Policy, e.Service), "security", out.Mesh.Security[e.Service][e.Policy], e.Min, e.Max, len(out.Samples),
		"requests and TCP connections received with connection_security_policy="+e.Policy)
}
