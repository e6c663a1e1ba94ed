// Package docker runs a mesh in real containers through testcontainers-go:
// one Docker network per run; for every pod an app container (fakesvc) and
// a sidecar container that shares its network namespace, as the containers
// of a Kubernetes pod do; an ingress gateway container whose port is
// published on 127.0.0.1 only. The control plane and the CA stay in this
// process and serve the containers on the network's gateway address, each
// proxy authenticated by a token that names its node, over a Unix socket
// bind-mounted into the proxies' containers.
//
// Inside a pod the app listens on 127.0.0.1 and the sidecar's 15001 capture
// listener too, so the app is reachable only through its sidecar's inbound
// listeners and only the pod's own app can send through 15001.
//
// Ryuk cannot run offline (its image cannot be pulled), so it is off and the
// runtime cleans up itself: everything it creates carries the run's labels,
// Stop removes it, and a later run (or `meshbench down`) removes what a
// killed meshbench left behind.
package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"golang.org/x/sync/errgroup"

	"github.com/meshbench/meshbench/fakesvc"
	"github.com/meshbench/meshbench/sim/controlplane"
	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/runtime"
	"github.com/meshbench/meshbench/sim/sidecar"
	"github.com/meshbench/meshbench/sim/tracing"
	"github.com/meshbench/meshbench/sim/xdsgen"
	"github.com/meshbench/meshbench/sim/xdsserver"
)

func init() {
	// testcontainers-go prints a banner and progress lines; the runtime logs its own.
	tclog.SetDefault(quiet{})
	// Ryuk's image cannot be pulled offline; this runtime removes what it
	// creates itself (see cleanup.go). A user who runs Ryuk may say so.
	if _, set := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); !set {
		_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
}

// Labels on everything a run creates.
const (
	LabelRun   = "meshbench.run"  // the run's id
	LabelPID   = "meshbench.pid"  // the meshbench process that owns it
	LabelHost  = "meshbench.host" // the host that process runs on
	LabelRole  = "meshbench.role" // app, sidecar, gateway, netfault
	LabelPod   = "meshbench.pod"  // the pod a container belongs to
	LabelImage = "meshbench.image"
)

// adminPort is the app's behaviour endpoint, on the pod's loopback.
const adminPort = 15081

// xdsMount is where a proxy container sees the directory of the control
// plane's socket.
const xdsMount = "/var/run/meshbench"

// TokenEnv carries a proxy's xDS credential into its container (read by `meshbench proxy`).
const TokenEnv = "MESHBENCH_XDS_TOKEN"

// Runtime is the docker runtime.
type Runtime struct {
	// Binary is the static meshbench executable the images hold; empty: this
	// process's own executable.
	Binary string
}

// Name implements runtime.Runtime.
func (Runtime) Name() string { return "docker" }

// DataPlane implements runtime.Runtime.
func (Runtime) DataPlane() string { return "builtin" }

// MaxRate implements runtime.RateLimiter. Every hop crosses a veth and the
// bridge and the gateway a userland port proxy, on the same two cores as
// the load generator: at 500/s the docker catalog saw seconds-long stalls
// (canary through HTTPRoutes p99 1.02 s; no-mesh-config p99 2.1 s, whose
// stalled pods LEAST_REQUEST then spared, v1 64.2% against 2/3, p=0.00017),
// where the same scenarios hold at 200/s. A steady scenario asked more runs
// at 250/s for longer, the same requests; chaos scenarios keep their rate.
func (Runtime) MaxRate() float64 { return 250 }

// Available reports why no engine can be used, or nil.
func Available(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cli, err := newClient(ctx)
	if err != nil {
		return err
	}
	return cli.Close()
}

func newClient(ctx context.Context) (*testcontainers.DockerClient, error) {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w (make docker-engine starts one here): %w", ErrNoEngine, err)
	}
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("%w (make docker-engine starts one here): %w", ErrNoEngine, err)
	}
	return cli, nil
}

// Start implements runtime.Runtime.
func (r Runtime) Start(ctx context.Context, spec runtime.Spec) (runtime.Mesh, error) {
	m, err := r.start(ctx, spec)
	if err != nil {
		if m != nil {
			_ = m.Stop(context.Background())
		}
		return nil, err
	}
	return m, nil
}

// pod is one pod's containers.
type pod struct {
	info *registry.Pod
	// sandbox holds the network namespace; it runs as long as the mesh.
	sandbox      string
	appC         testcontainers.Container
	app, sidecar string // container ids
	running      bool
}

// Mesh is a running docker mesh.
type Mesh struct {
	log    *slog.Logger
	seed   int64
	cli    *testcontainers.DockerClient
	run    string
	labels map[string]string
	images Images
	cp     *controlplane.ControlPlane
	reg    *registry.Registry
	xds    *xdsserver.Server
	gw     xdsgen.Gateway
	net    netInfo
	entry  string
	xdsDir string            // the directory of the control plane's socket
	qdisc  map[string]string // qdisc kind → why it cannot be used ("" usable)
	// collector takes the proxies' spans when tracing names one; they go
	// to traceDir when the mesh stops (runtime.Spec.TraceDir).
	collector *tracing.Collector
	traceDir  string
	// accessLogDir, bind-mounted into the proxies' containers, holds one
	// access log per proxy when meshConfig.accessLogFile is set
	// (runtime.Spec.AccessLogDir); "" leaves the path to each proxy.
	accessLogDir string

	mu      sync.Mutex
	pods    map[string]*pod
	gateway string // container id
	stopped bool
	faults  int // ids of packet-drop faults
}

func (r Runtime) start(ctx context.Context, spec runtime.Spec) (*Mesh, error) {
	log := spec.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	binary := r.Binary
	if binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		binary = exe
	}
	cli, err := newClient(ctx)
	if err != nil {
		return nil, err
	}
	if err := ReapDead(ctx, cli, log); err != nil {
		log.Warn("removing what dead runs left behind", "err", err)
	}
	t0 := time.Now()
	imgs, err := EnsureImages(ctx, cli, binary)
	if err != nil {
		cli.Close()
		return nil, err
	}
	log.Info("images", "sidecar", imgs.Sidecar, "app", imgs.App, "built", imgs.Built, "in", time.Since(t0).Round(time.Millisecond))
	id, err := newRunID()
	if err != nil {
		cli.Close()
		return nil, err
	}
	host, _ := os.Hostname()
	m := &Mesh{
		log: log.With("run", id), seed: spec.Seed, cli: cli, run: id, images: imgs, pods: map[string]*pod{},
		labels: map[string]string{LabelRun: id, LabelPID: strconv.Itoa(os.Getpid()), LabelHost: host},
	}
	if m.net, err = createNetwork(ctx, cli, "meshbench-"+id, m.labels); err != nil {
		return m, err
	}
	alloc := m.net.allocator()
	gwIP, err := alloc()
	if err != nil {
		return m, err
	}
	if m.reg, err = registry.New(spec.Topology, alloc); err != nil {
		return m, err
	}
	m.gw = controlplane.Gateway
	m.gw.IP = gwIP
	if m.cp, err = controlplane.New(spec, m.reg, m.gw); err != nil {
		return m, err
	}
	m.xds = m.cp.XDS()
	if spec.Config.Mesh.AccessLog.File != "" && spec.AccessLogDir != "" {
		if m.accessLogDir, err = filepath.Abs(spec.AccessLogDir); err != nil {
			return m, err
		}
		if err := os.MkdirAll(m.accessLogDir, 0o755); err != nil {
			return m, err
		}
	}
	if col, ok := m.cp.TraceCollector(); ok {
		if err := m.serveCollector(col, spec.TraceDir); err != nil {
			return m, err
		}
	}
	// The control plane listens on a Unix socket in a directory only root
	// may enter, bind-mounted into the proxies' containers: it listens on
	// no network at all.
	if m.xdsDir, err = os.MkdirTemp("", "meshbench-xds-"); err != nil {
		return m, err
	}
	if err := m.cp.Start(ctx, "unix://"+filepath.Join(m.xdsDir, "xds.sock")); err != nil {
		return m, err
	}
	for _, p := range m.reg.Pods {
		p.AppAddr = m.appListen(p)
	}
	if err := m.cp.Push(ctx); err != nil {
		return m, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, p := range m.reg.Pods {
		g.Go(func() error { return m.startPod(gctx, p) })
	}
	g.Go(func() error { return m.startGateway(gctx) })
	if err := g.Wait(); err != nil {
		return m, err
	}
	m.qdisc = m.probeQdiscs(ctx)
	if err := m.WaitConverged(ctx, m.Version()); err != nil {
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return m, fmt.Errorf("mesh did not converge: %w%s", err, m.exited(ectx))
	}
	m.log.Info("docker mesh up", "network", m.net.name, "subnet", m.net.prefix, "pods", len(m.reg.Pods), "entry", m.entry, "in", time.Since(t0).Round(time.Millisecond))
	return m, nil
}

// appListen is where a pod's app listens: loopback behind a sidecar, the
// pod IP without one.
func (m *Mesh) appListen(p *registry.Pod) string {
	if p.Sidecar {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port))
	}
	return net.JoinHostPort(p.IP.String(), strconv.Itoa(p.Port))
}

func (m *Mesh) name(parts ...string) string {
	return "meshbench-" + m.run + "-" + strings.Join(parts, "-")
}

func (m *Mesh) labelsFor(role, podName string) map[string]string {
	out := map[string]string{LabelRole: role}
	for k, v := range m.labels {
		out[k] = v
	}
	if podName != "" {
		out[LabelPod] = podName
	}
	return out
}

// appArgs is the command line of a pod's app, from the topology.
func (m *Mesh) appArgs(p *registry.Pod) []string {
	cfg := m.cp.AppConfig(p, "")
	args := []string{
		"-service", cfg.Service, "-version", cfg.Version, "-pod", cfg.Pod, "-namespace", cfg.Namespace,
		"-listen", m.appListen(p), "-admin", net.JoinHostPort("127.0.0.1", strconv.Itoa(adminPort)),
		"-latency", time.Duration(cfg.Latency.Mean).String(), "-latency-stddev", time.Duration(cfg.Latency.StdDev).String(),
		"-error-rate", strconv.FormatFloat(cfg.ErrorRate, 'g', -1, 64), "-seed", strconv.FormatInt(cfg.Seed, 10),
	}
	if cfg.Latency.Dist != "" {
		args = append(args, "-latency-dist", cfg.Latency.Dist)
	}
	if cfg.ErrorStatus != 0 {
		args = append(args, "-error-status", strconv.Itoa(cfg.ErrorStatus))
	}
	if cfg.OnCalleeError != "" {
		args = append(args, "-on-callee-error", cfg.OnCalleeError)
	}
	if cfg.GRPCCode != 0 {
		args = append(args, "-grpc-error-code", strconv.Itoa(cfg.GRPCCode))
	}
	args = append(args, fakesvc.GRPCCallArgs(cfg.GRPCCall)...)
	if cfg.TCP {
		args = append(args, "-tcp")
	}
	var calls, eps []string
	for _, c := range cfg.Calls {
		calls = append(calls, c.String())
		if !p.Sidecar {
			// No sidecar: the app calls the service's pods itself, as a
			// ClusterIP would pick them.
			var addrs []string
			for _, q := range m.reg.PodsOf(c.Service) {
				addrs = append(addrs, netip.AddrPortFrom(q.IP, uint16(q.Port)).String())
			}
			if len(addrs) > 0 {
				eps = append(eps, c.Service+":"+strconv.Itoa(c.Port)+"="+strings.Join(addrs, "|"))
			}
		}
	}
	if len(calls) > 0 {
		args = append(args, "-calls", strings.Join(calls, ","))
	}
	if p.Sidecar {
		args = append(args, "-proxy", net.JoinHostPort("127.0.0.1", strconv.Itoa(istionames.VirtualOutboundPort)))
	} else if len(eps) > 0 {
		args = append(args, "-endpoints", strings.Join(eps, ","))
	}
	return args
}

// podSeed is a pod's own seed for its proxy's load balancer, from the
// run's and the pod's name. Unsigned, as the proxy's -seed flag is: a signed
// hash of a long name wraps negative, and the proxy refuses to start.
func podSeed(run int64, name string) uint64 {
	seed := uint64(run)
	for _, b := range []byte(name) {
		seed = seed*31 + uint64(b)
	}
	return seed
}

func (m *Mesh) proxyArgs(proxy, nodeID string, ip netip.Addr, router bool, workload, ns, app, version, principal string, seed uint64) []string {
	args := []string{
		"-node-id", nodeID, "-ip", ip.String(), "-xds", "unix://" + xdsMount + "/xds.sock",
		"-workload", workload, "-namespace", ns, "-app", app, "-version", version, "-principal", principal,
		"-seed", strconv.FormatUint(seed, 10),
	}
	if router {
		args = append(args, "-router", "-outbound-ip", "")
	}
	if m.accessLogDir != "" {
		args = append(args, "-access-log-file", accessLogMount+"/"+proxy+".log")
	}
	return args
}

// accessLogMount is where a proxy's container sees the run's access-log folder.
const accessLogMount = "/meshbench-access-logs"

// proxyBinds are a proxy container's mounts: the control plane's socket,
// and the access-log folder when there is one.
func (m *Mesh) proxyBinds() []string {
	binds := []string{m.xdsDir + ":" + xdsMount + ":ro"}
	if m.accessLogDir != "" {
		binds = append(binds, m.accessLogDir+":"+accessLogMount)
	}
	return binds
}

// startPod starts a pod as a kubelet does: a sandbox container holds the
// pod's network namespace (its address on the run's network), and the app
// and its sidecar join it. A crashed app or sidecar then leaves the
// namespace in place, as a pod's containers do when they die (the kubelet
// restarts them in the same sandbox): its address refuses connections at
// once, and a restart touches no network.
func (m *Mesh) startPod(ctx context.Context, p *registry.Pod) error {
	sandbox, err := m.create(ctx, testcontainers.ContainerRequest{
		Name: m.name(p.Name, "pod"), Image: m.images.App, Entrypoint: []string{"/meshbench", "pause"},
		Labels:   m.labelsFor("pod", p.Name),
		Networks: []string{m.net.name}, NetworkAliases: map[string][]string{m.net.name: {p.Name}},
		EndpointSettingsModifier: func(es map[string]*network.EndpointSettings) {
			if e := es[m.net.name]; e != nil {
				e.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: p.IP}
			}
		},
	})
	if err != nil {
		return fmt.Errorf("pod %s sandbox: %w", p.Name, err)
	}
	sandboxID := sandbox.GetContainerID()
	inPod := func(hc *container.HostConfig) { hc.NetworkMode = container.NetworkMode("container:" + sandboxID) }
	appC, err := m.create(ctx, testcontainers.ContainerRequest{
		Name: m.name(p.Name, "app"), Image: m.images.App, Cmd: m.appArgs(p), Labels: m.labelsFor("app", p.Name),
		HostConfigModifier: inPod,
	})
	if err != nil {
		return fmt.Errorf("pod %s app: %w", p.Name, err)
	}
	appID := appC.GetContainerID()
	pd := &pod{info: p, sandbox: sandboxID, appC: appC, app: appID}
	m.mu.Lock()
	m.pods[p.Name] = pd
	m.mu.Unlock()
	if p.Sidecar {
		sc, err := m.create(ctx, testcontainers.ContainerRequest{
			Name: m.name(p.Name, "sidecar"), Image: m.images.Sidecar, Labels: m.labelsFor("sidecar", p.Name),
			Cmd: m.proxyArgs(p.Name, p.NodeID(), p.IP, false, p.Workload, p.Namespace, p.Service, p.Version, p.SPIFFEID(istionames.TrustDomain), podSeed(m.seed, p.Name)),
			Env: map[string]string{TokenEnv: m.cp.Token(p.NodeID())},
			HostConfigModifier: func(hc *container.HostConfig) {
				inPod(hc)
				hc.Binds = m.proxyBinds()
			},
		})
		if err != nil {
			return fmt.Errorf("pod %s sidecar: %w", p.Name, err)
		}
		m.mu.Lock()
		pd.sidecar = sc.GetContainerID()
		m.mu.Unlock()
	}
	m.mu.Lock()
	pd.running = true
	m.mu.Unlock()
	return nil
}

// TraceReceiver is the collector's store of the spans the proxies sent
// so far, nil when the mesh's tracing names no collector; the spans go on
// arriving until Stop.
func (m *Mesh) TraceReceiver() *tracing.Receiver {
	if m.collector == nil {
		return nil
	}
	return m.collector.Receiver
}

// serveCollector serves the trace collector the mesh's tracing names on
// the network's host address, which only the run's containers and this
// host reach (the address of Istio's Zipkin addon pod, as it were), and
// makes it part of the proxies' config.
func (m *Mesh) serveCollector(col xdsgen.Collector, dir string) error {
	lis, err := net.Listen("tcp", netip.AddrPortFrom(m.net.host, 0).String())
	if err != nil {
		return fmt.Errorf("trace collector %s: %w", col.FQDN(), err)
	}
	m.collector = tracing.ServeCollector(lis, 0)
	m.traceDir = dir
	col.Endpoint = netip.MustParseAddrPort(lis.Addr().String())
	m.cp.SetTraceCollector(col)
	return nil
}

// proxyStopGrace is how long a proxy has to send its last spans and write
// its last access log lines on SIGTERM.
const proxyStopGrace = 10 * time.Second

// stopProxies stops the sidecars and the gateway with SIGTERM, all at once,
// so that each sends the spans and writes the access log lines it still
// holds before the run's containers are removed (with SIGKILL).
func (m *Mesh) stopProxies(ctx context.Context) {
	m.mu.Lock()
	ids := []string{m.gateway}
	for _, pd := range m.pods {
		ids = append(ids, pd.sidecar)
	}
	m.mu.Unlock()
	grace := int(proxyStopGrace.Seconds())
	var wg sync.WaitGroup
	for _, id := range ids {
		if id == "" {
			continue
		}
		wg.Go(func() {
			if _, err := m.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &grace}); err != nil && !isNotFound(err) {
				m.log.Warn("stopping a proxy for its last spans", "container", id[:12], "err", err)
			}
		})
	}
	wg.Wait()
}

// startGateway starts the ingress gateway with its port published on 127.0.0.1 only.
func (m *Mesh) startGateway(ctx context.Context) error {
	port := strconv.Itoa(m.gw.Port) + "/tcp"
	req := testcontainers.ContainerRequest{
		Name: m.name("gateway"), Image: m.images.Sidecar, Labels: m.labelsFor("gateway", ""),
		Cmd:          m.proxyArgs(m.gw.Name, m.gw.NodeID(), m.gw.IP, true, m.gw.Name, m.gw.Namespace, m.gw.Name, "unknown", controlplane.GatewayID, uint64(m.seed)),
		Env:          map[string]string{TokenEnv: m.cp.Token(m.gw.NodeID())},
		Networks:     []string{m.net.name},
		ExposedPorts: []string{port},
		HostConfigModifier: func(hc *container.HostConfig) {
			// Published on loopback only: the load enters from this host, no one else's.
			hc.PortBindings = network.PortMap{network.MustParsePort(port): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "0"}}}
			hc.Binds = m.proxyBinds()
		},
		EndpointSettingsModifier: func(es map[string]*network.EndpointSettings) {
			if e := es[m.net.name]; e != nil {
				e.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: m.gw.IP}
			}
		},
	}
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true, Logger: quiet{}})
	if c != nil {
		m.mu.Lock()
		m.gateway = c.GetContainerID()
		m.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("ingress gateway: %w", err)
	}
	ins, err := m.cli.ContainerInspect(ctx, c.GetContainerID(), client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	for p, bs := range ins.Container.NetworkSettings.Ports {
		if p.String() != port {
			continue
		}
		for _, b := range bs {
			if b.HostIP.String() == "127.0.0.1" && b.HostPort != "" {
				m.entry = "http://127.0.0.1:" + b.HostPort
			}
		}
	}
	if m.entry == "" {
		return fmt.Errorf("ingress gateway: port %s is not published on 127.0.0.1", port)
	}
	return nil
}

// create creates and starts a container. Stop removes it by its labels,
// also when it failed to start.
func (m *Mesh) create(ctx context.Context, req testcontainers.ContainerRequest) (testcontainers.Container, error) {
	return testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true, Logger: quiet{}})
}

// Entry implements runtime.Mesh.
func (m *Mesh) Entry() runtime.Entry { return runtime.Entry{URL: m.entry} }

// Apply implements runtime.Mesh.
func (m *Mesh) Apply(ctx context.Context, cfg meshconfig.Config) (string, error) {
	return m.cp.Apply(ctx, cfg)
}

// Version implements runtime.Mesh.
func (m *Mesh) Version() string { return m.cp.Version() }

// Run is the run's id, as its labels carry it.
func (m *Mesh) Run() string { return m.run }

// Images are the images the pods run.
func (m *Mesh) Images() Images { return m.images }

// XDS is the control plane, for tests.
func (m *Mesh) XDS() *xdsserver.Server { return m.xds }

// Containers maps each pod to its app and sidecar container ids, for tests.
func (m *Mesh) Containers(pod string) (app, sidecar string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if pd := m.pods[pod]; pd != nil {
		return pd.app, pd.sidecar
	}
	return "", ""
}

// running reports whether a pod runs.
func (m *Mesh) running(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	pd := m.pods[name]
	return pd != nil && pd.running
}

// WaitConverged implements runtime.Mesh.
func (m *Mesh) WaitConverged(ctx context.Context, version string) error {
	return m.xds.WaitConverged(ctx, m.cp.Nodes(m.running), version)
}

// Pods implements runtime.Mesh.
func (m *Mesh) Pods() []runtime.Pod { return m.cp.Pods(m.running) }

// MetricsEndpoints implements runtime.Mesh: this host reaches the
// sidecars' :15090 on the run's network.
func (m *Mesh) MetricsEndpoints() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	url := func(ip netip.Addr) string {
		return "http://" + netip.AddrPortFrom(ip, sidecar.PrometheusPort).String() + "/stats/prometheus"
	}
	out := map[string]string{}
	if m.gateway != "" {
		out[m.gw.Name] = url(m.gw.IP)
	}
	for name, pd := range m.pods {
		if pd.running && pd.sidecar != "" {
			out[name] = url(pd.info.IP)
		}
	}
	return out
}

// kill sends SIGKILL to a pod's containers, sidecar first.
func (m *Mesh) kill(ctx context.Context, name string) (*pod, error) {
	m.mu.Lock()
	pd := m.pods[name]
	if pd == nil || !pd.running {
		m.mu.Unlock()
		return nil, fmt.Errorf("no running pod %q", name)
	}
	pd.running = false
	m.mu.Unlock()
	var errs []error
	for _, id := range []string{pd.sidecar, pd.app} {
		if id == "" {
			continue
		}
		if _, err := m.cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
			errs = append(errs, err)
		}
	}
	m.xds.ClearSnapshot(pd.info.NodeID())
	return pd, errors.Join(errs...)
}

// KillPod implements runtime.Mesh: docker kill (SIGKILL) of the pod's
// containers, and the pod leaves EDS.
func (m *Mesh) KillPod(ctx context.Context, name string) error {
	if _, err := m.kill(ctx, name); err != nil {
		return err
	}
	return m.cp.SetPodReady(ctx, name, false)
}

// RestartPod implements runtime.Mesh: the same containers start again in
// the pod's sandbox, so the pod keeps its name, address and identity, and
// it is ready once its sidecar is.
func (m *Mesh) RestartPod(ctx context.Context, name string) error {
	m.mu.Lock()
	pd := m.pods[name]
	if pd == nil {
		m.mu.Unlock()
		return fmt.Errorf("no pod %q", name)
	}
	if pd.running {
		m.mu.Unlock()
		return fmt.Errorf("pod %q is running", name)
	}
	m.mu.Unlock()
	start := func() error {
		for _, id := range []string{pd.app, pd.sidecar} {
			if id == "" {
				continue
			}
			if _, err := m.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
				return fmt.Errorf("restart %s: %w", name, err)
			}
		}
		return nil
	}
	if err := m.cp.Readmit(ctx, pd.info, start); err != nil {
		return err
	}
	m.mu.Lock()
	pd.running = true
	m.mu.Unlock()
	return nil
}

// Stop implements runtime.Mesh: every container and the network of the
// run, by its label, then the control plane.
func (m *Mesh) Stop(ctx context.Context) error {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return nil
	}
	m.stopped = true
	for _, pd := range m.pods {
		pd.running = false
	}
	m.mu.Unlock()
	// Removal runs to its end whatever the caller's context: a run that was
	// interrupted must still leave nothing behind.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	var errs []error
	if m.collector != nil || m.accessLogDir != "" {
		m.stopProxies(rctx)
	}
	if m.run != "" {
		errs = append(errs, RemoveRun(rctx, m.cli, m.run))
	}
	if m.collector != nil {
		errs = append(errs, m.collector.Close())
		if m.traceDir != "" {
			errs = append(errs, tracing.WriteFiles(m.traceDir, m.collector.Spans()))
		}
	}
	if m.cp != nil {
		m.cp.Stop()
	}
	if m.xdsDir != "" {
		errs = append(errs, os.RemoveAll(m.xdsDir))
	}
	errs = append(errs, m.cli.Close())
	return errors.Join(errs...)
}
