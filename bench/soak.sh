#!/usr/bin/env bash
#
# bench/soak.sh — bounded soak test: a long mixed load against one server (Ferrous by default,
# or Redis with SERVER=redis), watching memory drift, errors and that the data persists.
#
# The server runs with appendonly yes, maxmemory + an eviction policy (the key space is larger
# than maxmemory holds, so eviction runs all the time), and the load (bench/soak_driver.py):
#   reads/writes of every type (strings, counters, hashes, lists, sets, sorted sets, streams,
#   HyperLogLogs, bitmaps, geo), half of the writes with EX/PX expiries; some MULTI/EXEC
#   pipelines; connections opened and closed all the time; pub/sub subscribers (channels and
#   patterns) that come and go; BGSAVE and BGREWRITEAOF every minute or so.
# Every SAMPLE_S seconds: VmRSS (/proc/PID/status), INFO used_memory, keys, evictions, a PING.
# Report: RSS and used_memory at start / after warm-up / end, maximum, least-squares slope after
# the warm-up (MB/h); ops, errors by kind; pub/sub delivery; then the load stops, the data is
# SAVEd and the server restarted twice on its files — on the multi-part AOF (appendonly yes)
# and on dump.rdb (appendonly no) — and each time the number of keys without a TTL and DEBUG
# DIGEST-VALUE of a sample of them must be the same as before; redis-check-aof and
# redis-check-rdb check the files.
#
# Usage: cargo build --release && bench/soak.sh
# Environment (optional):
#   DURATION_S   length of the load (default 1800)       WARMUP_S  warm-up (default DURATION_S/6)
#   SAMPLE_S     sampling period (default 5)              PORT      server port (default: free one)
#   SERVER       ferrous | redis (default ferrous)        FERROUS_BIN (default target/release/ferrous-server)
#   MAXMEMORY    (default 64mb)  POLICY (default allkeys-lru)  KEYSPACE keys per type (default 100000)
#   WORKERS      data load processes (default 2)          NICE      nice level of server+load (default 0)
#   BGSAVE_S / REWRITE_S  period of BGSAVE / BGREWRITEAOF (default 60 / 90)
#   SERVER_ARGS  extra server arguments (word-split)
# Output: stdout and bench/out/soak-<server>-<timestamp>.{md,json}; progress on stderr.
# Exit status: 0 when the server answered throughout, no data error occurred and both restarts
# found the data; 1 otherwise.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

DURATION_S="${DURATION_S:-1800}"
WARMUP_S="${WARMUP_S:-$((DURATION_S / 6))}"
SAMPLE_S="${SAMPLE_S:-5}"
SERVER="${SERVER:-ferrous}"
FERROUS_BIN="${FERROUS_BIN:-target/release/ferrous-server}"
MAXMEMORY="${MAXMEMORY:-64mb}"
POLICY="${POLICY:-allkeys-lru}"
KEYSPACE="${KEYSPACE:-100000}"
WORKERS="${WORKERS:-2}"
BGSAVE_S="${BGSAVE_S:-60}"
REWRITE_S="${REWRITE_S:-90}"
NICE="${NICE:-0}"
SERVER_ARGS="${SERVER_ARGS:-}"
HOST=127.0.0.1

OUT_DIR="$REPO_ROOT/bench/out"
STAMP="$(date +%Y%m%d-%H%M%S)"
OUT_BASE="$OUT_DIR/soak-$SERVER-$STAMP"
WORK_DIR="$(mktemp -d -t ferrous-soak.XXXXXX)"
PID=""

log() { printf '[soak] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

stop_server() {
    [[ -n "$PID" ]] || return 0
    redis-cli -h "$HOST" -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
    for _ in $(seq 300); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
}
cleanup() { stop_server; rm -rf "$WORK_DIR"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for t in redis-cli redis-check-aof redis-check-rdb python3; do
    command -v "$t" >/dev/null 2>&1 || die "$t is needed"
done
python3 -c 'import redis' 2>/dev/null || die "the Python redis package is needed"
case "$SERVER" in
    ferrous) BIN="$FERROUS_BIN"; [[ -x "$BIN" ]] || die "$BIN not found: cargo build --release first" ;;
    redis) BIN="$(command -v redis-server)" || die "redis-server not found" ;;
    *) die "SERVER must be ferrous or redis" ;;
esac

if [[ -z "${PORT:-}" ]]; then
    for _ in $(seq 200); do
        p=$(( 10000 + RANDOM % 20000 ))
        (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null || { PORT=$p; break; }
    done
    [[ -n "${PORT:-}" ]] || die "no free port"
fi

# start_server APPENDONLY MAXMEMORY: start on WORK_DIR's files, wait until it answers PING.
start_server() {
    # shellcheck disable=SC2086
    nice -n "$NICE" "$BIN" --port "$PORT" --bind "$HOST" --dir "$WORK_DIR" --save "" \
        --appendonly "$1" --appendfsync everysec --maxmemory "$2" --maxmemory-policy "$POLICY" \
        --enable-debug-command yes --logfile "$WORK_DIR/server.log" $SERVER_ARGS &
    PID=$!
    # Up to 10 minutes: a restart loads the files (a long run without rewrites has a big AOF).
    for _ in $(seq 6000); do
        [[ "$(redis-cli -h "$HOST" -p "$PORT" ping 2>/dev/null)" == PONG ]] && return 0
        kill -0 "$PID" 2>/dev/null || die "server exited at start: $(tail -5 "$WORK_DIR/server.log")"
        sleep 0.1
    done
    die "server does not answer"
}

mkdir -p "$OUT_DIR"
log "$SERVER ($BIN) on port $PORT, $DURATION_S s (warm-up $WARMUP_S s), maxmemory $MAXMEMORY $POLICY, work dir $WORK_DIR"
start_server yes "$MAXMEMORY"
STATUS=0
nice -n "$NICE" python3 bench/soak_driver.py run --host "$HOST" --port "$PORT" --pid "$PID" \
    --duration "$DURATION_S" --warmup "$WARMUP_S" --sample "$SAMPLE_S" --workers "$WORKERS" \
    --keyspace "$KEYSPACE" --bgsave-every "$BGSAVE_S" --rewrite-every "$REWRITE_S" --state "$WORK_DIR/state.json" --out "$OUT_BASE.json" \
    >"$WORK_DIR/report.txt" || { log "driver failed"; STATUS=1; }
redis-cli -h "$HOST" -p "$PORT" ping >/dev/null 2>&1 || { log "server not answering at the end"; STATUS=1; }
stop_server

{
    echo "# Soak test: $SERVER, $(date -u +%FT%TZ)"
    echo
    echo "Duration $DURATION_S s, warm-up $WARMUP_S s, maxmemory $MAXMEMORY ($POLICY), $WORKERS data workers, key space $KEYSPACE per type."
    echo
    echo '```'
    cat "$WORK_DIR/report.txt"
    echo
    echo "--- files"
    AOF_DIR="$WORK_DIR/appendonlydir"
    ls -l "$AOF_DIR" "$WORK_DIR/dump.rdb" 2>&1 | sed "s|$WORK_DIR/||"
    MANIFEST="$(ls "$AOF_DIR"/*.manifest 2>/dev/null | head -1)"
    if [[ -n "$MANIFEST" ]] && redis-check-aof "$MANIFEST" >"$WORK_DIR/check-aof.txt" 2>&1; then
        echo "redis-check-aof: $(grep -iE 'valid|ok' "$WORK_DIR/check-aof.txt" | tail -1)"
    else
        echo "redis-check-aof FAILED:"; tail -5 "$WORK_DIR/check-aof.txt" 2>/dev/null; STATUS=1
    fi
    if redis-check-rdb "$WORK_DIR/dump.rdb" >"$WORK_DIR/check-rdb.txt" 2>&1; then
        echo "redis-check-rdb: $(grep -E 'keys read|RDB looks OK' "$WORK_DIR/check-rdb.txt" | tr '\n' ' ')"
    else
        echo "redis-check-rdb FAILED:"; tail -5 "$WORK_DIR/check-rdb.txt"; STATUS=1
    fi
    echo
    echo "--- restarts (maxmemory 0: nothing evicted while checking)"
    for mode in aof rdb; do
        [[ $mode == aof ]] && ao=yes || ao=no
        start_server "$ao" 0
        python3 bench/soak_driver.py verify --host "$HOST" --port "$PORT" --label "$mode" \
            --state "$WORK_DIR/state.json" || STATUS=1
        stop_server
    done
    echo '```'
    echo
    echo "Exit status: $STATUS"
    echo "$STATUS" >"$WORK_DIR/status"
} >"$OUT_BASE.md"
STATUS="$(cat "$WORK_DIR/status")"
cat "$OUT_BASE.md"
log "report: $OUT_BASE.md, samples: $OUT_BASE.json"
exit "$STATUS"
