#!/usr/bin/env bash
#
# bench/scaling.sh — Ferrous with worker-threads 1 against worker-threads 2, and Redis as a
# reference, each server and its load generator pinned with taskset (docs/SCALING.md says what
# this can and cannot show on a 2-core machine).
#
# Configurations (CONFIGS, run in this order, the first rotating by round and row):
#   f1     Ferrous, --worker-threads 1, server on F1_SERVER_CPUS (1), client on F1_CLIENT_CPUS (0):
#          one core for the server, one for the load generator;
#   f2     Ferrous, --worker-threads 2, server on F2_SERVER_CPUS (0,1), client on
#          F2_CLIENT_CPUS (0,1): every core for both, the kernel shares them out (on 2 cores the
#          client then takes about one of them: this shows what a second worker costs or gains
#          when the cores are shared, not what a second dedicated core would give);
#   f2one  Ferrous, --worker-threads 2 on F1_SERVER_CPUS, client on F1_CLIENT_CPUS (same CPU
#          budget as f1: the cost of splitting the work between two threads on one core);
#   redis  redis-server (7.0.x) pinned like f1.
# Rows (TESTS): redis-benchmark -t set, get, incr, mset (10 keys per MSET, each a random key:
# they fall in different shards), evalsha (a SCRIPT LOADed INCR script on a random key), each
# at every pipeline depth of PIPELINES; and multi (examples/loadgen.rs: MULTI, 5 x INCR on one
# client's own hash-tagged keys, EXEC, CLIENTS connections, MULTI_SECS seconds; one shard per
# transaction); and pubsub (examples/loadgen.rs: PUBSUB_SUBS subscribers of one channel, 4
# publishers with 16 PUBLISHes in flight each, MULTI_SECS seconds: messages delivered per second).
# Each figure is the median over ROUNDS rounds. Reported: requests (transactions for multi,
# delivered messages for pubsub) per second, the server's CPU time per request (user + system of
# all its threads, from /proc/PID/stat), and the ratios f2/f1 and f1/redis. On a busy machine the
# rps ratios against f1 measure the scheduler (it shares a busy core per thread): read the CPU
# per request there, and run on a quiet machine for rps.
#
# Usage: cargo build --release --bin ferrous-server --example loadgen && bench/scaling.sh
# Environment (all optional):
#   FERROUS_BIN    (target/release/ferrous-server)   REDIS_BIN (redis-server)
#   LOADGEN        (target/release/examples/loadgen; without it multi and pubsub are skipped)
#   CONFIGS        ("f1 f2 redis"; add f2one for the one-core split)
#   TESTS          ("set get incr mset evalsha multi pubsub")
#   PIPELINES      ("1 16")        REQUESTS (1000000)    CLIENTS (50)    KEYSPACE (100000)
#   ROUNDS         (3)             MULTI_SECS (5)        PUBSUB_SUBS (10)
#   F1_SERVER_CPUS (1)  F1_CLIENT_CPUS (0)  F2_SERVER_CPUS (0,1)  F2_CLIENT_CPUS (0,1)
#   SERVER_ARGS    extra arguments for every server, e.g. "--appendonly yes --appendfsync
#                  everysec" (each server gets its own temporary --dir)
#   FERROUS_ARGS   extra arguments for the Ferrous servers only
#   BASE_PORT      ports BASE_PORT.. (one per configuration); default: free random ports
#   OUT            also copy the report to this file (default bench/out/scaling.md)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
FERROUS_BIN="${FERROUS_BIN:-target/release/ferrous-server}"
REDIS_BIN="${REDIS_BIN:-redis-server}"
LOADGEN="${LOADGEN:-target/release/examples/loadgen}"
CONFIGS="${CONFIGS:-f1 f2 redis}"
TESTS="${TESTS:-set get incr mset evalsha multi pubsub}"
PIPELINES="${PIPELINES:-1 16}"
REQUESTS="${REQUESTS:-1000000}"
CLIENTS="${CLIENTS:-50}"
KEYSPACE="${KEYSPACE:-100000}"
ROUNDS="${ROUNDS:-3}"
MULTI_SECS="${MULTI_SECS:-5}"
PUBSUB_SUBS="${PUBSUB_SUBS:-10}"
F1_SERVER_CPUS="${F1_SERVER_CPUS:-1}"
F1_CLIENT_CPUS="${F1_CLIENT_CPUS:-0}"
F2_SERVER_CPUS="${F2_SERVER_CPUS:-0,1}"
F2_CLIENT_CPUS="${F2_CLIENT_CPUS:-0,1}"
SERVER_ARGS="${SERVER_ARGS:-}"
FERROUS_ARGS="${FERROUS_ARGS:-}"
BASE_PORT="${BASE_PORT:-}"
OUT="${OUT:-bench/out/scaling.md}"
CLK_TCK="$(getconf CLK_TCK)"

[[ -x "$FERROUS_BIN" ]] || { echo "no Ferrous binary at $FERROUS_BIN (cargo build --release)" >&2; exit 1; }
if [[ " $TESTS " =~ " multi "|" pubsub " && ! -x "$LOADGEN" ]]; then
    echo "no loadgen at $LOADGEN (cargo build --release --example loadgen): skipping the multi and pubsub rows" >&2
    TESTS="${TESTS//multi/}"; TESTS="${TESTS//pubsub/}"
fi

WORK_DIR="$(mktemp -d /tmp/ferrous-scaling.XXXXXX)"
declare -A PID PORT SCPUS CCPUS
cleanup() {
    for c in "${!PID[@]}"; do kill "${PID[$c]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK_DIR"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {
    for _ in $(seq 1 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "server on $1 did not start" >&2; exit 1
}
# CPU time (user + system, every thread) of a pid so far, in clock ticks.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# Start every configuration's server, pinned.
i=0
for c in $CONFIGS; do
    if [[ -n "$BASE_PORT" ]]; then PORT[$c]=$((BASE_PORT + i)); else PORT[$c]=$(free_port); fi
    i=$((i + 1))
    dir="$WORK_DIR/$c"; mkdir -p "$dir"
    case "$c" in
        f1) SCPUS[$c]=$F1_SERVER_CPUS; CCPUS[$c]=$F1_CLIENT_CPUS; bin=$FERROUS_BIN; extra="--worker-threads 1 $FERROUS_ARGS" ;;
        f2) SCPUS[$c]=$F2_SERVER_CPUS; CCPUS[$c]=$F2_CLIENT_CPUS; bin=$FERROUS_BIN; extra="--worker-threads 2 $FERROUS_ARGS" ;;
        f2one) SCPUS[$c]=$F1_SERVER_CPUS; CCPUS[$c]=$F1_CLIENT_CPUS; bin=$FERROUS_BIN; extra="--worker-threads 2 $FERROUS_ARGS" ;;
        redis) SCPUS[$c]=$F1_SERVER_CPUS; CCPUS[$c]=$F1_CLIENT_CPUS; bin=$REDIS_BIN; extra="" ;;
        *) echo "unknown configuration $c (f1, f2, f2one, redis)" >&2; exit 1 ;;
    esac
    # shellcheck disable=SC2086
    taskset -c "${SCPUS[$c]}" "$bin" --port "${PORT[$c]}" --bind 127.0.0.1 --save "" --dir "$dir" \
        $SERVER_ARGS $extra >"$dir/log" 2>&1 &
    PID[$c]=$!
done
for c in $CONFIGS; do wait_ready "${PORT[$c]}"; done
SHA=""
if [[ " $TESTS " == *" evalsha "* ]]; then
    for c in $CONFIGS; do
        SHA=$(redis-cli -p "${PORT[$c]}" script load "return redis.call('incr', KEYS[1])")
    done
fi

# One measurement: prints "rate cpu_us_per_request".
measure() { # config test pipeline
    local c="$1" t="$2" p="$3" cpu0 cpu1 rate n
    cpu0=$(cpu_ticks "${PID[$c]}")
    if [[ "$t" == multi ]]; then
        rate=$(taskset -c "${CCPUS[$c]}" "$LOADGEN" multi "${PORT[$c]}" "$CLIENTS" "$MULTI_SECS" | awk '{print $2}')
        n=$(awk -v r="$rate" -v s="$MULTI_SECS" 'BEGIN { print r * s }')
    elif [[ "$t" == pubsub ]]; then
        rate=$(taskset -c "${CCPUS[$c]}" "$LOADGEN" pubsub "${PORT[$c]}" "$PUBSUB_SUBS" 4 "$MULTI_SECS" | awk '{print $4}')
        n=$(awk -v r="$rate" -v s="$MULTI_SECS" 'BEGIN { print r * s }')
    else
        local cmd=(-t "$t")
        [[ "$t" == evalsha ]] && cmd=(evalsha "$SHA" 1 "ev:__rand_int__")
        rate=$(taskset -c "${CCPUS[$c]}" redis-benchmark -p "${PORT[$c]}" -c "$CLIENTS" -n "$REQUESTS" \
            -r "$KEYSPACE" -P "$p" -q --csv "${cmd[@]}" | tail -1 | awk -F'","' '{print $2}' | tr -d '"')
        n=$REQUESTS
    fi
    cpu1=$(cpu_ticks "${PID[$c]}")
    awk -v r="$rate" -v a="$cpu0" -v b="$cpu1" -v hz="$CLK_TCK" -v n="$n" \
        'BEGIN { if (n > 0) printf "%s %.3f\n", r, (b - a) / hz * 1e6 / n; else print r, "nan" }'
}

LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
declare -A RES # "$c|$t|$p" -> list of "rate cpu" lines
rows=()
for t in $TESTS; do
    if [[ "$t" == multi || "$t" == pubsub ]]; then rows+=("$t|-"); else for p in $PIPELINES; do rows+=("$t|$p"); done; fi
done
read -r -a cfgs <<<"$CONFIGS"
for r in $(seq 1 "$ROUNDS"); do
    k=0
    for row in "${rows[@]}"; do
        t="${row%|*}"; p="${row#*|}"
        n=${#cfgs[@]}
        for j in $(seq 0 $((n - 1))); do
            c="${cfgs[$(((j + r + k) % n))]}"
            RES["$c|$t|$p"]+="$(measure "$c" "$t" "$p")"$'\n'
        done
        k=$((k + 1))
        echo "round $r/$ROUNDS: $t P=$p done" >&2
    done
done

median() { # field (1 rate, 2 cpu) from lines on stdin
    awk -v f="$1" '$f != "" && $f != "nan" { print $f }' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
fmt() { awk -v v="$1" -v d="$2" 'BEGIN { if (v == "nan") print "n/a"; else printf "%.*f", d, v }'; }
has() { [[ " $CONFIGS " == *" $1 "* ]]; }

report() {
    echo "## Scaling: worker-threads 1 vs 2 ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "- Host: $(nproc) CPUs, $(uname -sr); load average at start: $LOAD_START"
    echo "- $ROUNDS round(s), medians; redis-benchmark rows: -c $CLIENTS -n $REQUESTS -r $KEYSPACE; multi: -c $CLIENTS, pubsub: $PUBSUB_SUBS subscribers; $MULTI_SECS s per loadgen run"
    for c in $CONFIGS; do echo "- $c: server on CPUs ${SCPUS[$c]}, client on CPUs ${CCPUS[$c]}"; done
    [[ -n "$SERVER_ARGS$FERROUS_ARGS" ]] && echo "- SERVER_ARGS: $SERVER_ARGS; FERROUS_ARGS: $FERROUS_ARGS"
    echo
    local head="| test | P |" line="|---|---:|"
    for c in $CONFIGS; do head+=" $c rps |"; line+="---:|"; done
    has f1 && has f2 && { head+=" f2/f1 |"; line+="---:|"; }
    has f1 && has f2one && { head+=" f2one/f1 |"; line+="---:|"; }
    has f1 && has redis && { head+=" f1/redis |"; line+="---:|"; }
    for c in $CONFIGS; do head+=" $c CPU µs/req |"; line+="---:|"; done
    has f1 && has f2 && { head+=" CPU f2/f1 |"; line+="---:|"; }
    echo "$head"; echo "$line"
    for row in "${rows[@]}"; do
        t="${row%|*}"; p="${row#*|}"
        declare -A R C
        local out="| $t | $p |"
        for c in $CONFIGS; do
            R[$c]=$(printf '%s' "${RES[$c|$t|$p]}" | median 1)
            C[$c]=$(printf '%s' "${RES[$c|$t|$p]}" | median 2)
            out+=" $(fmt "${R[$c]}" 0) |"
        done
        has f1 && has f2 && out+=" $(ratio "${R[f2]}" "${R[f1]}") |"
        has f1 && has f2one && out+=" $(ratio "${R[f2one]}" "${R[f1]}") |"
        has f1 && has redis && out+=" $(ratio "${R[f1]}" "${R[redis]}") |"
        for c in $CONFIGS; do out+=" $(fmt "${C[$c]}" 2) |"; done
        has f1 && has f2 && out+=" $(ratio "${C[f2]}" "${C[f1]}") |"
        echo "$out"
    done
    echo
    echo "multi: transactions/s (MULTI + 5 INCR + EXEC), CPU per transaction; pubsub: messages" \
         "delivered/s ($PUBSUB_SUBS subscribers, 4 publishers), CPU per delivered message. CPU µs/req: the" \
         "server's user + system time during the run / requests (10 ms clock ticks: small runs are coarse)."
    echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
}
mkdir -p "$(dirname "$OUT")"
report | tee "$OUT"
