#!/bin/sh
# Installs Debian's prometheus package for the live Prometheus test in
# observe/prometheus_test.go. Idempotent and non-interactive: does nothing
# when `prometheus --version` works. The test starts its own server, so the
# package's system service is never started: a policy-rc.d that refuses
# every start (exit 101, invoke-rc.d's "action forbidden") is in place while
# the package installs, which also keeps its postinst from failing in a
# container without systemd.
set -eu

if prometheus --version >/dev/null 2>&1; then
	echo "prometheus already installed: $(prometheus --version 2>&1 | head -n 1)"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-prometheus: run as root (apt-get install prometheus)" >&2
	exit 1
fi

policy=/usr/sbin/policy-rc.d
own_policy=false
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	own_policy=true
fi
cleanup() { if $own_policy; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends prometheus
prometheus --version
