// Command meshbench brings up a service mesh, drives load through it and
// checks that its Istio config does what it promises.
//
// Exit status: 0 every check held, 1 a check failed or a run broke, 2 bad input.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/meshbench/meshbench/sim/docker"
)

const usage = `meshbench: check that a service mesh's config does what it promises.

Usage:
  meshbench run [flags] [SCENARIO|FILE ...]   run scenarios (default: the whole catalog)
  meshbench check [flags] PATH...             derive checks from Istio YAML (files, folders, - for stdin) and run them (-o DIR: write them)
  meshbench list                              list the catalog
  meshbench validate FILE|SCENARIO ...        check scenario files; nothing is started
  meshbench xds [flags] SCENARIO|FILE         print the Envoy config a proxy would receive
  meshbench report compare BASE.json NEW.json [--threshold 10%] [--confidence 0.95] [--markdown FILE]
  meshbench report html RESULT.json [-o FILE]  render a result as a self-contained HTML page
  meshbench up [flags] SCENARIO|FILE          bring a scenario's mesh up and keep it running (prometheus.yml, Grafana dashboard)
  meshbench down [-all] [-up]                 stop running ups; remove the containers and networks that dead runs left (-all: every run's)

Run 'meshbench COMMAND -h' for a command's flags.
`

// exitError carries an exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func badInput(err error) error { return &exitError{code: 2, err: err} }

func main() {
	if isEnvoy(os.Args[0]) { // pilot-agent starts this binary as Envoy (envoy.go)
		os.Exit(envoyMain(os.Args[1:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// Registered before anything runs, so no interrupt is missed.
	interrupts := make(chan os.Signal, 2)
	signal.Notify(interrupts, os.Interrupt, syscall.SIGTERM)
	go secondInterrupt(interrupts)
	err := recovering(func() error { return run(ctx, os.Args[1:], os.Stdout, os.Stderr) })
	stop()
	exiting.Lock() // a hurried teardown under way finishes first
	os.Exit(exitCode(err, os.Stderr))
}

// exiting is held by whoever ends the process.
var exiting sync.Mutex

// secondInterrupt handles a Ctrl-C during the teardown that the first one
// started: it stops waiting for an orderly teardown, force-removes this
// process's containers and networks at once, and exits.
func secondInterrupt(ch <-chan os.Signal) {
	<-ch // the first: the run's context ends and its teardown starts
	fmt.Fprintln(os.Stderr, "meshbench: interrupted: tearing down (interrupt again to remove containers at once)")
	<-ch
	exiting.Lock()
	fmt.Fprintln(os.Stderr, "meshbench: interrupted again: removing this run's containers and networks now")
	rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := docker.RemoveOwn(rctx); err != nil && !errors.Is(err, docker.ErrNoEngine) {
		fmt.Fprintln(os.Stderr, "meshbench:", err)
	}
	os.Exit(130)
}

// recovering calls f and turns a panic into a run that broke: exit status
// 1 with the panic and its stack, not Go's exit status 2, which reads as
// bad input.
func recovering(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &exitError{code: 1, err: fmt.Errorf("meshbench: internal error: %v\n%s", p, debug.Stack())}
		}
	}()
	return f()
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(stderr, ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "meshbench:", err)
	return 1
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{code: 2, err: errors.New("")}
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "check":
		return cmdCheck(ctx, args[1:], os.Stdin, stdout, stderr)
	case "list":
		return cmdList(stdout)
	case "validate":
		return cmdValidate(args[1:], stdout)
	case "xds":
		return cmdXDS(ctx, args[1:], stdout, stderr)
	case "report":
		return cmdReport(args[1:], stdout, stderr)
	case "up":
		return cmdUp(ctx, args[1:], stdout, stderr)
	case "down":
		return cmdDown(ctx, args[1:], stdout, stderr)
	case "proxy":
		return cmdProxy(ctx, args[1:], stderr)
	case "envoy":
		return cmdEnvoy(ctx, args[1:], stdout, stderr)
	case "fakesvc":
		return cmdFakesvc(ctx, args[1:], stderr)
	case "appctl":
		return cmdAppctl(ctx, args[1:], stderr)
	case "netfault":
		return cmdNetfault(args[1:], stdout, stderr)
	case "pause":
		return cmdPause(ctx)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return badInput(fmt.Errorf("unknown command %q", args[0]))
	}
}
