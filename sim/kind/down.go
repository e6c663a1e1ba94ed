package kind

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/testcontainers/testcontainers-go"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
)

// ownerDir holds, per cluster the runtime made, the pid of the meshbench
// that made it: kind clusters carry no docker labels of ours, and `down`
// must not delete the cluster of a run still going.
func ownerDir() string { return filepath.Join(os.TempDir(), "meshbench-kind") }

func recordOwner(name string) error {
	if err := os.MkdirAll(ownerDir(), 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(ownerDir(), name), []byte(strconv.Itoa(os.Getpid())), 0o600)
}

func forgetOwner(name string) { _ = os.Remove(filepath.Join(ownerDir(), name)) }

// ownerAlive reports whether the meshbench that made a cluster still runs
// (and is not this process, which has no run of its own in `down`).
func ownerAlive(name string) bool {
	raw, err := os.ReadFile(filepath.Join(ownerDir(), name))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}

// Down deletes the kind clusters (and their networks) of runs that are no
// longer running, kept ones (-keep) included; all deletes those of live
// runs too. It returns the names deleted.
func Down(ctx context.Context, all bool) ([]string, error) {
	p := kindcluster.NewProvider(kindcluster.ProviderWithDocker())
	names, err := p.List()
	if err != nil {
		return nil, fmt.Errorf("kind get clusters: %w", err)
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	var out []string
	var errs []error
	for _, n := range names {
		if !strings.HasPrefix(n, ClusterPrefix) || (!all && ownerAlive(n)) {
			continue
		}
		c := &cluster{name: n, provider: p, docker: cli}
		if err := c.delete(ctx); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, n)
	}
	return out, errors.Join(errs...)
}
