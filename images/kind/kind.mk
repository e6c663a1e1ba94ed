# Included from the main Makefile (include images/kind/kind.mk); run from the
# repository's root.

.PHONY: kind-images kind-images-verify kind-images-clean kind-images-mods

## kind-images: the kind node image (Kubernetes, etcd, CoreDNS, containerd,
## CNI plugins, pause, all built from source offline), the istiod and proxy
## images, the kind CLI, images/kind/out/cluster-config.yaml and Istio's
## CRDs; what is already built (content-keyed tags) is reused. Needs a
## Docker engine (make docker-engine) and root for debootstrap.
kind-images:
	bash images/kind/build.sh all

## kind-images-verify: a probe kind cluster from the node image (nodes Ready,
## kube-system Running, istiod loaded), then deleted
kind-images-verify: kind-images
	bash images/kind/build.sh verify

## kind-images-clean: remove every image and build container labelled
## meshbench.kind-build, and images/kind/out
kind-images-clean:
	bash images/kind/build.sh clean

## kind-images-mods: regenerate the wrapper go.mod/go.sum files after a
## version change in images/kind/versions.env
kind-images-mods:
	bash images/kind/gen-mods.sh
