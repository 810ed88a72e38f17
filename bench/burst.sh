#!/usr/bin/env bash
# Burst: BURST (50) creates of busybox containers submitted at once, ROUNDS
# times (the p99 of 50 requests is nearly their maximum: one burst says
# little on a shared 2-core machine); all must reach done. Meanwhile a
# second client (wrk, 1 thread, 4 connections, each waiting 10 ms between
# requests: a dashboard or poller, not a flood) reads GET container, GET
# job and the first page of containers. Its p99 during the bursts must stay
# under 50 ms, and so must the p99 of the create requests themselves (each
# answered 202 with its job). The same client first runs for IDLE_SECS with
# berth idle, so the p99 under burst also comes as a ratio to the idle p99
# measured in the same run. The containers of a burst are deleted through
# the API before the next (untimed).
#
# BURST_CLIENT=processes submits with BURST curl processes at once and
# waits with one curl per job instead (the client then competes with berth
# for the 2 cores; BENCHMARKS.md compares both).
#
#   bench/burst.sh               BURST=50 ROUNDS=3 IDLE_SECS=15 BURST_CLIENT=single
source "$(dirname "$0")/lib.sh"

BURST=${BURST:-50}
ROUNDS=${ROUNDS:-3}
BURST_CLIENT=${BURST_CLIENT:-single}
IDLE_SECS=${IDLE_SECS:-15}
build_berth

mkdir -p "$WORK/templates"
sh "$REPO/packaging/make-busybox-template.sh" "$WORK/templates/busybox.tar.gz" >/dev/null
start_berth "$WORK/berth" BERTH_TEMPLATE_DIR="$WORK/templates"
API=http://127.0.0.1:$PORT/v1

# One container made before: the reads' target, and a warm template cache.
answer=$(curl -sf -H 'Content-Type: application/json' \
    --data '{"name":"reader","ostemplate":"busybox"}' "$API/containers")
READ_JOB=$(json_field job_id <<<"$answer")
READ_ID=$(json_field container_id <<<"$answer")
curl -sf "$API/jobs/$READ_JOB/wait?timeout=60" | grep -q '"status":"done"'

cat >"$WORK/reads.lua" <<EOF
-- Rotates over three reads; each connection waits 10 ms between requests.
local paths = { "/v1/containers/$READ_ID", "/v1/jobs/$READ_JOB", "/v1/containers?limit=50" }
local n = 0
request = function()
    n = n + 1
    return wrk.format("GET", paths[(n % #paths) + 1])
end
delay = function() return 10 end
EOF
READS=(wrk -t1 -c4 --latency -s "$WORK/reads.lua" "http://127.0.0.1:$PORT")

# One client opening BURST connections at once (as a billing system
# would), rather than BURST curl processes competing with berth for CPU.
# (curl's config: one block per request, `next` between blocks.)
write_burst_config() { # round
    for i in $(seq "$BURST"); do
        ((i == 1)) || echo next
        printf 'url = "%s/containers"\nheader = "Content-Type: application/json"\ndata = "{\\"name\\":\\"burst%d-%d\\",\\"ostemplate\\":\\"busybox\\"}"\nwrite-out = "\\n@@ %%{http_code} %%{time_total}\\n"\n' "$API" "$1" "$i"
    done >"$WORK/burst.curl"
}

machine
echo "client: $BURST_CLIENT; $ROUNDS bursts of $BURST creates, the containers deleted (untimed) between bursts"
echo "reads: wrk -t1 -c4 --latency -s reads.lua (GET container, GET job, GET /v1/containers; 10 ms pause per connection)"
read -r IDLE_RPS IDLE_P99 IDLE_BAD IDLE_ERR _ < <("${READS[@]}" -d"${IDLE_SECS}s" | parse_wrk)
echo "idle: $IDLE_RPS req/s, p99 $IDLE_P99 ms, non-2xx $IDLE_BAD, errors $IDLE_ERR (load $(load_now))"

# p99 by nearest rank of the numbers on stdin (of 50: the slowest but one).
p99() { sort -g | awk '{ v[NR] = $1 } END { r = int(NR * 0.99 + 0.999); if (r < 1) r = 1; printf "%.1f", v[r] }'; }

ALL_DONE=0 ALL_ACCEPTED=0 ALL_BAD=0 CREATE_P99S=() READ_P99S=()
: >"$WORK/create-times.txt"
for round in $(seq "$ROUNDS"); do
    write_burst_config "$round"
    # The reads run for at most 10 minutes; SIGINT makes wrk stop and report.
    "${READS[@]}" -d600s >"$WORK/burst-reads.txt" &
    WRK_PID=$!
    BENCH_PIDS+=("$WRK_PID")
    sleep 1
    t0=$(now_ns)
    if [ "$BURST_CLIENT" = processes ]; then
        seq "$BURST" | xargs -P "$BURST" -I{} curl -s -H 'Content-Type: application/json' \
            --data "{\"name\":\"burst$round-{}\",\"ostemplate\":\"busybox\"}" \
            -w '\n@@ %{http_code} %{time_total}\n' "$API/containers" >"$WORK/submitted.txt"
    else
        curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max "$BURST" -K "$WORK/burst.curl" >"$WORK/submitted.txt"
    fi
    SUBMIT_MS=$(ms $(($(now_ns) - t0)))
    ACCEPTED=$(grep -c '^@@ 202 ' "$WORK/submitted.txt" || true)
    # Each create's time from connect to answer, in ms.
    awk '$1 == "@@" { print $3 * 1000 }' "$WORK/submitted.txt" >"$WORK/times.txt"
    cat "$WORK/times.txt" >>"$WORK/create-times.txt"
    CREATE_P99=$(p99 <"$WORK/times.txt")
    # Wait for all of them the same way: one client, one long poll per job.
    first=1
    for job in $(grep -o '"job_id":"[^"]*"' "$WORK/submitted.txt" | cut -d'"' -f4); do
        ((first)) || echo next
        first=0
        printf 'url = "%s/jobs/%s/wait?timeout=300"\nwrite-out = "\\n"\n' "$API" "$job"
    done >"$WORK/wait.curl"
    if [ "$BURST_CLIENT" = processes ]; then
        for job in $(grep -o '"job_id":"[^"]*"' "$WORK/submitted.txt" | cut -d'"' -f4); do
            curl -s "$API/jobs/$job/wait?timeout=300"; echo
        done >"$WORK/waited.txt"
    else
        curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max "$BURST" -K "$WORK/wait.curl" >"$WORK/waited.txt"
    fi
    DONE=$(grep -o '"status":"done"' "$WORK/waited.txt" | wc -l)
    BURST_MS=$(ms $(($(now_ns) - t0)))
    kill -INT "$WRK_PID"
    wait "$WRK_PID" || true
    read -r BURST_RPS BURST_P99 BURST_BAD BURST_ERR _ < <(parse_wrk <"$WORK/burst-reads.txt")
    echo "  burst $round: $ACCEPTED of $BURST creates answered 202 within $SUBMIT_MS ms, each in p99 $CREATE_P99 ms (slowest $(sort -g "$WORK/times.txt" | tail -1) ms); $DONE done after $BURST_MS ms; reads $BURST_RPS req/s, p99 $BURST_P99 ms, non-2xx+errors $((BURST_BAD + BURST_ERR)) (load $(load_now))"
    ALL_DONE=$((ALL_DONE + DONE)) ALL_ACCEPTED=$((ALL_ACCEPTED + ACCEPTED))
    ALL_BAD=$((ALL_BAD + BURST_BAD + BURST_ERR))
    CREATE_P99S+=("$CREATE_P99") READ_P99S+=("$BURST_P99")

    # Untimed clean-up through the API.
    for id in $(grep -o '"container_id":"[^"]*"' "$WORK/submitted.txt" | cut -d'"' -f4); do
        curl -sf -X DELETE "$API/containers/$id" | json_field job_id
    done >"$WORK/deletes.txt"
    while read -r job; do curl -sf "$API/jobs/$job/wait?timeout=120" >/dev/null || true; done <"$WORK/deletes.txt"
done

TOTAL=$((BURST * ROUNDS))
CREATE_MEDIAN=$(printf '%s\n' "${CREATE_P99S[@]}" | median)
READ_MEDIAN=$(printf '%s\n' "${READ_P99S[@]}" | median)
echo
echo "all creates done: $ALL_DONE/$TOTAL $(verdict "$ALL_DONE" '>=' "$TOTAL")"
echo "create requests answered 202: $ALL_ACCEPTED/$TOTAL $(verdict "$ALL_ACCEPTED" '>=' "$TOTAL"); p99 of each create request: $CREATE_MEDIAN ms (median over bursts; target < 50 ms) $(verdict "$CREATE_MEDIAN" '<' 50); over all $TOTAL: $(p99 <"$WORK/create-times.txt") ms"
echo "read p99 during the bursts: $READ_MEDIAN ms (median over bursts; target < 50 ms) $(verdict "$READ_MEDIAN" '<' 50); idle p99 $IDLE_P99 ms; burst/idle $(ratio "$READ_MEDIAN" "$IDLE_P99")"
echo "non-2xx and errors during the bursts: $ALL_BAD $(verdict "$ALL_BAD" '<=' 0)"
echo "load average at the end: $(load_now)"
