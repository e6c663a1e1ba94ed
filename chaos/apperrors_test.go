package chaos

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/meshconfig"
)

func TestAppErrorsComeFromTheServerAndStop(t *testing.T) {
	b := newBench(t, meshconfig.Config{})
	rb := b.inject(AppErrors{Rate: 1, Status: 500}, b.target(Selector{Service: "payment", Version: "v2"}))
	v2 := 0
	for _, r := range b.orders(90) {
		call := r.reply.Calls[0]
		if call.Version == "v2" {
			v2++
			require.Equal(t, 500, call.Code, "v2 answers the injected error itself")
			require.Equal(t, "injected error 500", call.Error)
		} else {
			require.Equal(t, 200, r.code)
		}
	}
	require.Greater(t, v2, 10)
	b.rollback(rb)
	allOK(t, b.orders(60))
	b.assertClean()
}
