#!/usr/bin/env bash
# Traffic management end to end through Istio YAML: VirtualServices and DestinationRules in
# a directory -> meshd --role=sidecar --config-dir (compiled locally) -> real requests to
# real backends. A header route, an 80/20 canary split over 10,000 requests, a fault abort,
# the retry counts (explicit, Istio's default policy, disabled), a consistent hash, and a
# locality failover driven by outlier detection, seen from outside.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${MESH_SRCDIR:-$(dirname "$0")/../..}/tests/integration/lib.sh"

start_backend v1
start_backend v2
start_backend flaky --fail-status 503
for h in h1 h2 h3; do start_backend $h; done
start_backend east
start_backend west
P=(); for b in v1 v2 flaky h1 h2 h3 east west; do P+=("${BACKEND_PORT[$b]}"); done

CFG=$T_DIR/config
mkdir -p "$CFG"
se() # se NAME ENDPOINTS...: a STATIC ServiceEntry NAME.test on port 80
{
    local name=$1 ep
    shift
    printf -- '---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n'
    printf 'metadata: {name: %s, namespace: default}\nspec:\n  hosts: [%s.test]\n' "$name" "$name"
    printf '  location: MESH_INTERNAL\n  resolution: STATIC\n'
    printf '  ports: [{number: 80, name: http, protocol: HTTP}]\n  endpoints:\n'
    for ep in "$@"; do printf '  - %s\n' "$ep"; done
}
{
    se reviews "{address: 127.0.0.1, ports: {http: ${P[0]}}, labels: {version: v1}}" \
        "{address: 127.0.0.1, ports: {http: ${P[1]}}, labels: {version: v2}}"
    se flaky "{address: 127.0.0.1, ports: {http: ${P[2]}}}"
    se sticky "{address: 127.0.0.1, ports: {http: ${P[3]}}}" \
        "{address: 127.0.0.1, ports: {http: ${P[4]}}}" \
        "{address: 127.0.0.1, ports: {http: ${P[5]}}}"
    se geo "{address: 127.0.0.1, ports: {http: ${P[6]}}, locality: us-east/zone-a}" \
        "{address: 127.0.0.1, ports: {http: ${P[7]}}, locality: us-west/zone-b}"
    cat <<'YAML'
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews.test
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.test]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews.test, subset: v2}}]
  - match: [{uri: {prefix: /fault}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: reviews.test, subset: v1}}]
  - route:
    - {destination: {host: reviews.test, subset: v1}, weight: 80}
    - {destination: {host: reviews.test, subset: v2}, weight: 20}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: flaky, namespace: default}
spec:
  hosts: [flaky.test]
  http:
  - match: [{uri: {prefix: /explicit}}]
    retries: {attempts: 3, retryOn: 5xx}
    route: [{destination: {host: flaky.test}}]
  - match: [{uri: {prefix: /off}}]
    retries: {attempts: 0}
    route: [{destination: {host: flaky.test}}]
  - route: [{destination: {host: flaky.test}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: sticky, namespace: default}
spec:
  host: sticky.test
  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: geo, namespace: default}
spec:
  host: geo.test
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        enabled: true
        failover: [{from: us-east, to: us-west}]
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 60s,
                       maxEjectionPercent: 100}
YAML
} >"$CFG/mesh.yaml"

T_MESHD_SEQ=$((T_MESHD_SEQ + 1))
ready=$T_DIR/meshd-$T_MESHD_SEQ.ready
MESHD_LOG=$T_DIR/meshd-$T_MESHD_SEQ.log
: >"$ready"
"$MESH_BIN" --role=sidecar --config-dir "$CFG" --node default/client \
    --labels topology.kubernetes.io/region=us-east,topology.kubernetes.io/zone=zone-a \
    --listen 127.0.0.1:0 --admin 127.0.0.1:0 --concurrency 1 --ready-fd 3 \
    3>"$ready" >"$MESHD_LOG" 2>&1 &
MESHD_PID=$!
track "$MESHD_PID" meshd "meshd #$T_MESHD_SEQ" "$MESHD_LOG"
wait_for 10 ready_line_complete "$ready" "$MESHD_PID" ||
    bail_out "meshd --config-dir starts" "$(tail -n 20 "$MESHD_LOG")"
IFS= read -r line <"$ready"
for tok in ${line#ready }; do
    case ${tok%%=*} in
    outbound) MESH_PORT=${tok#*=} ;;
    admin) MESH_ADMIN_PORT=${tok#*=} ;;
    esac
done
[ -n "${MESH_PORT:-}" ] || bail_out "meshd reports its outbound port" "$line"
ok "meshd compiles the YAML and serves it"
expect_no_match "$(cat "$MESHD_LOG")" "not enforced|left out" \
    "nothing in the YAML is left out or unenforced"

# many N URL [HEADER...]: N requests on one curl (-K), bodies one per line (the headers are
# given once: a config file's options apply to every URL in it)
many()
{
    local n=$1 url=$2 i h
    shift 2
    {
        for h in "$@"; do echo "header = \"$h\""; done
        for ((i = 0; i < n; i++)); do echo "url = \"$url\""; done
    } >"$T_DIR/curl.cfg"
    curl -s --max-time 60 -K "$T_DIR/curl.cfg"
}
U="http://127.0.0.1:$MESH_PORT"

# header route: every request of end-user jason goes to v2
n=$(many 20 "$U/x" "Host: reviews.test" "end-user: jason" | grep -c "hello from v2")
expect_eq "$n" 20 "headers end-user: jason -> subset v2 (20 of 20)"

# 80/20 canary over 10,000 requests: mean 2000, sd 40; 1820..2180 is 4.5 sd either way
n=$(many 10000 "$U/x" "Host: reviews.test" | grep -c "hello from v2")
[ "$n" -ge 1820 ] && [ "$n" -le 2180 ] && ok "80/20 split: $n of 10000 to v2" ||
    not_ok "80/20 split: $n of 10000 to v2 (want 1820..2180)"

# fault abort: answered locally, the backend never sees it
before=$(backend_count v1)
expect_eq "$(http_code "$U/fault/x" -H "Host: reviews.test")" 418 "fault abort answers 418"
expect_eq "$(backend_count v1)" "$before" "the aborted request did not reach the backend"

# retries on a backend that answers 503 to everything: counted on the backend
retry_count() # PATH: requests the flaky backend got for one client request (status: $T_DIR/code)
{
    local b a
    b=$(backend_count flaky)
    http_code "$U$1" -H "Host: flaky.test" >"$T_DIR/code"
    a=$(backend_count flaky)
    echo $((a - b))
}
expect_eq "$(retry_count /explicit)" 4 "retries {attempts: 3, retryOn: 5xx}: 4 tries"
expect_eq "$(cat "$T_DIR/code")" 503 "the last try's 503 reaches the client"
expect_eq "$(retry_count /default)" 3 "no retries given: Istio's default (2 retries on 503)"
expect_eq "$(retry_count /off)" 1 "retries {attempts: 0}: one try"

# consistent hash on x-user: each user sticks to one backend, users spread over several
spread=""
sticky_ok=1
for u in 1 2 3 4 5 6 7 8 9 10 11 12; do
    got=$(many 5 "$U/x" "Host: sticky.test" "x-user: user$u" | sort -u)
    [ "$(printf '%s\n' "$got" | grep -c "hello from h")" -eq 1 ] || {
        sticky_ok=0
        diag "user$u went to: $got"
    }
    spread+="$got"$'\n'
done
[ "$sticky_ok" -eq 1 ] && ok "consistentHash httpHeaderName: each user's 5 requests on one backend" ||
    not_ok "consistentHash httpHeaderName: a user moved between backends"
n=$(printf '%s' "$spread" | grep "hello from h" | sort -u | wc -l)
[ "$n" -ge 2 ] && ok "12 users spread over $n backends" ||
    not_ok "12 users all on one backend (chance 3^-11)"

# locality: the node is in us-east/zone-a, so its own region's endpoint takes everything;
# when that one fails, outlier detection ejects it and traffic fails over to us-west
n=$(many 20 "$U/x" "Host: geo.test" | grep -c "hello from east")
expect_eq "$n" 20 "localityLbSetting: the node's region serves all 20 requests"
curl -s "http://127.0.0.1:${BACKEND_PORT[east]}/__fail/503" >/dev/null
east_before=$(backend_count east)
out=$(many 20 "$U/x" "Host: geo.test")
expect_eq "$(printf '%s\n' "$out" | grep -c "hello from west")" 20 \
    "east failing: all 20 requests answered by us-west (retried, then east ejected)"
east_tries=$(($(backend_count east) - east_before))
expect_le "$east_tries" 2 "the failing us-east endpoint is ejected after its first 503 ($east_tries tries)"
expect_match "$(curl -s "$(admin_url /clusters)")" "ejected" "/clusters shows the ejection"

stop_meshd "$MESHD_PID"
