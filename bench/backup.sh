#!/usr/bin/env bash
# Backup throughput: berth's backup job (POST /v1/containers/ID/backups,
# wait for the job: tar of the root filesystem through zstd, hashed and
# written to backup_dir, fsync, rename) against the bare tools doing the
# same work by hand (`tar -c … | zstd > file; sync`), with the same tar
# flags berth uses, on the same tree, interleaved (ABBA) for ROUNDS rounds.
# `sync` runs, untimed, before each side so one's write-back does not land
# on the other; the bare side's own `sync` is timed, as berth's fsync is.
#
# The tree is a stopped busybox container plus generated data: 150 MB
# incompressible (4 MB blobs, 100 KB "libraries") and ~165 MB of text (7 MB
# documents, 6000 files of 1–8 KB in 448 directories), about 315 MB.
# A last round backs up the container running (frozen while tar reads).
#
#   bench/backup.sh        ROUNDS=5 by default
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-5}
build_berth

fill_tree() { # rootfs
    local tree=$1
    mkdir -p "$tree/usr/lib/bench/mods" "$tree/usr/share/bench/docs" "$tree/usr/share/bench/small"
    # Deterministic incompressible bytes: AES-CTR of zeros.
    rand() { { openssl enc -aes-128-ctr -nosalt -pass "pass:$1" </dev/zero 2>/dev/null || true; } | head -c "$2"; }
    for i in $(seq -w 1 30); do rand "blob$i" 4194304 >"$tree/usr/lib/bench/blob$i.bin"; done
    for i in $(seq -w 1 300); do rand "mod$i" 102400 >"$tree/usr/lib/bench/mods/lib$i.so"; done
    awk -v dir="$tree/usr/share/bench" 'BEGIN {
        srand(42)
        n = split("the of container host template image network memory disk job runner " \
                  "start stop create delete config value error warning info debug kernel " \
                  "cgroup bridge address route package install service socket process", w, " ")
        for (d = 1; d <= 20; d++) {
            f = sprintf("%s/docs/doc%02d.txt", dir, d); size = 0
            while (size < 7340032) {
                line = sprintf("%06d", int(rand() * 1000000))
                for (k = 0; k < 12; k++) line = line " " w[int(rand() * n) + 1]
                line = line sprintf(" %d.%d;", int(rand() * 65536), int(rand() * 100))
                print line > f; size += length(line) + 1
            }
            close(f)
        }
        for (s = 1; s <= 6000; s++) {
            if (s <= 2000) sub_ = sprintf("doc/pkg%03d", (s - 1) % 400)
            else if (s <= 4000) sub_ = sprintf("man/man%d", (s - 1) % 8 + 1)
            else sub_ = sprintf("locale/l%02d/LC_MESSAGES", (s - 1) % 40)
            if (!(sub_ in made)) { system("mkdir -p " dir "/small/" sub_); made[sub_] = 1 }
            f = sprintf("%s/small/%s/f%04d.txt", dir, sub_, s)
            want = 1024 + int(rand() * 7168); size = 0
            while (size < want) {
                line = w[int(rand() * n) + 1] "=" int(rand() * 100000)
                print line > f; size += length(line) + 1
            }
            close(f)
        }
    }'
}

mkdir -p "$WORK/templates" "$WORK/bare"
sh "$REPO/packaging/make-busybox-template.sh" "$WORK/templates/busybox.tar.gz" >/dev/null
start_berth "$WORK/b" BERTH_TEMPLATE_DIR="$WORK/templates"
API=http://127.0.0.1:$PORT/v1
answer=$(curl -sf -H 'Content-Type: application/json' \
    --data '{"name":"bk","ostemplate":"busybox"}' "$API/containers")
ID=$(json_field container_id <<<"$answer")
curl -sf "$API/jobs/$(json_field job_id <<<"$answer")/wait?timeout=120" | grep -q '"status":"done"'
CT_DIR=$WORK/b/data/lxc/bk
log "generating the ~315 MB tree…"
fill_tree "$CT_DIR/rootfs"
TREE_BYTES=$(du -sb "$CT_DIR/rootfs" | cut -f1)

backup_job() { # → prints nanoseconds, deletes the backup afterwards (untimed)
    local t0 t1 answer job backup
    sync
    t0=$(now_ns)
    answer=$(curl -sf -X POST "$API/containers/$ID/backups")
    job=$(json_field job_id <<<"$answer")
    curl -sf "$API/jobs/$job/wait?timeout=300" | grep -q '"status":"done"' ||
        { log "backup failed: $(curl -s "$API/jobs/$job/log")"; return 1; }
    t1=$(now_ns)
    backup=$(json_field backup_id <<<"$answer")
    curl -sf "$API/backups/$backup" | sed -n 's/.*"size":\([0-9]*\).*/\1/p' >"$WORK/berth-size"
    curl -sf -X DELETE "$API/backups/$backup" >/dev/null
    echo $((t1 - t0))
}

bare() { # → prints nanoseconds
    local t0 t1 out=$WORK/bare/out.tar.zst
    rm -f "$out"
    sync
    t0=$(now_ns)
    tar --create --numeric-owner --xattrs --xattrs-include='*' --acls --sparse \
        --one-file-system --file - --directory "$CT_DIR" rootfs | zstd -q -c >"$out"
    sync "$out"
    t1=$(now_ns)
    stat -c %s "$out" >"$WORK/bare-size"
    rm -f "$out"
    echo $((t1 - t0))
}

machine
echo "tree: $TREE_BYTES bytes, $(find "$CT_DIR/rootfs" | wc -l) entries (stopped container)"
echo "berth backup job (POST, wait) against tar -c | zstd > file; sync — $ROUNDS rounds, interleaved"
JOB_TIMES=() BARE_TIMES=() RATIOS=()
for round in $(seq "$ROUNDS"); do
    if ((round % 2)); then
        j=$(backup_job); b=$(bare)
    else
        b=$(bare); j=$(backup_job)
    fi
    JOB_TIMES+=("$j") BARE_TIMES+=("$b") RATIOS+=("$(ratio "$b" "$j")")
    printf '  round %d  berth %6.0f ms (%5.0f MB/s)  tar|zstd %6.0f ms (%5.0f MB/s)  berth/bare throughput %s  (load %s)\n' \
        "$round" "$(ratio "$j" 1000000)" "$(ratio "$((TREE_BYTES * 1000))" "$j")" \
        "$(ratio "$b" 1000000)" "$(ratio "$((TREE_BYTES * 1000))" "$b")" "${RATIOS[-1]}" "$(load_now)"
done
RATIO=$(printf '%s\n' "${RATIOS[@]}" | median)

# Running: frozen while tar reads, thawed before compression ends.
curl -sf "$API/jobs/$(curl -sf -X POST "$API/containers/$ID/start" | json_field job_id)/wait?timeout=60" |
    grep -q '"status":"done"'
RUNNING=$(backup_job)

echo
echo "archive: berth $(cat "$WORK/berth-size") bytes, tar|zstd $(cat "$WORK/bare-size") bytes"
echo "median: berth $(printf '%s\n' "${JOB_TIMES[@]}" | median | ms) ms, tar|zstd $(printf '%s\n' "${BARE_TIMES[@]}" | median | ms) ms"
echo "running container (frozen while read): berth $(ms "$RUNNING") ms"
echo "backup throughput against tar -c | zstd: ${RATIO}x (median of per-round ratios; target >= 0.8) $(verdict "$RATIO" '>=' 0.8)"
echo "load average at the end: $(load_now)"
