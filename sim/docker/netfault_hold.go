package docker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// heldRules are packet-filter rules that a `meshbench netfault hold`
// process keeps in a pod's network namespace for as long as its standard
// input stays open.
//
// The process is a privileged docker exec in the pod's sandbox container
// (which holds the namespace and outlives a crash of the app or sidecar,
// so the rules do too, as they would in a Kubernetes pod), not a helper
// container: creating and starting a container took 0.85 s here
// and stalled every request of the mesh for up to 280 ms while it did
// (runc, overlay mounts and cgroups on 2 cores), so a fault came in late
// and slowed what it was not aimed at; an exec took 0.35 s and stalled
// nothing measurable. The pod's containers gain no capability: only the
// exec'd process is privileged, and the rules go when its stdin closes, which is
// also what happens when this process dies.
type heldRules struct {
	att  client.ExecAttachResult
	done chan struct{} // closed when the process's output ends
	mu   sync.Mutex
	out  strings.Builder
}

// holdNetfault runs `meshbench netfault ARGS -stdin` in pod's network
// namespace and returns once it has said the rules are in place.
func (m *Mesh) holdNetfault(ctx context.Context, pd *pod, args []string) (*heldRules, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := append([]string{"/meshbench", "netfault"}, args...)
	cmd = append(cmd, "-stdin")
	ex, err := m.cli.ExecCreate(ctx, pd.sandbox, client.ExecCreateOptions{
		Privileged: true, AttachStdin: true, AttachStdout: true, AttachStderr: true, Cmd: cmd,
	})
	if err != nil {
		return nil, fmt.Errorf("netfault hold: %w", err)
	}
	att, err := m.cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return nil, fmt.Errorf("netfault hold: %w", err)
	}
	h := &heldRules{att: att, done: make(chan struct{})}
	held := make(chan struct{})
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, pw, att.Reader)
		pw.CloseWithError(err)
	}()
	go func() {
		defer close(h.done)
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			if line == "held" {
				once.Do(func() { close(held) })
				continue
			}
			h.mu.Lock()
			h.out.WriteString(line + "\n")
			h.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case <-held:
		return h, nil
	case <-h.done:
		att.Close()
		return nil, fmt.Errorf("netfault hold: exited before holding: %s", h.output())
	case <-ctx.Done():
		att.Close()
		return nil, fmt.Errorf("netfault hold: %w", ctx.Err())
	}
}

// release closes the process's stdin and returns once it has exited, that
// is once the rules are gone.
func (h *heldRules) release(ctx context.Context) error {
	defer h.att.Close()
	if err := h.att.CloseWrite(); err != nil {
		return fmt.Errorf("netfault release: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	select {
	case <-h.done:
	case <-ctx.Done():
		return fmt.Errorf("netfault release: %w", ctx.Err())
	}
	if msg := h.output(); msg != "" {
		return fmt.Errorf("netfault release: %s", msg)
	}
	return nil
}

// output is what the process printed besides "held": nothing when it did
// its part, the error it exits with otherwise (its exit status is not
// read: the engine records it a moment after the stream ends, and has no
// event for it but polling).
func (h *heldRules) output() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.TrimSpace(h.out.String())
}
