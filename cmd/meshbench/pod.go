package main

// The commands a pod of the container runtimes runs: the docker runtime puts
// this very binary in its images (FROM scratch), so the proxy, the sample
// app and the network-fault helper are always the build the control plane
// is. They are not in the usage text: users do not call them.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/meshbench/meshbench/fakesvc"
	"github.com/meshbench/meshbench/internal/netfault"
	"github.com/meshbench/meshbench/sim/accesslog"
	"github.com/meshbench/meshbench/sim/docker"
	"github.com/meshbench/meshbench/sim/sidecar"
)

// cmdPause is a docker pod's sandbox, the part Kubernetes' pause container
// plays: it holds the pod's network namespace and does nothing else until
// it is stopped. The images hold only this binary, so it plays the part
// itself.
func cmdPause(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// cmdProxy runs the builtin sidecar (or, with -router, the ingress gateway)
// until ctx ends.
func cmdProxy(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg sidecar.Config
	ip := fs.String("ip", "", "the pod's IP: inbound listeners and :15090 bind it (required)")
	outIP := fs.String("outbound-ip", "127.0.0.1", "where the 15001 capture listener binds (the app's side of the pod)")
	fs.StringVar(&cfg.NodeID, "node-id", "", "xDS node id (required)")
	fs.StringVar(&cfg.XDS, "xds", "", "control plane host:port (required)")
	fs.BoolVar(&cfg.Router, "router", false, "run as the ingress gateway")
	fs.StringVar(&cfg.Workload, "workload", "", "workload name for metrics")
	fs.StringVar(&cfg.Namespace, "namespace", "default", "namespace")
	fs.StringVar(&cfg.App, "app", "", "app label")
	fs.StringVar(&cfg.Version, "version", "unknown", "version label")
	fs.StringVar(&cfg.Principal, "principal", "", "SPIFFE ID of the workload")
	seed := fs.Uint64("seed", 0, "seed of the load balancer's random choices")
	verbose := fs.Bool("v", false, "log xDS events")
	accessLog := fs.String("access-log-file", "", "append the access log here, whatever path meshConfig.accessLogFile names (a runtime collecting every proxy's log in one folder)")
	if err := fs.Parse(args); err != nil {
		return badInput(err)
	}
	var err error
	if cfg.IP, err = netip.ParseAddr(*ip); err != nil {
		return badInput(fmt.Errorf("proxy: -ip: %w", err))
	}
	if *outIP != "" {
		if cfg.OutboundIP, err = netip.ParseAddr(*outIP); err != nil {
			return badInput(fmt.Errorf("proxy: -outbound-ip: %w", err))
		}
	}
	if cfg.NodeID == "" || cfg.XDS == "" {
		return badInput(errors.New("proxy: -node-id and -xds are required"))
	}
	if *accessLog != "" {
		path := *accessLog
		cfg.OpenAccessLog = func(string) (io.Writer, error) { return accesslog.OpenAppend(path) }
	}
	cfg.XDSToken = os.Getenv(docker.TokenEnv)
	cfg.Seed = *seed
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	s, err := sidecar.Start(cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}

// cmdFakesvc runs a sample service instance until ctx ends.
func cmdFakesvc(ctx context.Context, args []string, stderr io.Writer) error {
	f, err := fakesvc.ParseFlags("fakesvc", args, stderr)
	if err != nil {
		if errors.Is(err, fakesvc.ErrFlagsReported) {
			return &exitError{code: 2, err: errors.New("")}
		}
		return badInput(err)
	}
	return fakesvc.Serve(ctx, f)
}

// cmdAppctl sends a behaviour change to the app of the pod it runs in.
func cmdAppctl(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("appctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := fs.String("admin", "127.0.0.1:15081", "the app's behaviour endpoint")
	body := fs.String("json", "", "the change, a fakesvc.Behaviour as JSON (required)")
	if err := fs.Parse(args); err != nil {
		return badInput(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+*admin+"/behaviour", bytes.NewBufferString(*body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("appctl: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// cmdNetfault changes the packet filter of the network namespace it runs in:
//
//	netfault drop -id F -ports 8080[,…] [-from IP,…]
//	netfault hold -id F -ports 8080[,…] [-from IP,…] [-stdin]   drop, print "held", and undo on SIGTERM (or at the end of stdin)
//	netfault remove -id F
//	netfault probe -link eth0        prints {"netem": "…", "tbf": "…"} ("" where the qdisc works)
func cmdNetfault(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return badInput(errors.New("netfault: drop, hold, remove or probe"))
	}
	fs := flag.NewFlagSet("netfault "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.String("id", "", "the fault's id")
	ports := fs.String("ports", "", "TCP ports whose packets are dropped")
	from := fs.String("from", "", "source addresses (empty: every source)")
	link := fs.String("link", "eth0", "link to probe")
	untilEOF := fs.Bool("stdin", false, "hold: undo also when standard input ends")
	if err := fs.Parse(args[1:]); err != nil {
		return badInput(err)
	}
	switch args[0] {
	case "drop", "hold":
		d := netfault.Drop{ID: *id}
		for _, p := range splitList(*ports) {
			n, err := strconv.ParseUint(p, 10, 16)
			if err != nil {
				return badInput(fmt.Errorf("netfault: -ports: %w", err))
			}
			d.Ports = append(d.Ports, uint16(n))
		}
		for _, a := range splitList(*from) {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return badInput(fmt.Errorf("netfault: -from: %w", err))
			}
			d.Sources = append(d.Sources, ip)
		}
		if args[0] == "drop" {
			return netfault.Add(d)
		}
		// hold: the rules last as long as this process, so that taking them
		// off is a signal to a running helper, not a new container to start.
		// With -stdin, they also end with its input: a caller that attached
		// to it (docker exec) takes them off by closing it, or by dying.
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
		eof := make(chan struct{})
		if *untilEOF {
			go func() {
				_, _ = io.Copy(io.Discard, os.Stdin)
				close(eof)
			}()
		}
		if err := netfault.Add(d); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "held")
		select {
		case <-stop:
		case <-eof:
		}
		return netfault.Remove(*id)
	case "remove":
		return netfault.Remove(*id)
	case "probe":
		out := map[string]string{}
		for _, q := range []string{"netem", "tbf"} {
			out[q] = ""
			if err := netfault.ProbeQdisc(*link, q); err != nil {
				out[q] = err.Error()
			}
		}
		return json.NewEncoder(stdout).Encode(out)
	default:
		return badInput(fmt.Errorf("netfault: unknown action %q", args[0]))
	}
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
