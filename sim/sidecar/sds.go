package sidecar

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"
)

// sdsClient fetches secrets from a SecretDiscoveryService of its own, as
// Envoy does for an sds_config whose api_config_source names the sds-grpc
// cluster (Istio's listeners and clusters, and its bootstrap template
// tools/packaging/common/envoy_bootstrap.json): one StreamSecrets stream per
// secret name, each a State-of-the-World subscription with its own version,
// nonce, ACK and NACK, reconnecting with back-off. pilot-agent serves it on
// ./var/run/secrets/workload-spiffe-uds/socket (pkg/istio-agent, the
// "default" workload certificate and the "ROOTCA" bundle).
//
// Every response goes through the sidecar's apply for SecretType, as a
// secret delivered on ADS does, with the latest secret of every stream, so
// that the secrets in force are always the whole set.
type sdsClient struct {
	addr  string
	node  *core.Node
	apply applier
	log   *slog.Logger

	mu      sync.Mutex
	ctx     context.Context
	streams map[string]context.CancelFunc // by secret name
	latest  map[string]*anypb.Any         // by secret name, the last accepted
	version map[string]string
	wants   map[string][]string // by the type that referenced them
	wg      sync.WaitGroup
	applyMu sync.Mutex // one apply at a time, as the ADS stream applies
}

func newSDSClient(addr string, node *core.Node, apply applier, log *slog.Logger) *sdsClient {
	return &sdsClient{
		addr: addr, node: node, apply: apply, log: log,
		streams: map[string]context.CancelFunc{}, latest: map[string]*anypb.Any{},
		version: map[string]string{}, wants: map[string][]string{},
	}
}

// routing wraps the ADS applier: the secret names a CDS or LDS update
// references are subscribed here, and not on the ADS stream.
func (c *sdsClient) routing(next applier) applier {
	return func(typeURL, version string, res []*anypb.Any) (map[string][]string, error) {
		deps, err := next(typeURL, version, res)
		if err != nil {
			return deps, err
		}
		if names, ok := deps[resource.SecretType]; ok {
			out := map[string][]string{}
			for t, n := range deps {
				if t != resource.SecretType {
					out[t] = n
				}
			}
			deps = out
			c.want(typeURL, names)
		}
		return deps, nil
	}
}

// run holds the streams open until ctx ends.
func (c *sdsClient) run(ctx context.Context) {
	c.mu.Lock()
	c.ctx = ctx
	c.sync()
	c.mu.Unlock()
	<-ctx.Done()
}

// wait returns once every stream has ended.
func (c *sdsClient) wait() { c.wg.Wait() }

// want records the names a source type references and opens or closes
// streams to match the union.
func (c *sdsClient) want(source string, names []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wants[source] = names
	c.sync()
}

// sync, under mu, makes the streams match the names wanted. Before run, it
// only records them.
func (c *sdsClient) sync() {
	if c.ctx == nil || c.ctx.Err() != nil {
		return
	}
	want := map[string]bool{}
	for _, names := range c.wants {
		for _, n := range names {
			want[n] = true
		}
	}
	for name, cancel := range c.streams {
		if !want[name] {
			cancel()
			delete(c.streams, name)
			delete(c.latest, name)
		}
	}
	for name := range want {
		if _, ok := c.streams[name]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(c.ctx)
		c.streams[name] = cancel
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.keep(ctx, name)
		}()
	}
}

// keep holds one secret's stream open, reconnecting with back-off as the
// ADS client does.
func (c *sdsClient) keep(ctx context.Context, name string) {
	reconnect(ctx, func(ctx context.Context) error { return c.stream(ctx, name) }, func(err error, in time.Duration) {
		c.log.Debug("sds stream ended; reconnecting", "secret", name, "err", err, "in", in)
	})
}

func (c *sdsClient) stream(ctx context.Context, name string) error {
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := secretv3.NewSecretDiscoveryServiceClient(conn).StreamSecrets(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	version := c.version[name]
	c.mu.Unlock()
	// Istio's sds_config sets set_node_on_first_message_only.
	send := func(node *core.Node, nonce string, detail *status.Status) error {
		return st.Send(&discovery.DiscoveryRequest{
			Node: node, TypeUrl: resource.SecretType, VersionInfo: version,
			ResourceNames: []string{name}, ResponseNonce: nonce, ErrorDetail: detail,
		})
	}
	if err := send(c.node, "", nil); err != nil {
		return fmt.Errorf("sds send: %w", err)
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return err
		}
		if err := c.accept(name, resp); err != nil {
			c.log.Warn("rejecting sds update", "secret", name, "version", resp.GetVersionInfo(), "err", err)
			if err := send(nil, resp.GetNonce(), &status.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}); err != nil {
				return fmt.Errorf("sds send: %w", err)
			}
			continue
		}
		version = resp.GetVersionInfo()
		if err := send(nil, resp.GetNonce(), nil); err != nil {
			return fmt.Errorf("sds send: %w", err)
		}
	}
}

// accept applies one stream's response together with the other streams'
// latest secrets.
func (c *sdsClient) accept(name string, resp *discovery.DiscoveryResponse) error {
	if t := resp.GetTypeUrl(); t != resource.SecretType {
		return fmt.Errorf("sds response of type %s", t)
	}
	if n := len(resp.GetResources()); n != 1 {
		return fmt.Errorf("sds response for %q carries %d secrets, want 1", name, n)
	}
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	c.mu.Lock()
	all := []*anypb.Any{resp.GetResources()[0]}
	var names []string
	for n := range c.latest {
		if n != name {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		all = append(all, c.latest[n])
	}
	c.mu.Unlock()
	if _, err := c.apply(resource.SecretType, resp.GetVersionInfo(), all); err != nil {
		return err
	}
	c.mu.Lock()
	if _, ok := c.streams[name]; ok {
		c.latest[name] = resp.GetResources()[0]
		c.version[name] = resp.GetVersionInfo()
	}
	c.mu.Unlock()
	return nil
}
