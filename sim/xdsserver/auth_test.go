package xdsserver_test

import (
	"context"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/meshbench/meshbench/sim/xdsserver"
)

// firstAnswer opens an ADS stream with token (none when empty), asks for
// clusters as node, and returns the first answer or the stream's error.
func firstAnswer(t *testing.T, addr, node, token string) (*discovery.DiscoveryResponse, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, xdsserver.TokenHeader, "Bearer "+token)
	}
	st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	require.NoError(t, st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: node}, TypeUrl: resource.ClusterType}))
	return st.Recv()
}

func TestAuthenticatedServerServesOnlyTheTokensNode(t *testing.T) {
	m := newMesh(t)
	s := startServer(t)
	tokens, err := xdsserver.NewTokens()
	require.NoError(t, err)
	s.Authenticate(tokens)
	m.publish(t, s, 0, "1")
	m.publish(t, s, 1, "1")
	victim, thief := m.node(0), m.node(1)

	r, err := firstAnswer(t, s.Addr(), victim, tokens.Issue(victim))
	require.NoError(t, err, "the node's own token is served")
	assert.NotEmpty(t, r.GetResources())

	for name, tc := range map[string]struct{ token string }{
		"no token":                 {""},
		"another node's token":     {tokens.Issue(thief)},
		"a token of another mesh":  {mustTokens(t).Issue(victim)},
		"a token that is not ours": {"c2VjcmV0"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := firstAnswer(t, s.Addr(), victim, tc.token)
			require.Error(t, err, "an outsider must get nothing")
			assert.NotEqual(t, codes.OK, status.Code(err))
		})
	}
	assert.EqualValues(t, 4, s.Outsiders())
	assert.Empty(t, s.Nacks())
	assert.Empty(t, s.Acked(victim, resource.ClusterType), "an outsider's requests are not recorded as the node's")
}

func mustTokens(t *testing.T) *xdsserver.Tokens {
	t.Helper()
	tk, err := xdsserver.NewTokens()
	require.NoError(t, err)
	return tk
}
