#!/usr/bin/env bash
# Storage pools: a btrfs pool against the dir pool (with the template
# cache), two berths side by side on one machine, interleaved (ABBA) for
# ROUNDS rounds, as root.
#
#   1. Create-to-done (POST /v1/containers, GET /v1/jobs/ID/wait) from a
#      ~200 MB and a ~1 GB template (the busybox root filesystem plus
#      incompressible files), after one untimed create from each has filled
#      both caches. Targets: btrfs >= 10x faster than dir, and under 150 ms.
#   2. A snapshot (POST …/snapshots → job done) of a running container that
#      holds the ~1 GB template's files. Target: btrfs under 100 ms; dir as
#      measured (its container is frozen while the copy runs).
#   3. The cost of btrfs quotas (qgroups): write throughput inside one
#      container on the btrfs pool (dd of WRITE_MIB MiB with conv=fsync),
#      quotas off against quotas on with a limit on its subvolume (the
#      quota switched with `btrfs quota disable/enable` between rounds).
#      Reported, no target.
#
# The btrfs pool is a loop-mounted file system made here (a sparse
# POOL_GIB GiB file, mkfs.btrfs) on the same disk as the dir pool; both are
# unmounted and removed at the end, even on failure.
#
#   bench/storage.sh      ROUNDS=5 POOL_GIB=10 WRITE_MIB=512 by default
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-5}
POOL_GIB=${POOL_GIB:-10}
WRITE_MIB=${WRITE_MIB:-512}

POOL_DIR=$(mktemp -d /tmp/berth-bench-btrfs.XXXXXX)
POOL=$POOL_DIR/mnt

storage_cleanup() {
    local status=$?
    set +e
    # lib.sh's clean-up (berths, containers, $WORK) in a subshell: it exits.
    (cleanup)
    if mountpoint -q "$POOL"; then
        umount "$POOL" || umount -l "$POOL"
    fi
    rm -rf "$POOL_DIR"
    exit "$status"
}
trap storage_cleanup EXIT

build_berth

log "making a ${POOL_GIB} GiB btrfs file system on a loop device…"
truncate -s "${POOL_GIB}G" "$POOL_DIR/disk.img"
mkfs.btrfs -q "$POOL_DIR/disk.img"
mkdir -p "$POOL"
mount -o loop "$POOL_DIR/disk.img" "$POOL"

make_template() { # output size_mib
    local tree=$WORK/tree-$2
    mkdir -p "$tree"
    tar -C "$tree" -xzf "$WORK/templates/busybox.tar.gz"
    mkdir -p "$tree/usr/lib/bench"
    # Deterministic incompressible bytes: AES-CTR of zeros, 4 MiB files.
    rand() { { openssl enc -aes-128-ctr -nosalt -pass "pass:$1" </dev/zero 2>/dev/null || true; } | head -c "$2"; }
    for i in $(seq 1 $(($2 / 4))); do rand "blob$i" 4194304 >"$tree/usr/lib/bench/blob$i.bin"; done
    tar --numeric-owner -C "$tree" -cf "$1" .
    rm -rf "$tree"
}

mkdir -p "$WORK/templates"
sh "$REPO/packaging/make-busybox-template.sh" "$WORK/templates/busybox.tar.gz" >/dev/null
log "generating the ~200 MB and ~1 GB templates…"
make_template "$WORK/templates/big200.tar" 200
make_template "$WORK/templates/big1g.tar" 1024

start_berth "$WORK/dir" BERTH_TEMPLATE_DIR="$WORK/templates"
DIR_API=http://127.0.0.1:$PORT/v1
start_berth "$WORK/btrfs" BERTH_TEMPLATE_DIR="$WORK/templates" \
    "BERTH_STORAGE=[{name=\"fast\",driver=\"btrfs\",path=\"$POOL\"}]"
BTRFS_API=http://127.0.0.1:$PORT/v1
curl -sf "$BTRFS_API/storage" | grep -q '"usable":true' ||
    { log "the btrfs pool is not usable: $(curl -s "$BTRFS_API/storage")"; exit 1; }

wait_job() { # api job (the wait answers after at most 300 s: ask again)
    local answer
    for _ in $(seq 12); do
        answer=$(curl -sf "$1/jobs/$2/wait?timeout=300")
        grep -q '"status":"\(queued\|running\)"' <<<"$answer" || break
    done
    grep -q '"status":"done"' <<<"$answer" ||
        { log "job $2 failed: $answer $(curl -s "$1/jobs/$2/log")"; return 1; }
}

post() { # api path json → the answer
    curl -sf -H 'Content-Type: application/json' --data "$3" "$1$2"
}

create() { # api name template → prints nanoseconds
    local t0 t1 job
    sync
    t0=$(now_ns)
    job=$(post "$1" /containers "{\"name\":\"$2\",\"ostemplate\":\"$3\"}" | json_field job_id)
    wait_job "$1" "$job"
    t1=$(now_ns)
    echo $((t1 - t0))
}

id_of() { curl -sf "$1/containers?name=$2" | json_field id; } # api name

delete() { # api id
    local job
    job=$(curl -sf -X DELETE "$1/containers/$2" | json_field job_id)
    wait_job "$1" "$job"
}

timed_create() { # api name template → prints nanoseconds; deletes the container
    local ns
    ns=$(create "$1" "$2" "$3")
    delete "$1" "$(id_of "$1" "$2")"
    echo "$ns"
}

machine
echo "btrfs pool: ${POOL_GIB} GiB loop file on $(df --output=fstype "$POOL_DIR" | tail -1); dir pool: $(df --output=fstype "$WORK" | tail -1)"
for t in big200 big1g; do
    echo "template $t: $(stat -c %s "$WORK/templates/$t.tar") bytes (.tar)"
    # Fill both caches (unpack once), untimed.
    for api in "$DIR_API" "$BTRFS_API"; do
        create "$api" "warm-$t" "$t" >/dev/null
        delete "$api" "$(id_of "$api" "warm-$t")"
    done
done

declare -A CREATE_RATIO CREATE_BTRFS CREATE_DIR
for t in big200 big1g; do
    echo "create-to-done from $t, $ROUNDS rounds, interleaved"
    DIRS=() BTRFSS=() RATIOS=()
    for round in $(seq "$ROUNDS"); do
        if ((round % 2)); then
            d=$(timed_create "$DIR_API" "d-$t-$round" "$t")
            b=$(timed_create "$BTRFS_API" "b-$t-$round" "$t")
        else
            b=$(timed_create "$BTRFS_API" "b-$t-$round" "$t")
            d=$(timed_create "$DIR_API" "d-$t-$round" "$t")
        fi
        DIRS+=("$d") BTRFSS+=("$b") RATIOS+=("$(ratio "$d" "$b")")
        printf '  round %d  dir %8.1f ms  btrfs %7.1f ms  dir/btrfs %s  (load %s)\n' "$round" \
            "$(ratio "$d" 1000000)" "$(ratio "$b" 1000000)" "${RATIOS[-1]}" "$(load_now)"
    done
    CREATE_RATIO[$t]=$(printf '%s\n' "${RATIOS[@]}" | median)
    CREATE_DIR[$t]=$(printf '%s\n' "${DIRS[@]}" | median | ms)
    CREATE_BTRFS[$t]=$(printf '%s\n' "${BTRFSS[@]}" | median | ms)
done

echo "snapshot of a running container holding the ~1 GB template, $ROUNDS rounds, interleaved"
create "$DIR_API" snap-src big1g >/dev/null
create "$BTRFS_API" snap-src big1g >/dev/null
DIR_SRC=$(id_of "$DIR_API" snap-src)
BTRFS_SRC=$(id_of "$BTRFS_API" snap-src)
wait_job "$DIR_API" "$(curl -sf -X POST "$DIR_API/containers/$DIR_SRC/start" | json_field job_id)"
wait_job "$BTRFS_API" "$(curl -sf -X POST "$BTRFS_API/containers/$BTRFS_SRC/start" | json_field job_id)"
snapshot() { # api id name → prints nanoseconds; deletes the snapshot
    local t0 t1 job
    sync
    t0=$(now_ns)
    job=$(post "$1" "/containers/$2/snapshots" "{\"name\":\"$3\"}" | json_field job_id)
    wait_job "$1" "$job"
    t1=$(now_ns)
    job=$(curl -sf -X DELETE "$1/containers/$2/snapshots/$3" | json_field job_id)
    wait_job "$1" "$job"
    echo $((t1 - t0))
}
SNAP_DIRS=() SNAP_BTRFSS=()
for round in $(seq "$ROUNDS"); do
    if ((round % 2)); then
        d=$(snapshot "$DIR_API" "$DIR_SRC" "s$round")
        b=$(snapshot "$BTRFS_API" "$BTRFS_SRC" "s$round")
    else
        b=$(snapshot "$BTRFS_API" "$BTRFS_SRC" "s$round")
        d=$(snapshot "$DIR_API" "$DIR_SRC" "s$round")
    fi
    SNAP_DIRS+=("$d") SNAP_BTRFSS+=("$b")
    printf '  round %d  dir %8.1f ms  btrfs %7.1f ms  (load %s)\n' "$round" \
        "$(ratio "$d" 1000000)" "$(ratio "$b" 1000000)" "$(load_now)"
done
SNAP_DIR=$(printf '%s\n' "${SNAP_DIRS[@]}" | median | ms)
SNAP_BTRFS=$(printf '%s\n' "${SNAP_BTRFSS[@]}" | median | ms)

echo "write throughput inside a container on btrfs: ${WRITE_MIB} MiB, dd conv=fsync; quotas off against on (limit 4 GiB), $ROUNDS rounds, interleaved"
create "$BTRFS_API" writer busybox >/dev/null
WRITER=$(id_of "$BTRFS_API" writer)
wait_job "$BTRFS_API" "$(curl -sf -X POST "$BTRFS_API/containers/$WRITER/start" | json_field job_id)"
SUBVOL=$POOL/containers/writer
LXC_BTRFS=$WORK/btrfs/data/lxc
quota() { # on|off
    if [ "$1" = on ]; then
        btrfs quota enable "$POOL"
        btrfs quota rescan -w "$POOL" >/dev/null
        btrfs qgroup limit 4G "$SUBVOL"
    else
        btrfs quota disable "$POOL"
    fi
}
write_mibs() { # → MiB/s of one dd inside the container
    local t0 t1
    sync
    t0=$(now_ns)
    lxc-attach -P "$LXC_BTRFS" -n writer -- /bin/sh -c \
        "dd if=/dev/zero of=/fill bs=1M count=$WRITE_MIB conv=fsync 2>/dev/null"
    t1=$(now_ns)
    lxc-attach -P "$LXC_BTRFS" -n writer -- /bin/rm -f /fill
    sync
    awk -v m="$WRITE_MIB" -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", m / (ns / 1e9) }'
}
OFFS=() ONS=() QRATIOS=()
for round in $(seq "$ROUNDS"); do
    if ((round % 2)); then
        quota off; off=$(write_mibs)
        quota on; on=$(write_mibs)
    else
        quota on; on=$(write_mibs)
        quota off; off=$(write_mibs)
    fi
    OFFS+=("$off") ONS+=("$on") QRATIOS+=("$(ratio "$on" "$off")")
    printf '  round %d  quotas off %7.1f MiB/s  on %7.1f MiB/s  on/off %s  (load %s)\n' \
        "$round" "$off" "$on" "${QRATIOS[-1]}" "$(load_now)"
done
QRATIO=$(printf '%s\n' "${QRATIOS[@]}" | median)

echo
for t in big200 big1g; do
    echo "create from $t: dir ${CREATE_DIR[$t]} ms, btrfs ${CREATE_BTRFS[$t]} ms (medians); dir/btrfs ${CREATE_RATIO[$t]}x (target >= 10) $(verdict "${CREATE_RATIO[$t]}" '>=' 10); btrfs under 150 ms $(verdict "${CREATE_BTRFS[$t]}" '<' 150)"
done
echo "snapshot of a running container holding ~1 GB: btrfs ${SNAP_BTRFS} ms (target < 100) $(verdict "$SNAP_BTRFS" '<' 100); dir ${SNAP_DIR} ms (reported)"
echo "qgroups: write throughput with quotas on / off ${QRATIO}x (medians: on $(printf '%s\n' "${ONS[@]}" | median) MiB/s, off $(printf '%s\n' "${OFFS[@]}" | median) MiB/s; reported)"
echo "load average at the end: $(load_now)"
