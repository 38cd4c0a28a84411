#!/usr/bin/env bash
# Run Redis's Sentinel suite (tests/sentinel, runtest-sentinel) with a given data-node binary and
# a given sentinel binary, one runtest-sentinel per unit (fresh instances each), and print
# per-unit counts. It shows that real Sentinels monitor and fail over Ferrous masters and
# replicas (SERVER_BINARY = ferrous-server, SENTINEL_BINARY = a real Redis or Valkey), and, once
# Ferrous runs in sentinel mode, how its own Sentinel does.
#
# Usage: tests/sentinel-suite.sh SERVER_BINARY SENTINEL_BINARY BASE_PORT [UNIT ...]
#   SERVER_BINARY    copied in as src/redis-server of a scratch copy of the suite (REDIS_SUITE,
#                    default /tmp/redis-src-7.2, never modified)
#   SENTINEL_BINARY  linked in as src/redis-sentinel (redis-server, valkey-server and
#                    ferrous-server all start in sentinel mode under that name)
#   BASE_PORT        sentinels use BASE_PORT..BASE_PORT+99, data nodes BASE_PORT+100..+199; the
#                    suite has no port option, so the scratch copy's instances.tcl gets the base
#                    ports and port count edited in (nothing else)
# Environment: WORKDIR (scratch copy, default /tmp/sentinel-suite.BASE_PORT),
#   LOGDIR (default WORKDIR/logs), UNIT_TIMEOUT (default 900 s)
# Output: "[unit] NAME ok=N failed=M" per unit (a unit stops at its first failed test) and a total.
set -u
[ $# -ge 3 ] && [ -x "$1" ] && [ -x "$2" ] || {
    echo "usage: $0 SERVER_BINARY SENTINEL_BINARY BASE_PORT [UNIT ...]" >&2; exit 2; }
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
BIN=$(abs "$1"); SENT=$(abs "$2"); BASE=$3; shift 3
PRISTINE=${REDIS_SUITE:-/tmp/redis-src-7.2}
WORK=${WORKDIR:-/tmp/sentinel-suite.$BASE}
LOGDIR=${LOGDIR:-$WORK/logs}
rm -rf "$WORK" && mkdir -p "$WORK" && cp -r "$PRISTINE"/. "$WORK"/ || exit 2
mkdir -p "$LOGDIR" "$WORK/tests/sentinel/tmp"
sed -i -e "s/^set ::sentinel_base_port .*/set ::sentinel_base_port $BASE/" \
       -e "s/^set ::redis_base_port .*/set ::redis_base_port $((BASE + 100))/" \
       -e "s/^set ::redis_port_count .*/set ::redis_port_count 100/" "$WORK/tests/instances.tcl"
# the pristine src/ entries may be symlinks: replace the links, never write through them
rm -f "$WORK/src/redis-server" "$WORK/src/redis-sentinel" || exit 2
cp "$BIN" "$WORK/src/redis-server" && ln -s "$SENT" "$WORK/src/redis-sentinel" || exit 2
for b in redis-cli redis-benchmark; do ln -sfn "$(command -v $b)" "$WORK/src/$b"; done
cd "$WORK" || exit 2
if [ $# -gt 0 ]; then UNITS=("$@"); else
    mapfile -t UNITS < <(cd tests/sentinel/tests && ls *.tcl | sed 's/\.tcl$//'); fi
TOK=0; TFAIL=0
for u in "${UNITS[@]}"; do
    log="$LOGDIR/$u.log"
    TERM=dumb timeout -k 10 "${UNIT_TIMEOUT:-900}" ./runtest-sentinel --single "$u.tcl" --dont-clean >"$log" 2>&1
    rc=$?
    # a failed test prints "HH:MM:SS> name: FAILED: ..." (an error also "caught an error")
    ok=$(grep -c ': OK$' "$log"); bad=$(grep -cE '^[0-9:]+> .*: FAILED' "$log")
    [ "$bad" -eq 0 ] && bad=$(grep -c 'caught an error' "$log")
    [ $rc -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
    # keep the instance logs of the unit
    mkdir -p "$LOGDIR/$u.instances"
    for d in tests/sentinel/tmp/*_*; do
        [ -f "$d/log.txt" ] && cp "$d/log.txt" "$LOGDIR/$u.instances/$(basename "$d").log"
    done
    # a unit killed by the timeout leaves its instances running: stop those (only ours)
    for port in $(seq "$BASE" $((BASE + 199))); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && redis-cli -p "$port" shutdown nosave >/dev/null 2>&1
    done
    rm -rf tests/sentinel/tmp/*
    echo "[unit] $u ok=$ok failed=$bad rc=$rc"
    TOK=$((TOK + ok)); TFAIL=$((TFAIL + bad))
done
echo "total ok=$TOK failed=$TFAIL logs=$LOGDIR"
