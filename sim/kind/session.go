package kind

import (
	"context"
	"slices"

	"github.com/testcontainers/testcontainers-go"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
)

// Session runs several scenarios of one command in one cluster, as a
// platform team runs its tests against one cluster rather than one each:
// the first scenario creates it and keeps it, the others reuse it
// (Runtime.Cluster: each starts from a cleared cluster), and Close deletes
// it unless the command asked to keep it. A cluster takes a minute of a
// kind run's minute and a half; the catalog saves it on every scenario
// but the first.
type Session struct {
	base Runtime
	name string
}

// NewSession is a session for the scenarios of one command run with r. A
// runtime that already names a cluster to reuse runs every scenario there.
func NewSession(r Runtime) *Session {
	s := &Session{base: r, name: r.Cluster}
	if s.name == "" {
		s.name = NewClusterName()
	}
	return s
}

// Runtime is the runtime for the session's next scenario.
func (s *Session) Runtime() Runtime {
	r := s.base
	r.session = s.base.Cluster == ""
	if r.Cluster != "" || clusterExists(s.name) {
		r.Cluster = s.name
		return r
	}
	r.ClusterName, r.Keep = s.name, true
	return r
}

// Cluster is the session's cluster's name.
func (s *Session) Cluster() string { return s.name }

// Close deletes the session's cluster and its network, unless the runtime
// was asked to keep it or it was the user's to begin with.
func (s *Session) Close(ctx context.Context) error {
	if s.base.Keep || s.base.Cluster != "" || !clusterExists(s.name) {
		return nil
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	c := &cluster{name: s.name, provider: kindcluster.NewProvider(kindcluster.ProviderWithDocker()), docker: cli}
	return c.delete(ctx)
}

func clusterExists(name string) bool {
	names, err := kindcluster.NewProvider(kindcluster.ProviderWithDocker()).List()
	return err == nil && slices.Contains(names, name)
}
