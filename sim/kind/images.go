package kind

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ImagesEnv names the file `make kind-images` writes (images/kind/out/images.env):
// every image and file the runtime uses. MESHBENCH_KIND_IMAGES overrides where it is.
const ImagesEnv = "MESHBENCH_KIND_IMAGES"

// Images are what `make kind-images` built, read from its images.env.
type Images struct {
	Node, Istiod, Proxy string
	// ClusterConfig is the kind Cluster config for Node; IstioInstall the
	// manifest `istioctl manifest generate` rendered for these images.
	ClusterConfig, IstioInstall     string
	IstioVersion, KubernetesVersion string
}

// FindImages reads images.env from $MESHBENCH_KIND_IMAGES, or from
// images/kind/out/ under the working directory, the executable's directory
// or one of their parents.
func FindImages() (Images, error) {
	if path := os.Getenv(ImagesEnv); path != "" {
		return readImages(path)
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for {
			p := filepath.Join(dir, "images", "kind", "out", "images.env")
			if _, err := os.Stat(p); err == nil {
				return readImages(p)
			}
			up := filepath.Dir(dir)
			if up == dir {
				break
			}
			dir = up
		}
	}
	return Images{}, errors.New("the kind images are not built: run `make kind-images` (or set " + ImagesEnv + " to its images.env)")
}

func readImages(path string) (Images, error) {
	f, err := os.Open(path)
	if err != nil {
		return Images{}, fmt.Errorf("kind images: %w (run `make kind-images`)", err)
	}
	defer f.Close()
	vals := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return Images{}, fmt.Errorf("%s: %q is not KEY=VALUE", path, line)
		}
		vals[k] = v
	}
	if err := sc.Err(); err != nil {
		return Images{}, err
	}
	im := Images{
		Node: vals["KIND_NODE_IMAGE"], Istiod: vals["ISTIOD_IMAGE"], Proxy: vals["ISTIO_PROXY_IMAGE"],
		ClusterConfig: vals["CLUSTER_CONFIG"], IstioInstall: vals["ISTIO_INSTALL"],
		IstioVersion: vals["ISTIO_VERSION"], KubernetesVersion: vals["K8S_VERSION"],
	}
	for k, v := range map[string]string{"KIND_NODE_IMAGE": im.Node, "ISTIOD_IMAGE": im.Istiod, "ISTIO_PROXY_IMAGE": im.Proxy, "CLUSTER_CONFIG": im.ClusterConfig, "ISTIO_INSTALL": im.IstioInstall} {
		if v == "" {
			return Images{}, fmt.Errorf("%s has no %s: rebuild with `make kind-images`", path, k)
		}
	}
	return im, nil
}
