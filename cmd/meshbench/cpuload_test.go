package main

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseCPULine(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, err := parseCPULine("cpu  100 5 50 800 20 3 2 0 40 1\n")
	require.NoError(t, err)
	assert.Equal(t, cpuTimes{busy: 100 + 5 + 50 + 3 + 2, total: 980}, got, "idle and iowait are not busy; guest is already in user")

	for _, bad := range []string{"", "cpu0 1 2 3 4", "cpu 1 2 x 4 5", "intr 1 2 3 4 5"} {
		_, err := parseCPULine(bad)
		assert.Error(t, err, "%q", bad)
	}
}

// A core kept busy shows in the share: with one of the machine's cores
// spinning, at least most of a core's share is busy.
func TestBusyShareSeesASpinningCore(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/stat is Linux's")
	}
	var stop atomic.Bool
	defer stop.Store(true)
	go func() {
		for !stop.Load() { // spins on purpose: a busy core
		}
	}()
	b, err := busyShare(context.Background(), 300*time.Millisecond)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, b, 0.7/float64(runtime.NumCPU()))
	assert.LessOrEqual(t, b, 1.0)
}
