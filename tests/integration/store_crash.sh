#!/bin/bash
# store_crash.sh: kill -9 in the middle of applies leaves the store consistent.
#
# Each round starts mesh-test-store applying a batch of N objects in a loop (every apply
# changes all of them, so every revision is N history rows written in one transaction),
# waits for its first commit, then kills it with SIGKILL at a random moment within the
# next apply, and checks the store: it opens (recovering the WAL), PRAGMA integrity_check
# is ok, and every revision is complete or absent (mesh-test-store check).
# Bounded: ROUNDS rounds; each loop makes at most 50 applies and is killed within seconds.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

TOOL=$T_TOOLS/mesh-test-store
[ -x "$TOOL" ] || bail_out "mesh-test-store not built: $TOOL"
ROUNDS=${STORE_CRASH_ROUNDS:-8}
N=500
DB=$T_DIR/data/store.db

mid_apply=0
for ((round = 1; round <= ROUNDS; round++)); do
    log=$T_DIR/apply-$round.log
    "$TOOL" apply-loop "$DB" "$N" 50 >"$log" 2>"$log.err" &
    pid=$!
    # the first commit tells how long one apply takes on this machine (sanitizers: longer)
    if ! wait_for 60 grep -q '^rev ' "$log"; then
        kill -s KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        not_ok "round $round: the apply loop commits within 60 s" "$(cat "$log.err")"
        continue
    fi
    ms=$(sed -n 's/^rev [0-9]* ms \([0-9]*\)$/\1/p' "$log" | head -n 1)
    delay=$((RANDOM % (ms + ms / 4 + 1)))
    sleep "$((delay / 1000)).$(printf '%03d' $((delay % 1000)))"
    kill -s KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    st=$?
    commits=$(grep -c '^rev ' "$log")
    last=$(tail -n 1 "$log")
    if [ "$st" -ne 137 ]; then
        not_ok "round $round: the apply loop was killed" "$(describe_status "$st")" \
            "$(cat "$log.err")"
        continue
    fi
    case $last in applying*) mid_apply=$((mid_apply + 1)) ;; esac
    if out=$("$TOOL" check "$DB" "$N" 2>&1); then
        ok "round $round: killed ${delay} ms after commit $commits (last: $last); consistent ($out)"
    else
        not_ok "round $round: store consistent after kill -9 ($commits commits, last: $last)" \
            "$out"
    fi
done
# an apply takes most of each loop's time: most kills land inside one
expect_le 1 "$mid_apply" "kills landed inside an apply in $mid_apply of $ROUNDS rounds"

# the files stay private through crashes and recoveries (a killed writer leaves its WAL)
"$TOOL" apply-loop "$DB" 10 1000 >"$T_DIR/modes.log" 2>&1 &
pid=$!
wait_for 60 grep -q '^rev ' "$T_DIR/modes.log"
kill -s KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
expect_eq "$(stat -c %a "$DB")" 600 "the database file is 0600"
expect_eq "$(stat -c %a "$DB-wal")" 600 "the -wal file is 0600"
expect_eq "$(stat -c %a "$DB-shm")" 600 "the -shm file is 0600"
expect_eq "$(stat -c %a "$(dirname "$DB")")" 700 "the data directory was created 0700"
