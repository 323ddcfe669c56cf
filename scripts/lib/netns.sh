# shellcheck shell=bash
# shellcheck disable=SC2034,SC2120 # NETNS_IP is for the callers; --kill is theirs to pass
# Pods in network namespaces, for scripts/quickstart --netns and the tests that need them
# (tests/integration/mesh_netns.sh, mesh_netns_restart.sh). Sourced, not run.
#
# A hub namespace PREFIX-hub holds a bridge with 10.244.0.1/16 (where the control plane
# listens); each pod PREFIX-KEY hangs on it by a veth pair created inside the two namespaces
# (nothing on the host), with its own address in 10.244.0.0/16, a route for the virtual IPs
# (240.240.0.0/16) through the hub and no other way out. `ip netns exec` shows the pod
# /etc/netns/PREFIX-KEY/resolv.conf as its /etc/resolv.conf: the cluster's search list and a
# nameserver (10.244.0.1) that nobody serves: the pod's sidecar answers DNS (`meshd
# iptables` sends port 53 to its DNS proxy), and other names fail.
#
#   netns_missing               why pods cannot be made here ("" when they can)
#   netns_init PREFIX           names the namespaces; sets NETNS_HUB
#   netns_hub                   creates the hub and its bridge
#   netns_pod KEY IP            creates pod KEY with address IP; sets NETNS[KEY], NETNS_IP[KEY]
#   netns_cleanup [--kill]      deletes them and their files (--kill: what runs in them first)
#   netns_test_setup PREFIX [TOOL...]  for the TAP tests (after tests/integration/lib.sh)
#
# Each function returns 1 after a message on stderr when a command fails.

declare -gA NETNS=() NETNS_IP=()
NETNS_PREFIX='' NETNS_HUB='' NETNS_MADE=()

netns_missing()
{
    local tool
    [ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces, iptables)"; return; }
    for tool in ip iptables-restore iptables-save setpriv; do
        command -v "$tool" >/dev/null 2>&1 || { echo "$tool not found"; return; }
    done
    echo ""
}

netns_init()
{
    NETNS_PREFIX=$1
    NETNS_HUB=$1-hub
    NETNS=() NETNS_IP=() NETNS_MADE=()
}

# _netns_add NAME: ip netns add, remembered for the cleanup.
_netns_add()
{
    ip netns add "$1" || { echo "netns: ip netns add $1 failed" >&2; return 1; }
    NETNS_MADE+=("$1")
    ip -n "$1" link set lo up
}

netns_hub()
{
    _netns_add "$NETNS_HUB" || return 1
    ip -n "$NETNS_HUB" link add br0 type bridge &&
        ip -n "$NETNS_HUB" addr add 10.244.0.1/16 dev br0 &&
        ip -n "$NETNS_HUB" link set br0 up ||
        { echo "netns: the bridge in $NETNS_HUB" >&2; return 1; }
}

netns_pod()
{
    local key=$1 ip=$2 ns=$NETNS_PREFIX-$1 peer
    peer=p${#NETNS[@]}
    _netns_add "$ns" || return 1
    NETNS[$key]=$ns
    NETNS_IP[$key]=$ip
    # virtual IPs need a route for connect() to start; iptables redirects them before it
    ip link add eth0 netns "$ns" type veth peer name "$peer" netns "$NETNS_HUB" &&
        ip -n "$NETNS_HUB" link set "$peer" master br0 up &&
        ip -n "$ns" addr add "$ip/16" dev eth0 &&
        ip -n "$ns" link set eth0 up &&
        ip -n "$ns" route add 240.240.0.0/16 via 10.244.0.1 ||
        { echo "netns: the network of pod $key ($ns)" >&2; return 1; }
    mkdir -p "/etc/netns/$ns" &&
        printf 'search default.svc.cluster.local svc.cluster.local cluster.local\n%s\n%s\n' \
            'nameserver 10.244.0.1' 'options timeout:2 attempts:1' >"/etc/netns/$ns/resolv.conf"
}

# netns_cleanup [--kill]: deletes the namespaces made here. A process still in one keeps
# its network alive until it exits; with --kill whatever still runs in them (what its
# caller did not stop: its own children) gets SIGKILL first.
netns_cleanup()
{
    local ns pid
    for ns in ${NETNS_MADE[@]+"${NETNS_MADE[@]}"}; do
        if [ "${1:-}" = --kill ]; then
            for pid in $(ip netns pids "$ns" 2>/dev/null); do
                kill -KILL "$pid" 2>/dev/null || true
            done
        fi
        ip netns del "$ns" 2>/dev/null || true
        rm -rf "/etc/netns/$ns"
    done
    # other namespaces' entries (a test running beside this one) keep it: not an error,
    # and under `set -e` (scripts/quickstart) a failed rmdir would abort the clean-up
    rmdir /etc/netns 2>/dev/null || true
    NETNS_MADE=()
    return 0
}

# netns_test_setup PREFIX [TOOL...]: the start of a test in namespaces (after lib.sh): skips
# it (77) when pods cannot be made here or a TOOL is missing; else names the namespaces
# PREFIX-*, makes the hub and deletes them all at exit.
netns_test_setup()
{
    local prefix=$1 why tool
    shift
    why=$(netns_missing)
    for tool in "$@"; do
        [ -n "$why" ] || command -v "$tool" >/dev/null 2>&1 || why="$tool not found"
    done
    if [ -z "$why" ]; then
        netns_init "$prefix"
        trap 'netns_cleanup; t_cleanup' EXIT
        netns_hub 2>"$T_DIR/netns.err" && return 0
        why="network namespaces: $(cat "$T_DIR/netns.err")"
        netns_cleanup
    fi
    echo "1..0 # SKIP $why"
    trap - EXIT
    rm -rf "$T_DIR"
    exit 77
}

# netns_test_cp [ADDR:PORT [ARGS...]]: for the TAP tests, `meshd --role=control` in the hub on
# ADDR:PORT (default 10.244.0.1:0, any port) with its data in $T_DIR/data and ARGS; waits
# for its ready line; sets CP_PID, CP_LOG, API (its port) and API_ADDR (ADDR:PORT). The
# first start copies the token for the sidecars (uid 1337) to $T_DIR/token.sidecar. Call it
# again to restart on the same data (kill the old one first). `ctl ARGS...` runs `meshd
# ctl` against it as the operator; `apply` applies the YAML on stdin (output in
# $T_DIR/apply.out).
NETNS_CP_SEQ=0
netns_test_cp()
{
    local listen=${1:-10.244.0.1:0}
    [ $# -gt 0 ] && shift
    NETNS_CP_SEQ=$((NETNS_CP_SEQ + 1))
    local ready=$T_DIR/cp-$NETNS_CP_SEQ.ready
    CP_LOG=$T_DIR/cp-$NETNS_CP_SEQ.log
    : >"$ready"
    ip netns exec "$NETNS_HUB" "$MESH_BIN" --role=control --data-dir "$T_DIR/data" \
        --listen "$listen" --admin 127.0.0.1:0 --ready-fd 3 "$@" 3>"$ready" >"$CP_LOG" 2>&1 &
    CP_PID=$!
    track "$CP_PID" meshd "control plane #$NETNS_CP_SEQ" "$CP_LOG"
    wait_for 20 ready_line_complete "$ready" "$CP_PID" || return 1
    API=$(sed -n 's/.* api=\([0-9]*\).*/\1/p' "$ready")
    [ -n "$API" ] || { echo "no api port in the ready line: $(cat "$ready")" >>"$CP_LOG"; return 1; }
    API_ADDR=${listen%:*}:$API
    [ -f "$T_DIR/token.sidecar" ] && return 0
    chmod a+rx "$T_DIR" &&
        install -o 1337 -g 1337 -m 600 "$T_DIR/data/token" "$T_DIR/token.sidecar"
}
ctl()
{
    ip netns exec "$NETNS_HUB" "$MESH_BIN" ctl "$@" --server "http://$API_ADDR" \
        --token-file "$T_DIR/data/token"
}
apply() { ctl apply -f - >"$T_DIR/apply.out" 2>&1; }
