#!/usr/bin/env bash
# Provisioning: create + start of a busybox container through berth's API
# (POST create, wait for the job, POST start, wait for the job: the
# container is RUNNING) against the raw commands doing the same work
# (unpack the template, write the LXC config, lxc-start, lxc-wait RUNNING).
# berth runs twice, side by side: as shipped (template cache on, so it
# copies the prepared tree) and with the cache off (it unpacks the template,
# exactly the raw side's work). The three sides are interleaved for ROUNDS
# rounds; clean-up between runs is not timed.
#
#   bench/provision.sh           ROUNDS=10 by default
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-10}
build_berth

mkdir -p "$WORK/templates" "$WORK/raw-lxc"
sh "$REPO/packaging/make-busybox-template.sh" "$WORK/templates/busybox.tar.gz" >/dev/null
TEMPLATE=$WORK/templates/busybox.tar.gz
start_berth "$WORK/cached" BERTH_TEMPLATE_DIR="$WORK/templates"
CACHED_PORT=$PORT
start_berth "$WORK/uncached" BERTH_TEMPLATE_DIR="$WORK/templates" BERTH_TEMPLATE_CACHE=false
UNCACHED_PORT=$PORT
RAW=$WORK/raw-lxc

# POST, then wait on the job; fails unless it is done. Parsed with bash's
# own regular expressions: the client should cost no more than curl itself.
api_job() { # method path [body]
    local answer job waited
    answer=$(curl -sf -X "$1" -H 'Content-Type: application/json' ${3:+--data "$3"} "$API$2")
    [[ $answer =~ \"job_id\":\"([^\"]+)\" ]] && job=${BASH_REMATCH[1]}
    waited=$(curl -sf "$API/jobs/$job/wait?timeout=60")
    [[ $waited == *'"status":"done"'* ]] ||
        { log "job $job ($1 $2) did not finish: $(curl -s "$API/jobs/$job/log")"; return 1; }
    CONTAINER_ID=
    [[ $answer =~ \"container_id\":\"([^\"]+)\" ]] && CONTAINER_ID=${BASH_REMATCH[1]}
    return 0
}

berth_side() { # cached|uncached name → prints nanoseconds
    local t0 t1 id API LXC
    if [ "$1" = cached ]; then API=http://127.0.0.1:$CACHED_PORT/v1; else API=http://127.0.0.1:$UNCACHED_PORT/v1; fi
    LXC=$WORK/$1/data/lxc
    shift
    t0=$(now_ns)
    api_job POST /containers "{\"name\":\"$1\",\"ostemplate\":\"busybox\"}"
    id=$CONTAINER_ID
    api_job POST "/containers/$id/start"
    t1=$(now_ns)
    [ "$(lxc-info -P "$LXC" -n "$1" -s -H)" = RUNNING ] || { log "berth: $1 is not running"; return 1; }
    echo $((t1 - t0))
    # Not timed: remove it.
    lxc-stop -P "$LXC" -n "$1" -k >/dev/null
    api_job DELETE "/containers/$id"
}

# The same work as berth's create and start, by hand: berth's unpack flags,
# a config like berth's, lxc-start with a log file, lxc-wait.
raw_side() { # name → prints nanoseconds
    local t0 t1 dir=$RAW/$1
    t0=$(now_ns)
    mkdir -p "$dir/rootfs" "$dir/berth"
    tar -x -p --numeric-owner --xattrs --xattrs-include='*' -z -f "$TEMPLATE" -C "$dir/rootfs"
    echo "$1" >"$dir/berth/hostname"
    cat >"$dir/config" <<EOF
lxc.include = /usr/share/lxc/config/common.conf
lxc.arch = $(uname -m)
lxc.uts.name = $1
lxc.rootfs.path = dir:$dir/rootfs
lxc.tty.max = 0
lxc.console.logfile = $dir/console.log
lxc.net.0.type = veth
lxc.net.0.link = $BRIDGE
lxc.net.0.flags = up
lxc.net.0.name = eth0
lxc.mount.entry = $dir/berth/hostname etc/hostname none bind,create=file 0 0
EOF
    lxc-start -P "$RAW" -n "$1" -o "$dir/lxc.log" -l ERROR
    lxc-wait -P "$RAW" -n "$1" -s RUNNING -t 30
    t1=$(now_ns)
    echo $((t1 - t0))
    lxc-stop -P "$RAW" -n "$1" -k >/dev/null
    lxc-destroy -P "$RAW" -n "$1" >/dev/null
    rm -rf "$dir"
}

# Warm-up: fills berth's template cache and creates the bridge.
berth_side cached warm-cached >/dev/null
berth_side uncached warm-uncached >/dev/null
raw_side warm-raw >/dev/null

machine
echo "berth: POST /v1/containers, GET /v1/jobs/ID/wait, POST start, wait; raw: tar -x, config, lxc-start, lxc-wait RUNNING; $ROUNDS rounds, interleaved"
CACHED_TIMES=() UNCACHED_TIMES=() RAW_TIMES=() CACHED_RATIOS=() UNCACHED_RATIOS=()
for round in $(seq "$ROUNDS"); do
    if ((round % 2)); then
        raw=$(raw_side "raw$round")
        cached=$(berth_side cached "cached$round")
        uncached=$(berth_side uncached "uncached$round")
    else
        uncached=$(berth_side uncached "uncached$round")
        cached=$(berth_side cached "cached$round")
        raw=$(raw_side "raw$round")
    fi
    CACHED_TIMES+=("$cached") UNCACHED_TIMES+=("$uncached") RAW_TIMES+=("$raw")
    CACHED_RATIOS+=("$(ratio "$cached" "$raw")") UNCACHED_RATIOS+=("$(ratio "$uncached" "$raw")")
    printf '  round %2d  berth %6.1f ms  berth, cache off %6.1f ms  raw %6.1f ms  ratios %s %s  (load %s)\n' \
        "$round" "$(ratio "$cached" 1000000)" "$(ratio "$uncached" 1000000)" "$(ratio "$raw" 1000000)" \
        "${CACHED_RATIOS[-1]}" "${UNCACHED_RATIOS[-1]}" "$(load_now)"
done
CACHED_RATIO=$(printf '%s\n' "${CACHED_RATIOS[@]}" | median)
UNCACHED_RATIO=$(printf '%s\n' "${UNCACHED_RATIOS[@]}" | median)
echo
echo "median create+start: berth $(printf '%s\n' "${CACHED_TIMES[@]}" | median | ms) ms, berth with the cache off $(printf '%s\n' "${UNCACHED_TIMES[@]}" | median | ms) ms, raw commands $(printf '%s\n' "${RAW_TIMES[@]}" | median | ms) ms"
echo "berth/raw: $CACHED_RATIO (median of per-round ratios; target <= 1.25) $(verdict "$CACHED_RATIO" '<=' 1.25)"
echo "berth with the cache off/raw (the very same unpack): $UNCACHED_RATIO (target <= 1.25) $(verdict "$UNCACHED_RATIO" '<=' 1.25)"
echo "load average at the end: $(load_now)"
