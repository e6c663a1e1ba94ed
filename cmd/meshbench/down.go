package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/meshbench/meshbench/sim/docker"
	"github.com/meshbench/meshbench/sim/kind"
)

// cmdDown removes what runs on the docker and kind runtimes left on the
// engine (kind clusters kept with -keep included): those
// whose meshbench process is gone (killed before it could clean up), or
// with -all every run's, live ones included.
func cmdDown(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("down", flag.ContinueOnError)
	fs.SetOutput(stderr)
	all := fs.Bool("all", false, "also remove the resources of runs whose meshbench still runs")
	if err := fs.Parse(args); err != nil {
		return badInput(err)
	}
	if fs.NArg() > 0 {
		return badInput(fmt.Errorf("down: unexpected arguments %q", fs.Args()))
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	clusters, kerr := kind.Down(ctx, *all)
	for _, c := range clusters {
		fmt.Fprintf(stdout, "deleted kind cluster %s\n", c)
	}
	removed, err := docker.Down(ctx, *all, log)
	err = errors.Join(err, kerr)
	for _, l := range removed {
		fmt.Fprintf(stdout, "removed run %s (pid %d): %d containers, %d networks\n", l.Run, l.PID, l.Containers, l.Networks)
	}
	if len(removed)+len(clusters) == 0 && err == nil {
		fmt.Fprintln(stdout, "nothing to remove")
	}
	return err
}
