#!/bin/sh
# Installs what the packaging test (tests/packaging.rs) needs on a Debian 12
# machine, and nothing when it is all there already:
#   debootstrap   makes the Debian rootfs booted with systemd
#   lxc           boots it as a container (and is a Depends of the .deb)
#   zstd          packs the cached rootfs
#   binutils      strip, for cargo-deb
#   cargo-deb     builds the .deb from Cargo.toml's [package.metadata.deb]
# Run as root: sh packaging/ci-deps.sh
set -eu

packages="debootstrap lxc zstd xz-utils e2fsprogs iproute2 binutils ca-certificates"

missing=""
for package in $packages; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $package"
    fi
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
fi

if ! cargo deb --version >/dev/null 2>&1; then
    cargo install cargo-deb --locked
fi
