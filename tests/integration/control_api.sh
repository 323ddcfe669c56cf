#!/usr/bin/env bash
# tests/integration/control_api.sh: the control plane (`meshd --role=control`) and the
# `meshd ctl` commands that talk to it, end to end: data dir and token, apply / get /
# history / diff / rollback / delete, auth, errors, HTTP/2, optimistic concurrency with
# concurrent writers, and kill -9 in the middle of a large apply.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

if ! "$MESH_BIN" ctl apply --help 2>/dev/null | grep -q -- '--filename'; then
    skip "control API tests" "$MESH_BIN has no 'ctl apply' (main.c or ctl.c do not hand it over)"
    exit 0
fi
have_cmd curl || bail_out "curl is installed"

cd "$T_DIR" || bail_out "cd $T_DIR"
unset MESHD_SERVER MESHD_TOKEN
CTL=("$MESH_BIN" ctl)
DATA=$T_DIR/meshd-data   # also ctl's default ./meshd-data/token
CP_PID=
API_PORT=
CP_ADMIN_PORT=
T_CP_SEQ=0

# start_control DATA_DIR [KIND] [meshd args...]: starts the control plane on ephemeral ports
# and waits for "ready admin=PORT api=PORT". KIND is the lib.sh process kind: "meshd" (its exit
# is checked at the end) or "other" (a process this test kills with SIGKILL).
start_control()
{
    local dir=$1 kind=${2:-meshd}
    shift 2
    T_CP_SEQ=$((T_CP_SEQ + 1))
    local ready=$T_DIR/control-$T_CP_SEQ.ready log=$T_DIR/control-$T_CP_SEQ.log
    : >"$ready"
    "$MESH_BIN" --role=control --data-dir "$dir" --listen 127.0.0.1:0 --admin 127.0.0.1:0 \
        --ready-fd 3 "$@" 3>"$ready" >"$log" 2>&1 &
    CP_PID=$!
    CP_LOG=$log
    track "$CP_PID" "$kind" "control plane #$T_CP_SEQ" "$log"
    if ! wait_for 20 ready_line_complete "$ready" "$CP_PID"; then
        not_ok "control plane #$T_CP_SEQ ready" "ready fd got: $(cat "$ready")" \
            "log: $(tail -n 30 "$log")"
        return 1
    fi
    local line
    IFS= read -r line <"$ready"
    if [[ ! $line =~ ^ready\ admin=([0-9]+)\ api=([0-9]+)$ ]]; then
        not_ok "control plane ready line well-formed" "got: $(printf '%q' "$line")"
        return 1
    fi
    CP_ADMIN_PORT=${BASH_REMATCH[1]}
    API_PORT=${BASH_REMATCH[2]}
    export MESHD_SERVER=http://127.0.0.1:$API_PORT
    return 0
}

api_url()
{
    printf 'http://127.0.0.1:%s%s' "$API_PORT" "$1"
}

revision()
{
    "${CURL[@]}" "$(api_url /v1/revision)" | sed -n 's/^{"revision":\([0-9]*\)}$/\1/p'
}

# jstr TEXT KEY: the values of every "KEY":"string" in compact JSON TEXT, comma-separated, in
# order (the API answers compact JSON; no jq needed).
jstr()
{
    grep -o "\"$2\":\"[^\"]*\"" <<<"$1" | sed 's/^"[^"]*":"//; s/"$//' | paste -sd, -
}

# jnum TEXT KEY: the first "KEY":NUMBER.
jnum()
{
    grep -o "\"$2\":[0-9]*" <<<"$1" | head -n 1 | sed 's/.*://'
}

# ctl ARGS...: runs meshd ctl, stdout+stderr in $OUT, exit status in $RC.
ctl()
{
    OUT=$("${CTL[@]}" "$@" 2>&1)
    RC=$?
}

# ---- fixtures -------------------------------------------------------------------------

cat >bookinfo.yaml <<'EOF'
# reviews: a route to subset v1, its subsets, its Service, and an external API
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews
  labels:
    app: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
---
apiVersion: v1
kind: Service
metadata:
  name: reviews
  labels:
    app: reviews
spec:
  selector:
    app: reviews
  ports:
  - name: http
    port: 9080
---
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata:
  name: external-api
spec:
  hosts:
  - api.example.com
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
  - number: 443
    name: tls
    protocol: TLS
EOF

cat >bad.yaml <<'EOF'
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: bad
spec:
  hosts:
  - bad
  http:
  - route:
    - destination:
        host: bad
      weight: 300
EOF

# gen_vs N NAMESPACE LABEL: N VirtualServices (a big apply), labelled round=LABEL
gen_vs()
{
    awk -v n="$1" -v ns="$2" -v r="$3" 'BEGIN {
        for (i = 0; i < n; i++) {
            printf "---\napiVersion: networking.istio.io/v1beta1\nkind: VirtualService\n"
            printf "metadata:\n  name: svc-%d\n  namespace: %s\n  labels:\n    round: \"%s\"\n", i, ns, r
            printf "spec:\n  hosts:\n  - svc-%d.%s.svc.cluster.local\n  http:\n  - route:\n", i, ns
            printf "    - destination:\n        host: svc-%d.%s.svc.cluster.local\n", i, ns
        }
    }'
}

# ---- start-up: data dir and token -------------------------------------------------------

start_control "$DATA" meshd || bail_out "the control plane starts"
ok "control plane ready on api=$API_PORT admin=$CP_ADMIN_PORT"
expect_eq "$(stat -c %a "$DATA")" 700 "the data dir is created 0700"
expect_eq "$(stat -c %a "$DATA/token")" 600 "the token file is 0600"
TOKEN=$(cat "$DATA/token")
expect_match "$TOKEN" '^[0-9a-f]{64}$' "the token is 32 random bytes in hex"
expect_eq "$(stat -c %a "$DATA/store.db")" 600 "the store is 0600"
expect_eq "$("${CURL[@]}" "$(api_url /healthz)")" '{"status":"ok"}' "GET /healthz over HTTP/1.1"
expect_eq "$("${CURL[@]}" --http2-prior-knowledge -o /dev/null -w '%{http_version} %{http_code}' \
    "$(api_url /healthz)")" "2 200" "GET /healthz over HTTP/2 (h2c prior knowledge)"
expect_eq "$(http_code "http://127.0.0.1:$CP_ADMIN_PORT/ready")" 200 "the admin listener answers /ready"
expect_eq "$(revision)" 0 "a new store is at revision 0"

# ---- apply, get ---------------------------------------------------------------------------

# no MESHD_TOKEN: ctl reads ./meshd-data/token
ctl apply -f bookinfo.yaml
expect_eq "$RC" 0 "ctl apply (token from ./meshd-data/token) exits 0"
expect_eq "$OUT" "virtualservice.networking.istio.io/reviews created
destinationrule.networking.istio.io/reviews created
service/reviews created
serviceentry.networking.istio.io/external-api created" "ctl apply prints kubectl-style lines"
expect_eq "$(revision)" 1 "the whole file is one revision"

# ctl snapshot without -f compiles what the control plane holds (like istioctl proxy-config)
SNAP=$("${CTL[@]}" snapshot --node default/productpage 2>/dev/null)
expect_match "$SNAP" '"name": "outbound\|9080\|v1\|reviews.default.svc.cluster.local"' \
    "ctl snapshot (no -f): the subset cluster compiled from the control plane's resources"
expect_eq "$(printf '%s' "$SNAP" | "${CTL[@]}" snapshot --node default/productpage -f bookinfo.yaml \
    2>/dev/null | cmp - <(printf '%s\n' "$SNAP") >/dev/null && echo same)" same \
    "ctl snapshot: the control plane's and the file's compile are byte-identical"
export MESHD_TOKEN=$TOKEN

ctl get vs
expect_match "$OUT" $'^NAME +GATEWAYS +HOSTS +REVISION +AGE\nreviews +\\["reviews"\\] +1 +[0-9]+s$' \
    "ctl get vs: a table with Istio's columns"
ctl get svc
expect_match "$OUT" $'^NAME +TYPE +CLUSTER-IP +PORT\\(S\\) +REVISION +AGE\nreviews +ClusterIP +<none> +9080/TCP +1 +' \
    "ctl get svc: TYPE, CLUSTER-IP, PORT(S)"
ctl get serviceentries -A
expect_match "$OUT" $'^NAMESPACE +NAME +HOSTS +LOCATION +RESOLUTION +REVISION +AGE\ndefault +external-api +\\["api.example.com"\\] +MESH_EXTERNAL +DNS +1 +' \
    "ctl get serviceentries -A: NAMESPACE column and SE columns"
ctl get dr -o wide
expect_match "$OUT" $'^NAME +HOST +REVISION +AGE +LABELS\nreviews +reviews +1 +[0-9]+s +<none>$' \
    "ctl get dr -o wide adds LABELS"
ctl get all
expect_match "$OUT" 'destinationrule.networking.istio.io/reviews' "ctl get all lists every kind"
expect_match "$OUT" 'service/reviews +ClusterIP' "ctl get all: one table per kind"
ctl get dr reviews -o yaml
expect_match "$OUT" $'^apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata:\n  creationTimestamp: \'[0-9T:-]+Z\'\n  name: reviews\n  namespace: default\n  resourceVersion: \'1\'\nspec:\n  host: reviews' \
    "ctl get dr reviews -o yaml"
ctl get vs -o json
expect_match "$OUT" $'^\\{\n    "apiVersion": "v1",\n    "kind": "List",\n    "metadata": \\{\n        "resourceVersion": "1"\n    \\},\n    "items": \\[\n' \
    "ctl get vs -o json is a List"
ctl get vs -l app=reviews -o name
expect_eq "$OUT" "virtualservice.networking.istio.io/reviews" "ctl get -l app=reviews -o name"
ctl get vs -l 'app in (ratings)'
expect_eq "$RC $OUT" "0 No resources found in default namespace." "ctl get with a selector that matches nothing"
ctl get vs nope
expect_eq "$RC $OUT" '1 Error from server (NotFound): virtualservices.networking.istio.io "nope" not found' \
    "ctl get of a missing resource"
ctl get widgets
expect_match "$RC $OUT" '^1 error: the server doesn.t have a resource type "widgets"' "ctl get of an unknown kind"

# ---- unchanged, configured, history, diff, rollback -----------------------------------------

ctl apply -f bookinfo.yaml
expect_eq "$(grep -c ' unchanged$' <<<"$OUT") $(revision)" "4 1" "re-applying the same file: unchanged, no new revision"
sed 's/subset: v1/subset: v2/' bookinfo.yaml >bookinfo-v2.yaml
ctl apply -f bookinfo-v2.yaml --note "canary to v2"
expect_match "$OUT" $'^virtualservice.networking.istio.io/reviews configured\ndestinationrule.networking.istio.io/reviews unchanged' \
    "an edited file: configured and unchanged"
expect_eq "$(revision)" 2 "the edit is revision 2"

ctl history
expect_match "$OUT" $'^REVISION +TIME +OP +KIND +NAMESPACE +NAME +NOTE\n1 +[0-9T:-]+Z +create +DestinationRule +default +reviews +' \
    "ctl history: a table, oldest first"
expect_match "$OUT" $'\n2 +[0-9T:-]+Z +update +VirtualService +default +reviews +canary to v2$' \
    "ctl history shows the update and its note"
ctl history vs/reviews
expect_eq "$(grep -c 'VirtualService' <<<"$OUT")" 2 "ctl history vs/reviews: two revisions"

ctl diff 1 2
expect_match "$OUT" $'^--- VirtualService/default/reviews@1\n\\+\\+\\+ VirtualService/default/reviews@2\n@@ ' \
    "ctl diff 1 2: unified diff headers"
expect_match "$OUT" $'\n-        subset: v1\n\\+        subset: v2' "ctl diff 1 2: the change"
ctl diff 1
expect_match "$OUT" 'reviews@2' "ctl diff 1: against the current revision"
ctl diff x
expect_eq "$RC" 2 "ctl diff x: usage error"

ctl rollback 1
expect_eq "$OUT" "virtualservice.networking.istio.io/reviews configured
rolled back to revision 1: new revision 3" "ctl rollback 1"
ctl get vs reviews -o yaml
expect_match "$OUT" "resourceVersion: '3'" "after the rollback the object is at revision 3"
expect_match "$OUT" 'subset: v1' "after the rollback get shows the old state"
ctl rollback 3
expect_match "$RC $OUT" '^0 nothing to do' "rolling back to the current state changes nothing"
ctl rollback 99
expect_match "$RC $OUT" '^1 Error from server \(BadRequest\): .*revision 99 does not exist' \
    "rolling back to a revision that does not exist"

# ---- delete ---------------------------------------------------------------------------------

ctl delete vs reviews
expect_eq "$RC $OUT" '0 virtualservice.networking.istio.io "reviews" deleted' "ctl delete vs reviews"
ctl get vs reviews
expect_eq "$RC" 1 "a deleted resource is gone"
ctl delete vs reviews
expect_eq "$RC $OUT" '1 Error from server (NotFound): virtualservices.networking.istio.io "reviews" not found' \
    "deleting it again: NotFound"
ctl delete vs reviews --ignore-not-found
expect_eq "$RC" 0 "--ignore-not-found"
ctl history vs/reviews
expect_match "$OUT" $'\n4 +[0-9T:-]+Z +delete +VirtualService +default +reviews' "history keeps the delete"
ctl delete -f bookinfo.yaml --ignore-not-found
expect_match "$RC $OUT" $'^0 destinationrule.networking.istio.io "reviews" deleted\nservice "reviews" deleted\nserviceentry.networking.istio.io "external-api" deleted$' \
    "ctl delete -f FILE"
ctl apply -f bookinfo.yaml
expect_eq "$(grep -c ' created$' <<<"$OUT")" 4 "everything can be created again"

# ---- auth -------------------------------------------------------------------------------------

rev_auth=$(revision)
OUT=$(MESHD_TOKEN=0123456789abcdef "${CTL[@]}" apply -f bookinfo-v2.yaml 2>&1)
RC=$?
expect_match "$RC $OUT" '^1 error: the control plane refused the token \(401\): check --token-file or MESHD_TOKEN' \
    "a wrong token: the 401 message"
echo wrong-token-0000000000 >wrong.token
ctl apply -f bookinfo-v2.yaml --token-file wrong.token
expect_match "$RC $OUT" '^1 error: the control plane refused the token \(401\).*--token-file wrong.token' \
    "a wrong --token-file: the 401 message names it"
hdrs=$("${CURL[@]}" -D - -o /dev/null -X POST --data-binary @bookinfo.yaml "$(api_url /v1/apply)")
expect_match "$hdrs" '^HTTP/1.1 401' "POST /v1/apply without a token: 401"
expect_match "$hdrs" 'www-authenticate: Bearer realm="meshd"' "401 carries WWW-Authenticate"
expect_eq "$(http_code "$(api_url /v1/resources)")" 200 "reads from loopback need no token"
expect_eq "$(http_code "$(api_url /v1/resources)" -H 'Authorization: Bearer nope')" 401 \
    "a read with a wrong token is refused"
expect_eq "$(revision)" "$rev_auth" "refused writes changed nothing"

# ---- errors before the server, server down ------------------------------------------------------

down=$(free_port) || bail_out "a free port"
line=$(grep -n 'weight: 300' bad.yaml | cut -d: -f1)
col=$(($(grep 'weight: 300' bad.yaml | awk '{ print index($0, "300") }')))
OUT=$(MESHD_SERVER=http://127.0.0.1:$down "${CTL[@]}" apply -f bad.yaml 2>&1)
RC=$?
expect_match "$RC $OUT" "^1 bad.yaml:$line:$col: VirtualService default/bad: spec.http\\[0\\].route\\[0\\].weight: must be between 0 and 100" \
    "a file with errors: FILE:LINE:COL"
expect_match "$OUT" 'nothing was sent to the control plane' "... refused before contacting the server"
expect_no_match "$OUT" 'cannot reach' "... which was not contacted (it is down)"
OUT=$(MESHD_SERVER=http://127.0.0.1:$down "${CTL[@]}" get vs 2>&1)
RC=$?
expect_eq "$RC $OUT" "1 error: cannot reach the control plane at http://127.0.0.1:$down: connection refused (is \`meshd --role=control\` running? set --server or MESHD_SERVER)" \
    "server down: the clear message"
ctl get vs --server https://127.0.0.1:1
expect_match "$RC $OUT" '^2 error: the control plane URL "https://127.0.0.1:1": https is not supported' \
    "an https URL is refused clearly"

# ---- the API directly: PUT, resourceVersion, status codes ---------------------------------------

AUTH=(-H "Authorization: Bearer $TOKEN")
dr_yaml()  # dr_yaml RESOURCE_VERSION HOST
{
    printf 'apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata:\n'
    printf '  name: reviews\n  namespace: default\n'
    [ -n "$1" ] && printf '  resourceVersion: "%s"\n' "$1"
    printf 'spec:\n  host: %s\n' "$2"
}
rv=$(jstr "$("${CURL[@]}" "$(api_url /v1/resources/dr/default/reviews)")" resourceVersion)
code=$(dr_yaml "$rv" reviews.default.svc.cluster.local |
    "${CURL[@]}" -o put1.json -w '%{http_code}' -X PUT "${AUTH[@]}" --data-binary @- \
        "$(api_url /v1/resources/destinationrules/default/reviews)")
expect_eq "$code $(jstr "$(cat put1.json)" result)" "200 configured" \
    "PUT with the current resourceVersion: configured"
code=$(dr_yaml "$rv" reviews |
    "${CURL[@]}" -o put2.json -w '%{http_code}' -X PUT "${AUTH[@]}" --data-binary @- \
        "$(api_url /v1/resources/dr/default/reviews)")
expect_eq "$code" 409 "PUT with a stale resourceVersion: 409"
expect_match "$(cat put2.json)" '"error":"DestinationRule default/reviews: the object has been modified' \
    "... with the reason"
code=$("${CURL[@]}" -o put3.json -w '%{http_code}' -X PUT "${AUTH[@]}" --http2-prior-knowledge \
    -H 'Content-Type: application/json' \
    --data '{"apiVersion":"networking.istio.io/v1","kind":"DestinationRule","metadata":{"name":"ratings"},"spec":{"host":"ratings"}}' \
    "$(api_url /v1/resources/dr/prod/ratings)")
expect_eq "$code $(jstr "$(cat put3.json)" result) $(jstr "$(cat put3.json)" namespace)" \
    "201 created prod,prod" "PUT of a new JSON object over HTTP/2: 201, namespace from the URL"
code=$(dr_yaml "" reviews | "${CURL[@]}" -o put4.json -w '%{http_code}' -X PUT "${AUTH[@]}" \
    --data-binary @- "$(api_url /v1/resources/dr/default/other)")
expect_eq "$code" 400 "PUT whose document names another object: 400"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -X DELETE "${AUTH[@]}" \
    "$(api_url /v1/resources/dr/default/reviews?resourceVersion=1)")
expect_eq "$code" 409 "DELETE with a stale resourceVersion: 409"
code=$("${CURL[@]}" -o err.json -w '%{http_code}' -X POST "${AUTH[@]}" --data-binary @bad.yaml \
    "$(api_url /v1/apply)")
expect_eq "$code $(grep -o '"details":\["[^"]*"' err.json | sed 's/^"details":\["//; s/"$//')" \
    "400 body:$line:$col: VirtualService default/bad: spec.http[0].route[0].weight: must be between 0 and 100" \
    "POST /v1/apply of an invalid body: 400 with FILE:LINE:COL details"
before=$(revision)
code=$("${CURL[@]}" -o dry.json -w '%{http_code}' -X POST "${AUTH[@]}" --data-binary @bookinfo-v2.yaml \
    "$(api_url '/v1/apply?dryRun=1')")
expect_eq "$code $(jstr "$(cat dry.json)" result) $(revision)" \
    "200 configured,configured,unchanged,unchanged $before" "dryRun=1 says what would change, changes nothing"
code=$("${CURL[@]}" -o h2.json -w '%{http_code} %{http_version}' --http2-prior-knowledge -X POST \
    "${AUTH[@]}" --data-binary @bookinfo-v2.yaml "$(api_url /v1/apply)")
expect_eq "$code $(jnum "$(cat h2.json)" revision)" "200 2 $((before + 1))" "POST /v1/apply over HTTP/2"
expect_eq "$(jstr "$("${CURL[@]}" --http2-prior-knowledge \
    "$(api_url '/v1/resources?kind=vs&namespace=default')")" subset)" v2 "GET /v1/resources over HTTP/2"
expect_eq "$(http_code "$(api_url /v1/resources/vs/default/reviews)" -X POST)" 405 "wrong method: 405"
expect_eq "$(http_code "$(api_url /v2/nothing)")" 404 "unknown endpoint: 404"
expect_eq "$(http_code "$(api_url '/v1/resources?kind=vs&namepsace=x')")" 400 "unknown query parameter: 400"
expect_eq "$(http_code "$(api_url '/v1/resources?kind=widgets')")" 400 "unknown kind: 400"
expect_eq "$(http_code "$(api_url '/v1/diff?from=abc')")" 400 "bad revision: 400"
big=$(raw "$API_PORT" "send:POST /v1/apply HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer $TOKEN\r\nContent-Length: 70000000\r\n\r\n" readall)
expect_eq "$(status_of "$big")" 413 "a body over 64 MiB: 413"
expect_eq "$("${CURL[@]}" "$(api_url '/v1/diff?from=1&to=2')" -o /dev/null -w '%{content_type}')" \
    "text/plain; charset=utf-8" "/v1/diff is text/plain"

# ---- concurrent writers lose no update ----------------------------------------------------------

cat >counter.yaml <<'EOF'
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: counter
  labels:
    count: "0"
spec:
  hosts:
  - counter
  http:
  - route:
    - destination:
        host: counter
EOF
ctl apply -f counter.yaml
# increment N: N read-modify-write rounds (get -o yaml, count+1, apply with its
# resourceVersion), retrying on 409; bounded.
increment()
{
    local i tries y n
    for ((i = 0; i < $1; i++)); do
        for ((tries = 0; tries < 100; tries++)); do
            y=$("${CTL[@]}" get vs counter -o yaml) || return 1
            n=$(sed -n "s/^    count: '\([0-9]*\)'$/\1/p" <<<"$y")
            y=$(sed "s/^    count: '[0-9]*'$/    count: '$((n + 1))'/" <<<"$y")
            "${CTL[@]}" apply -f - <<<"$y" >/dev/null 2>>"$T_DIR/conflicts.log" && break
        done
        [ "$tries" -lt 100 ] || return 1
    done
}
N=8
increment $N & w1=$!
increment $N & w2=$!
wait "$w1"; r1=$?
wait "$w2"; r2=$?
expect_eq "$r1 $r2" "0 0" "two concurrent read-modify-write loops finish"
ctl get vs counter -o yaml
expect_match "$OUT" "count: '$((2 * N))'" "no update was lost: the counter is $((2 * N))"
ctl history vs/counter
expect_eq "$(grep -c ' update ' <<<"$OUT")" $((2 * N)) "one revision per increment"
diag "conflicts retried: $(grep -c 'has been modified' "$T_DIR/conflicts.log" 2>/dev/null)"

# two blind appliers of different files at once: every apply succeeds
flip()
{
    local i
    for ((i = 0; i < 6; i++)); do
        sed "s/subset: v[12]/subset: v$((i % 2 + 1))/" "$1" >"$1.$i.yaml"
        "${CTL[@]}" apply -f "$1.$i.yaml" >/dev/null || return 1
    done
}
sed 's/name: reviews$/name: reviews-a/' bookinfo.yaml >a.yaml
sed 's/name: reviews$/name: reviews-b/' bookinfo.yaml >b.yaml
flip a.yaml & w1=$!
flip b.yaml & w2=$!
wait "$w1"; r1=$?
wait "$w2"; r2=$?
expect_eq "$r1 $r2" "0 0" "two concurrent appliers: every apply succeeds"

# ---- signals ----------------------------------------------------------------------------------

kill -HUP "$CP_PID"
wait_for 5 grep -q 'SIGHUP ignored' "$CP_LOG"
check "SIGHUP is logged and ignored" grep -q 'SIGHUP ignored' "$CP_LOG"
expect_eq "$(http_code "$(api_url /healthz)")" 200 "still serving after SIGHUP"

# ---- reads from a non-loopback address need the token -------------------------------------------

ext=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' |
    grep -v '^127\.' | head -n 1)
if [ -n "$ext" ]; then
    main_pid=$CP_PID main_port=$API_PORT main_admin=$CP_ADMIN_PORT
    mkdir -m 700 ext-data && cp "$DATA/token" ext-data/token && chmod 600 ext-data/token
    if start_control "$T_DIR/ext-data" meshd --listen "$ext:0"; then
        expect_eq "$(http_code "http://$ext:$API_PORT/v1/resources")" 401 \
            "a read from $ext (not loopback) without the token: 401"
        expect_eq "$(http_code "http://$ext:$API_PORT/v1/resources" "${AUTH[@]}")" 200 \
            "... with the token (an existing token file is reused): 200"
        check "a non-loopback API is warned about" grep -q 'not loopback' "$CP_LOG"
        stop_meshd "$CP_PID"
    fi
    CP_PID=$main_pid API_PORT=$main_port CP_ADMIN_PORT=$main_admin
    export MESHD_SERVER=http://127.0.0.1:$API_PORT
else
    skip "non-loopback reads need the token" "no non-loopback IPv4 address"
fi

# ---- kill -9 during a large apply --------------------------------------------------------------

if ! have_cmd ss; then
    skip "kill -9 during a large apply" "ss (iproute2) is not installed"
    stop_meshd "$CP_PID"
    exit 0
fi

rev_stop=$(revision)
stop_meshd "$CP_PID" || true
start_control "$DATA" other || bail_out "the control plane restarts on the same data dir"
expect_eq "$(revision)" "$rev_stop" "the restarted control plane serves the same store"
established()
{
    [ -n "$(ss -Htn state established "( dport = :$API_PORT )" 2>/dev/null)" ]
}
now_ms()
{
    date +%s%3N
}
# How long one whole apply of 3000 objects takes here (sanitizers make it slow): the kills
# below land at fractions of it, so that they hit the body upload, the validation and the
# store's write transaction in turn.
gen_vs 3000 warm warm >big-warm.yaml
t0=$(now_ms)
"${CTL[@]}" apply -f big-warm.yaml >/dev/null 2>&1 &
apid=$!
wait_for 60 established
t1=$(now_ms)
wait_exit "$apid" 120
full=$(($(now_ms) - t1))
expect_eq "$T_LAST_STATUS" 0 "a 3000-object apply (local validation $((t1 - t0)) ms, then $full ms)"
for round in 1 2 3 4; do
    gen_vs 3000 bench "r$round" >"big-$round.yaml"
    rev0=$(revision)
    "${CTL[@]}" apply -f "big-$round.yaml" >"apply-$round.out" 2>&1 &
    apid=$!
    wait_for 60 established
    delay=$((full * (round * 2 - 1) / 8))
    sleep "$((delay / 1000)).$(printf '%03d' $((delay % 1000)))"
    kill -9 "$CP_PID"
    wait_exit "$CP_PID" 10 2>/dev/null
    wait_exit "$apid" 60
    arc=$T_LAST_STATUS
    start_control "$DATA" other || bail_out "restart after kill -9 (round $round)"
    rev1=$(revision)
    n=$("${CTL[@]}" get vs -n bench -l "round=r$round" -o name 2>/dev/null | wc -l)
    others=$("${CTL[@]}" get vs -n bench -l "round!=r$round" -o name 2>/dev/null | wc -l)
    if [ "$rev1" = "$rev0" ] && [ "$n" = 0 ]; then
        ok "kill -9 after $delay ms (round $round): the apply was not committed, no trace of it"
    elif [ "$rev1" = "$((rev0 + 1))" ] && [ "$n" = 3000 ] && [ "$others" = 0 ]; then
        ok "kill -9 after $delay ms (round $round): the whole apply was committed as revision $rev1"
    else
        not_ok "kill -9 round $round leaves all or nothing" \
            "revision $rev0 -> $rev1, $n objects of round $round, $others of other rounds"
    fi
    if [ "$arc" = 0 ]; then
        ok "round $round: ctl apply finished before the kill"
    else
        expect_match "$(cat "apply-$round.out")" 'error: the control plane at http://127.0.0.1:[0-9]+: ' \
            "round $round: the interrupted ctl apply says the server went away"
    fi
done
ctl get vs counter -o yaml
expect_match "$OUT" "count: '$((2 * N))'" "after the restarts the last committed state is served"
stop_meshd "$CP_PID"
