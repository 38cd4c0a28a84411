#!/usr/bin/env bash
#
# bench/persistence.sh — RDB persistence of Ferrous against real Redis, same run, same data.
#
# (a) N keys of mixed types (60% strings, 10% each small hashes, lists, sets, sorted sets —
#     all in their compact encodings, as most real keys are) are loaded into each server with
#     `redis-cli --pipe`; then SAVE is timed, the RDB file size taken, DEBUG RELOAD timed, and
#     the server restarted on the file and timed until it answers PING (start-up load); right
#     after that PONG the server's VmHWM (peak RSS of its whole life, so of the load) and VmRSS
#     (holding the loaded dataset) are read; the peak over the RSS holding the dataset (as
#     filled by the clients) is the load's memory overhead.
# (b) BGSAVE under a steady write load (redis-benchmark SET on -r N random keys): p50/p99/max
#     latency of a run without BGSAVE and of a run of about the same length that starts a
#     BGSAVE right away; memory sampled every ~20 ms during the BGSAVE: the server's VmRSS and
#     VmHWM, and for Redis also its fork child's (Redis forks, child pages are copy-on-write),
#     plus the PSS sum of server and child (real memory, shared pages counted once).
#
# Servers run one at a time (Redis first, then Ferrous) on free ports bound to 127.0.0.1.
# Ratios are Ferrous/Redis (lower is better for times, sizes, latencies and memory).
#
# Usage: cargo build --release && bench/persistence.sh
# Environment (optional):
#   N              keys in the dataset                         (default 5000000)
#   FERROUS_BIN    server binary                               (default target/release/ferrous-server)
#   FERROUS_ARGS / REDIS_ARGS   extra server arguments (word-split)
#   WRITE_CLIENTS  redis-benchmark connections in (b)          (default 50)
#   MIN_LOAD_S     minimum length of each write-load run (s)   (default 4)
#   SAMPLE_MS      memory sampling period                      (default 20)
#   ONLY_A         1: run part (a) only (SAVE and load)         (default 0)
#   PORT_MIN / PORT_MAX   range the servers' ports are drawn from (default 10000 / 29999)
#
# Report: stdout and bench/out/persistence-<timestamp>.md; progress on stderr.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

N="${N:-5000000}"
FERROUS_BIN="${FERROUS_BIN:-target/release/ferrous-server}"
FERROUS_ARGS="${FERROUS_ARGS:-}"
REDIS_ARGS="${REDIS_ARGS:-}"
WRITE_CLIENTS="${WRITE_CLIENTS:-50}"
MIN_LOAD_S="${MIN_LOAD_S:-4}"
SAMPLE_MS="${SAMPLE_MS:-20}"
ONLY_A="${ONLY_A:-0}"
PORT_MIN="${PORT_MIN:-10000}"
PORT_MAX="${PORT_MAX:-29999}"
HOST=127.0.0.1

OUT_DIR="$REPO_ROOT/bench/out"
STAMP="$(date +%Y%m%d-%H%M%S)"
OUT_FILE="$OUT_DIR/persistence-$STAMP.md"
WORK_DIR="$(mktemp -d -t ferrous-persist.XXXXXX)"
PID="" PORT=""

log() { printf '[persistence] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

stop_server() {
    [[ -n "$PID" ]] || return 0
    if kill -0 "$PID" 2>/dev/null; then
        kill "$PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$PID" 2>/dev/null || true
    fi
    wait "$PID" 2>/dev/null || true
    PID=""
}
cleanup() { stop_server; rm -rf "$WORK_DIR"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for t in redis-server redis-cli redis-benchmark python3; do
    command -v "$t" >/dev/null 2>&1 || die "$t is needed"
done
[[ -x "$FERROUS_BIN" ]] || die "$FERROUS_BIN not found: cargo build --release first"

free_port() {
    local p
    for _ in $(seq 200); do
        p=$(( PORT_MIN + RANDOM % (PORT_MAX - PORT_MIN + 1) ))
        (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null || { echo "$p"; return 0; }
    done
    die "no free port"
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 == 0 || b == "" || b == "n/a") print "n/a"; else printf "%.2f", b / a }'; }
cli() { redis-cli -h "$HOST" -p "$PORT" "$@"; }
info_field() { cli INFO persistence | tr -d '\r' | awk -F: -v f="$1" '$1 == f { print $2 }'; }

# start SERVER [keep] — start in WORK_DIR/SERVER (its dump.rdb is loaded if present); prints
# nothing, sets PID/PORT, returns once PING answers PONG (after any loading).
start() {
    local which="$1" dir="$WORK_DIR/$1" extra
    mkdir -p "$dir"
    PORT="$(free_port)"
    if [[ "$which" == redis ]]; then
        read -r -a extra <<<"$REDIS_ARGS"
        redis-server --port "$PORT" --bind "$HOST" --dir "$dir" --save '' --appendonly no \
            --enable-debug-command yes "${extra[@]}" >"$dir/server.log" 2>&1 &
    else
        read -r -a extra <<<"$FERROUS_ARGS"
        "$FERROUS_BIN" --port "$PORT" --bind "$HOST" --dir "$dir" --save '' \
            --enable-debug-command yes "${extra[@]}" >"$dir/server.log" 2>&1 &
    fi
    PID=$!
    for _ in $(seq 60000); do
        kill -0 "$PID" 2>/dev/null || { tail -5 "$dir/server.log" >&2; die "$which exited"; }
        [[ "$(cli PING 2>/dev/null)" == PONG ]] && return 0
        sleep 0.01
    done
    die "$which did not answer PING"
}

# The dataset, as RESP commands, generated once.
generate() {
    log "generating $N keys of mixed types"
    python3 - "$N" >"$WORK_DIR/data.resp" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)
buf = []
for i in range(n):
    k = i % 10
    s = str(i).encode()
    if k < 6:
        c = cmd(b"SET", b"str:" + s, b"value-%d-0123456789" % i if k % 2 else s)
    elif k == 6:
        c = cmd(b"HSET", b"hash:" + s, b"name", b"user-" + s, b"age", b"%d" % (i % 90), b"city", b"somewhere", b"n", s)
    elif k == 7:
        c = cmd(b"RPUSH", b"list:" + s, b"a-" + s, b"b", b"c", b"d", b"e-" + s)
    elif k == 8:
        c = cmd(b"SADD", b"set:" + s, s, b"1", b"2", b"3", b"%d" % (i * 7)) if i % 20 < 10 else \
            cmd(b"SADD", b"set:" + s, b"m1", b"m2", b"m3", b"x-" + s)
    else:
        c = cmd(b"ZADD", b"zset:" + s, b"1", b"one", b"2.5", b"two", b"%d" % i, b"m-" + s)
    buf.append(c)
    if len(buf) >= 10000:
        out.write(b"".join(buf)); buf.clear()
out.write(b"".join(buf))
PY
}

# measure_a SERVER — fills A_* for SERVER.
measure_a() {
    local which="$1" t0 t1
    start "$which"
    log "$which: loading $N keys"
    redis-cli -h "$HOST" -p "$PORT" --pipe <"$WORK_DIR/data.resp" >"$WORK_DIR/pipe.log" 2>&1 \
        || { tail -5 "$WORK_DIR/pipe.log" >&2; die "$which: --pipe failed"; }
    local keys; keys="$(cli DBSIZE)"
    [[ "$keys" == "$N" ]] || die "$which holds $keys keys, expected $N"
    local rss; rss="$(awk '/VmRSS/ { print $2 }' /proc/"$PID"/status)"
    log "$which: SAVE"
    t0="$(now)"; cli SAVE >/dev/null; t1="$(now)"
    local save_s; save_s="$(elapsed "$t0" "$t1")"
    local size; size="$(stat -c %s "$WORK_DIR/$which/dump.rdb")"
    log "$which: DEBUG RELOAD"
    t0="$(now)"; cli DEBUG RELOAD >/dev/null; t1="$(now)"
    local reload_s; reload_s="$(elapsed "$t0" "$t1")"
    stop_server
    log "$which: restart on the file"
    t0="$(now)"; start "$which"; t1="$(now)"
    local start_s; start_s="$(elapsed "$t0" "$t1")"
    local load_hwm load_rss
    load_hwm="$(awk '/VmHWM/ { print $2 }' /proc/"$PID"/status)"
    load_rss="$(awk '/VmRSS/ { print $2 }' /proc/"$PID"/status)"
    [[ "$(cli DBSIZE)" == "$N" ]] || die "$which lost keys over a restart"
    stop_server
    eval "A_${which}=\"$save_s $size $reload_s $start_s $rss $load_hwm $load_rss\""
}

# Memory sampler: every SAMPLE_MS until the stop file appears; prints
# "peak_rss_kb peak_hwm_kb peak_child_rss_kb peak_pss_sum_kb" (child: Redis's fork).
sampler() {
    python3 - "$1" "$2" "$SAMPLE_MS" <<'PY'
import os, sys, time
pid, stop, period = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]) / 1000
def field(path, name):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
def children(p):
    kids = []
    try:
        for t in os.listdir(f"/proc/{p}/task"):
            with open(f"/proc/{p}/task/{t}/children") as f:
                kids += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return kids
rss = hwm = child = pss = 0
while not os.path.exists(stop):
    rss = max(rss, field(f"/proc/{pid}/status", "VmRSS"))
    hwm = max(hwm, field(f"/proc/{pid}/status", "VmHWM"))
    total = field(f"/proc/{pid}/smaps_rollup", "Pss")
    for c in children(pid):
        child = max(child, field(f"/proc/{c}/status", "VmRSS"))
        total += field(f"/proc/{c}/smaps_rollup", "Pss")
    pss = max(pss, total)
    time.sleep(period)
print(rss, hwm, child, pss)
PY
}

# bench_set SERVER REQUESTS — prints "rps p50 p99 max" of a SET load on random keys.
bench_set() {
    redis-benchmark -h "$HOST" -p "$PORT" -t set -n "$2" -c "$WRITE_CLIENTS" -r "$N" -d 16 --csv 2>/dev/null \
        | awk -F',' '/^"test"/ { next } NF >= 8 { gsub(/"/, ""); print $2, $5, $7, $8 }' | tail -1
}

# measure_b SERVER — fills B_* for SERVER (the server holds the dataset from (a)).
measure_b() {
    local which="$1"
    start "$which"
    local probe; probe="$(bench_set "$which" 200000)"
    local rps; rps="$(awk '{ printf "%d", $1 }' <<<"$probe")"
    # The BGSAVE's length without load, to size the runs.
    local t0 t1 bg_s
    t0="$(now)"; cli BGSAVE >/dev/null
    while [[ "$(info_field rdb_bgsave_in_progress)" != 0 ]]; do sleep 0.02; done
    t1="$(now)"; bg_s="$(elapsed "$t0" "$t1")"
    local secs; secs="$(awk -v b="$bg_s" -v m="$MIN_LOAD_S" 'BEGIN { s = b * 1.2; if (s < m) s = m; print s }')"
    local requests; requests="$(awk -v r="$rps" -v s="$secs" 'BEGIN { printf "%d", r * s }')"
    log "$which: write load without BGSAVE ($requests SETs, about ${secs}s; BGSAVE alone took ${bg_s}s)"
    local quiet; quiet="$(bench_set "$which" "$requests")"
    log "$which: write load with BGSAVE"
    local stop="$WORK_DIR/stop-$which" mem="$WORK_DIR/mem-$which"
    rm -f "$stop"
    local before; before="$(awk '/VmRSS/ { print $2 }' /proc/"$PID"/status)"
    sampler "$PID" "$stop" >"$mem" &
    local sampler_pid=$!
    bench_set "$which" "$requests" >"$WORK_DIR/loaded-$which" &
    local bench_pid=$!
    sleep 0.3
    t0="$(now)"; cli BGSAVE >/dev/null
    while [[ "$(info_field rdb_bgsave_in_progress)" != 0 ]]; do sleep 0.02; done
    t1="$(now)"
    local bg_load_s; bg_load_s="$(elapsed "$t0" "$t1")"
    wait "$bench_pid"
    touch "$stop"; wait "$sampler_pid"
    local during; during="$(cat "$WORK_DIR/loaded-$which")"
    stop_server
    eval "B_${which}=\"$quiet|$during|$before $(cat "$mem")|$bg_s $bg_load_s\""
}

mkdir -p "$OUT_DIR"
generate
measure_a redis
measure_a ferrous
if [[ "$ONLY_A" != 1 ]]; then
    measure_b redis
    measure_b ferrous
fi

{
    echo "# Persistence: Ferrous vs Redis ($(redis-server --version | awk '{print $3}'))"
    echo
    echo "$N keys (60% strings, 10% each hashes, lists, sets, sorted sets of 4-5 elements);"
    echo "$(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ). Ratios are Ferrous/Redis (lower is better)."
    echo
    echo "## (a) SAVE and load"
    echo
    echo "| | Redis | Ferrous | ratio |"
    echo "|---|---:|---:|---:|"
    read -r rs rsz rr rst rrss rlh rlr <<<"$A_redis"
    read -r fs fsz fr fst frss flh flr <<<"$A_ferrous"
    echo "| SAVE (s) | $rs | $fs | $(ratio "$rs" "$fs") |"
    echo "| RDB file size (MB) | $(awk -v b="$rsz" 'BEGIN{printf "%.1f", b/1048576}') | $(awk -v b="$fsz" 'BEGIN{printf "%.1f", b/1048576}') | $(ratio "$rsz" "$fsz") |"
    echo "| DEBUG RELOAD: SAVE + flush + load (s) | $rr | $fr | $(ratio "$rr" "$fr") |"
    echo "| start-up until PONG, loading the file (s) | $rst | $fst | $(ratio "$rst" "$fst") |"
    echo "| RSS holding the dataset (MB) | $((rrss / 1024)) | $((frss / 1024)) | $(ratio "$rrss" "$frss") |"
    echo "| start-up peak: VmHWM at PONG (MB) | $((rlh / 1024)) | $((flh / 1024)) | $(ratio "$rlh" "$flh") |"
    echo "| start-up: VmRSS at PONG, loaded dataset (MB) | $((rlr / 1024)) | $((flr / 1024)) | $(ratio "$rlr" "$flr") |"
    echo "| start-up peak / RSS holding the dataset | $(ratio "$rrss" "$rlh") | $(ratio "$frss" "$flh") | |"
    echo "| start-up peak / VmRSS at PONG | $(ratio "$rlr" "$rlh") | $(ratio "$flr" "$flh") | |"
    echo
    [[ "$ONLY_A" == 1 ]] && exit 0
    echo "## (b) BGSAVE under a write load"
    echo
    echo "redis-benchmark -t set -c $WRITE_CLIENTS -r $N -d 16; each run sized to last about as long as"
    echo "the BGSAVE under load (at least ${MIN_LOAD_S}s); latencies in ms; memory sampled every ${SAMPLE_MS} ms."
    echo
    IFS='|' read -r rq rd rm rt <<<"$B_redis"
    IFS='|' read -r fq fd fm ft <<<"$B_ferrous"
    read -r rq_rps rq_p50 rq_p99 rq_max <<<"$rq"; read -r fq_rps fq_p50 fq_p99 fq_max <<<"$fq"
    read -r rd_rps rd_p50 rd_p99 rd_max <<<"$rd"; read -r fd_rps fd_p50 fd_p99 fd_max <<<"$fd"
    read -r r_before r_rss r_hwm r_child r_pss <<<"$rm"; read -r f_before f_rss f_hwm f_child f_pss <<<"$fm"
    read -r r_bg r_bgl <<<"$rt"; read -r f_bg f_bgl <<<"$ft"
    echo "| | Redis | Ferrous | ratio |"
    echo "|---|---:|---:|---:|"
    echo "| BGSAVE alone (s) | $r_bg | $f_bg | $(ratio "$r_bg" "$f_bg") |"
    echo "| BGSAVE under load (s) | $r_bgl | $f_bgl | $(ratio "$r_bgl" "$f_bgl") |"
    echo "| SET rps, no BGSAVE | $rq_rps | $fq_rps | $(ratio "$rq_rps" "$fq_rps") |"
    echo "| SET rps, during BGSAVE | $rd_rps | $fd_rps | $(ratio "$rd_rps" "$fd_rps") |"
    echo "| p50, no BGSAVE | $rq_p50 | $fq_p50 | $(ratio "$rq_p50" "$fq_p50") |"
    echo "| p50, during BGSAVE | $rd_p50 | $fd_p50 | $(ratio "$rd_p50" "$fd_p50") |"
    echo "| p99, no BGSAVE | $rq_p99 | $fq_p99 | $(ratio "$rq_p99" "$fq_p99") |"
    echo "| p99, during BGSAVE | $rd_p99 | $fd_p99 | $(ratio "$rd_p99" "$fd_p99") |"
    echo "| p99 during / without BGSAVE | $(ratio "$rq_p99" "$rd_p99") | $(ratio "$fq_p99" "$fd_p99") | |"
    echo "| max latency, during BGSAVE | $rd_max | $fd_max | $(ratio "$rd_max" "$fd_max") |"
    echo "| server RSS before BGSAVE (MB) | $((r_before / 1024)) | $((f_before / 1024)) | $(ratio "$r_before" "$f_before") |"
    echo "| server peak RSS during BGSAVE (MB) | $((r_rss / 1024)) | $((f_rss / 1024)) | $(ratio "$r_rss" "$f_rss") |"
    echo "| fork child peak RSS (MB) | $((r_child / 1024)) | $((f_child / 1024)) (no fork) | |"
    echo "| peak PSS, server + child (MB) | $((r_pss / 1024)) | $((f_pss / 1024)) | $(ratio "$r_pss" "$f_pss") |"
    echo "| peak PSS / RSS before | $(ratio "$r_before" "$r_pss") | $(ratio "$f_before" "$f_pss") | |"
    echo "| server VmHWM (MB, whole life) | $((r_hwm / 1024)) | $((f_hwm / 1024)) | |"
} | tee "$OUT_FILE"
log "report written to $OUT_FILE"
