#!/usr/bin/env bash
# Brings up a Docker engine where none answers; does nothing where one does
# (Docker Desktop, a distribution's engine, a CI service). On Debian it
# installs docker.io, registers runc-capfilter as the default runtime when
# the capability bounding set lacks a capability Docker asks for (some VMs
# drop CAP_SYS_RESOURCE), and starts dockerd in the background.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

if docker info >/dev/null 2>&1; then
  echo "docker-engine: an engine answers: $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "docker-engine: no engine answers and this is not root: start your Docker engine (or Docker Desktop) yourself" >&2
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "docker-engine: installing docker.io from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io iptables >/dev/null
fi

mkdir -p /etc/docker
# Every capability Docker grants a privileged container is 0..40; a bounding
# set without all of them needs the filter.
bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
if [ $(( 0x$bnd & 0x1ffffffffff )) != $(( 0x1ffffffffff )) ]; then
  echo "docker-engine: bounding set $bnd lacks capabilities: runc-capfilter as the default runtime"
  CGO_ENABLED=0 go build -o /usr/local/bin/runc-capfilter ./cmd/runc-capfilter
  # Every runtime and default-runtime together: on 20.10 a reload that
  # drops the default runtime crashes dockerd.
  cat > /etc/docker/daemon.json <<JSON
{
  "runtimes": {"capfilter": {"path": "/usr/local/bin/runc-capfilter"}},
  "default-runtime": "capfilter"
}
JSON
fi

if ! pgrep -x dockerd >/dev/null; then
  command -v containerd >/dev/null && ! pgrep -x containerd >/dev/null && \
    (nohup containerd >/var/log/containerd.log 2>&1 &)
  nohup dockerd >/var/log/dockerd.log 2>&1 &
fi
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    echo "docker-engine: up: $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"
    exit 0
  fi
  sleep 1
done
echo "docker-engine: dockerd did not answer within 60 s; last lines of /var/log/dockerd.log:" >&2
tail -20 /var/log/dockerd.log >&2 || true
exit 1
