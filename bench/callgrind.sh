#!/usr/bin/env bash
#
# bench/callgrind.sh — instructions per request, counted by valgrind's callgrind (user space
# only). Unlike timings, instruction counts are repeatable on a shared, noisy machine, so they
# show a change's per-command cost before redis-benchmark's noise does.
#
# For each server binary and each load, the server runs under callgrind twice, serving N1 and
# then N2 requests from `redis-benchmark -c 1` over a preloaded keyspace; the cost per request
# is (Ir(N2) - Ir(N1)) / (N2 - N1), which cancels start-up, preloading and shutdown.
#
# Usage:
#   bench/callgrind.sh [SERVER_BINARY ...]     (default: target/release/ferrous-server and
#                                               redis-server from the PATH)
# Environment:
#   LOADS   space-separated "test:pipeline" pairs (default "get:16 set:16 incr:16 get:1")
#   N1, N2  request counts (default 20000 and 60000)
#   PORT    port to use (default 25555)
#
# Prints one Markdown row per binary and load: instructions per request.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 2; }
command -v redis-benchmark >/dev/null || { echo "redis-benchmark is needed (redis-tools)" >&2; exit 2; }
BINS=("$@")
if [ ${#BINS[@]} -eq 0 ]; then
    BINS=(target/release/ferrous-server "$(command -v redis-server)")
fi
LOADS=${LOADS:-"get:16 set:16 incr:16 get:1"}
N1=${N1:-20000}
N2=${N2:-60000}
PORT=${PORT:-25555}
WORK=$(mktemp -d /tmp/callgrind-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# Total instructions of one server run serving `n` requests of `test` at pipeline `p`.
instructions() {
    local bin=$1 test=$2 p=$3 n=$4 out="$WORK/cg.out"
    rm -f "$out"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" --port "$PORT" --save "" \
        --appendonly no --dir "$WORK" >/dev/null 2>&1 &
    local vg=$!
    for _ in $(seq 1 300); do
        redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    # The same preloaded keyspace for every run (GET hits, INCR on existing counters).
    redis-benchmark -p "$PORT" -c 1 -n 1000 -r 1000 -t set -q >/dev/null 2>&1
    redis-benchmark -p "$PORT" -c 1 -n "$n" -r 1000 -P "$p" -t "$test" -q >/dev/null 2>&1
    redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
    wait "$vg" || true
    # The "summary:" / "totals:" line holds the total Ir.
    grep -E '^(summary|totals):' "$out" | head -1 | awk '{print $2}'
}

echo "| server | load | instructions per request |"
echo "|---|---|---:|"
for bin in "${BINS[@]}"; do
    for load in $LOADS; do
        test=${load%%:*}
        p=${load##*:}
        a=$(instructions "$bin" "$test" "$p" "$N1")
        b=$(instructions "$bin" "$test" "$p" "$N2")
        per=$(( (b - a) / (N2 - N1) ))
        echo "| $(basename "$bin") ($bin) | ${test} -P ${p} | ${per} |"
    done
done
