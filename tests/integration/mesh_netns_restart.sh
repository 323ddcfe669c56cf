#!/usr/bin/env bash
# tests/integration/mesh_netns_restart.sh: no request is lost when the control plane or the
# pods of a service restart, with pods in network namespaces (docs/sidecar.md "Shutdown").
#
# As in mesh_netns.sh (scripts/lib/netns.sh): the control plane in the hub (10.244.0.1),
# pod A (10.244.1.1) with a client sidecar, service b's two pods B1 (10.244.2.1) and B2
# (10.244.3.1), each a test backend on 127.0.0.1:9081 behind `meshd iptables` and a sidecar
# (uid 1337) that registers it. The load: two loops of an unmodified curl in pod A, as an
# ordinary user, calling http://b:9080/ by name (DNS and connection through A's sidecar,
# HTTP/2 to B's sidecars), each request one line "CODE BACKEND", bounded in count and time.
#  1. kill -9 of the control plane under load, restarted on its address: 0 failed requests,
#     every sidecar reconnects and proxy-status shows the three SYNCED again, A still
#     balances over both pods (the leases came back from the store).
#  2. Rolling restart of b under load: each pod's sidecar gets SIGTERM (it deregisters,
#     serves on until every proxy applied that, drains, exits 0) and is started again with
#     --register; the next pod goes once A balances over the restarted one again. 0 failed
#     requests, and both pods served.
# Each time also 0 retries at A (a retry would hide a request sent to a pod that was gone).
# Needs root, ip netns, iptables-restore, setpriv and curl: skipped (77) otherwise.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=scripts/lib/netns.sh
source "$MESH_SRCDIR/scripts/lib/netns.sh"
# shellcheck source=tests/integration/load_lib.sh
source "$(dirname "$0")/load_lib.sh"

netns_test_setup "meshd-nr-$$" curl
netns_pod a 10.244.1.1 || bail_out "pod a"
netns_pod b1 10.244.2.1 || bail_out "pod b1"
netns_pod b2 10.244.3.1 || bail_out "pod b2"
# not for commands started with '&': $! must be the process itself
in_ns() { ip netns exec "$@"; }
# the hub is ours: a fixed port, so the restart gets the same one
start_cp() { netns_test_cp 10.244.0.1:15010 --debounce-ms 100; }
start_cp || bail_out "the control plane starts" "$(tail -n 20 "$CP_LOG")"
ctl apply -f - >"$T_DIR/apply.out" 2>&1 <<'YAML' || bail_out "service b applies" "$(cat "$T_DIR/apply.out")"
apiVersion: v1
kind: Service
metadata: {name: b, namespace: default}
spec:
  selector: {app: b}
  ports: [{name: http, port: 9080, targetPort: 9081}]
YAML

declare -A SC_PID=() SC_LOG=() SC_ARGS=() SC_RUN=()
# start_sidecar KEY: the sidecar of pod KEY as uid 1337 with its SC_ARGS (the first time
# after `meshd iptables`); waits for its ready line (the first snapshot applied).
start_sidecar()
{
    local k=$1 ns=${NETNS[$1]} ready=$T_DIR/sc-$1.ready
    if [ -z "${SC_RUN[$k]:-}" ]; then
        in_ns "$ns" "$MESH_BIN" iptables >"$T_DIR/iptables-$k.out" 2>&1 ||
            bail_out "meshd iptables in pod $k" "$(cat "$T_DIR/iptables-$k.out")"
    fi
    SC_RUN[$k]=$((${SC_RUN[$k]:-0} + 1))
    SC_LOG[$k]=$T_DIR/sc-$k-${SC_RUN[$k]}.log
    : >"$ready"
    # shellcheck disable=SC2086 # SC_ARGS holds words without spaces
    ip netns exec "$ns" setpriv --reuid 1337 --regid 1337 --clear-groups \
        "$MESH_BIN" --role=sidecar --control "$API_ADDR" --control-token "$T_DIR/token.sidecar" \
        --concurrency 1 --ready-fd 3 ${SC_ARGS[$k]} 3>"$ready" >"${SC_LOG[$k]}" 2>&1 &
    SC_PID[$k]=$!
    track "${SC_PID[$k]}" meshd "sidecar $k #${SC_RUN[$k]}" "${SC_LOG[$k]}"
    wait_for 20 ready_line_complete "$ready" "${SC_PID[$k]}"
}

for k in b1 b2; do
    ready=$T_DIR/app-$k.ready
    ip netns exec "${NETNS[$k]}" "$BACKEND_BIN" --listen 127.0.0.1:9081 --ready-file "$ready" \
        --name "$k" >"$T_DIR/app-$k.log" 2>&1 &
    track "$!" backend "backend $k" "$T_DIR/app-$k.log"
    wait_for 10 test -s "$ready" || bail_out "backend $k starts" "$(cat "$T_DIR/app-$k.log")"
    SC_ARGS[$k]="--node default/b-${k#b} --labels app=b,security.istio.io/tlsMode=istio
        --register --register-service b --register-port http=9081
        --register-address ${NETNS_IP[$k]} --register-ttl 60"
    start_sidecar "$k" || bail_out "the sidecar of $k starts" "$(tail -n 20 "${SC_LOG[$k]}")"
done
SC_ARGS[a]="--node default/a --labels app=a,security.istio.io/tlsMode=istio"
start_sidecar a || bail_out "the sidecar of a starts" "$(tail -n 20 "${SC_LOG[a]}")"

admin() { in_ns "${NETNS[$1]}" curl -s --max-time 5 "http://127.0.0.1:15000$2"; }
# a_has KEY: A's load balancing has pod KEY's endpoint
a_has() { admin a /clusters | grep -q "::${NETNS_IP[$1]}:9081::"; }
a_lacks() { ! a_has "$1"; }
stat_a() { admin a /stats | sed -n "s/^$1: *\([0-9]*\)$/\1/p"; }
requests_a() { stat_a downstream_rq_total; }
# retries at A: Istio's default retry policy would hide a request sent to a gone endpoint
retries_a() { echo $(($(stat_a upstream_rq_retry) + $(stat_a upstream_rq_retry_reused))); }
synced()
{
    [ "$(ctl proxy-status -o json 2>/dev/null | grep -o '"status": *"SYNCED"' | wc -l)" = 3 ]
}
if wait_for 15 a_has b1 && wait_for 15 a_has b2; then
    ok "pod A balances over both registered pods of b"
else
    bail_out "A sees both pods of b" "$(admin a /clusters)"
fi
check "proxy-status: the three sidecars SYNCED" wait_for 10 synced

# ---- the load: unmodified curl in pod A, by name ---------------------------------------
RATE=60 BATCH=20 MAX_BATCHES=$((60 * 30 / 20)) # per loader: 60/s, at most 30 s
for ((i = 0; i < BATCH; i++)); do
    printf 'url = "http://b:9080/"\noutput = "/dev/null"\n'
done >"$T_DIR/batch.cfg"
chmod a+r "$T_DIR/batch.cfg"
# one curl run as an ordinary user in pod A, by name; the pod that served is x-backend
load_batch()
{
    in_ns "${NETNS[a]}" setpriv --reuid 65534 --regid 65534 --clear-groups \
        curl -s -K "$T_DIR/batch.cfg" -m 5 --rate "$RATE/s" \
        -w '%{http_code} %header{x-backend}\n' >>"$1" 2>/dev/null
}

# ---- 1. kill -9 of the control plane under load ----------------------------------------
R0=$(retries_a)
start_load cp
T_KIND[$CP_PID]=other # killed on purpose
kill -9 "$CP_PID"
wait_exit "$CP_PID" 10 >/dev/null
lost_cp() { grep -q 'push: .*control plane' "${SC_LOG[a]}"; }
check "A's sidecar noticed its control plane is gone" wait_for 15 lost_cp
check "requests go on without a control plane" more_load "$RATE"
start_cp || bail_out "the control plane restarts on $API_ADDR" "$(tail -n 20 "$CP_LOG")"
if wait_for 30 synced; then
    ok "after the restart the three sidecars reconnected: proxy-status SYNCED"
else
    not_ok "after the restart the three sidecars reconnected: proxy-status SYNCED" \
        "$(ctl proxy-status 2>&1)"
fi
stop_load cp
expect_eq "$FAILED" 0 "control plane kill -9 and restart under load: 0 failed requests (of $TOTAL)"
R1=$(retries_a)
expect_eq "$((R1 - R0))" 0 "... and not thanks to retries: A retried nothing"
expect_match "$SERVED" '^b1=[1-9][0-9]* b2=[1-9][0-9]* $' "both pods of b served during it"
check "A still balances over b1 (its lease came back from the store)" a_has b1
check "... and over b2" a_has b2

# ---- 2. rolling restart of b's pods under load ------------------------------------------
start_load roll
for k in b1 b2; do
    kill -TERM "${SC_PID[$k]}"
    if wait_exit "${SC_PID[$k]}" 20; then
        check_exit "${SC_PID[$k]}"
    else
        not_ok "sidecar $k exits within 20 s of SIGTERM" "$(tail -n 20 "${SC_LOG[$k]}")"
    fi
    expect_match "$(cat "${SC_LOG[$k]}")" \
        "deregistered default/b-${k#b}.*every proxy applied the deregistration.*draining:" \
        "$k's sidecar deregistered, served on until every proxy had that, then drained"
    check "$k left A's load balancing" a_lacks "$k"
    start_sidecar "$k" || bail_out "the sidecar of $k starts again" "$(tail -n 20 "${SC_LOG[$k]}")"
    check "$k registered again and A balances over it" wait_for 15 a_has "$k"
    more_load "$RATE" || not_ok "the load goes on after $k's restart"
done
stop_load roll
expect_eq "$FAILED" 0 "rolling restart of b under load: 0 failed requests (of $TOTAL)"
expect_eq "$(($(retries_a) - R1))" 0 "... and not thanks to retries: A retried nothing"
expect_match "$SERVED" '^b1=[1-9][0-9]* b2=[1-9][0-9]* $' "both pods of b served during it"
check "proxy-status: the three sidecars SYNCED at the end" wait_for 10 synced

for k in a b1 b2; do
    stop_meshd "${SC_PID[$k]}"
done
stop_meshd "$CP_PID"
