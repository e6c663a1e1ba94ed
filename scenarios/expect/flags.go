package expect

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meshbench/meshbench/internal/suggest"
	"github.com/meshbench/meshbench/reports"
	"github.com/meshbench/meshbench/scenarios/check"
)

// ResponseFlags bounds the number of responses for a service that the
// calling sidecars marked with an Envoy response flag (UO, URX, UF, UT,
// UH, NR, DI, FI, ...), as istio_requests_total counts them
// (reporter=source, response_flags).
type ResponseFlags struct {
	Service string   `yaml:"service"`
	Flag    string   `yaml:"flag"`
	Min     *float64 `yaml:"min"`
	Max     *float64 `yaml:"max"`
	// Variant counts, instead of the sidecars' istio_requests_total, the
	// variant's requests whose call to Service the calling sidecar marked
	// with Flag (its x-meshbench-response-flags header, as the load sees it).
	Variant string `yaml:"variant"`
}

// ResponseFlagNames are the Envoy response flags the builtin sidecar sets
// (Envoy access log docs, %RESPONSE_FLAGS%).
var ResponseFlagNames = []string{"UH", "UF", "UO", "NR", "URX", "NC", "DC", "UT", "UR", "DI", "FI"}

// Name is "responseFlags".
func (*ResponseFlags) Name() string { return "responseFlags" }

// Validate checks the service, the bounds, the flag and the variant.
func (e *ResponseFlags) Validate(env Env) {
	const p = "responseFlags"
	count(env, p, e.Service, e.Min, e.Max)
	if !slices.Contains(ResponseFlagNames, e.Flag) {
		env.At(p+".flag", "unknown response flag %q%s; want one of %s", e.Flag, suggest.Hint(e.Flag, ResponseFlagNames), strings.Join(ResponseFlagNames, ", "))
	}
	variant(env, p+".variant", e.Variant)
}

// Judge bounds the flagged responses. A service called proxyless is not
// judged: a flag is Envoy's account of why it answered as it did, and no
// sidecar on a proxyless caller's side keeps one (grpc-go keeps none).
func (e *ResponseFlags) Judge(out *Outcome) reports.Check {
	name := fmt.Sprintf("flag %s to %s", e.Flag, e.Service)
	if out.Proxyless[e.Service] {
		return reports.Check{
			Name: name + variantSuffix(e.Variant), Kind: "responseFlags",
			Summary: fmt.Sprintf("not judged: %s is called by proxyless gRPC clients, and no sidecar on their side sets response flags (docs/fidelity.md, proxyless gRPC)", e.Service),
		}
	}
	if e.Variant == "" {
		return check.Bounds(name, "responseFlags", out.Mesh.Flags[e.Service][e.Flag], e.Min, e.Max, len(out.Samples), "responses flagged "+e.Flag)
	}
	// The sidecars' counters do not know the variant: count the variant's
	// requests whose call to the service was flagged.
	sel, n := out.ofVariant(e.Variant), 0
	for _, s := range sel {
		if slices.Contains(s.Flags[e.Service], e.Flag) {
			n++
		}
	}
	return check.Bounds(name+variantSuffix(e.Variant), "responseFlags", float64(n), e.Min, e.Max, len(sel), "requests whose call was flagged "+e.Flag)
}
