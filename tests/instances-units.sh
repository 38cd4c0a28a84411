# Sourced by tests/cluster-legacy.sh and tests/sentinel-suite.sh: run the units of one of Redis's
# instance-based suites (tests/cluster with runtest-cluster, tests/sentinel with
# runtest-sentinel) from the current directory, a scratch copy of the suite, one runtest per
# unit (fresh instances each), and print per-unit counts and a total.
#
# run_units SUITE LOGDIR PORT_FIRST PORT_LAST [UNIT ...]
#   SUITE        cluster or sentinel (tests/SUITE, ./runtest-SUITE)
#   PORT_FIRST..PORT_LAST  the instances' ports: whatever a unit killed by the timeout left
#                running there is shut down
#   UNIT         unit names without .tcl (default: all of tests/SUITE/tests)
# Environment: UNIT_TIMEOUT (default 900 s).
# Output: "[unit] NAME ok=N failed=M rc=R" per unit (a unit stops at its first failed test,
#   except in a loop such as cluster's 03-failover-loop) and "total ok=N failed=M logs=LOGDIR".
run_units() {
    local suite=$1 logdir=$2 first=$3 last=$4 u log rc ok bad d port tok=0 tfail=0
    shift 4
    local units=("$@")
    if [ ${#units[@]} -eq 0 ]; then
        mapfile -t units < <(cd "tests/$suite/tests" && ls *.tcl | sed 's/\.tcl$//')
    fi
    mkdir -p "$logdir" "tests/$suite/tmp"
    for u in "${units[@]}"; do
        log="$logdir/$u.log"
        TERM=dumb timeout -k 10 "${UNIT_TIMEOUT:-900}" "./runtest-$suite" --single "$u.tcl" --dont-clean >"$log" 2>&1
        rc=$?
        # a failed test prints "HH:MM:SS> name: FAILED: ..." (an error also "caught an error")
        ok=$(grep -c ': OK$' "$log"); bad=$(grep -cE '^[0-9:]+> .*: FAILED' "$log")
        [ "$bad" -eq 0 ] && bad=$(grep -c 'caught an error' "$log")
        [ $rc -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
        # keep the instance logs of the unit
        mkdir -p "$logdir/$u.instances"
        for d in "tests/$suite/tmp/"*_*; do
            [ -f "$d/log.txt" ] && cp "$d/log.txt" "$logdir/$u.instances/$(basename "$d").log"
        done
        # a unit killed by the timeout leaves its instances running: stop those (only ours)
        for port in $(seq "$first" "$last"); do
            redis-cli -p "$port" ping >/dev/null 2>&1 && redis-cli -p "$port" shutdown nosave >/dev/null 2>&1
        done
        rm -rf "tests/$suite/tmp/"*
        echo "[unit] $u ok=$ok failed=$bad rc=$rc"
        tok=$((tok + ok)); tfail=$((tfail + bad))
    done
    echo "total ok=$tok failed=$tfail logs=$logdir"
}
