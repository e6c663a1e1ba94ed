// Package registry is the mesh's service registry: the services a scenario
// declares, their versions and pods, and the loopback address each pod owns.
// It plays the part Kubernetes Services, Deployments and EndpointSlices play
// for istiod.
package registry

import (
	"slices"

	"github.com/meshbench/meshbench/internal/units"
)

// Topology is the user's declaration of the services in the mesh: topology is data.
type Topology struct {
	// Namespace all services live in; "default" when empty.
	Namespace string    `yaml:"namespace,omitempty" json:"namespace,omitempty"`
	Services  []Service `yaml:"services" json:"services"`
}

// Service is one Kubernetes-style Service with the Deployments (versions) behind it.
type Service struct {
	Name string `yaml:"name" json:"name"`
	// Port is the service port that callers use (default 80); TargetPort is the
	// container port the app listens on (default 8080).
	Port       int       `yaml:"port,omitempty" json:"port,omitempty"`
	TargetPort int       `yaml:"targetPort,omitempty" json:"targetPort,omitempty"`
	Versions   []Version `yaml:"versions,omitempty" json:"versions"`
	// Calls lists the services this one calls, through its sidecar, on each request.
	Calls []string `yaml:"calls,omitempty" json:"calls,omitempty"`
	// Path the callers of this service use (default "/" + the first word of the name, e.g. /pay).
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// OnCalleeError is what the app answers when a call fails: "fail" (the
	// default: the failure is passed up) or "degrade" (200 with a partial
	// body, as a front end that catches the error). A version may override it.
	OnCalleeError string `yaml:"onCalleeError,omitempty" json:"onCalleeError,omitempty"`
	// Protocol is the name of the service port (default "http"): Istio
	// reads the port's protocol from its prefix, <protocol>[-<suffix>]
	// (http, http2, grpc, grpc-web...), as for a Kubernetes Service port.
	Protocol string `yaml:"protocol,omitempty" json:"protocol,omitempty"`
	// AppProtocol is the Service port's appProtocol, which wins over the
	// port name (pkg/config/kube/conversion.go ConvertProtocol).
	AppProtocol string `yaml:"appProtocol,omitempty" json:"appProtocol,omitempty"`
	// GRPCCall is how the pods call the gRPC services among their Calls
	// (a version's own replaces it).
	GRPCCall *GRPCCall `yaml:"grpcCall,omitempty" json:"grpcCall,omitempty"`
	// Selects makes this a Service over another service's pods, as a
	// Kubernetes Service whose selector adds a version label
	// (app=<service>,version=<version>): how Gateway API routes, whose
	// backends are Services and know no subsets, split by version (Istio's
	// samples/bookinfo/platform/kube/bookinfo-versions.yaml). It has no pods
	// of its own; its ports and path are the selected service's.
	Selects *Selector `yaml:"selects,omitempty" json:"selects,omitempty"`
}

// GRPCCall is how an app makes its gRPC calls: the deadline its client
// sets, and which method of the callee's echo service it calls.
type GRPCCall struct {
	// Deadline is each call's deadline, as a gRPC client sets it
	// (grpc-go: context.WithTimeout), sent on the wire as grpc-timeout.
	// 0: none, as gRPC's own default.
	Deadline units.Duration `yaml:"deadline,omitempty" json:"deadline,omitempty"`
	// Method is the echo service's method: Unary (the default) or Stream
	// (server streaming: Count replies, Interval apart).
	Method string `yaml:"method,omitempty" json:"method,omitempty"`
	// Count is how many replies a Stream call asks for (default 3).
	Count int `yaml:"count,omitempty" json:"count,omitempty"`
	// Interval is the pause between a Stream call's replies.
	Interval units.Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
}

// Methods of the echo service a GRPCCall names.
const (
	GRPCMethodUnary  = "Unary"
	GRPCMethodStream = "Stream"
)

// GRPCCallOf is how the pods of the named version make their gRPC calls:
// the version's GRPCCall, else the service's, else the zero value (Unary,
// no deadline).
func (s Service) GRPCCallOf(version string) GRPCCall {
	for _, v := range s.Versions {
		if v.Name == version && v.GRPCCall != nil {
			return *v.GRPCCall
		}
	}
	if s.GRPCCall != nil {
		return *s.GRPCCall
	}
	return GRPCCall{}
}

// Selector names the pods a selecting Service takes: those of Service,
// only Version's when set.
type Selector struct {
	Service string `yaml:"service" json:"service"`
	Version string `yaml:"version,omitempty" json:"version,omitempty"`
}

// Labels is the Kubernetes Service selector: app=<service>[,version=<version>].
func (s *Selector) Labels() map[string]string {
	out := map[string]string{"app": s.Service}
	if s.Version != "" {
		out["version"] = s.Version
	}
	return out
}

// SelectorLabels is the service's Kubernetes selector: app=<name>, or its
// Selects labels.
func (s Service) SelectorLabels() map[string]string {
	if s.Selects != nil {
		return s.Selects.Labels()
	}
	return map[string]string{"app": s.Name}
}

// Version is one Deployment of a service: pods labelled version=<name>.
type Version struct {
	Name     string `yaml:"name" json:"name"`
	Replicas int    `yaml:"replicas,omitempty" json:"replicas,omitempty"` // default 1
	// Labels added to the pods beyond app and version.
	Labels map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	// Latency is the app's own service time.
	Latency Latency `yaml:"latency,omitempty" json:"latency,omitempty"`
	// ErrorRate in [0,1] of requests the app answers with ErrorStatus (default 503).
	ErrorRate   float64 `yaml:"errorRate,omitempty" json:"errorRate,omitempty"`
	ErrorStatus int     `yaml:"errorStatus,omitempty" json:"errorStatus,omitempty"`
	// GRPCErrorCode is the gRPC status of the errors of a gRPC service
	// (default 14, UNAVAILABLE).
	GRPCErrorCode int `yaml:"grpcErrorCode,omitempty" json:"grpcErrorCode,omitempty"`
	// Sidecar false puts the pods out of the mesh (a legacy workload): no
	// proxy, plain HTTP in and out, no certificate.
	Sidecar *bool `yaml:"sidecar,omitempty" json:"sidecar,omitempty"`
	// Cert gives the pods a bad certificate: "foreign" (from another trust
	// domain's CA) or "expired".
	Cert string `yaml:"cert,omitempty" json:"cert,omitempty"`
	// Calls, when set, replaces the service's Calls for this version's
	// pods: canaries differ exactly there (v1 calls nothing, v2 calls
	// ratings). `calls: []` is a version that calls nothing; no calls key
	// keeps the service's. JSON keeps the difference (null vs []).
	Calls []string `yaml:"calls,omitempty" json:"calls"`
	// OnCalleeError, when set, replaces the service's for this version.
	OnCalleeError string `yaml:"onCalleeError,omitempty" json:"onCalleeError,omitempty"`
	// GRPCCall, when set, replaces the service's for this version.
	GRPCCall *GRPCCall `yaml:"grpcCall,omitempty" json:"grpcCall,omitempty"`
}

// OnCalleeErrorOf is what the pods of the named version do when a call
// fails: the version's OnCalleeError, else the service's, else "" (fail).
func (s Service) OnCalleeErrorOf(version string) string {
	for _, v := range s.Versions {
		if v.Name == version && v.OnCalleeError != "" {
			return v.OnCalleeError
		}
	}
	return s.OnCalleeError
}

// CallsOf is what the pods of the named version call: the version's own
// Calls when it sets them, else the service's.
func (s Service) CallsOf(version string) []string {
	for _, v := range s.Versions {
		if v.Name == version && v.Calls != nil {
			return v.Calls
		}
	}
	return s.Calls
}

// AllCalls is every service some version of s calls (CallsOf each
// version), each once, in the order first seen.
func (s Service) AllCalls() []string {
	var out []string
	add := func(names []string) {
		for _, n := range names {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	for _, v := range s.Versions {
		add(s.CallsOf(v.Name))
	}
	if len(s.Versions) == 0 {
		add(s.Calls)
	}
	return out
}

// HasSidecar reports whether the version's pods run a sidecar (the default).
func (v Version) HasSidecar() bool { return v.Sidecar == nil || *v.Sidecar }

// Latency describes the app's service time: a fixed Mean, or a distribution
// ("normal", "exponential", "uniform") around it.
type Latency struct {
	Mean   units.Duration `yaml:"mean,omitempty" json:"mean,omitempty"`
	StdDev units.Duration `yaml:"stddev,omitempty" json:"stddev,omitempty"`
	Dist   string         `yaml:"dist,omitempty" json:"dist,omitempty"`
}

// DefaultTopology is the sample mesh: order → payment (v1 ×2, v2 ×1).
func DefaultTopology() Topology {
	return Topology{
		Namespace: "default",
		Services: []Service{
			{Name: "order", Versions: []Version{{Name: "v1", Replicas: 2}}, Calls: []string{"payment"}, Path: "/orders"},
			{Name: "payment", Versions: []Version{{Name: "v1", Replicas: 2}, {Name: "v2", Replicas: 1}}, Path: "/pay"},
		},
	}
}
