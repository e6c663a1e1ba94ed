// Command fakesvc runs one instance of a meshbench sample service: it sleeps a
// configurable service time, fails on demand, calls its downstream services
// (through its sidecar when -proxy is set) and answers with a JSON reply.
//
//	fakesvc -service order -version v1 -pod order-v1-0 -listen 127.0.0.1:8080 \
//	    -proxy 127.0.0.1:15001 -calls payment:80/pay -latency 5ms
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/meshbench/meshbench/fakesvc"
	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/sim/registry"
)

func main() {
	cfg, listen, err := parseFlags(os.Args[1:])
	if err != nil {
		switch {
		case errors.Is(err, flag.ErrHelp):
			os.Exit(0)
		case errors.Is(err, errReported):
			os.Exit(2) // the flag package already printed the message and usage
		}
		fmt.Fprintln(os.Stderr, "fakesvc:", strings.TrimPrefix(err.Error(), "fakesvc: "))
		os.Exit(2)
	}
	if err := run(cfg, listen); err != nil {
		fmt.Fprintln(os.Stderr, "fakesvc:", strings.TrimPrefix(err.Error(), "fakesvc: "))
		os.Exit(1)
	}
}

// errReported marks flag errors the flag package has already printed.
var errReported = errors.New("bad flags")

// parseFlags reads the command line into a validated configuration.
func parseFlags(args []string) (fakesvc.Config, string, error) {
	fs := flag.NewFlagSet("fakesvc", flag.ContinueOnError)
	var (
		cfg         fakesvc.Config
		listen      string
		calls       string
		latency     time.Duration
		stddev      time.Duration
		dist        string
		errorStatus int
	)
	hostname, _ := os.Hostname()
	fs.StringVar(&cfg.Service, "service", "", "service name (required), e.g. order")
	fs.StringVar(&cfg.Version, "version", "v1", "version label of this instance")
	fs.StringVar(&cfg.Pod, "pod", hostname, "pod name of this instance")
	fs.StringVar(&cfg.Namespace, "namespace", fakesvc.DefaultNamespace, "namespace of this instance")
	fs.StringVar(&listen, "listen", ":8080", "address to serve on")
	fs.StringVar(&cfg.Proxy, "proxy", "", "sidecar outbound address host:port (empty: call services directly)")
	fs.StringVar(&calls, "calls", "", `downstream calls made in order on each request, e.g. "payment:80/pay,other:80/x"`)
	fs.DurationVar(&latency, "latency", 5*time.Millisecond, "mean service time")
	fs.DurationVar(&stddev, "latency-stddev", 0, "service time spread (normal: standard deviation; uniform: half-width)")
	fs.StringVar(&dist, "latency-dist", "fixed", "service time distribution: fixed, normal, exponential or uniform")
	fs.Float64Var(&cfg.ErrorRate, "error-rate", 0, "share of requests answered with -error-status, in [0,1]")
	fs.IntVar(&errorStatus, "error-status", fakesvc.DefaultErrorStatus, "status of injected errors")
	fs.Int64Var(&cfg.Seed, "seed", 0, "seed of the latency/error random stream")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, "", err
		}
		return cfg, "", fmt.Errorf("%w: %w", errReported, err)
	}
	if fs.NArg() > 0 {
		return cfg, "", fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.Service == "" {
		return cfg, "", errors.New("-service is required")
	}
	if latency < 0 || stddev < 0 {
		return cfg, "", errors.New("-latency and -latency-stddev must not be negative")
	}
	cs, err := fakesvc.ParseCalls(calls)
	if err != nil {
		return cfg, "", fmt.Errorf("-calls: %w", err)
	}
	cfg.Calls = cs
	cfg.Latency = registry.Latency{Mean: units.Duration(latency), StdDev: units.Duration(stddev), Dist: dist}
	cfg.ErrorStatus = errorStatus
	// Validate everything New checks now, so a bad flag exits 2.
	s, err := fakesvc.New(cfg)
	if err != nil {
		return cfg, "", err
	}
	s.Close()
	return cfg, listen, nil
}

// run serves until SIGINT or SIGTERM, then shuts down gracefully.
func run(cfg fakesvc.Config, listen string) error {
	svc, err := fakesvc.New(cfg)
	if err != nil {
		return err
	}
	defer svc.Close()

	srv := &http.Server{
		Addr:              listen,
		Handler:           svc,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("fakesvc %s/%s pod %s listening on %s", cfg.Service, cfg.Version, cfg.Pod, listen)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	stop()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
