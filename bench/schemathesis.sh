#!/bin/sh
# Runs schemathesis (https://schemathesis.io) against a real berth: berth
# serves on a free local port from a throw-away data directory with the
# busybox template as `template1`, schemathesis tests every operation of
# /v1/openapi.json with every check it has, then berth is stopped and every
# container the run created is destroyed.
#
#   pip install schemathesis        # once; tested with 4.32
#   bench/schemathesis.sh [extra schemathesis options]
#
# Environment: BERTH_BIN (default: build with cargo and use the debug
# binary; CARGO_TARGET_DIR is honoured), MAX_EXAMPLES (default 50),
# SCHEMATHESIS_CONFIG (default bench/schemathesis.toml), SEED (default 1),
# KEEP_LOG (a file to copy berth's log to at the end).
# Needs root and LXC, like berth itself. Exits with schemathesis' status.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
max_examples=${MAX_EXAMPLES:-50}
config=${SCHEMATHESIS_CONFIG:-$here/bench/schemathesis.toml}

if [ -z "${BERTH_BIN:-}" ]; then
    (cd "$here" && cargo build --quiet)
    BERTH_BIN=${CARGO_TARGET_DIR:-$here/target}/debug/berth
fi
command -v schemathesis >/dev/null || { echo "error: pip install schemathesis" >&2; exit 1; }

work=$(mktemp -d /tmp/berth-schemathesis-XXXXXX)
data=$work/data
berth_pid=
cleanup() {
    if [ -n "$berth_pid" ]; then
        kill "$berth_pid" 2>/dev/null || true
        wait "$berth_pid" 2>/dev/null || true
    fi
    # Whatever state they are in, the run's containers go.
    for dir in "$data"/lxc/*/; do
        [ -d "$dir" ] || continue
        name=$(basename "$dir")
        lxc-stop -P "$data/lxc" -n "$name" -k >/dev/null 2>&1 || true
        lxc-destroy -P "$data/lxc" -n "$name" >/dev/null 2>&1 || true
    done
    if [ -n "${KEEP_LOG:-}" ]; then cp "$work/berth.log" "$KEEP_LOG"; fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

mkdir -p "$data/templates"
sh "$here/packaging/make-busybox-template.sh" "$data/templates/template1.tar.gz" >/dev/null
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

ROCKET_ADDRESS=127.0.0.1 ROCKET_PORT=$port ROCKET_CONFIG=$work/no-Rocket.toml \
    ROCKET_LOG_LEVEL=normal BERTH_DATA_DIR=$data BERTH_BRIDGE=berthtest0 \
    BERTH_STOP_TIMEOUT_SECS=5 \
    "$BERTH_BIN" serve >"$work/berth.log" 2>&1 &
berth_pid=$!

tries=0
until curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ $tries -gt 300 ] || ! kill -0 "$berth_pid" 2>/dev/null; then
        echo "error: berth did not start:" >&2
        cat "$work/berth.log" >&2
        exit 1
    fi
    sleep 0.1
done

config_option=
[ -f "$config" ] && config_option="--config-file $config"

# /v1/events is an endless stream: no response ever completes, so it is
# left out here and tested by tests/operations.rs instead. The request
# timeout covers the longest documented long poll (wait?timeout=300).
cd "$work"   # schemathesis keeps a cache in the working directory
# Leaves out the requests berth cannot see: see bench/schemathesis_hooks.py.
export SCHEMATHESIS_HOOKS=schemathesis_hooks
export PYTHONPATH="$here/bench${PYTHONPATH:+:$PYTHONPATH}"
status=0
# shellcheck disable=SC2086
schemathesis $config_option run "http://127.0.0.1:$port/v1/openapi.json" \
    --checks all \
    --max-examples "$max_examples" \
    --exclude-path /v1/events \
    --request-timeout 320 \
    --generation-database none \
    --seed "${SEED:-1}" \
    --no-color \
    "$@" || status=$?

# What the run made berth do: answers by route and status, jobs and
# containers by status.
echo "--- berth's metrics after the run:"
curl -fsS "http://127.0.0.1:$port/metrics" | grep -E '^berth_(http_requests_total|jobs|containers)\{' || true
if grep -aq "panicked" "$work/berth.log"; then
    echo "--- berth panicked:" >&2
    grep -an -A5 "panicked" "$work/berth.log" | head -50 >&2
    status=1
fi
containers=$(ls "$data/lxc" 2>/dev/null | wc -l)
echo "berth: the run left $containers container directories; destroying them"
exit $status
