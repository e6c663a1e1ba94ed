#!/bin/sh
# Installs Debian's prometheus package for the live Prometheus test in
# observe/prometheus_test.go, which starts a server of its own. Idempotent
# and non-interactive: does nothing when `prometheus --version` works.
# The package's system service is never started: while it installs, a
# policy-rc.d that forbids every start (exit 101, invoke-rc.d's "action
# forbidden") stands in for any other, which also keeps its postinst from
# failing in a container without systemd; afterwards the service is
# disabled, so no boot starts it either.
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
saved=$policy.meshbench-saved
restore() {
	rm -f "$policy"
	if [ -e "$saved" ]; then mv "$saved" "$policy"; fi
}
if [ -e "$policy" ]; then mv "$policy" "$saved"; fi
trap restore EXIT
printf '#!/bin/sh\nexit 101\n' >"$policy"
chmod 755 "$policy"

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends prometheus

if [ -d /run/systemd/system ]; then
	systemctl disable prometheus.service || true
elif command -v update-rc.d >/dev/null 2>&1; then
	update-rc.d prometheus disable >/dev/null 2>&1 || true
fi
prometheus --version
