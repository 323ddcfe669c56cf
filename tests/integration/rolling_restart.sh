#!/usr/bin/env bash
# tests/integration/rolling_restart.sh: no request is lost when pods or the control plane
# restart (docs/sidecar.md "Shutdown", docs/control.md "Registry").
#
# On loopback: a control plane; service b with two pods, each a backend (nghttpd, h2c) and a
# sidecar that registers it (--register, address 127.0.0.1, the backend's port); a client
# sidecar a. Two curl loaders send a steady, bounded load through a (each request is one
# line: status and the size of the answer, which names the pod; 000 = a connection error).
#  1. Rolling restart under load: for each old pod, a new pod starts and is registered and
#     pushed to a; then the old pod's sidecar gets SIGTERM (it deregisters, serves on until
#     the control plane says every proxy applied that, drains, exits) and its backend stops
#     accepting as the sidecar starts draining
#     (as the pod would with its traffic through the sidecar). Expected: 0 failed requests,
#     AND 0 retries in a's stats (Istio's default retry policy is compiled into every route
#     and would hide a request sent to a stopped endpoint: the retries count those).
#  2. kill -9 of the control plane under load, restarted on its port: 0 failed requests,
#     0 retries, every proxy SYNCED again, the leases intact, and sidecar a never applied
#     another snapshot (a restarted control plane that pushed a view without the registered
#     endpoints would show as a new "applied snapshot" line).
#  3. Diagnostic only (not an assertion: it is timing): a pod stopped with
#     --drain-grace-ms 0 shows what the grace is for (retries, or failures without them).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/load_lib.sh
source "$(dirname "$0")/load_lib.sh"

have_cmd curl || bail_out "curl is installed"
if ! have_cmd jq || ! have_cmd nghttpd; then
    skip "rolling_restart" "jq or nghttpd is missing"
    exit 0
fi
cd "$T_DIR" || bail_out "cd $T_DIR"
unset MESHD_SERVER MESHD_TOKEN

DATA=$T_DIR/data
RATE=${ROLLING_RATE:-80}   # requests/s per loader (two loaders)
# the control plane's debounce: 250 ms (default 100) widens the window in which a pod that
# stops without waiting is still in the other proxies' load balancing (part 3)
DEBOUNCE=250
CP_SEQ=0
API=

# start_cp [--listen ADDR:PORT]: a control plane over $DATA; sets CP_PID, API, CP_LOG.
start_cp()
{
    CP_SEQ=$((CP_SEQ + 1))
    local ready=$T_DIR/cp-$CP_SEQ.ready
    CP_LOG=$T_DIR/cp-$CP_SEQ.log
    : >"$ready"
    "$MESH_BIN" --role=control --data-dir "$DATA" --admin 127.0.0.1:0 --ready-fd 3 \
        --debounce-ms "$DEBOUNCE" --listen "${1:-127.0.0.1:0}" 3>"$ready" >"$CP_LOG" 2>&1 &
    CP_PID=$!
    track "$CP_PID" meshd "control plane #$CP_SEQ" "$CP_LOG"
    wait_for 20 ready_line_complete "$ready" "$CP_PID" || return 1
    API=$(sed -n 's/.* api=\([0-9]*\).*/\1/p' "$ready")
    [ -n "$API" ]
}

ctl() { "$MESH_BIN" ctl "$@" --server "http://127.0.0.1:$API" --token-file "$DATA/token"; }

declare -A SC_PID=() SC_PORT=() SC_ADMIN=() SC_HEALTH=() SC_LOG=()
# start_sidecar NAME [extra args]: a sidecar of node default/NAME fed by the control plane;
# waits for its ready line. Sets SC_PID, SC_PORT (outbound), SC_ADMIN, SC_HEALTH.
start_sidecar()
{
    local name=$1
    shift
    local ready=$T_DIR/sc-$name.ready
    SC_LOG[$name]=$T_DIR/sc-$name.log
    : >"$ready"
    "$MESH_BIN" --role=sidecar --control "127.0.0.1:$API" --control-token "$DATA/token" \
        --node "default/$name" --listen 127.0.0.1:0 --admin 127.0.0.1:0 \
        --health 127.0.0.1:0 --concurrency 1 --ready-fd 3 "$@" \
        3>"$ready" >"${SC_LOG[$name]}" 2>&1 &
    SC_PID[$name]=$!
    track "${SC_PID[$name]}" meshd "sidecar $name" "${SC_LOG[$name]}"
    wait_for 20 ready_line_complete "$ready" "${SC_PID[$name]}" || return 1
    local line
    IFS= read -r line <"$ready"
    [[ $line =~ admin=([0-9]+) ]] && SC_ADMIN[$name]=${BASH_REMATCH[1]}
    [[ $line =~ health=([0-9]+) ]] && SC_HEALTH[$name]=${BASH_REMATCH[1]}
    [[ $line =~ outbound=([0-9]+) ]] && SC_PORT[$name]=${BASH_REMATCH[1]}
    [ -n "${SC_ADMIN[$name]:-}" ] && [ -n "${SC_HEALTH[$name]:-}" ] && [ -n "${SC_PORT[$name]:-}" ]
}

# start_pod NAME [sidecar args]: pod default/NAME: an h2c backend (nghttpd; its index.html
# is 100 + the pod's number bytes long, so an answer's size names the pod) and its sidecar,
# which registers it. The backend speaks HTTP/2: registered endpoints have a sidecar in front
# of them, so the clusters towards them speak HTTP/2 (docs/compile.md); on loopback nothing
# redirects to the pod sidecar's inbound listener, so the client reaches the application
# directly, and the port is named http2 so that holds either way.
start_pod()
{
    local name=$1 num=${1#b-}
    shift
    mkdir -p "$T_DIR/www-$name"
    head -c $((100 + num)) /dev/zero | tr '\0' x >"$T_DIR/www-$name/index.html"
    start_nghttpd "$name" "$T_DIR/www-$name" || return 1
    start_sidecar "$name" --labels "app=b" --register --register-service b \
        --register-address 127.0.0.1 --register-port "http2=${BACKEND_PORT[$name]}" \
        --register-ttl 60 "$@"
}

# a_has_endpoint NAME: client a's load balancing has pod NAME's backend.
a_has_endpoint()
{
    curl -s -m 5 "http://127.0.0.1:${SC_ADMIN[a]}/clusters" |
        grep -q "::127.0.0.1:${BACKEND_PORT[$1]}::weight::"
}
a_lacks_endpoint() { ! a_has_endpoint "$1"; }
health() { http_code "http://127.0.0.1:${SC_HEALTH[$1]}/healthz/ready"; }
# stat NAME: a global counter of sidecar a
stat_a() { curl -s -m 5 "http://127.0.0.1:${SC_ADMIN[a]}/stats" | sed -n "s/^$1: //p"; }
retries_a() { echo $(($(stat_a upstream_rq_retry) + $(stat_a upstream_rq_retry_reused))); }
proxies() { ctl proxy-status -o json 2>/dev/null; }
all_synced()
{
    local want=$1 js
    js=$(proxies) || return 1
    [ "$(jq '[.proxies[] | select(.status == "SYNCED")] | length' <<<"$js")" -eq "$want" ] &&
        [ "$(jq '.proxies | length' <<<"$js")" -eq "$want" ]
}

# ---- the load (load_lib.sh) ------------------------------------------------------
# Each request goes to sidecar a; the pods' answers differ in size (100 + the pod's
# number): that names the pod that served.
BATCH=20
MAX_BATCHES=$((RATE * 40 / BATCH)) # 40 s
load_batch()
{
    curl -s -K "$T_DIR/batch.cfg" -m 5 --rate "$RATE/s" -H "Host: b.default.svc.cluster.local" \
        -w '%{http_code} %{size_download}\n' 2>/dev/null |
        awk '{print $1, ($2 > 100 ? "b-" $2 - 100 : "")}' >>"$1"
}
requests_a() { stat_a downstream_rq_total; }

# stop_pod NAME: the old pod's shutdown. SIGTERM to the sidecar (readiness at once 503);
# the application stops accepting when the sidecar starts draining (the moment the pod would
# stop accepting if its traffic came through the sidecar's inbound listener, as it does off
# loopback); the sidecar exits cleanly.
stop_pod()
{
    local name=$1 watcher
    # stops the application the moment the sidecar logs that it drains (inotify, no polling)
    (
        timeout 30 tail -n +1 -f "${SC_LOG[$name]}" | grep -q -m 1 'draining:'
        kill -TERM "${BACKEND_PID[$name]}"
    ) &
    watcher=$!
    kill -TERM "${SC_PID[$name]}"
    STOP_HEALTH=$(health "$name")
    if wait_exit "${SC_PID[$name]}" 20; then
        check_exit "${SC_PID[$name]}"
    else
        not_ok "sidecar $name exits within 20 s of SIGTERM" "$(tail -n 20 "${SC_LOG[$name]}")"
    fi
    wait "$watcher"
    wait_exit "${BACKEND_PID[$name]}" 10 || not_ok "backend $name stops"
}

# ---- set up ---------------------------------------------------------------------
start_cp || bail_out "the control plane starts" "$(tail -n 20 "$CP_LOG")"
ctl apply -f - >/dev/null 2>"$T_DIR/apply.err" <<'YAML' || bail_out "service b applies" "$(cat "$T_DIR/apply.err")"
apiVersion: v1
kind: Service
metadata: {name: b, namespace: default}
spec:
  selector: {app: b}
  ports: [{name: http2, port: 9080, targetPort: 8080}]
YAML
start_pod b-1 || bail_out "pod b-1 starts" "$(tail -n 20 "${SC_LOG[b-1]}")"
start_pod b-2 || bail_out "pod b-2 starts" "$(tail -n 20 "${SC_LOG[b-2]}")"
start_sidecar a --labels app=a --drain-grace-ms 2000 || bail_out "client sidecar a starts" "$(tail -n 20 "${SC_LOG[a]}")"
if wait_for 15 a_has_endpoint b-1 && wait_for 15 a_has_endpoint b-2; then
    ok "client a load-balances over both registered pods of b"
else
    bail_out "a sees both pods of b" "$(curl -s "http://127.0.0.1:${SC_ADMIN[a]}/clusters")"
fi
expect_match "$(curl -s -m 5 -o /dev/null -w '%{http_code} %{size_download}' \
    -H 'Host: b.default.svc.cluster.local' "http://127.0.0.1:${SC_PORT[a]}/")" '^200 10[12]$' \
    "a request through a reaches a pod of b"
R0=$(retries_a)

# ---- 1. rolling restart under load ----------------------------------------------
for ((i = 0; i < BATCH; i++)); do
    printf 'url = "http://127.0.0.1:%s/"\noutput = "/dev/null"\n' "${SC_PORT[a]}"
done >"$T_DIR/batch.cfg"
start_load roll
declare -A NEXT=([b-1]=b-3 [b-2]=b-4)
for old in b-1 b-2; do
    new=${NEXT[$old]}
    extra=()
    [ "$new" = b-4 ] && extra=(--drain-grace-ms 1500) # for the end: no control plane
    start_pod "$new" "${extra[@]}" || bail_out "pod $new starts" "$(tail -n 20 "${SC_LOG[$new]}")"
    if wait_for 15 a_has_endpoint "$new"; then
        ok "new pod $new is registered and pushed to a"
    else
        not_ok "new pod $new is registered and pushed to a" "$(tail -n 5 "$CP_LOG")"
    fi
    more_load "$RATE" # the new pod takes its share before the old one goes
    stop_pod "$old"
    expect_eq "$STOP_HEALTH" 503 "SIGTERM turns $old's readiness 503 at once"
    expect_match "$(cat "${SC_LOG[$old]}")" \
        "deregistered default/$old.*every proxy applied the deregistration.*draining:" \
        "$old deregistered, served on until the control plane confirmed every proxy had it, then drained"
    check "$old's endpoint left a's load balancing" a_lacks_endpoint "$old"
done
stop_load roll
expect_eq "$FAILED" 0 "rolling restart under load: 0 failed requests (of $TOTAL)"
R1=$(retries_a)
diag "retries at a during the rolling restart: $((R1 - R0))"
expect_eq "$((R1 - R0))" 0 "... and not thanks to retries: a retried nothing"
expect_match "$SERVED" '^b-1=[1-9][0-9]* b-2=[1-9][0-9]* b-3=[1-9][0-9]* b-4=[1-9][0-9]* $' \
    "every pod, old and new, served part of the load"

# ---- 2. kill -9 of the control plane under load, restarted on its port ----------
wait_for 15 all_synced 3 || not_ok "every proxy SYNCED before the kill" "$(ctl proxy-status)"
VERSION_A=$(jq -r '.proxies[] | select(.node == "default/a") | .acked' <<<"$(proxies)")
APPLIED_A=$(grep -c 'applied snapshot version' "${SC_LOG[a]}")
start_load cp
T_KIND[$CP_PID]=other # killed on purpose
kill -9 "$CP_PID"
wait_exit "$CP_PID" 10 >/dev/null
lost_cp() { grep -q 'push: .*control plane' "${SC_LOG[a]}"; }
if wait_for 15 lost_cp; then
    ok "a noticed its control plane is gone"
else
    not_ok "a noticed its control plane is gone" "$(tail -n 5 "${SC_LOG[a]}")"
fi
check "requests go on without a control plane" more_load "$RATE"
start_cp "127.0.0.1:$API" || bail_out "the control plane restarts on its port" "$(tail -n 20 "$CP_LOG")"
if wait_for 30 all_synced 3; then
    ok "after the restart every proxy is SYNCED again"
else
    not_ok "after the restart every proxy is SYNCED again" "$(ctl proxy-status)"
fi
stop_load cp
expect_eq "$FAILED" 0 "control plane kill -9 and restart under load: 0 failed requests (of $TOTAL)"
R2=$(retries_a)
diag "retries at a during the control plane's restart: $((R2 - R1))"
expect_eq "$((R2 - R1))" 0 "... and a retried nothing"
expect_eq "$(jq -r '.proxies[] | select(.node == "default/a") | .acked' <<<"$(proxies)")" \
    "$VERSION_A" "a serves the same snapshot version as before the restart"
expect_eq "$(grep -c 'applied snapshot version' "${SC_LOG[a]}")" "$APPLIED_A" \
    "a applied no other snapshot (none without the registered endpoints)"
REG=$(ctl get we -o json 2>/dev/null | jq -r '.items[].metadata.name' | tr '\n' ' ')
for p in b-3 b-4; do
    check "a still load-balances over $p" a_has_endpoint "$p"
    expect_match "$REG" "(^| )$p " "the lease of $p is still a WorkloadEntry"
done
LEFT=$(curl -s -m 5 "http://127.0.0.1:$API/v1/registry" | jq '[.items[].expires_in_ms] | min')
expect_le 40000 "$LEFT" "the restored leases have about a full TTL (60 s) from the restart"

# ---- 3. diagnostic: a pod stopped without the grace -----------------------------
start_pod b-5 --drain-grace-ms 0 || bail_out "pod b-5 starts"
wait_for 15 a_has_endpoint b-5 || not_ok "b-5 is pushed to a"
start_load nograce
R3=$(retries_a)
F3=$(stat_a upstream_cx_connect_fail)
stop_pod b-5 # no grace: it stops accepting as soon as the deregistration is answered
stop_load nograce
R4=$(retries_a)
F4=$(stat_a upstream_cx_connect_fail)
diag "without the grace (b-5, --drain-grace-ms 0): $FAILED failed, $((R4 - R3)) retries," \
    "$((F4 - F3)) connect failures (with the grace: 0 above)"

stop_pod b-3
# ---- 4. a pod that stops while the control plane is down ------------------------
stop_meshd "$CP_PID"
stop_pod b-4 # --drain-grace-ms 1500: the deregistration fails, it waits that long, drains
expect_match "$(cat "${SC_LOG[b-4]}")" \
    "deregistration of default/b-4 failed.*going on after 1500 ms.*draining:" \
    "with no control plane a stopping sidecar waits its --drain-grace-ms, then drains"
# a sidecar that did not register serves on for its --drain-grace-ms (readiness 503 at once)
kill -TERM "${SC_PID[a]}"
expect_eq "$(health a)" 503 "SIGTERM turns a's readiness 503 at once"
expect_match "$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H 'Host: b.default.svc.cluster.local' \
    "http://127.0.0.1:${SC_PORT[a]}/")" '^(503|200)$' "... and a still accepts during its grace"
stop_meshd "${SC_PID[a]}"
expect_match "$(cat "${SC_LOG[a]}")" "serving 2000 ms more, then draining.*draining:" \
    "... then drains"
