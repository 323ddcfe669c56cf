#!/usr/bin/env bash
# tests/integration/registry.sh: self-registration in the control plane (docs/control.md
# "Registry") and virtual IPs / the dns table (docs/compile.md): a registration becomes a
# WorkloadEntry the Service selects, shows in GET /v1/registry and in a compiled snapshot;
# renewals write nothing; a lease that is not renewed leaves; leases survive kill -9 of the
# control plane until their TTL; VIPs are in 240.240.0.0/16 and stable.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

have_cmd curl || bail_out "curl is installed"
cd "$T_DIR" || bail_out "cd $T_DIR"
unset MESHD_SERVER MESHD_TOKEN
DATA=$T_DIR/meshd-data
CP_PID=
API_PORT=
T_CP_SEQ=0

# start_control KIND: the control plane on ephemeral ports over $DATA ("meshd": exit checked
# at the end; "other": this test kills it).
start_control()
{
    local kind=$1
    T_CP_SEQ=$((T_CP_SEQ + 1))
    local ready=$T_DIR/control-$T_CP_SEQ.ready log=$T_DIR/control-$T_CP_SEQ.log
    : >"$ready"
    "$MESH_BIN" --role=control --data-dir "$DATA" --listen 127.0.0.1:0 --admin 127.0.0.1:0 \
        --ready-fd 3 3>"$ready" >"$log" 2>&1 &
    CP_PID=$!
    track "$CP_PID" "$kind" "control plane #$T_CP_SEQ" "$log"
    if ! wait_for 20 ready_line_complete "$ready" "$CP_PID"; then
        bail_out "control plane #$T_CP_SEQ ready: $(tail -n 20 "$log")"
    fi
    local line
    IFS= read -r line <"$ready"
    [[ $line =~ api=([0-9]+) ]] || bail_out "ready line: $line"
    API_PORT=${BASH_REMATCH[1]}
    export MESHD_SERVER=http://127.0.0.1:$API_PORT
}

url() { printf 'http://127.0.0.1:%s%s' "$API_PORT" "$1"; }

# register JSON: POST /v1/register with the token; body in $OUT, status in $CODE.
register()
{
    OUT=$(curl -sS -m 10 -w '\n%{http_code}' -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' --data-binary "$1" "$(url /v1/register)")
    CODE=${OUT##*$'\n'}
    OUT=${OUT%$'\n'*}
}

registry() { curl -sS -m 10 "$(url /v1/registry)"; }
revision() { curl -sS -m 10 "$(url /v1/revision)" | sed -n 's/.*"revision":\([0-9]*\).*/\1/p'; }
lease_gone() { ! registry | grep -q "\"name\":\"$1\""; }
lease_there() { registry | grep -q "\"name\":\"$1\""; }

# snapshot: compiles the store's Service and WorkloadEntries for default/client, like the push.
snapshot()
{
    "$MESH_BIN" ctl get workloadentries -A -o yaml >we.yaml 2>ctl.err || cat ctl.err >&2
    "$MESH_BIN" ctl snapshot -q --node default/client -f svc.yaml -f we.yaml 2>snap.err
}

cat >svc.yaml <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec:
  clusterIP: 10.96.7.7
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
EOF

start_control other
TOKEN=$(cat "$DATA/token")
"$MESH_BIN" ctl apply --token-file "$DATA/token" -f svc.yaml >/dev/null 2>&1 ||
    bail_out "apply svc.yaml"

# ---- register, renew, list ----
REG='{"namespace":"default","name":"reviews-1","service":"reviews","address":"10.244.1.5",
 "ports":{"http":8080},"labels":{"version":"v1"},"locality":"r1/z1","ttl_s":30}'
register "$REG"
expect_eq "$CODE" 200 "registration answered 200"
expect_match "$OUT" '"op":"created"' "registration created the lease"
REV=$(revision)
register "$REG"
expect_match "$OUT" '"op":"renewed"' "a second post renews"
expect_eq "$(revision)" "$REV" "a renewal writes nothing"
expect_match "$(registry)" '"name":"reviews-1".*"service":"reviews"' \
    "GET /v1/registry lists the lease"
register '{"namespace":"default","name":"reviews-1","address":"nope"}'
expect_eq "$CODE" 400 "a bad registration is a 400"
expect_match "$OUT" 'address: ' "... naming the field"
OUT=$(curl -sS -m 10 -w ' %{http_code}' --data-binary "$REG" "$(url /v1/register)")
expect_match "$OUT" '401$' "registration needs the token"

# ---- the endpoint in a compiled snapshot; VIP and dns ----
SNAP=$(snapshot)
EP=$(grep -A2 '"address": "10.244.1.5"' <<<"$SNAP")
expect_match "$EP" '"port": 8080' "the registered endpoint is compiled in, on its registered port"
VIP=$(grep -B3 '"name": "reviews.default.svc.cluster.local"' <<<"$SNAP" |
    grep -o '240\.240\.[0-9]*\.[0-9]*' | head -n 1)
expect_match "$VIP" '^240\.240\.[0-9]{1,3}\.[0-9]{1,3}$' \
    "reviews (no clusterIP) has a VIP in 240.240.0.0/16"
expect_match "$(grep -A8 '"domains"' <<<"$SNAP")" "\"$VIP\"" "the VIP is a domain of its virtual host"
for n in reviews reviews.default reviews.default.svc reviews.default.svc.cluster.local; do
    expect_match "$SNAP" "\"name\": \"$n\"" "dns lists $n"
done
expect_match "$(grep -B3 -A3 '"name": "ratings.default.svc.cluster.local"' <<<"$SNAP")" \
    '10\.96\.7\.7' "ratings keeps its clusterIP in dns"

# ---- expiry ----
register '{"namespace":"default","name":"reviews-2","service":"reviews","address":"10.244.1.6","ttl_s":1}'
expect_eq "$CODE" 200 "a 1 s lease is created"
if wait_for 10 lease_gone reviews-2; then
    ok "a lease not renewed expires"
else
    not_ok "a lease not renewed expires" "$(registry)"
fi
expect_no_match "$(snapshot)" '10\.244\.1\.6' "the expired endpoint left the store"

# ---- restart: kill -9, same data dir ----
register '{"namespace":"default","name":"reviews-3","service":"reviews","address":"10.244.1.7","ttl_s":4}'
kill -9 "$CP_PID"
wait_exit "$CP_PID" 10 >/dev/null
start_control meshd
expect_match "$(registry)" '"name":"reviews-1"' "after kill -9 the 30 s lease is back"
expect_match "$(registry)" '"name":"reviews-3"' "... and the 4 s one, until its TTL"
expect_match "$(snapshot)" '"address": "10.244.1.5"' "the endpoint is still compiled in"
register "$REG"
expect_match "$OUT" '"op":"renewed"' "the sidecar's renewal after the restart is a renewal"
if wait_for 15 lease_gone reviews-3; then
    ok "the restored lease expires at its TTL when nobody renews it"
else
    not_ok "the restored lease expires at its TTL" "$(registry)"
fi
check "reviews-1, renewed, stays" lease_there reviews-1
VIP2=$(snapshot | grep -B3 '"name": "reviews.default.svc.cluster.local"' |
    grep -o '240\.240\.[0-9]*\.[0-9]*' | head -n 1)
expect_eq "$VIP2" "$VIP" "the VIP is the same after the restart"

# ---- deregistration ----
OUT=$(curl -sS -m 10 -w ' %{http_code}' -X DELETE -H "Authorization: Bearer $TOKEN" \
    "$(url /v1/register/default/reviews-1)")
expect_match "$OUT" '"op":"deleted".* 200$' "DELETE deregisters"
expect_no_match "$(snapshot)" '10\.244\.1\.5' "the endpoint left the snapshot"
check "the registry is empty" lease_gone reviews-1

# ---- a sidecar with --register: registers, renews, deregisters on SIGTERM ----
expires_of() { registry | grep -o "\"name\":\"$1\"[^}]*\"expires_in_ms\":[0-9]*" | grep -o '[0-9]*$'; }
# renewed NAME: its time left went up since the last call (a renewal reset it)
LAST_LEFT=999999
renewed()
{
    local left
    left=$(expires_of "$1") || return 1
    [ -n "$left" ] || return 1
    if [ "$left" -gt "$LAST_LEFT" ]; then return 0; fi
    LAST_LEFT=$left
    return 1
}
SC_LOG=$T_DIR/sidecar.log
"$MESH_BIN" --role=sidecar --control "127.0.0.1:$API_PORT" --control-token "$DATA/token" \
    --node default/reviews-9 --labels version=v2 --listen 127.0.0.1:0 --admin 127.0.0.1:0 \
    --health 127.0.0.1:0 --register --register-service reviews --register-address 10.244.2.9 \
    --register-port http=8080 --register-ttl 3 --locality r1/z2 >"$SC_LOG" 2>&1 &
SC_PID=$!
track "$SC_PID" meshd "sidecar --register" "$SC_LOG"
if wait_for 15 lease_there reviews-9; then
    ok "a sidecar with --register appears in the registry"
else
    not_ok "a sidecar with --register appears in the registry" "$(tail -n 20 "$SC_LOG")"
fi
expect_match "$(registry)" '"name":"reviews-9".*"labels":\{"version":"v2","app":"reviews"\},"locality":"r1/z2"' \
    "... with its labels, service and locality"
expect_match "$(snapshot)" '"address": "10.244.2.9"' "... and its endpoint is compiled in"
renewed reviews-9
if wait_for 10 renewed reviews-9; then
    ok "the sidecar renews its 3 s lease"
else
    not_ok "the sidecar renews its 3 s lease" "$(registry)"
fi
kill -TERM "$SC_PID"
if wait_for 10 lease_gone reviews-9; then
    ok "SIGTERM deregisters the sidecar"
else
    not_ok "SIGTERM deregisters the sidecar" "$(tail -n 20 "$SC_LOG")"
fi
wait_exit "$SC_PID" 15 && check_exit "$SC_PID"
expect_match "$(cat "$SC_LOG")" 'deregistered default/reviews-9' "... by its DELETE, not by expiry"

stop_meshd "$CP_PID"
