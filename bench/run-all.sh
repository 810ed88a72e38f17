#!/usr/bin/env bash
# Runs every benchmark in turn and prints their verdict lines at the end.
# Each script cleans up after itself and stops by itself; see BENCHMARKS.md
# for what each one measures and the figures of the last recorded run.
#
#   bench/run-all.sh             (as root: the benchmarks start LXC containers)
set -uo pipefail
cd "$(dirname "$0")"
out=$(mktemp /tmp/berth-bench-all.XXXXXX)
trap 'rm -f "$out"' EXIT
status=0
for script in api-read.sh provision.sh template-cache.sh scale.sh burst.sh stats.sh backup.sh; do
    echo "=== bench/$script"
    ./"$script" | tee -a "$out" || status=1
    echo
done
echo "=== verdicts"
grep -E 'PASS|FAIL' "$out"
grep -q FAIL "$out" && status=1
exit "$status"
