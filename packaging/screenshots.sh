#!/bin/sh
# Writes the console screenshots used by the documentation,
# docs/screenshots/home.png and docs/screenshots/container.png, from a real
# berth with a few busybox containers, through headless Chromium.
#
# Needs what the console tests need: root, LXC, busybox-static, chromium
# and chromium-driver.
#
#   packaging/screenshots.sh
set -eu
cd "$(dirname "$0")/.."
exec cargo test --test console -- --ignored --exact screenshots
