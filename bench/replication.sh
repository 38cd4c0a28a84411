#!/usr/bin/env bash
#
# bench/replication.sh — replication of Ferrous against real Redis, in the same run:
#
# (a) Write throughput on a master with 0, 1 and 2 replicas attached (replicas of the same
#     server kind, all on this machine): redis-benchmark SET on -r 1000000 random keys,
#     CLIENTS connections, pipelining PIPELINE. Rounds alternate the server kind; the table
#     shows medians.
# (b) A full synchronisation of an N-key dataset (DEBUG POPULATE) while CLIENTS connections keep
#     writing (examples/synclat.rs): time from REPLICAOF until the replica's link is up, and
#     the p50 / p99 / max latency of the writes meanwhile. Diskless sync without delay on both;
#     the replica loads from disk (repl-diskless-load disabled, the default).
#
# Ratios are Ferrous/Redis (higher is better for throughput, lower for times and latencies).
#
# Usage: cargo build --release --bin ferrous-server --example synclat && bench/replication.sh
# Environment (optional):
#   N            keys of the full-sync dataset                (default 5000000)
#   ROUNDS       rounds of (a), alternating the server kind   (default 3)
#   REQUESTS     redis-benchmark requests per run of (a)      (default 1000000)
#   CLIENTS      connections                                  (default 50)
#   PIPELINE     redis-benchmark -P in (a)                    (default 16)
#   FERROUS_BIN  server binary                                (default target/release/ferrous-server)
#   PARTS        which parts to run: a, b or ab                  (default ab)
#   PORT_BASE    use ports PORT_BASE..PORT_BASE+19             (default: ports the OS says are free)
#
# Report: stdout and bench/out/replication-<timestamp>.md; progress on stderr.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
N="${N:-5000000}"
ROUNDS="${ROUNDS:-3}"
REQUESTS="${REQUESTS:-1000000}"
CLIENTS="${CLIENTS:-50}"
PIPELINE="${PIPELINE:-16}"
PARTS="${PARTS:-ab}"
FERROUS_BIN="${FERROUS_BIN:-target/release/ferrous-server}"
SYNCLAT="${SYNCLAT:-target/release/examples/synclat}"
OUT_DIR="$REPO_ROOT/bench/out"
STAMP="$(date +%Y%m%d-%H%M%S)"
OUT_FILE="$OUT_DIR/replication-$STAMP.md"
WORK="$(mktemp -d -t ferrous-repl-bench.XXXXXX)"
PIDS=()

log() { printf '[replication] %s\n' "$*" >&2; }
# Ports: PORT_BASE, PORT_BASE+1, ... when set (on a shared machine), else ones the OS says are free.
NEXT_PORT="${PORT_BASE:-}"
free_port() {
  if [ -n "$NEXT_PORT" ]; then
    # A counter in a file: callers run this in a subshell ($(free_port)).
    local seq; seq=$(cat "$WORK/port-seq" 2>/dev/null || echo 0)
    echo $((seq + 1)) >"$WORK/port-seq"
    echo $((NEXT_PORT + seq % 20))
  else
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
  fi
}
wait_ready() { for _ in $(seq 1 400); do redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.05; done; log "server on $1 did not start"; exit 1; }
stop_all() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  PIDS=()
}
trap 'stop_all; rm -rf "$WORK"' EXIT

# start KIND PORT DIR ARGS... : a server in the background (its pid appended to PIDS).
start() {
  local kind=$1 port=$2 dir=$3; shift 3
  mkdir -p "$dir"
  local bin=redis-server
  [ "$kind" = ferrous ] && bin="$FERROUS_BIN"
  (cd "$dir" && exec "$bin" --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
      --repl-diskless-sync yes --repl-diskless-sync-delay 0 --enable-debug-command local "$@" >"$dir/log" 2>&1) &
  PIDS+=($!)
  wait_ready "$port"
}

link_up() { redis-cli -p "$1" info replication | grep -q 'master_link_status:up'; }

# (a) one run: KIND REPLICAS -> requests per second of SET
throughput() {
  local kind=$1 nrep=$2 m
  m=$(free_port)
  start "$kind" "$m" "$WORK/$kind-m"
  for i in $(seq 1 "$nrep"); do
    local r
    r=$(free_port)
    start "$kind" "$r" "$WORK/$kind-r$i" --replicaof 127.0.0.1 "$m"
    for _ in $(seq 1 400); do link_up "$r" && break; sleep 0.05; done
  done
  redis-benchmark -p "$m" -t set -n "$REQUESTS" -r 1000000 -c "$CLIENTS" -P "$PIPELINE" -q 2>/dev/null \
    | tr '\r' '\n' | awk '/^SET:/ {print $2}' | tail -1
  stop_all
  rm -rf "$WORK"/"$kind"-*
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { python3 -c "import sys; print(f'{float(sys.argv[2])/float(sys.argv[1]):.2f}')" "$1" "$2"; }

mkdir -p "$OUT_DIR"
{
  echo "# Replication benchmark ($STAMP)"
  echo
  echo "Machine: $(nproc) cores. redis-server $(redis-server --version | awk '{print $3}'). CLIENTS=$CLIENTS."
  echo
  echo "## (a) SET throughput on the master (requests/s; median of $ROUNDS; -P $PIPELINE)"
  echo
  echo "| replicas | Redis | Ferrous | ratio |"
  echo "|---:|---:|---:|---:|"
} | tee "$OUT_FILE"

for nrep in 0 1 2; do
  [[ $PARTS == *a* ]] || break
  rs="" fs=""
  for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then
      r=$(throughput redis "$nrep"); f=$(throughput ferrous "$nrep")
    else
      f=$(throughput ferrous "$nrep"); r=$(throughput redis "$nrep")
    fi
    log "$nrep replicas, round $round: redis $r ferrous $f"
    rs="$rs $r"; fs="$fs $f"
  done
  rm_=$(echo "$rs" | median); fm=$(echo "$fs" | median)
  echo "| $nrep | $rm_ | $fm | $(ratio "$rm_" "$fm") |" | tee -a "$OUT_FILE"
done

# (b) full synchronisation of N keys under a write load.
sync_run() {
  local kind=$1 m r out
  m=$(free_port); r=$(free_port)
  start "$kind" "$m" "$WORK/$kind-m"
  log "$kind: populating $N keys"
  # DEBUG POPULATE must have worked: an empty dataset would "sync" in no time.
  [ "$(redis-cli -p "$m" debug populate "$N" key 16)" = OK ] || { log "$kind: DEBUG POPULATE failed"; stop_all; exit 1; }
  [ "$(redis-cli -p "$m" dbsize)" -ge "$N" ] || { log "$kind: the dataset is smaller than $N keys"; stop_all; exit 1; }
  start "$kind" "$r" "$WORK/$kind-r"
  out=$("$SYNCLAT" "$m" "$r" "$CLIENTS" "$N")
  log "$kind: $out"
  echo "$out"
  stop_all
  rm -rf "$WORK"/"$kind"-*
}
if [[ $PARTS == *b* ]]; then
  {
    echo
    echo "## (b) Full synchronisation of $N keys while $CLIENTS clients write"
    echo
    echo "| | Redis | Ferrous | ratio |"
    echo "|---|---:|---:|---:|"
  } | tee -a "$OUT_FILE"
  R=$(sync_run redis); F=$(sync_run ferrous)
  [ -n "$R" ] && [ -n "$F" ] || { log "part (b) failed"; exit 1; }
  get() { echo "$1" | tr ' ' '\n' | awk -v k="$2" 'prev==k {print; exit} {prev=$0}'; }
  for k in sync_seconds p50_us p99_us max_us writes; do
    rv=$(get "$R" $k); fv=$(get "$F" $k)
    echo "| $k | $rv | $fv | $(ratio "$rv" "$fv") |" | tee -a "$OUT_FILE"
  done
fi
log "report: $OUT_FILE"
