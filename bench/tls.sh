#!/usr/bin/env bash
#
# bench/tls.sh — redis-benchmark over TLS against Ferrous and real Redis (Debian's 7.0.x, built
# with OpenSSL), alternating which server goes first in each round; prints the median rps of
# each (test, pipeline) over the rounds and the Ferrous/Redis ratio, and the median CPU time
# each server spent per request (Redis/Ferrous: above 1.0 means Ferrous used less).
#
# Usage: cargo build --release && bench/tls.sh
# Environment: FERROUS_BIN (target/release/ferrous-server), TESTS (set,get), PIPELINES ("1 16"),
#   REQUESTS (200000), CLIENTS (50), ROUNDS (5), PORT_BASE (26900: uses PORT_BASE..+1),
#   RUN_TIMEOUT (120 s per redis-benchmark run).
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
FERROUS_BIN="${FERROUS_BIN:-target/release/ferrous-server}"
TESTS="${TESTS:-set,get}"
PIPELINES="${PIPELINES:-1 16}"
REQUESTS="${REQUESTS:-200000}"
CLIENTS="${CLIENTS:-50}"
ROUNDS="${ROUNDS:-5}"
PORT_BASE="${PORT_BASE:-26900}"
RUN_TIMEOUT="${RUN_TIMEOUT:-120}"
FPORT=$PORT_BASE
RPORT=$((PORT_BASE + 1))
WORK=$(mktemp -d /tmp/ferrous-tls-bench.XXXXXX)
trap 'redis-cli -p $RPORT $TLS shutdown nosave >/dev/null 2>&1 || true; redis-cli -p $FPORT $TLS shutdown nosave >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

# Certificates: a CA, a server certificate for 127.0.0.1, a client certificate (X.509 v3).
cd "$WORK"
openssl req -x509 -new -nodes -newkey rsa:2048 -keyout ca.key -out ca.crt -days 2 -subj "/CN=bench CA" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > ext.cnf
for n in server client; do
    openssl req -new -nodes -newkey rsa:2048 -keyout $n.key -out $n.csr -subj "/CN=$n" 2>/dev/null
    openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out $n.crt 2>/dev/null
done
cd "$REPO_ROOT"
SRV_TLS=(--port 0 --save "" --appendonly no --tls-cert-file "$WORK/server.crt" --tls-key-file "$WORK/server.key" --tls-ca-cert-file "$WORK/ca.crt")
TLS="--tls --cacert $WORK/ca.crt --cert $WORK/client.crt --key $WORK/client.key"

"$FERROUS_BIN" "${SRV_TLS[@]}" --tls-port "$FPORT" > "$WORK/ferrous.log" 2>&1 &
FPID=$!
redis-server "${SRV_TLS[@]}" --tls-port "$RPORT" > "$WORK/redis.log" 2>&1 &
RPID=$!
for p in $FPORT $RPORT; do
    for _ in $(seq 100); do redis-cli -p "$p" $TLS ping >/dev/null 2>&1 && break; sleep 0.1; done
done

# CPU time (user + system, every thread) a process has used, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
# One redis-benchmark run -> "rps cpu_us_per_request" (the server's CPU time per request is
# steadier than rps on a shared machine). A run that stalls past RUN_TIMEOUT s counts as 0 and
# is named on stderr (so a hung connection shows instead of hanging the script).
run() { # port test pipeline -> rps cpu
    local out t0 pid
    if [ "$1" = "$FPORT" ]; then pid=$FPID; else pid=$RPID; fi
    t0=$(ticks "$pid")
    out=$(timeout "$RUN_TIMEOUT" redis-benchmark -p "$1" $TLS -t "$2" -P "$3" -n "$REQUESTS" -c "$CLIENTS" -r 100000 -q 2>/dev/null |
        tr '\r' '\n' | grep -i "requests per second" | tail -1 | sed -E 's/.*: ([0-9.]+) requests.*/\1/') || true
    [ -n "$out" ] || { echo "run on port $1 ($2 -P $3) stalled or failed" >&2; out=0; }
    echo "$out $(awk -v d=$(($(ticks "$pid") - t0)) -v hz="$HZ" -v n="$REQUESTS" 'BEGIN {printf "%.2f", d / hz * 1e6 / n}')"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "| test | -P | Ferrous rps (median of $ROUNDS) | Redis rps | ratio | Ferrous CPU µs/req | Redis CPU µs/req | CPU ratio Redis/Ferrous |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for t in ${TESTS//,/ }; do
    for p in $PIPELINES; do
        f=(); r=()
        for i in $(seq "$ROUNDS"); do
            if (( i % 2 )); then f+=("$(run $FPORT "$t" "$p")"); r+=("$(run $RPORT "$t" "$p")");
            else r+=("$(run $RPORT "$t" "$p")"); f+=("$(run $FPORT "$t" "$p")"); fi
        done
        fm=$(printf '%s\n' "${f[@]}" | cut -d' ' -f1 | median); rm_=$(printf '%s\n' "${r[@]}" | cut -d' ' -f1 | median)
        fc=$(printf '%s\n' "${f[@]}" | cut -d' ' -f2 | median); rc=$(printf '%s\n' "${r[@]}" | cut -d' ' -f2 | median)
        echo "| $t | $p | $fm | $rm_ | $(awk -v a="$fm" -v b="$rm_" 'BEGIN {printf "%.2f", a/b}') | $fc | $rc | $(awk -v a="$fc" -v b="$rc" 'BEGIN {printf "%.2f", b/a}') |"
    done
done
