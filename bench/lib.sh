# Shared by the bench/*.sh scripts: building, starting berth on a free
# loopback port, timing, medians, and clean-up of everything a script made
# (processes, containers, the bridge, temporary files), even on failure.
#
# Every figure is a ratio of two sides measured in the same run, with the
# sides interleaved (ABBA…) and repeated: other work on the machine then
# weighs on both sides alike. Absolute numbers depend on that load; each
# script prints the load average with its results.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH_DIR")
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
# BENCH_BERTH runs another build (e.g. an older commit's) for comparisons.
BERTH=${BENCH_BERTH:-$TARGET/release/berth}
# Containers made by the benchmarks attach to this bridge (no uplink).
BRIDGE=${BENCH_BRIDGE:-berthbench0}

WORK=$(mktemp -d /tmp/berth-bench.XXXXXX)
BENCH_PIDS=()

log() { printf '%s\n' "$*" >&2; }

build_berth() {
    log "building berth (release)…"
    (cd "$REPO" && cargo build --release --quiet --locked)
}

machine() {
    printf 'machine: %s cores, %s RAM, kernel %s\n' "$(nproc)" \
        "$(free -h | awk '/^Mem:/ {print $2}')" "$(uname -r)"
    printf 'load average at %s: %s\n' "$(date -u +%H:%M:%SZ)" "$(cut -d' ' -f1-3 /proc/loadavg)"
}

load_now() { cut -d' ' -f1-3 /proc/loadavg; }

# Stops every container under the LXC paths in $WORK, then everything else.
cleanup() {
    local status=$?
    set +e
    for pid in "${BENCH_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${BENCH_PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    while IFS= read -r config; do
        local dir name lxcpath
        dir=$(dirname "$config")
        name=$(basename "$dir")
        lxcpath=$(dirname "$dir")
        lxc-stop -P "$lxcpath" -n "$name" -k >/dev/null 2>&1
        lxc-destroy -P "$lxcpath" -n "$name" >/dev/null 2>&1
    done < <(find "$WORK" -mindepth 2 -maxdepth 6 -name config -path '*lxc*' \
        -not -path '*/.template-cache/*' 2>/dev/null)
    if [ -n "${BENCH_OWN_BRIDGE:-}" ]; then
        ip link del "$BRIDGE" 2>/dev/null
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Remove the bridge at the end only if this run created it.
if ! ip link show dev "$BRIDGE" >/dev/null 2>&1; then
    BENCH_OWN_BRIDGE=1
fi

free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 30000))
        if ! ss -Hltn "sport = :$port" | grep -q .; then
            echo "$port"
            return
        fi
    done
}

# wait_http URL: until it answers 2xx, at most 60 s.
wait_http() {
    for _ in $(seq 600); do
        curl -sf -o /dev/null "$1" && return 0
        sleep 0.1
    done
    log "no answer from $1"
    return 1
}

# start_berth DIR [VAR=VALUE…]: berth serve with its data in DIR/data, on a
# free 127.0.0.1 port, configured by the repository's Rocket.toml (as a
# developer runs it) plus the variables given, then those in
# BENCH_BERTH_ENV (space-separated VAR=VALUE, for trying a setting with any
# script). Sets PORT and PID.
start_berth() {
    local dir=$1
    shift
    mkdir -p "$dir/data"
    PORT=$(free_port)
    (cd "$dir" && exec env ROCKET_CONFIG="$REPO/Rocket.toml" ROCKET_ADDRESS=127.0.0.1 \
        ROCKET_PORT="$PORT" BERTH_DATA_DIR="$dir/data" BERTH_BRIDGE="$BRIDGE" \
        BERTH_STOP_TIMEOUT_SECS=2 "$@" ${BENCH_BERTH_ENV:-} "$BERTH" serve >"$dir/berth.log" 2>&1) &
    PID=$!
    BENCH_PIDS+=("$PID")
    wait_http "http://127.0.0.1:$PORT/healthz" || { tail -20 "$dir/berth.log" >&2; return 1; }
}

# stop_pid PID: SIGTERM and wait.
stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

rss_kib() { awk -v key="$2:" '$1 == key {print $2}' "/proc/$1/status"; }

# Wall clock in nanoseconds (microsecond resolution), without a process.
now_ns() {
    local t=$EPOCHREALTIME
    echo $((10#${t//[^0-9]/} * 1000))
}

# Reads numbers on stdin, prints their median.
median() {
    sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# percentile P: the P-th percentile, by nearest rank, of the numbers on
# stdin (one decimal).
percentile() {
    sort -g | awk -v p="$1" '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        r = int(NR * p / 100 + 0.999); if (r < 1) r = 1; if (r > NR) r = NR
        printf "%.1f", v[r] }'
}

# Nanoseconds (argument or stdin) as whole milliseconds.
ms() { awk -v n="${1:-$(cat)}" 'BEGIN { printf "%.0f", n / 1e6 }'; }

# ratio A B: A / B with three decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b == 0 ? 0 : a / b) }'; }

# verdict VALUE OP LIMIT: PASS or FAIL (OP is <= or >= or <).
verdict() {
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        ok = (op == "<=") ? v <= l : (op == ">=") ? v >= l : v < l
        print ok ? "PASS" : "FAIL" }'
}

# The JSON string field NAME of a one-line JSON document on stdin.
json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" | head -1; }

build_bench_tools() {
    log "building bench/baseline (release)…"
    (cd "$BENCH_DIR/baseline" && cargo build --release --quiet --locked --target-dir "$TARGET")
}

# A keep-alive HTTP client (bench/baseline/src/bin/bench-http.rs) as a
# coprocess: a timed sequence of API calls then measures berth, not one
# curl process starting per request. http_start once (after
# build_bench_tools); http PORT METHOD PATH [JSON] sets HTTP_STATUS and
# HTTP_BODY. Not usable from subshells: call it in the script's own shell.
http_start() {
    coproc HTTP_CLIENT { "$TARGET/release/bench-http"; }
    BENCH_PIDS+=("$HTTP_CLIENT_PID")
}

http() {
    printf '%s %s %s %s\n' "$2" "$1" "$3" "${4:-}" >&"${HTTP_CLIENT[1]}"
    read -r HTTP_STATUS HTTP_BODY <&"${HTTP_CLIENT[0]}"
}

# wrk output → "rps p99_ms non2xx errors"
parse_wrk() {
    awk '
        function ms(v) {
            if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
            if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
            if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
            return v
        }
        /Requests\/sec:/ { rps = $2 }
        $1 == "99%" { p99 = ms($2) }
        $1 == "50%" { p50 = ms($2) }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        /Socket errors:/ { gsub(",", ""); errors = $4 + $6 + $8 + $10 }
        END { printf "%s %s %d %d %s\n", rps, p99, non2xx, errors, p50 }'
}

# empty_full_rounds ENDPOINTS: ROUNDS rounds of `wrk -t2 -c8 -d$DURATION`
# per endpoint against the `empty` and the `full` side, in ABBA order, at
# http://127.0.0.1:${PORTS[side]}$(path ENDPOINT SIDE) (PORTS and `path`
# are the caller's). Fills RPS[endpoint,side,round] and P99[…] (declared
# -A by the caller) and prints each round; stops on any non-2xx or error.
empty_full_rounds() {
    local round order endpoint side rps p99 bad errors
    for round in $(seq "$ROUNDS"); do
        if ((round % 2)); then order="empty full"; else order="full empty"; fi
        for endpoint in $1; do
            for side in $order; do
                read -r rps p99 bad errors _ < <(wrk -t2 -c8 -d"$DURATION" --latency \
                    "http://127.0.0.1:${PORTS[$side]}$(path "$endpoint" "$side")" | parse_wrk)
                ((bad + errors == 0)) || { log "$endpoint on $side: $bad non-2xx, $errors errors"; exit 1; }
                RPS[$endpoint,$side,$round]=$rps P99[$endpoint,$side,$round]=$p99
            done
            printf '  round %d %-16s empty %8.0f req/s p99 %6.2f ms | full %8.0f req/s p99 %6.2f ms  (load %s)\n' \
                "$round" "$endpoint" "${RPS[$endpoint,empty,$round]}" "${P99[$endpoint,empty,$round]}" \
                "${RPS[$endpoint,full,$round]}" "${P99[$endpoint,full,$round]}" "$(load_now)"
        done
    done
}
