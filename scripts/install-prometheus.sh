#!/bin/sh
# Installs Debian's prometheus package for the live Prometheus test in
# observe/prometheus_test.go, which starts a server of its own. Idempotent
# and non-interactive: does nothing when `prometheus --version` works.
# The package's system service is never started: while it installs, a
# policy-rc.d that forbids every start (exit 101, invoke-rc.d's "action
# forbidden") stands in for any other, which also keeps its postinst from
# failing in a container without systemd; afterwards the service is
# disabled, so no boot starts it either. Run as root, or as a user with
# sudo.
set -eu

if prometheus --version >/dev/null 2>&1; then
	echo "prometheus already installed: $(prometheus --version 2>&1 | head -n 1)"
	exit 0
fi
# Not root: every privileged step through sudo, as install-chromium.sh.
SUDO=
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
fi

policy=/usr/sbin/policy-rc.d
saved=$policy.meshbench-saved
restore() {
	$SUDO rm -f "$policy"
	if [ -e "$saved" ]; then $SUDO mv "$saved" "$policy"; fi
}
if [ -e "$policy" ]; then $SUDO mv "$policy" "$saved"; fi
trap restore EXIT
printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
$SUDO chmod 755 "$policy"

$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus

if [ -d /run/systemd/system ]; then
	$SUDO systemctl disable prometheus.service || true
elif command -v update-rc.d >/dev/null 2>&1; then
	$SUDO update-rc.d prometheus disable >/dev/null 2>&1 || true
fi
prometheus --version
