package chaos

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/meshconfig"
)

func TestConfigPushUnderLoadDropsNothing(t *testing.T) {
	b := newBench(t, meshconfig.Config{})
	v0, _ := strconv.Atoi(b.mesh.Version())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var rs []result
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := b.order(nil)
				mu.Lock()
				rs = append(rs, r)
				mu.Unlock()
			}
		}()
	}
	for range 5 {
		rb := b.inject(ConfigPush{}, Target{In: b.in})
		require.NoError(t, rb(context.Background()))
	}
	close(stop)
	wg.Wait()
	v, _ := strconv.Atoi(b.mesh.Version())
	require.Equal(t, v0+5, v, "five pushes, five versions")
	allOK(t, rs)
	versions := map[string]bool{}
	for _, r := range rs {
		versions[r.reply.Calls[0].ConfigVersion] = true
	}
	require.Greater(t, len(versions), 1, "served under several versions: %v", versions)
	b.assertClean()
}
