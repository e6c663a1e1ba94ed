package run

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// progress counts requests as they finish, for a live progress line.
type progress struct {
	requests, errors atomic.Int64
}

// showProgress redraws one line twice a second until the returned func is called.
func showProgress(w io.Writer, pr *progress, total time.Duration) func() {
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case now := <-t.C:
				n := pr.requests.Load()
				rate := float64(n-last) / now.Sub(lastAt).Seconds()
				last, lastAt = n, now
				fmt.Fprintf(w, "\r\033[K  %4.1fs/%s  %d requests  %.0f/s  %d errors", now.Sub(start).Seconds(), total, n, rate, pr.errors.Load())
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
