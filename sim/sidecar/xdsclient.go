package sidecar

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/anypb"
)

// applier applies one xDS response. It returns, by type, the resource names
// the client must now subscribe to (EDS and SDS names after CDS, RDS and SDS
// names after LDS), or an error that becomes a NACK.
type applier func(typeURL, version string, resources []*anypb.Any) (deps map[string][]string, err error)

// adsClient is a State-of-the-World ADS client as Envoy runs it: one stream
// for every type, wildcard CDS and LDS, EDS and RDS by name, an ACK or a NACK
// for every response, and reconnection with back-off when the stream breaks.
// go-control-plane's sotw client handles one type per stream and does not
// reconnect, which a sidecar that must ride out a control-plane outage cannot use.
type adsClient struct {
	addr  string
	token string // presented as "authorization: Bearer <token>" (xdsserver.TokenHeader)
	node  *core.Node
	apply applier
	log   *slog.Logger
	// nodeFirstOnly sends the node on a stream's first request only
	// (ads_config.set_node_on_first_message_only); nodeSent is per stream.
	nodeFirstOnly, nodeSent bool

	// per type URL, owned by the run goroutine
	version map[string]string
	nonce   map[string]string
	names   map[string][]string
	// wants records, per dependent type, the names each source type asked for.
	wants map[string]map[string][]string
}

func newADSClient(addr, token string, node *core.Node, apply applier, log *slog.Logger) *adsClient {
	return &adsClient{
		addr: addr, token: token, node: node, apply: apply, log: log,
		version: map[string]string{}, nonce: map[string]string{}, names: map[string][]string{},
		wants: map[string]map[string][]string{},
	}
}

// dependentTypes are subscribed to by name, as other resources reference them.
var dependentTypes = []string{resource.EndpointType, resource.RouteType, resource.SecretType}

// run keeps a stream open until ctx ends, reconnecting after failures.
func (c *adsClient) run(ctx context.Context) {
	reconnect(ctx, func(ctx context.Context) error { return c.stream(ctx) }, func(err error, in time.Duration) {
		c.log.Debug("xds stream ended; reconnecting", "err", err, "in", in)
	})
}

// reconnect runs stream until ctx ends, again after each end with back-off
// from 50ms doubling to 2s, back to 50ms after a stream that lived 5s.
func reconnect(ctx context.Context, stream func(context.Context) error, ended func(err error, in time.Duration)) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := stream(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 5*time.Second {
			backoff = 50 * time.Millisecond
		}
		ended(err, backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

func (c *adsClient) stream(ctx context.Context) error {
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if c.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
	}
	st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	// Nonces belong to a stream; versions and names carry over.
	c.nonce = map[string]string{}
	c.nodeSent = false
	// On a new stream, ask again for everything, with the versions we run, so
	// the server resends only what changed (Envoy's xDS protocol, "Resumption").
	for _, t := range []string{resource.ClusterType, resource.ListenerType} {
		if err := c.send(st, t, nil); err != nil {
			return err
		}
	}
	for _, t := range dependentTypes {
		if len(c.names[t]) > 0 {
			if err := c.send(st, t, nil); err != nil {
				return err
			}
		}
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return err
		}
		t := resp.GetTypeUrl()
		c.nonce[t] = resp.GetNonce()
		deps, err := c.apply(t, resp.GetVersionInfo(), resp.GetResources())
		if err != nil {
			c.log.Warn("rejecting xds update", "type", t, "version", resp.GetVersionInfo(), "err", err)
			if err := c.send(st, t, &status.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}); err != nil {
				return err
			}
			continue
		}
		c.version[t] = resp.GetVersionInfo()
		if err := c.send(st, t, nil); err != nil {
			return err
		}
		for dt, names := range deps {
			if c.wants[dt] == nil {
				c.wants[dt] = map[string][]string{}
			}
			c.wants[dt][t] = names
			union := unionOf(c.wants[dt])
			if !equal(union, c.names[dt]) {
				c.names[dt] = union
				if err := c.send(st, dt, nil); err != nil {
					return err
				}
			}
		}
	}
}

// send writes a request for a type: an ACK (detail nil) or NACK of the last
// nonce, with the version last applied and the names subscribed to.
func (c *adsClient) send(st discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient, t string, detail *status.Status) error {
	node := c.node
	if c.nodeFirstOnly && c.nodeSent {
		node = nil
	}
	c.nodeSent = true
	err := st.Send(&discovery.DiscoveryRequest{
		Node:          node,
		TypeUrl:       t,
		VersionInfo:   c.version[t],
		ResponseNonce: c.nonce[t],
		ResourceNames: c.names[t],
		ErrorDetail:   detail,
	})
	if err != nil {
		return fmt.Errorf("send %s: %w", t, err)
	}
	return nil
}

// unionOf merges the names every source asked for, sorted and unique.
func unionOf(bySource map[string][]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, names := range bySource {
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
