package xdsserver_test

import (
	"context"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
)

// Two sidecars share the translator's outbound clusters, endpoints and
// routes; each must receive exactly the bytes the snapshot cache would
// have marshalled for it.
func TestSharedResourcesGoOutAsTheCacheMarshalsThem(t *testing.T) {
	s := startServer(t)
	m := newMesh(t)
	snaps := make([]*cache.Snapshot, 2)
	for i := range snaps {
		var err error
		snaps[i], err = m.gen.ForSidecar(m.reg.Pods[i]).Snapshot("1")
		require.NoError(t, err)
		require.NoError(t, s.SetSnapshot(context.Background(), m.node(i), snaps[i]))
	}
	for i, snap := range snaps {
		got := dial(t, s.Addr(), m.node(i)).fetchAll()
		for _, typ := range []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType} {
			want := snap.GetResources(typ)
			require.Len(t, got[typ].GetResources(), len(want), typ)
			for _, a := range got[typ].GetResources() {
				require.Equal(t, typ, a.GetTypeUrl())
				r := resourceNamed(t, want, a.GetValue(), typ)
				b, err := cache.MarshalResource(r)
				require.NoError(t, err)
				require.Equal(t, b, a.GetValue(), "%s %s", typ, cache.GetResourceName(r))
			}
		}
	}
}

// resourceNamed finds the published resource whose name the wire bytes carry.
func resourceNamed(t *testing.T, want map[string]types.Resource, wire []byte, typ string) types.Resource {
	t.Helper()
	for name, r := range want {
		b, err := cache.MarshalResource(r)
		require.NoError(t, err)
		if string(b) == string(wire) {
			return want[name]
		}
	}
	require.FailNow(t, "a resource that was not published", typ)
	return nil
}
