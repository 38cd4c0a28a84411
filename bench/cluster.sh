#!/usr/bin/env bash
#
# bench/cluster.sh — redis-benchmark --cluster against a 3-master Ferrous cluster and a
# 3-master Redis cluster on this machine, alternating which goes first each round, and the
# median Ferrous/Redis throughput ratio per test.
#
# Usage (from anywhere; paths are relative to the repository root):
#   cargo build --release && bench/cluster.sh
#
# Environment variables (all optional):
#   FERROUS_BIN   server binary to test            (default target/release/ferrous-server)
#   BASE_PORT     first client port; Redis uses BASE_PORT..+2, Ferrous BASE_PORT+10..+12,
#                 their buses +10000                                        (default 28500)
#   TESTS         redis-benchmark -t names, or publish: PUBLISH of a 16-byte message sent to
#                 the first node, which the bus carries to the other two
#                                                  (default "set,get,incr,lpush,publish")
#   PIPELINES     pipeline depths, space separated                        (default "1 16")
#   REQUESTS      requests per run (-n)                                   (default 300000)
#   CLIENTS       parallel connections (-c)                                   (default 50)
#   KEYSPACE      random key space (-r)                                   (default 100000)
#   ROUNDS        rounds per test (median of the ratios)                       (default 3)
#
# The report goes to stdout and to bench/out/cluster-<timestamp>.md.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
FERROUS_BIN="${FERROUS_BIN:-target/release/ferrous-server}"
BASE_PORT="${BASE_PORT:-28500}"
TESTS="${TESTS:-set,get,incr,lpush,publish}"
PIPELINES="${PIPELINES:-1 16}"
REQUESTS="${REQUESTS:-300000}"
CLIENTS="${CLIENTS:-50}"
KEYSPACE="${KEYSPACE:-100000}"
ROUNDS="${ROUNDS:-3}"
HOST=127.0.0.1
WORK_DIR="$(mktemp -d -t ferrous-cluster-bench.XXXXXX)"
OUT_DIR="$REPO_ROOT/bench/out"
OUT_FILE="$OUT_DIR/cluster-$(date +%Y%m%d-%H%M%S).md"
PIDS=()

log() { printf '[cluster-bench] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for t in redis-server redis-cli redis-benchmark; do
    command -v "$t" >/dev/null 2>&1 || die "$t is missing (apt-get install redis-server redis-tools)"
done
[[ -x "$FERROUS_BIN" ]] || die "no $FERROUS_BIN (cargo build --release)"

# start_cluster BIN FIRST_PORT NAME: three masters, created with redis-cli.
start_cluster() {
    local bin="$1" first="$2" name="$3" addrs=() p d
    for i in 0 1 2; do
        p=$((first + i))
        d="$WORK_DIR/$name-$p"
        mkdir -p "$d"
        (cd "$d" && exec "$bin" --port "$p" --bind "$HOST" --cluster-enabled yes --save '' \
            --appendonly no --dir "$d" >"$d/log.txt" 2>&1) &
        PIDS+=($!)
        addrs+=("$HOST:$p")
    done
    for i in 0 1 2; do
        p=$((first + i))
        for _ in $(seq 200); do
            [[ "$(redis-cli -h $HOST -p "$p" ping 2>/dev/null)" == PONG ]] && break
            sleep 0.05
        done
    done
    redis-cli --cluster create "${addrs[@]}" --cluster-yes >/dev/null 2>&1 || die "$name: cluster create failed"
    for _ in $(seq 200); do
        local ok=1
        for i in 0 1 2; do
            redis-cli -h $HOST -p $((first + i)) cluster info 2>/dev/null | grep -q 'cluster_state:ok' || ok=0
        done
        (( ok )) && break
        sleep 0.1
    done
    log "$name cluster up on $HOST:$first..$((first + 2))"
}

# bench PORT TEST PIPELINE -> requests per second
bench() {
    local args=(-h $HOST -p "$1" -P "$3" -n "$REQUESTS" -c "$CLIENTS" -r "$KEYSPACE" -q)
    if [[ "$2" == publish ]]; then
        args+=(PUBLISH ch 0123456789abcdef)
    else
        args+=(--cluster -t "$2")
    fi
    redis-benchmark "${args[@]}" 2>/dev/null | tr '\r' '\n' | awk -F'[:, ]+' '/requests per second/ {for (i = 2; i <= NF; i++) if ($i == "requests") {print $(i-1); exit}}'
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

REDIS_PORT=$BASE_PORT
FERROUS_PORT=$((BASE_PORT + 10))
start_cluster "$(command -v redis-server)" "$REDIS_PORT" redis
start_cluster "$FERROUS_BIN" "$FERROUS_PORT" ferrous

mkdir -p "$OUT_DIR"
{
    echo "# redis-benchmark --cluster: 3-master Ferrous vs 3-master Redis $(redis-server --version | awk '{print $3}' | tr -d 'v=')"
    echo
    echo "$(nproc) cores, -n $REQUESTS -c $CLIENTS -r $KEYSPACE, $ROUNDS alternating rounds, medians."
    echo
    echo "| test | -P | Redis rps | Ferrous rps | Ferrous/Redis |"
    echo "|---|---:|---:|---:|---:|"
} | tee "$OUT_FILE"
IFS=',' read -r -a tests <<<"$TESTS"
for t in "${tests[@]}"; do
    for pl in $PIPELINES; do
        r_all=() f_all=() ratios=()
        for round in $(seq "$ROUNDS"); do
            if (( round % 2 )); then
                r=$(bench "$REDIS_PORT" "$t" "$pl"); f=$(bench "$FERROUS_PORT" "$t" "$pl")
            else
                f=$(bench "$FERROUS_PORT" "$t" "$pl"); r=$(bench "$REDIS_PORT" "$t" "$pl")
            fi
            r_all+=("${r:-0}") f_all+=("${f:-0}")
            ratios+=("$(awk -v a="${r:-0}" -v b="${f:-0}" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "n/a" }')")
            log "$t -P $pl round $round: redis ${r:-?} ferrous ${f:-?}"
        done
        printf '| %s | %s | %s | %s | %s |\n' "$t" "$pl" \
            "$(printf '%s\n' "${r_all[@]}" | median)" "$(printf '%s\n' "${f_all[@]}" | median)" \
            "$(printf '%s\n' "${ratios[@]}" | median)" | tee -a "$OUT_FILE"
    done
done
log "report: $OUT_FILE"
