#!/usr/bin/env bash
# Unknown outbound destinations in network namespaces (docs/sidecar.md "Destinations outside
# the registry"): Istio's outboundTrafficPolicy, ALLOW_ANY and REGISTRY_ONLY. A hub namespace
# holds a bridge (10.244.0.1/16) and the control plane; pod A (10.244.1.1) has `meshd
# iptables` and a sidecar as uid 1337 fed by the control plane; an "external" namespace
# (10.244.9.1 and 10.244.9.2, no sidecar, in no registry) runs an HTTP server on :9080 and a
# TCP echo on :7000. The registry has a Service on port 9080 (so 9080 is an HTTP port for
# the sidecar) and a ServiceEntry for 10.244.9.2. No route leads out of 10.244.0.0/16.
#
# Checked with an unmodified curl and a bash /dev/tcp client in pod A, as an ordinary user:
# - ALLOW_ANY (the default): curl http://10.244.9.1:9080/ gets the external server's answer
#   through the sidecar (PassthroughCluster, passthrough_rq_total); raw TCP to :7000 is
#   echoed byte for byte (passthrough_cx_total);
# - the loop guard: curl straight to the sidecar's 127.0.0.1:15001 for an unknown host gets
#   a 502 saying why, the sidecar logs it, counts it and keeps serving;
# - a Sidecar resource with outboundTrafficPolicy REGISTRY_ONLY, applied to the control
#   plane, reaches A: the same curl gets 502 "not in the mesh registry" (blackhole_rq_total),
#   the raw TCP connection is closed at once without a byte (blackhole_cx_total), and the
#   ServiceEntry's address still answers; deleting the Sidecar brings ALLOW_ANY back;
# - the control plane restarted with --outbound-traffic-policy REGISTRY_ONLY (the mesh-wide
#   default) makes the reconnected sidecar refuse again.
# Needs root, ip netns, iptables-restore, curl and setpriv: skipped (77) otherwise.
source "$(dirname "$0")/lib.sh"

# shellcheck source=scripts/lib/netns.sh
source "$MESH_SRCDIR/scripts/lib/netns.sh"

netns_test_setup "meshd-op-$$" curl
HUB=$NETNS_HUB
netns_pod a 10.244.1.1 || bail_out "pod a"
netns_pod x 10.244.9.1 || bail_out "the external namespace"
declare -A NS=([a]=${NETNS[a]} [x]=${NETNS[x]})
ip -n "${NS[x]}" addr add 10.244.9.2/16 dev eth0 || bail_out "the second external address"
in_ns() { ip netns exec "$@"; }

# ---- the external server: HTTP on :9080, a byte echo on :7000 ------------------------------
ready=$T_DIR/external.ready
ip netns exec "${NS[x]}" "$BACKEND_BIN" --listen 0.0.0.0:9080 --echo-listen 0.0.0.0:7000 \
    --ready-file "$ready" --name external >"$T_DIR/external.log" 2>&1 &
track "$!" backend "the external server" "$T_DIR/external.log"
wait_for 10 test -s "$ready" || bail_out "the external server starts" "$(cat "$T_DIR/external.log")"

# ---- the control plane in the hub ------------------------------------------------------------
netns_test_cp 10.244.0.1:0 --debounce-ms 20 || bail_out "the control plane starts" "$(tail -n 20 "$CP_LOG")"

apply <<'YAML' || bail_out "the registry applies" "$(cat "$T_DIR/apply.out")"
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: known, namespace: default}
spec:
  hosts: [known.external]
  addresses: [10.244.9.2]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 10.244.9.2}]
YAML

# ---- pod A -----------------------------------------------------------------------------------
in_ns "${NS[a]}" "$MESH_BIN" iptables >"$T_DIR/iptables.out" 2>&1 ||
    bail_out "meshd iptables in pod A" "$(cat "$T_DIR/iptables.out")"
ready=$T_DIR/sidecar.ready SC_LOG=$T_DIR/sidecar.log
: >"$ready"
ip netns exec "${NS[a]}" setpriv --reuid 1337 --regid 1337 --clear-groups \
    "$MESH_BIN" --role=sidecar --control "10.244.0.1:$API" \
    --control-token "$T_DIR/token.sidecar" --node default/client --labels app=client \
    --concurrency 1 --ready-fd 3 3>"$ready" >"$SC_LOG" 2>&1 &
SC_PID=$!
track "$SC_PID" meshd "the sidecar of pod A" "$SC_LOG"
wait_for 20 ready_line_complete "$ready" "$SC_PID" ||
    bail_out "the sidecar applies its first snapshot" "$(tail -n 20 "$SC_LOG")"

admin() { in_ns "${NS[a]}" curl -s --max-time 5 "http://127.0.0.1:15000$1"; }
stat_of() { admin /stats | sed -n "s/^$1: *\([0-9]*\)$/\1/p" | head -n 1; }
# the application: an ordinary user, plain curl
app() { in_ns "${NS[a]}" setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }
app_curl() { app curl -s --max-time 10 "$@"; }
# tcp_ping: a raw TCP exchange with the echo port: prints what came back (empty on a close)
tcp_ping()
{
    app bash -c 'exec 3<>/dev/tcp/10.244.9.1/7000 || exit 1
        printf "ping-%s" "$1" >&3
        IFS= read -r -t 5 -n 9 line <&3
        printf "%s" "$line"' _ "$1"
}

expect_match "$(admin /config_dump)" '"action": *"passthrough"' \
    "the pushed snapshot passes unknown destinations through (ALLOW_ANY, the default)"

# ---- ALLOW_ANY -----------------------------------------------------------------------------
rq0=$(stat_of passthrough_rq_total)
out=$(app_curl -i http://10.244.9.1:9080/)
expect_eq "$(status_of "$out") $(body_of "$out")" "200 hello from external" \
    "ALLOW_ANY: curl to an external server's IP gets its answer"
expect_eq "$(( $(stat_of passthrough_rq_total) - rq0 ))" 1 \
    "... through the sidecar's PassthroughCluster (passthrough_rq_total)"
cx0=$(stat_of passthrough_cx_total)
expect_eq "$(tcp_ping 1234)" "ping-1234" "ALLOW_ANY: raw TCP to an unknown ip:port is forwarded byte for byte"
expect_eq "$(( $(stat_of passthrough_cx_total) - cx0 ))" 1 "... counted in passthrough_cx_total"

# ---- the loop guard: straight to the sidecar's own listener ----------------------------------
loop0=$(stat_of passthrough_loop)
out=$(app_curl -i -H 'Host: unknown.example' http://127.0.0.1:15001/)
expect_eq "$(status_of "$out")" 502 "loop guard: an unknown host sent straight to 15001 gets 502"
expect_match "$(body_of "$out")" "no original destination.*would loop" "... saying why"
expect_eq "$(( $(stat_of passthrough_loop) - loop0 ))" 1 "... counted in passthrough_loop"
expect_match "$(cat "$SC_LOG")" 'warn .*unknown\.example.*would loop' "... and logged"
check "the sidecar is still up" alive "$SC_PID"
expect_eq "$(app_curl http://10.244.9.1:9080/)" "hello from external" "and still passes traffic through"

# ---- REGISTRY_ONLY through a Sidecar resource -----------------------------------------------
apply <<'YAML' || bail_out "the REGISTRY_ONLY Sidecar applies" "$(cat "$T_DIR/apply.out")"
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
YAML
refused() { [ "$(app_curl -o /dev/null -w '%{http_code}' http://10.244.9.1:9080/)" = 502 ]; }
check "REGISTRY_ONLY reaches the sidecar (pushed): curl to the external IP gets 502" \
    wait_for 15 refused
bh0=$(stat_of blackhole_rq_total)
out=$(app_curl -i http://10.244.9.1:9080/)
expect_eq "$(status_of "$out")" 502 "REGISTRY_ONLY: 502"
expect_match "$(body_of "$out")" "not in the mesh registry" "... saying the destination is not in the mesh registry"
expect_eq "$(( $(stat_of blackhole_rq_total) - bh0 ))" 1 "... counted in blackhole_rq_total"
expect_eq "$(app_curl http://10.244.9.2:9080/)" "hello from external" \
    "REGISTRY_ONLY: the ServiceEntry's address is in the registry and still answers"
cx0=$(stat_of blackhole_cx_total)
expect_eq "$(tcp_ping 5678)" "" "REGISTRY_ONLY: raw TCP to an unknown ip:port is closed without a byte"
expect_eq "$(( $(stat_of blackhole_cx_total) - cx0 ))" 1 "... counted in blackhole_cx_total"

# ---- and back --------------------------------------------------------------------------------
ctl delete Sidecar default -n default >"$T_DIR/delete.out" 2>&1 ||
    bail_out "the Sidecar can be deleted" "$(cat "$T_DIR/delete.out")"
passes() { [ "$(app_curl http://10.244.9.1:9080/)" = "hello from external" ]; }
check "without the Sidecar, ALLOW_ANY is back" wait_for 15 passes
expect_eq "$(tcp_ping 9)" "ping-9" "raw TCP passes again"

# ---- the mesh-wide default: the control plane's --outbound-traffic-policy ---------------------
stop_meshd "$CP_PID"
netns_test_cp "10.244.0.1:$API" --outbound-traffic-policy REGISTRY_ONLY ||
    bail_out "the control plane restarts with --outbound-traffic-policy" "$(tail -n 20 "$CP_LOG")"
check "--outbound-traffic-policy REGISTRY_ONLY on the control plane: the reconnected sidecar refuses" \
    wait_for 20 refused
expect_eq "$(app_curl http://10.244.9.2:9080/)" "hello from external" \
    "... while the registry's ServiceEntry still answers"

stop_meshd "$SC_PID"
stop_meshd "$CP_PID"
