package chaos

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/meshconfig"
)

func TestAbortAnswersItsShareAndIsTakenOut(t *testing.T) {
	b := newBench(t, meshconfig.Config{})
	rb := b.inject(Abort{Status: 503, Percent: 50}, b.target(Selector{Service: "payment"}))
	during := b.orders(200)
	aborted := 0
	for _, r := range during {
		if r.reply.Calls[0].Code == 503 {
			aborted++
			require.Equal(t, "FI", r.reply.Calls[0].Flags)
			require.Equal(t, 503, r.code, "order passes payment's 503 on")
		}
	}
	t.Logf("aborted %d of 200", aborted)
	// Binomial(200, 0.5): 100 ± 4.5σ.
	require.InDelta(t, 100, aborted, 32, "aborted %d of 200", aborted)
	b.rollback(rb)
	allOK(t, b.orders(60))
	b.assertClean()
}

func TestAbortOnOneVersionNeedsARouteOfItsOwn(t *testing.T) {
	b := newBench(t, meshconfig.Config{})
	_, err := Abort{Status: 503, Percent: 100}.Inject(t.Context(), b.target(Selector{Service: "payment", Version: "v2"}))
	require.ErrorContains(t, err, "no VirtualService routing to subsets")
	b.assertClean()
}
