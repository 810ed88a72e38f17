#!/bin/sh
# Installs what `berth serve` needs on Debian 12: LXC and the tools the
# driver runs, and busybox-static, from which berth builds its first OS
# template (`template1`) when the template directory holds none. The same
# list as the package's Depends, plus busybox-static. Packages named as
# arguments are installed too (packaging/ci-deps.sh adds what the tests
# need that way). Idempotent; run as root.
set -eu

packages="lxc busybox-static e2fsprogs iproute2 tar gzip xz-utils zstd $*"

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
