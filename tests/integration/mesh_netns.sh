#!/usr/bin/env bash
# The mesh end to end in network namespaces (docs/sidecar.md, "A request across two
# sidecars"): a control plane in a hub namespace holding a bridge (10.244.0.1/16), pod A
# (10.244.1.1, a client) and two pods of reviews (10.244.2.1 v1, 10.244.3.1 v2), each with
# `meshd iptables` and a sidecar as uid 1337 that takes its snapshot from the control plane
# and registers its workload. No route leads out of 10.244.0.0/16.
#
# An unmodified `curl http://reviews:9080/` in pod A, as an ordinary user: its DNS query is
# answered by A's sidecar (its DNS proxy, on by default in a pod: no --dns in pod A), its
# connection to the virtual IP is redirected to A's 15001, A's sidecar routes it
# by the VirtualService and sends it over HTTP/2 to a reviews pod, whose iptables hand it
# to its sidecar's 15006, which gives it to the application on 127.0.0.1:9081 over
# HTTP/1.1. Checked: both sidecars counted it, the application answered, a WebSocket
# crosses both sidecars (101 and echoed frames), the 80/20 split
# holds over 400 requests, a new VirtualService applied with `meshd ctl apply` reaches A
# and moves everything to v2.
# Needs root, ip netns, iptables-restore, curl and setpriv: skipped (77) otherwise.
source "$(dirname "$0")/lib.sh"
# shellcheck source=scripts/lib/netns.sh
source "$MESH_SRCDIR/scripts/lib/netns.sh"

netns_test_setup "meshd-mn-$$" curl
HUB=$NETNS_HUB
netns_pod a 10.244.1.1 || bail_out "pod a"
netns_pod b1 10.244.2.1 || bail_out "pod b1"
netns_pod b2 10.244.3.1 || bail_out "pod b2"
declare -A NS=() IP=()
for k in a b1 b2; do NS[$k]=${NETNS[$k]} IP[$k]=${NETNS_IP[$k]}; done
# not for commands started with '&': $! must be the process itself, not a subshell
in_ns() { ip netns exec "$@"; }

# ---- the control plane in the hub ------------------------------------------------------
netns_test_cp 10.244.0.1:0 --debounce-ms 20 || bail_out "the control plane starts" "$(tail -n 20 "$CP_LOG")"

apply <<'YAML' || bail_out "the reviews Service and its routing apply" "$(cat "$T_DIR/apply.out")"
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080, targetPort: 9081}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 80}
    - {destination: {host: reviews, subset: v2}, weight: 20}
YAML

# ---- the pods ------------------------------------------------------------------------------
declare -A SC_PID=() SC_LOG=()
# start_pod KEY WORKLOAD LABELS SERVICE PORT [extra sidecar args]: `meshd iptables`, then the
# sidecar as uid 1337, registered as SERVICE with port http=PORT; waits for its ready line
# (the first snapshot applied). The pod carries security.istio.io/tlsMode=istio, as Istio's
# injector labels every pod whose traffic its sidecar intercepts: that is what makes other
# sidecars speak HTTP/2 to it.
start_pod()
{
    local k=$1 name=$2 labels=$3 svc=$4 port=$5
    shift 5
    local ns=${NS[$k]} ready=$T_DIR/sidecar-$k.ready
    in_ns "$ns" "$MESH_BIN" iptables >"$T_DIR/iptables-$k.out" 2>&1 ||
        bail_out "meshd iptables in pod $k" "$(cat "$T_DIR/iptables-$k.out")"
    SC_LOG[$k]=$T_DIR/sidecar-$k.log
    : >"$ready"
    ip netns exec "$ns" setpriv --reuid 1337 --regid 1337 --clear-groups \
        "$MESH_BIN" --role=sidecar --control "10.244.0.1:$API" \
        --control-token "$T_DIR/token.sidecar" --node "default/$name" --labels "$labels,security.istio.io/tlsMode=istio" \
        --concurrency 1 \
        --register --register-service "$svc" --register-port "http=$port" \
        --register-address "${IP[$k]}" --ready-fd 3 "$@" 3>"$ready" >"${SC_LOG[$k]}" 2>&1 &
    SC_PID[$k]=$!
    track "${SC_PID[$k]}" meshd "sidecar of pod $k" "${SC_LOG[$k]}"
    wait_for 20 ready_line_complete "$ready" "${SC_PID[$k]}" ||
        bail_out "the sidecar of pod $k applies its first snapshot" \
            "$(tail -n 20 "${SC_LOG[$k]}")"
}

for k in b1 b2; do
    v=v${k#b}
    ready=$T_DIR/app-$k.ready
    ip netns exec "${NS[$k]}" "$BACKEND_BIN" --listen 127.0.0.1:9081 --ready-file "$ready" \
        --name "reviews-$v" >"$T_DIR/app-$k.log" 2>&1 &
    track "$!" backend "reviews $v" "$T_DIR/app-$k.log"
    wait_for 10 test -s "$ready" || bail_out "reviews $v starts" "$(cat "$T_DIR/app-$k.log")"
    start_pod "$k" "reviews-$v" "app=reviews,version=$v" reviews 9081 --dns 127.0.0.1:15053
done
# no --dns: in a pod (the outbound listener on 15001) the DNS proxy is on, on 127.0.0.1:15053
start_pod a client "app=client" client 8080
expect_match "$(cat "${SC_LOG[a]}")" "dns proxy on 127\.0\.0\.1:15053" \
    "pod A's sidecar runs its DNS proxy by default (no --dns)"

# admin PODKEY PATH: the sidecar's admin (127.0.0.1:15000 in its pod; loopback is not captured)
admin() { in_ns "${NS[$1]}" curl -s --max-time 5 "http://127.0.0.1:15000$2"; }
stat_of() { admin "$1" /stats | sed -n "s/^$2: *\([0-9]*\)$/\1/p" | head -n 1; }
app_count() { in_ns "${NS[$1]}" curl -s --max-time 5 http://127.0.0.1:9081/__count; }
# the application's call: an ordinary user, plain curl, the service's name
app_curl()
{
    in_ns "${NS[a]}" setpriv --reuid 65534 --regid 65534 --clear-groups \
        curl -s --max-time 10 "$@"
}

# both reviews pods registered and pushed to A (its config lists their addresses)
a_knows_both()
{
    local d
    d=$(admin a /config_dump)
    [[ $d == *10.244.2.1* && $d == *10.244.3.1* ]]
}
wait_for 20 a_knows_both || bail_out "pod A's snapshot has both reviews pods" \
    "$(admin a /config_dump | head -c 2000)"

cluster_json=$(admin a /config_dump)
expect_match "$cluster_json" '"outbound\|9080\|v1\|reviews\.default\.svc\.cluster\.local"' \
    "A has the v1 subset cluster"
expect_match "$(admin b1 /config_dump)" '"destination_port": *9081' \
    "B's inbound route matches the application port"

# ---- one request ---------------------------------------------------------------------------
a_before=$(stat_of a downstream_rq_total)
b_before=$(( $(stat_of b1 downstream_rq_total) + $(stat_of b2 downstream_rq_total) ))
h2_before=$(( $(stat_of b1 downstream_cx_http2) + $(stat_of b2 downstream_cx_http2) ))
apps_before=$(( $(app_count b1) + $(app_count b2) ))
out=$(app_curl http://reviews:9080/)
expect_match "$out" "^hello from reviews-v[12]$" \
    "an unmodified curl http://reviews:9080/ in pod A gets reviews' answer"
expect_eq "$(( $(stat_of a downstream_rq_total) - a_before ))" 1 "A's sidecar took it (outbound)"
b_after=$(( $(stat_of b1 downstream_rq_total) + $(stat_of b2 downstream_rq_total) ))
expect_eq "$((b_after - b_before))" 1 "a reviews sidecar took it (inbound)"
check "between the sidecars it was HTTP/2" test \
    "$(( $(stat_of b1 downstream_cx_http2) + $(stat_of b2 downstream_cx_http2) ))" -gt "$h2_before"
expect_eq "$(( $(app_count b1) + $(app_count b2) - apps_before ))" 1 \
    "the reviews application served it (HTTP/1.1 on 127.0.0.1:9081)"

# ---- a WebSocket across the two sidecars ---------------------------------------------------
# Their hop is HTTP/2, which has no Upgrade: the upgrade goes over HTTP/1.1 to the reviews
# pod, whose sidecar passes it to the application, which answers 101 and echoes.
ws=$(in_ns "${NS[a]}" setpriv --reuid 65534 --regid 65534 --clear-groups \
    "$RAW_BIN" --timeout 10 reviews 9080 \
    'send:GET /ws HTTP/1.1\r\nHost: reviews:9080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n' \
    'expect:\r\n\r\n' 'send:\x81\x05hello' 'expect:hello' 2>/dev/null)
expect_match "$ws" $'^HTTP/1\\.1 101 ' "a WebSocket from pod A to reviews: 101 through both sidecars"
expect_match "$ws" $'\r\n\r\n\x81\x05hello$' "a WebSocket from pod A to reviews: its frames are echoed"

# ---- the canary split: 80/20 over 400 requests (one curl, one connection) -----------------
v1_before=$(app_count b1)
v2_before=$(app_count b2)
app_curl "http://reviews:9080/?n=[1-400]" >"$T_DIR/split.out"
v1=$(grep -c '^hello from reviews-v1$' "$T_DIR/split.out")
v2=$(grep -c '^hello from reviews-v2$' "$T_DIR/split.out")
expect_eq "$((v1 + v2))" 400 "400 answers, all from reviews"
# mean 320, sd 8: the bound is more than 6 sd either way
check "80/20: v1 answered $v1 of 400 (270..370)" test "$v1" -ge 270 -a "$v1" -le 370
expect_eq "$(( $(app_count b1) - v1_before ))/$(( $(app_count b2) - v2_before ))" "$v1/$v2" \
    "each application counted exactly the answers it gave"

# ---- a new VirtualService reaches A ----------------------------------------------------------
apply <<'YAML' || bail_out "the all-to-v2 VirtualService applies" "$(cat "$T_DIR/apply.out")"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v2}}
YAML
# polled on the answers: 20 in a row from v2 (with the old 80/20 that is a 1e-14 chance)
all_v2()
{
    [ "$(app_curl "http://reviews:9080/?p=[1-20]" | grep -c '^hello from reviews-v2$')" = 20 ]
}
check "the new VirtualService reached A's sidecar: everything goes to v2" wait_for 15 all_v2
app_curl "http://reviews:9080/?m=[1-100]" >"$T_DIR/v2.out"
expect_eq "$(grep -c '^hello from reviews-v2$' "$T_DIR/v2.out")" 100 "100 of 100 answers from v2"
synced() { [ "$(ctl proxy-status -o json | grep -o '"SYNCED"' | wc -l)" = 3 ]; }
check "proxy-status: the three sidecars SYNCED" wait_for 10 synced

for k in a b1 b2; do
    stop_meshd "${SC_PID[$k]}"
done
stop_meshd "$CP_PID"
