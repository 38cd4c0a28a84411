#!/usr/bin/env bash
# Run Redis 7.0's legacy cluster suite (tests/cluster, runtest-cluster) against a server binary,
# one runtest-cluster per unit (fresh 20 instances each), and print per-unit counts.
#
# Usage: tests/cluster-legacy.sh SERVER_BINARY BASE_PORT [UNIT_PATTERN ...]
#   SERVER_BINARY  ferrous-server or redis-server; copied in as src/redis-server of a scratch
#                  copy of the suite (REDIS_SUITE, default /tmp/redis-src-7.0, never modified)
#   BASE_PORT      the 20 instances use BASE_PORT..BASE_PORT+199 and their bus ports (+10000);
#                  7.0's instances.tcl has no --base-port option, so the scratch copy's
#                  instances.tcl gets the base port and port count edited in (nothing else)
# Environment: WORKDIR (scratch copy, default /tmp/cluster-legacy.BASE_PORT),
#   LOGDIR (default WORKDIR/logs), UNIT_TIMEOUT (default 900 s)
# Output: "[unit] NAME ok=N failed=M" per unit (a unit stops at its first failed test, except
#   in a loop such as 03-failover-loop's) and a total.
set -u
[ $# -ge 2 ] && [ -x "$1" ] || { echo "usage: $0 SERVER_BINARY BASE_PORT [UNIT ...]" >&2; exit 2; }
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1"); BASE=$2; shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
PRISTINE=${REDIS_SUITE:-/tmp/redis-src-7.0}
WORK=${WORKDIR:-/tmp/cluster-legacy.$BASE}
LOGDIR=${LOGDIR:-$WORK/logs}
rm -rf "$WORK" && mkdir -p "$WORK" && cp -r "$PRISTINE"/. "$WORK"/ || exit 2
mkdir -p "$LOGDIR" "$WORK/tests/cluster/tmp"
sed -i -e "s/^set ::redis_base_port .*/set ::redis_base_port $BASE/" \
       -e "s/^set ::redis_port_count .*/set ::redis_port_count 200/" "$WORK/tests/instances.tcl"
# the pristine src/redis-server may be a symlink: replace the link, never write through it
rm -f "$WORK/src/redis-server" && cp "$BIN" "$WORK/src/redis-server" || exit 2
for b in redis-cli redis-benchmark; do ln -sfn "$(command -v $b)" "$WORK/src/$b"; done
cd "$WORK" || exit 2
. "$HERE/instances-units.sh"
run_units cluster "$LOGDIR" "$BASE" $((BASE + 199)) "$@"
