package sidecar

import (
	"sync"
	"testing"
)

// The reference SplitMix64 from state 0 (Vigna's splitmix64.c) begins
// e220a8397b1dcdaf, 6e789e6aa1b965f4, 06c45d188009454f.
func TestSplitMixIsSplitMix64(t *testing.T) {
	s := newSplitMix(0x6d657368) // state 0
	for i, want := range []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f} {
		if got := s.Uint64(); got != want {
			t.Fatalf("draw %d: %#x, want %#x", i, got, want)
		}
	}
}

// Concurrent draws each take a state of their own: no draw repeats, as the
// mix is a bijection of the state.
func TestSplitMixConcurrentDrawsAreDistinct(t *testing.T) {
	s := newSplitMix(7)
	const goroutines, draws = 8, 2000
	out := make([][]uint64, goroutines)
	var wg sync.WaitGroup
	for g := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range draws {
				out[g] = append(out[g], s.Uint64())
			}
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for _, vs := range out {
		for _, v := range vs {
			if seen[v] {
				t.Fatalf("draw %#x came twice", v)
			}
			seen[v] = true
		}
	}
}
