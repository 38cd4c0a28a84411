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
#   LOADS   space-separated "test:pipeline" pairs (default "get:16 set:16 incr:16 get:1").
#           A test is a redis-benchmark -t name (zadd, lpush...) or one of bench/compare.sh's
#           custom rows: zrangebyscore (ZRANGEBYSCORE over a preloaded ZSET_SIZE-member sorted
#           set, LIMIT 0 10 from a random score) and evalsha (EVALSHA of a SCRIPT LOADed INCR
#           script on random keys).
#   PRELOAD keys preloaded before every run (SET key:<random below PRELOAD>, default 1000):
#           1000000 gives the big keyspace compare.sh's later rows (MSET...) run over
#   PRELOAD_TTL  non-empty: the preloaded keys get a TTL (SET ... EX), for the cost of keys
#           with one (use KEYSPACE=1000 for GETs that hit them)
#   ZSET_SIZE members of the zrangebyscore sorted set (default 10000)
#   KEYSPACE the -r of the redis-benchmark rows and of evalsha (default 1000; compare.sh uses
#           1000000)
#   ZADD_SIZE members preloaded into the zadd row's sorted set (myzset: element:<12 digits>,
#           random scores below KEYSPACE, as redis-benchmark's ZADD writes them; default 0).
#           With KEYSPACE=1000000 and ZADD_SIZE=600000 the row is the set compare.sh's ZADD
#           row ends with, too big for the caches.
#   CLIENTS  redis-benchmark's -c for the measured run (default 1)
#   CACHE   1: simulate the caches too (--cache-sim=yes) and add data-cache misses per request:
#           D1 (first level) and LL ("last level", here sized by CACHE_LL, default
#           4194304,16,64: this machine's 4 MiB L2, since its 260 MiB L3 would hold everything)
#   N1, N2  request counts (default 20000 and 60000)
#   PORT    port to use (default 25555)
#   PIN     a CPU number: run the server and the measured redis-benchmark on that one CPU, the
#           client at the lowest priority, so that it never preempts the server: after each
#           reply the server finds no request waiting and goes through its wait for input
#           (the "idle-wait" mode, the usual one with -P 1 on a real network). Without PIN, a
#           client on another core may have sent the next request before the server looks
#           (the "busy" mode), more or less often depending on the machine's load.
#   PIN_BUSY with PIN: the server at the lowest priority instead, so the client always sends
#           its next request before the server looks for it (the busy mode, every time).
#   FERROUS_ARGS extra arguments for the servers that are Ferrous (by `--version`), e.g.
#           "--busy-poll-us 0" to leave out the spinning a worker does before it sleeps
#           (default empty: the default configuration)
#   KEEP    a directory: keep every callgrind output there, named
#           <binary>-<test>-P<pipeline>-<requests>.out (for per-function diffs:
#           callgrind_annotate the N2 file and the N1 file, and subtract)
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
ZSET_SIZE=${ZSET_SIZE:-10000}
KEYSPACE=${KEYSPACE:-1000}
PRELOAD=${PRELOAD:-1000}
ZADD_SIZE=${ZADD_SIZE:-0}
CLIENTS=${CLIENTS:-1}
FERROUS_ARGS=${FERROUS_ARGS:-}
CACHE=${CACHE:-}
CACHE_LL=${CACHE_LL:-4194304,16,64}
VG_ARGS=(--tool=callgrind)
[ -n "$CACHE" ] && VG_ARGS+=(--cache-sim=yes "--LL=$CACHE_LL")
# VG_EXTRA: more callgrind options, e.g. "--dump-instr=yes" for per-instruction costs.
read -r -a VG_EXTRA_ARGS <<<"${VG_EXTRA:-}"
VG_ARGS+=("${VG_EXTRA_ARGS[@]}")
# The same script and sorted set as bench/compare.sh's custom rows.
EVAL_SCRIPT="return redis.call('INCR', KEYS[1])"
ZSET_KEY="bench:zset"
PINNED=()
CLIENT_PINNED=()
if [ -n "${PIN:-}" ]; then
    command -v taskset >/dev/null || { echo "PIN needs taskset" >&2; exit 2; }
    PINNED=(taskset -c "$PIN")
    CLIENT_PINNED=(taskset -c "$PIN" nice -n 19)
    if [ -n "${PIN_BUSY:-}" ]; then
        PINNED=(taskset -c "$PIN" nice -n 19)
        CLIENT_PINNED=(taskset -c "$PIN")
    fi
fi
WORK=$(mktemp -d /tmp/callgrind-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# The sorted set the zrangebyscore row reads: scores 0..ZSET_SIZE-1, members member:<score>.
load_zset() {
    awk -v n="$ZSET_SIZE" -v key="$ZSET_KEY" -f bench/zset-load.awk | redis-cli -p "$PORT" --pipe >/dev/null 2>&1
}

# The zadd row's sorted set: ZADD_SIZE members as redis-benchmark's ZADD names them.
load_zadd() {
    awk -v n="$ZADD_SIZE" -v key=myzset -v fmt="element:%012d" -v range="$KEYSPACE" \
        -f bench/zset-load.awk | redis-cli -p "$PORT" --pipe >/dev/null 2>&1
}

# Total instructions (and with CACHE, "Ir D1 LL" misses) of one server run serving `n` requests
# of `test` at pipeline `p`.
instructions() {
    local bin=$1 test=$2 p=$3 n=$4 out="$WORK/cg.out"
    rm -f "$out"
    local extra=()
    if "$bin" --version 2>/dev/null | grep -q Ferrous; then
        read -r -a extra <<<"$FERROUS_ARGS"
    fi
    "${PINNED[@]}" valgrind "${VG_ARGS[@]}" --callgrind-out-file="$out" "$bin" --port "$PORT" --save "" \
        --appendonly no --dir "$WORK" "${extra[@]}" >/dev/null 2>&1 &
    local vg=$!
    for _ in $(seq 1 300); do
        redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    # The same preloaded keyspace for every run (GET hits, INCR on existing counters); with
    # PRELOAD_TTL, every preloaded key has a TTL.
    if [ -n "${PRELOAD_TTL:-}" ]; then
        redis-benchmark -p "$PORT" -c 1 -P 64 -n "$PRELOAD" -r "$PRELOAD" -q set key:__rand_int__ xxx EX 100000 >/dev/null 2>&1
    else
        redis-benchmark -p "$PORT" -c 1 -P 64 -n "$PRELOAD" -r "$PRELOAD" -t set -q >/dev/null 2>&1
    fi
    local row
    case "$test" in
        zrangebyscore)
            load_zset
            row=(-r "$ZSET_SIZE" zrangebyscore "$ZSET_KEY" __rand_int__ +inf limit 0 10) ;;
        evalsha)
            local sha
            sha=$(redis-cli -p "$PORT" script load "$EVAL_SCRIPT")
            row=(-r "$KEYSPACE" evalsha "$sha" 1 script:__rand_int__) ;;
        zadd)
            [ "$ZADD_SIZE" -gt 0 ] && load_zadd
            row=(-r "$KEYSPACE" -t zadd) ;;
        *)
            row=(-r "$KEYSPACE" -t "$test") ;;
    esac
    "${CLIENT_PINNED[@]}" redis-benchmark -p "$PORT" -c "$CLIENTS" -n "$n" -P "$p" -q "${row[@]}" >/dev/null 2>&1
    redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
    wait "$vg" || true
    if [ -n "${KEEP:-}" ]; then
        mkdir -p "$KEEP"
        cp "$out" "$KEEP/$(basename "$bin")-$test-P$p-$n.out"
    fi
    # The "summary:" / "totals:" line holds the totals, in the order of the "events:" line
    # (Ir, and with the cache simulation Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw).
    local totals
    totals=$(grep -E '^(summary|totals):' "$out" | head -1)
    if [ -n "$CACHE" ]; then
        echo "$totals" | awk '{print $2, $6 + $7, $9 + $10}'
    else
        echo "$totals" | awk '{print $2}'
    fi
}

per_request() { echo $(( ($2 - $1) / (N2 - N1) )); }

if [ -n "$CACHE" ]; then
    echo "| server | load | instructions per request | D1 misses per request | LL misses per request |"
    echo "|---|---|---:|---:|---:|"
else
    echo "| server | load | instructions per request |"
    echo "|---|---|---:|"
fi
for bin in "${BINS[@]}"; do
    for load in $LOADS; do
        test=${load%%:*}
        p=${load##*:}
        read -r -a a <<<"$(instructions "$bin" "$test" "$p" "$N1")"
        read -r -a b <<<"$(instructions "$bin" "$test" "$p" "$N2")"
        cols="$(per_request "${a[0]}" "${b[0]}")"
        if [ -n "$CACHE" ]; then
            # Hundredths: misses per request are often below one.
            for i in 1 2; do
                cols+=" | $(awk -v x="${a[$i]}" -v y="${b[$i]}" -v d=$((N2 - N1)) 'BEGIN { printf "%.2f", (y - x) / d }')"
            done
        fi
        echo "| $(basename "$bin") ($bin) | ${test} -P ${p} | ${cols} |"
    done
done
