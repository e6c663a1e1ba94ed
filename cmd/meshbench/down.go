package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/meshbench/meshbench/internal/upstate"
	"github.com/meshbench/meshbench/sim/docker"
	"github.com/meshbench/meshbench/sim/kind"
)

// upStopLimit bounds the wait for one up to tear its mesh down.
const upStopLimit = 2 * time.Minute

// cmdDown stops the meshes `meshbench up` keeps running, then removes what
// runs on the docker and kind runtimes left on the engine (kind clusters
// kept with -keep included): those whose meshbench process is gone (killed
// before it could clean up), or with -all every run's, live ones included.
func cmdDown(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("down", flag.ContinueOnError)
	fs.SetOutput(stderr)
	all := fs.Bool("all", false, "also remove the resources of runs whose meshbench still runs")
	upOnly := fs.Bool("up", false, "only stop running `meshbench up`s; leave docker and kind resources alone")
	if err := fs.Parse(args); err != nil {
		return badInput(err)
	}
	if fs.NArg() > 0 {
		return badInput(fmt.Errorf("down: unexpected arguments %q", fs.Args()))
	}
	stopped, err := stopUps(ctx, stdout)
	if *upOnly {
		if stopped == 0 && err == nil {
			fmt.Fprintln(stdout, "no meshbench up running")
		}
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	clusters, kerr := kind.Down(ctx, *all)
	for _, c := range clusters {
		fmt.Fprintf(stdout, "deleted kind cluster %s\n", c)
	}
	removed, derr := docker.Down(ctx, *all, log)
	err = errors.Join(err, derr, kerr)
	for _, l := range removed {
		fmt.Fprintf(stdout, "removed run %s (pid %d): %d containers, %d networks\n", l.Run, l.PID, l.Containers, l.Networks)
	}
	if stopped+len(removed)+len(clusters) == 0 && err == nil {
		fmt.Fprintln(stdout, "nothing to remove")
	}
	return err
}

// stopUps stops every running `meshbench up` of this user and removes the
// state files of ups that died; it returns how many it stopped or cleared.
func stopUps(ctx context.Context, stdout io.Writer) (int, error) {
	ups, err := upstate.List(upstate.Dir())
	n := 0
	for _, up := range ups {
		if !up.Alive() {
			if rerr := up.Remove(); rerr != nil {
				err = errors.Join(err, rerr)
				continue
			}
			fmt.Fprintf(stdout, "removed the state of up %s (pid %d), whose process is gone\n", up.Scenario, up.PID)
			n++
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, upStopLimit)
		serr := up.Stop(sctx)
		cancel()
		if serr != nil {
			err = errors.Join(err, serr)
			continue
		}
		fmt.Fprintf(stdout, "stopped up %s (pid %d, %s runtime): gateway %s and %d proxies torn down\n", up.Scenario, up.PID, up.Runtime, up.Gateway, len(up.Proxies))
		n++
	}
	return n, err
}
