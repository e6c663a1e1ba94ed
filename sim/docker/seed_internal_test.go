package docker

import (
	"net/netip"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A pod's -seed is what the proxy's flag (a uint64) parses, whatever the
// length of its name: "inventory-v1-0" once hashed to a negative number
// and its sidecar exited at start, so the mesh never converged.
func TestProxySeedParsesForLongNames(t *testing.T) {
	m := &Mesh{}
	seen := map[uint64]string{}
	for _, name := range []string{"payment-v1-0", "inventory-v1-0", "a-rather-long-service-name-v12-3"} {
		for _, run := range []int64{1, -7, 1 << 40} {
			args := m.proxyArgs(name, "node", netip.MustParseAddr("172.30.0.5"), false, name, "default", "app", "v1", "spiffe://x", podSeed(run, name))
			i := slices.Index(args, "-seed")
			require.GreaterOrEqual(t, i, 0)
			v, err := strconv.ParseUint(args[i+1], 10, 64)
			require.NoError(t, err, "%s, run seed %d", name, run)
			if run == 1 {
				assert.NotContains(t, seen, v, "%s and %s share a seed", name, seen[v])
				seen[v] = name
			}
		}
	}
}
