package chaos

import "fmt"

// Rampable is a fault whose strength can step toward another value of the
// same type, e.g. a latency rising from 50ms to 200ms.
type Rampable interface {
	Fault
	// Toward returns the fault a fraction f (0..1) of the way from this
	// fault's strength to to's; to has the same type.
	Toward(to Fault, f float64) Fault
}

// Ramp returns n faults stepping evenly from from's strength to to's, both
// included: Ramp(latency 50ms, latency 200ms, 4) gives 50, 100, 150, 200ms.
func Ramp(from, to Fault, n int) ([]Fault, error) {
	r, ok := from.(Rampable)
	if !ok {
		return nil, fmt.Errorf("a %s fault cannot ramp", from.Kind())
	}
	if to.Kind() != from.Kind() {
		return nil, fmt.Errorf("cannot ramp a %s fault toward a %s fault", from.Kind(), to.Kind())
	}
	if n < 2 {
		return []Fault{from}, nil
	}
	out := make([]Fault, n)
	for i := range out {
		out[i] = r.Toward(to, float64(i)/float64(n-1))
	}
	return out, nil
}

func lerp(a, b, f float64) float64 { return a + (b-a)*f }
