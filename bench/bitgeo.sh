#!/usr/bin/env bash
# Bitmaps and geo, Ferrous vs real Redis in the same run.
#
#   bench/bitgeo.sh            (needs target/release/ferrous-server and Debian's redis-server)
#
# Loads into both servers: a 1 MiB random string, four 1 MiB random strings, and a geo set of
# GEO_N (default 1000000) random points named m:%012d (redis-benchmark's __rand_int__ format).
# Then, with redis-benchmark (-c ${CLIENTS:-50}), alternating servers for ROUNDS (default 3)
# rounds and taking medians:
#   BITCOUNT of the 1 MiB string; BITOP AND of the four strings into a fifth key;
#   GEOSEARCH around a random member: BYRADIUS 100 km ASC (every match, sorted) and
#   BYBOX 200 200 km ASC COUNT 10 (partial sort).
# Prints a Markdown table: requests/s and p50 per server, ratio = Ferrous rps / Redis rps
# (>= 1.0 means Ferrous is at least as fast), and the server CPU time per request (user +
# system, all threads, from /proc), which a busy machine disturbs less than throughput:
# cpu ratio = Redis CPU per request / Ferrous CPU per request (>= 1.0: Ferrous is cheaper).
# Talks to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
GEO_N=${GEO_N:-1000000}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-50}
FERROUS_BIN=${FERROUS_BIN:-${CARGO_TARGET_DIR:-target}/release/ferrous-server}
REDIS_PORT=${REDIS_PORT:-16511}
FERROUS_PORT=${FERROUS_PORT:-16512}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "$REDIS_PORT" "$FERROUS_PORT"; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

declare -A PID_OF
start() { # name port
    local name=$1 port=$2
    if [ "$name" = redis ]; then
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" >/dev/null 2>&1 &
    else
        "$FERROUS_BIN" --port "$port" --bind 127.0.0.1 --save '' --dir "$WORK" >/dev/null 2>&1 &
    fi
    PIDS+=($!)
    PID_OF[$port]=$!
    for _ in $(seq 200); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.05; done
    echo "$name did not start on port $port" >&2
    exit 1
}

# The dataset as RESP, the same bytes for both servers (fixed seed).
gen() { python3 - "$GEO_N" <<'PY'
import sys, random
n = int(sys.argv[1])
rnd = random.Random(42)
out = sys.stdout.buffer
def cmd(*a):
    b = [b"*%d\r\n" % len(a)]
    for x in a:
        x = x if isinstance(x, bytes) else str(x).encode()
        b.append(b"$%d\r\n%s\r\n" % (len(x), x))
    return b"".join(b)
mb = 1 << 20
out.write(cmd("SET", "bm", rnd.randbytes(mb)))
for k in range(4):
    out.write(cmd("SET", "src%d" % k, rnd.randbytes(mb)))
batch = []
for i in range(n):
    batch += ["%.6f" % rnd.uniform(-180, 180), "%.6f" % rnd.uniform(-85, 85), "m:%012d" % i]
    if len(batch) >= 300:
        out.write(cmd("GEOADD", "geo", *batch)); batch = []
if batch:
    out.write(cmd("GEOADD", "geo", *batch))
PY
}

start redis "$REDIS_PORT"
start ferrous "$FERROUS_PORT"
gen > "$WORK/data.resp"
for p in "$REDIS_PORT" "$FERROUS_PORT"; do redis-cli -p "$p" --pipe < "$WORK/data.resp" >/dev/null; done
for p in "$REDIS_PORT" "$FERROUS_PORT"; do
    [ "$(redis-cli -p "$p" zcard geo)" = "$GEO_N" ] || { echo "load failed on port $p" >&2; exit 1; }
done

TICK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/${PID_OF[$1]}/stat"; }
# One redis-benchmark run: "rps p50 cpu-us-per-request" on stdout.
run() { # port requests command...
    local before after out
    before=$(cpu_ticks "$1")
    out=$(redis-benchmark -p "$1" -n "$2" -c "$CLIENTS" -r "$GEO_N" --csv "${@:3}" | tail -1 | tr -d '"')
    after=$(cpu_ticks "$1")
    echo "$out" | awk -F, -v t="$((after - before))" -v hz="$TICK" -v n="$2" '{printf "%s %s %.1f\n", $2, $5, t / hz * 1e6 / n}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "## Bitmaps and geo (redis-benchmark -c $CLIENTS, median of $ROUNDS alternating rounds)"
echo
echo "| load | Redis rps | Ferrous rps | ratio rps | Redis p50 ms | Ferrous p50 ms | Redis CPU us/req | Ferrous CPU us/req | cpu ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
bench() { # label requests command...
    local label=$1 n=$2; shift 2
    local r f a
    local -a rr=() fr=() rl=() fl=() rc=() fc=()
    for _ in $(seq "$ROUNDS"); do
        r=$(run "$REDIS_PORT" "$n" "$@"); f=$(run "$FERROUS_PORT" "$n" "$@")
        read -r -a a <<<"$r"; rr+=("${a[0]}"); rl+=("${a[1]}"); rc+=("${a[2]}")
        read -r -a a <<<"$f"; fr+=("${a[0]}"); fl+=("${a[1]}"); fc+=("${a[2]}")
    done
    med() { printf '%s\n' "$@" | median; }
    local mr mf ml fml mrc mfc
    mr=$(med "${rr[@]}"); mf=$(med "${fr[@]}"); ml=$(med "${rl[@]}"); fml=$(med "${fl[@]}")
    mrc=$(med "${rc[@]}"); mfc=$(med "${fc[@]}")
    echo "| $label | $mr | $mf | $(awk -v a="$mf" -v b="$mr" 'BEGIN{printf "%.2f", a/b}') | $ml | $fml" \
        "| $mrc | $mfc | $(awk -v a="$mrc" -v b="$mfc" 'BEGIN{printf "%.2f", (b > 0) ? a/b : 0}') |"
}
bench "BITCOUNT, 1 MiB string" 20000 BITCOUNT bm
bench "BITOP AND, 4 x 1 MiB" 4000 BITOP AND dst src0 src1 src2 src3
bench "GEOSEARCH BYRADIUS 100 km ASC ($GEO_N members)" 50000 \
    GEOSEARCH geo FROMMEMBER "m:__rand_int__" BYRADIUS 100 km ASC
bench "GEOSEARCH BYBOX 200x200 km ASC COUNT 10 WITHDIST ($GEO_N members)" 50000 \
    GEOSEARCH geo FROMMEMBER "m:__rand_int__" BYBOX 200 200 km ASC COUNT 10 WITHDIST
