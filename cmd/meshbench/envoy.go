package main

// meshbench as Envoy: the kind runtime's images install this binary also as
// /usr/local/bin/envoy, pilot-agent's default ProxyConfig binaryPath, and
// pilot-agent starts it as it starts Envoy (istio.io/istio pkg/envoy/proxy.go):
//
//	envoy -c etc/istio/proxy/envoy-rev.json --drain-time-s 45 --drain-strategy immediate
//	      --local-address-ip-version v4 --file-flush-interval-msec 1000
//	      --disable-hot-restart --allow-unknown-static-fields
//	      [--file-flush-min-size-kb N] [-l LEVEL] [--component-log-level C:L,...]
//	      [--skip-deprecated-logs] [--enable-core-dump] [--config-yaml JSON] [--concurrency N]

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/meshbench/meshbench/sim/sidecar"
)

// isEnvoy tells whether the binary was started under Envoy's name.
func isEnvoy(argv0 string) bool { return filepath.Base(argv0) == "envoy" }

// envoyMain runs the process as Envoy: SIGTERM and SIGINT end it cleanly
// (exit 0), SIGHUP is ignored and SIGUSR1 (reopen the access logs; there
// are none) is a no-op, as Envoy's signal handling is; the exit status is
// Envoy's: 0 after a clean shutdown, 1 when the flags or the bootstrap are bad.
func envoyMain(args []string) int {
	signal.Ignore(syscall.SIGHUP)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGUSR1)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := recovering(func() error { return cmdEnvoy(ctx, args, os.Stdout, os.Stderr) })
	return exitCode(err, os.Stderr)
}

// envoyOptions are the command-line options of Envoy that meshbench acts on
// or accepts (Envoy's source/server/options_impl.cc).
type envoyOptions struct {
	configPath, configYAML string
	drainTime              time.Duration
	allowUnknown           bool
	logLevel               string
	mode                   string
	version                bool
}

// envoyFlag is one flag: takes a value or not, and what it does with it.
type envoyFlag struct {
	value bool
	set   func(o *envoyOptions, v string) error
}

func oneOf(name string, allowed ...string) func(*envoyOptions, string) error {
	return func(_ *envoyOptions, v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return argError("Argument: %s\n             Value '%s' does not meet constraint: %s", name, v, strings.Join(allowed, "|"))
	}
}

func uintFlag(name string) func(*envoyOptions, string) error {
	return func(_ *envoyOptions, v string) error {
		if _, err := strconv.ParseUint(v, 10, 32); err != nil {
			return argError("Argument: %s\n             Couldn't read argument value from string '%s'", name, v)
		}
		return nil
	}
}

var logLevels = []string{"trace", "debug", "info", "warning", "warn", "error", "critical", "off"}

// envoyFlags: every flag pilot-agent passes, a few more of Envoy's that are
// harmless, and nothing else. Accepted without effect: the ones that tune
// what meshbench does not have (hot restart, file flushing of access logs
// it does not write, worker threads, core dumps, the local address family
// of upstream connections, which follows the address dialled).
var envoyFlags = map[string]envoyFlag{
	"-c":                            {true, func(o *envoyOptions, v string) error { o.configPath = v; return nil }},
	"--config-path":                 {true, func(o *envoyOptions, v string) error { o.configPath = v; return nil }},
	"--config-yaml":                 {true, func(o *envoyOptions, v string) error { o.configYAML = v; return nil }},
	"--drain-time-s":                {true, drainTime},
	"--drain-strategy":              {true, oneOf("--drain-strategy", "immediate", "gradual")},
	"--parent-shutdown-time-s":      {true, uintFlag("--parent-shutdown-time-s")},
	"--local-address-ip-version":    {true, oneOf("--local-address-ip-version", "v4", "v6")},
	"--file-flush-interval-msec":    {true, uintFlag("--file-flush-interval-msec")},
	"--file-flush-min-size-kb":      {true, uintFlag("--file-flush-min-size-kb")},
	"--disable-hot-restart":         {false, nil},
	"--allow-unknown-static-fields": {false, func(o *envoyOptions, _ string) error { o.allowUnknown = true; return nil }},
	"-l":                            {true, logLevel},
	"--log-level":                   {true, logLevel},
	"--component-log-level":         {true, componentLogLevel},
	"--log-format":                  {true, nil},
	"--log-path":                    {true, nil},
	"--skip-deprecated-logs":        {false, nil},
	"--enable-core-dump":            {false, nil},
	"--concurrency":                 {true, uintFlag("--concurrency")},
	"--base-id":                     {true, uintFlag("--base-id")},
	"--restart-epoch":               {true, func(_ *envoyOptions, v string) error { return zeroOnly("--restart-epoch", v) }},
	"--mode":                        {true, func(o *envoyOptions, v string) error { o.mode = v; return oneOf("--mode", "serve", "validate")(o, v) }},
	"--version":                     {false, func(o *envoyOptions, _ string) error { o.version = true; return nil }},
}

func drainTime(o *envoyOptions, v string) error {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return argError("Argument: --drain-time-s\n             Couldn't read argument value from string '%s'", v)
	}
	o.drainTime = time.Duration(n) * time.Second
	return nil
}

func logLevel(o *envoyOptions, v string) error {
	o.logLevel = v
	return oneOf("--log-level", logLevels...)(o, v)
}

func componentLogLevel(_ *envoyOptions, v string) error {
	for _, p := range strings.Split(v, ",") {
		_, level, ok := strings.Cut(p, ":")
		if !ok {
			return fmt.Errorf("error: component log level not correctly specified '%s'", p)
		}
		if err := oneOf("--component-log-level", logLevels...)(nil, level); err != nil {
			return fmt.Errorf("error: invalid log level specified '%s'", level)
		}
	}
	return nil
}

func zeroOnly(name, v string) error {
	if v != "0" {
		return argError("Argument: %s: hot restart is not supported", name)
	}
	return nil
}

// parseEnvoyFlags reads Envoy's command line: "--flag value" or
// "--flag=value". An unknown flag is an error, as in Envoy's TCLAP parser.
func parseEnvoyFlags(args []string) (envoyOptions, error) {
	o := envoyOptions{drainTime: 600 * time.Second, logLevel: "info", mode: "serve"} // Envoy's defaults
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(args[i], "=")
		if !strings.HasPrefix(name, "--") {
			name, val, hasVal = args[i], "", false
		}
		f, ok := envoyFlags[name]
		if !ok {
			return o, argError("Argument: %s\n             Couldn't find match for argument", args[i])
		}
		if f.value && !hasVal {
			if i+1 >= len(args) {
				return o, argError("Argument: %s\n             Missing a value for this argument!", name)
			}
			i++
			val = args[i]
		}
		if !f.value && hasVal {
			return o, argError("Argument: %s\n             takes no value", name)
		}
		if f.set != nil {
			if err := f.set(&o, val); err != nil {
				return o, err
			}
		}
	}
	return o, nil
}

// cmdEnvoy runs the builtin sidecar from an Envoy bootstrap until ctx ends
// or the admin's /quitquitquit.
func cmdEnvoy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseEnvoyFlags(args)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("PARSE ERROR: %w\n\nFor complete USAGE and HELP type:\n   envoy --help", err)}
	}
	if o.version {
		fmt.Fprintf(stdout, "\nenvoy  version: meshbench/%s/Clean/RELEASE/GoTLS\n\n", sidecar.BuildVersion)
		return nil
	}
	b, err := sidecar.LoadBootstrap(o.configPath, o.configYAML, o.allowUnknown)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("error initializing configuration '%s': %w", o.configPath, err)}
	}
	cwd, err := os.Getwd()
	if err != nil {
		return err
	}
	cfg, err := sidecar.FromBootstrap(b, cwd)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("error initializing configuration '%s': %w", o.configPath, err)}
	}
	if o.mode == "validate" {
		fmt.Fprintf(stdout, "configuration '%s' OK\n", o.configPath)
		return nil
	}
	cfg.DrainTime = o.drainTime
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slogLevel(o.logLevel)}))
	if o.logLevel == "off" {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s, err := sidecar.Start(cfg)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("envoy: %w", err)}
	}
	select {
	case <-ctx.Done():
	case <-s.Quit():
	}
	if err := s.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func slogLevel(l string) slog.Level {
	switch l {
	case "trace", "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "warning", "warn":
		return slog.LevelWarn
	}
	return slog.LevelError
}

// parseError is a command-line error worded as Envoy's TCLAP parser words it.
type parseError string

func (e parseError) Error() string { return string(e) }

func argError(format string, a ...any) error { return parseError(fmt.Sprintf(format, a...)) }
