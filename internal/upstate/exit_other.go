//go:build !linux

package upstate

import (
	"context"
	"errors"
	"syscall"
	"time"
)

// exitWatch waits for a process that is not our child to end. Without
// Linux's pidfd there is no event for it: it asks the kernel every 100 ms.
type exitWatch struct{ pid int }

func watchExit(pid int) (*exitWatch, error) { return &exitWatch{pid: pid}, nil }

func (w *exitWatch) wait(ctx context.Context) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if err := syscall.Kill(w.pid, 0); errors.Is(err, syscall.ESRCH) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (w *exitWatch) close() {}
