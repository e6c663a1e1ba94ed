package fakesvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/xds"
	xdsbootstrap "google.golang.org/grpc/xds/bootstrap"

	"github.com/meshbench/meshbench/sim/istionames"
)

// Proxyless gRPC: an app whose gRPC calls go out through grpc-go's own
// xDS client (google.golang.org/grpc/xds), as Istio's proxyless gRPC
// workloads do, with no sidecar on the outbound path. The app dials
// xds:///<service>.<namespace>.svc.cluster.local:<port>; the xDS resolver
// asks the control plane for that listener, its route, clusters and
// endpoints, and grpc-go picks the cluster (weighted), retries, enforces
// the route's max stream duration and balances over the endpoints itself.
//
// The bootstrap is handed in (Config.XDSBootstrap) and given to
// xds.NewXDSResolverWithConfigForTesting: GRPC_XDS_BOOTSTRAP_CONFIG is read
// once at package load, and every pod of a local mesh needs a bootstrap of
// its own (its node id and token).

// BearerCredsType is the bootstrap channel_creds type of meshbench's xDS
// server credential: plaintext to the server, with "authorization: Bearer
// <token>" on every stream. grpc-go v1.85 has call_creds in the bootstrap
// (gRFC A97) only behind GRPC_EXPERIMENTAL_XDS_BOOTSTRAP_CALL_CREDS, read
// at package load, and only for JWT token files; a channel credentials
// type registered in process carries the token instead
// (xds/bootstrap.RegisterChannelCredentials: its Bundle's
// PerRPCCredentials go on every RPC of the xDS channel).
const BearerCredsType = "meshbench_bearer"

func init() { xdsbootstrap.RegisterChannelCredentials(bearerBuilder{}) }

type bearerBuilder struct{}

func (bearerBuilder) Name() string { return BearerCredsType }

func (bearerBuilder) Build(config json.RawMessage) (credentials.Bundle, func(), error) {
	var c struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(config, &c); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", BearerCredsType, err)
	}
	if c.Token == "" {
		return nil, nil, errors.New(BearerCredsType + ": no token")
	}
	return bearerBundle{token: c.Token}, func() {}, nil
}

// bearerBundle is insecure transport plus the bearer token.
type bearerBundle struct{ token string }

func (b bearerBundle) TransportCredentials() credentials.TransportCredentials {
	return insecure.NewCredentials()
}
func (b bearerBundle) PerRPCCredentials() credentials.PerRPCCredentials { return b }
func (b bearerBundle) NewWithMode(string) (credentials.Bundle, error)   { return b, nil }

func (b bearerBundle) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is false: the xDS server is on a socket in a
// directory only this user may enter (the local runtime), as istiod is
// reached over pilot-agent's Unix socket in a proxyless pod.
func (b bearerBundle) RequireTransportSecurity() bool { return false }

// Bootstrap is what a proxyless app needs to reach its control plane.
type Bootstrap struct {
	// Server is the xDS server's gRPC target, e.g. unix:///tmp/x/xds.sock.
	Server string
	// Token is the node's credential (xdsserver.Tokens).
	Token string
	// NodeID is the node id the control plane keys the client's config by.
	NodeID string
	// Metadata is the node metadata; GENERATOR=grpc makes the control plane
	// answer with proxyless resources, as istiod does.
	Metadata map[string]string
}

// JSON renders b as grpc-go's bootstrap file (gRFC A27), in the shape
// Istio's agent writes for proxyless pods (pkg/istio-agent/grpcxds
// GenerateBootstrap), without certificate providers.
func (b Bootstrap) JSON() ([]byte, error) {
	md := map[string]any{}
	for k, v := range b.Metadata {
		md[k] = v
	}
	return json.Marshal(map[string]any{
		"xds_servers": []any{map[string]any{
			"server_uri":      b.Server,
			"channel_creds":   []any{map[string]any{"type": BearerCredsType, "config": map[string]string{"token": b.Token}}},
			"server_features": []string{"xds_v3"},
		}},
		"node": map[string]any{"id": b.NodeID, "metadata": md, "locality": map[string]any{}},
	})
}

// xdsResolver builds the xds resolver of a bootstrap, once per Server.
func xdsResolver(bootstrap []byte) (resolver.Builder, error) {
	if len(bootstrap) == 0 {
		return nil, nil
	}
	b, err := xds.NewXDSResolverWithConfigForTesting(bootstrap)
	if err != nil {
		return nil, fmt.Errorf("fakesvc: xDS bootstrap: %w", err)
	}
	return b, nil
}

// proxylessTarget is the xds:/// target of a call: the FQDN and port,
// the listener name grpc-go asks for.
func (s *Server) proxylessTarget(c Call) string {
	return "xds:///" + net.JoinHostPort(istionames.ServiceHost(c.Service, s.namespace), strconv.Itoa(c.Port))
}

// dialProxyless opens the client connection of a proxyless call.
func (s *Server) dialProxyless(c Call) (*grpc.ClientConn, error) {
	return grpc.NewClient(s.proxylessTarget(c),
		grpc.WithResolvers(s.xds),
		// Plaintext: grpcgen sends no TLS unless a DestinationRule asks
		// for ISTIO_MUTUAL (cds.go applyTLS), which needs xDS credentials
		// and certificate providers meshbench does not give (docs/fidelity.md).
		grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// connectProxyless opens the connections of every gRPC call at once, so
// that their xDS clients subscribe (and ACK) before load starts: a run
// measures only after every data plane has the config. A ClientConn starts
// idle and resolves only when it leaves idle.
func (s *Server) connectProxyless() error {
	if s.xds == nil {
		return nil
	}
	for _, c := range s.calls {
		if c.Protocol != CallGRPC {
			continue
		}
		cc, err := s.conn(c)
		if err != nil {
			return err
		}
		cc.Connect()
	}
	return nil
}

// attemptOf is the attempt a call is, as the server sees it: Envoy's
// x-envoy-attempt-count, or grpc-go's grpc-previous-rpc-attempts plus one
// (gRFC A6), whichever is higher: a proxyless caller's retries pass the
// callee's inbound sidecar, which may count its own single attempt.
func attemptOf(md metadata.MD) string {
	best := 0
	if v := md.Get("x-envoy-attempt-count"); len(v) > 0 {
		best, _ = strconv.Atoi(v[0])
	}
	if v := md.Get("grpc-previous-rpc-attempts"); len(v) > 0 {
		if n, err := strconv.Atoi(v[0]); err == nil && n+1 > best {
			best = n + 1
		}
	}
	if best == 0 {
		return ""
	}
	return strconv.Itoa(best)
}

// DialProxyless dials a service as a proxyless app does, with its own xDS
// client from bootstrap: for tests and tools.
func DialProxyless(bootstrap []byte, host string, port int) (*grpc.ClientConn, error) {
	b, err := xdsResolver(bootstrap)
	if err != nil {
		return nil, err
	}
	return grpc.NewClient("xds:///"+net.JoinHostPort(host, strconv.Itoa(port)), grpc.WithResolvers(b),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
}
