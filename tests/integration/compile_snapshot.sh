#!/usr/bin/env bash
# The compiler end to end: Istio YAML -> `meshd ctl snapshot` -> a running meshd that routes
# real requests as the VirtualService and DestinationRule say (subsets, first match wins,
# directResponse, default route), plus determinism and the warnings on stderr.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${MESH_SRCDIR:-$(dirname "$0")/../..}/tests/integration/lib.sh"

if ! "$MESH_BIN" ctl snapshot --help 2>&1 | grep -q "usage: meshd ctl snapshot"; then
    skip "meshd ctl snapshot" "meshd does not dispatch \"ctl\" yet"
    exit 0
fi

start_backend v1
V1=${BACKEND_PORT[v1]}
start_backend v2
V2=${BACKEND_PORT[v2]}

mkdir -p "$T_DIR/mesh"
cat >"$T_DIR/mesh/reviews.yaml" <<EOF
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews.shop.internal]
  location: MESH_INTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - {address: 127.0.0.1, ports: {http: $V1}, labels: {version: v1}}
  - {address: 127.0.0.1, ports: {http: $V2}, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews.shop.internal
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
EOF
cat >"$T_DIR/mesh/routes.yaml" <<EOF
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews.shop.internal]
  http:
  - match: [{headers: {end-user: {exact: jason}}, statPrefix: jason}]
    route: [{destination: {host: reviews.shop.internal, subset: v1}}]
  - match: [{uri: {exact: /healthz}}]
    directResponse: {status: 200, body: {string: "fine\n"}}
  - match: [{uri: {prefix: /v2/}}, {uri: {exact: /new}}]
    route: [{destination: {host: reviews.shop.internal, subset: v2}}]
  - route: [{destination: {host: reviews.shop.internal, subset: v1}}]
EOF

snap() # snap OUT [args]: compiles the mesh for shop/client with ephemeral ports
{
    local out=$1
    shift
    "$MESH_BIN" ctl snapshot --node shop/client --outbound 127.0.0.1:0 --admin 127.0.0.1:0 \
        -f "$T_DIR/mesh" "$@" >"$out" 2>"$out.err"
}

check "ctl snapshot compiles the mesh" snap "$T_DIR/snap.json"
want="routes.yaml:[0-9]+:[0-9]+: VirtualService shop/reviews: warning: "
want+="spec.http\[0\]\.match\[0\]\.statPrefix: not enforced"
expect_match "$(cat "$T_DIR/snap.json.err")" "$want" \
    "a field not enforced is reported with file, line, resource and field"
check "meshd --check accepts the compiled snapshot" \
    "$MESH_BIN" --role=sidecar --snapshot "$T_DIR/snap.json" --check
snap "$T_DIR/snap2.json"
check "the same input compiles to the same bytes" cmp -s "$T_DIR/snap.json" "$T_DIR/snap2.json"

start_meshd "$T_DIR/snap.json" || bail_out "meshd starts with the compiled snapshot"
H=(-H "Host: reviews.shop.internal")
expect_eq "$("${CURL[@]}" "${H[@]}" "$(mesh_url /v2/x)")" "hello from v2" "prefix /v2/ -> subset v2"
expect_eq "$("${CURL[@]}" "${H[@]}" "$(mesh_url /new)")" "hello from v2" \
    "second match of the same route (OR) -> subset v2"
expect_eq "$("${CURL[@]}" "${H[@]}" "$(mesh_url /newer)")" "hello from v1" \
    "exact /new does not match /newer: default route of the VirtualService"
expect_eq "$("${CURL[@]}" "${H[@]}" "$(mesh_url /healthz)")" "fine" "directResponse"
expect_eq "$("${CURL[@]}" "${H[@]}" -H 'end-user: jason' "$(mesh_url /v2/x)")" "hello from v1" \
    "the header route comes first: end-user jason -> subset v1 even on /v2/"
expect_eq "$(http_code "$(mesh_url /)" -H "Host: unknown.example")" "502" \
    "unknown host sent straight to the listener: 502 (ALLOW_ANY would pass it through to itself)"

# the mesh's outbound traffic policy, as the control plane's flag of that name sets it
check "ctl snapshot --outbound-traffic-policy REGISTRY_ONLY" \
    snap "$T_DIR/snap-ro.json" --outbound-traffic-policy REGISTRY_ONLY
expect_eq "$(jq -r '.listeners[0].unmatched.action' "$T_DIR/snap-ro.json")" refuse \
    "... refuses unknown destinations"
expect_eq "$(jq -r '.listeners[0].unmatched.action' "$T_DIR/snap.json")" passthrough \
    "without it, ALLOW_ANY: they pass through"
expect_eq "$("$MESH_BIN" ctl snapshot --node shop/client --outbound-traffic-policy ANY \
    -f "$T_DIR/mesh" >/dev/null 2>&1; echo $?)" 2 "a bad policy is a usage error (2)"
