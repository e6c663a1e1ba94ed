package sidecar

import (
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/xdsgen"
)

// The ADS stream and the SDS streams apply from goroutines of their own.
// A secret rotation racing a CDS update must not store the clusters the
// update replaced: after each pair of concurrent applies, the clusters in
// force are those the CDS update sent.
func TestConcurrentAppliesKeepEveryUpdate(t *testing.T) {
	m := newRig(t, rigOpts{topo: rigTopology(registry.Version{Name: "v1"}, registry.Version{Name: "v2"})})
	p, ok := m.reg.Pod(rigCaller)
	require.True(t, ok)
	s := m.proxies[rigCaller]

	res := xdsgen.New(m.reg, m.cfg).ForSidecar(p)
	var all []*anypb.Any
	for _, c := range res.Clusters {
		a, err := anypb.New(c)
		require.NoError(t, err)
		all = append(all, a)
	}
	require.Greater(t, len(all), 2)
	cert := m.cert(rigCaller)
	var secrets []*anypb.Any
	for _, sec := range xdsgen.Secrets(cert.CertPEM, cert.KeyPEM, m.ca.RootPEM()) {
		a, err := anypb.New(sec)
		require.NoError(t, err)
		secrets = append(secrets, a)
	}
	// Two cluster sets: all of them, and all but the last.
	sets := [][]*anypb.Any{all, all[:len(all)-1]}
	for i := range 300 {
		set := sets[i%2]
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := s.apply(resource.ClusterType, "c", set)
			require.NoError(t, err)
		})
		wg.Go(func() {
			_, err := s.apply(resource.SecretType, "s", secrets)
			require.NoError(t, err)
		})
		wg.Wait()
		got := slices.Sorted(maps.Keys(s.state.Load().clusters))
		require.Len(t, got, len(set), "round %d: the clusters of the last CDS update are in force", i)
	}
}
