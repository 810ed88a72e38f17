#!/usr/bin/env bash
# API reads and memory.
#
# GET /v1/containers/<id> with wrk (2 threads, 32 connections) on berth and
# on bench/baseline (a bare Rocket route doing the same indexed SELECT),
# interleaved for ROUNDS rounds of DURATION each. Reports the median ratio
# of throughputs, p99 latencies, non-2xx answers; berth's idle RSS, its peak
# RSS (VmHWM) after the load, and the release binary's size.
#
# berth runs as configured in Rocket.toml (log_level "normal"); more sides
# show what logging costs (ROCKET_LOG_LEVEL=critical) and what token
# authentication costs (auth = "token", a bearer token sent). With
# BENCH_BEFORE=/path/to/an/older/berth, that build runs too (plain and with
# token auth), so a change is measured side by side with its predecessor.
#
#   bench/api-read.sh            ROUNDS=5 DURATION=10s by default
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
command -v wrk >/dev/null || { log "wrk is missing: apt-get install wrk"; exit 1; }
command -v sqlite3 >/dev/null || { log "sqlite3 is missing: apt-get install sqlite3"; exit 1; }

build_berth
build_bench_tools
BASELINE=$TARGET/release/berth-bench-baseline

ID=$(cat /proc/sys/kernel/random/uuid)
TOKEN=""
declare -A PORTS

# add_side NAME BINARY token|open [VAR=VALUE…]: a berth with one container.
add_side() {
    local name=$1 binary=$2 auth=$3 dir=$WORK/$1 saved=$BERTH
    shift 3
    mkdir -p "$dir/data"
    if [ "$auth" = token ]; then
        TOKEN=${TOKEN:-berth_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')}
        # The stored digest of the token, as `berth token create` writes it.
        (cd "$dir" && env ROCKET_CONFIG="$REPO/Rocket.toml" BERTH_DATA_DIR="$dir/data" "$@" \
            "$binary" token create bench >/dev/null)
        sqlite3 -cmd '.timeout 10000' "$dir/data/berth.db" \
            "UPDATE tokens SET digest = '$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)' WHERE name = 'bench'"
        set -- BERTH_AUTH=token "$@"
    fi
    BERTH=$binary
    start_berth "$dir" "$@"
    BERTH=$saved
    PORTS[$name]=$PORT
    SIDE_PIDS[$name]=$PID
    sqlite3 -cmd '.timeout 10000' "$dir/data/berth.db" "INSERT INTO containers
        (id, name, ostemplate, parameters, status, created_at, updated_at)
        VALUES ('$ID', 'ct100', 'busybox', NULL, 'stopped',
                '2026-11-28T05:00:00Z', '2026-11-28T05:00:00Z')"
}

declare -A SIDE_PIDS
add_side berth "$BERTH" open
sleep 3
IDLE_RSS=$(rss_kib "${SIDE_PIDS[berth]}" VmRSS)
add_side quiet "$BERTH" open ROCKET_LOG_LEVEL=critical
add_side token "$BERTH" token
SIDES="baseline berth quiet token"
if [ -n "${BENCH_BEFORE:-}" ]; then
    # Settings added since may be unknown to the older build.
    grep -v '^template_cache' "$REPO/Rocket.toml" >"$WORK/before-Rocket.toml"
    add_side before "$BENCH_BEFORE" open ROCKET_CONFIG="$WORK/before-Rocket.toml"
    add_side before-token "$BENCH_BEFORE" token ROCKET_CONFIG="$WORK/before-Rocket.toml"
    SIDES="$SIDES before before-token"
fi

PORTS[baseline]=$(free_port)
env ROCKET_CONFIG=/nonexistent ROCKET_ADDRESS=127.0.0.1 ROCKET_PORT="${PORTS[baseline]}" \
    BASELINE_DB="$WORK/baseline.db" BASELINE_ID="$ID" "$BASELINE" >"$WORK/baseline.log" 2>&1 &
BASE_PID=$!
BENCH_PIDS+=("$BASE_PID")
wait_http "http://127.0.0.1:${PORTS[baseline]}/v1/containers/$ID"
BASE_IDLE_RSS=$(rss_kib "$BASE_PID" VmRSS)

url() { echo "http://127.0.0.1:${PORTS[$1]}/v1/containers/$ID"; }
# Every side gets the header; only the token sides check it.
AUTH_HEADER="Authorization: Bearer $TOKEN"
for side in $SIDES; do
    curl -sf -H "$AUTH_HEADER" "$(url "$side")" | grep -q '"message":"success"' ||
        { log "no container on side $side"; exit 1; }
    wrk -t2 -c32 -d2s -H "$AUTH_HEADER" "$(url "$side")" >/dev/null # warm-up
done

declare -A RPS P99 NON2XX
run_side() { # side round
    read -r rps p99 non2xx errors _ < <(wrk -t2 -c32 -d"$DURATION" --latency -H "$AUTH_HEADER" \
        "$(url "$1")" | parse_wrk)
    RPS[$1,$2]=$rps P99[$1,$2]=$p99 NON2XX[$1,$2]=$((non2xx + errors))
    printf '  round %d %-12s %8.0f req/s  p99 %7.2f ms  non-2xx+errors %d  (load %s)\n' \
        "$2" "$1" "$rps" "$p99" "$((non2xx + errors))" "$(load_now)"
}

machine
echo "wrk -t2 -c32 -d$DURATION --latency http://127.0.0.1:PORT/v1/containers/$ID, $ROUNDS rounds, sides interleaved"
REVERSED=$(echo "$SIDES" | tr ' ' '\n' | tac | tr '\n' ' ')
for round in $(seq "$ROUNDS"); do
    if ((round % 2)); then order=$SIDES; else order=$REVERSED; fi
    for side in $order; do run_side "$side" "$round"; done
done

PEAK_RSS=$(rss_kib "${SIDE_PIDS[berth]}" VmHWM)
BASE_PEAK_RSS=$(rss_kib "$BASE_PID" VmHWM)
# column SIDE ARRAY: the side's values, one per round.
column() {
    local -n values=$2
    for r in $(seq "$ROUNDS"); do echo "${values[$1,$r]}"; done
}
# versus SIDE REFERENCE: median over rounds of SIDE's throughput / REFERENCE's.
versus() { for r in $(seq "$ROUNDS"); do ratio "${RPS[$1,$r]}" "${RPS[$2,$r]}"; echo; done | median; }
FAILED=0
for key in "${!NON2XX[@]}"; do FAILED=$((FAILED + NON2XX[$key])); done
strip -o "$WORK/berth.stripped" "$BERTH"

echo
for side in $SIDES; do
    printf '%-12s median %8.0f req/s, p99 %6.2f ms, %s x baseline\n' "$side" \
        "$(column "$side" RPS | median)" "$(column "$side" P99 | median)" "$(versus "$side" baseline)"
done
RATIO=$(versus berth baseline)
echo "throughput berth/baseline: $RATIO (median of per-round ratios; target >= 0.8) $(verdict "$RATIO" '>=' 0.8)"
echo "p99: berth $(column berth P99 | median) ms, baseline $(column baseline P99 | median) ms"
echo "logging at critical instead of normal: $(versus quiet berth) x; token auth: $(versus token berth) x"
if [ -n "${BENCH_BEFORE:-}" ]; then
    echo "this build/BENCH_BEFORE: $(versus berth before) x without auth, $(versus token before-token) x with token auth"
fi
echo "non-2xx answers and socket errors, all sides: $FAILED $(verdict "$FAILED" '<=' 0)"
echo "idle RSS: berth $((IDLE_RSS / 1024)) MiB ($IDLE_RSS KiB; target <= 20 MiB) $(verdict "$IDLE_RSS" '<=' 20480); baseline $BASE_IDLE_RSS KiB"
echo "peak RSS (VmHWM) after the read load: berth $((PEAK_RSS / 1024)) MiB ($PEAK_RSS KiB; target <= 40 MiB) $(verdict "$PEAK_RSS" '<=' 40960); baseline $BASE_PEAK_RSS KiB"
echo "release binary: $(stat -c %s "$BERTH") bytes, $(stat -c %s "$WORK/berth.stripped") stripped"
echo "load average at the end: $(load_now)"
