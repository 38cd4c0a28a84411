#!/usr/bin/env bash
#
# bench/connections.sh — memory per idle connection: Ferrous against real Redis (Debian's 7.0.x)
# and, when VALKEY_BIN is given, Valkey. For each server and round: start it, open CONNS
# connections that each send one PING and read the reply, wait IDLE seconds (past the 2-second
# idle trim of query and reply buffers), then report the growth of the server's RSS and of its
# INFO used_memory, divided by CONNS. The servers alternate which goes first in each round; the
# medians over the rounds are printed.
#
# Usage: cargo build --release && bench/connections.sh
# Environment: FERROUS_BIN (target/release/ferrous-server), REDIS_BIN (redis-server),
#   VALKEY_BIN (none), CONNS (10000), IDLE (6 s), ROUNDS (3), PORT_BASE (26950: uses
#   PORT_BASE..+2). Needs python3 and a file descriptor limit above CONNS (`ulimit -n`).
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
FERROUS_BIN="${FERROUS_BIN:-target/release/ferrous-server}"
REDIS_BIN="${REDIS_BIN:-$(command -v redis-server)}"
VALKEY_BIN="${VALKEY_BIN:-}"
CONNS="${CONNS:-10000}"
IDLE="${IDLE:-6}"
ROUNDS="${ROUNDS:-3}"
PORT_BASE="${PORT_BASE:-26950}"
if [ "$(ulimit -n)" -le "$((CONNS + 100))" ]; then
    ulimit -n $((CONNS + 1000)) 2>/dev/null || { echo "ulimit -n is below CONNS + 100" >&2; exit 1; }
fi
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; true' EXIT

# One measurement: binary port -> "rss_bytes_per_conn used_memory_bytes_per_conn".
measure() {
    "$1" --port "$2" --save "" --appendonly no --maxclients $((CONNS + 100)) > /dev/null 2>&1 &
    PID=$!
    for _ in $(seq 100); do redis-cli -p "$2" ping > /dev/null 2>&1 && break; sleep 0.1; done
    # (Alive too: a port taken by another server answers the PING.)
    if ! kill -0 "$PID" 2> /dev/null || ! redis-cli -p "$2" ping > /dev/null 2>&1; then
        echo "$1 did not start on port $2" >&2
        exit 1
    fi
    python3 - "$2" "$PID" "$CONNS" "$IDLE" << 'EOF'
import socket, sys, time
port, pid, n, idle = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
def rss():
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS"))
def used():
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"INFO memory\r\n")
    data = b""
    while b"used_memory:" not in data or not data.endswith(b"\r\n"):
        data += s.recv(65536)
    s.close()
    line = next(l for l in data.split(b"\r\n") if l.startswith(b"used_memory:"))
    return int(line.split(b":")[1])
r0, u0 = rss(), used()
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
for s in socks:
    s.sendall(b"PING\r\n")
for s in socks:
    assert s.recv(16) == b"+PONG\r\n"
time.sleep(idle)
r1, u1 = rss(), used()
print((r1 - r0) // n, (u1 - u0) // n)
EOF
    kill "$PID"
    wait "$PID" 2> /dev/null || true
    PID=""
}

names=(ferrous redis)
bins=("$FERROUS_BIN" "$REDIS_BIN")
if [ -n "$VALKEY_BIN" ]; then
    names+=(valkey)
    bins+=("$VALKEY_BIN")
fi
declare -A rss used
for round in $(seq "$ROUNDS"); do
    n=${#names[@]}
    for k in $(seq 0 $((n - 1))); do
        i=$(((k + round) % n))
        # (A command substitution waits for the server to be stopped, as `read < <(...)` did not.)
        out=$(measure "${bins[$i]}" $((PORT_BASE + i)))
        read -r r u <<< "$out"
        rss[${names[$i]}]+="$r "
        used[${names[$i]}]+="$u "
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo "## Memory per idle connection ($CONNS connections, $IDLE s idle, median of $ROUNDS rounds)"
echo
echo "| server | RSS growth / connection (bytes) | used_memory growth / connection (bytes) | rounds (RSS) |"
echo "|---|---:|---:|---|"
for name in "${names[@]}"; do
    echo "| $name | $(echo "${rss[$name]}" | median) | $(echo "${used[$name]}" | median) | ${rss[$name]}|"
done
