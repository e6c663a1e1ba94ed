// Package runtime is the boundary between a scenario and the place its mesh
// runs: loopback in this process (local), containers (docker) or a kind
// cluster with the real Istio (kind). A scenario talks only to these interfaces.
package runtime

import (
	"context"
	"errors"
	"log/slog"

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
}

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
