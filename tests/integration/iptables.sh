#!/usr/bin/env bash
# `meshd iptables` in network namespaces: a pod (10.244.1.1) and a peer (10.244.1.2) joined by
# a veth pair, no route anywhere else. The pod's outbound TCP lands on its 15001, inbound on
# its 15006, the proxy's uid and gid go out untouched, the sidecar's own ports are not
# captured, and --cleanup gives back exactly the nat table there was. Needs root, ip netns,
# iptables, curl and setpriv: skipped (77) otherwise.
source "$(dirname "$0")/lib.sh"

for tool in ip iptables-save iptables-restore curl setpriv; do
    if ! have_cmd "$tool"; then
        echo "1..0 # SKIP $tool not found"
        trap - EXIT
        exit 77
    fi
done
if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root (network namespaces, iptables)"
    trap - EXIT
    exit 77
fi

POD=meshd-ipt-$$-pod
PEER=meshd-ipt-$$-peer
ns_cleanup()
{
    ip netns del "$POD" 2>/dev/null
    ip netns del "$PEER" 2>/dev/null
}
trap 'ns_cleanup; t_cleanup' EXIT
if ! ip netns add "$POD" 2>"$T_DIR/netns.err"; then
    echo "1..0 # SKIP ip netns add failed: $(cat "$T_DIR/netns.err")"
    trap - EXIT
    rm -rf "$T_DIR"
    exit 77
fi
ip netns add "$PEER" || bail_out "ip netns add $PEER"
# the veth ends are created straight inside the namespaces: nothing appears on the host
ip link add "mip$$a" netns "$POD" type veth peer name "mip$$b" netns "$PEER" ||
    bail_out "veth pair"
ip -n "$POD" link set lo up
ip -n "$PEER" link set lo up
ip -n "$POD" addr add 10.244.1.1/24 dev "mip$$a"
ip -n "$PEER" addr add 10.244.1.2/24 dev "mip$$b"
ip -n "$POD" link set "mip$$a" up
ip -n "$PEER" link set "mip$$b" up

in_pod() { ip netns exec "$POD" "$@"; }
in_peer() { ip netns exec "$PEER" "$@"; }
save_nat() { in_pod iptables-save -t nat | grep -v '^#'; }

# ns_backend NS NAME ADDR:PORT: mesh-test-backend inside a namespace ("hello from NAME").
ns_backend()
{
    local ns=$1 name=$2 listen=$3
    local ready=$T_DIR/backend-$name.ready log=$T_DIR/backend-$name.log
    ip netns exec "$ns" "$BACKEND_BIN" --listen "$listen" --ready-file "$ready" --name "$name" \
        >"$log" 2>&1 &
    track "$!" backend "backend $name" "$log"
    wait_for 10 test -s "$ready" || bail_out "backend $name ready" "$(tail -n 20 "$log")"
}

# get NS [setpriv args...] -- URL: the body of GET URL from inside NS.
get()
{
    local ns=$1
    shift
    local priv=()
    while [ "$1" != -- ]; do
        priv+=("$1")
        shift
    done
    shift
    if [ ${#priv[@]} -gt 0 ]; then
        ip netns exec "$ns" setpriv "${priv[@]}" "${CURL[@]}" --max-time 5 "$@" 2>&1
    else
        ip netns exec "$ns" "${CURL[@]}" --max-time 5 "$@" 2>&1
    fi
}

ns_backend "$POD" outbound 127.0.0.1:15001   # what the pod's 15001 answers: outbound capture
ns_backend "$POD" inbound 0.0.0.0:15006      # inbound capture
ns_backend "$POD" health 0.0.0.0:15021       # a sidecar port: never captured
ns_backend "$POD" app 0.0.0.0:8080           # the application itself
ns_backend "$PEER" peer 10.244.1.2:80        # the real destination

before=$(save_nat)
expect_eq "$(get "$POD" -- http://10.244.1.2/)" "hello from peer" \
    "the network works before any rule"

# ---- errors before anything changes -----------------------------------------
out=$(in_pod setpriv --reuid 65534 --regid 65534 --clear-groups "$MESH_BIN" iptables 2>&1)
rc=$?
expect_eq "$rc" 1 "not root: exit 1"
expect_match "$out" "needs root" "not root: says why"
out=$(in_pod env PATH=/nonexistent "$MESH_BIN" iptables 2>&1)
rc=$?
expect_eq "$rc" 1 "no iptables: exit 1"
expect_match "$out" "iptables-restore or iptables-save not found" "no iptables: says which tool"
out=$(in_pod "$MESH_BIN" iptables --exclude-outbound-cidrs 10.0.0.0/40 2>&1)
rc=$?
expect_eq "$rc" 2 "bad flag: exit 2"
expect_eq "$(save_nat)" "$before" "errors changed nothing"

# ---- install --------------------------------------------------------------------
dry=$("$MESH_BIN" iptables --dry-run --exclude-inbound-ports 9090)
expect_match "$dry" "-A MESH_OUTPUT -j MESH_REDIRECT" "--dry-run prints the rules"
expect_eq "$(save_nat)" "$before" "--dry-run changed nothing"

out=$(in_pod "$MESH_BIN" iptables --exclude-inbound-ports 9090 2>&1)
rc=$?
expect_eq "$rc" 0 "meshd iptables: exit 0"
installed=$(save_nat)
expect_match "$installed" "-A OUTPUT -j MESH_OUTPUT" "iptables-save shows the outbound jump"
expect_match "$installed" "-A PREROUTING -p tcp -j MESH_INBOUND" \
    "iptables-save shows the inbound jump"
expect_match "$installed" "REDIRECT --to-ports 15001" "iptables-save shows the 15001 redirect"
expect_match "$installed" "--uid-owner 1337 -j RETURN" "iptables-save shows the proxy uid"
# every rule of the dry run is there (iptables-save adds "-m tcp"/"-m udp" and reorders
# -o/-s/-d, so compare counts per chain)
for chain in MESH_INBOUND MESH_OUTPUT MESH_OUTPUT_DNS MESH_REDIRECT MESH_IN_REDIRECT; do
    expect_eq "$(grep -c "^-A $chain " <<<"$installed")" "$(grep -c "^-A $chain " <<<"$dry")" \
        "$chain: as many rules as --dry-run printed"
done

# ---- outbound ---------------------------------------------------------------------
expect_eq "$(get "$POD" -- http://10.244.1.2/)" "hello from outbound" \
    "the pod's curl to 10.244.1.2:80 lands on its 15001"
expect_eq "$(get "$POD" -- http://10.244.1.2:7777/x)" "hello from outbound" "...any port"
expect_eq "$(get "$POD" --reuid 1337 --regid 1337 --clear-groups -- http://10.244.1.2/)" \
    "hello from peer" "uid 1337 (the proxy) goes out untouched"
expect_eq "$(get "$POD" --reuid 1338 --regid 1337 --clear-groups -- http://10.244.1.2/)" \
    "hello from peer" "gid 1337 alone goes out untouched too"
expect_eq "$(get "$POD" --reuid 1338 --regid 1338 --clear-groups -- http://10.244.1.2/)" \
    "hello from outbound" "another uid is captured"
expect_eq "$(get "$POD" -- http://127.0.0.1:8080/)" "hello from app" \
    "the pod's loopback is left alone"
expect_eq "$(get "$POD" -- http://10.244.1.1:8080/)" "hello from app" \
    "the pod calling its own address is left alone"

# ---- inbound ----------------------------------------------------------------------
expect_eq "$(get "$PEER" -- http://10.244.1.1:8080/)" "hello from inbound" \
    "the peer's call to the pod's 8080 lands on its 15006"
expect_eq "$(get "$PEER" -- http://10.244.1.1:15021/)" "hello from health" \
    "the sidecar's own 15021 is not captured"
ns_backend "$POD" excluded 0.0.0.0:9090
expect_eq "$(get "$PEER" -- http://10.244.1.1:9090/)" "hello from excluded" \
    "--exclude-inbound-ports 9090 is not captured"

# ---- again, then cleanup ------------------------------------------------------------
in_pod "$MESH_BIN" iptables --exclude-inbound-ports 9090 >/dev/null 2>&1
expect_eq "$(save_nat)" "$installed" "a second install replaces the first (no doubled rules)"
out=$(in_pod "$MESH_BIN" iptables --cleanup --dry-run 2>&1)
expect_match "$out" "-X MESH_OUTPUT" "--cleanup --dry-run prints the removal"
expect_eq "$(save_nat)" "$installed" "--cleanup --dry-run changed nothing"
out=$(in_pod "$MESH_BIN" iptables --cleanup 2>&1)
rc=$?
expect_eq "$rc" 0 "--cleanup: exit 0"
expect_eq "$(save_nat)" "$before" "--cleanup restores the nat table"
out=$(in_pod "$MESH_BIN" iptables --cleanup 2>&1)
rc=$?
expect_eq "$rc" 0 "--cleanup twice: exit 0"
expect_eq "$(save_nat)" "$before" "--cleanup twice: still the original table"
expect_eq "$(get "$POD" -- http://10.244.1.2/)" "hello from peer" \
    "after cleanup the pod reaches the peer directly"

