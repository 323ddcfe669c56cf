#!/usr/bin/env bash
# Push (docs/control.md "Push"): a control plane, two sidecars and a gateway on loopback
# that take their snapshots from it. The first snapshot routes; a new VirtualService reaches
# both sidecars; a change only one proxy sees is pushed to it alone; an EndpointSlice update
# travels as a delta whose version a whole compile confirms; a snapshot the gateway
# refuses is a NACK while the old one serves; the control plane killed with SIGKILL and
# restarted on its port gets every sidecar back to SYNCED; /healthz/ready and
# --exit-on-app-exit.
. "$(dirname "$0")/lib.sh"

have_cmd jq || {
    skip "push" "jq is missing"
    exit 0
}

start_backend v1 || bail_out "backend v1 starts"
V1=${BACKEND_PORT[v1]}
start_backend v2 || bail_out "backend v2 starts"
V2=${BACKEND_PORT[v2]}
start_backend v3 || bail_out "backend v3 starts"
V3=${BACKEND_PORT[v3]}

DATA=$T_DIR/data
CP_SEQ=0
# start_cp [--listen ADDR:PORT]: a control plane; sets CP_PID, API (its port), CP_LOG.
start_cp()
{
    CP_SEQ=$((CP_SEQ + 1))
    local ready=$T_DIR/cp-$CP_SEQ.ready
    CP_LOG=$T_DIR/cp-$CP_SEQ.log
    : >"$ready"
    "$MESH_BIN" --role=control --data-dir "$DATA" --admin 127.0.0.1:0 --ready-fd 3 \
        --listen "${1:-127.0.0.1:0}" 3>"$ready" >"$CP_LOG" 2>&1 &
    CP_PID=$!
    track "$CP_PID" meshd "control plane #$CP_SEQ" "$CP_LOG"
    wait_for 10 ready_line_complete "$ready" "$CP_PID" || return 1
    API=$(sed -n 's/.* api=\([0-9]*\).*/\1/p' "$ready")
    [ -n "$API" ]
}

ctl() { "$MESH_BIN" ctl "$@" --server "http://127.0.0.1:$API" --token-file "$DATA/token"; }
apply() { ctl apply -f - >/dev/null 2>"$T_DIR/apply.err"; }

declare -A SC_PID=() SC_PORT=() SC_HEALTH=() SC_LOG=()
# start_proxy NAME NODE LABELS [extra args]: a sidecar (or --role=gateway in the extra args)
# fed by the control plane; waits for its ready line (written once the first snapshot is
# applied) and sets SC_PORT[NAME] (first listener), SC_HEALTH[NAME], SC_PID[NAME].
start_proxy()
{
    local name=$1 node=$2 labels=$3
    shift 3
    local ready=$T_DIR/$name.ready
    SC_LOG[$name]=$T_DIR/$name.log
    : >"$ready"
    "$MESH_BIN" --role=sidecar --control "127.0.0.1:$API" --node "$node" --labels "$labels" \
        --listen 127.0.0.1:0 --admin 127.0.0.1:0 --health 127.0.0.1:0 --concurrency 1 \
        --ready-fd 3 "$@" 3>"$ready" >"${SC_LOG[$name]}" 2>&1 &
    SC_PID[$name]=$!
    track "${SC_PID[$name]}" meshd "proxy $name" "${SC_LOG[$name]}"
    wait_for 10 ready_line_complete "$ready" "${SC_PID[$name]}" || return 1
    local line tok
    IFS= read -r line <"$ready"
    SC_PORT[$name]=
    for tok in ${line#ready }; do
        case ${tok%%=*} in
        admin) ;;
        health) SC_HEALTH[$name]=${tok#*=} ;;
        *) [ -n "${SC_PORT[$name]}" ] || SC_PORT[$name]=${tok#*=} ;;
        esac
    done
    [ -n "${SC_PORT[$name]}" ] && [ -n "${SC_HEALTH[$name]}" ]
}

via() { curl -s --max-time 5 -H "Host: $2" "http://127.0.0.1:${SC_PORT[$1]}${3:-/}"; }
says() { [ "$(via "$1" "$2")" = "$3" ]; }
health() { http_code "http://127.0.0.1:$1/healthz/ready"; }

# proxies: the control plane's table as JSON; field NODE KEY: one value of it
proxies() { ctl proxy-status -o json; }
field() { proxies | jq -r --arg n "$1" ".proxies[] | select(.node == \$n) | .$2"; }
status_is() { [ "$(field "$1" status)" = "$2" ]; }

start_cp || bail_out "the control plane starts" "$(tail -n 20 "$CP_LOG")"
apply <<YAML || bail_out "the base configuration applies" "$(cat "$T_DIR/apply.err")"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.mesh.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: $V1}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews-v2, namespace: default}
spec:
  hosts: [reviews-v2.mesh.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: $V2}}]
YAML

# ---- readiness before any snapshot, and --exit-on-app-exit without one ----
DEAD=$(free_port) || bail_out "a free port"
sleep 60 &
APP=$!
track "$APP" other "app sleep" /dev/null
"$MESH_BIN" --role=sidecar --control "127.0.0.1:$DEAD" --node default/early --admin 127.0.0.1:0 \
    --listen 127.0.0.1:0 --health 127.0.0.1:0 --exit-on-app-exit "$APP" \
    >"$T_DIR/early.log" 2>&1 &
EARLY=$!
track "$EARLY" meshd "proxy early" "$T_DIR/early.log"
wait_for 10 grep -q "health on 127.0.0.1:" "$T_DIR/early.log"
EH=$(sed -n 's/.*health on 127.0.0.1:\([0-9]*\).*/\1/p' "$T_DIR/early.log")
expect_eq "$(health "$EH")" 503 "/healthz/ready is 503 before the first snapshot"
wait_for 10 grep -q "cannot reach the control plane" "$T_DIR/early.log" &&
    ok "with no control plane the sidecar keeps trying" ||
    not_ok "with no control plane the sidecar keeps trying" "$(tail -n 5 "$T_DIR/early.log")"
kill "$APP"
if wait_exit "$EARLY" 10; then
    check_exit "$EARLY"
    ok "--exit-on-app-exit: the sidecar exits when its application does (before any snapshot)"
else
    not_ok "--exit-on-app-exit stops a sidecar that has no snapshot yet"
fi

# ---- the first snapshot ----
start_proxy a nsa/a app=a || bail_out "sidecar a starts from the control plane" \
    "$(tail -n 20 "${SC_LOG[a]}")"
start_proxy b nsb/b app=b || bail_out "sidecar b starts from the control plane" \
    "$(tail -n 20 "${SC_LOG[b]}")"
ok "two sidecars start with no file: ready once the first snapshot is applied"
expect_eq "$(via a reviews.mesh.local)" "hello from v1" "sidecar a routes with its first snapshot"
expect_eq "$(via b reviews.mesh.local)" "hello from v1" "sidecar b routes with its first snapshot"
expect_eq "$(health "${SC_HEALTH[a]}")" 200 "/healthz/ready is 200 once a snapshot is applied"
wait_for 10 status_is nsa/a SYNCED && wait_for 10 status_is nsb/b SYNCED &&
    ok "proxy-status: both sidecars SYNCED" || not_ok "proxy-status: both SYNCED" "$(ctl proxy-status)"
table=$(ctl proxy-status)
expect_match "$table" $'NAME +ROLE +STATUS.*\n(.*\n)?nsa/a +sidecar +SYNCED' \
    "proxy-status prints a table with the sidecar, its role and SYNCED"
# one HTTP/2 connection per proxy: the watch and its ACKs share it (an ACK was sent: SYNCED)
if have_cmd ss; then
    conns() { ss -Htnp state established "( dport = :$API )" | grep -c "pid=$1,"; }
    expect_eq "$(conns "${SC_PID[a]}")/$(conns "${SC_PID[b]}")" 1/1 \
        "each sidecar holds one connection to the control plane (watch and ACKs on HTTP/2)"
else
    skip "one connection per sidecar" "ss (iproute2) is not installed"
fi
A0=$(field nsa/a sent)
B0=$(field nsb/b sent)
BP0=$(field nsb/b pushes)

# ---- a new VirtualService reaches both sidecars ----
apply <<YAML || not_ok "the VirtualService applies" "$(cat "$T_DIR/apply.err")"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.mesh.local]
  http:
  - route: [{destination: {host: reviews-v2.mesh.local, port: {number: 9080}}}]
YAML
wait_for 10 says a reviews.mesh.local "hello from v2" &&
    ok "ctl apply of a VirtualService reaches sidecar a (now v2)" ||
    not_ok "the VirtualService reaches sidecar a" "got: $(via a reviews.mesh.local)"
wait_for 10 says b reviews.mesh.local "hello from v2" &&
    ok "... and sidecar b" || not_ok "the VirtualService reaches sidecar b" \
    "got: $(via b reviews.mesh.local)"
wait_for 10 status_is nsa/a SYNCED && wait_for 10 status_is nsb/b SYNCED &&
    ok "proxy-status: SYNCED after the change" || not_ok "SYNCED after the change" "$(ctl proxy-status)"
A1=$(field nsa/a sent)
expect_ne "$A1" "$A0" "sidecar a was sent a new version"
expect_eq "$(field nsa/a acked)" "$A1" "and acknowledged exactly that version"
B1=$(field nsb/b sent)
BP1=$(field nsb/b pushes)
expect_eq "$(grep -c "applied snapshot version $A1" "${SC_LOG[a]}")" 1 \
    "sidecar a applied that version once"

# ---- a change only one proxy sees is pushed to it alone ----
apply <<YAML || not_ok "the namespace-local ServiceEntry applies" "$(cat "$T_DIR/apply.err")"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: local, namespace: nsa}
spec:
  hosts: [local.nsa.mesh]
  exportTo: ["."]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: $V3}}]
YAML
wait_for 10 says a local.nsa.mesh "hello from v3" &&
    ok "a ServiceEntry exported to its namespace reaches sidecar a" ||
    not_ok "the namespace-local ServiceEntry reaches sidecar a" "got: $(via a local.nsa.mesh)"
wait_for 10 status_is nsa/a SYNCED
expect_eq "$(field nsb/b sent)/$(field nsb/b pushes)" "$B1/$BP1" \
    "sidecar b, which cannot see it, was sent nothing (same version, same push count)"
expect_eq "$(http_code "http://127.0.0.1:${SC_PORT[b]}/" -H 'Host: local.nsa.mesh')" 502 \
    "and sidecar b does not route it"
[ "$BP1" -gt "$BP0" ] && ok "(the earlier change did push to b: $BP0 -> $BP1)" ||
    not_ok "the push counter moves when b is pushed" "$BP0 -> $BP1"

# ---- an endpoint change travels as a delta (the changed clusters only) ----
slice() {
    apply <<YAML
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec:
  clusterIP: 10.96.7.7
  ports: [{name: http, port: 9080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ratings-a, namespace: default, labels: {kubernetes.io/service-name: ratings}}
addressType: IPv4
ports: [{name: http, port: $1}]
endpoints: [{addresses: [127.0.0.1]}]
YAML
}
slice "$V1" || not_ok "the ratings Service applies" "$(cat "$T_DIR/apply.err")"
wait_for 10 says a ratings.default "hello from v1" && wait_for 10 says b ratings.default "hello from v1" &&
    ok "a new Service and its EndpointSlice reach both sidecars" ||
    not_ok "the ratings Service reaches the sidecars" "got: $(via a ratings.default)"
wait_for 10 status_is nsa/a SYNCED
D0=$(proxies | jq -r .deltas)
slice "$V3" || not_ok "the EndpointSlice update applies" "$(cat "$T_DIR/apply.err")"
wait_for 10 says a ratings.default "hello from v3" && wait_for 10 says b ratings.default "hello from v3" &&
    ok "an EndpointSlice update reaches both sidecars" ||
    not_ok "the EndpointSlice update reaches the sidecars" "got: $(via a ratings.default)"
wait_for 10 status_is nsa/a SYNCED && wait_for 10 status_is nsb/b SYNCED &&
    ok "proxy-status: SYNCED after the endpoint change" ||
    not_ok "SYNCED after the endpoint change" "$(ctl proxy-status)"
D1=$(proxies | jq -r .deltas)
expect_eq "$((D1 - D0))" 2 "the control plane sent each sidecar a delta, not the snapshot"
A2=$(field nsa/a sent)
expect_match "$(cat "${SC_LOG[a]}")" "applied snapshot version $A2 from the control plane \\(endpoints only\\)" \
    "sidecar a applied the delta's version"
expect_eq "$(field nsa/a acked)" "$A2" "and acknowledged it"
# the delta's version is the one a whole compile gives: a new proxy of the same class
# (compiled whole) gets the same version, and the control plane saw no disagreement
start_proxy a2 nsa/a2 app=a || not_ok "a second sidecar of a's class starts" "$(tail -n 5 "${SC_LOG[a2]}")"
expect_eq "$(field nsa/a2 sent)" "$A2" "a whole compile gives the version the delta announced"
expect_eq "$(via a2 ratings.default)" "hello from v3" "and the same endpoints"
expect_eq "$(grep -c 'the endpoint update gave version' "$CP_LOG")" 0 \
    "the control plane's endpoint path never disagreed with a whole compile"
kill -TERM "${SC_PID[a2]}" 2>/dev/null; wait "${SC_PID[a2]}" 2>/dev/null

# ---- a snapshot the proxy refuses: NACK, the old one keeps serving ----
GW1=$(free_port) || bail_out "a free port"
GW2=$(free_port) || bail_out "a free port"
gateway()
{
    local ports=$1 servers= p
    for p in $ports; do
        servers+="  - {port: {number: $p, name: http-$p, protocol: HTTP}, hosts: ['*'], bind: 127.0.0.1}"$'\n'
    done
    apply <<YAML
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: nsg}
spec:
  selector: {istio: gw}
  servers:
$servers---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: gw, namespace: nsg}
spec:
  hosts: [gw.example]
  gateways: [gw]
  http:
  - route: [{destination: {host: reviews.mesh.local, port: {number: 9080}}}]
YAML
}
gateway "$GW1" || not_ok "the Gateway applies" "$(cat "$T_DIR/apply.err")"
if start_proxy gw nsg/gw istio=gw --role=gateway; then
    ok "a gateway starts from the control plane (its listener on the Gateway's port)"
    expect_eq "$(via gw gw.example)" "hello from v1" \
        "the gateway routes gw.example (the mesh VirtualService is not bound to it)"
    gateway "$GW1 $GW2" || not_ok "the second Gateway server applies" "$(cat "$T_DIR/apply.err")"
    wait_for 10 status_is nsg/gw NACK && ok "a snapshot with a new listener is refused: NACK" ||
        not_ok "the gateway NACKs a listener change" "$(ctl proxy-status)"
    expect_match "$(field nsg/gw error)" "listener" "the NACK carries the reason"
    expect_match "$(ctl proxy-status)" "nsg/gw +gateway +NACK .*listener" \
        "proxy-status shows NACK and the last error"
    expect_eq "$(via gw gw.example)" "hello from v1" "the gateway keeps serving its old snapshot"
    expect_eq "$(http_code "http://127.0.0.1:$GW2/" -H 'Host: gw.example')" 000 \
        "and did not open the refused listener"
    expect_eq "$(health "${SC_HEALTH[gw]}")" 200 "a NACK leaves the proxy ready"
else
    not_ok "a gateway starts from the control plane" "$(tail -n 20 "${SC_LOG[gw]}")"
fi

# ---- the control plane dies: sidecars keep serving, then resync ----
kill -KILL "$CP_PID"
wait_exit "$CP_PID" 10
T_KIND[$CP_PID]=other
T_CHECKED+=("$CP_PID")
expect_eq "$(via a reviews.mesh.local)" "hello from v2" "control plane killed: sidecar a keeps serving"
wait_for 10 grep -q "cannot reach the control plane" "${SC_LOG[a]}" &&
    ok "sidecar a notices and retries" || not_ok "sidecar a notices" "$(tail -n 5 "${SC_LOG[a]}")"
expect_eq "$(health "${SC_HEALTH[a]}")" 200 "and stays ready on its last good snapshot"
OLD_API=$API
start_cp "127.0.0.1:$OLD_API" || bail_out "the control plane restarts on its port" \
    "$(tail -n 20 "$CP_LOG")"
wait_for 15 status_is nsa/a SYNCED && wait_for 15 status_is nsb/b SYNCED &&
    ok "restarted: both sidecars reconnect and are SYNCED" ||
    not_ok "both sidecars SYNCED after the restart" "$(ctl proxy-status)"
expect_eq "$(field nsa/a acked)" "$(field nsa/a sent)" "sidecar a acked what the new control plane sent"
ctl delete vs reviews -n default >/dev/null 2>&1
wait_for 10 says a reviews.mesh.local "hello from v1" && wait_for 10 says b reviews.mesh.local "hello from v1" &&
    ok "a change after the restart reaches both sidecars" ||
    not_ok "push works after the restart" "a: $(via a reviews.mesh.local) b: $(via b reviews.mesh.local)"

# ---- --exit-on-app-exit with a snapshot: drain and exit 0 ----
sleep 60 &
APP=$!
track "$APP" other "app sleep 2" /dev/null
if start_proxy c default/c app=c --exit-on-app-exit "$APP"; then
    expect_eq "$(via c reviews.mesh.local)" "hello from v1" "sidecar c serves"
    kill "$APP"
    if wait_exit "${SC_PID[c]}" 10; then
        check_exit "${SC_PID[c]}"
        ok "--exit-on-app-exit: sidecar c drained and exited when its application did"
    else
        not_ok "--exit-on-app-exit: sidecar c exits within 10 s of its application"
    fi
else
    not_ok "sidecar c starts" "$(tail -n 20 "${SC_LOG[c]}")"
fi

# the sidecars leave the table when they go
stop_meshd "${SC_PID[b]}"
# (a drained sidecar closes its HTTP/2 connection: the control plane sees it at once)
wait_for 15 bash -c "! $(printf '%q ' "$MESH_BIN") ctl proxy-status --server http://127.0.0.1:$API -o json | grep -q nsb/b" &&
    ok "a sidecar that stops leaves proxy-status" || not_ok "b leaves proxy-status" "$(ctl proxy-status)"
# a sidecar killed with SIGKILL: the kernel closes its connection, the watch stream ends
# at once (no ping has to fail first)
kill -KILL "${SC_PID[a]}"
wait_exit "${SC_PID[a]}" 10
T_KIND[${SC_PID[a]}]=other
T_CHECKED+=("${SC_PID[a]}")
wait_for 5 bash -c "! $(printf '%q ' "$MESH_BIN") ctl proxy-status --server http://127.0.0.1:$API -o json | grep -q nsa/a" &&
    ok "a sidecar killed with SIGKILL leaves proxy-status promptly" ||
    not_ok "a killed sidecar leaves proxy-status" "$(ctl proxy-status)"
expect_match "$(cat "$CP_LOG")" "push: nsa/a \\(watch [0-9]+\\) disconnected" \
    "the control plane logs the killed sidecar's disconnect"
