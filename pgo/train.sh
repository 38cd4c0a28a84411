#!/usr/bin/env bash
#
# pgo/train.sh — records pgo/ferrous.profdata, the profile release builds are optimised with
# (pgo/README.md).
#
# Builds an instrumented server (FERROUS_PGO=generate:DIR, in target/pgo-generate), runs it
# under a load of redis-benchmark rows that covers the data types, pipelined and not, one
# client and fifty, plus a SAVE and a DEBUG RELOAD, then merges what it counted into
# pgo/ferrous.profdata and writes the LLVM major version that can read it to pgo/llvm-version.
#
# Needs: redis-benchmark and redis-cli (Debian's redis-tools), and llvm-profdata of the same
# LLVM as rustc (`rustup component add llvm-tools`). Takes about 5 minutes.
# Environment: PORT (default 26379), REQUESTS (per row with 50 clients, default 100000).
set -euo pipefail
set -f # the rows' `*` (XADD) is an argument, not a glob
cd "$(dirname "$0")/.."

PORT="${PORT:-26379}"
REQUESTS="${REQUESTS:-100000}"
TARGET=target/pgo-generate
RAW="$PWD/$TARGET/profraw"

sysroot="$(rustc --print sysroot)"
host="$(rustc -vV | sed -n 's/^host: //p')"
PROFDATA="$sysroot/lib/rustlib/$host/bin/llvm-profdata"
[[ -x "$PROFDATA" ]] || { echo "no $PROFDATA: rustup component add llvm-tools" >&2; exit 1; }
for tool in redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null || { echo "no $tool: apt-get install redis-tools" >&2; exit 1; }
done

rm -rf "$RAW"
FERROUS_PGO="generate:$RAW" CARGO_TARGET_DIR="$TARGET" cargo build --release
work="$(mktemp -d -t ferrous-pgo.XXXXXX)"
"$TARGET/release/ferrous-server" --port "$PORT" --save '' --appendonly no --enable-debug-command yes --dir "$work" \
    >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

cli() { redis-cli -p "$PORT" "$@" >/dev/null; }
bench() { redis-benchmark -p "$PORT" -q "$@" >/dev/null; }

sha="$(redis-cli -p "$PORT" script load "return redis.call('INCR', KEYS[1])")"
awk -v n=10000 -v key=bench:zset -f bench/zset-load.awk | redis-cli -p "$PORT" --pipe >/dev/null
cli function load "#!lua name=train
redis.register_function('hget2', function(keys) return redis.call('HGET', keys[1], 'f') end)"

# Rows beyond redis-benchmark's -t set: one command line each, on random keys.
ROWS=(
    "evalsha $sha 1 script:__rand_int__"
    "fcall hget2 1 h:__rand_int__"
    "zrangebyscore bench:zset __rand_int__ +inf limit 0 10"
    "zscore bench:zset __rand_int__"
    "zincrby z:__rand_int__ 1 m"
    "hget myhash element:__rand_int__"
    "hincrby h:__rand_int__ f 1"
    "hgetall h:__rand_int__"
    "smembers myset"
    "sismember myset element:__rand_int__"
    "setex k:__rand_int__ 100 value"
    "expire key:__rand_int__ 100"
    "ttl key:__rand_int__"
    "exists key:__rand_int__"
    "del k:__rand_int__"
    "getrange key:__rand_int__ 0 3"
    "append a:__rand_int__ xy"
    "setbit b:__rand_int__ 7 1"
    "pfadd hll:__rand_int__ a b c"
    "xadd s:__rand_int__ maxlen ~ 100 * f v"
    "xrange s:__rand_int__ - + count 10"
    "geoadd g 13.36 38.11 m:__rand_int__"
    "eval return(redis.call('GET',KEYS[1])) 1 key:__rand_int__"
    "scan 0 count 10"
)
TESTS=ping_inline,ping_mbulk,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin
TESTS+=,lrange_100,lrange_300,mset
for pipeline in 1 16; do
    for clients in 50 1; do
        n=$((clients == 1 ? REQUESTS / 5 : REQUESTS))
        common=(-c "$clients" -P "$pipeline" -r 100000 -d 16)
        bench "${common[@]}" -n "$n" -t "$TESTS"
        for row in "${ROWS[@]}"; do
            # shellcheck disable=SC2086 # a row is words
            bench "${common[@]}" -n "$((n / 4))" $row
        done
    done
done
cli save
cli debug reload
cli shutdown nosave || true
wait "$server" || true

"$PROFDATA" merge --sparse -o pgo/ferrous.profdata "$RAW"
"$PROFDATA" --version | sed -n 's/.*LLVM version \([0-9]*\).*/\1/p' >pgo/llvm-version
echo "pgo/ferrous.profdata: $(wc -c <pgo/ferrous.profdata) bytes, LLVM $(cat pgo/llvm-version)"
