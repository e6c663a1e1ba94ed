package sidecar_test

import (
	"net/http"
	"runtime"
	"runtime/metrics"
	"slices"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/meshbench/meshbench/sim/meshconfig"
)

// heapRate and heapHold are the load of BenchmarkSidecarHeap: the rate at
// which issue #14 bounds a sidecar's heap, held long enough for several
// samples after the connection pools have filled.
const (
	heapRate = 1000
	heapHold = 4 * time.Second
)

// liveHeap is the heap the last completed GC cycle found reachable.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// heapUnderLoad drives c at heapRate for heapHold and returns the median
// live heap of a GC forced every quarter second meanwhile. Every request
// must succeed: a failing path would hold less than a working one.
func heapUnderLoad(b *testing.B, c *http.Client, url string) uint64 {
	b.Helper()
	atk := vegeta.NewAttacker(vegeta.Client(c), vegeta.Workers(16), vegeta.MaxWorkers(256))
	tr := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodPost, URL: url, Body: []byte(`{"amount":42}`)})
	results := atk.Attack(tr, vegeta.Rate{Freq: heapRate, Per: time.Second}, heapHold, "heap")
	var samples []uint64
	tick := time.NewTicker(heapHold / 16)
	defer tick.Stop()
	n, failed := 0, 0
	for done := false; !done; {
		select {
		case r, ok := <-results:
			if !ok {
				done = true
				break
			}
			n++
			if r.Code != http.StatusOK {
				failed++
			}
		case <-tick.C:
			runtime.GC()
			samples = append(samples, liveHeap())
		}
	}
	if failed > 0 || n == 0 {
		b.Fatalf("%s: %d of %d requests failed", url, failed, n)
	}
	slices.Sort(samples)
	return samples[len(samples)/2]
}

// BenchmarkSidecarHeap measures the heap one sidecar holds at 1,000
// requests/s: the live heap of the process while the load goes through the
// sidecar pair (with mTLS, Istio's default), less the live heap while the
// same load goes straight to the app once both sidecars are closed, halved.
// Client, app and control plane are in both figures and cancel out. The
// figure is a level, not a cost per operation: b.N is not used, and each
// run holds the load for heapHold in each phase.
func BenchmarkSidecarHeap(b *testing.B) {
	r := newHopRig(b, meshconfig.Config{})
	for range 50 { // fill the pools before the first sample
		do(b, r.mesh, r.meshURL)
	}
	with := heapUnderLoad(b, r.mesh, r.meshURL)
	r.closeSidecars()
	r.mesh.CloseIdleConnections()
	without := heapUnderLoad(b, r.direct, r.directURL)
	mib := func(n float64) float64 { return n / (1 << 20) }
	b.ReportMetric(mib(float64(with)), "with-sidecars-heap-MiB")
	b.ReportMetric(mib(float64(without)), "without-sidecars-heap-MiB")
	b.ReportMetric(mib((float64(with)-float64(without))/2), "heap-MiB/sidecar")
}
