package kind

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	kindlog "sigs.k8s.io/kind/pkg/log"
	"sigs.k8s.io/yaml"
)

// ingressNodePort is where the node exposes istio-ingressgateway's HTTP port
// (images/kind/istio-operator.yaml); the runtime maps it to 127.0.0.1.
const ingressNodePort = 30080

// networkEnv is how kind is told which docker network to put a cluster's
// nodes on (pkg/cluster/internal/providers/docker/provider.go): each run has
// its own, so that deleting it leaves nothing shared behind.
const networkEnv = "KIND_EXPERIMENTAL_DOCKER_NETWORK"

// createMu serialises cluster creation: the network is passed to kind
// through the process environment.
var createMu sync.Mutex

// cluster is a kind cluster of the runtime's own.
type cluster struct {
	name     string
	provider *kindcluster.Provider
	docker   *testcontainers.DockerClient
	// ingress is 127.0.0.1:<port> mapped to the node's ingressNodePort.
	ingress string
}

// nodeContainer is the docker container of the cluster's single node.
func (c *cluster) nodeContainer() string { return c.name + "-control-plane" }

// clusterConfig reads the kind Cluster config make kind-images wrote and
// adds the port mapping of the ingress gateway: port -1 lets docker pick a
// free host port, on 127.0.0.1 only.
func clusterConfig(path string) (*v1alpha4.Cluster, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg := &v1alpha4.Cluster{}
	if err := yaml.UnmarshalStrict(raw, cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(cfg.Nodes) != 1 {
		return nil, fmt.Errorf("%s: want one node, have %d", path, len(cfg.Nodes))
	}
	cfg.Nodes[0].ExtraPortMappings = append(cfg.Nodes[0].ExtraPortMappings, v1alpha4.PortMapping{
		ContainerPort: ingressNodePort, HostPort: -1, ListenAddress: "127.0.0.1", Protocol: v1alpha4.PortMappingProtocolTCP,
	})
	return cfg, nil
}

// createCluster creates the cluster on a docker network named after it and
// finds the ingress port docker picked. On error it deletes what it made.
func createCluster(ctx context.Context, cli *testcontainers.DockerClient, name string, im Images, logger kindLogger) (*cluster, error) {
	cfg, err := clusterConfig(im.ClusterConfig)
	if err != nil {
		return nil, err
	}
	c := &cluster{name: name, provider: kindcluster.NewProvider(kindcluster.ProviderWithDocker(), kindcluster.ProviderWithLogger(logger)), docker: cli}
	if err := recordOwner(name); err != nil {
		return nil, err
	}
	createMu.Lock()
	old, had := os.LookupEnv(networkEnv)
	os.Setenv(networkEnv, name)
	done := make(chan error, 1)
	go func() {
		// kind's Create takes no context; a cancelled run deletes the
		// cluster once it returns.
		done <- c.provider.Create(name, kindcluster.CreateWithV1Alpha4Config(cfg),
			kindcluster.CreateWithWaitForReady(0), kindcluster.CreateWithKubeconfigPath(os.DevNull),
			kindcluster.CreateWithDisplayUsage(false), kindcluster.CreateWithDisplaySalutation(false))
	}()
	err = <-done
	if had {
		os.Setenv(networkEnv, old)
	} else {
		os.Unsetenv(networkEnv)
	}
	createMu.Unlock()
	if err != nil {
		c.delete(context.Background())
		return nil, fmt.Errorf("kind create cluster %s: %w", name, err)
	}
	if ctx.Err() != nil {
		c.delete(context.Background())
		return nil, ctx.Err()
	}
	ins, err := cli.ContainerInspect(ctx, c.nodeContainer(), client.ContainerInspectOptions{})
	if err != nil {
		c.delete(context.Background())
		return nil, err
	}
	for port, binds := range ins.Container.NetworkSettings.Ports {
		if port.Num() == ingressNodePort && len(binds) > 0 {
			c.ingress = binds[0].HostIP.String() + ":" + binds[0].HostPort
		}
	}
	if c.ingress == "" {
		c.delete(context.Background())
		return nil, fmt.Errorf("kind node %s: no host port for %d", c.nodeContainer(), ingressNodePort)
	}
	return c, nil
}

// kubeconfig is the cluster's kubeconfig for this host (the API server on
// 127.0.0.1).
func (c *cluster) kubeconfig() (string, error) { return c.provider.KubeConfig(c.name, false) }

// load puts docker images into the node's containerd, as `kind load
// docker-image` does (nodeutils.LoadImageArchive over `docker save`).
func (c *cluster) load(ctx context.Context, images ...string) error {
	ns, err := c.provider.ListInternalNodes(c.name)
	if err != nil {
		return err
	}
	for _, img := range images {
		for _, n := range ns {
			if loaded(n, img) {
				continue
			}
			rc, err := c.docker.ImageSave(ctx, []string{img})
			if err != nil {
				return fmt.Errorf("docker save %s: %w", img, err)
			}
			// As nodeutils.LoadImageArchive, with ctr's own words on failure.
			var stderr bytes.Buffer
			err = n.Command("ctr", "--namespace=k8s.io", "images", "import", "--all-platforms", "--digests", "--snapshotter=overlayfs", "-").
				SetStdin(rc).SetStderr(&stderr).Run()
			rc.Close()
			if err != nil {
				return fmt.Errorf("kind load %s: %w: %s", img, err, strings.TrimSpace(stderr.String()))
			}
		}
	}
	return nil
}

// loaded reports whether a node's containerd already has the image.
func loaded(n nodes.Node, img string) bool {
	ref := img
	if strings.Count(img, "/") == 1 {
		ref = "docker.io/" + img
	}
	_, err := nodeutils.ImageID(n, ref)
	return err == nil
}

// delete removes the cluster and its network. It is safe to call twice.
func (c *cluster) delete(ctx context.Context) error {
	err := c.provider.Delete(c.name, os.DevNull)
	if err == nil {
		forgetOwner(c.name)
	}
	if _, nerr := c.docker.NetworkRemove(ctx, c.name, client.NetworkRemoveOptions{}); nerr != nil && !strings.Contains(nerr.Error(), "not found") && err == nil {
		err = nerr
	}
	return err
}

// kindLogger passes kind's progress to the run's log at debug level.
type kindLogger struct {
	debugf func(format string, args ...any)
}

func (l kindLogger) Warn(message string)                      { l.debugf("%s", message) }
func (l kindLogger) Warnf(format string, args ...any)         { l.debugf(format, args...) }
func (l kindLogger) Error(message string)                     { l.debugf("%s", message) }
func (l kindLogger) Errorf(format string, args ...any)        { l.debugf(format, args...) }
func (l kindLogger) V(level kindlog.Level) kindlog.InfoLogger { return l }
func (l kindLogger) Info(message string)                      { l.debugf("%s", message) }
func (l kindLogger) Infof(format string, args ...any)         { l.debugf(format, args...) }
func (l kindLogger) Enabled() bool                            { return true }
