package upstate

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// Stop asks the up that wrote s to tear its mesh down (SIGTERM, as Ctrl-C
// would), waits until its process is gone or ctx ends, and removes the
// state file if the up could not.
func (s State) Stop(ctx context.Context) error {
	if !s.Alive() {
		return s.Remove()
	}
	w, err := watchExit(s.PID)
	if err != nil {
		return fmt.Errorf("up (pid %d): %w", s.PID, err)
	}
	defer w.close()
	if err := syscall.Kill(s.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("up (pid %d): %w", s.PID, err)
	}
	if err := w.wait(ctx); err != nil {
		return fmt.Errorf("up (pid %d) still running: %w", s.PID, err)
	}
	return s.Remove()
}
