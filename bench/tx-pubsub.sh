#!/usr/bin/env bash
#
# bench/tx-pubsub.sh — transactions and Pub/Sub fan-out, Ferrous against real Redis in the
# same run (servers alternated per row), with examples/loadgen.rs as the client:
#   - MULTI / 5 x INCR / EXEC per transaction, CLIENTS connections: transactions per second;
#   - PUBLISH to one channel with 1, 10 and 100 subscribers (4 publishers, 16 in flight
#     each): messages delivered per second.
# Prints a Markdown table with Ferrous/Redis ratios.
#
# Usage: cargo build --release --bin ferrous-server --example loadgen && bench/tx-pubsub.sh
# Environment: SECONDS_PER_RUN (default 5), CLIENTS (default 50), SUBSCRIBERS (default
# "1 10 100"), FERROUS_ARGS (extra server arguments).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
SECS="${SECONDS_PER_RUN:-5}"
CLIENTS="${CLIENTS:-50}"
SUBSCRIBERS="${SUBSCRIBERS:-1 10 100}"
FERROUS_BIN="${FERROUS_BIN:-target/release/ferrous-server}"
LOADGEN="${LOADGEN:-target/release/examples/loadgen}"
FERROUS_ARGS="${FERROUS_ARGS:-}"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 1 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "server on $1 did not start" >&2; exit 1; }

RPORT=$(free_port); FPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null 2>&1 &
RPID=$!
# shellcheck disable=SC2086
"$FERROUS_BIN" --port "$FPORT" --bind 127.0.0.1 --save "" $FERROUS_ARGS >/dev/null 2>&1 &
FPID=$!
trap 'kill $RPID $FPID 2>/dev/null || true' EXIT
wait_ready "$RPORT"; wait_ready "$FPORT"

run() { # port mode args... -> the figure of interest
  "$LOADGEN" "$@"
}

echo "| test | Redis | Ferrous | ratio |"
echo "|---|---:|---:|---:|"
row() { # label, redis figure, ferrous figure
  python3 -c "import sys; r,f=float(sys.argv[2]),float(sys.argv[3]); print(f'| {sys.argv[1]} | {r:,.0f} | {f:,.0f} | {f/r:.2f} |')" "$@"
}

# Transactions.
f=$(run multi "$FPORT" "$CLIENTS" "$SECS" | awk '{print $2}')
r=$(run multi "$RPORT" "$CLIENTS" "$SECS" | awk '{print $2}')
row "MULTI + 5 INCR + EXEC, $CLIENTS clients (tx/s)" "$r" "$f"

# Pub/Sub fan-out; alternate which server goes first.
first=redis
for n in $SUBSCRIBERS; do
  if [ "$first" = redis ]; then
    r=$(run pubsub "$RPORT" "$n" 4 "$SECS" | awk '{print $4}')
    f=$(run pubsub "$FPORT" "$n" 4 "$SECS" | awk '{print $4}')
    first=ferrous
  else
    f=$(run pubsub "$FPORT" "$n" 4 "$SECS" | awk '{print $4}')
    r=$(run pubsub "$RPORT" "$n" 4 "$SECS" | awk '{print $4}')
    first=redis
  fi
  row "PUBLISH to $n subscriber(s) (delivered msg/s)" "$r" "$f"
done
