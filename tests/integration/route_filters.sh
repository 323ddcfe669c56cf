#!/usr/bin/env bash
# The built-in route filters seen from outside: header operations (route and destination
# level, both directions), CORS (preflight answered locally, simple request headers), fault
# injection (delay, abort by percent, gRPC abort, a client leaving during a delay), rewrite
# (prefix, regex, authority; HTTP/1.1 and HTTP/2 upstream) and redirects.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${MESH_SRCDIR:-$(dirname "$0")/../..}/tests/integration/lib.sh"

start_backend a
start_backend c   # only the abandoned fault delays route here
A=${BACKEND_PORT[a]}
C=${BACKEND_PORT[c]}

# HTTP/2 upstream: nghttpd serving files, verbose so its log shows each request head.
mkdir -p "$T_DIR/docroot/new"
printf 'new file over h2\n' >"$T_DIR/docroot/new/file.txt"
H2=
if start_nghttpd h2 "$T_DIR/docroot" -v; then
    H2=${BACKEND_PORT[h2]}
else
    diag "nghttpd not installed: HTTP/2 upstream rewrite checks are skipped"
fi
# The HTTP/2 upstream's virtual host and cluster, when nghttpd is there.
H2_VHOST= H2_CLUSTER=
if [ -n "$H2" ]; then
    H2_VHOST=$(cat <<'EOF'
,{"name":"rw2","domains":["rw2.test"],"routes":[
   {"match":{"prefix":"/old"},"route":{"cluster":"h2","rewrite":{"prefix":"/new"}}},
   {"match":{"prefix":"/re/"},"route":{"cluster":"h2",
    "rewrite":{"regex":{"pattern":"^/re/(.*)$","substitution":"/new/\\1"}}}},
   {"match":{"prefix":"/auth/"},"route":{"cluster":"h2",
    "rewrite":{"prefix":"/new/","authority":"h2-internal.example"}}}]}
EOF
)
    H2_CLUSTER=",{\"name\":\"h2\",\"protocol\":\"http2\",\"endpoints\":[{\"address\":\"127.0.0.1\",\"port\":$H2}]}"
fi

cat >"$T_DIR/filters.json" <<EOF
{"version":"filters-1",
 "admin":{"address":"127.0.0.1","port":0},
 "listeners":[{"name":"main","address":"127.0.0.1","port":0,"route_config":"rc"}],
 "route_configs":[{"name":"rc","virtual_hosts":[
  {"name":"hdr","domains":["hdr.test"],"routes":[
   {"match":{"prefix":"/"},"route":{"cluster":"a"},
    "request_headers":{"set":{"x-set":"route"},"add":{"x-added":"r1"},"remove":["x-drop"]},
    "response_headers":{"set":{"x-resp-set":"one"},"add":{"x-resp-add":"two"},
                        "remove":["x-backend"]}}]},
  {"name":"dest","domains":["dest.test"],"routes":[
   {"match":{"prefix":"/"},
    "request_headers":{"set":{"x-order":"route"}},
    "response_headers":{"set":{"x-resp-order":"route"}},
    "route":{"weighted_clusters":[{"name":"a","weight":1,
      "request_headers":{"set":{"x-order":"dest","x-dest":"a"}},
      "response_headers":{"add":{"x-dest-resp":"a"}}}]}}]},
  {"name":"cors","domains":["cors.test"],"routes":[
   {"match":{"prefix":"/"},"route":{"cluster":"a"},
    "cors":{"allow_origins":[{"exact":"https://ok.example"},{"regex":"https://[a-z]+\\\\.dev\\\\.example"}],
            "allow_methods":["GET","PUT"],"allow_headers":["x-a","x-b"],
            "expose_headers":["x-backend"],"max_age_s":600,"allow_credentials":true}}]},
  {"name":"cors-ignore","domains":["cors-ignore.test"],"routes":[
   {"match":{"prefix":"/"},"route":{"cluster":"a"},
    "cors":{"allow_origins":[{"exact":"https://ok.example"}],"unmatched_preflights":"ignore"}}]},
  {"name":"fault","domains":["fault.test"],"routes":[
   {"match":{"prefix":"/delay"},"route":{"cluster":"a"},
    "fault":{"delay":{"fixed_delay_ms":300,"percent":100}}},
   {"match":{"prefix":"/p100"},"route":{"cluster":"a"},"fault":{"abort":{"http_status":503}}},
   {"match":{"prefix":"/p0"},"route":{"cluster":"a"},
    "fault":{"abort":{"http_status":503,"percent":0}}},
   {"match":{"prefix":"/p50"},"route":{"cluster":"a"},
    "fault":{"abort":{"http_status":418,"percent":50}}},
   {"match":{"prefix":"/grpc"},"route":{"cluster":"a"},"fault":{"abort":{"grpc_status":14}}},
   {"match":{"prefix":"/both"},"route":{"cluster":"a"},
    "fault":{"delay":{"fixed_delay_ms":200},"abort":{"http_status":502}}},
   {"match":{"prefix":"/abandoned"},"route":{"cluster":"c"},
    "fault":{"delay":{"fixed_delay_ms":600}}},
   {"match":{"prefix":"/after-half-close"},"route":{"cluster":"a"},
    "fault":{"delay":{"fixed_delay_ms":600}}},
   {"match":{"prefix":"/after"},"route":{"cluster":"a"},
    "fault":{"delay":{"fixed_delay_ms":1000}}}]},
  {"name":"rw","domains":["rw.test"],"routes":[
   {"match":{"prefix":"/api/v1"},"route":{"cluster":"a","rewrite":{"prefix":"/echo"}}},
   {"match":{"path":"/login"},"route":{"cluster":"a","rewrite":{"prefix":"/echo"}}},
   {"match":{"prefix":"/x/"},"route":{"cluster":"a",
    "rewrite":{"regex":{"pattern":"^/x/([a-z]+)/y\$","substitution":"/\\\\1"}}}},
   {"match":{"prefix":"/auth"},"route":{"cluster":"a",
    "rewrite":{"prefix":"/headers","authority":"internal.example:81"}}}]}
  $H2_VHOST
  ,{"name":"redir","domains":["redir.test"],"routes":[
   {"match":{"prefix":"/r301"},"redirect":{"path":"/moved"}},
   {"match":{"prefix":"/r302"},"redirect":{"scheme":"https","port":8443,"code":302}},
   {"match":{"prefix":"/r308"},"redirect":{"authority":"other.example","code":308},
    "response_headers":{"add":{"x-redirected":"yes"}}}]}]}],
 "clusters":[
   {"name":"a","protocol":"http1","endpoints":[{"address":"127.0.0.1","port":$A}]},
   {"name":"c","protocol":"http1","endpoints":[{"address":"127.0.0.1","port":$C}]}
   $H2_CLUSTER]}
EOF
start_meshd "$T_DIR/filters.json" || bail_out "meshd starts"
URL="http://127.0.0.1:$MESH_PORT"

# stat NAME: the counter's value in the admin /stats.
stat()
{
    "${CURL[@]}" "$(admin_url /stats)" | sed -n "s/^$1: //p"
}

# ---- header operations --------------------------------------------------------------

out=$("${CURL[@]}" -i -H 'Host: hdr.test' -H 'X-Set: client' -H 'X-Added: c1' -H 'X-Drop: 1' \
    "$URL/headers")
body=$(body_of "$out")
expect_match "$body" $'(^|\n)x-set: route\n' "request set: the backend sees the route's value"
expect_no_match "$body" 'X-Set: client' "request set: the client's value is gone"
expect_match "$body" 'X-Added: c1.*x-added: r1' "request add: appended after the client's"
expect_no_match "$body" '(^|\n)[Xx]-[Dd]rop:' "request remove: x-drop does not reach the backend"
expect_eq "$(header_of "$out" x-resp-set)" one "response set"
expect_eq "$(header_of "$out" x-resp-add)" two "response add"
expect_eq "$(header_of "$out" x-backend)" "" "response remove: x-backend is gone"

out=$("${CURL[@]}" -i -H 'Host: dest.test' "$URL/headers")
body=$(body_of "$out")
expect_match "$body" $'x-order: dest\n' "destination request headers run after the route's"
expect_no_match "$body" 'x-order: route' "the route's x-order was replaced by the destination's"
expect_match "$body" $'x-dest: a\n' "destination request set"
expect_eq "$(header_of "$out" x-dest-resp)" a "destination response add"
expect_eq "$(header_of "$out" x-resp-order)" route "route response set next to the destination's"

# over HTTP/2 downstream too (lowercase names on the wire)
out=$("${CURL[@]}" --http2-prior-knowledge -i -H 'Host: hdr.test' -H 'X-Drop: 1' "$URL/headers")
expect_match "$out" 'x-resp-set: one' "HTTP/2 downstream: response set"
expect_no_match "$(body_of "$out")" '[Xx]-[Dd]rop' "HTTP/2 downstream: request remove"

# ---- CORS -----------------------------------------------------------------------------

before=$(backend_count a)
pre=$(stat cors_preflight)
out=$("${CURL[@]}" -i -X OPTIONS -H 'Host: cors.test' -H 'Origin: https://ok.example' \
    -H 'Access-Control-Request-Method: PUT' "$URL/thing")
expect_eq "$(status_of "$out")" 200 "preflight from an allowed origin: 200"
expect_eq "$(header_of "$out" access-control-allow-origin)" https://ok.example "preflight: allow-origin"
expect_eq "$(header_of "$out" access-control-allow-methods)" "GET, PUT" "preflight: allow-methods"
expect_eq "$(header_of "$out" access-control-allow-headers)" "x-a, x-b" "preflight: allow-headers"
expect_eq "$(header_of "$out" access-control-max-age)" 600 "preflight: max-age"
expect_eq "$(header_of "$out" access-control-allow-credentials)" true "preflight: credentials"
expect_eq "$(header_of "$out" x-backend)" "" "preflight: answered by meshd, not the backend"
out=$("${CURL[@]}" -i -X OPTIONS -H 'Host: cors.test' -H 'Origin: https://abc.dev.example' \
    -H 'Access-Control-Request-Method: GET' "$URL/thing")
expect_eq "$(header_of "$out" access-control-allow-origin)" https://abc.dev.example \
    "preflight: an origin matching the regex"
expect_eq "$(backend_count a)" "$before" "preflights never reach the backend (/__count)"
expect_eq "$(stat cors_preflight)" $((pre + 2)) "cors_preflight counts them"

out=$("${CURL[@]}" -i -X OPTIONS -H 'Host: cors.test' -H 'Origin: https://evil.example' \
    -H 'Access-Control-Request-Method: PUT' "$URL/thing")
expect_eq "$(header_of "$out" x-backend)" a "unmatched preflight (forward): reaches the backend"
expect_eq "$(header_of "$out" access-control-allow-origin)" "" "unmatched preflight: no allow-origin"
before=$(backend_count a)
out=$("${CURL[@]}" -i -X OPTIONS -H 'Host: cors-ignore.test' -H 'Origin: https://evil.example' \
    -H 'Access-Control-Request-Method: PUT' "$URL/thing")
expect_eq "$(status_of "$out")" 200 "unmatched preflight (ignore): 200"
expect_eq "$(header_of "$out" access-control-allow-origin)" "" "unmatched preflight (ignore): no CORS headers"
expect_eq "$(backend_count a)" "$before" "unmatched preflight (ignore): answered locally"

out=$("${CURL[@]}" -i -H 'Host: cors.test' -H 'Origin: https://ok.example' "$URL/thing")
expect_eq "$(header_of "$out" x-backend)" a "simple CORS request goes to the backend"
expect_eq "$(header_of "$out" access-control-allow-origin)" https://ok.example "simple request: allow-origin"
expect_eq "$(header_of "$out" access-control-allow-credentials)" true "simple request: credentials"
expect_eq "$(header_of "$out" access-control-expose-headers)" x-backend "simple request: expose-headers"
out=$("${CURL[@]}" -i -H 'Host: cors.test' -H 'Origin: https://evil.example' "$URL/thing")
expect_eq "$(header_of "$out" access-control-allow-origin)" "" "simple request from another origin: no CORS headers"

# ---- fault injection --------------------------------------------------------------------

before=$(backend_count a)
d0=$(stat fault_delays_injected)
res=$("${CURL[@]}" -o /dev/null -w '%{http_code} %{time_total}' -H 'Host: fault.test' "$URL/delay")
expect_eq "${res% *}" 200 "delayed request still succeeds"
ms=$(awk -v t="${res#* }" 'BEGIN { printf "%d", t * 1000 }')
expect_le 250 "$ms" "a 300 ms delay takes at least 250 ms (took $ms ms)"
expect_eq "$(backend_count a)" $((before + 1)) "the delayed request reached the backend once"
expect_eq "$(stat fault_delays_injected)" $((d0 + 1)) "fault_delays_injected counts it"
res=$("${CURL[@]}" --http2-prior-knowledge -o /dev/null -w '%{http_code} %{time_total}' \
    -H 'Host: fault.test' "$URL/delay")
ms=$(awk -v t="${res#* }" 'BEGIN { printf "%d", t * 1000 }')
expect_eq "${res% *}" 200 "HTTP/2 downstream: delayed request succeeds"
expect_le 250 "$ms" "HTTP/2 downstream: the delay is observed (took $ms ms)"

# codes URL_PATH N: N requests to fault.test, one status code per line.
codes()
{
    "${CURL[@]}" --max-time 60 -o /dev/null -w '%{http_code}\n' -H 'Host: fault.test' \
        "$URL$1/[1-$2]"
}
a0=$(stat fault_aborts_injected)
before=$(backend_count a)
c100=$(codes /p100 50)
expect_eq "$(grep -c '^503$' <<<"$c100")" 50 "abort 100%: all 50 answered 503"
expect_eq "$(backend_count a)" "$before" "abort 100%: nothing reaches the backend"
out=$("${CURL[@]}" -i -H 'Host: fault.test' "$URL/p100")
expect_match "$(body_of "$out")" 'fault filter abort' "abort: the body says why"
c0=$(codes /p0 50)
expect_eq "$(grep -c '^200$' <<<"$c0")" 50 "abort 0%: all 50 answered 200"
expect_eq "$(backend_count a)" $((before + 50)) "abort 0%: all 50 reach the backend"
before=$(backend_count a)
c50=$(codes /p50 400)
n418=$(grep -c '^418$' <<<"$c50")
n200=$(grep -c '^200$' <<<"$c50")
# binomial(400, 0.5): sd 10; 140..260 is six sd either way
if [ "$n418" -ge 140 ] && [ "$n418" -le 260 ] && [ $((n418 + n200)) -eq 400 ]; then
    ok "abort 50%: $n418 of 400 aborted (bound 140..260)"
else
    not_ok "abort 50%: roughly half of 400 aborted" "418: $n418, 200: $n200"
fi
expect_eq "$(backend_count a)" $((before + n200)) "abort 50%: exactly the others reached the backend"
expect_eq "$(stat fault_aborts_injected)" $((a0 + 51 + n418)) "fault_aborts_injected counts every abort"

out=$("${CURL[@]}" -i -H 'Host: fault.test' "$URL/grpc")
expect_eq "$(status_of "$out")" 200 "gRPC abort: HTTP status 200"
expect_eq "$(header_of "$out" grpc-status)" 14 "gRPC abort: grpc-status 14"
expect_eq "$(header_of "$out" content-type)" application/grpc "gRPC abort: content-type application/grpc"
out=$("${CURL[@]}" --http2-prior-knowledge -i -H 'Host: fault.test' "$URL/grpc")
expect_match "$out" 'grpc-status: 14' "gRPC abort over HTTP/2 downstream"

res=$("${CURL[@]}" -o /dev/null -w '%{http_code} %{time_total}' -H 'Host: fault.test' "$URL/both")
ms=$(awk -v t="${res#* }" 'BEGIN { printf "%d", t * 1000 }')
expect_eq "${res% *}" 502 "delay and abort: aborted"
expect_le 150 "$ms" "delay and abort: the delay comes first (took $ms ms)"

# Clients that leave during a delay: the delay's timer must die with the stream. HTTP/2
# clients (the connection closes) and HTTP/1.1 clients that leave in the middle of the
# body go to backend c. Requests to /after, started later with a longer delay, finish after
# every abandoned timer would have fired: backend c must still have seen nothing.
# HTTP/1.1 clients that leave after a complete request are a half-close to meshd: it goes
# on and answers into the closed socket (backend a, not counted).

# stat_is NAME N: the counter has reached N (for wait_for).
stat_is()
{
    [ "$(stat "$1")" = "$2" ]
}
d0=$(stat fault_delays_injected)
for i in 1 2 3; do
    curl -sS --max-time 0.2 --http2-prior-knowledge -o /dev/null -H 'Host: fault.test' \
        "$URL/abandoned/h2-$i" 2>/dev/null
    raw "$MESH_PORT" "send:POST /abandoned/h1-$i HTTP/1.1\r\nHost: fault.test\r\nContent-Length: 10\r\n\r\nab" \
        >/dev/null
    curl -sS --max-time 0.2 -o /dev/null -H 'Host: fault.test' "$URL/after-half-close/$i" 2>/dev/null
done
if wait_for 5 stat_is fault_delays_injected $((d0 + 9)); then
    ok "nine abandoned requests were being delayed"
else
    not_ok "nine abandoned requests were being delayed" "fault_delays_injected: $(stat fault_delays_injected), was $d0"
fi
st=$(http_code "$URL/after" -H 'Host: fault.test')
expect_eq "$st" 200 "a request delayed past the abandoned ones succeeds"
expect_eq "$(backend_count c)" 0 "abandoned delayed requests never reach the backend"
check "meshd survives clients leaving during a delay" kill -0 "$MESHD_PID"

# ---- rewrite -----------------------------------------------------------------------------

out=$("${CURL[@]}" -i -H 'Host: rw.test' "$URL/api/v1?who=me")
expect_eq "$(header_of "$out" x-echo-uri)" "/echo?who=me" "prefix rewrite: the backend sees /echo, query kept"
out=$("${CURL[@]}" -i -H 'Host: rw.test' "$URL/login?next=1")
expect_eq "$(header_of "$out" x-echo-uri)" "/echo?next=1" "path route: the whole path replaced"
out=$("${CURL[@]}" -i -H 'Host: rw.test' "$URL/x/echo/y?k=v")
expect_eq "$(header_of "$out" x-echo-uri)" "/echo?k=v" "regex rewrite with a back reference"
out=$("${CURL[@]}" --http2-prior-knowledge -i -H 'Host: rw.test' "$URL/x/echo/y")
expect_eq "$(header_of "$out" x-echo-uri)" "/echo" "regex rewrite from an HTTP/2 client"
body=$("${CURL[@]}" -H 'Host: rw.test' "$URL/auth")
expect_match "$body" $'(^|\n)Host: internal.example:81\n' "authority rewrite: HTTP/1.1 client's Host replaced"
body=$("${CURL[@]}" --http2-prior-knowledge -H 'Host: rw.test' "$URL/auth")
expect_match "$body" $'(^|\n)Host: internal.example:81\n' "authority rewrite: HTTP/2 client to HTTP/1.1 upstream"
expect_no_match "$body" 'rw.test' "authority rewrite: the original authority is gone"

if [ -n "$H2" ]; then
    out=$("${CURL[@]}" -H 'Host: rw2.test' "$URL/old/file.txt?q=1")
    expect_eq "$out" "new file over h2" "HTTP/2 upstream: prefix rewrite serves /new/file.txt"
    out=$("${CURL[@]}" -H 'Host: rw2.test' "$URL/re/file.txt")
    expect_eq "$out" "new file over h2" "HTTP/2 upstream: regex rewrite"
    out=$("${CURL[@]}" -H 'Host: rw2.test' "$URL/auth/file.txt")
    expect_eq "$out" "new file over h2" "HTTP/2 upstream: authority rewrite keeps serving"
    h2log=${T_LOG[${BACKEND_PID[h2]}]}
    if wait_for 5 grep -q ':authority: h2-internal.example' "$h2log"; then
        ok "HTTP/2 upstream: :authority rewritten"
    else
        not_ok "HTTP/2 upstream: :authority rewritten" "$(grep -a ':authority' "$h2log" | tail -n 5)"
    fi
    expect_match "$(grep -a ':path:' "$h2log")" ':path: /new/file.txt\?q=1' "HTTP/2 upstream: :path with the query kept"
else
    skip "HTTP/2 upstream rewrite" "nghttpd missing"
fi

# ---- redirect -----------------------------------------------------------------------------

r0=$(stat redirects)
before=$(backend_count a)
out=$("${CURL[@]}" -i -H 'Host: redir.test' "$URL/r301/x?q=1")
expect_eq "$(status_of "$out")" 301 "redirect: default code 301"
expect_eq "$(header_of "$out" location)" "http://redir.test/moved?q=1" "redirect: path replaced, query kept"
out=$("${CURL[@]}" -i -H 'Host: redir.test:8080' "$URL/r302")
expect_eq "$(status_of "$out")" 302 "redirect: code 302"
expect_eq "$(header_of "$out" location)" "https://redir.test:8443/r302" "redirect: scheme and port"
out=$("${CURL[@]}" -i -H 'Host: redir.test' "$URL/r308/p")
expect_eq "$(status_of "$out")" 308 "redirect: code 308"
expect_eq "$(header_of "$out" location)" "http://other.example/r308/p" "redirect: authority"
expect_eq "$(header_of "$out" x-redirected)" yes "redirect: the route's response headers apply"
out=$("${CURL[@]}" --http2-prior-knowledge -i -H 'Host: redir.test' "$URL/r301")
expect_match "$out" 'location: http://redir.test/moved' "redirect over HTTP/2 downstream"
expect_eq "$(stat redirects)" $((r0 + 4)) "redirects counts them"
expect_eq "$(backend_count a)" "$before" "redirects never reach the backend"

stop_meshd
