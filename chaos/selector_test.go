package chaos

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/runtime"
)

var pods = []runtime.Pod{
	{Name: "order-v1-0", Service: "order", Version: "v1", Ready: true},
	{Name: "payment-v1-0", Service: "payment", Version: "v1", Ready: true},
	{Name: "payment-v1-1", Service: "payment", Version: "v1", Ready: true},
	{Name: "payment-v1-2", Service: "payment", Version: "v1", Ready: true},
	{Name: "payment-v1-3", Service: "payment", Version: "v1", Ready: false},
	{Name: "payment-v2-0", Service: "payment", Version: "v2", Ready: true},
}

func names(ps []runtime.Pod) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

func TestSelectorPicksReadyPods(t *testing.T) {
	got, err := Selector{Service: "payment", Version: "v1"}.Pods(pods, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"payment-v1-0", "payment-v1-1", "payment-v1-2"}, names(got))

	got, err = Selector{Pod: "payment-v2-0"}.Pods(pods, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"payment-v2-0"}, names(got))

	_, err = Selector{Pod: "payment-v1-3"}.Pods(pods, nil)
	require.ErrorContains(t, err, "no ready pod")
	_, err = Selector{Service: "ledger"}.Pods(pods, nil)
	require.ErrorContains(t, err, "no pod is ledger")
}

func TestSelectorShareIsRoundedUpAndSeeded(t *testing.T) {
	pick := func(s Selector, seed uint64) []string {
		got, err := s.Pods(pods, rand.New(rand.NewPCG(seed, 0)))
		require.NoError(t, err)
		return names(got)
	}
	require.Len(t, pick(Selector{Service: "payment", Percent: 50}, 1), 2, "50% of 4 ready pods")
	require.Len(t, pick(Selector{Service: "payment", Percent: 1}, 1), 1, "at least one")
	require.Len(t, pick(Selector{Service: "payment", Count: 3}, 1), 3)
	require.Equal(t, pick(Selector{Service: "payment", Percent: 50}, 7), pick(Selector{Service: "payment", Percent: 50}, 7), "same seed, same pods")
	seen := map[string]bool{}
	for seed := range uint64(20) {
		for _, n := range pick(Selector{Service: "payment", Count: 1}, seed) {
			seen[n] = true
		}
	}
	require.Greater(t, len(seen), 1, "seeds vary the choice")
	require.Equal(t, "50% of payment/v1", Selector{Service: "payment", Version: "v1", Percent: 50}.String())
}
