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
build_bench_tools
http_start

mkdir -p "$WORK/templates" "$WORK/raw-lxc"
sh "$REPO/packaging/make-busybox-template.sh" "$WORK/templates/busybox.tar.gz" >/dev/null
TEMPLATE=$WORK/templates/busybox.tar.gz
start_berth "$WORK/cached" BERTH_TEMPLATE_DIR="$WORK/templates"
CACHED_PORT=$PORT
start_berth "$WORK/uncached" BERTH_TEMPLATE_DIR="$WORK/templates" BERTH_TEMPLATE_CACHE=false
UNCACHED_PORT=$PORT
RAW=$WORK/raw-lxc
ARCH=$(uname -m)

# POST, then wait on the job; fails unless it is done. The client keeps
# its connection (lib.sh `http`): four curl processes per run would time
# process start-up on a busy machine more than berth.
api_job() { # port method path [body]
    local job created
    http "$1" "$2" "$3" "${4:-}"
    [[ $HTTP_BODY =~ \"job_id\":\"([^\"]+)\" ]] && job=${BASH_REMATCH[1]}
    created=
    [[ $HTTP_BODY =~ \"container_id\":\"([^\"]+)\" ]] && created=${BASH_REMATCH[1]}
    http "$1" GET "/v1/jobs/$job/wait?timeout=60"
    CONTAINER_ID=$created
    [[ $HTTP_BODY == *'"status":"done"'* ]] ||
        { log "job $job ($2 $3) did not finish: $HTTP_BODY"; return 1; }
}

# Each side sets ELAPSED (nanoseconds) and runs in this shell (no $(…)),
# where the HTTP client lives.
berth_side() { # cached|uncached name
    local t0 t1 id port lxc=$WORK/$1/data/lxc
    if [ "$1" = cached ]; then port=$CACHED_PORT; else port=$UNCACHED_PORT; fi
    t0=$(now_ns)
    api_job "$port" POST /v1/containers "{\"name\":\"$2\",\"ostemplate\":\"busybox\"}"
    id=$CONTAINER_ID
    api_job "$port" POST "/v1/containers/$id/start"
    t1=$(now_ns)
    [ "$(lxc-info -P "$lxc" -n "$2" -s -H)" = RUNNING ] || { log "berth: $2 is not running"; return 1; }
    ELAPSED=$((t1 - t0))
    # Not timed: remove it.
    lxc-stop -P "$lxc" -n "$2" -k >/dev/null
    api_job "$port" DELETE "/v1/containers/$id"
}

# The same work as berth's create and start, by hand: berth's unpack flags,
# a config like berth's, lxc-start with a log file, lxc-wait.
raw_side() { # name
    local t0 t1 dir=$RAW/$1
    t0=$(now_ns)
    mkdir -p "$dir/rootfs" "$dir/berth"
    tar -x -p --numeric-owner --xattrs --xattrs-include='*' -z -f "$TEMPLATE" -C "$dir/rootfs"
    echo "$1" >"$dir/berth/hostname"
    cat >"$dir/config" <<EOF
lxc.include = /usr/share/lxc/config/common.conf
lxc.arch = $ARCH
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
    ELAPSED=$((t1 - t0))
    lxc-stop -P "$RAW" -n "$1" -k >/dev/null
    lxc-destroy -P "$RAW" -n "$1" >/dev/null
    rm -rf "$dir"
}

# Warm-up: fills berth's template cache and creates the bridge.
berth_side cached warm-cached
berth_side uncached warm-uncached
raw_side warm-raw

machine
echo "berth: POST /v1/containers, GET /v1/jobs/ID/wait, POST start, wait; raw: tar -x, config, lxc-start, lxc-wait RUNNING; $ROUNDS rounds, interleaved"
CACHED_TIMES=() UNCACHED_TIMES=() RAW_TIMES=() CACHED_RATIOS=() UNCACHED_RATIOS=()
for round in $(seq "$ROUNDS"); do
    if ((round % 2)); then
        raw_side "raw$round" && raw=$ELAPSED
        berth_side cached "cached$round" && cached=$ELAPSED
        berth_side uncached "uncached$round" && uncached=$ELAPSED
    else
        berth_side uncached "uncached$round" && uncached=$ELAPSED
        berth_side cached "cached$round" && cached=$ELAPSED
        raw_side "raw$round" && raw=$ELAPSED
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
