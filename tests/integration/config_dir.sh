#!/usr/bin/env bash
# meshd --role=sidecar --config-dir: Istio YAML compiled locally (no control plane),
# served, reloaded on SIGHUP; a bad file is refused with FILE:LINE:COL.
. "$(dirname "$0")/lib.sh"

start_backend v1 || bail_out "backend v1 starts"
V1=${BACKEND_PORT[v1]}
start_backend v2 || bail_out "backend v2 starts"
V2=${BACKEND_PORT[v2]}

CFG=$T_DIR/config
mkdir -p "$CFG"
write_mesh() # $1 = weight of v2 (0..100)
{
    cat >"$CFG/mesh.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews-v1, namespace: default}
spec:
  hosts: [reviews-v1.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: $V1}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews-v2, namespace: default}
spec:
  hosts: [reviews-v2.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: $V2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {exact: /teapot}}]
    directResponse: {status: 418, body: {string: "short and stout"}}
  - route:
    - destination: {host: reviews-v1.local, port: {number: 9080}}
      weight: $((100 - $1))
    - destination: {host: reviews-v2.local, port: {number: 9080}}
      weight: $1
YAML
}
write_mesh 0

start_cfg() # extra args...
{
    T_MESHD_SEQ=$((T_MESHD_SEQ + 1))
    local ready=$T_DIR/meshd-$T_MESHD_SEQ.ready
    MESHD_LOG=$T_DIR/meshd-$T_MESHD_SEQ.log
    : >"$ready"
    "$MESH_BIN" --role=sidecar --config-dir "$CFG" --node default/productpage \
        --listen 127.0.0.1:0 --admin 127.0.0.1:0 --concurrency 1 --ready-fd 3 "$@" \
        3>"$ready" >"$MESHD_LOG" 2>&1 &
    MESHD_PID=$!
    track "$MESHD_PID" meshd "meshd #$T_MESHD_SEQ" "$MESHD_LOG"
    wait_for 10 ready_line_complete "$ready" "$MESHD_PID" || return 1
    local line tok
    IFS= read -r line <"$ready"
    for tok in ${line#ready }; do
        case ${tok%%=*} in admin) MESH_ADMIN_PORT=${tok#*=} ;; outbound) MESH_PORT=${tok#*=} ;; esac
    done
    [ -n "${MESH_PORT:-}" ]
}

start_cfg || bail_out "meshd --config-dir starts: $(tail -n 20 "$MESHD_LOG")"
ok "meshd --config-dir starts and listens"
via() { curl -s --max-time 5 -H "Host: $1" "http://127.0.0.1:$MESH_PORT$2"; }

expect_eq "$(via reviews /x)" "hello from v1" "VirtualService routes reviews to reviews-v1 (weight 100/0)"
expect_eq "$(via reviews.default.svc.cluster.local:9080 /x)" "hello from v1" \
    "the service's FQDN with a port reaches the same route"
expect_eq "$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -H 'Host: reviews' \
    "http://127.0.0.1:$MESH_PORT/teapot")" 418 "directResponse from the VirtualService"
expect_eq "$(curl -s --max-time 5 --http2-prior-knowledge -H 'Host: reviews' \
    "http://127.0.0.1:$MESH_PORT/x")" "hello from v1" "HTTP/2 through the compiled snapshot"
expect_eq "$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -H 'Host: unknown' \
    "http://127.0.0.1:$MESH_PORT/x")" 502 "a host no service names gets 502 (ALLOW_ANY: no loop to itself)"

# SIGHUP recompiles: move all traffic to v2
write_mesh 100
kill -HUP "$MESHD_PID"
# (a function: a "$(via ...)" argument would be read once, before the reload, and never again)
routes_to_v2() { [ "$(via reviews /x)" = "hello from v2" ]; }
wait_for 10 routes_to_v2 &&
    ok "SIGHUP recompiles the directory: 0/100 now routes to v2" ||
    not_ok "SIGHUP recompiles the directory" "got: $(via reviews /x)"

# a 50/50 split converges (400 requests, within a wide statistical bound)
write_mesh 50
kill -HUP "$MESHD_PID"
wait_for 10 grep -q "reloaded" "$MESHD_LOG"
for i in $(seq 1 400); do echo "url = \"http://127.0.0.1:$MESH_PORT/x\""; echo 'header = "Host: reviews"'; done >"$T_DIR/curl.cfg"
n2=$(curl -s --max-time 60 -K "$T_DIR/curl.cfg" | grep -c "hello from v2")
# 400 draws at p=0.5: sd = 10; 140..260 is 6 sd wide
[ "$n2" -ge 140 ] && [ "$n2" -le 260 ] && ok "50/50 split: $n2 of 400 to v2" ||
    not_ok "50/50 split: $n2 of 400 to v2 (want 140..260)"

# a broken file is refused with FILE:LINE:COL and the old config keeps serving
printf 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bad, namespace: default}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews}, weight: 400}]\n' >"$CFG/zz-bad.yaml"
kill -HUP "$MESHD_PID"
wait_for 10 grep -q "zz-bad.yaml:[0-9]*:[0-9]*" "$MESHD_LOG" &&
    ok "a bad file on SIGHUP is refused with FILE:LINE:COL" ||
    not_ok "a bad file on SIGHUP is refused with FILE:LINE:COL" "log: $(tail -n 10 "$MESHD_LOG")"
r=$(via reviews /x)
[[ $r == "hello from v"[12] ]] && ok "the previous config keeps serving" ||
    not_ok "the previous config keeps serving" "got: $r"

# starting on a broken directory fails with the position, before listening
out=$("$MESH_BIN" --role=sidecar --config-dir "$CFG" --listen 127.0.0.1:0 --admin 127.0.0.1:0 2>&1)
rc=$?
expect_eq "$rc" 1 "meshd --config-dir on a broken directory exits 1"
expect_match "$out" "zz-bad.yaml:7:[0-9]+: .*weight" "the message names the file, line and field"
rm -f "$CFG/zz-bad.yaml"

stop_meshd "$MESHD_PID"
