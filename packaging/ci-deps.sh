#!/bin/sh
# Installs what berth's test suite needs on Debian 12: LXC and the tools the
# driver runs, busybox-static for the test template, and Chromium with its
# WebDriver for the console tests. Idempotent; run as root.
set -eu

packages="lxc busybox-static e2fsprogs iproute2 tar gzip xz-utils zstd chromium chromium-driver debootstrap"

missing=""
for package in $packages; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing="$missing $package"
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
fi
