#!/usr/bin/env bash
# Lua scripting throughput, Ferrous vs real Redis in the same run.
#
#   bench/scripting.sh          (needs target/release/ferrous-server and Debian's redis-server)
#
# The same 3-command script runs as EVALSHA and, loaded as a library, as FCALL:
#   SET KEYS[1] ARGV[1]; GET KEYS[1]; INCR KEYS[2] — returning GET's reply.
# It is loaded with redis-cli on both servers first, then redis-benchmark runs
#   evalsha <sha> 2 key:__rand_int__ counter value   and   fcall bench3 2 key:__rand_int__ counter value
# at each pipeline depth. Each row is measured ROUNDS times, alternating which server goes
# first, and reports the median of each side (the machine may be shared: single runs are noisy).
# Prints a Markdown table with the ratios Ferrous/Redis (rps: higher is better). Talks to
# 127.0.0.1 only.
#
# Environment: REQUESTS (-n, default 200000), CLIENTS (-c, default 50), KEYSPACE (-r, default
# 100000), PIPELINES (default "1 16"), ROUNDS (default 3), FERROUS_BIN, REDIS_PORT /
# FERROUS_PORT (16511 / 16512).
set -euo pipefail
cd "$(dirname "$0")/.."
FERROUS_BIN=${FERROUS_BIN:-target/release/ferrous-server}
REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
KEYSPACE=${KEYSPACE:-100000}
PIPELINES=${PIPELINES:-"1 16"}
ROUNDS=${ROUNDS:-3}
REDIS_PORT=${REDIS_PORT:-16511}
FERROUS_PORT=${FERROUS_PORT:-16512}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    # The servers are not children of this shell: wait for them to be gone (ports free).
    for p in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

SCRIPT="redis.call('SET', KEYS[1], ARGV[1]) local v = redis.call('GET', KEYS[1]) redis.call('INCR', KEYS[2]) return v"
LIBRARY="#!lua name=benchlib
redis.register_function('bench3', function(keys, args) redis.call('SET', keys[1], args[1]) local v = redis.call('GET', keys[1]) redis.call('INCR', keys[2]) return v end)"

start() { # name port -> pid
    local name=$1 port=$2
    if [ "$name" = redis ]; then
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" >/dev/null 2>&1 &
    else
        "$FERROUS_BIN" --port "$port" --bind 127.0.0.1 --save '' --dir "$WORK" >/dev/null 2>&1 &
    fi
    local pid=$!
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
    echo "$pid"
}

rps() { # port pipeline args... -> requests per second
    local port=$1 pl=$2
    shift 2
    redis-benchmark -p "$port" -n "$REQUESTS" -c "$CLIENTS" -r "$KEYSPACE" -P "$pl" --csv "$@" 2>/dev/null |
        awk -F',' 'NR > 1 { gsub(/"/, "", $2); v = $2 } END { print v }'
}

PIDS+=("$(start redis "$REDIS_PORT")")
PIDS+=("$(start ferrous "$FERROUS_PORT")")
for port in "$REDIS_PORT" "$FERROUS_PORT"; do
    sha=$(redis-cli -p "$port" script load "$SCRIPT")
    redis-cli -p "$port" function load replace "$LIBRARY" >/dev/null
done

echo "| command | pipeline | Redis rps | Ferrous rps | ratio |"
echo "|---|---:|---:|---:|---:|"
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else print v[int((NR + 1) / 2)] }'; }

for kind in evalsha fcall; do
    if [ "$kind" = evalsha ]; then cmd=(evalsha "$sha" 2 key:__rand_int__ counter value); else cmd=(fcall bench3 2 key:__rand_int__ counter value); fi
    for pl in $PIPELINES; do
        rs=() fs=()
        for round in $(seq "$ROUNDS"); do
            if (( round % 2 == 1 )); then
                rs+=("$(rps "$REDIS_PORT" "$pl" "${cmd[@]}")"); fs+=("$(rps "$FERROUS_PORT" "$pl" "${cmd[@]}")")
            else
                fs+=("$(rps "$FERROUS_PORT" "$pl" "${cmd[@]}")"); rs+=("$(rps "$REDIS_PORT" "$pl" "${cmd[@]}")")
            fi
        done
        r=$(printf '%s\n' "${rs[@]}" | median); f=$(printf '%s\n' "${fs[@]}" | median)
        ratio=$(awk -v a="$r" -v b="$f" 'BEGIN { if (a + 0 == 0) print "n/a"; else printf "%.2f", b / a }')
        echo "| $kind | $pl | $r | $f | $ratio |"
    done
done
