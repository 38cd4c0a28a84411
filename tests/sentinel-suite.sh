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
HERE=$(cd "$(dirname "$0")" && pwd)
PRISTINE=${REDIS_SUITE:-/tmp/redis-src-7.2}
WORK=${WORKDIR:-/tmp/sentinel-suite.$BASE}
LOGDIR=${LOGDIR:-$WORK/logs}
rm -rf "$WORK" && mkdir -p "$WORK" && cp -r "$PRISTINE"/. "$WORK"/ || exit 2
sed -i -e "s/^set ::sentinel_base_port .*/set ::sentinel_base_port $BASE/" \
       -e "s/^set ::redis_base_port .*/set ::redis_base_port $((BASE + 100))/" \
       -e "s/^set ::redis_port_count .*/set ::redis_port_count 100/" "$WORK/tests/instances.tcl"
# the pristine src/ entries may be symlinks: replace the links, never write through them
rm -f "$WORK/src/redis-server" "$WORK/src/redis-sentinel" || exit 2
cp "$BIN" "$WORK/src/redis-server" && ln -s "$SENT" "$WORK/src/redis-sentinel" || exit 2
for b in redis-cli redis-benchmark; do ln -sfn "$(command -v $b)" "$WORK/src/$b"; done
cd "$WORK" || exit 2
. "$HERE/instances-units.sh"
run_units sentinel "$LOGDIR" "$BASE" $((BASE + 199)) "$@"
