#!/bin/sh
# Installs headless-capable Chromium for the browser test in
# reports/browser_test.go (Debian/Ubuntu). Idempotent and non-interactive:
# does nothing when /usr/bin/chromium already exists.
set -eu

if [ -x /usr/bin/chromium ]; then
	echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
	exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y chromium
/usr/bin/chromium --version
