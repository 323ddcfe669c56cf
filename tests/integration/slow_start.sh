#!/usr/bin/env bash
# Slow start (DestinationRule warmupDurationSecs -> clusters[].slow_start_ms): an endpoint
# that a reload adds starts at a tenth of its weight and ramps up over the window, so it
# does not take its full share at once; without slow start it takes its share at once.
# The window is long (10 minutes) so the test never depends on timing.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${MESH_SRCDIR:-$(dirname "$0")/../..}/tests/integration/lib.sh"

start_backend old
start_backend new
OLD=${BACKEND_PORT[old]}
NEW=${BACKEND_PORT[new]}

snap() # snap FILE VERSION SLOW_START_MS ENDPOINT_PORTS...
{
    local file=$1 version=$2 slow=$3 eps= sep= p
    shift 3
    for p in "$@"; do
        eps+="$sep{\"address\":\"127.0.0.1\",\"port\":$p}"
        sep=,
    done
    cat >"$file.tmp" <<JSON
{"version":"$version","admin":{"address":"127.0.0.1","port":0},
 "listeners":[{"name":"main","address":"127.0.0.1","port":0,"route_config":"rc"}],
 "route_configs":[{"name":"rc","virtual_hosts":[{"name":"all","domains":["*"],
   "routes":[{"match":{"prefix":"/"},"route":{"cluster":"be"}}]}]}],
 "clusters":[{"name":"be","lb_policy":"round_robin","slow_start_ms":$slow,"endpoints":[$eps]}]}
JSON
    mv -f "$file.tmp" "$file"
}

# share_of_new N: how many of N requests the "new" backend answered (one curl, keep-alive)
share_of_new()
{
    local i
    for ((i = 0; i < $1; i++)); do echo "url = \"$(mesh_url /x)\""; done >"$T_DIR/curl.cfg"
    curl -s --max-time 60 -K "$T_DIR/curl.cfg" | grep -c "hello from new"
}

serving() # serving VERSION: does /config_dump show snapshot VERSION?
{
    curl -s "$(admin_url /config_dump)" | grep -q "\"version\": \"$1\""
}

reload_to() # reload_to VERSION: SIGHUP, then wait until the new snapshot serves
{
    kill -HUP "$MESHD_PID"
    wait_for 10 serving "$1"
}

for slow in 600000 0; do
    SNAP=$T_DIR/snap-$slow.json
    snap "$SNAP" "one-$slow" "$slow" "$OLD"
    start_meshd "$SNAP" || bail_out "meshd starts"
    expect_eq "$(share_of_new 20)" 0 "slow_start_ms $slow: before the reload only 'old' serves"
    snap "$SNAP" "two-$slow" "$slow" "$OLD" "$NEW"
    reload_to "two-$slow" || bail_out "the reload to two endpoints is applied"
    n=$(share_of_new 400)
    if [ "$slow" -gt 0 ]; then
        # a tenth of its weight: about 400 x 0.1/1.1 = 36; an even split would be 200
        [ "$n" -ge 1 ] && [ "$n" -le 100 ] &&
            ok "slow start: the endpoint the reload added got $n of 400 (warming up)" ||
            not_ok "slow start: the added endpoint got $n of 400 (want 1..100)"
    else
        expect_eq "$n" 200 "no slow start: round robin gives the added endpoint 200 of 400"
    fi
    stop_meshd "$MESHD_PID"
done
