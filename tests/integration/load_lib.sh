# shellcheck shell=bash
# Steady load through a client's sidecar while something happens (a control plane killed, pods
# restarted), for rolling_restart.sh and mesh_netns_restart.sh. Sourced after lib.sh.
#
# The test sets RATE (requests/s per loader), BATCH (requests per curl run) and MAX_BATCHES
# (the bound of each loader), writes $T_DIR/batch.cfg (BATCH curl `url`/`output` blocks) and
# defines:
#   load_batch FILE   one curl run of batch.cfg at $RATE/s appending "CODE WHO" per request
#                     to FILE (CODE 000 = a connection error; WHO names the serving pod)
#   requests_a        requests the client's sidecar has received so far (its stats)
#
#   start_load TAG    two loaders until stop_load TAG (or MAX_BATCHES runs); sets LOAD_PIDS
#   more_load N       waits until the sidecar has received N more requests
#   stop_load TAG     lets the load run on a little, stops it and sets TOTAL, FAILED
#                     (non-2xx and connection errors) and SERVED ("WHO=N ..." sorted)

# requests_above N: the client's sidecar has received more than N requests (for wait_for)
requests_above() { local n; n=$(requests_a); [ -n "$n" ] && [ "$n" -gt "$1" ]; }
more_load() { wait_for 20 requests_above $(($(requests_a) + $1)); }

# loader TAG K: curl runs until the stop file (0) or the bound (1: the bound ended it)
loader()
{
    local i
    for ((i = 0; i < MAX_BATCHES; i++)); do
        [ -e "$T_DIR/stop-$1" ] && return 0
        load_batch "$T_DIR/load-$1-$2.out"
    done
    return 1
}

start_load()
{
    local k
    LOAD_PIDS=()
    for k in 1 2; do
        : >"$T_DIR/load-$1-$k.out"
        loader "$1" "$k" &
        LOAD_PIDS+=($!)
        track "$!" other "load $1-$k" /dev/null
    done
    more_load 50 || not_ok "the load $1 starts"
}

stop_load()
{
    local pid st=0
    more_load "$RATE" || not_ok "the load $1 goes on after the event"
    touch "$T_DIR/stop-$1"
    for pid in "${LOAD_PIDS[@]}"; do
        wait_exit "$pid" 30 || not_ok "loader $1 stops"
        [ "${T_STATUS[$pid]:-1}" -eq 0 ] || st=1
    done
    expect_eq "$st" 0 "load $1: ran until the test stopped it (it covered the whole event)"
    cat "$T_DIR"/load-"$1"-*.out >"$T_DIR/load-$1.all"
    TOTAL=$(wc -l <"$T_DIR/load-$1.all")
    FAILED=$(grep -cv '^2[0-9][0-9] ' "$T_DIR/load-$1.all")
    SERVED=$(awk '$2 != "" {print $2}' "$T_DIR/load-$1.all" | sort | uniq -c |
        awk '{printf "%s=%s ", $2, $1}')
    diag "load $1: $TOTAL requests, $FAILED failed; served by: $SERVED"
}
