// Package runtime is the boundary between a scenario and the place its mesh
// runs: loopback in this process (local), containers (docker) or a kind
// cluster with the real Istio (kind). A scenario talks only to these interfaces.
package runtime

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
)

// ErrUnsupported is returned by a runtime for an operation it cannot do.
var ErrUnsupported = errors.New("not supported by this runtime")

// Spec is what a mesh is started from.
type Spec struct {
	Topology registry.Topology
	Config   meshconfig.Config
	Seed     int64
	Log      *slog.Logger
	// ProxylessGRPC makes every pod's gRPC calls proxyless: grpc-go's own
	// xDS client instead of the pod's sidecar on the outbound path
	// (fakesvc/proxyless.go); the sidecar keeps the pod's inbound side and
	// its HTTP calls. Only the local runtime supports it.
	ProxylessGRPC bool
	// AccessLogDir, when set, is where the proxies' access logs go when
	// meshConfig.accessLogFile is set: <AccessLogDir>/<proxy>.log, one file
	// per proxy (pod name, or the gateway's), whatever the path says (on
	// local every proxy shares this process and its stdout). Only the local
	// runtime supports it; empty: each proxy writes the path itself.
	AccessLogDir string
	// TraceDir, when set, is where the spans of a mesh whose tracing
	// providers name a collector are written when it stops
	// (tracing.ZipkinFile and tracing.OTLPFile): the runtime serves that
	// collector as Istio's Zipkin addon would.
	TraceDir string
}

// DataPlaneProxylessGRPC is DataPlane of a runtime whose pods call gRPC
// services proxyless (Spec.ProxylessGRPC), beside builtin sidecars.
const DataPlaneProxylessGRPC = "builtin+grpc-proxyless"

// Runtime starts meshes.
type Runtime interface {
	// Name is the runtime's name as the CLI spells it: local, docker, kind.
	Name() string
	// DataPlane names the proxies it runs, e.g. "builtin" or "envoy".
	DataPlane() string
	// Start brings the mesh up and returns once every proxy has ACKed the
	// initial config. On error nothing is left running.
	Start(ctx context.Context, spec Spec) (Mesh, error)
}

// StartLimiter is implemented by runtimes whose Start takes longer than
// DefaultStartLimit (a cluster to create and Istio to install).
type StartLimiter interface {
	StartLimit() time.Duration
}

// DefaultStartLimit bounds Start on runtimes that say nothing else.
const DefaultStartLimit = 60 * time.Second

// StartLimit is how long rt's Start may take.
func StartLimit(rt Runtime) time.Duration {
	if l, ok := rt.(StartLimiter); ok {
		return l.StartLimit()
	}
	return DefaultStartLimit
}

// Warmer is implemented by runtimes whose new connections cost more than
// a loopback's: the load's unmeasured warm-up ramps up for this long
// instead of DefaultWarmup.
type Warmer interface {
	Warmup() time.Duration
}

// DefaultWarmup is the warm-up's ramp on runtimes that say nothing else.
const DefaultWarmup = time.Second

// Warmup is how long the warm-up on rt ramps up.
func Warmup(rt Runtime) time.Duration {
	if w, ok := rt.(Warmer); ok {
		return w.Warmup()
	}
	return DefaultWarmup
}

// RateLimiter is implemented by runtimes whose mesh holds less load than
// the scenarios ask for (a whole cluster on the machine): a scenario whose
// rate is above MaxRate runs at MaxRate for longer, the same number of
// requests, so its checks keep their statistical power.
type RateLimiter interface {
	MaxRate() float64 // requests per second
}

// Entry is where load enters the mesh.
type Entry struct {
	// URL of the ingress gateway, e.g. http://127.80.3.1:8080.
	URL string
}

// Pod is a pod as the runtime reports it.
type Pod struct {
	Name, Service, Version, IP string
	Ready                      bool
}

// Mesh is a running mesh.
type Mesh interface {
	// Entry is the ingress gateway the load goes through.
	Entry() Entry
	// Apply pushes new Istio config and returns its version; the data plane
	// takes it asynchronously.
	Apply(ctx context.Context, cfg meshconfig.Config) (version string, err error)
	// WaitConverged returns when every proxy has ACKed version, or with the
	// NACK reason when one refused it.
	WaitConverged(ctx context.Context, version string) error
	// Version is the config version last applied.
	Version() string
	// Pods lists the pods.
	Pods() []Pod
	// KillPod stops a pod's app and sidecar abruptly and takes it out of EDS.
	KillPod(ctx context.Context, name string) error
	// RestartPod brings a killed pod back with the same name, address and identity.
	RestartPod(ctx context.Context, name string) error
	// MetricsEndpoints maps each proxy (pod name or gateway) to its Prometheus URL.
	MetricsEndpoints() map[string]string
	// Stop tears everything down. It is safe to call more than once.
	Stop(ctx context.Context) error
}

// FaultInjector is implemented by meshes whose runtime can inject faults
// beyond Mesh's own KillPod and RestartPod; package chaos builds its fault
// types on it. A runtime that cannot do one of them returns ErrUnsupported.
// Every method undoes cleanly: what CrashPod, PausePod, SetAppBehaviour,
// StopControlPlane and RedirectInbound change, RestartPod, ResumePod,
// SetAppBehaviour(AppBehaviour{}), StartControlPlane and RedirectInbound(…, "")
// change back.
type FaultInjector interface {
	// CrashPod stops a pod's app and sidecar abruptly (listeners and open
	// connections dropped at once) but leaves its endpoint in EDS as healthy,
	// as Kubernetes does until the kubelet reports the pod not ready;
	// SetPodReady(false) takes it out. RestartPod brings it back.
	CrashPod(ctx context.Context, name string) error
	// SetPodReady marks a pod's EDS endpoint healthy or not and pushes EDS.
	SetPodReady(ctx context.Context, name string, ready bool) error
	// PausePod freezes a pod's app: it keeps accepting connections but reads
	// and answers nothing until ResumePod (docker pause; SIGSTOP).
	PausePod(ctx context.Context, name string) error
	// ResumePod lets a paused pod's app go on where it stopped.
	ResumePod(ctx context.Context, name string) error
	// SetAppBehaviour changes a running pod's app; fields left zero keep the
	// topology's values, so AppBehaviour{} restores the app as declared.
	SetAppBehaviour(ctx context.Context, pod string, b AppBehaviour) error
	// StopControlPlane stops the xDS server at once (a crashed istiod):
	// proxies keep their last config and try to reconnect.
	StopControlPlane(ctx context.Context) error
	// StartControlPlane starts it again on the same address.
	StartControlPlane(ctx context.Context) error
	// InboundAddr is the host:port a pod's EDS endpoint names (its inbound
	// side: the sidecar's inbound listener, or the app of a pod without one).
	InboundAddr(pod string) (string, error)
	// RedirectInbound makes the endpoint of pod that EDS sends to the proxies
	// of the pods named in from (every proxy, the gateway included, when from
	// is empty) say addr instead of InboundAddr, and pushes; addr "" undoes
	// it. Callers wait for WaitConverged to know the proxies have it.
	RedirectInbound(ctx context.Context, pod string, from []string, addr string) error
}

// AppBehaviour is a change to a pod's app relative to the topology: nil
// fields keep the declared values.
type AppBehaviour struct {
	// Latency replaces the app's service time.
	Latency *registry.Latency
	// ErrorRate replaces the share of requests answered with ErrorStatus.
	ErrorRate *float64
	// ErrorStatus replaces the status of those answers (0 keeps it).
	ErrorStatus int
}

// FaultProxyHost is implemented by meshes whose proxies reach this process
// at another address than the pods' own (containers on a bridge): the
// proxies that network faults put in front of a pod listen there.
type FaultProxyHost interface {
	FaultProxyHost() string
}

// PacketDropper is implemented by meshes that can drop packets in a pod's
// network namespace: DropInbound drops what reaches the pod's port from the
// pods (or gateway) named in from, from anywhere when from is empty, until
// the returned undo runs.
type PacketDropper interface {
	DropInbound(ctx context.Context, pod string, from []string) (undo func(context.Context) error, err error)
}

// Mechanisms is implemented by runtimes that say how they put a fault kind
// in place (for the result's fault record): "docker pause of the app's
// container", or a fallback and why.
type Mechanisms interface {
	Mechanism(kind string) string
}
