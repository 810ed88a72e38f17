#!/bin/sh
# Installs what berth's test suite needs on Debian 12: what serving needs
# (serve-deps.sh: LXC and the tools the driver runs, busybox-static for the
# test template), Chromium with its WebDriver for the console tests, and
# for the package test (tests/packaging.rs): debootstrap (the Debian rootfs
# booted with systemd), binutils (strip) and cargo-deb; strace, through
# which a test sees berth sync the files that say whose a container is;
# postgresql, whose server the tests of berth on PostgreSQL start on their
# own (initdb in a temporary directory; the package's cluster is not used).
# Idempotent; run as root.
set -eu

"$(dirname "$0")/serve-deps.sh" chromium chromium-driver debootstrap binutils ca-certificates strace postgresql btrfs-progs

# cargo-deb builds the .deb from [package.metadata.deb] in Cargo.toml
# (about 2 minutes to install, once). Pinned: the package test packages the
# debug binary with --profile dev, which cargo-deb says a later version may
# refuse.
if ! cargo deb --version >/dev/null 2>&1; then
    cargo install cargo-deb --version 3.8.0 --locked
fi
