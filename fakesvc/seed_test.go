package fakesvc

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Replicas started with the same arguments draw their own streams under
// -seed-by-pod: the seed is the mesh's mixed with the pod's name.
func TestSeedByPod(t *testing.T) {
	seedOf := func(args ...string) int64 {
		f, err := ParseFlags("fakesvc", append([]string{"-service", "payment", "-seed", "7"}, args...), io.Discard)
		require.NoError(t, err)
		return f.Config.Seed
	}
	a, b := seedOf("-pod", "payment-v1-abc", "-seed-by-pod"), seedOf("-pod", "payment-v1-xyz", "-seed-by-pod")
	assert.NotEqual(t, a, b)
	assert.Equal(t, PodSeed(7, "payment-v1-abc"), a)
	assert.Equal(t, int64(7), seedOf("-pod", "payment-v1-abc"))
}
