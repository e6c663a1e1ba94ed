// Package controlplane is the part of a mesh that every runtime built on our
// own control plane shares (local, docker): the service registry, the CA and
// the workload certificates with their rotation, the translation of the
// Istio config into per-proxy snapshots, the ADS server they are served
// from, and the EDS redirects that network faults make. A runtime adds the
// pods: where the apps and the sidecars run and how they are reached.
package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"

	"github.com/meshbench/meshbench/fakesvc"
	"github.com/meshbench/meshbench/sim/ca"
	"github.com/meshbench/meshbench/sim/istionames"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/runtime"
	"github.com/meshbench/meshbench/sim/xdsgen"
	"github.com/meshbench/meshbench/sim/xdsserver"
)

// Gateway is the ingress gateway every mesh has, named as Istio's default one.
var Gateway = xdsgen.Gateway{
	Name: "istio-ingressgateway", Namespace: "istio-system", Port: 8080,
	Labels: map[string]string{"istio": "ingressgateway", "app": "istio-ingressgateway"},
}

// GatewayID is the identity of Istio's default ingress gateway.
const GatewayID = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"

// ControlPlane is a mesh's control plane: registry, CA, translator and ADS server.
type ControlPlane struct {
	log  *slog.Logger
	seed int64
	reg  *registry.Registry
	xds  *xdsserver.Server
	gw   xdsgen.Gateway
	// ca issues the workload certificates; foreign is another trust domain's
	// CA for pods that must hold a cert the mesh does not trust.
	ca, foreign *ca.CA
	tokens      *xdsserver.Tokens
	stopRotate  chan struct{}
	rotateDone  chan struct{}

	mu      sync.Mutex
	certs   map[string]*ca.Cert // by node id
	cfg     meshconfig.Config
	version int
	// redirects maps a pod to the address its endpoint takes in the EDS of
	// each caller: caller (pod or gateway name) → host:port; "" means every caller.
	redirects map[string]map[string]string
	stopped   bool
	// proxyless makes the gRPC calls of pods proxyless (proxyless.go).
	proxyless bool
	// collector is the trace collector the runtime serves, if any.
	collector *xdsgen.Collector
}

// New makes the control plane of a mesh whose pods reg holds and whose
// gateway is gw (with its address), and issues every proxy its certificate.
// Start serves it.
func New(spec runtime.Spec, reg *registry.Registry, gw xdsgen.Gateway) (*ControlPlane, error) {
	log := spec.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tokens, err := xdsserver.NewTokens()
	if err != nil {
		return nil, err
	}
	c := &ControlPlane{log: log, seed: spec.Seed, reg: reg, gw: gw, cfg: spec.Config, certs: map[string]*ca.Cert{}, tokens: tokens, proxyless: spec.ProxylessGRPC}
	if err := c.checkProxyless(); err != nil {
		return nil, err
	}
	if c.ca, err = ca.New(istionames.TrustDomain, spec.Config.Mesh.CertTTL); err != nil {
		return nil, err
	}
	if c.foreign, err = ca.New("evil.local", spec.Config.Mesh.CertTTL); err != nil {
		return nil, err
	}
	if err := c.issueAll(); err != nil {
		return nil, err
	}
	c.xds = xdsserver.New(log.With("component", "xds"))
	c.xds.Authenticate(tokens)
	return c, nil
}

// TraceCollector is the collector the mesh's tracing providers name
// (xdsgen.CollectorFor), for the runtime to serve; false when none does.
func (c *ControlPlane) TraceCollector() (xdsgen.Collector, bool) {
	return xdsgen.CollectorFor(c.cfg.Mesh.TracingOrDefault(), c.reg)
}

// SetTraceCollector makes the collector the runtime serves, at
// col.Endpoint, part of every proxy's config from the next push on.
func (c *ControlPlane) SetTraceCollector(col xdsgen.Collector) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.collector = &col
}

// Start serves ADS on addr (host:port) and starts rotating certificates
// when the mesh config gives them a lifetime. The runtime pushes the first
// config once it knows where the apps listen.
func (c *ControlPlane) Start(ctx context.Context, addr string) error {
	if err := c.xds.Start(ctx, addr); err != nil {
		return err
	}
	if ttl := c.cfg.Mesh.CertTTL; ttl > 0 {
		c.stopRotate, c.rotateDone = make(chan struct{}), make(chan struct{})
		go c.rotate(ttl)
	}
	return nil
}

// Stop stops the rotation and the ADS server. It is safe to call more than once.
func (c *ControlPlane) Stop() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.stopped = true
	c.mu.Unlock()
	if c.stopRotate != nil {
		close(c.stopRotate)
		<-c.rotateDone
	}
	c.xds.Stop()
}

// Stopped reports whether Stop was called.
func (c *ControlPlane) Stopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

// Registry is the mesh's service registry.
func (c *ControlPlane) Registry() *registry.Registry { return c.reg }

// XDS is the ADS server.
func (c *ControlPlane) XDS() *xdsserver.Server { return c.xds }

// CA is the mesh's certificate authority.
func (c *ControlPlane) CA() *ca.CA { return c.ca }

// Gateway is the mesh's ingress gateway.
func (c *ControlPlane) Gateway() xdsgen.Gateway { return c.gw }

// Token is the credential a proxy with this node id presents on its ADS
// stream; the server serves a stream only the node its token names.
func (c *ControlPlane) Token(node string) string { return c.tokens.Issue(node) }

// issueAll gives every proxy a fresh certificate: from the mesh CA, or for a
// pod marked so, from a foreign CA or already expired.
func (c *ControlPlane) issueAll() error {
	certs := map[string]*ca.Cert{}
	for _, p := range c.reg.Pods {
		if !p.Sidecar {
			continue
		}
		id, err := c.ca.WorkloadID(p.Namespace, p.ServiceAccount)
		if err != nil {
			return err
		}
		var cert *ca.Cert
		switch p.Cert {
		case "foreign":
			fid, _ := c.foreign.WorkloadID(p.Namespace, p.ServiceAccount)
			cert, err = c.foreign.Issue(fid)
		case "expired":
			cert, err = c.ca.IssueExpired(id)
		default:
			cert, err = c.ca.Issue(id)
		}
		if err != nil {
			return fmt.Errorf("certificate for %s: %w", p.Name, err)
		}
		certs[p.NodeID()] = cert
	}
	gid, err := c.ca.WorkloadID(c.gw.Namespace, "istio-ingressgateway-service-account")
	if err != nil {
		return err
	}
	gc, err := c.ca.Issue(gid)
	if err != nil {
		return err
	}
	certs[c.gw.NodeID()] = gc
	c.mu.Lock()
	c.certs = certs
	c.mu.Unlock()
	return nil
}

// rotate re-issues every certificate at half its lifetime, as Istio's agent
// does (SECRET_GRACE_PERIOD_RATIO 0.5), and pushes the new secrets over SDS.
func (c *ControlPlane) rotate(ttl time.Duration) {
	defer close(c.rotateDone)
	t := time.NewTicker(ttl / 2)
	defer t.Stop()
	for {
		select {
		case <-c.stopRotate:
			return
		case <-t.C:
			if err := c.issueAll(); err != nil {
				c.log.Warn("certificate rotation failed; proxies keep their certificates", "err", err)
				continue
			}
			if err := c.Push(context.Background()); err != nil {
				c.log.Warn("pushing rotated certificates", "err", err)
			}
		}
	}
}

// Push translates the current config for every proxy and publishes it as the next version.
func (c *ControlPlane) Push(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.version++
	v := strconv.Itoa(c.version)
	var opts []xdsgen.Option
	if c.collector != nil {
		opts = append(opts, xdsgen.WithCollector(*c.collector))
	}
	gen := xdsgen.New(c.reg, c.cfg, opts...)
	secrets := func(node string) []*tlsv3.Secret {
		cert := c.certs[node]
		if cert == nil {
			return nil
		}
		return xdsgen.Secrets(cert.CertPEM, cert.KeyPEM, c.ca.RootPEM())
	}
	for _, p := range c.reg.Pods {
		if !p.Sidecar {
			continue
		}
		res := gen.ForSidecar(p)
		c.redirect(p.Name, res.Endpoints)
		res.Secrets = secrets(p.NodeID())
		snap, err := res.Snapshot(v)
		if err != nil {
			return err
		}
		if err := c.xds.SetSnapshot(ctx, p.NodeID(), snap); err != nil {
			return err
		}
		if c.Proxyless(p) {
			if err := c.pushProxyless(ctx, gen, p, v); err != nil {
				return err
			}
		}
	}
	res := gen.ForGateway(c.gw)
	c.redirect(c.gw.Name, res.Endpoints)
	res.Secrets = secrets(c.gw.NodeID())
	snap, err := res.Snapshot(v)
	if err != nil {
		return err
	}
	return c.xds.SetSnapshot(ctx, c.gw.NodeID(), snap)
}

// Apply makes cfg the Istio config in force and pushes it; it returns the version.
func (c *ControlPlane) Apply(ctx context.Context, cfg meshconfig.Config) (string, error) {
	c.mu.Lock()
	c.cfg = cfg
	c.mu.Unlock()
	if err := c.Push(ctx); err != nil {
		return "", err
	}
	return c.Version(), nil
}

// Version is the config version last pushed.
func (c *ControlPlane) Version() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strconv.Itoa(c.version)
}

// SetPodReady marks a pod's EDS endpoint healthy or not and pushes.
func (c *ControlPlane) SetPodReady(ctx context.Context, name string, ready bool) error {
	if _, ok := c.reg.Pod(name); !ok {
		return fmt.Errorf("no pod %q", name)
	}
	c.reg.SetReady(name, ready)
	return c.Push(ctx)
}

// readinessTimeout bounds how long a restarted pod's proxy may take to
// initialize before its restart counts as failed.
const readinessTimeout = 30 * time.Second

// Readmit brings a restarted pod back as Kubernetes does: start runs its
// containers again, and its endpoint turns ready only once its proxy has
// initialized (Istio's readiness probe), so that no caller is sent to a
// pod whose sidecar has no config or certificate yet.
func (c *ControlPlane) Readmit(ctx context.Context, p *registry.Pod, start func() error) error {
	// A crash cleared the pod's snapshots and pushed nothing: publish them
	// for it to fetch. A kill has pushed already.
	stale := p.Sidecar && !c.xds.HasSnapshot(p.NodeID()) ||
		c.Proxyless(p) && !c.xds.HasSnapshot(ProxylessNodeID(p))
	if stale {
		if err := c.Push(ctx); err != nil {
			return err
		}
	}
	if err := start(); err != nil {
		return err
	}
	if p.Sidecar {
		wctx, cancel := context.WithTimeout(ctx, readinessTimeout)
		defer cancel()
		if err := c.xds.WaitInitialized(wctx, p.NodeID()); err != nil {
			return fmt.Errorf("pod %s: its proxy did not become ready: %w", p.Name, err)
		}
	}
	return c.SetPodReady(ctx, p.Name, true)
}

// Redirect makes the endpoint of pod in the EDS of the proxies named in from
// (every proxy when from is empty) say addr instead of the pod's own
// inbound address, and pushes; addr "" undoes it.
func (c *ControlPlane) Redirect(ctx context.Context, name string, from []string, addr string) error {
	if _, ok := c.reg.Pod(name); !ok {
		return fmt.Errorf("no pod %q", name)
	}
	if addr != "" {
		if _, err := netip.ParseAddrPort(addr); err != nil {
			return fmt.Errorf("redirect %s: %w", name, err)
		}
	}
	callers := from
	if len(callers) == 0 {
		callers = []string{""}
	}
	c.mu.Lock()
	if c.redirects == nil {
		c.redirects = map[string]map[string]string{}
	}
	r := c.redirects[name]
	if r == nil {
		r = map[string]string{}
		c.redirects[name] = r
	}
	for _, caller := range callers {
		if addr == "" {
			delete(r, caller)
		} else {
			r[caller] = addr
		}
	}
	if len(r) == 0 {
		delete(c.redirects, name)
	}
	c.mu.Unlock()
	return c.Push(ctx)
}

// redirect rewrites, in the EDS generated for the proxy of caller, the
// endpoints that Redirect moved. Push calls it with c.mu held.
func (c *ControlPlane) redirect(caller string, eps []*endpoint.ClusterLoadAssignment) {
	if len(c.redirects) == 0 {
		return
	}
	to := map[string]netip.AddrPort{} // inbound address → where this caller goes instead
	for name, r := range c.redirects {
		addr, ok := r[caller]
		if !ok {
			addr, ok = r[""]
		}
		p, found := c.reg.Pod(name)
		if !ok || !found {
			continue
		}
		to[netip.AddrPortFrom(p.IP, uint16(p.Port)).String()] = netip.MustParseAddrPort(addr)
	}
	for i, cla := range eps {
		var out *endpoint.ClusterLoadAssignment
		for j, lle := range cla.GetEndpoints() {
			for k, lb := range lle.GetLbEndpoints() {
				sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
				dst, ok := to[net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))]
				if !ok {
					continue
				}
				if out == nil {
					// Never change what the generator built: it may share it.
					out = proto.Clone(cla).(*endpoint.ClusterLoadAssignment)
				}
				out.Endpoints[j].LbEndpoints[k].GetEndpoint().Address = &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
					Protocol: core.SocketAddress_TCP, Address: dst.Addr().String(),
					PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(dst.Port())},
				}}}
			}
		}
		if out != nil {
			eps[i] = out
		}
	}
}

// AppConfig derives a pod's fakesvc config from the topology; proxy is its
// sidecar's outbound address ("" for none).
func (c *ControlPlane) AppConfig(p *registry.Pod, proxy string) fakesvc.Config {
	svc, _ := c.reg.Service(p.Service)
	var ver registry.Version
	for _, v := range svc.Versions {
		if v.Name == p.Version {
			ver = v
		}
	}
	var calls []fakesvc.Call
	for _, name := range svc.CallsOf(p.Version) {
		if t, ok := c.reg.Service(name); ok {
			call := fakesvc.Call{Service: t.Name, Port: t.Port, Path: t.Path}
			// A gRPC service is called as a gRPC app calls it.
			switch {
			case xdsgen.ServiceProtocol(t).IsGRPC():
				call.Protocol = fakesvc.CallGRPC
			case xdsgen.IsTCP(t):
				// A TCP service is reached at its VIP, as DNS answers.
				call.Protocol, call.Addr = fakesvc.CallTCP, t.VIP.String()
			}
			calls = append(calls, call)
		}
	}
	seed := fakesvc.PodSeed(c.seed, p.Name)
	cfg := fakesvc.Config{
		Service: p.Service, Version: p.Version, Pod: p.Name, Namespace: p.Namespace,
		Latency: ver.Latency, ErrorRate: ver.ErrorRate, ErrorStatus: ver.ErrorStatus, GRPCCode: ver.GRPCErrorCode,
		Calls: calls, Proxy: proxy, Seed: seed, OnCalleeError: svc.OnCalleeErrorOf(p.Version),
		GRPCCall: svc.GRPCCallOf(p.Version),
		TCP:      xdsgen.IsTCP(svc),
	}
	if c.Proxyless(p) && c.xds.Addr() != "" {
		// The bootstrap names the node's token and the server; it cannot fail
		// for values the control plane made.
		cfg.XDSBootstrap, _ = c.bootstrap(p)
	}
	return cfg
}

// Resolve picks a ready pod of a service, as kube-proxy does for a
// ClusterIP: the address an app without a sidecar calls.
func (c *ControlPlane) Resolve(service string, port int) (string, error) {
	svc, ok := c.reg.Service(service)
	if !ok {
		return "", fmt.Errorf("no service %q", service)
	}
	var ready []*registry.Pod
	for _, p := range c.reg.PodsOf(svc.Name) {
		if c.reg.Ready(p.Name) {
			ready = append(ready, p)
		}
	}
	if len(ready) == 0 {
		return "", fmt.Errorf("service %s has no ready pod", service)
	}
	p := ready[rand.IntN(len(ready))]
	return net.JoinHostPort(p.IP.String(), strconv.Itoa(p.Port)), nil
}

// Nodes lists the node ids of the gateway and of the pods with a sidecar
// for which running says true: the proxies a push must reach.
func (c *ControlPlane) Nodes(running func(pod string) bool) []string {
	out := []string{c.gw.NodeID()}
	for _, p := range c.reg.Pods {
		if p.Sidecar && running(p.Name) {
			out = append(out, p.NodeID())
		}
		if c.Proxyless(p) && running(p.Name) {
			out = append(out, ProxylessNodeID(p))
		}
	}
	sort.Strings(out)
	return out
}

// Pods lists the mesh's pods, ready where running says so.
func (c *ControlPlane) Pods(running func(pod string) bool) []runtime.Pod {
	out := make([]runtime.Pod, 0, len(c.reg.Pods))
	for _, p := range c.reg.Pods {
		out = append(out, runtime.Pod{Name: p.Name, Service: p.Service, Version: p.Version, IP: p.IP.String(), Ready: running(p.Name)})
	}
	return out
}

// Behaviour is a pod's app as declared with the changes of b over it.
func (c *ControlPlane) Behaviour(p *registry.Pod, b runtime.AppBehaviour) fakesvc.Behaviour {
	declared := c.AppConfig(p, "")
	return BehaviourOver(declared.Latency, declared.ErrorRate, declared.ErrorStatus, b)
}

// BehaviourOver is an app declared with latency lat, error rate and error
// status, with the changes of b over it: what a behaviour endpoint is sent.
func BehaviourOver(lat registry.Latency, rate float64, status int, b runtime.AppBehaviour) fakesvc.Behaviour {
	if b.Latency != nil {
		lat = *b.Latency
	}
	if b.ErrorRate != nil {
		rate = *b.ErrorRate
	}
	if b.ErrorStatus != 0 {
		status = b.ErrorStatus
	}
	if status == 0 {
		status = fakesvc.DefaultErrorStatus
	}
	return fakesvc.Behaviour{Latency: &lat, ErrorRate: &rate, ErrorStatus: status}
}

// InboundAddr is the host:port a pod's EDS endpoint names.
func (c *ControlPlane) InboundAddr(name string) (string, error) {
	p, ok := c.reg.Pod(name)
	if !ok {
		return "", fmt.Errorf("no pod %q", name)
	}
	return net.JoinHostPort(p.IP.String(), strconv.Itoa(p.Port)), nil
}

// RestartXDS starts the ADS server again on its address after an outage;
// proxies reconnect and get the snapshots in force.
func (c *ControlPlane) RestartXDS(ctx context.Context) error {
	if c.Stopped() {
		return fmt.Errorf("the mesh is stopped")
	}
	return c.xds.Start(ctx, c.xds.Addr())
}
