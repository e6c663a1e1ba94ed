// Package local runs a mesh on loopback inside this process: the control
// plane, an ingress gateway, and for every pod a fakesvc app and a builtin
// sidecar sharing the pod's own 127.x address.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/meshbench/meshbench/fakesvc"
	"github.com/meshbench/meshbench/sim/ca"
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

// Gateway is the ingress gateway every local mesh has, named as Istio's default one.
var Gateway = controlplane.Gateway

// Runtime is the local runtime.
type Runtime struct {
	// ProxylessGRPC makes the pods' gRPC calls proxyless (runtime.Spec.ProxylessGRPC).
	ProxylessGRPC bool
}

// Name implements runtime.Runtime.
func (Runtime) Name() string { return "local" }

// DataPlane implements runtime.Runtime.
func (r Runtime) DataPlane() string {
	if r.ProxylessGRPC {
		return runtime.DataPlaneProxylessGRPC
	}
	return "builtin"
}

// Start implements runtime.Runtime.
func (r Runtime) Start(ctx context.Context, spec runtime.Spec) (runtime.Mesh, error) {
	spec.ProxylessGRPC = spec.ProxylessGRPC || r.ProxylessGRPC
	m, err := start(ctx, spec)
	if err != nil {
		if m != nil {
			_ = m.Stop(context.Background())
		}
		return nil, err
	}
	return m, nil
}

// pod is one running pod: app server and sidecar.
type pod struct {
	info    *registry.Pod
	app     *fakesvc.Server
	appSrv  *http.Server
	appDone chan struct{}
	proxy   *sidecar.Sidecar
	running bool
	gate    pauseGate // PausePod (faults.go)
}

// Mesh is a running local mesh.
type Mesh struct {
	log  *slog.Logger
	seed int64
	cp   *controlplane.ControlPlane
	reg  *registry.Registry
	xds  *xdsserver.Server
	gw   xdsgen.Gateway
	dir  string // the private directory of the mesh's Unix sockets
	// accessLogDir holds one access log per proxy (runtime.Spec.AccessLogDir).
	accessLogDir string
	// collector takes the proxies' spans when tracing names one; they go
	// to traceDir when the mesh stops (runtime.Spec.TraceDir).
	collector *tracing.Collector
	traceDir  string

	mu      sync.Mutex
	pods    map[string]*pod
	gateway *sidecar.Sidecar
	stopped bool
}

func start(ctx context.Context, spec runtime.Spec) (*Mesh, error) {
	log := spec.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sn, err := newSubnet()
	if err != nil {
		return nil, err
	}
	gwIP, err := sn.alloc()
	if err != nil {
		return nil, err
	}
	reg, err := registry.New(spec.Topology, sn.alloc)
	if err != nil {
		return nil, err
	}
	gw := Gateway
	gw.IP = gwIP
	cp, err := controlplane.New(spec, reg, gw)
	if err != nil {
		return nil, err
	}
	// The mesh's sockets (xDS, and every pod's app and capture socket) live
	// in a directory only this user can enter (MkdirTemp makes it 0700).
	dir, err := os.MkdirTemp("", "meshbench-")
	if err != nil {
		return nil, err
	}
	m := &Mesh{log: log, seed: spec.Seed, cp: cp, reg: reg, xds: cp.XDS(), gw: gw, pods: map[string]*pod{}, dir: dir}
	if spec.Config.Mesh.AccessLog.File != "" {
		m.accessLogDir = spec.AccessLogDir
	}
	if col, ok := cp.TraceCollector(); ok {
		if err := m.serveCollector(sn, col, spec.TraceDir); err != nil {
			return m, err
		}
	}
	if err := cp.Start(ctx, "unix://"+filepath.Join(dir, "xds.sock")); err != nil {
		return m, err
	}
	for _, p := range reg.Pods {
		if err := m.startApp(p); err != nil {
			return m, err
		}
	}
	if err := m.push(ctx); err != nil {
		return m, err
	}
	for _, p := range reg.Pods {
		if !p.Sidecar {
			continue
		}
		if err := m.startProxy(p); err != nil {
			return m, err
		}
	}
	gwp, err := sidecar.Start(sidecar.Config{
		NodeID: m.gw.NodeID(), Router: true, IP: gwIP, XDS: m.xds.Addr(), XDSToken: cp.Token(m.gw.NodeID()),
		Workload: m.gw.Name, Namespace: m.gw.Namespace, App: m.gw.Name, Version: "unknown",
		Principal: controlplane.GatewayID,
		Log:       log, Seed: uint64(spec.Seed),
		OpenAccessLog: m.accessLogOpener(m.gw.Name),
	})
	if err != nil {
		return m, fmt.Errorf("start ingress gateway: %w", err)
	}
	m.mu.Lock()
	m.gateway = gwp
	m.mu.Unlock()
	if err := m.WaitConverged(ctx, m.Version()); err != nil {
		return m, fmt.Errorf("mesh did not converge: %w", err)
	}
	return m, nil
}

// CA is the mesh's certificate authority (for chaos: stop issuing).
func (m *Mesh) CA() *ca.CA { return m.cp.CA() }

// startApp starts a pod's app on a Unix socket of the pod's own, in the
// mesh's private directory: only its sidecar reaches it, as iptables
// interception makes sure in a real pod, and the app calls out through the
// sidecar's capture socket beside it. A pod without a sidecar listens on
// the container port of its address itself and calls the pods of a service
// directly, as through a ClusterIP.
func (m *Mesh) startApp(p *registry.Pod) error {
	appSock, outSock := m.sockets(p)
	network, listen := "unix", appSock
	cfg := m.cp.AppConfig(p, "unix:"+outSock)
	if !p.Sidecar {
		network, listen = "tcp", net.JoinHostPort(p.IP.String(), strconv.Itoa(p.Port))
		cfg.Proxy = ""
		cfg.Resolve = m.cp.Resolve
	} else if err := os.Remove(appSock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pod %s: %w", p.Name, err)
	}
	app, err := fakesvc.New(cfg)
	if err != nil {
		return fmt.Errorf("pod %s: %w", p.Name, err)
	}
	lis, err := net.Listen(network, listen)
	if err != nil {
		app.Close()
		return fmt.Errorf("pod %s: %w", p.Name, err)
	}
	p.AppAddr = lis.Addr().String()
	if network == "unix" {
		p.AppAddr = "unix:" + appSock
	}
	pd := &pod{info: p, app: app, appSrv: &http.Server{Handler: app, Protocols: fakesvc.Protocols(), ReadHeaderTimeout: 10 * time.Second}, appDone: make(chan struct{}), running: true}
	go func() {
		defer close(pd.appDone)
		// gRPC calls go to the app's gRPC server (fakesvc.Listener).
		_ = pd.appSrv.Serve(app.Listener(pd.gate.listener(lis)))
	}()
	m.mu.Lock()
	old := m.pods[p.Name]
	m.pods[p.Name] = pd
	m.mu.Unlock()
	if old != nil {
		pd.proxy = old.proxy
	}
	return nil
}

// sockets are the paths of a pod's app socket and of its sidecar's 15001
// capture socket. Pods are numbered, as socket paths are short (108 bytes).
func (m *Mesh) sockets(p *registry.Pod) (app, outbound string) {
	i := slices.Index(m.reg.Pods, p)
	return filepath.Join(m.dir, fmt.Sprintf("p%d.app", i)), filepath.Join(m.dir, fmt.Sprintf("p%d.out", i))
}

// AppClient is an HTTP client that sends as the app of pod does: to its
// sidecar's capture socket, as to a forward proxy. Nothing outside the pod
// has another way in.
func (m *Mesh) AppClient(pod string, timeout time.Duration) (*http.Client, error) {
	p, ok := m.reg.Pod(pod)
	if !ok || !p.Sidecar {
		return nil, fmt.Errorf("no pod %q with a sidecar", pod)
	}
	_, out := m.sockets(p)
	const host = "sidecar.invalid:15001"
	var d net.Dialer
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: host}),
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", out)
		},
	}}, nil
}

func (m *Mesh) startProxy(p *registry.Pod) error {
	m.mu.Lock()
	n := len(m.pods)
	m.mu.Unlock()
	_, outSock := m.sockets(p)
	if err := os.Remove(outSock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pod %s sidecar: %w", p.Name, err)
	}
	proxy, err := sidecar.Start(sidecar.Config{
		NodeID: p.NodeID(), IP: p.IP, XDS: m.xds.Addr(), XDSToken: m.cp.Token(p.NodeID()), OutboundSocket: outSock,
		Workload: p.Workload, Namespace: p.Namespace, App: p.Service, Version: p.Version,
		Principal: p.SPIFFEID(istionames.TrustDomain),
		Log:       m.log, Seed: uint64(m.seed) + uint64(n),
		OpenAccessLog: m.accessLogOpener(p.Name),
	})
	if err != nil {
		return fmt.Errorf("pod %s sidecar: %w", p.Name, err)
	}
	m.mu.Lock()
	m.pods[p.Name].proxy = proxy
	m.mu.Unlock()
	return nil
}

// push translates the current config for every proxy and publishes it as the next version.
func (m *Mesh) push(ctx context.Context) error { return m.cp.Push(ctx) }

// Entry implements runtime.Mesh.
func (m *Mesh) Entry() runtime.Entry {
	return runtime.Entry{URL: "http://" + netip.AddrPortFrom(m.gw.IP, uint16(m.gw.Port)).String()}
}

// Apply implements runtime.Mesh.
func (m *Mesh) Apply(ctx context.Context, cfg meshconfig.Config) (string, error) {
	return m.cp.Apply(ctx, cfg)
}

// Version implements runtime.Mesh.
func (m *Mesh) Version() string { return m.cp.Version() }

// XDS is the control plane, for tests and the xds command.
func (m *Mesh) XDS() *xdsserver.Server { return m.xds }

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

// KillPod implements runtime.Mesh: the app and the sidecar close their
// listeners and connections at once, and the pod leaves EDS.
func (m *Mesh) KillPod(ctx context.Context, name string) error {
	m.mu.Lock()
	pd := m.pods[name]
	if pd == nil || !pd.running {
		m.mu.Unlock()
		return fmt.Errorf("no running pod %q", name)
	}
	pd.running = false
	m.mu.Unlock()
	pd.stop()
	m.reg.SetReady(name, false)
	m.xds.ClearSnapshot(pd.info.NodeID())
	m.xds.ClearSnapshot(controlplane.ProxylessNodeID(pd.info))
	return m.push(ctx)
}

// RestartPod implements runtime.Mesh.
func (m *Mesh) RestartPod(ctx context.Context, name string) error {
	p, ok := m.reg.Pod(name)
	if !ok {
		return fmt.Errorf("no pod %q", name)
	}
	m.mu.Lock()
	pd := m.pods[name]
	if pd != nil && pd.running {
		m.mu.Unlock()
		return fmt.Errorf("pod %q is running", name)
	}
	m.mu.Unlock()
	return m.cp.Readmit(ctx, p, func() error {
		if err := m.startApp(p); err != nil {
			return err
		}
		if !p.Sidecar {
			return nil
		}
		return m.startProxy(p)
	})
}

func (pd *pod) stop() {
	if pd.proxy != nil {
		_ = pd.proxy.Close()
	}
	_ = pd.appSrv.Close()
	<-pd.appDone
	pd.app.Close()
}

// MetricsEndpoints implements runtime.Mesh.
func (m *Mesh) MetricsEndpoints() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	if m.gateway != nil {
		out[m.gw.Name] = m.gateway.MetricsURL()
	}
	for name, pd := range m.pods {
		if pd.running && pd.proxy != nil {
			out[name] = pd.proxy.MetricsURL()
		}
	}
	return out
}

// Stop implements runtime.Mesh: proxies first so that nothing routes to a
// closed app, then apps, then the control plane.
func (m *Mesh) Stop(ctx context.Context) error {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return nil
	}
	m.stopped = true
	pods := make([]*pod, 0, len(m.pods))
	for _, pd := range m.pods {
		if pd.running {
			pods = append(pods, pd)
		}
		pd.running = false
	}
	gw := m.gateway
	m.mu.Unlock()
	var errs []error
	if gw != nil {
		errs = append(errs, gw.Close())
	}
	var wg sync.WaitGroup
	for _, pd := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pd.stop()
		}()
	}
	wg.Wait()
	// The proxies sent their last spans as they closed.
	if m.collector != nil {
		errs = append(errs, m.collector.Close())
		if m.traceDir != "" {
			errs = append(errs, tracing.WriteFiles(m.traceDir, m.collector.Spans()))
		}
	}
	m.cp.Stop()
	errs = append(errs, os.RemoveAll(m.dir))
	return errors.Join(errs...)
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

// serveCollector serves the trace collector the mesh's tracing names on an
// address of its own, as Istio's Zipkin addon is a pod of its own, and
// makes it part of the proxies' config.
func (m *Mesh) serveCollector(sn *subnet, col xdsgen.Collector, dir string) error {
	ip, err := sn.alloc()
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", netip.AddrPortFrom(ip, uint16(col.Port)).String())
	if err != nil {
		return fmt.Errorf("trace collector %s: %w", col.FQDN(), err)
	}
	m.collector = tracing.ServeCollector(lis, 0)
	m.traceDir = dir
	col.Endpoint = netip.AddrPortFrom(ip, uint16(col.Port))
	m.cp.SetTraceCollector(col)
	return nil
}

// accessLogOpener sends a proxy's access log, whatever its path, to
// <accessLogDir>/<proxy>.log, appended to (a restarted pod goes on in its
// file); nil when no directory is given: the proxy opens the path itself.
func (m *Mesh) accessLogOpener(proxy string) func(string) (io.Writer, error) {
	if m.accessLogDir == "" {
		return nil
	}
	return func(string) (io.Writer, error) {
		if err := os.MkdirAll(m.accessLogDir, 0o755); err != nil {
			return nil, err
		}
		return os.OpenFile(filepath.Join(m.accessLogDir, proxy+".log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	}
}
