#!/usr/bin/env bash
# Upstream errors (502/503/504 with a reason), the admin endpoints, SIGHUP reload
# (good and malformed snapshots), SIGTERM drain, /quitquitquit.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${MESH_SRCDIR:-$(dirname "$0")/../..}/tests/integration/lib.sh"

start_backend a
start_backend b
A=${BACKEND_PORT[a]}
B=${BACKEND_PORT[b]}
CLOSED=$(free_port) || bail_out "found a closed port"

# json_ok FILE: the file parses as JSON (jq, which scripts/deps installs).
json_ok()
{
    have_cmd jq || bail_out "jq is missing (scripts/deps test installs it)"
    jq -e . "$1" >/dev/null 2>&1
}

# One listener; routes by prefix: /delay/ has a 200 ms timeout, /empty goes to a cluster
# without endpoints, /closed to a port nothing listens on, the rest to backend a.
cat >"$T_DIR/errors.json" <<EOF
{"version":"errors-1",
 "admin":{"address":"127.0.0.1","port":0},
 "timeouts":{"idle_ms":1000},
 "listeners":[{"name":"main","address":"127.0.0.1","port":0,"route_config":"rc"},
              {"name":"tiny","address":"127.0.0.1","port":0,"route_config":"rc_tiny"}],
 "route_configs":[
  {"name":"rc_tiny","virtual_hosts":[{"name":"all","domains":["*"],"routes":[
   {"match":{"prefix":"/"},"route":{"cluster":"tiny"}}]}]},
  {"name":"rc","virtual_hosts":[{"name":"all","domains":["*"],"routes":[
   {"match":{"prefix":"/delay/"},"route":{"cluster":"a","timeout_ms":200}},
   {"match":{"prefix":"/empty"},"route":{"cluster":"empty"}},
   {"match":{"prefix":"/closed"},"route":{"cluster":"closed"}},
   {"match":{"path":"/direct"},"direct_response":{"status":418,"body":"short and stout\n"}},
   {"match":{"prefix":"/"},"route":{"cluster":"a"}}]}]}],
 "clusters":[
   {"name":"a","protocol":"http1","endpoints":[{"address":"127.0.0.1","port":$A}]},
   {"name":"empty","protocol":"http1","endpoints":[]},
   {"name":"tiny","protocol":"http1","max_connections":1,"max_pending_requests":0,
    "endpoints":[{"address":"127.0.0.1","port":$A}]},
   {"name":"closed","protocol":"http1","connect_timeout_ms":2000,
    "endpoints":[{"address":"127.0.0.1","port":$CLOSED}]}]}
EOF
start_meshd "$T_DIR/errors.json" || bail_out "meshd starts"
MAIN_PID=$MESHD_PID
MESH_PORT=${MESHD_PORTS[main]:-}
TINY=${MESHD_PORTS[tiny]:-}
[ -n "$MESH_PORT" ] && [ -n "$TINY" ] || bail_out "ready line names both listeners (main, tiny)"

# err_case DESC WANT_STATUS PATH FLAG: status, a body that is not empty and not the
# backend's, and the response flag (x-meshd-response-flags) that the access log gets too.
err_case()
{
    local desc=$1 want=$2 path=$3 flag=$4 out st body
    out=$("${CURL[@]}" -i "$(mesh_url "$path")" 2>&1)
    st=$(status_of "$out")
    body=$(body_of "$out")
    if [ "$st" = "$want" ]; then
        ok "$desc: $want"
    else
        not_ok "$desc: want $want" "request: GET $path" \
            "response: $(printf '%s' "$out" | head -c 600)"
    fi
    if [ -n "$body" ] && [[ ! $body =~ (from|by)\ a ]]; then
        ok "$desc: body says why ($(printf '%s' "$body" | head -c 80 | tr '\n' ' '))"
    else
        not_ok "$desc: body says why" "body: $(printf '%q' "$body")"
    fi
    expect_match "$out" $'\n[xX]-[mM]eshd-[rR]esponse-[fF]lags: '"$flag"$'\r' \
        "$desc: response flag $flag"
}

expect_eq "$("${CURL[@]}" "$(mesh_url /hello)")" "hello from a" "control: routing to a works"
err_case "upstream resets the connection (/reset)" 502 /reset UC
err_case "cluster without endpoints" 503 /empty UH
err_case "endpoint port closed (connect refused)" 503 /closed UF
# The upstream breaks a response after its head (/cut: 20 bytes announced, 10 sent, then
# FIN). HTTP/1.1 can only say so by closing: the client must get what was sent, then the
# close (curl: "transfer closed with 10 bytes remaining", exit 18), not a bare close.
# HTTP/2 resets the stream.
rc=0
out=$(curl -s --max-time 10 -i "$(mesh_url /cut)" 2>/dev/null) || rc=$?
expect_eq "$rc" 18 "response cut short by the upstream, HTTP/1.1: the client sees a short body"
expect_eq "$(status_of "$out")" 200 "response cut short, HTTP/1.1: the head that went out"
expect_eq "$(body_of "$out")" "cut short" "response cut short, HTTP/1.1: the bytes the upstream sent"
rc=0
curl -s --max-time 10 --http2-prior-knowledge -o /dev/null "$(mesh_url /cut)" 2>/dev/null || rc=$?
expect_eq "$([ "$rc" -ne 0 ] && echo error)" error "response cut short, HTTP/2: the stream ends in an error (curl exit $rc)"
err_case "route timeout 200 ms, backend answers after 2000 ms" 504 /delay/2000 UT
out=$("${CURL[@]}" -i "$(mesh_url /direct)" 2>&1)
expect_eq "$(status_of "$out")" 418 "direct response: status"
expect_eq "$(body_of "$out")" "short and stout" "direct response: body"
expect_eq "$("${CURL[@]}" "$(mesh_url /hello)")" "hello from a" "still serving after the errors"

# Pool overflow: cluster "tiny" allows 1 connection and no pending request.
count0=$(backend_count a)
"${CURL[@]}" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$TINY/delay/1500" \
    >"$T_DIR/tiny.code" 2>/dev/null &
TINY_CURL=$!
track "$TINY_CURL" other "curl (tiny pool)" /dev/null
wait_for 10 count_above a "$count0" || not_ok "pool: first request reached a"
out=$("${CURL[@]}" -i "http://127.0.0.1:$TINY/hello" 2>&1)
expect_eq "$(status_of "$out")" 503 "pool overflow (max_connections 1, max_pending 0): 503"
expect_match "$(body_of "$out")" '.' "pool overflow: body says why"
wait_exit "$TINY_CURL" 15
expect_eq "$(cat "$T_DIR/tiny.code" 2>/dev/null)" 200 \
    "pool overflow: the first request still gets 200"

# Downstream idle timeout (timeouts.idle_ms = 1000): a silent connection is closed.
"$RAW_BIN" --timeout 10 127.0.0.1 "$MESH_PORT" readall >/dev/null 2>"$T_DIR/idle.outcome"
expect_eq "$(cat "$T_DIR/idle.outcome")" "mesh-test-raw: eof" \
    "idle downstream connection closed (idle_ms 1000, bound 10 s)"
out=$(raw "$MESH_PORT" "send:GET /hello HTTP/1.1\r\nHost: t\r\n\r\n" 'expect:hello from a' readall)
expect_eq "$(cat "$T_DIR/raw.outcome")" "mesh-test-raw: eof" \
    "idle keep-alive connection closed after a request (idle_ms 1000, bound 10 s)"

# ---- admin ---------------------------------------------------------------------------------
if [ -z "$MESH_ADMIN_PORT" ]; then
    not_ok "ready line has admin=<port>"
else
    ok "ready line has admin=<port>"
    expect_eq "$(http_code "$(admin_url /ready)")" 200 "admin /ready: 200"
    stats=$("${CURL[@]}" "$(admin_url /stats)")
    # a counter named exactly: "rq_5xx: 0" must not pass for a request count
    expect_match "$stats" '(^|[^a-z_])downstream_rq_total[^0-9]+[1-9][0-9]*' \
        "admin /stats: downstream_rq_total is above 0"
    prom=$("${CURL[@]}" "$(admin_url /stats/prometheus)")
    expect_match "$prom" $'(^|\n)# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* counter' \
        "admin /stats/prometheus: Prometheus text with a counter"
    expect_match "$prom" $'(^|\n)[a-zA-Z_:]*(rq|request)[a-zA-Z0-9_:]*(\\{[^}]*\\})? [1-9]' \
        "admin /stats/prometheus: a non-zero request counter"
    expect_match "$prom" $'(^|\n)meshd_downstream_rq_total [1-9]' \
        "admin /stats/prometheus: meshd_downstream_rq_total, a counter named with one _total"
    expect_no_match "$prom" '_total_total' "admin /stats/prometheus: no name ends in _total twice"
    "${CURL[@]}" -o "$T_DIR/config_dump.json" "$(admin_url /config_dump)"
    check "admin /config_dump: valid JSON" json_ok "$T_DIR/config_dump.json"
    expect_match "$(cat "$T_DIR/config_dump.json" 2>/dev/null)" '"errors-1"' \
        "admin /config_dump: the snapshot (its version)"
    expect_match "$(cat "$T_DIR/config_dump.json" 2>/dev/null)" "$CLOSED" \
        "admin /config_dump: the snapshot (its endpoints)"
    clusters=$("${CURL[@]}" "$(admin_url /clusters)")
    expect_match "$clusters" "127\\.0\\.0\\.1:$A" "admin /clusters: lists endpoint a"
    expect_match "$clusters" "127\\.0\\.0\\.1:$CLOSED" "admin /clusters: lists the closed endpoint"
    # Envoy wants POST for mutations; accept meshd answering POST.
    out=$("${CURL[@]}" -X POST -w '\n%{http_code}' "$(admin_url '/logging?level=debug')")
    expect_match "$out" $'\n200$' "admin POST /logging?level=debug: 200"
    expect_match "$out" '[Dd][Ee][Bb][Uu][Gg]' "admin /logging: answer names the new level"
    size0=$(wc -c <"$MESHD_LOG")
    "${CURL[@]}" -o /dev/null "$(mesh_url /after-debug)"
    if wait_for 5 log_since_matches "$size0" '/after-debug'; then
        ok "admin /logging: at debug level the request is logged"
    else
        not_ok "admin /logging: at debug level the request is logged" \
            "log since: $(tail -c +$((size0 + 1)) "$MESHD_LOG" | head -c 600)"
    fi
    out=$("${CURL[@]}" -X POST -w '\n%{http_code}' "$(admin_url '/logging?level=info')")
    expect_match "$out" $'\n200$' "admin POST /logging?level=info: 200"
    expect_eq "$(http_code "$(admin_url '/logging?level=nonsense')" -X POST)" 400 \
        "admin /logging with an unknown level: 400"
    expect_eq "$(http_code "$(admin_url /no-such-admin-page)")" 404 "admin unknown path: 404"
    # mutations need POST: a page in a browser on this host cannot GET them
    expect_eq "$(http_code "$(admin_url /quitquitquit)")" 405 "admin GET /quitquitquit: 405, meshd stays up"
    check "admin GET /quitquitquit: meshd still running" alive "$MAIN_PID"
    expect_eq "$(http_code "$(admin_url '/logging?level=off')")" 405 "admin GET /logging?level=: 405"
    expect_match "$("${CURL[@]}" "$(admin_url /logging)")" '^level: info' \
        "admin GET /logging: reads the level (still info)"
    out=$("${CURL[@]}" -X POST -w '\n%{http_code}' "$(admin_url /quitquitquit)")
    expect_match "$out" $'\n200$' "admin POST /quitquitquit: 200"
    if wait_exit "$MAIN_PID" 10; then
        T_CHECKED+=("$MAIN_PID")
        expect_eq "$(describe_status "$T_LAST_STATUS")" "exit 0" "/quitquitquit: meshd exits 0"
        rep=$(sanitizer_report "$MESHD_LOG")
        expect_eq "$rep" "" "/quitquitquit: no sanitizer report"
    else
        not_ok "/quitquitquit: meshd exits within 10 s"
    fi
fi

# ---- a malformed snapshot at startup -----------------------------------------------------------
write_snapshot "$T_DIR/bad.json" --endpoint "127.0.0.1:70000"
timeout 10 "$MESH_BIN" --role=sidecar --snapshot "$T_DIR/bad.json" --concurrency 1 \
    >"$T_DIR/bad.out" 2>&1
st=$?
expect_match "$st" '^([1-9]|[1-9][0-9]|1[01][0-9]|12[0-3])$' \
    "malformed snapshot at startup: exits non-zero (not by a signal, no timeout)"
expect_match "$(cat "$T_DIR/bad.out")" 'clusters\[0\]\.endpoints\[0\]\.port' \
    "malformed snapshot at startup: message names the JSON path"
expect_eq "$(sanitizer_report "$T_DIR/bad.out")" "" \
    "malformed snapshot at startup: no sanitizer report"

# ---- SIGHUP reload ------------------------------------------------------------------------------
write_snapshot "$T_DIR/hup.json" --endpoint "127.0.0.1:$A" --version hup-a
start_meshd "$T_DIR/hup.json" || bail_out "meshd (reload) starts"
HUP_PID=$MESHD_PID
expect_eq "$("${CURL[@]}" "$(mesh_url /hello)")" "hello from a" "reload: before SIGHUP, routes to a"

# A keep-alive connection with a request in flight across the reload.
count0=$(backend_count a)
rm -f "$T_DIR/go"
"$RAW_BIN" --timeout 20 127.0.0.1 "$MESH_PORT" \
    "send:GET /delay/3000 HTTP/1.1\r\nHost: t\r\n\r\n" "expect:delayed 3000 ms by a" \
    "waitfile:$T_DIR/go" "send:GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" \
    readall >"$T_DIR/inflight.out" 2>"$T_DIR/inflight.err" &
RAW_PID=$!
track "$RAW_PID" other "mesh-test-raw (in flight across SIGHUP)" "$T_DIR/inflight.err"
wait_for 10 count_above a "$count0" ||
    not_ok "reload: the in-flight request reached backend a"
# ...and an HTTP/2 stream in flight across it.
count1=$(backend_count a)
"$H2RAW_BIN" --timeout 20 127.0.0.1 "$MESH_PORT" --path /delay/3000 \
    >"$T_DIR/inflight.h2" 2>&1 &
H2HUP_PID=$!
track "$H2HUP_PID" other "mesh-test-h2raw (in flight across SIGHUP)" "$T_DIR/inflight.h2"
wait_for 10 count_above a "$count1" ||
    not_ok "reload: the in-flight HTTP/2 request reached backend a"

write_snapshot "$T_DIR/hup.json" --endpoint "127.0.0.1:$B" --version hup-b
kill -HUP "$HUP_PID"
if wait_for 10 answers "$(mesh_url /hello)" "hello from b"; then
    ok "reload: after SIGHUP, new requests route to b"
else
    not_ok "reload: after SIGHUP, new requests route to b" \
        "got: $("${CURL[@]}" "$(mesh_url /hello)" 2>&1)"
fi
touch "$T_DIR/go"
wait_exit "$RAW_PID" 25
wait_exit "$H2HUP_PID" 25
h2out=$(cat "$T_DIR/inflight.h2")
expect_match "$h2out" 'status=200' "reload: the in-flight HTTP/2 stream completes with 200"
expect_match "$h2out" 'end-stream' "reload: the HTTP/2 stream ends normally"
expect_no_match "$h2out" 'goaway|rst-stream' "reload: no GOAWAY or reset for the HTTP/2 connection"
inflight=$(cat "$T_DIR/inflight.out")
expect_match "$inflight" $'^HTTP/1\\.1 200 [^\r]*\r\n' \
    "reload: in-flight request completes with 200"
expect_match "$inflight" 'delayed 3000 ms by a' "reload: in-flight request answered by a"
expect_match "$inflight" $'HTTP/1\\.1 200 [^\r]*\r\n.*hello from [ab]' \
    "reload: the same keep-alive connection serves the next request"
expect_eq "$(sed -n 's/^mesh-test-raw: //p' "$T_DIR/inflight.err")" eof \
    "reload: the old connection ends only after Connection: close"
expect_eq "$("${CURL[@]}" "$(admin_url /config_dump)" | jq -r .version 2>/dev/null)" hup-b \
    "reload: /config_dump shows the new version"

# Malformed snapshots on SIGHUP: refused, with the reason in the log; b keeps serving.
reload_refused()
{
    local desc=$1 pattern=$2 size0
    size0=$(wc -c <"$MESHD_LOG")
    kill -HUP "$HUP_PID"
    if wait_for 10 log_since_matches "$size0" "$pattern"; then
        ok "$desc: refused, the log says why"
    else
        not_ok "$desc: refused, the log says why (want /$pattern/)" \
            "log since SIGHUP: $(tail -c +$((size0 + 1)) "$MESHD_LOG" | head -c 600)"
    fi
    expect_eq "$("${CURL[@]}" "$(mesh_url /hello)" 2>&1)" "hello from b" \
        "$desc: old snapshot keeps serving"
    check "$desc: meshd still running" alive "$HUP_PID"
}

printf '{"version":"broken", "listeners": [' >"$T_DIR/hup.json.tmp" &&
    mv "$T_DIR/hup.json.tmp" "$T_DIR/hup.json"
reload_refused "SIGHUP with invalid JSON" '[Jj][Ss][Oo][Nn]|parse|syntax|snapshot'
write_snapshot "$T_DIR/hup.json" --endpoint "127.0.0.1:70000" --version hup-bad
reload_refused "SIGHUP with an out-of-range port" 'clusters\[0\]\.endpoints\[0\]\.port'
expect_eq "$("${CURL[@]}" "$(admin_url /config_dump)" | jq -r .version 2>/dev/null)" hup-b \
    "refused reloads: /config_dump still shows hup-b"
write_snapshot "$T_DIR/hup.json" --endpoint "127.0.0.1:$A" --version hup-a2
kill -HUP "$HUP_PID"
if wait_for 10 answers "$(mesh_url /hello)" "hello from a"; then
    ok "reload after refused ones: a good snapshot is applied again"
else
    not_ok "reload after refused ones: a good snapshot is applied again"
fi
stop_meshd "$HUP_PID"

# ---- SIGTERM drains ----------------------------------------------------------------------------
write_snapshot "$T_DIR/drain.json" --endpoint "127.0.0.1:$A" --drain-ms 5000
start_meshd "$T_DIR/drain.json" || bail_out "meshd (drain) starts"
DRAIN_PID=$MESHD_PID
count0=$(backend_count a)
"${CURL[@]}" -D "$T_DIR/drain.hdr" -o "$T_DIR/drain.body" -w '%{http_code}' \
    "$(mesh_url /delay/1000)" >"$T_DIR/drain.code" 2>"$T_DIR/drain.err" &
CURL_PID=$!
track "$CURL_PID" other "curl (in flight across SIGTERM)" "$T_DIR/drain.err"
"$H2RAW_BIN" --timeout 15 127.0.0.1 "$MESH_PORT" --path /delay/1000 >"$T_DIR/drain.h2" 2>&1 &
H2_PID=$!
track "$H2_PID" other "mesh-test-h2raw (in flight across SIGTERM)" "$T_DIR/drain.h2"
wait_for 10 count_above a $((count0 + 1)) ||
    not_ok "drain: both in-flight requests (h1, h2) reached the backend"
kill -TERM "$DRAIN_PID"

refused()
{
    "${CURL[@]}" --max-time 2 -o /dev/null "$(mesh_url /new)" 2>/dev/null
    [ $? -eq 7 ]
}
if wait_for 5 refused; then
    ok "drain: new connections are refused after SIGTERM"
else
    not_ok "drain: new connections are refused after SIGTERM" \
        "curl $(mesh_url /new) -> $(http_code "$(mesh_url /new)" --max-time 2)"
fi
wait_exit "$CURL_PID" 15
expect_eq "$(cat "$T_DIR/drain.code" 2>/dev/null)" 200 \
    "drain: the in-flight request completes with 200"
expect_eq "$(cat "$T_DIR/drain.body" 2>/dev/null)" "delayed 1000 ms by a" \
    "drain: in-flight body complete"
expect_match "$(tr -d '\r' <"$T_DIR/drain.hdr" 2>/dev/null)" $'(^|\n)[Cc]onnection: close' \
    "drain: the HTTP/1.1 response carries Connection: close"
wait_exit "$H2_PID" 20
h2out=$(cat "$T_DIR/drain.h2")
expect_match "$h2out" 'status=200' "drain: the in-flight HTTP/2 request completes with 200"
expect_match "$h2out" 'end-stream' "drain: the HTTP/2 stream ends normally"
expect_match "$h2out" 'goaway=NO_ERROR' "drain: HTTP/2 client gets GOAWAY (NO_ERROR)"
if wait_exit "$DRAIN_PID" 10; then
    check_exit "$DRAIN_PID"
else
    not_ok "drain: meshd exits after the in-flight request (within 10 s)"
fi

# ---- the snapshot-wide timeouts --------------------------------------------------------------
# timeouts.request_ms (no route timeout): a slow upstream gets 504 UT.
write_snapshot "$T_DIR/req.json" --endpoint "127.0.0.1:$A" --request-timeout-ms 300
start_meshd "$T_DIR/req.json" || bail_out "meshd (request_ms) starts"
err_case "timeouts.request_ms 300, backend answers after 2000 ms" 504 /delay/2000 UT
stop_meshd "$MESHD_PID"

# timeouts.stream_idle_ms: a silent upstream is 504 SI; a client that stops sending its body
# is 408 SI, and the backend's request ends with it.
write_snapshot "$T_DIR/sidle.json" --endpoint "127.0.0.1:$A" --stream-idle-ms 300
start_meshd "$T_DIR/sidle.json" || bail_out "meshd (stream_idle_ms) starts"
err_case "timeouts.stream_idle_ms 300, backend silent for 2000 ms" 504 /delay/2000 SI
out=$(raw "$MESH_PORT" "send:$(req POST "/echo?buffered" 'Content-Length: 10')abc" readall)
expect_eq "$(status_of "$out")" 408 "stream idle: a body stalled after 3 of 10 bytes gets 408"
expect_match "$out" $'\n[xX]-[mM]eshd-[rR]esponse-[fF]lags: SI\r' "stream idle: 408 with flag SI"
# An upgrade waiting for its 101 is a stream like any (it had no timer and waited for ever).
out=$(raw "$MESH_PORT" "send:$(req GET /delay/2000 'Upgrade: websocket' 'Connection: Upgrade, close' \
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==')" readall)
expect_eq "$(status_of "$out")" 504 "stream idle: an upgrade unanswered for 300 ms gets 504"
expect_match "$out" $'\n[xX]-[mM]eshd-[rR]esponse-[fF]lags: SI\r' "  ... with flag SI"
out=$("$H2RAW_BIN" --timeout 10 127.0.0.1 "$MESH_PORT" --method CONNECT -H ':protocol: websocket' \
    --path /delay/2000 --no-end 2>&1)
expect_match "$out" 'status=504' "stream idle: a websocket over HTTP/2 unanswered for 300 ms gets 504"
expect_eq "$("${CURL[@]}" "$(mesh_url /hello)")" "hello from a" "stream idle: still serving"
stop_meshd "$MESHD_PID"

# timeouts.drain_ms is a deadline: a request still running when it passes is cut, and meshd
# exits anyway (here 500 ms into a 5 s request).
write_snapshot "$T_DIR/dl.json" --endpoint "127.0.0.1:$A" --drain-ms 500
start_meshd "$T_DIR/dl.json" || bail_out "meshd (drain deadline) starts"
DL_PID=$MESHD_PID
before=$(backend_count a)
curl -s --max-time 15 -o /dev/null -w '%{http_code}' "$(mesh_url /delay/5000)" \
    >"$T_DIR/dl.code" 2>/dev/null &
DL_CURL=$!
wait_for 10 count_above a "$before" || not_ok "drain deadline: the request reached the backend"
t0=$(date +%s%N)
kill -TERM "$DL_PID"
if wait_exit "$DL_PID" 10; then
    ms=$((($(date +%s%N) - t0) / 1000000))
    expect_le "$ms" 4000 "drain deadline: meshd exits before the 5 s request would end (${ms} ms)"
else
    not_ok "drain deadline: meshd exits within 10 s of SIGTERM"
fi
wait "$DL_CURL"
expect_ne "$(cat "$T_DIR/dl.code")" 200 "drain deadline: the cut request gets no 200"

# A cluster's connect_timeout_ms: an endpoint whose accept queue is full (backlog 0, filled by
# the listener's own connections, never accepted) drops the SYN, so the connect hangs. It
# ends as a connect failure, 503 UF, as in Envoy.
python3 - 30 >"$T_DIR/blackhole.port" 2>"$T_DIR/blackhole.err" <<'PY' &
import socket, sys, time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)
fill = []
for _ in range(3):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(s.getsockname())
    except BlockingIOError: pass
    fill.append(c)
time.sleep(0.2)
print(s.getsockname()[1], flush=True)
time.sleep(float(sys.argv[1]))
PY
BH_PID=$!
track "$BH_PID" other "python3 (a listener that never accepts)" "$T_DIR/blackhole.err"
wait_for 5 test -s "$T_DIR/blackhole.port" || bail_out "the never-accepting listener starts"
write_snapshot "$T_DIR/ct.json" --endpoint "127.0.0.1:$(cat "$T_DIR/blackhole.port")" \
    --connect-timeout-ms 300
start_meshd "$T_DIR/ct.json" || bail_out "meshd (connect timeout) starts"
err_case "connect_timeout_ms 300, the endpoint never answers the SYN" 503 /ct UF
expect_match "$("${CURL[@]}" "$(mesh_url /ct)")" \
    'connect timeout' "connect timeout: the body names the timeout (not a refused connect)"
stop_meshd "$MESHD_PID"
kill "$BH_PID" 2>/dev/null
