#!/usr/bin/env bash
# Usage sampling: what the sampler costs with COUNT running busybox
# containers, as a share of one CPU. One berth owns the containers; it is
# restarted over the same data, alternately with the sampler on
# (BERTH_STATS_INTERVAL_SECS=$INTERVAL) and off (=0), ROUNDS times each
# (on/off, off/on, …: ABBA), and each run's CPU time (berth's own and its
# waited-for children's, i.e. the lxc-info each container start costs the
# sampler once, from /proc/<pid>/stat) is taken over WINDOW seconds after
# a settling pause of two intervals (so the once-per-start lxc-info calls
# of a freshly started berth fall outside the window: steady state only). The containers keep running across
# berth's restarts (berth leaves them running when it stops).
#
#   bench/stats.sh       COUNT=100 ROUNDS=2 WINDOW=60 INTERVAL=10 by default
source "$(dirname "$0")/lib.sh"

COUNT=${COUNT:-100}
ROUNDS=${ROUNDS:-2}
WINDOW=${WINDOW:-60}
INTERVAL=${INTERVAL:-10}
build_berth

mkdir -p "$WORK/templates"
sh "$REPO/packaging/make-busybox-template.sh" "$WORK/templates/busybox.tar.gz" >/dev/null
DIR=$WORK/berth
TICKS=$(getconf CLK_TCK)

# run_berth on|off: (re)starts berth over the same data dir.
run_berth() {
    local interval=0
    [ "$1" = on ] && interval=$INTERVAL
    start_berth "$DIR" BERTH_TEMPLATE_DIR="$WORK/templates" BERTH_STATS_INTERVAL_SECS="$interval"
    BERTH_PID=$PID
}

# CPU ticks of berth and its waited-for children so far.
cpu_ticks() {
    # Fields after the command name (which may hold spaces): utime is the
    # 14th field of the line, stime 15th, cutime 16th, cstime 17th.
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 + $14 + $15 }'
}

log "creating and starting $COUNT containers…"
run_berth off
ids=()
for i in $(seq "$COUNT"); do
    answer=$(curl -sf -X POST -H 'Content-Type: application/json' \
        -d "{\"name\":\"st$i\",\"ostemplate\":\"busybox\"}" "http://127.0.0.1:$PORT/v1/containers")
    ids+=("$(echo "$answer" | json_field container_id)")
done
# Every create done (its container stopped), then every start.
for id in "${ids[@]}"; do
    for _ in $(seq 600); do
        curl -sf "http://127.0.0.1:$PORT/v1/containers/$id" | grep -q '"status":"stopped"' && break
        sleep 0.2
    done
done
for id in "${ids[@]}"; do
    curl -sf -X POST "http://127.0.0.1:$PORT/v1/containers/$id/start" >/dev/null
done
for id in "${ids[@]}"; do
    for _ in $(seq 600); do
        curl -sf "http://127.0.0.1:$PORT/v1/containers/$id" | grep -q '"status":"running"' && break
        sleep 0.2
    done
done
running=$(lxc-ls -P "$DIR/data/lxc" --running -1 | grep -c '^st')
log "$running containers running"
[ "$running" -eq "$COUNT" ] || { log "expected $COUNT running"; exit 1; }
stop_pid "$BERTH_PID"

machine
printf 'containers running: %d, sampling interval %d s, window %d s per run\n' "$COUNT" "$INTERVAL" "$WINDOW"
declare -A SHARE
for round in $(seq "$ROUNDS"); do
    if ((round % 2)); then order="on off"; else order="off on"; fi
    for side in $order; do
        run_berth "$side"
        sleep $((2 * INTERVAL))
        if [ "$side" = on ]; then
            # The sampler has seen every container: its figures are there.
            curl -sf "http://127.0.0.1:$PORT/v1/containers/${ids[0]}/stats" | grep -q '"running":true' ||
                { log "no sample of a running container"; exit 1; }
        fi
        c0=$(cpu_ticks "$BERTH_PID") t0=$(now_ns)
        sleep "$WINDOW"
        c1=$(cpu_ticks "$BERTH_PID") t1=$(now_ns)
        SHARE[$side,$round]=$(awk -v c=$((c1 - c0)) -v hz="$TICKS" -v ns=$((t1 - t0)) \
            'BEGIN { printf "%.3f", c / hz / (ns / 1e9) * 100 }')
        printf '  round %d sampler %-3s berth CPU %6s %% of one CPU  (load %s)\n' \
            "$round" "$side" "${SHARE[$side,$round]}" "$(load_now)"
        stop_pid "$BERTH_PID"
    done
done
on=$(for r in $(seq "$ROUNDS"); do echo "${SHARE[on,$r]}"; done | median)
off=$(for r in $(seq "$ROUNDS"); do echo "${SHARE[off,$r]}"; done | median)
cost=$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.3f", a - b }')
printf 'median berth CPU: sampler on %s %%, off %s %% of one CPU\n' "$on" "$off"
printf 'sampler cost with %d containers: %s %% of one CPU (target < 1 %%): %s\n' \
    "$COUNT" "$cost" "$(verdict "$cost" "<" 1)"
