#!/usr/bin/env bash
# Streams, Ferrous vs real Redis in the same run.
#
#   bench/streams.sh     (needs target/release/ferrous-server, the loadgen example
#                         `cargo build --release --example loadgen`, and Debian's redis-server)
#
# 1. XADD throughput: redis-benchmark -c 50 `XADD bench:xadd * field value`, without and with
#    pipelining (-P 16), on one stream.
# 2. Memory: RSS growth (VmRSS) after adding N entries (N=${N:-1000000}) to one stream, each
#    `XADD bench:stream * field <i> value <payload>`, into a fresh server.
# 3. XREADGROUP + XACK throughput on that stream: 50 consumers of one group, each looping on
#    XREADGROUP COUNT 10 ... > and XACK of what it got (examples/loadgen.rs xconsume); entries
#    consumed per second.
# Rounds alternate which server goes first; the table shows medians of ROUNDS (default 3)
# rounds and the ratio Ferrous/Redis (throughput: higher is better; memory: lower is better).
# Talks to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
REQS=${REQS:-300000}
FERROUS_BIN=${FERROUS_BIN:-target/release/ferrous-server}
LOADGEN=${LOADGEN:-$(dirname "$FERROUS_BIN")/examples/loadgen}
REDIS_PORT=${REDIS_PORT:-16511}
FERROUS_PORT=${FERROUS_PORT:-16512}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

port_of() { [ "$1" = redis ] && echo "$REDIS_PORT" || echo "$FERROUS_PORT"; }
start() { # name -> pid on stdout
    local name=$1 port
    port=$(port_of "$name")
    if [ "$name" = redis ]; then
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" >/dev/null 2>&1 &
    else
        "$FERROUS_BIN" --port "$port" --bind 127.0.0.1 --save '' --dir "$WORK" >/dev/null 2>&1 &
    fi
    local pid=$!
    for _ in $(seq 400); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
    redis-cli -p "$port" ping >/dev/null 2>&1 || { echo "$name did not start on port $port" >&2; exit 1; }
    echo "$pid"
}
stop() { # the server was started in a subshell: wait for it to be gone (its port free)
    kill "$1" 2>/dev/null || true
    for _ in $(seq 400); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v f="$1" -v r="$2" 'BEGIN{printf "%.2f", f/r}'; }

# N XADD commands as RESP (python, streamed into redis-cli --pipe).
gen() { python3 - "$N" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
payload = b"x" * 16
chunk = []
for i in range(n):
    f = str(i).encode()
    chunk.append(b"*7\r\n$4\r\nXADD\r\n$12\r\nbench:stream\r\n$1\r\n*\r\n$5\r\nfield\r\n$%d\r\n%s\r\n$5\r\nvalue\r\n$16\r\n%s\r\n"
                 % (len(f), f, payload))
    if len(chunk) >= 10000:
        out.write(b"".join(chunk)); chunk = []
out.write(b"".join(chunk))
PY
}

xadd_rps() { # name pipeline -> requests/s (one retry: a shared machine sometimes fails a run)
    local port out; port=$(port_of "$1")
    for _ in 1 2; do
        redis-cli -p "$port" del bench:xadd >/dev/null
        out=$(redis-benchmark -p "$port" -c 50 -n "$REQS" -P "$2" -q XADD bench:xadd '*' field value 2>/dev/null \
            | tr '\r' '\n' | awk '/requests per second/ {for (i=1;i<=NF;i++) if ($i=="requests") print $(i-1)}' \
            | tail -1) || true
        [ -n "$out" ] && break
    done
    echo "${out:-0}"
}

declare -A R
for round in $(seq "$ROUNDS"); do
    order="redis ferrous"; [ $((round % 2)) -eq 0 ] && order="ferrous redis"
    for name in $order; do
        echo "round $round: $name" >&2
        pid=$(start "$name"); PIDS+=("$pid")
        port=$(port_of "$name")
        R[$name,xadd]+="$(xadd_rps "$name" 1) "
        R[$name,xadd16]+="$(xadd_rps "$name" 16) "
        redis-cli -p "$port" del bench:xadd >/dev/null
        before=$(rss_kb "$pid")
        gen | redis-cli -p "$port" --pipe >/dev/null
        after=$(rss_kb "$pid")
        R[$name,rss]+="$(awk -v a="$after" -v b="$before" 'BEGIN{printf "%.1f", (a-b)/1024}') "
        redis-cli -p "$port" xgroup create bench:stream g 0 >/dev/null
        R[$name,consume]+="$( ("$LOADGEN" xconsume "$port" 50 "$SECS" 10 || true) | awk '{print $2}') "
        stop "$pid"
    done
done

m() { echo "${R[$1,$2]}" | tr ' ' '\n' | grep -v '^$' | median; }
echo "## Streams (N=$N, medians of $ROUNDS alternating rounds)"
echo
echo "| measure | Redis | Ferrous | Ferrous/Redis |"
echo "|---|---:|---:|---:|"
for k in xadd xadd16 consume; do
    label=$(case $k in xadd) echo "XADD req/s (-c 50)";; xadd16) echo "XADD req/s (-c 50 -P 16)";;
        consume) echo "XREADGROUP+XACK entries/s (50 consumers, COUNT 10)";; esac)
    r=$(m redis $k); f=$(m ferrous $k)
    echo "| $label | $r | $f | $(ratio "$f" "$r") |"
done
r=$(m redis rss); f=$(m ferrous rss)
echo "| RSS MiB of a $N-entry stream | $r | $f | $(ratio "$f" "$r") |"
