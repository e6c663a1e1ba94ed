#!/usr/bin/env bash
# make kind-images: everything the kind runtime needs, built offline as
# Docker images, reusing what is already built.
#
#   build.sh [all]     every step below, in order (what make kind-images runs)
#   build.sh STEP...   only those steps (and nothing they depend on: run
#                      `all` once first)
#   build.sh verify    a probe cluster from the node image, then deleted
#   build.sh clean     remove what this script made (images, out/)
#
# Steps: base k8s etcd coredns containerd crictl cni pause kindcli
#        components node istio-bins istiod proxy config
#
# There is no registry here, so nothing is pulled. The node image is built
# the way `kind build node-image` builds it (which cannot run offline: it
# fetches etcd, coredns and pause): a debootstrap Debian rootfs imported
# into Docker, kind's base files read from the sigs.k8s.io/kind module in
# the Go module cache, every binary built from a Go module through a
# wrapper module under mods/ (go.mod `tool` lines, committed go.sum, built
# -mod=readonly), pause compiled from its C file in the k8s module, the
# component images written as image archives FROM scratch, then imported
# into the node's containerd and committed.
#
# Every output is keyed on a hash of its inputs (versions.env, the wrapper
# go.mod/go.sum, the source of the function that builds it, the base files,
# the keys of what it is built from): a binary step is skipped when its stamp
# in out/stamps matches, an image step when `docker image inspect` finds the
# keyed tag. Each step prints its time.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT="$HERE/out"
BIN="$OUT/bin"
STAMPS="$OUT/stamps"
MAIN_MODULE=$(cd "$HERE/../.." && pwd)
# shellcheck source=versions.env
. "$HERE/versions.env"

export PATH="/usr/local/go/bin:$PATH"
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false -trimpath" CGO_ENABLED=0
# Docker CLI 23+ builds with BuildKit through buildx, absent here; the
# classic builder works against engine 20.10 and needs no registry.
export DOCKER_BUILDKIT=0
LABEL=meshbench.kind-build
BUILD_CONTAINER_PREFIX=meshbench-kind-build
PROBE_CLUSTER=meshbench-kind-probe

mkdir -p "$BIN" "$STAMPS"

# ---------------------------------------------------------------- helpers

log() { printf 'kind-images: %s\n' "$*"; }
die() { printf 'kind-images: error: %s\n' "$*" >&2; exit 1; }

# key WORD... : a 16-hex-digit hash of the words; a word naming a file or a
# directory stands for its content (a directory: every file's path and hash).
key() {
  local w
  for w in "$@"; do
    if [ -f "$w" ]; then
      printf 'file %s\n' "$(basename "$w")"; cat "$w"
    elif [ -d "$w" ]; then
      printf 'dir %s\n' "$(basename "$w")"
      (cd "$w" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
    else
      printf 'word %s\n' "$w"
    fi
  done | sha256sum | cut -c1-16
}

# fnkey FN... : the source text of shell functions, so that editing one step
# re-keys that step alone.
fnkey() { local f; for f in "$@"; do declare -f "$f"; done; }

# set in main: the Go toolchain and the helpers every binary step shares
COMMON_KEY=""
BUILD_TAGS=""

modcache_dir() { (cd "$HERE/mods/k8s" && go mod download -json "$1@$2" | jq -r .Dir); }
kind_src() { modcache_dir sigs.k8s.io/kind "$KIND_VERSION"; }
k8s_src() { modcache_dir k8s.io/kubernetes "$K8S_VERSION"; }

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

STEP_NAME="" STEP_T0=0
TIMES=()
step_begin() { STEP_NAME=$1; STEP_T0=$(date +%s.%N); log "[$STEP_NAME] $2"; }
step_end() {
  local dt
  dt=$(awk -v a="$STEP_T0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
  log "[$STEP_NAME] ${1:-done} in ${dt}s"
  TIMES+=("$(printf '%-11s %8ss  %s' "$STEP_NAME" "$dt" "${1:-built}")")
}

# stamp_ok STEP KEY FILE... : the step's last build had this key and its
# outputs exist.
stamp_ok() {
  local step=$1 k=$2 f; shift 2
  [ -f "$STAMPS/$step" ] && [ "$(cat "$STAMPS/$step")" = "$k" ] || return 1
  for f in "$@"; do [ -e "$f" ] || return 1; done
}
stamp_set() { echo "$2" > "$STAMPS/$1"; }
# need_stamps STEP... : the steps were built (their keys feed a later key)
need_stamps() {
  local s
  for s in "$@"; do [ -f "$STAMPS/$s" ] || die "step $s has not been built: run build.sh all"; done
}

# gobuild MODDIR LDFLAGS PKG... : build the packages of a wrapper module into
# out/bin, static, with its committed go.sum.
gobuild() {
  local dir=$1 ldflags=$2; shift 2
  (cd "$HERE/mods/$dir" 2>/dev/null || cd "$HERE/$dir"
   go build ${BUILD_TAGS:+-tags=$BUILD_TAGS} -o "$BIN/" -ldflags "-s -w $ldflags" "$@")
}

# binstep STEP MODDIR LDFLAGS "BIN..." PKG... : a binary step, skipped when
# its key is unchanged.
binstep() {
  local step=$1 dir=$2 ldflags=$3 bins=$4; shift 4
  local mdir="$HERE/mods/$dir"; [ -d "$mdir" ] || mdir="$HERE/$dir"
  local k b outs=()
  k=$(key "$COMMON_KEY" "$mdir/go.mod" "$mdir/go.sum" "$ldflags" "$BUILD_TAGS" "$*" "$(fnkey binstep "step_$step")")
  for b in $bins; do outs+=("$BIN/$b"); done
  step_begin "$step" "key $k: $bins"
  if stamp_ok "$step" "$k" "${outs[@]}"; then step_end "up to date"; return; fi
  gobuild "$dir" "$ldflags" "$@"
  for b in $bins; do [ -x "$BIN/$b" ] || die "$step: $b was not built"; done
  stamp_set "$step" "$k"
  step_end
}

# image_archive OUT.tar REF ENTRYPOINT-JSON LAYER.tar... : a Docker image
# archive (what `docker save` writes; ctr and `docker load` read it) built
# without Docker, reproducibly: same layers, same digests.
image_archive() {
  local out=$1 ref=$2 entrypoint=$3; shift 3
  local tmp l d diffids=() layers=()
  tmp=$(mktemp -d "$OUT/archive.XXXXXX")
  for l in "$@"; do
    d=$(sha256sum "$l" | cut -d' ' -f1)
    mkdir -p "$tmp/$d"
    ln "$l" "$tmp/$d/layer.tar" 2>/dev/null || cp "$l" "$tmp/$d/layer.tar"
    diffids+=("sha256:$d"); layers+=("$d/layer.tar")
  done
  jq -n --arg ep "$entrypoint" --args '{
      architecture: "amd64", os: "linux",
      config: {Entrypoint: ($ep | fromjson), WorkingDir: "/",
               Env: ["PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"],
               Labels: {"meshbench.kind-build": "component"}},
      rootfs: {type: "layers", diff_ids: $ARGS.positional}}' "${diffids[@]}" > "$tmp/config.json"
  d=$(sha256sum "$tmp/config.json" | cut -d' ' -f1)
  mv "$tmp/config.json" "$tmp/$d.json"
  jq -n --arg cfg "$d.json" --arg ref "$ref" --args \
    '[{Config: $cfg, RepoTags: [$ref], Layers: $ARGS.positional}]' "${layers[@]}" > "$tmp/manifest.json"
  tar -C "$tmp" --owner=0 --group=0 --numeric-owner --mtime=@0 --sort=name -cf "$out.tmp" .
  mv "$out.tmp" "$out"
  rm -rf "$tmp"
}

# files_layer OUT.tar SRC-DIR : a reproducible layer of a directory tree.
files_layer() {
  tar -C "$2" --owner=0 --group=0 --numeric-owner --mtime=@0 --sort=name -cf "$1" .
}

# ------------------------------------------------------------------ steps

# base: Debian minbase with systemd and the node's networking tools, imported
# into Docker. kind's own base adds nfs/iscsi/e2fsprogs for storage e2e tests
# and fuse-overlayfs for rootless; not needed here. runc is Debian's.
BASE_PACKAGES=systemd,dbus,iptables,nftables,conntrack,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,ca-certificates,jq,procps,bash,runc,iputils-ping,passwd
BASE_MIRROR=http://deb.debian.org/debian
vars_base() {
  BASE_KEY=$(key "$DEBIAN_SUITE" "$BASE_PACKAGES" "$BASE_MIRROR" "$(fnkey step_base vars_base files_layer)")
  BASE_IMAGE=meshbench/kind-base:$BASE_KEY
  BASE_ROOTFS_TAR=$OUT/base/rootfs-$BASE_KEY.tar
}
step_base() {
  vars_base
  local k=$BASE_KEY
  step_begin base "key $k: debootstrap $DEBIAN_SUITE + $BASE_PACKAGES"
  if have_image "$BASE_IMAGE" && [ -f "$BASE_ROOTFS_TAR" ]; then step_end "up to date"; return; fi
  command -v debootstrap >/dev/null || {
    log "[base] installing debootstrap from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  }
  local root="$OUT/base/rootfs"
  if [ -f "$BASE_ROOTFS_TAR" ]; then
    log "[base] reusing $BASE_ROOTFS_TAR"
  else
  rm -rf "$root"; mkdir -p "$root"
  debootstrap --variant=minbase --include="$BASE_PACKAGES" "$DEBIAN_SUITE" "$root" "$BASE_MIRROR" \
    > "$OUT/base/debootstrap.log" 2>&1 || { tail -20 "$OUT/base/debootstrap.log" >&2; die "debootstrap failed"; }
  # what kind's base Dockerfile does after installing its packages
  find "$root/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
  rm -f "$root"/lib/systemd/system/multi-user.target.wants/* "$root"/etc/systemd/system/*.wants/* \
        "$root"/lib/systemd/system/local-fs.target.wants/* "$root"/lib/systemd/system/sockets.target.wants/*udev* \
        "$root"/lib/systemd/system/sockets.target.wants/*initctl* "$root"/lib/systemd/system/basic.target.wants/*
  echo "ReadKMsg=no" >> "$root/etc/systemd/journald.conf"
  ln -sf /usr/lib/systemd/systemd "$root/sbin/init"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
  : > "$root/etc/resolv.conf"; : > "$root/etc/hostname"
  files_layer "$BASE_ROOTFS_TAR.tmp" "$root"
  mv "$BASE_ROOTFS_TAR.tmp" "$BASE_ROOTFS_TAR"
  rm -rf "$root"
  fi
  # (docker import takes no STOPSIGNAL: the node's Dockerfile sets it)
  docker import \
    --change 'ENV container=docker' \
    --change 'ENTRYPOINT ["/sbin/init"]' \
    --change "LABEL $LABEL=base" \
    "$BASE_ROOTFS_TAR" "$BASE_IMAGE" >/dev/null
  # older keyed rootfs tars are stale
  find "$OUT/base" -name 'rootfs-*.tar' ! -name "rootfs-$k.tar" -delete
  step_end
}

k8s_ldflags() {
  local v=${K8S_VERSION#v} pkg fl=""
  local major=${v%%.*} minor
  minor=${v#*.}; minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    fl+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    fl+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$fl"
}
K8S_BINS="kubelet kubeadm kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy"
step_k8s() {
  local pkgs=() b
  for b in $K8S_BINS; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  binstep k8s k8s "$(k8s_ldflags)" "$K8S_BINS" "${pkgs[@]}"
}
step_etcd() {
  binstep etcd etcd "-X go.etcd.io/etcd/api/v3/version.GitSHA=${ETCD_VERSION}" "server" go.etcd.io/etcd/server/v3
  # go build names the binary after the module's last element
  if [ ! -e "$BIN/etcd" ] || [ "$BIN/server" -nt "$BIN/etcd" ]; then cp "$BIN/server" "$BIN/etcd"; fi
}
step_coredns() {
  binstep coredns coredns "-X github.com/coredns/coredns/coremain.GitCommit=${COREDNS_VERSION}" "coredns" github.com/coredns/coredns
}
step_containerd() {
  local cpkg=github.com/containerd/containerd/v2
  # the same snapshotters kind leaves out; static, so no btrfs cgo headers
  BUILD_TAGS=no_aufs,no_zfs,no_btrfs,no_devmapper \
  binstep containerd containerd \
    "-X $cpkg/version.Version=$CONTAINERD_VERSION -X $cpkg/version.Package=github.com/containerd/containerd/v2" \
    "containerd ctr containerd-shim-runc-v2" \
    $cpkg/cmd/containerd $cpkg/cmd/ctr $cpkg/cmd/containerd-shim-runc-v2
}
step_crictl() {
  binstep crictl crictl "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRI_TOOLS_VERSION" "crictl" sigs.k8s.io/cri-tools/cmd/crictl
}
step_cni() {
  local p=github.com/containernetworking/plugins/plugins
  binstep cni cni "-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" \
    "bridge loopback ptp host-local portmap" \
    $p/main/bridge $p/main/loopback $p/main/ptp $p/ipam/host-local $p/meta/portmap
}
step_kindcli() {
  binstep kindcli kind "" "kind" sigs.k8s.io/kind
}

# pause: kubelet's sandbox process, statically compiled with gcc from the C
# file in the k8s module, at the tag its Makefile gives.
pause_tag() { awk '$1 == "TAG" && $2 == "?=" {print $3}' "$(k8s_src)/build/pause/Makefile"; }
step_pause() {
  local src k tag
  src=$(k8s_src)/build/pause/linux/pause.c
  tag=$(pause_tag)
  k=$(key "$COMMON_KEY" "$src" "$tag" "$(fnkey step_pause)")
  step_begin pause "key $k: gcc -static $tag"
  if stamp_ok pause "$k" "$BIN/pause"; then step_end "up to date"; return; fi
  command -v gcc >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null
  }
  gcc -Os -Wall -Werror -static -DVERSION="v$tag-$K8S_VERSION" -o "$BIN/pause" "$src"
  strip "$BIN/pause"
  stamp_set pause "$k"
  step_end
}

# components: the images kubeadm's static pods, kube-proxy's DaemonSet,
# CoreDNS and the sandboxes run, as image archives. FROM scratch, but
# kube-proxy: it runs iptables/nft and conntrack, so its image is the base
# rootfs plus the binary. Tags are honest versions; the cluster config tells
# kubeadm which.
ETCD_TAG=${ETCD_VERSION#v}
COREDNS_TAG=$COREDNS_VERSION
component_refs() {
  echo "$IMAGE_REPO/kube-apiserver:$K8S_VERSION $IMAGE_REPO/kube-controller-manager:$K8S_VERSION" \
       "$IMAGE_REPO/kube-scheduler:$K8S_VERSION $IMAGE_REPO/kube-proxy:$K8S_VERSION" \
       "$IMAGE_REPO/etcd:$ETCD_TAG $IMAGE_REPO/coredns:$COREDNS_TAG $IMAGE_REPO/pause:$(pause_tag)"
}
vars_components() {
  need_stamps k8s etcd coredns pause
  COMPONENTS_KEY=$(key "$(cat "$STAMPS"/{k8s,etcd,coredns,pause})" "$BASE_KEY" \
        "$(fnkey step_components vars_components image_archive files_layer component_refs)" "$(component_refs)")
  COMPONENTS_DIR=$OUT/components-$COMPONENTS_KEY
}
step_components() {
  vars_components
  local k=$COMPONENTS_KEY d c
  step_begin components "key $k: $(component_refs | wc -w) image archives"
  if stamp_ok components "$k" "$COMPONENTS_DIR/done"; then step_end "up to date"; return; fi
  rm -rf "$OUT"/components-*; mkdir -p "$COMPONENTS_DIR/layers"
  d=$(mktemp -d "$OUT/layer.XXXXXX")
  chmod 0755 "$d"
  # one layer per binary, at /usr/local/bin (kubeadm's manifests call the
  # control-plane binaries by name, kube-proxy's DaemonSet by that path)
  for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd coredns pause; do
    find "$d" -mindepth 1 -delete; mkdir -p "$d/usr/local/bin" "$d/tmp"; chmod 1777 "$d/tmp"
    cp "$BIN/$c" "$d/usr/local/bin/$c"
    [ "$c" = coredns ] && ln -s usr/local/bin/coredns "$d/coredns"   # upstream's path
    [ "$c" = pause ] && ln -s usr/local/bin/pause "$d/pause"
    files_layer "$COMPONENTS_DIR/layers/$c.tar" "$d"
  done
  rm -rf "$d"
  local L=$COMPONENTS_DIR/layers
  image_archive "$COMPONENTS_DIR/kube-apiserver.tar" "$IMAGE_REPO/kube-apiserver:$K8S_VERSION" '["/usr/local/bin/kube-apiserver"]' "$L/kube-apiserver.tar"
  image_archive "$COMPONENTS_DIR/kube-controller-manager.tar" "$IMAGE_REPO/kube-controller-manager:$K8S_VERSION" '["/usr/local/bin/kube-controller-manager"]' "$L/kube-controller-manager.tar"
  image_archive "$COMPONENTS_DIR/kube-scheduler.tar" "$IMAGE_REPO/kube-scheduler:$K8S_VERSION" '["/usr/local/bin/kube-scheduler"]' "$L/kube-scheduler.tar"
  image_archive "$COMPONENTS_DIR/kube-proxy.tar" "$IMAGE_REPO/kube-proxy:$K8S_VERSION" '["/usr/local/bin/kube-proxy"]' "$BASE_ROOTFS_TAR" "$L/kube-proxy.tar"
  image_archive "$COMPONENTS_DIR/etcd.tar" "$IMAGE_REPO/etcd:$ETCD_TAG" '["/usr/local/bin/etcd"]' "$L/etcd.tar"
  image_archive "$COMPONENTS_DIR/coredns.tar" "$IMAGE_REPO/coredns:$COREDNS_TAG" '["/coredns"]' "$L/coredns.tar"
  image_archive "$COMPONENTS_DIR/pause.tar" "$IMAGE_REPO/pause:$(pause_tag)" '["/pause"]' "$L/pause.tar"
  rm -rf "$L"
  touch "$COMPONENTS_DIR/done"
  stamp_set components "$k"
  step_end
}

# The only CNI: a static bridge conflist (the cluster config disables kind's
# kindnetd, whose image cannot be had). One node: every pod on one bridge,
# in kind's default pod subnet.
CNI_CONFLIST='{
  "cniVersion": "1.0.0",
  "name": "meshbench-bridge",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}'

# kubeadm's view of our images: the ClusterConfiguration fields the cluster
# config patches, checked against what the node holds.
kubeadm_cluster_patch() {
  cat <<EOF
kind: ClusterConfiguration
imageRepository: $IMAGE_REPO
etcd:
  local:
    imageTag: "$ETCD_TAG"
dns:
  imageTag: "$COREDNS_TAG"
EOF
}

# node: kind's base files and our binaries on the base image (the part of
# kind's base Dockerfile after apt), then run it, start containerd, import
# every component archive pinned, stop it, and commit with kind's
# entrypoint: what `kind build node-image` does after its pulls.
vars_node() {
  need_stamps k8s containerd crictl cni components
  NODE_KEY=$(key "$BASE_IMAGE" "$(kind_src)/images/base/files" "$(cat "$STAMPS"/{k8s,containerd,crictl,cni,components})" \
        "$CNI_CONFLIST" "$(kubeadm_cluster_patch)" "$(fnkey step_node vars_node kubeadm_cluster_patch)")
  NODE_IMAGE=meshbench/kind-node:$K8S_VERSION-$NODE_KEY
}
step_node() {
  vars_node
  local kdir k=$NODE_KEY ctx cid pre f
  kdir=$(kind_src)/images/base
  step_begin node "key $k: $NODE_IMAGE"
  if have_image "$NODE_IMAGE"; then step_end "up to date"; return; fi
  ctx=$OUT/node-ctx
  rm -rf "$ctx"; mkdir -p "$ctx/bin" "$ctx/localbin" "$ctx/cni"
  cp -r "$kdir/files" "$ctx/files"
  chmod -R u+w "$ctx/files"
  find "$ctx/files" -type d -exec chmod 0755 {} +
  find "$ctx/files" -type f -exec chmod 0644 {} +
  chmod 0755 "$ctx"/files/usr/local/bin/* "$ctx"/files/kind/bin/*
  for b in kubelet kubeadm kubectl; do cp "$BIN/$b" "$ctx/bin/"; done
  for b in containerd ctr containerd-shim-runc-v2 crictl; do cp "$BIN/$b" "$ctx/localbin/"; done
  for b in bridge loopback ptp host-local portmap; do cp "$BIN/$b" "$ctx/cni/"; done
  printf '%s\n' "$CNI_CONFLIST" > "$ctx/10-meshbench-bridge.conflist"
  { kubeadm_cluster_patch; echo "kubernetesVersion: $K8S_VERSION"; echo "apiVersion: kubeadm.k8s.io/v1beta4"; } > "$ctx/kubeadm-images.yaml"
  cat > "$ctx/Dockerfile" <<EOF
FROM $BASE_IMAGE
COPY files/usr/local/bin/ /usr/local/bin/
COPY files/kind/ /kind/
COPY files/LICENSES/ /LICENSES/
COPY files/etc/ /etc/
COPY bin/ /usr/bin/
COPY localbin/ /usr/local/bin/
COPY cni/ /opt/cni/bin/
COPY 10-meshbench-bridge.conflist /etc/cni/net.d/
COPY kubeadm-images.yaml /kind/kubeadm-images.yaml
ENV container=docker
# systemd exits on SIGRTMIN+3 (SIGTERM makes it re-execute)
STOPSIGNAL SIGRTMIN+3
RUN systemctl enable kubelet.service containerd.service undo-mount-hacks.service \\
 && systemctl mask systemd-binfmt.service \\
 && mkdir -p /etc/kubernetes/manifests \\
 && ctr oci spec \\
    | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \\
    | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json \\
 && sed -i 's|^\(\s*sandbox_image\s*=\s*\).*|\1"$IMAGE_REPO/pause:$(pause_tag)"|' /etc/containerd/config.toml \\
 && grep -q '"$IMAGE_REPO/pause:$(pause_tag)"' /etc/containerd/config.toml \\
 && echo "$K8S_VERSION" > /kind/version \\
 && containerd --version && runc --version | head -1 && kubelet --version
LABEL $LABEL=node-pre
EOF
  pre=meshbench/kind-node-pre:$k
  docker build -q --force-rm --label "$LABEL=node-pre" -t "$pre" "$ctx" >/dev/null
  cid=$BUILD_CONTAINER_PREFIX-node-$k
  docker rm -f "$cid" >/dev/null 2>&1 || true
  # the build container and the intermediate image go whatever happens
  trap 'docker rm -f -v "'"$cid"'" >/dev/null 2>&1 || true; docker rmi "'"$pre"'" >/dev/null 2>&1 || true' EXIT
  docker run -d --privileged --name "$cid" --label "$LABEL=build-container" \
    --security-opt seccomp=unconfined --entrypoint sleep "$pre" infinity >/dev/null
  docker exec "$cid" bash -c 'nohup containerd > /var/log/containerd-build.log 2>&1 &'
  local i
  for i in $(seq 1 30); do
    docker exec "$cid" ctr info >/dev/null 2>&1 && break
    [ "$i" = 30 ] && { docker exec "$cid" tail -20 /var/log/containerd-build.log >&2; die "containerd did not start in the build container"; }
    sleep 1
  done
  for f in "$COMPONENTS_DIR"/*.tar; do
    docker exec -i "$cid" ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
      --all-platforms --no-unpack --digests - < "$f" >/dev/null
  done
  # every image kubeadm will ask for, with our repository and tags, is there
  local want have missing
  want=$(docker exec "$cid" kubeadm config images list --config /kind/kubeadm-images.yaml 2>/dev/null | grep -v '/pause:')
  want+=$'\n'"$IMAGE_REPO/pause:$(pause_tag)"
  have=$(docker exec "$cid" ctr --namespace=k8s.io images list -q)
  missing=$(comm -23 <(sort -u <<<"$want") <(sort -u <<<"$have"))
  [ -z "$missing" ] || die "node: kubeadm wants images the node lacks: $missing"
  log "[node] images in the node: $(grep -v -e '^sha256:' -e '^import-' <<<"$have" | tr '\n' ' ')"
  docker exec "$cid" pkill containerd
  # (sleep, PID 1 here, reaps nobody: a zombie containerd has stopped)
  for i in $(seq 1 30); do
    docker exec "$cid" sh -c 'for p in $(pgrep -x containerd); do grep -q "^State:[[:space:]]*Z" /proc/$p/status || exit 0; done; exit 1' || break
    [ "$i" = 30 ] && die "containerd did not stop in the build container"
    sleep 1
  done
  docker exec "$cid" rm -f /var/log/containerd-build.log
  docker commit \
    --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' \
    --change 'CMD []' \
    --change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' \
    --change "LABEL $LABEL=node" \
    "$cid" "$NODE_IMAGE" >/dev/null
  docker rm -f -v "$cid" >/dev/null
  docker rmi "$pre" >/dev/null
  trap - EXIT
  step_end
}

istio_ldflags() {
  local p=istio.io/istio/pkg/version
  echo "-X $p.buildVersion=$ISTIO_VERSION -X $p.buildGitRevision=${ISTIO_VERSION##*-} -X $p.buildStatus=Clean -X $p.buildTag=$ISTIO_VERSION"
}
step_istio-bins() {
  binstep istio-bins istio "$(istio_ldflags)" "pilot-discovery pilot-agent istioctl" \
    istio.io/istio/pilot/cmd/pilot-discovery istio.io/istio/pilot/cmd/pilot-agent \
    istio.io/istio/istioctl/cmd/istioctl
}

# istiod: pilot-discovery FROM scratch, with CA certificates, a /tmp and
# the istio-proxy user (uid 1337) it runs as upstream.
vars_istiod() {
  need_stamps istio-bins
  ISTIOD_KEY=$(key "$(cat "$STAMPS/istio-bins")" "$(fnkey step_istiod vars_istiod)")
  ISTIOD_IMAGE=meshbench/istiod:$ISTIOD_KEY
}
step_istiod() {
  vars_istiod
  local k=$ISTIOD_KEY ctx
  step_begin istiod "key $k: $ISTIOD_IMAGE"
  if have_image "$ISTIOD_IMAGE"; then step_end "up to date"; return; fi
  ctx=$OUT/istiod-ctx
  rm -rf "$ctx"; mkdir -p "$ctx/root/usr/local/bin" "$ctx/root/etc/ssl/certs" "$ctx/root/tmp" "$ctx/root/var/lib/istio"
  chmod 1777 "$ctx/root/tmp"
  cp "$BIN/pilot-discovery" "$ctx/root/usr/local/bin/"
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/root/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nistio-proxy:x:1337:1337:istio-proxy:/home/istio-proxy:/sbin/nologin\n' > "$ctx/root/etc/passwd"
  printf 'root:x:0:\nistio-proxy:x:1337:\n' > "$ctx/root/etc/group"
  cat > "$ctx/Dockerfile" <<EOF
FROM scratch
COPY root/ /
USER 1337:1337
ENTRYPOINT ["/usr/local/bin/pilot-discovery"]
LABEL $LABEL=istiod
EOF
  docker build -q --force-rm --label "$LABEL=istiod" -t "$ISTIOD_IMAGE" "$ctx" >/dev/null
  step_end
}

# proxy: Istio's pilot-agent (bootstrap, CA and SDS, the xDS proxy,
# istio-iptables) on the base rootfs (it needs iptables), laid out like
# Istio's proxyv2 image, plus meshbench, built static from this tree, at
# /usr/local/bin/meshbench.
# meshbench is also /usr/local/bin/envoy, pilot-agent's default proxy
# binary: it execs it with Envoy's flags (-c /etc/istio/proxy/envoy-rev.json ...).
vars_proxy() {
  need_stamps istio-bins
  # the image is keyed on the binary itself: go build always runs (its
  # cache makes an unchanged tree quick), the image rebuilds only when the
  # binary changed
  (cd "$MAIN_MODULE" && GOFLAGS=-buildvcs=false go build -trimpath -o "$BIN/meshbench" ./cmd/meshbench)
  PROXY_KEY=$(key "$BASE_IMAGE" "$(cat "$STAMPS/istio-bins")" "$BIN/meshbench" "$(fnkey step_proxy vars_proxy)")
  PROXY_IMAGE=meshbench/istio-proxy:$PROXY_KEY
}
step_proxy() {
  step_begin meshbench "go build ./cmd/meshbench (static, CGO_ENABLED=0)"
  vars_proxy
  step_end "built"
  local k=$PROXY_KEY ctx
  step_begin proxy "key $k: $PROXY_IMAGE"
  if have_image "$PROXY_IMAGE"; then step_end "up to date"; return; fi
  ctx=$OUT/proxy-ctx
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp "$BIN/pilot-agent" "$BIN/meshbench" "$ctx/"
  # the bootstrap template pilot-agent renders (pilot/docker/Dockerfile.proxyv2)
  cp "$(cd "$HERE/istio" && go mod download -json "istio.io/istio@$ISTIO_VERSION" | jq -r .Dir)/tools/packaging/common/envoy_bootstrap.json" "$ctx/"
  chmod 0644 "$ctx/envoy_bootstrap.json"
  cat > "$ctx/Dockerfile" <<EOF
FROM $BASE_IMAGE
RUN groupadd -g 1337 istio-proxy \\
 && useradd -u 1337 -g 1337 -d /home/istio-proxy -m -s /sbin/nologin istio-proxy \\
 && mkdir -p /etc/istio/proxy /var/lib/istio/data /var/lib/istio/config \\
 && chown -R 1337:1337 /etc/istio /var/lib/istio
COPY pilot-agent /usr/local/bin/pilot-agent
COPY envoy_bootstrap.json /var/lib/istio/envoy/envoy_bootstrap_tmpl.json
# the sidecar Istio's pilot-agent will start (TODO above)
ARG MESHBENCH_BIN=meshbench
COPY \${MESHBENCH_BIN} /usr/local/bin/meshbench
# pilot-agent execs ProxyConfig binaryPath, /usr/local/bin/envoy by default
# (mesh.DefaultProxyConfig): meshbench run under that name is the sidecar
# taking Envoy's flags and bootstrap
RUN ln -s meshbench /usr/local/bin/envoy
ENV container=
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/pilot-agent"]
LABEL $LABEL=istio-proxy
EOF
  docker build -q --force-rm --label "$LABEL=istio-proxy" -t "$PROXY_IMAGE" "$ctx" >/dev/null
  step_end
}

# config: the kind Cluster config the runtime (and verify) uses, Istio's
# CRDs, and a file naming every image built.
step_config() {
  step_begin config "cluster-config.yaml, istio-crds.yaml, istio-install.yaml, images.env"
  local idir gdir f
  vars_istiod; vars_proxy
  "$BIN/istioctl" manifest generate -f "$HERE/istio-operator.yaml" \
    --set "values.pilot.image=$ISTIOD_IMAGE" --set "values.global.proxy.image=$PROXY_IMAGE" \
    --set "values.global.proxy_init.image=$PROXY_IMAGE" > "$OUT/istio-install.yaml.tmp"
  # Istio's install has no Gateway API CRDs: add the standard channel's
  # (HTTPRoute, GRPCRoute, Gateway, ...) from the gateway-api module at the
  # version meshbench's go.mod pins, read at build time, never committed.
  gdir=$(cd "$HERE/istio" && go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | jq -r .Dir)
  for f in "$gdir"/config/crd/standard/gateway.networking.k8s.io_*.yaml; do
    case $f in *_vap_*) continue ;; esac # a ValidatingAdmissionPolicy, not a CRD
    printf -- '---\n' >> "$OUT/istio-install.yaml.tmp"
    cat "$f" >> "$OUT/istio-install.yaml.tmp"
  done
  mv "$OUT/istio-install.yaml.tmp" "$OUT/istio-install.yaml"
  idir=$(cd "$HERE/istio" && go mod download -json "istio.io/istio@$ISTIO_VERSION" | jq -r .Dir)
  cp "$idir/manifests/charts/base/files/crd-all.gen.yaml" "$OUT/istio-crds.yaml"
  chmod 0644 "$OUT/istio-crds.yaml"
  {
    echo "# Generated by images/kind/build.sh: the kind Cluster config for the node"
    echo "# image built here. Use with: kind create cluster --config THIS --name NAME"
    echo "kind: Cluster"
    echo "apiVersion: kind.x-k8s.io/v1alpha4"
    echo "nodes:"
    echo "- role: control-plane"
    echo "  image: $NODE_IMAGE"
    echo "networking:"
    echo "  # kindnetd's image cannot be had offline: the node image carries a static"
    echo "  # bridge conflist instead (/etc/cni/net.d/10-meshbench-bridge.conflist);"
    echo "  # one node only (its pod subnet is fixed)"
    echo "  disableDefaultCNI: true"
    echo "kubeadmConfigPatches:"
    echo "# the component images inside the node, at their real versions"
    echo "- |"
    kubeadm_cluster_patch | sed 's/^/  /'
    echo "# the engine here is cgroup v1; kubelet refuses it by default since 1.35"
    echo "- |"
    echo "  kind: KubeletConfiguration"
    echo "  failCgroupV1: false"
    echo "containerdConfigPatches:"
    echo "# pod sandboxes fail without it where the bounding set lacks CAP_SYS_RESOURCE"
    echo "- |-"
    echo "  [plugins.\"io.containerd.grpc.v1.cri\"]"
    echo "    restrict_oom_score_adj = true"
  } > "$OUT/cluster-config.yaml"
  {
    echo "# Generated by images/kind/build.sh"
    echo "KIND_NODE_IMAGE=$NODE_IMAGE"
    echo "KIND_BASE_IMAGE=$BASE_IMAGE"
    echo "ISTIOD_IMAGE=$ISTIOD_IMAGE"
    echo "ISTIO_PROXY_IMAGE=$PROXY_IMAGE"
    echo "ISTIO_VERSION=$ISTIO_VERSION"
    echo "K8S_VERSION=$K8S_VERSION"
    echo "KIND=$BIN/kind"
    echo "KUBECTL=$BIN/kubectl"
    echo "CLUSTER_CONFIG=$OUT/cluster-config.yaml"
    echo "ISTIO_CRDS=$OUT/istio-crds.yaml"
    echo "ISTIO_INSTALL=$OUT/istio-install.yaml"
  } > "$OUT/images.env"
  step_end "written"
}

ALL_STEPS="base k8s etcd coredns containerd crictl cni pause kindcli components node istio-bins istiod proxy config"

# ----------------------------------------------------------------- verify

# verify: a cluster from the node image with the kind CLI and the generated
# config; nodes Ready and kube-system Running; istiod loaded with kind load;
# then deleted whatever happened. On its own docker network, named after it.
verify() {
  [ -f "$OUT/images.env" ] || die "verify: run build.sh all first"
  # shellcheck disable=SC1091
  . "$OUT/images.env"
  local kc=$OUT/probe.kubeconfig t0 t1 i
  export KIND_EXPERIMENTAL_DOCKER_NETWORK=$PROBE_CLUSTER
  cleanup_probe() {
    "$KIND" delete cluster --name "$PROBE_CLUSTER" --kubeconfig "$kc" >/dev/null 2>&1 || true
    docker network rm "$PROBE_CLUSTER" >/dev/null 2>&1 || true
    rm -f "$kc"
  }
  trap cleanup_probe EXIT
  cleanup_probe
  step_begin probe "kind create cluster --name $PROBE_CLUSTER ($KIND_NODE_IMAGE)"
  t0=$(date +%s.%N)
  "$KIND" create cluster --name "$PROBE_CLUSTER" --config "$CLUSTER_CONFIG" --kubeconfig "$kc" --wait 0s --retain
  local k="$KUBECTL --kubeconfig $kc"
  for i in $(seq 1 180); do
    $k get nodes --no-headers 2>/dev/null | awk '$2 != "Ready" {bad=1} END {exit bad || NR == 0}' && break
    [ "$i" = 180 ] && { $k get nodes -o wide >&2 || true; die "verify: nodes not Ready in 180s"; }
    sleep 1
  done
  t1=$(date +%s.%N)
  log "[probe] nodes Ready $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')s after kind create began"
  for i in $(seq 1 180); do
    # every component there (not just the static pods, first to come) and
    # all of them Running and ready
    $k -n kube-system get pods --no-headers 2>/dev/null | awk '
      {split($2, r, "/"); if ($3 != "Running" || r[1] != r[2]) bad = 1
       for (c in want) if (index($1, c) == 1) seen[c] = 1}
      BEGIN {split("etcd- kube-apiserver- kube-controller-manager- kube-scheduler- kube-proxy- coredns-", w, " ")
             for (i in w) want[w[i]] = 1}
      END {for (c in want) if (!(c in seen)) bad = 1; exit bad}' && break
    [ "$i" = 180 ] && { $k -n kube-system get pods -o wide >&2 || true; die "verify: kube-system pods not Running and ready in 180s"; }
    sleep 1
  done
  log "[probe] kube-system Running and ready $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')s after kind create began"
  $k get nodes -o wide
  $k -n kube-system get pods -o wide
  step_end "cluster up"
  step_begin load "kind load docker-image $ISTIOD_IMAGE $ISTIO_PROXY_IMAGE"
  "$KIND" load docker-image --name "$PROBE_CLUSTER" "$ISTIOD_IMAGE" "$ISTIO_PROXY_IMAGE"
  docker exec "$PROBE_CLUSTER-control-plane" crictl images | grep -E 'istiod|istio-proxy' \
    || die "verify: the istio images are not in the node after kind load"
  step_end "loaded"
  step_begin delete "kind delete cluster --name $PROBE_CLUSTER"
  cleanup_probe
  trap - EXIT
  step_end "deleted"
}

# ------------------------------------------------------------------ clean

# clean: only what carries this script's label or names, never anything of
# another run.
clean() {
  local ids
  [ -x "$BIN/kind" ] && "$BIN/kind" delete cluster --name "$PROBE_CLUSTER" >/dev/null 2>&1 || true
  docker network rm "$PROBE_CLUSTER" >/dev/null 2>&1 || true
  ids=$(docker ps -aq --filter "label=$LABEL")
  [ -z "$ids" ] || docker rm -f -v $ids >/dev/null
  ids=$(docker images -q --filter "label=$LABEL" | sort -u)
  [ -z "$ids" ] || docker rmi -f $ids >/dev/null || true
  rm -rf "$OUT"
  log "clean: removed images labelled $LABEL and $OUT"
}

# ------------------------------------------------------------------- main

# prune_superseded: after a full build, the images of ours whose key is no
# longer current (a version or a script changed) go, unless a container
# still uses them.
prune_superseded() {
  local ref current="$BASE_IMAGE $NODE_IMAGE $ISTIOD_IMAGE $PROXY_IMAGE"
  docker images --filter "label=$LABEL" --format '{{.Repository}}:{{.Tag}}' | while read -r ref; do
    case "$ref" in *"<none>"*) continue ;; esac
    case " $current " in *" $ref "*) continue ;; esac
    if docker rmi "$ref" >/dev/null 2>&1; then log "removed superseded $ref"; fi
  done
}

summary() {
  local t
  log "step times:"
  for t in "${TIMES[@]}"; do log "  $t"; done
}

main() {
  local t0 steps s
  t0=$(date +%s)
  COMMON_KEY=$(key "$(go env GOVERSION)" "$(fnkey key fnkey gobuild)")
  case "${1:-all}" in
    clean) clean; return ;;
    verify) verify; summary; return ;;
    all) steps=$ALL_STEPS ;;
    *) steps="$*" ;;
  esac
  for s in $steps; do
    case " $ALL_STEPS " in *" $s "*) ;; *) die "unknown step $s (steps: $ALL_STEPS)" ;; esac
  done
  # a step not asked for still gives later ones its key and tag (from the
  # stamps of what was built before)
  local last=""
  for s in $ALL_STEPS; do case " $steps " in *" $s "*) last=$s ;; esac; done
  for s in $ALL_STEPS; do
    case " $steps " in
      *" $s "*) "step_$s" ;;
      *) if declare -F "vars_$s" >/dev/null; then "vars_$s"; fi ;;
    esac
    [ "$s" != "$last" ] || break
  done
  [ "${1:-all}" != all ] || prune_superseded
  summary
  log "total $(( $(date +%s) - t0 ))s"
  if [ -n "${NODE_IMAGE:-}" ]; then
    docker images --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' --filter "label=$LABEL" | sort | sed 's/^/kind-images:/'
  fi
}

main "$@"; exit
