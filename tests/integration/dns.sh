#!/usr/bin/env bash
# The sidecar's DNS proxy: meshd with a snapshot "dns" table, dnsmasq as the pod's resolver,
# dig as the application. Mesh names get their virtual IPs (short, name.ns, FQDN, any case,
# A and AAAA, UDP and TCP), other names the resolver's answer, over the protocol they came
# by (an answer too big for UDP reaches a TCP client whole); a dead resolver gives SERVFAIL;
# SIGHUP's new table answers at once, a snapshot without one forwards everything. The
# default: no proxy for a sidecar on loopback; with --control it runs before the first
# snapshot. As root, the same in network namespaces with `meshd iptables`: an unmodified
# dig in the pod asks its resolver and meshd answers, on by default there (no --dns), also
# before any snapshot has come from a control plane.
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
# big.example (four TXT records of 200 bytes: too big for a UDP answer without EDNS) and
# nothing else, on a free port (ADDR:DNSMASQ_PORT) unless in a namespace (port 53 there).
BIG_TXT=$(head -c 200 /dev/zero | tr '\0' t)
start_dnsmasq()
{
    local name=$1 addr=$2 ns=${3:-} log=$T_DIR/dnsmasq-$1.log port tries pid k
    local run=() txt=()
    for k in a b c d; do txt+=("--txt-record=big.example,$k$BIG_TXT"); done
    [ -n "$ns" ] && run=(ip netns exec "$ns")
    for ((tries = 0; tries < 5; tries++)); do
        if [ -n "$ns" ]; then port=53; else port=$(free_port) || return 1; fi
        "${run[@]}" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
            --bind-interfaces --listen-address="$addr" --port="$port" --pid-file= \
            --user="$(id -un)" --group="$(id -gn)" --log-facility=- \
            --address=/external.example/192.0.2.44 "${txt[@]}" >"$log" 2>&1 &
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
    sed -n 's/.*dns proxy on 127\.0\.0\.1:\([0-9][0-9]*\) .*/\1/p' "$1" 2>/dev/null | head -n 1
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

# ---- TCP is forwarded over TCP: an answer too big for UDP -----------------------------------
# (forwarded over UDP, the TCP client would get the truncated answer: TC set, 2 records)
full=$(q "$DNS" +tcp +noedns +noall +comments big.example TXT)
expect_match "$full" "flags: qr aa rd ra;.* ANSWER: 4," \
    "a TCP query is forwarded over TCP: the whole answer, not the one truncated for UDP"
full=$(q "$DNS" +notcp +noedns +ignore +noall +comments big.example TXT)
expect_match "$full" "flags: qr aa tc rd ra;" \
    "over UDP the resolver's truncated answer is relayed as it was (TC set: dig retries on TCP)"
expect_eq "$(q "$DNS" +notcp +noedns +short big.example TXT | wc -l)" 4 \
    "... and dig's retry over TCP gets all four records"

# ---- a new table on SIGHUP ----------------------------------------------------------------
snapshot "$SNAP" 240.240.0.9
kill -HUP "$MESHD_PID"
reloaded() { [ "$(q "$DNS" +short reviews A)" = 240.240.0.9 ]; }
check "SIGHUP: the new virtual IP answers" wait_for 10 reloaded
stop_meshd

# ---- a snapshot without a dns table: everything is forwarded; a table on SIGHUP answers -------
NODNS=$T_DIR/nodns.json
write_snapshot "$NODNS" --endpoint 127.0.0.1:9
start_meshd "$NODNS" --dns 127.0.0.1:0 --dns-upstream "127.0.0.1:$UP" ||
    bail_out "meshd without a dns table starts"
wait_for 10 has_dns_port "$MESHD_LOG" || bail_out "meshd without a dns table logs its dns port"
DNS=$(dns_port_of "$MESHD_LOG")
expect_match "$(q "$DNS" +noall +comments reviews A)" "status: (REFUSED|NXDOMAIN)" \
    "no dns table: a mesh name is the resolver's to answer"
expect_eq "$(q "$DNS" +short external.example A)" 192.0.2.44 "no dns table: other names forwarded"
cp "$SNAP" "$NODNS"
kill -HUP "$MESHD_PID"
check "SIGHUP brings a table: the mesh name is answered" wait_for 10 reloaded
stop_meshd

# ---- the default on loopback: no DNS proxy (several sidecars on one host) -------------------
start_meshd "$SNAP" || bail_out "meshd without --dns starts"
expect_no_match "$(cat "$MESHD_LOG")" "dns proxy" \
    "without --dns, a sidecar on loopback (nothing redirects DNS to it) has no DNS proxy"
stop_meshd

# ---- --control: the proxy runs before the first snapshot and forwards every name ------------
early_log=$T_DIR/early.log
"$MESH_BIN" --role=sidecar --control "127.0.0.1:$(free_port)" --node default/early \
    --listen 127.0.0.1:0 --admin 127.0.0.1:0 --health 127.0.0.1:0 --concurrency 1 \
    --dns 127.0.0.1:0 --dns-upstream "127.0.0.1:$UP" >"$early_log" 2>&1 &
early=$!
track "$early" meshd "sidecar without a control plane" "$early_log"
wait_for 10 has_dns_port "$early_log" || bail_out "the sidecar's DNS proxy runs before a snapshot" \
    "$(tail -n 20 "$early_log")"
DNS=$(dns_port_of "$early_log")
expect_eq "$(q "$DNS" +short external.example A)" 192.0.2.44 \
    "before the first snapshot: other names are forwarded"
expect_match "$(q "$DNS" +noall +comments reviews A)" "status: (REFUSED|NXDOMAIN)" \
    "... and so are mesh names (no table yet)"
stop_meshd "$early"

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

# the sidecar runs as the proxy uid, so its own queries to 10.244.2.2:53 go out untouched;
# its outbound listener is the capture port 15001, so without --dns its DNS proxy is on
chmod a+rx "$T_DIR"
sed 's/"port":0,"route_config"/"port":15001,"route_config"/' "$SNAP" >"$T_DIR/pod.json"
chmod a+r "$T_DIR/pod.json"
ready=$T_DIR/meshd-pod.ready log=$T_DIR/meshd-pod.log
: >"$ready"
ip netns exec "$POD" setpriv --reuid 1337 --regid 1337 --clear-groups "$MESH_BIN" \
    --role=sidecar --snapshot "$T_DIR/pod.json" --concurrency 1 --ready-fd 3 \
    3>"$ready" >"$log" 2>&1 &
pod_meshd=$!
track "$pod_meshd" meshd "meshd in the pod" "$log"
wait_for 10 ready_line_complete "$ready" "$pod_meshd" || bail_out "meshd in the pod ready" \
    "$(tail -n 20 "$log")"
expect_match "$(cat "$log")" "dns proxy on 127\.0\.0\.1:15053 .*other names to 10\.244\.2\.2:53" \
    "in a pod (listener on 15001) the DNS proxy is on by default, upstream from resolv.conf"

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
expect_eq "$(ip netns exec "$POD" dig +time=8 +tries=1 +noedns +tcp +short big.example TXT 2>&1 |
    wc -l)" 4 "an answer too big for UDP reaches the pod's TCP client whole"
stop_meshd "$pod_meshd"

# a sidecar fed by a control plane (none answers here): no --dns, no --listen; its DNS proxy
# runs from the start and forwards every name until a snapshot comes
ctl_log=$T_DIR/meshd-pod-control.log
ip netns exec "$POD" setpriv --reuid 1337 --regid 1337 --clear-groups "$MESH_BIN" \
    --role=sidecar --control 10.244.2.2:1 --node default/pod --concurrency 1 \
    >"$ctl_log" 2>&1 &
pod_meshd=$!
track "$pod_meshd" meshd "meshd in the pod, waiting for a control plane" "$ctl_log"
pod_dns_up() { grep -q 'dns proxy on 127\.0\.0\.1:15053 ' "$ctl_log"; }
check "with --control and no snapshot yet, the pod's DNS proxy is on (default 15053)" \
    wait_for 10 pod_dns_up
expect_eq "$(ip netns exec "$POD" dig +time=8 +tries=1 +short external.example A 2>&1)" \
    192.0.2.44 "... an unmodified dig in the pod gets the resolver's answer through it"
expect_match "$(ip netns exec "$POD" dig +time=8 +tries=1 +noall +comments reviews A 2>&1)" \
    "status: (REFUSED|NXDOMAIN)" "... and mesh names are forwarded too (no table yet)"
expect_match "$(ip netns exec "$POD" curl -s --max-time 5 http://127.0.0.1:15021/healthz/ready)" \
    "not ready" "... while the sidecar is not ready"
out=$(ip netns exec "$POD" "$MESH_BIN" iptables --cleanup 2>&1)
expect_eq "$?" 0 "meshd iptables --cleanup in the pod"
expect_match "$(ip netns exec "$POD" dig +time=8 +tries=1 +noall +comments reviews A 2>&1)" \
    "status: (REFUSED|NXDOMAIN)" "after cleanup the pod's dig reaches the resolver itself"
stop_meshd "$pod_meshd"
