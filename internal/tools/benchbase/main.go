// Command benchbase runs go test at another git ref of this repository, so
// that make bench can set a baseline's benchmarks beside today's: it checks
// the ref out into a temporary worktree, runs `go test ARGS...` there with
// the output going to -o, and removes the worktree afterwards, on failure
// and on Ctrl-C too.
//
//	go run ./internal/tools/benchbase -ref REF -o FILE -- ARGS...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

func main() {
	ref := flag.String("ref", "", "git ref to check out and benchmark")
	out := flag.String("o", "", "file for go test's output")
	flag.Parse()
	if *ref == "" || *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: benchbase -ref REF -o FILE -- GO-TEST-ARGS...")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, ".", *ref, *out, flag.Args())
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchbase:", err)
		os.Exit(1)
	}
}

// run benchmarks ref of the repository at repo.
func run(ctx context.Context, repo, ref, out string, args []string) (err error) {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	tmp, err := os.MkdirTemp("", "benchbase-")
	if err != nil {
		return err
	}
	// git adds a worktree into an empty existing directory.
	if err := git(ctx, repo, "worktree", "add", "--detach", tmp, ref); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("check out %s: %w", ref, err)
	}
	defer func() {
		// A fresh context: the run's may be cancelled by now.
		if rmErr := git(context.Background(), repo, "worktree", "remove", "--force", tmp); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("remove worktree %s: %w", tmp, rmErr))
		}
	}()
	cmd := exec.CommandContext(ctx, "go", append([]string{"test"}, args...)...)
	cmd.Dir = tmp
	cmd.Stdout = io.MultiWriter(f, os.Stdout)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go test at %s: %w", ref, err)
	}
	return nil
}

func git(ctx context.Context, repo string, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = repo
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	return cmd.Run()
}
