#!/usr/bin/env bash
#
# bench/compare.sh — compare Ferrous against real Redis, side by side.
#
# Starts Debian's redis-server (7.0.x) and the Ferrous server on free ports
# bound to 127.0.0.1, runs identical redis-benchmark loads against both
# (alternating which server goes first on each row so machine noise hits both
# alike), prints a Markdown table of throughput and p50/p99 latency with
# Ferrous/Redis ratios, then (optionally) measures the RSS cost of holding
# 1,000,000 small keys in each server. Both servers are killed on exit.
#
# Usage (from anywhere; paths are relative to the repository root):
#   cargo build --release && bench/compare.sh
#
# Environment variables (all optional):
#   FERROUS_BIN    server binary to test       (default target/release/ferrous-server)
#   FERROUS_ARGS   extra args for Ferrous       (default empty, word-split)
#   REDIS_ARGS     extra args for Redis         (default empty, word-split)
#   TESTS          redis-benchmark -t names, comma or space separated
#                  (default "set,get,incr,mset"; e.g. add lpush,rpush,lpop,
#                  rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,lrange_600)
#   PIPELINES      pipeline depths, space separated         (default "1 16")
#   REQUESTS       requests per benchmark run (-n)          (default 1000000)
#   CLIENTS        parallel connections (-c)                (default 50)
#   KEYSPACE       random key space (-r)                    (default 1000000)
#   DATASIZE       value size in bytes (-d)                 (default 16)
#   BENCH_TIMEOUT  seconds before one benchmark run is abandoned (default 600)
#   MEMORY         1 = run the memory section, 0 = skip it  (default 1)
#   MEM_KEYS       keys loaded in the memory section        (default 1000000)
#
# Sanity check with Redis on both sides (ratios should be ~1.00):
#   FERROUS_BIN=/usr/bin/redis-server REQUESTS=20000 bench/compare.sh
#
# The report goes to stdout and to bench/out/compare-<timestamp>.md;
# progress messages go to stderr only.
#
set -euo pipefail

# ---------------------------------------------------------------- settings --

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

FERROUS_BIN="${FERROUS_BIN:-target/release/ferrous-server}"
FERROUS_ARGS="${FERROUS_ARGS:-}"
REDIS_ARGS="${REDIS_ARGS:-}"
TESTS="${TESTS:-set,get,incr,mset}"
PIPELINES="${PIPELINES:-1 16}"
REQUESTS="${REQUESTS:-1000000}"
CLIENTS="${CLIENTS:-50}"
KEYSPACE="${KEYSPACE:-1000000}"
DATASIZE="${DATASIZE:-16}"
BENCH_TIMEOUT="${BENCH_TIMEOUT:-600}"
MEMORY="${MEMORY:-1}"
MEM_KEYS="${MEM_KEYS:-1000000}"

HOST=127.0.0.1               # never talk to anything else
REDIS_BIN=redis-server

OUT_DIR="$REPO_ROOT/bench/out"
STAMP="$(date +%Y%m%d-%H%M%S)"
OUT_FILE="$OUT_DIR/compare-$STAMP.md"

WORK_DIR="$(mktemp -d -t ferrous-compare.XXXXXX)"

# Server state, filled in by start_server.
REDIS_PORT="" REDIS_PID=""
FERROUS_PORT="" FERROUS_PID=""

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

cleanup() {
    stop_pid "$REDIS_PID"
    stop_pid "$FERROUS_PID"
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

# Print a free TCP port, different from $1 if given. Ports are picked below
# the kernel's ephemeral range, so the many client connections the benchmarks
# open can never be holding the port a (re)started server wants to bind.
free_port() {
    local avoid="${1:-}" lo=10000 hi=32767 eph p
    if read -r eph _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null \
            && (( eph - 1 > lo + 1000 )); then
        hi=$(( eph - 1 ))
    fi
    for _ in $(seq 200); do
        p=$(( lo + RANDOM % (hi - lo + 1) ))
        [[ "$p" == "$avoid" ]] && continue
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

# start_server redis|ferrous — start in the background, set *_PORT/*_PID.
start_server() {
    local which="$1" port log_file pid
    local -a extra
    case "$which" in
        redis)
            port="$(free_port "$FERROUS_PORT")"
            log_file="$WORK_DIR/redis.log"
            read -r -a extra <<<"$REDIS_ARGS"
            "$REDIS_BIN" --port "$port" --bind "$HOST" --dir "$WORK_DIR" \
                --save '' --appendonly no --daemonize no "${extra[@]}" \
                >"$log_file" 2>&1 &
            pid=$!
            REDIS_PORT="$port" REDIS_PID="$pid"
            wait_for_ping Redis "$port" "$pid" "$log_file"
            ;;
        ferrous)
            port="$(free_port "$REDIS_PORT")"
            log_file="$WORK_DIR/ferrous.log"
            read -r -a extra <<<"$FERROUS_ARGS"
            "$FERROUS_BIN" --port "$port" --bind "$HOST" --dir "$WORK_DIR" \
                --save '' "${extra[@]}" \
                >"$log_file" 2>&1 &
            pid=$!
            FERROUS_PORT="$port" FERROUS_PID="$pid"
            wait_for_ping Ferrous "$port" "$pid" "$log_file"
            ;;
        *) die "unknown server $which" ;;
    esac
    log "$which started: pid $pid, port $port"
}

stop_servers() {
    stop_pid "$REDIS_PID";   REDIS_PID=""
    stop_pid "$FERROUS_PID"; FERROUS_PID=""
}

port_of() { [[ "$1" == redis ]] && echo "$REDIS_PORT" || echo "$FERROUS_PORT"; }
pid_of()  { [[ "$1" == redis ]] && echo "$REDIS_PID"  || echo "$FERROUS_PID"; }

# ratio A B -> "B/A" with 2 decimals, or n/a when either side is missing/zero.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "" || b == "" || a == "n/a" || b == "n/a" || a + 0 == 0) print "n/a";
        else printf "%.2f", b / a }'
}

# ------------------------------------------------------------- benchmarks --

# run_bench SERVER TEST PIPELINE -> prints "rps p50 p99" (or "n/a n/a n/a").
# One test per redis-benchmark invocation; the result row is the last CSV
# line (tests such as lrange_100 first print a helper LPUSH row).
run_bench() {
    local server="$1" test="$2" pipeline="$3" port csv
    port="$(port_of "$server")"
    if ! csv="$(timeout "$BENCH_TIMEOUT" redis-benchmark -h "$HOST" -p "$port" \
            -t "$test" -n "$REQUESTS" -c "$CLIENTS" -r "$KEYSPACE" \
            -d "$DATASIZE" -P "$pipeline" --csv 2>"$WORK_DIR/bench.err")"; then
        log "redis-benchmark failed against $server ($test, -P $pipeline):"
        tail -n 5 "$WORK_DIR/bench.err" >&2 || true
        echo "n/a n/a n/a"
        return 0
    fi
    # Columns: test,rps,avg,min,p50,p95,p99,max (all quoted).
    printf '%s\n' "$csv" | awk -F',' '
        /^"test"/ { next }
        NF >= 8   { last = $0 }
        END {
            if (last == "") { print "n/a n/a n/a"; exit }
            gsub(/"/, "", last)
            # index from the end, in case a test name ever contains a comma
            n = split(last, f, ",")
            print f[n-6], f[n-3], f[n-1] }'
}

run_benchmarks() {
    local -a tests pipelines
    read -r -a tests <<<"${TESTS//,/ }"
    read -r -a pipelines <<<"$PIPELINES"

    echo "## Throughput and latency"
    echo
    echo "redis-benchmark -n $REQUESTS -c $CLIENTS -r $KEYSPACE -d $DATASIZE," \
         "one test per run; latencies in ms; ratios are Ferrous/Redis" \
         "(rps: higher is better, latency: lower is better)."
    echo
    echo "| test | pipeline | Redis rps | Ferrous rps | ratio rps | p50 Redis | p50 Ferrous | ratio p50 | p99 Redis | p99 Ferrous | ratio p99 |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"

    local row=0 test pl first second r f
    local r_rps r_p50 r_p99 f_rps f_p50 f_p99
    for test in "${tests[@]}"; do
        for pl in "${pipelines[@]}"; do
            # Alternate which server is measured first on each row.
            if (( row % 2 == 0 )); then first=redis second=ferrous
            else first=ferrous second=redis; fi
            row=$((row + 1))

            log "$test -P $pl: $first"
            local out_first out_second
            out_first="$(run_bench "$first" "$test" "$pl")"
            log "$test -P $pl: $second"
            out_second="$(run_bench "$second" "$test" "$pl")"
            if [[ "$first" == redis ]]; then r="$out_first" f="$out_second"
            else r="$out_second" f="$out_first"; fi
            read -r r_rps r_p50 r_p99 <<<"$r"
            read -r f_rps f_p50 f_p99 <<<"$f"

            echo "| $test | $pl | $r_rps | $f_rps | $(ratio "$r_rps" "$f_rps")" \
                 "| $r_p50 | $f_p50 | $(ratio "$r_p50" "$f_p50")" \
                 "| $r_p99 | $f_p99 | $(ratio "$r_p99" "$f_p99") |"
        done
    done
    echo
}

# ------------------------------------------------------------------ memory --

# Generate MEM_KEYS "SET key:<n> <16-byte value>" commands as raw RESP.
gen_mem_load() {
    local file="$1"
    awk -v n="$MEM_KEYS" 'BEGIN {
        for (i = 0; i < n; i++) {
            k = "key:" i
            v = sprintf("%016d", i)          # exactly 16 bytes
            printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$16\r\n%s\r\n", length(k), k, v
        }
    }' >"$file"
}

# RSS of a pid in KiB, from /proc/PID/status.
rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

dbsize() {
    redis-cli -h "$HOST" -p "$(port_of "$1")" dbsize
}

# Flush, measure baseline RSS, pipe the load file in, measure again.
# Prints "baseline loaded".
measure_memory() {
    local server="$1" load_file="$2" port pid base loaded pipe_out n
    port="$(port_of "$server")"
    pid="$(pid_of "$server")"

    [[ "$(redis-cli -h "$HOST" -p "$port" flushall)" == OK ]] \
        || die "FLUSHALL failed on $server"
    sleep 1
    base="$(rss_kib "$pid")"

    pipe_out="$(redis-cli -h "$HOST" -p "$port" --pipe <"$load_file" 2>&1)" \
        || { printf '%s\n' "$pipe_out" >&2; die "redis-cli --pipe failed on $server"; }
    grep -q 'errors: 0,' <<<"$pipe_out" \
        || { printf '%s\n' "$pipe_out" >&2; die "errors while loading $server"; }

    n="$(dbsize "$server")"
    [[ "$n" == "$MEM_KEYS" ]] \
        || die "DBSIZE on $server is '$n', expected $MEM_KEYS"
    sleep 1
    loaded="$(rss_kib "$pid")"
    echo "$base $loaded"
}

run_memory() {
    local load_file="$WORK_DIR/load.resp"
    log "generating $MEM_KEYS SET commands"
    gen_mem_load "$load_file"

    # Fresh servers, so allocator memory retained from the load tests does not
    # skew the numbers (a FLUSHALL alone may not return memory to the OS).
    log "restarting servers for the memory section"
    stop_servers
    start_server redis
    start_server ferrous

    # Plain assignments (not `read <<<"$(...)"`) so a failure inside
    # measure_memory aborts the script under set -e.
    local r_mem f_mem r_base r_loaded f_base f_loaded
    log "loading Redis"
    r_mem="$(measure_memory redis "$load_file")"
    log "loading Ferrous"
    f_mem="$(measure_memory ferrous "$load_file")"
    read -r r_base r_loaded <<<"$r_mem"
    read -r f_base f_loaded <<<"$f_mem"
    local r_used=$((r_loaded - r_base)) f_used=$((f_loaded - f_base))

    mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

    echo "## Memory"
    echo
    echo "$MEM_KEYS keys (\`SET key:<n> <16 bytes>\` via \`redis-cli --pipe\`)," \
         "DBSIZE verified on both; RSS from /proc/PID/status (VmRSS), in MiB."
    echo
    echo "| server | baseline RSS | loaded RSS | used RSS | bytes/key |"
    echo "|---|---:|---:|---:|---:|"
    echo "| Redis | $(mib "$r_base") | $(mib "$r_loaded") | $(mib "$r_used")" \
         "| $(awk -v u="$r_used" -v n="$MEM_KEYS" 'BEGIN { printf "%.1f", u * 1024 / n }') |"
    echo "| Ferrous | $(mib "$f_base") | $(mib "$f_loaded") | $(mib "$f_used")" \
         "| $(awk -v u="$f_used" -v n="$MEM_KEYS" 'BEGIN { printf "%.1f", u * 1024 / n }') |"
    echo
    echo "Used RSS ratio Ferrous/Redis: **$(ratio "$r_used" "$f_used")**"
    echo
}

# -------------------------------------------------------------------- main --

main() {
    ensure_redis_tools
    [[ -x "$FERROUS_BIN" ]] \
        || die "Ferrous binary '$FERROUS_BIN' not found or not executable (run: cargo build --release)"
    mkdir -p "$OUT_DIR"

    # Everything on stdout from here on is the report; copy it to OUT_FILE.
    exec > >(tee "$OUT_FILE")

    start_server redis
    start_server ferrous

    echo "# Ferrous vs Redis — $(date '+%Y-%m-%d %H:%M:%S')"
    echo
    echo "- Redis: \`$(command -v "$REDIS_BIN")\` ($("$REDIS_BIN" --version | awk '{print $3}'))"
    echo "- Ferrous: \`$FERROUS_BIN\`"
    echo "- Host: $(nproc) CPUs, $(uname -sr)"
    echo "- TESTS=$TESTS PIPELINES=\"$PIPELINES\" REQUESTS=$REQUESTS CLIENTS=$CLIENTS"
    echo

    run_benchmarks

    if [[ "$MEMORY" != 0 ]]; then
        run_memory
    fi

    log "report written to $OUT_FILE"
}

main "$@"
