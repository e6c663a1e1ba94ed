package upstate

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// exitWatch waits for a process that is not our child to end: a pidfd
// (pidfd_open(2), Linux 5.3) becomes readable when it does.
type exitWatch struct{ fd int }

func watchExit(pid int) (*exitWatch, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return &exitWatch{fd: -1}, nil // already gone
	}
	if err != nil {
		return nil, err
	}
	return &exitWatch{fd: fd}, nil
}

func (w *exitWatch) wait(ctx context.Context) error {
	if w.fd < 0 {
		return nil
	}
	for {
		// Poll in slices so that ctx is honoured; the wake-up is the event.
		fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(200*time.Millisecond/time.Millisecond))
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		if n > 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

func (w *exitWatch) close() {
	if w.fd >= 0 {
		_ = unix.Close(w.fd)
	}
}
