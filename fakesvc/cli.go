package fakesvc

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/sim/registry"
)

// Flags is a command line read by ParseFlags: the instance's config, where
// it serves, and where it takes behaviour changes.
type Flags struct {
	Config Config
	Listen string
	// Admin, when set, serves PUT /behaviour (a Behaviour as JSON) there:
	// bind it to loopback inside the pod, so only the pod itself (docker
	// exec) can change the app.
	Admin string
}

// Behaviour is a change of a serving instance's service time and errors,
// as the admin endpoint takes it; a nil field keeps the current value.
type Behaviour struct {
	Latency     *registry.Latency `json:"latency,omitempty"`
	ErrorRate   *float64          `json:"errorRate,omitempty"`
	ErrorStatus int               `json:"errorStatus,omitempty"`
}

// ErrFlagsReported marks flag errors the flag package has already printed.
var ErrFlagsReported = errors.New("bad flags")

// ParseFlags reads the command line of a fakesvc instance into a validated
// configuration; usage and flag errors go to out.
func ParseFlags(name string, args []string, out io.Writer) (Flags, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		f           Flags
		calls       string
		endpoints   string
		latency     time.Duration
		stddev      time.Duration
		dist        string
		errorStatus int
		grpcDL      time.Duration
		grpcGap     time.Duration
	)
	cfg := &f.Config
	hostname, _ := os.Hostname()
	fs.StringVar(&cfg.Service, "service", "", "service name (required), e.g. order")
	fs.StringVar(&cfg.Version, "version", "v1", "version label of this instance")
	fs.StringVar(&cfg.Pod, "pod", hostname, "pod name of this instance")
	fs.StringVar(&cfg.Namespace, "namespace", DefaultNamespace, "namespace of this instance")
	fs.StringVar(&f.Listen, "listen", ":8080", "address to serve on")
	fs.StringVar(&f.Admin, "admin", "", "address of the behaviour endpoint (PUT /behaviour); empty: none")
	fs.StringVar(&cfg.Proxy, "proxy", "", "sidecar outbound address host:port (empty: call services directly)")
	fs.StringVar(&calls, "calls", "", `downstream calls made in order on each request, e.g. "payment:80/pay,other:80/x"`)
	fs.StringVar(&endpoints, "endpoints", "", `without -proxy: the pods behind each called service, as a ClusterIP would pick them, e.g. "payment:80=10.0.0.5:8080|10.0.0.6:8080"`)
	fs.DurationVar(&latency, "latency", 5*time.Millisecond, "mean service time")
	fs.DurationVar(&stddev, "latency-stddev", 0, "service time spread (normal: standard deviation; uniform: half-width)")
	fs.StringVar(&dist, "latency-dist", "fixed", "service time distribution: fixed, normal, exponential or uniform")
	fs.Float64Var(&cfg.ErrorRate, "error-rate", 0, "share of requests answered with -error-status, in [0,1]")
	fs.IntVar(&errorStatus, "error-status", DefaultErrorStatus, "status of injected errors")
	fs.StringVar(&cfg.OnCalleeError, "on-callee-error", OnCalleeErrorFail, "when a call fails: fail (pass the failure up) or degrade (answer 200 with a partial body)")
	fs.IntVar(&cfg.GRPCCode, "grpc-error-code", int(DefaultGRPCCode), "gRPC status of injected errors on gRPC calls, in 1..16")
	fs.DurationVar(&grpcDL, "grpc-deadline", 0, "deadline of each gRPC call (sent as grpc-timeout); 0: none")
	fs.StringVar(&cfg.GRPCCall.Method, "grpc-method", registry.GRPCMethodUnary, "echo method of the gRPC calls: Unary or Stream")
	fs.IntVar(&cfg.GRPCCall.Count, "grpc-stream-count", 0, "replies a Stream call asks for (0: the server's default, 3)")
	fs.DurationVar(&grpcGap, "grpc-stream-interval", 0, "pause between a Stream call's replies")
	fs.BoolVar(&cfg.TCP, "tcp", false, "serve the raw TCP echo (one line in, the reply as one JSON line out) instead of HTTP")
	fs.Int64Var(&cfg.Seed, "seed", 0, "seed of the latency/error random stream")
	seedByPod := fs.Bool("seed-by-pod", false, "mix the pod name into -seed, so that the replicas of one Deployment, started with the same arguments, draw different streams")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, err
		}
		return f, fmt.Errorf("%w: %w", ErrFlagsReported, err)
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.Service == "" {
		return f, errors.New("-service is required")
	}
	if latency < 0 || stddev < 0 {
		return f, errors.New("-latency and -latency-stddev must not be negative")
	}
	cs, err := ParseCalls(calls)
	if err != nil {
		return f, fmt.Errorf("-calls: %w", err)
	}
	cfg.Calls = cs
	if endpoints != "" {
		eps, err := parseEndpoints(endpoints)
		if err != nil {
			return f, fmt.Errorf("-endpoints: %w", err)
		}
		cfg.Resolve = eps.resolve
	}
	if *seedByPod {
		cfg.Seed = PodSeed(cfg.Seed, cfg.Pod)
	}
	cfg.Latency = registry.Latency{Mean: units.Duration(latency), StdDev: units.Duration(stddev), Dist: dist}
	cfg.ErrorStatus = errorStatus
	cfg.GRPCCall.Deadline, cfg.GRPCCall.Interval = units.Duration(grpcDL), units.Duration(grpcGap)
	// Validate everything New checks now, so a bad flag exits 2.
	s, err := New(*cfg)
	if err != nil {
		return f, err
	}
	s.Close()
	return f, nil
}

// staticEndpoints maps "service:port" to the addresses behind it.
type staticEndpoints map[string][]string

func parseEndpoints(s string) (staticEndpoints, error) {
	out := staticEndpoints{}
	for _, item := range strings.Split(s, ",") {
		key, addrs, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want service:port=host:port|host:port", item)
		}
		if _, _, err := net.SplitHostPort(key); err != nil {
			return nil, fmt.Errorf("%q: %w", key, err)
		}
		for _, a := range strings.Split(addrs, "|") {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return nil, fmt.Errorf("%q: %w", a, err)
			}
			out[key] = append(out[key], a)
		}
	}
	return out, nil
}

func (e staticEndpoints) resolve(service string, port int) (string, error) {
	addrs := e[net.JoinHostPort(service, strconv.Itoa(port))]
	if len(addrs) == 0 {
		return "", fmt.Errorf("no endpoints for %s:%d", service, port)
	}
	return addrs[rand.IntN(len(addrs))], nil
}

// Serve runs an instance until ctx ends, then shuts it down gracefully.
func Serve(ctx context.Context, f Flags) error {
	svc, err := New(f.Config)
	if err != nil {
		return err
	}
	defer svc.Close()
	servers := []*http.Server{{Addr: f.Listen, Handler: svc, Protocols: Protocols(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}}
	if f.Admin != "" {
		servers = append(servers, &http.Server{Addr: f.Admin, Handler: svc.adminHandler(), ReadHeaderTimeout: 10 * time.Second})
	}
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() {
			if i > 0 {
				errc <- srv.ListenAndServe()
				return
			}
			// The app's port: gRPC calls go to the gRPC server (Listener).
			l, err := net.Listen("tcp", srv.Addr)
			if err != nil {
				errc <- err
				return
			}
			errc <- srv.Serve(svc.Listener(l))
		}()
	}
	log.Printf("fakesvc %s/%s pod %s listening on %s", f.Config.Service, f.Config.Version, f.Config.Pod, f.Listen)
	select {
	case err := <-errc:
		for _, srv := range servers {
			_ = srv.Close()
		}
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown: %w", err))
		}
	}
	for range servers {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// adminHandler takes behaviour changes.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /behaviour", func(w http.ResponseWriter, r *http.Request) {
		var b Behaviour
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := s.Apply(b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// Apply changes what b sets.
func (s *Server) Apply(b Behaviour) error {
	if b.Latency != nil {
		if err := s.SetLatency(*b.Latency); err != nil {
			return err
		}
	}
	if b.ErrorRate != nil || b.ErrorStatus != 0 {
		st := s.settings.Load()
		rate, status := st.errorRate, st.errorStatus
		if b.ErrorRate != nil {
			rate = *b.ErrorRate
		}
		if b.ErrorStatus != 0 {
			status = b.ErrorStatus
		}
		return s.SetErrors(rate, status)
	}
	return nil
}

// PodSeed is a pod's own seed from a mesh's: the seed of each pod's
// latency and error stream, so that replicas draw independent streams.
func PodSeed(seed int64, pod string) int64 {
	for _, b := range []byte(pod) {
		seed = seed*31 + int64(b)
	}
	return seed
}

// GRPCCallArgs are the flags that give an instance g, the container
// runtimes' command line for it (none for the defaults).
func GRPCCallArgs(g registry.GRPCCall) []string {
	var args []string
	if g.Deadline > 0 {
		args = append(args, "-grpc-deadline", g.Deadline.D().String())
	}
	if g.Method != "" {
		args = append(args, "-grpc-method", g.Method)
	}
	if g.Count != 0 {
		args = append(args, "-grpc-stream-count", strconv.Itoa(g.Count))
	}
	if g.Interval > 0 {
		args = append(args, "-grpc-stream-interval", g.Interval.D().String())
	}
	return args
}
