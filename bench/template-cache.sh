#!/usr/bin/env bash
# Template cache: creating a container from a ~200 MB template with the
# cache (copied from the prepared tree) against without it (unpacked every
# time), both through berth's API (POST, wait for the job), two berths side
# by side, interleaved for ROUNDS rounds. `sync` runs, untimed, before each
# create so one run's write-back does not land on the next. Then the same
# comparison for the bare tools (tar -x against cp -a), and a check that a
# container from the cache and one unpacked fresh hold identical trees.
#
# The template is the busybox root filesystem plus generated data: 150 MB
# incompressible (4 MB blobs, 100 KB "libraries") and ~165 MB of text
# (7 MB documents, 6000 files of 1–8 KB spread over 448 directories, or
# with LAYOUT=flat all in one), about 200 MB as .tar.gz.
#
#   bench/template-cache.sh      ROUNDS=5 LAYOUT=spread by default
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-5}
# spread: the 6000 small files in 448 directories, as in a distribution;
# flat: all in one directory (the worst case for parallel creates).
LAYOUT=${LAYOUT:-spread}
build_berth

make_template() { # output
    local tree=$WORK/big-tree
    mkdir -p "$tree"
    tar -C "$tree" -xzf "$WORK/templates/busybox.tar.gz"
    mkdir -p "$tree/usr/lib/bench/mods" "$tree/usr/share/bench/docs" "$tree/usr/share/bench/small"
    # Deterministic incompressible bytes: AES-CTR of zeros.
    # (openssl dies of SIGPIPE when head has enough: not a failure.)
    rand() { { openssl enc -aes-128-ctr -nosalt -pass "pass:$1" </dev/zero 2>/dev/null || true; } | head -c "$2"; }
    for i in $(seq -w 1 30); do rand "blob$i" 4194304 >"$tree/usr/lib/bench/blob$i.bin"; done
    for i in $(seq -w 1 300); do rand "mod$i" 102400 >"$tree/usr/lib/bench/mods/lib$i.so"; done
    # Text that compresses about like documentation (words from a small
    # vocabulary, numbers, punctuation).
    awk -v dir="$tree/usr/share/bench" -v flat="$([ "$LAYOUT" = flat ] && echo 1 || echo 0)" 'BEGIN {
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
            if (flat) {
                f = sprintf("%s/small/f%04d.txt", dir, s)
            } else {
                # Spread as in a distribution: 400 package documentation
                # directories of 5 files, 8 man sections and 40 locales of
                # 250 and 50.
                if (s <= 2000) sub_ = sprintf("doc/pkg%03d", (s - 1) % 400)
                else if (s <= 4000) sub_ = sprintf("man/man%d", (s - 1) % 8 + 1)
                else sub_ = sprintf("locale/l%02d/LC_MESSAGES", (s - 1) % 40)
                if (!(sub_ in made)) { system("mkdir -p " dir "/small/" sub_); made[sub_] = 1 }
                f = sprintf("%s/small/%s/f%04d.txt", dir, sub_, s)
            }
            want = 1024 + int(rand() * 7168); size = 0
            while (size < want) {
                line = w[int(rand() * n) + 1] "=" int(rand() * 100000)
                print line > f; size += length(line) + 1
            }
            close(f)
        }
    }'
    tar --numeric-owner -C "$tree" -czf "$1" .
    rm -rf "$tree"
}

mkdir -p "$WORK/templates"
sh "$REPO/packaging/make-busybox-template.sh" "$WORK/templates/busybox.tar.gz" >/dev/null
log "generating the ~200 MB template…"
make_template "$WORK/templates/big.tar.gz"
TEMPLATE=$WORK/templates/big.tar.gz

start_berth "$WORK/fresh" BERTH_TEMPLATE_DIR="$WORK/templates" BERTH_TEMPLATE_CACHE=false
FRESH_API=http://127.0.0.1:$PORT/v1
start_berth "$WORK/cached" BERTH_TEMPLATE_DIR="$WORK/templates"
CACHED_API=http://127.0.0.1:$PORT/v1

create() { # api name → prints nanoseconds
    local t0 t1 answer job
    sync
    t0=$(now_ns)
    answer=$(curl -sf -H 'Content-Type: application/json' \
        --data "{\"name\":\"$2\",\"ostemplate\":\"big\"}" "$1/containers")
    job=$(json_field job_id <<<"$answer")
    curl -sf "$1/jobs/$job/wait?timeout=300" | grep -q '"status":"done"' ||
        { log "create $2 failed: $(curl -s "$1/jobs/$job/log")"; return 1; }
    t1=$(now_ns)
    echo $((t1 - t0))
}

id_of() { curl -sf "$1/containers?name=$2" | json_field id; } # api name

delete() { # api id
    local job
    job=$(curl -sf -X DELETE "$1/containers/$2" | json_field job_id)
    curl -sf "$1/jobs/$job/wait?timeout=120" | grep -q '"status":"done"'
}

timed_create() { # api name → prints nanoseconds, removes the container afterwards
    local ns
    ns=$(create "$1" "$2")
    delete "$1" "$(id_of "$1" "$2")"
    echo "$ns"
}

machine
echo "template ($LAYOUT layout): $(stat -c %s "$TEMPLATE") bytes .tar.gz; $(tar -tzvf "$TEMPLATE" | wc -l) entries"
# The first create with the cache fills it: unpack, sync, copy.
COLD=$(create "$CACHED_API" cold)
echo "first create with the cache (unpack into the cache + sync + copy): $(ratio "$COLD" 1000000) ms"
echo "unpacked size: $(du -sb "$WORK/cached/data/lxc/cold/rootfs" | cut -f1) bytes"
delete "$CACHED_API" "$(id_of "$CACHED_API" cold)"

echo "berth create-to-done, POST /v1/containers + GET /v1/jobs/ID/wait; $ROUNDS rounds, interleaved"
FRESH_TIMES=() CACHED_TIMES=() RATIOS=()
for round in $(seq "$ROUNDS"); do
    if ((round % 2)); then
        fresh=$(timed_create "$FRESH_API" "fresh$round")
        cached=$(timed_create "$CACHED_API" "cached$round")
    else
        cached=$(timed_create "$CACHED_API" "cached$round")
        fresh=$(timed_create "$FRESH_API" "fresh$round")
    fi
    FRESH_TIMES+=("$fresh") CACHED_TIMES+=("$cached") RATIOS+=("$(ratio "$fresh" "$cached")")
    printf '  round %d  unpack %7.0f ms  from cache %7.0f ms  speed-up %s  (load %s)\n' "$round" \
        "$(ratio "$fresh" 1000000)" "$(ratio "$cached" 1000000)" "${RATIOS[-1]}" "$(load_now)"
done
SPEEDUP=$(printf '%s\n' "${RATIOS[@]}" | median)

# The bare tools, same interleaving.
CACHE_TREE=$(find "$WORK/cached/data/lxc/.template-cache/big.tar.gz" -mindepth 1 -maxdepth 1 -type d -not -name '.*' -print -quit)
echo "bare tools: tar -x -p -z against cp -a --reflink=auto --sparse=always (and --sparse=auto) from the cached tree"
TAR_TIMES=() CP_TIMES=() CPAUTO_TIMES=() TOOL_RATIOS=()
tool() { # label command… → prints nanoseconds
    local t0 t1 dest=$WORK/tool-copy
    rm -rf "$dest"
    sync
    t0=$(now_ns)
    "$@" "$dest"
    t1=$(now_ns)
    rm -rf "$dest"
    echo $((t1 - t0))
}
untar() { mkdir -p "$1" && tar -x -p --numeric-owner --xattrs --xattrs-include='*' -z -f "$TEMPLATE" -C "$1"; }
copy() { cp -a --reflink=auto --sparse=always --no-target-directory "$CACHE_TREE" "$1"; }
copy_auto() { cp -a --reflink=auto --sparse=auto --no-target-directory "$CACHE_TREE" "$1"; }
for round in $(seq "$ROUNDS"); do
    if ((round % 2)); then
        t=$(tool untar); c=$(tool copy); a=$(tool copy_auto)
    else
        a=$(tool copy_auto); c=$(tool copy); t=$(tool untar)
    fi
    TAR_TIMES+=("$t") CP_TIMES+=("$c") CPAUTO_TIMES+=("$a") TOOL_RATIOS+=("$(ratio "$t" "$c")")
    printf '  round %d  tar %7.0f ms  cp --sparse=always %7.0f ms  cp --sparse=auto %7.0f ms  (load %s)\n' \
        "$round" "$(ratio "$t" 1000000)" "$(ratio "$c" 1000000)" "$(ratio "$a" 1000000)" "$(load_now)"
done

# Identical contents: one container unpacked fresh, one from the cache.
tree_listing() { # rootfs
    (cd "$1" && find . -printf '%P|%y|%m|%U|%G|%s|%l|%T@\n' | sort &&
        find . -type f -print0 | sort -z | xargs -0 sha256sum)
}
create "$FRESH_API" same-fresh >/dev/null
create "$CACHED_API" same-cached >/dev/null
if cmp -s <(tree_listing "$WORK/fresh/data/lxc/same-fresh/rootfs") \
    <(tree_listing "$WORK/cached/data/lxc/same-cached/rootfs"); then
    IDENTICAL=yes
else
    IDENTICAL=no
    diff <(tree_listing "$WORK/fresh/data/lxc/same-fresh/rootfs") \
        <(tree_listing "$WORK/cached/data/lxc/same-cached/rootfs") | head -20 >&2 || true
fi
ENTRIES=$(find "$WORK/cached/data/lxc/same-cached/rootfs" | wc -l)

echo
echo "median create: unpacking $(printf '%s\n' "${FRESH_TIMES[@]}" | median | ms) ms, from the cache $(printf '%s\n' "${CACHED_TIMES[@]}" | median | ms) ms"
echo "speed-up with the cache: ${SPEEDUP}x (median of per-round ratios; target >= 3) $(verdict "$SPEEDUP" '>=' 3)"
echo "bare tools: tar/cp --sparse=always $(printf '%s\n' "${TOOL_RATIOS[@]}" | median)x; medians tar $(printf '%s\n' "${TAR_TIMES[@]}" | median | ms) ms, cp --sparse=always $(printf '%s\n' "${CP_TIMES[@]}" | median | ms) ms, cp --sparse=auto $(printf '%s\n' "${CPAUTO_TIMES[@]}" | median | ms) ms"
echo "identical trees (names, types, modes, owners, sizes, link targets, mtimes, SHA-256 of every file; $ENTRIES entries): $IDENTICAL $([ "$IDENTICAL" = yes ] && echo PASS || echo FAIL)"
echo "load average at the end: $(load_now)"
