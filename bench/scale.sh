#!/usr/bin/env bash
# Scale: reads on a database holding 10,000 containers and 1,000,000 jobs
# (3 log lines each) against the same reads on a nearly empty one, two
# berths side by side, interleaved for ROUNDS rounds of wrk (2 threads,
# 8 connections, DURATION). The nearly empty database holds one page of
# each list (50 containers, 50 jobs): a truly empty one would answer the
# first page with fewer items, which measures the size of the answer, not
# the size of the database. Then database bytes per job, and
# retention: berth's start-up sweep pruning 1,000,000 expired jobs, twice
# over (the file must not grow from one cycle to the next), for a database
# berth creates (incremental auto-vacuum) and one made before that (none).
#
# Rows are written with the sqlite3 CLI straight into a copy of the schema
# berth's migrations made, in the shapes berth writes them.
#
#   bench/scale.sh               ROUNDS=3 DURATION=5s JOBS=1000000 CONTAINERS=10000
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
JOBS=${JOBS:-1000000}
CONTAINERS=${CONTAINERS:-10000}
LOG_LINES=3
command -v sqlite3 >/dev/null || { log "sqlite3 is missing: apt-get install sqlite3"; exit 1; }
build_berth

sql() { sqlite3 -cmd '.timeout 30000' "$@"; }

# A database with berth's schema, as berth creates it: start berth on an
# empty data directory, stop it.
# Under a node name of its own: every copy of the schema holds this
# berth's node row (another host id, a fresh heartbeat), which would keep
# the later berths from taking the default name.
start_berth "$WORK/schema" BERTH_NODE_NAME=scale-schema
stop_pid "$PID"
SCHEMA=$WORK/schema.db
sql "$WORK/schema/data/berth.db" "VACUUM INTO '$SCHEMA'"

UUID="printf('%08x-%04x-4%03x-a%03x-%012x', abs(random()) % 4294967296, abs(random()) % 65536,
        abs(random()) % 4096, abs(random()) % 4096, abs(random()) % 281474976710656)"
TS="'%Y-%m-%dT%H:%M:%SZ'"

add_containers() { # db count
    sql "$1" <<EOF
PRAGMA synchronous = OFF;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
INSERT INTO containers (id, name, ostemplate, parameters, status, created_at, updated_at)
SELECT $UUID, 'ct' || i, 'debian-12',
       CASE WHEN i % 3 = 0 THEN '{"cpus":"2","memsize":"512","memsize_units":"M"}' END,
       CASE WHEN i % 2 = 0 THEN 'running' ELSE 'stopped' END,
       strftime($TS, strftime('%s', 'now') - 5000000 + i, 'unixepoch'),
       strftime($TS, strftime('%s', 'now') - 4000000 + i, 'unixepoch')
FROM n;
COMMIT;
EOF
}

# add_jobs db count newest_age_secs spacing_secs: finished jobs spread over
# the containers, the newest finished newest_age_secs ago, with their logs.
add_jobs() {
    sql "$1" <<EOF
PRAGMA synchronous = OFF;
PRAGMA foreign_keys = ON;
BEGIN;
CREATE TEMP TABLE c AS SELECT row_number() OVER (ORDER BY seq) - 1 AS k, id, name FROM containers;
CREATE TEMP TABLE base AS SELECT COALESCE(MAX(seq), 0) AS seq FROM jobs;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
INSERT INTO jobs (id, entity_type, entity_id, action, status, payload, error, progress,
                  created_at, started_at, finished_at, requested_by)
SELECT $UUID, 'container', c.id,
       CASE i % 5 WHEN 0 THEN 'create' WHEN 1 THEN 'start' WHEN 2 THEN 'stop'
                  WHEN 3 THEN 'configure' ELSE 'restart' END,
       CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'done' END,
       NULL,
       CASE WHEN i % 50 = 0 THEN 'start failed: container did not reach RUNNING within 30 s' END,
       100,
       strftime($TS, strftime('%s', 'now') - $3 - ($2 - i) * $4 - 2, 'unixepoch'),
       strftime($TS, strftime('%s', 'now') - $3 - ($2 - i) * $4 - 1, 'unixepoch'),
       strftime($TS, strftime('%s', 'now') - $3 - ($2 - i) * $4, 'unixepoch'),
       NULL
FROM n JOIN c ON c.k = i % (SELECT COUNT(*) FROM c);
WITH RECURSIVE l(line) AS (SELECT 1 UNION ALL SELECT line + 1 FROM l WHERE line < $LOG_LINES)
INSERT INTO job_log (job_seq, line, time, text)
SELECT j.seq, l.line, j.finished_at,
       CASE l.line
         WHEN 1 THEN '\$ lxc-start -P /var/lib/berth/lxc -n ' || c.name || ' -o /var/lib/berth/lxc/' || c.name || '/lxc.log -l ERROR'
         WHEN 2 THEN 'root filesystem and config ready in /var/lib/berth/lxc/' || c.name
         ELSE 'running' END
FROM jobs j JOIN c ON c.id = j.entity_id, l
WHERE j.seq > (SELECT seq FROM base);
DROP TABLE c;
DROP TABLE base;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
EOF
}

size_of() { stat -c %s "$1"; }
pages() { sql "$1" "SELECT (SELECT page_count FROM pragma_page_count) || ' pages, ' || (SELECT freelist_count FROM pragma_freelist_count) || ' free'"; }

machine

# The nearly empty database: one page of each list.
cp "$SCHEMA" "$WORK/empty.db"
add_containers "$WORK/empty.db" 50
add_jobs "$WORK/empty.db" 50 60 1 >/dev/null

# The full one, timed and measured as it grows.
cp "$SCHEMA" "$WORK/full.db"
add_containers "$WORK/full.db" "$CONTAINERS"
sql "$WORK/full.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
BEFORE_JOBS=$(size_of "$WORK/full.db")
t0=$(now_ns)
add_jobs "$WORK/full.db" "$JOBS" 60 1 >/dev/null
log "generated $JOBS jobs in $(ms $(($(now_ns) - t0))) ms"
AFTER_JOBS=$(size_of "$WORK/full.db")
BYTES_PER_JOB=$(( (AFTER_JOBS - BEFORE_JOBS) / JOBS ))
echo "database: $CONTAINERS containers $BEFORE_JOBS bytes; + $JOBS jobs with $LOG_LINES log lines each: $AFTER_JOBS bytes"
echo "bytes per job (row, indexes, log lines): $BYTES_PER_JOB"
sql "$WORK/full.db" "SELECT '  ' || name || ': ' || (SUM(pgsize) / $JOBS) || ' bytes/job' FROM dbstat
    WHERE name LIKE 'job%' OR name LIKE 'sqlite_autoindex_jobs%' GROUP BY name ORDER BY SUM(pgsize) DESC" 2>/dev/null || true

# The ids the reads ask for: a container and a job in the middle.
mid() { sql "$1" "SELECT id FROM $2 ORDER BY seq LIMIT 1 OFFSET (SELECT COUNT(*) / 2 FROM $2)"; }
for side in empty full; do
    mkdir -p "$WORK/$side/data"
    cp "$WORK/$side.db" "$WORK/$side/data/berth.db"
done
declare -A PORTS PIDS CID JID
for side in empty full; do
    CID[$side]=$(mid "$WORK/$side.db" containers)
    JID[$side]=$(mid "$WORK/$side.db" jobs)
    start_berth "$WORK/$side"
    PORTS[$side]=$PORT PIDS[$side]=$PID
done

# Query plans of the four reads, on the full database.
echo "query plans (full database):"
for query in \
    "SELECT * FROM containers WHERE id = 'x' AND status <> 'deleted'" \
    "SELECT * FROM jobs WHERE id = 'x'" \
    "SELECT * FROM containers WHERE seq > 0 AND status <> 'deleted' ORDER BY seq LIMIT 51" \
    "SELECT * FROM jobs WHERE seq < 9223372036854775807 ORDER BY seq DESC LIMIT 51"; do
    printf '  %s\n    %s\n' "$query" "$(sql "$WORK/full.db" "EXPLAIN QUERY PLAN $query" | tail -n +2 | tr '\n' ' ')"
done

declare -A RPS P99
ENDPOINTS="container job containers jobs"
path() { # endpoint side
    case $1 in
        container) echo "/v1/containers/${CID[$2]}" ;;
        job) echo "/v1/jobs/${JID[$2]}" ;;
        containers) echo "/v1/containers" ;;
        jobs) echo "/v1/jobs" ;;
    esac
}
for endpoint in $ENDPOINTS; do
    for side in empty full; do
        curl -sf "http://127.0.0.1:${PORTS[$side]}$(path "$endpoint" "$side")" | grep -q '"message":"success"' ||
            { log "GET $(path "$endpoint" "$side") failed on the $side database"; exit 1; }
        wrk -t2 -c8 -d1s "http://127.0.0.1:${PORTS[$side]}$(path "$endpoint" "$side")" >/dev/null
    done
done

echo "endpoints: container = GET /v1/containers/ID, job = GET /v1/jobs/ID, containers = GET /v1/containers, jobs = GET /v1/jobs (first pages, 50 items)"
echo "wrk -t2 -c8 -d$DURATION --latency per endpoint and database; $ROUNDS rounds, interleaved"
empty_full_rounds "$ENDPOINTS"
echo
ALL_PASS=PASS
for endpoint in $ENDPOINTS; do
    # Time per request at the same concurrency: the inverse of throughput.
    r=$(for round in $(seq "$ROUNDS"); do
        ratio "${RPS[$endpoint,empty,$round]}" "${RPS[$endpoint,full,$round]}"; echo
    done | median)
    v=$(verdict "$r" '<=' 1.5)
    [ "$v" = PASS ] || ALL_PASS=FAIL
    printf 'GET %-10s time full/empty %s (target <= 1.5) %s; median p99 empty %s ms, full %s ms\n' "$endpoint" "$r" "$v" \
        "$(for round in $(seq "$ROUNDS"); do echo "${P99[$endpoint,empty,$round]}"; done | median)" \
        "$(for round in $(seq "$ROUNDS"); do echo "${P99[$endpoint,full,$round]}"; done | median)"
done
echo "scale overall: $ALL_PASS"
for side in empty full; do stop_pid "${PIDS[$side]}"; done

# Retention: berth prunes jobs finished before the retention period when it
# starts (and hourly). Two cycles of 1,000,000 expired jobs each.
retention_cycles() { # label db
    local db=$2 dir=$WORK/retention-$1
    mkdir -p "$dir/data"
    echo "retention, $1 database (auto_vacuum $(sql "$db" 'PRAGMA auto_vacuum'), retention 30 days):"
    for cycle in 1 2; do
        add_jobs "$db" "$JOBS" $((40 * 86400)) 1 >/dev/null
        local before
        before=$(size_of "$db")
        echo "  cycle $cycle: with $JOBS expired jobs: $before bytes ($(pages "$db"))"
        cp "$db" "$dir/data/berth.db"
        rm -f "$dir/data/berth.db-wal" "$dir/data/berth.db-shm"
        local t0
        t0=$(now_ns)
        start_berth "$dir" BERTH_JOB_RETENTION_DAYS=30
        for _ in $(seq 3000); do grep -q 'retention: removed' "$dir/berth.log" && break; sleep 0.1; done
        local took wal
        took=$(ms $(($(now_ns) - t0)))
        wal=$(size_of "$dir/data/berth.db-wal" 2>/dev/null || echo 0)
        stop_pid "$PID"
        cp "$dir/data/berth.db" "$db"
        echo "  cycle $cycle: after berth's sweep ($took ms from start, $(grep -o 'removed [0-9]* jobs' "$dir/berth.log" | tail -1)): $(size_of "$db") bytes ($(pages "$db")), -wal while running $wal bytes"
        : >"$dir/berth.log"
    done
}
cp "$SCHEMA" "$WORK/retention-new.db"
add_containers "$WORK/retention-new.db" "$CONTAINERS"
cp "$WORK/retention-new.db" "$WORK/retention-old.db"
retention_cycles "new" "$WORK/retention-new.db"
sql "$WORK/retention-old.db" "PRAGMA auto_vacuum = NONE; VACUUM;"
retention_cycles "pre-existing" "$WORK/retention-old.db"
echo "load average at the end: $(load_now)"
