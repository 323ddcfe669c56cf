#!/usr/bin/env bash
# The sidecar's DNS proxy: meshd with a snapshot "dns" table, dnsmasq as the pod's resolver,
# dig as the application. Mesh names get their virtual IPs (short, name.ns, FQDN, any case,
# A and AAAA, UDP and TCP), other names the resolver's answer; a dead resolver gives
# SERVFAIL; SIGHUP's new table answers at once. As root, the same in network namespaces with
# `meshd iptables`: an unmodified dig in the pod asks its resolver and meshd answers.
# Needs dig and dnsmasq: skipped (77) otherwise.
source "$(dirname "$0")/lib.sh"

for tool in dig dnsmasq; do
    if ! have_cmd "$tool"; then
        echo "1..0 # SKIP $tool not found (Debian: bind9-dnsutils, dnsmasq-base)"
        trap - EXIT
        rm -rf "$T_DIR"
        exit 77
    fi
done

# snapshot FILE REVIEWS_VIP: the lib's snapshot plus a dns table
snapshot()
{
    local file=$1 vip=$2 dns
    write_snapshot "$file.base" --endpoint 127.0.0.1:9
    dns='"dns":['
    dns+="{\"name\":\"reviews\",\"addresses\":[\"$vip\"]},"
    dns+="{\"name\":\"reviews.default\",\"addresses\":[\"$vip\"]},"
    dns+="{\"name\":\"reviews.default.svc.cluster.local\",\"addresses\":[\"$vip\"]},"
    dns+='{"name":"db.example.internal","addresses":["240.240.0.8","fd00::8","240.240.0.18"]}]'
    sed '$ s/}$/,'"$dns"'}/' "$file.base" >"$file.tmp" && mv -f "$file.tmp" "$file"
    rm -f "$file.base"
}

# start_dnsmasq NAME ADDR [netns]: a resolver knowing external.example (192.0.2.44) and
# nothing else, on a free port (ADDR:DNSMASQ_PORT) unless in a namespace (port 53 there).
start_dnsmasq()
{
    local name=$1 addr=$2 ns=${3:-} log=$T_DIR/dnsmasq-$1.log port tries pid
    local run=()
    [ -n "$ns" ] && run=(ip netns exec "$ns")
    for ((tries = 0; tries < 5; tries++)); do
        if [ -n "$ns" ]; then port=53; else port=$(free_port) || return 1; fi
        "${run[@]}" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
            --bind-interfaces --listen-address="$addr" --port="$port" --pid-file= \
            --user="$(id -un)" --group="$(id -gn)" --log-facility=- \
            --address=/external.example/192.0.2.44 >"$log" 2>&1 &
        pid=$!
        track "$pid" other "dnsmasq $name" "$log"
        if wait_for 10 dnsmasq_answers "$addr" "$port" "$pid" "${run[@]}"; then
            DNSMASQ_PORT=$port
            return 0
        fi
        kill "$pid" 2>/dev/null
        wait_exit "$pid" 5
        [ -n "$ns" ] && break
    done
    bail_out "dnsmasq $name started" "$(tail -n 20 "$log")"
}

dnsmasq_answers()
{
    local addr=$1 port=$2 pid=$3
    shift 3
    alive "$pid" || return 125
    [ "$("$@" dig @"$addr" -p "$port" +short +time=1 +tries=1 external.example A)" = 192.0.2.44 ]
}

# q PORT ARGS...: dig against meshd's DNS proxy, bounded
q()
{
    local port=$1
    shift
    dig @127.0.0.1 -p "$port" +time=8 +tries=1 "$@" 2>&1
}

dns_port_of()
{
    sed -n 's/.*dns proxy on 127\.0\.0\.1:\([0-9][0-9]*\) .*/\1/p' "$1" | head -n 1
}

has_dns_port()
{
    [ -n "$(dns_port_of "$1")" ]
}

start_dnsmasq up 127.0.0.1
UP=$DNSMASQ_PORT
SNAP=$T_DIR/snap.json
snapshot "$SNAP" 240.240.0.7
start_meshd "$SNAP" --dns 127.0.0.1:0 --dns-upstream "127.0.0.1:$UP" ||
    bail_out "meshd with --dns starts"
wait_for 10 has_dns_port "$MESHD_LOG" || bail_out "meshd logs its dns port"
DNS=$(dns_port_of "$MESHD_LOG")

# ---- mesh names -----------------------------------------------------------------------
expect_eq "$(q "$DNS" +short reviews A)" 240.240.0.7 "the short name"
expect_eq "$(q "$DNS" +short reviews.default A)" 240.240.0.7 "name.ns"
expect_eq "$(q "$DNS" +short reviews.default.svc.cluster.local. A)" 240.240.0.7 "the FQDN"
expect_eq "$(q "$DNS" +short ReViEwS.DeFault A)" 240.240.0.7 "any case"
expect_eq "$(q "$DNS" +tcp +short reviews A)" 240.240.0.7 "over TCP"
expect_eq "$(q "$DNS" +short db.example.internal A | sort | tr '\n' ' ')" \
    "240.240.0.18 240.240.0.8 " "a ServiceEntry host: every IPv4 address"
expect_eq "$(q "$DNS" +short db.example.internal AAAA)" fd00::8 "AAAA"
full=$(q "$DNS" +noall +comments +answer reviews A)
expect_match "$full" "status: NOERROR" "NOERROR"
expect_match "$full" "flags: qr aa rd ra" "authoritative"
expect_match "$full" "reviews\.[[:space:]]+30[[:space:]]+IN[[:space:]]+A[[:space:]]+240\.240\.0\.7" \
    "TTL 30"
full=$(q "$DNS" +noall +comments reviews AAAA)
expect_match "$full" "status: NOERROR.*ANSWER: 0" "AAAA of an IPv4-only mesh name: NODATA"

# ---- other names: the resolver's answer -----------------------------------------------------
expect_eq "$(q "$DNS" +short external.example A)" 192.0.2.44 "other names are forwarded (UDP)"
expect_eq "$(q "$DNS" +tcp +short external.example A)" 192.0.2.44 \
    "other names are forwarded (TCP)"
# dnsmasq gives its --address names TTL 0: the answer is the resolver's, relayed as it was
direct=$(dig @127.0.0.1 -p "$UP" +time=8 +tries=1 +noall +answer external.example A 2>&1)
expect_eq "$(q "$DNS" +noall +answer external.example A)" "$direct" \
    "a forwarded answer is the resolver's own (TTL and all)"
expect_eq "$(q "$DNS" +short +bufsize=1232 external.example A)" 192.0.2.44 \
    "with EDNS (forwarded as sent)"

# ---- a new table on SIGHUP ----------------------------------------------------------------
snapshot "$SNAP" 240.240.0.9
kill -HUP "$MESHD_PID"
reloaded() { [ "$(q "$DNS" +short reviews A)" = 240.240.0.9 ]; }
check "SIGHUP: the new virtual IP answers" wait_for 10 reloaded
stop_meshd

# ---- a dead resolver: SERVFAIL after 5 s; mesh names still answered ----------------------
dead=$(free_port)
start_meshd "$SNAP" --dns 127.0.0.1:0 --dns-upstream "127.0.0.1:$dead" ||
    bail_out "meshd #2 starts"
wait_for 10 has_dns_port "$MESHD_LOG" || bail_out "meshd #2 logs its dns port"
DNS=$(dns_port_of "$MESHD_LOG")
expect_match "$(q "$DNS" +noall +comments external.example A)" "status: SERVFAIL" \
    "a resolver that never answers: SERVFAIL"
expect_eq "$(q "$DNS" +short reviews A)" 240.240.0.9 "mesh names without a resolver"
stop_meshd

# ---- a port already taken: --dns fails clearly ----------------------------------------------
out=$("$MESH_BIN" --role=sidecar --snapshot "$SNAP" --dns "127.0.0.1:$UP" 2>&1)
rc=$?
expect_eq "$rc" 1 "--dns on a taken port: exit 1"
expect_match "$out" "--dns 127\.0\.0\.1:$UP: .*udp 127\.0\.0\.1:$UP: Address already in use" \
    "--dns on a taken port: says why"

# ---- in network namespaces, through `meshd iptables` (root only) ---------------------------
netns_skip=
if [ "$(id -u)" -ne 0 ]; then
    netns_skip="needs root"
else
    for tool in ip iptables-restore setpriv; do
        have_cmd "$tool" || netns_skip="$tool not found"
    done
fi
if [ -n "$netns_skip" ]; then
    skip "DNS through iptables in a network namespace ($netns_skip)"
    exit 0
fi

POD=meshd-dns-$$-pod
PEER=meshd-dns-$$-dns
ns_cleanup()
{
    ip netns del "$POD" 2>/dev/null
    ip netns del "$PEER" 2>/dev/null
    rm -rf "/etc/netns/$POD"
    rmdir /etc/netns 2>/dev/null
}
trap 'ns_cleanup; t_cleanup' EXIT
ip netns add "$POD" || bail_out "ip netns add"
ip netns add "$PEER" || bail_out "ip netns add"
ip link add "mdn$$a" netns "$POD" type veth peer name "mdn$$b" netns "$PEER" || bail_out "veth"
ip -n "$POD" link set lo up
ip -n "$PEER" link set lo up
ip -n "$POD" addr add 10.244.2.1/24 dev "mdn$$a"
ip -n "$PEER" addr add 10.244.2.2/24 dev "mdn$$b"
ip -n "$POD" link set "mdn$$a" up
ip -n "$PEER" link set "mdn$$b" up
# `ip netns exec` shows /etc/netns/NAME/resolv.conf as the pod's /etc/resolv.conf
mkdir -p "/etc/netns/$POD"
printf 'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.244.2.2\n' \
    >"/etc/netns/$POD/resolv.conf"
start_dnsmasq cluster 10.244.2.2 "$PEER"

# the sidecar runs as the proxy uid, so its own queries to 10.244.2.2:53 go out untouched
chmod a+rx "$T_DIR"
chmod a+r "$SNAP"
ready=$T_DIR/meshd-pod.ready log=$T_DIR/meshd-pod.log
: >"$ready"
ip netns exec "$POD" setpriv --reuid 1337 --regid 1337 --clear-groups "$MESH_BIN" \
    --role=sidecar --snapshot "$SNAP" --concurrency 1 --dns 127.0.0.1:15053 --ready-fd 3 \
    3>"$ready" >"$log" 2>&1 &
pod_meshd=$!
track "$pod_meshd" meshd "meshd in the pod" "$log"
wait_for 10 ready_line_complete "$ready" "$pod_meshd" || bail_out "meshd in the pod ready" \
    "$(tail -n 20 "$log")"
expect_match "$(cat "$log")" "other names to 10\.244\.2\.2:53" \
    "the sidecar took its upstream from the pod's resolv.conf"

out=$(ip netns exec "$POD" "$MESH_BIN" iptables 2>&1)
expect_eq "$?" 0 "meshd iptables in the pod"
expect_eq "$(ip netns exec "$POD" dig +time=8 +tries=1 +short reviews A 2>&1)" 240.240.0.9 \
    "an unmodified dig in the pod: the mesh name answered by the sidecar (UDP)"
expect_eq "$(ip netns exec "$POD" dig +time=8 +tries=1 +short +tcp reviews A 2>&1)" \
    240.240.0.9 "...and over TCP"
expect_eq "$(ip netns exec "$POD" dig +time=8 +tries=1 +short external.example A 2>&1)" \
    192.0.2.44 "other names: through the sidecar to the pod's resolver"
expect_eq "$(ip netns exec "$POD" setpriv --reuid 1337 --regid 1337 --clear-groups \
    dig +time=8 +tries=1 +short external.example A 2>&1)" 192.0.2.44 \
    "the proxy uid asks the resolver directly"
expect_match "$(ip netns exec "$POD" setpriv --reuid 1337 --regid 1337 --clear-groups \
    dig +time=8 +tries=1 +noall +comments reviews A 2>&1)" "status: (REFUSED|NXDOMAIN)" \
    "...and the resolver knows no mesh name: the proxy uid is not captured"
out=$(ip netns exec "$POD" "$MESH_BIN" iptables --cleanup 2>&1)
expect_eq "$?" 0 "meshd iptables --cleanup in the pod"
expect_match "$(ip netns exec "$POD" dig +time=8 +tries=1 +noall +comments reviews A 2>&1)" \
    "status: (REFUSED|NXDOMAIN)" "after cleanup the pod's dig reaches the resolver itself"
stop_meshd "$pod_meshd"
