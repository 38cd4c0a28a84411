#!/usr/bin/env bash
# Memory and latency of big collections, Ferrous vs real Redis in the same run.
#
#   bench/collections.sh            (needs target/release/ferrous-server and Debian's redis-server)
#
# Memory: RSS growth (VmRSS) after loading, into a fresh server each time,
#   (a) one hash, one set and one sorted set of N members each (N=${N:-1000000});
#   (b) N small hashes of 10 fields each.
# Latency: ZRANK and ZRANGEBYSCORE (a window of 10 scores) on the N-member sorted set,
#   redis-benchmark -c 50, p50 and p99 per call.
# Prints a Markdown table with the ratios Ferrous/Redis. Talks to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
FERROUS_BIN=${FERROUS_BIN:-target/release/ferrous-server}
REDIS_PORT=${REDIS_PORT:-16501}
FERROUS_PORT=${FERROUS_PORT:-16502}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

start() { # name port -> pid on stdout
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
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# RESP generators (python, streamed into redis-cli --pipe).
gen() { python3 - "$1" "$N" <<'PY'
import sys
kind, n = sys.argv[1], int(sys.argv[2])
out = sys.stdout.buffer
def cmd(*a):
    b = [b"*%d\r\n" % len(a)]
    for x in a:
        x = x if isinstance(x, bytes) else str(x).encode()
        b.append(b"$%d\r\n%s\r\n" % (len(x), x))
    return b"".join(b)
chunk = []
for i in range(n):
    if kind == "hash":   chunk.append(cmd("HSET", "bighash", "field:%d" % i, "value:%d" % i))
    elif kind == "set":  chunk.append(cmd("SADD", "bigset", "member:%d" % i))
    elif kind == "zset": chunk.append(cmd("ZADD", "bigzset", i, "member:%d" % i))
    elif kind == "small":
        a = ["HSET", "hash:%d" % i]
        for f in range(10): a += ["f%d" % f, "v%d" % f]
        chunk.append(cmd(*a))
    if len(chunk) >= 10000:
        out.write(b"".join(chunk)); chunk = []
out.write(b"".join(chunk))
PY
}

measure() { # server kind -> used RSS in MiB
    local name=$1 kind=$2 port pid before after
    port=$([ "$name" = redis ] && echo "$REDIS_PORT" || echo "$FERROUS_PORT")
    pid=$(start "$name" "$port"); PIDS+=("$pid")
    before=$(rss_kb "$pid")
    gen "$kind" | redis-cli -p "$port" --pipe >/dev/null
    after=$(rss_kb "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    awk -v a="$after" -v b="$before" 'BEGIN{printf "%.1f", (a-b)/1024}'
}

echo "## Memory (N=$N)"
echo
echo "| dataset | Redis used RSS MiB | Ferrous used RSS MiB | ratio |"
echo "|---|---:|---:|---:|"
for kind in hash set zset small; do
    r=$(measure redis "$kind"); f=$(measure ferrous "$kind")
    label=$([ "$kind" = small ] && echo "$N hashes x 10 fields" || echo "one $kind of $N members")
    echo "| $label | $r | $f | $(awk -v f="$f" -v r="$r" 'BEGIN{printf "%.2f", f/r}') |"
done

echo
echo "## Sorted-set queries on $N members (redis-benchmark -c 50, ms per call)"
echo
rp=$(start redis "$REDIS_PORT"); PIDS+=("$rp"); fp=$(start ferrous "$FERROUS_PORT"); PIDS+=("$fp")
gen zset | redis-cli -p "$REDIS_PORT" --pipe >/dev/null
gen zset | redis-cli -p "$FERROUS_PORT" --pipe >/dev/null
echo "| query | p50 Redis | p50 Ferrous | ratio p50 | p99 Redis | p99 Ferrous | ratio p99 |"
echo "|---|---:|---:|---:|---:|---:|---:|"
bench() { redis-benchmark -p "$1" -n 200000 -c 50 -r "$N" --csv "${@:2}" | tail -1 | tr -d '"' ; }
for q in "ZRANK bigzset member:__rand_int__" "ZRANGEBYSCORE bigzset __rand_int__ +inf LIMIT 0 10"; do
    # shellcheck disable=SC2086
    r=$(bench "$REDIS_PORT" $q); f=$(bench "$FERROUS_PORT" $q)
    IFS=, read -r _ _ _ _ rp50 _ rp99 _ <<<"$r"
    IFS=, read -r _ _ _ _ fp50 _ fp99 _ <<<"$f"
    echo "| ${q%% *} | $rp50 | $fp50 | $(awk -v a="$fp50" -v b="$rp50" 'BEGIN{printf "%.2f", a/b}') | $rp99 | $fp99 | $(awk -v a="$fp99" -v b="$rp99" 'BEGIN{printf "%.2f", a/b}') |"
done
