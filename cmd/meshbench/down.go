package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/meshbench/meshbench/sim/docker"
)

// cmdDown removes what runs on the docker runtime left on the engine: those
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
	removed, err := docker.Down(ctx, *all, log)
	for _, l := range removed {
		fmt.Fprintf(stdout, "removed run %s (pid %d): %d containers, %d networks\n", l.Run, l.PID, l.Containers, l.Networks)
	}
	if len(removed) == 0 && err == nil {
		fmt.Fprintln(stdout, "nothing to remove")
	}
	return err
}
