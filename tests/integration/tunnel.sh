#!/usr/bin/env bash
# Byte tunnels: CONNECT (curl -p -x, and raw bytes to a TCP echo) and Upgrade: websocket.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${MESH_SRCDIR:-$(dirname "$0")/../..}/tests/integration/lib.sh"

start_backend a
HTTP=${BACKEND_PORT[a]}
ECHO=${BACKEND_ECHO_PORT[a]}

# A port nothing listens on (bound, then closed): connecting to it is refused.
CLOSED=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# Listener "web" routes to the HTTP backend; listener "tcp" routes to the TCP echo ("tcp_h2"
# through a cluster that speaks HTTP/2, "closed" to the port above). A CONNECT
# target always names the same endpoint as the route's cluster, so the test holds whether
# meshd dials the CONNECT authority or the routed cluster.
cat >"$T_DIR/snap.json" <<EOF
{"version":"tunnel-1",
 "admin":{"address":"127.0.0.1","port":0},
 "listeners":[
   {"name":"web","address":"127.0.0.1","port":0,"route_config":"to_web"},
   {"name":"tcp","address":"127.0.0.1","port":0,"route_config":"to_echo"},
   {"name":"direct","address":"127.0.0.1","port":0,"route_config":"direct"},
   {"name":"tcp_h2","address":"127.0.0.1","port":0,"route_config":"to_echo_h2"},
   {"name":"closed","address":"127.0.0.1","port":0,"route_config":"to_closed"}],
 "route_configs":[
   {"name":"to_web","virtual_hosts":[{"name":"all","domains":["*"],
     "routes":[{"match":{"prefix":"/"},"route":{"cluster":"web"}}]}]},
   {"name":"to_echo","virtual_hosts":[{"name":"all","domains":["*"],
     "routes":[{"match":{"prefix":"/"},"route":{"cluster":"echo"}}]}]},
   {"name":"direct","virtual_hosts":[{"name":"all","domains":["*"],
     "routes":[{"match":{"prefix":"/"},"direct_response":{"status":200,"body":"direct"}}]}]},
   {"name":"to_echo_h2","virtual_hosts":[{"name":"all","domains":["*"],
     "routes":[{"match":{"prefix":"/"},"route":{"cluster":"echo_h2"}}]}]},
   {"name":"to_closed","virtual_hosts":[{"name":"all","domains":["*"],
     "routes":[{"match":{"prefix":"/"},"route":{"cluster":"closed"}}]}]}],
 "clusters":[
   {"name":"web","protocol":"http1","endpoints":[{"address":"127.0.0.1","port":$HTTP}]},
   {"name":"echo","protocol":"http1","endpoints":[{"address":"127.0.0.1","port":$ECHO}]},
   {"name":"echo_h2","protocol":"http2","endpoints":[{"address":"127.0.0.1","port":$ECHO}]},
   {"name":"closed","protocol":"http1","endpoints":[{"address":"127.0.0.1","port":$CLOSED}]}]}
EOF
start_meshd "$T_DIR/snap.json" --access-log || bail_out "meshd starts"
WEB=${MESHD_PORTS[web]:-}
TCP=${MESHD_PORTS[tcp]:-}
DIRECT=${MESHD_PORTS[direct]:-}
TCP_H2=${MESHD_PORTS[tcp_h2]:-}
CLOSED_L=${MESHD_PORTS[closed]:-}
[ -n "$WEB" ] && [ -n "$TCP" ] && [ -n "$DIRECT" ] && [ -n "$TCP_H2" ] && [ -n "$CLOSED_L" ] ||
    bail_out "ready line names the listeners (web, tcp, direct, tcp_h2, closed)"

# ---- CONNECT -------------------------------------------------------------------------------
out=$("${CURL[@]}" -p -x "http://127.0.0.1:$WEB" "http://127.0.0.1:$HTTP/hello" 2>&1)
expect_eq "$out" "hello from a" "CONNECT via curl -p -x: HTTP inside the tunnel reaches the backend"

random_file "$T_DIR/1m" 1048576
"${CURL[@]}" -p -x "http://127.0.0.1:$WEB" --data-binary @"$T_DIR/1m" -o "$T_DIR/1m.out" \
    "http://127.0.0.1:$HTTP/echo"
expect_eq "$(sha_of "$T_DIR/1m.out")" "$(sha_of "$T_DIR/1m")" \
    "CONNECT tunnel: 1 MiB upload echoed byte-exact"
# One access-log line per tunnel, written when it ends, with the bytes of the whole tunnel
# (it was written when the tunnel opened, with none)
for _ in $(seq 50); do grep -q '"CONNECT .*" 200 - 10[0-9]\{5\} 10[0-9]\{5\} ' "$MESHD_LOG" && break; sleep 0.1; done
line=$(grep 'access "CONNECT' "$MESHD_LOG" | tail -n 1)
read -r up down < <(printf '%s\n' "$line" | sed -E 's/.*" 200 - ([0-9]+) ([0-9]+) .*/\1 \2/')
expect_eq "$([ "${up:-0}" -ge 1048576 ] && [ "${down:-0}" -ge 1048576 ] && echo yes)" yes \
    "CONNECT tunnel: its access-log line, at the end, counts the 1 MiB each way: $line"
# A request's access-log duration spans its turns (the worker reads the clock once a turn)
"${CURL[@]}" -o /dev/null "http://127.0.0.1:$WEB/delay/200"
wait_for 5 grep -q 'access "GET /delay/200 ' "$MESHD_LOG" || true
line=$(grep 'access "GET /delay/200 ' "$MESHD_LOG" | tail -n 1)
ms=$(printf '%s\n' "$line" | sed -E 's/.* ([0-9]+)\.[0-9]+ms .*/\1/')
expect_eq "$([ "${ms:-0}" -ge 200 ] 2>/dev/null && [ "$ms" -lt 10000 ] && echo yes)" yes \
    "a request delayed 200 ms by the backend logs 200 ms or more: $line"
# A stream the client gives up on has its line too (as in Envoy): status 0 (none was sent),
# DC. (An HTTP/1.1 client's FIN is a half-close: its request is still answered, and logged.)
"${CURL[@]}" -o /dev/null --max-time 0.3 --http2-prior-knowledge "http://127.0.0.1:$WEB/delay/3001"
wait_for 5 grep -q 'access "GET /delay/3001 ' "$MESHD_LOG" || true
expect_match "$(grep 'access "GET /delay/3001 ' "$MESHD_LOG")" '"GET /delay/3001 HTTP/2" 0 DC ' \
    "HTTP/2: a stream whose client went before the answer is logged, status 0, DC"

out=$(raw "$TCP" "send:CONNECT 127.0.0.1:$ECHO HTTP/1.1\r\nHost: 127.0.0.1:$ECHO\r\n\r\n" \
    'expect:\r\n\r\n' 'send:bytes\0\xff\x01 not http\r\n\r\n' 'expect:not http\r\n\r\n' \
    'send:second' 'expect:second' shutwr readall | tr -d '\0')
expect_eq "$(status_of "$out")" 200 "CONNECT to a TCP echo: 200"
body=$(printf '%s' "$out" | sed -n '/^\r$/,$p' | tail -n +2 | od -An -c | tr -s ' \n' ' ')
expect_match "$body" 'b y t e s 377 001 n o t h t t p' \
    "CONNECT to a TCP echo: raw bytes (NUL, 0xff) come back unchanged"
expect_match "$out" 'second$' "CONNECT to a TCP echo: a second write comes back too"
expect_eq "$(cat "$T_DIR/raw.outcome")" "mesh-test-raw: eof" \
    "CONNECT tunnel: half-close from the client ends the tunnel"

# Exact bytes, including NULs, compared with od (bash strings drop NULs).
"$RAW_BIN" --timeout 10 127.0.0.1 "$TCP" \
    "send:CONNECT 127.0.0.1:$ECHO HTTP/1.1\r\nHost: 127.0.0.1:$ECHO\r\n\r\n" 'expect:\r\n\r\n' \
    'send:\0\0\x01\x02zz' 'expect:zz' >"$T_DIR/nul.out" 2>/dev/null
expect_match "$(od -An -tx1 "$T_DIR/nul.out" | tr -d '\n')" '0d 0a 0d 0a 00 00 01 02 7a 7a$' \
    "CONNECT tunnel: NUL bytes pass"

# A CONNECT that matches a route with a 2xx direct response is refused: a 2xx would tell
# the client its tunnel is open.
out=$(raw "$DIRECT" "send:CONNECT 127.0.0.1:$ECHO HTTP/1.1\r\nHost: 127.0.0.1:$ECHO\r\n\r\n" 'expect:direct response')
expect_eq "$(status_of "$out")" 405 "CONNECT matching a direct response: 405"
expect_match "$out" 'CONNECT matched a route with a direct response' \
    "CONNECT matching a direct response: the body says why"
expect_eq "$("${CURL[@]}" "http://127.0.0.1:$DIRECT/x")" direct "a GET on that route gets the direct response"

# meshd ends the CONNECT itself, so the tunnel's connection carries raw bytes even when the
# route's cluster speaks HTTP/2 (it used to be an HTTP/2 connection, preface and all).
out=$(raw "$TCP_H2" "send:CONNECT 127.0.0.1:$ECHO HTTP/1.1\r\nHost: 127.0.0.1:$ECHO\r\n\r\n" \
    'expect:\r\n\r\n' 'send:over-h2-cluster' 'expect:over-h2-cluster' shutwr readall)
expect_eq "$(status_of "$out")" 200 "CONNECT routed to an HTTP/2 cluster: 200"
expect_match "$out" $'\r\n\r\nover-h2-cluster$' \
    "CONNECT routed to an HTTP/2 cluster: the echo gets the bytes alone, no HTTP/2 preface"

out=$(raw "$CLOSED_L" "send:CONNECT 127.0.0.1:$CLOSED HTTP/1.1\r\nHost: 127.0.0.1:$CLOSED\r\n\r\n" readall)
expect_eq "$(status_of "$out")" 503 "CONNECT to a port that refuses: 503"
expect_match "$(header_of "$out" x-meshd-response-flags)" UF "CONNECT refused: flag UF"

# ---- CONNECT over HTTP/2 (RFC 9113 8.5): one stream is the tunnel -----------------------------
h2c() { "$H2RAW_BIN" --timeout 10 127.0.0.1 "$@" --connect 2>&1; }

out=$(h2c "$TCP" --authority "127.0.0.1:$ECHO" --data 'bytes over a stream' --out "$T_DIR/h2t.out")
expect_match "$out" 'status=200' "HTTP/2 CONNECT: 200"
expect_no_match "$out" 'content-length' "HTTP/2 CONNECT: the 200 has no content-length"
expect_eq "$(cat "$T_DIR/h2t.out")" "bytes over a stream" "HTTP/2 CONNECT: DATA reach the echo and come back"
expect_match "$out" 'end-stream' \
    "HTTP/2 CONNECT: the client's END_STREAM is a FIN; the echo's FIN ends the stream"

"$H2RAW_BIN" --timeout 20 127.0.0.1 "$TCP" --connect --authority "127.0.0.1:$ECHO" \
    --data-file "$T_DIR/1m" --out "$T_DIR/h2t-1m.out" >"$T_DIR/h2t-1m.log" 2>&1
expect_eq "$(sha_of "$T_DIR/h2t-1m.out")" "$(sha_of "$T_DIR/1m")" \
    "HTTP/2 CONNECT: 1 MiB through the tunnel and back, byte-exact (flow control both ways)"

# HTTP inside the tunnel: the backend answers and closes; its FIN is the END_STREAM.
out=$(h2c "$WEB" --authority "127.0.0.1:$HTTP" --no-end --out "$T_DIR/h2t-http.out" \
    --data $'GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
expect_match "$(cat "$T_DIR/h2t-http.out")" 'hello from a' "HTTP/2 CONNECT: HTTP inside the tunnel reaches the backend"
expect_match "$out" 'end-stream-remote' \
    "HTTP/2 CONNECT: the upstream's FIN is an END_STREAM while the client's side stays open"

# The upstream resets the connection: RST_STREAM with CONNECT_ERROR.
out=$(h2c "$WEB" --authority "127.0.0.1:$HTTP" --no-end \
    --data $'GET /reset HTTP/1.1\r\nHost: x\r\n\r\n')
expect_match "$out" 'status=200' "HTTP/2 CONNECT, upstream reset: the tunnel opened"
expect_match "$out" 'rst-stream=CONNECT_ERROR' "HTTP/2 CONNECT, upstream reset: RST_STREAM(CONNECT_ERROR)"

out=$(h2c "$TCP_H2" --authority "127.0.0.1:$ECHO" --data 'h2 cluster' --out "$T_DIR/h2t-h2.out")
expect_eq "$(cat "$T_DIR/h2t-h2.out")" "h2 cluster" "HTTP/2 CONNECT routed to an HTTP/2 cluster: raw bytes"

out=$(h2c "$CLOSED_L" --authority "127.0.0.1:$CLOSED")
expect_match "$out" 'status=503' "HTTP/2 CONNECT to a port that refuses: 503"

out=$(h2c "$DIRECT" --authority "127.0.0.1:$ECHO")
expect_match "$out" 'status=405' "HTTP/2 CONNECT matching a 2xx direct response: 405"

# Several tunnels at once (one client connection each), each its own bytes.
pids=()
for i in 1 2 3 4; do
    h2c "$TCP" --authority "127.0.0.1:$ECHO" --data "tunnel-$i" --out "$T_DIR/h2t-p$i.out" \
        >/dev/null &
    pids+=($!)
done
wait "${pids[@]}"
got=$(cat "$T_DIR"/h2t-p[1-4].out | tr '\n' ' ')
expect_eq "$got" "tunnel-1tunnel-2tunnel-3tunnel-4" "HTTP/2 CONNECT: four tunnels at once, each its own bytes"

# ---- Upgrade: websocket -------------------------------------------------------------------------
ws_req=$(req GET /ws 'Upgrade: websocket' 'Connection: Upgrade' \
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' 'Sec-WebSocket-Version: 13')
out=$(raw "$WEB" "send:$ws_req" 'expect:\r\n\r\n' 'send:ping-1 \x81\x05hello' 'expect:hello' \
    'send:ping-2' 'expect:ping-2')
expect_match "$out" $'^HTTP/1\\.1 101 ' "websocket: 101 Switching Protocols"
expect_eq "$(header_of "$out" x-backend)" a "websocket: the 101 comes from the backend"
expect_match "$(header_of "$out" upgrade)" '^[Ww]eb[Ss]ocket$' "websocket: Upgrade header passes"
expect_match "$out" $'\r\n\r\nping-1 \x81\x05hello' \
    "websocket: bytes after 101 are echoed (0x81 0x05 frame header too)"
expect_match "$out" 'ping-2$' "websocket: a second write is echoed"

# Upgrade request bytes sent together with the first frame (one write).
out=$(raw "$WEB" "send:${ws_req}early-bytes" 'expect:early-bytes')
expect_match "$out" $'101 .*\r\n\r\nearly-bytes' \
    "websocket: bytes sent with the upgrade request arrive after the 101"

# A non-101 answer to an upgrade request stays HTTP.
out=$(raw "$WEB" "send:$(req GET /hello 'Upgrade: websocket' 'Connection: Upgrade')" \
    'expect:hello from a' "send:$(req GET /status/201 'Connection: close')" readall)
order=$(printf '%s' "$out" | tr -d '\r' | grep -Eo '^HTTP/1\.1 [0-9]{3}' | awk '{print $2}' |
    tr '\n' ' ')
expect_eq "$order" "200 201 " "upgrade refused by the backend (200): connection stays HTTP"

# Connection's tokens count from every Connection field (RFC 9110 5.3).
ws2=$(req GET /ws 'Upgrade: websocket' 'Connection: Upgrade' 'Connection: keep-alive' \
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' 'Sec-WebSocket-Version: 13')
out=$(raw "$WEB" "send:$ws2" 'expect:\r\n\r\n' 'send:two-fields' 'expect:two-fields')
expect_match "$out" $'^HTTP/1\\.1 101 ' \
    "websocket: the upgrade token in the first of two Connection fields still upgrades"
expect_match "$out" 'two-fields$' "websocket: and the tunnel carries bytes"

# An upgrade request with a body is a plain request: the body goes with it, and what
# follows is the next request (as a tunnel, a declined upgrade would desync both sides).
out=$(raw "$WEB" "send:$(req POST '/echo?buffered' 'Upgrade: websocket' 'Connection: Upgrade' \
    'Content-Length: 5')hello$(req GET /status/201 'Connection: close')" readall)
# (the echoed body ends without a newline: the second status line follows it on the same line)
order=$(printf '%s' "$out" | tr -d '\r' | grep -Eo 'HTTP/1\.1 [0-9]{3}' | awk '{print $2}' |
    tr '\n' ' ')
expect_eq "$order" "200 201 " "upgrade request with a body: answered as HTTP, then the next request"
expect_match "$out" $'\r\n\r\nhello' "upgrade request with a body: the body reached the backend"

# An upgrade to h2c is not forwarded (as Envoy): a backend that took it would serve the
# client's HTTP/2 requests through a tunnel meshd no longer routes or checks (h2c
# smuggling). The request goes as plain HTTP/1.1, without Upgrade and HTTP2-Settings.
out=$(raw "$WEB" "send:$(req GET /headers 'Upgrade: h2c' 'Connection: Upgrade, HTTP2-Settings' \
    'HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA' 'Connection: close')" readall)
expect_eq "$(status_of "$out")" 200 "Upgrade: h2c: answered as a plain request (200, no 101)"
expect_no_match "$out" '[Uu]pgrade: h2c' "Upgrade: h2c: the backend does not see the Upgrade"
expect_no_match "$out" '[Hh][Tt][Tt][Pp]2-[Ss]ettings' "Upgrade: h2c: nor HTTP2-Settings"
out=$("${CURL[@]}" --http2 "http://127.0.0.1:$WEB/hello")
expect_eq "$out" "hello from a" "curl --http2 (h2c upgrade offered): a plain HTTP/1.1 answer"
out=$(raw "$WEB" "send:$(req GET /headers 'Upgrade: h2c, websocket' 'Connection: Upgrade' 'Connection: close')" readall)
expect_no_match "$out" '[Uu]pgrade:' "an Upgrade that offers h2c among others is not forwarded either"

# ---- WebSocket over HTTP/2 (RFC 8441 extended CONNECT) -----------------------------------------
# A CONNECT with :protocol, :scheme and :path; meshd announced SETTINGS_ENABLE_CONNECT_PROTOCOL
# (nghttp2 refuses :protocol otherwise). Upstream it is an HTTP/1.1 GET with Upgrade and a
# Sec-WebSocket-Key meshd makes up; the 101 is the stream's 200, DATA frames the bytes.
h2ws() { "$H2RAW_BIN" --timeout 10 127.0.0.1 "$WEB" --method CONNECT -H ':protocol: websocket' \
    -H 'sec-websocket-version: 13' "$@" 2>&1; }
out=$(h2ws --path /ws --data-after-status --data $'\x81\x05hello' --out "$T_DIR/ws2.out")
expect_match "$out" 'status=200' "websocket over HTTP/2: the backend's 101 is a 200"
expect_eq "$(printf '%s\n' "$out" | sed -n 's/^header x-backend: //p')" a \
    "websocket over HTTP/2: the answer comes from the backend"
expect_match "$out" 'header x-websocket-key: [A-Za-z0-9+/]{22}==' \
    "websocket over HTTP/2: the backend got a Sec-WebSocket-Key (16 bytes, base64) meshd made"
expect_no_match "$out" 'sec-websocket-accept|header upgrade|header connection' \
    "websocket over HTTP/2: no Sec-WebSocket-Accept, Upgrade or Connection in the 200"
expect_eq "$(od -An -c "$T_DIR/ws2.out" | tr -s ' ')" "$(printf '\x81\x05hello' | od -An -c | tr -s ' ')" \
    "websocket over HTTP/2: a frame sent after the 200 is echoed byte-exact"
expect_match "$out" 'end-stream' "websocket over HTTP/2: END_STREAM is a FIN; the echo's FIN ends it"
out=$(h2ws --path /ws --data 'sent before the 200' --out "$T_DIR/ws2-early.out")
expect_eq "$(cat "$T_DIR/ws2-early.out")" "sent before the 200" \
    "websocket over HTTP/2: DATA sent before the 200 waits for the 101, then goes through"
"$H2RAW_BIN" --timeout 20 127.0.0.1 "$WEB" --method CONNECT -H ':protocol: websocket' \
    --path /ws --data-after-status --data-file "$T_DIR/1m" --out "$T_DIR/ws2-1m.out" \
    >"$T_DIR/ws2-1m.log" 2>&1
expect_eq "$(sha_of "$T_DIR/ws2-1m.out")" "$(sha_of "$T_DIR/1m")" \
    "websocket over HTTP/2: 1 MiB through and back, byte-exact (flow control both ways)"
before=$("${CURL[@]}" "http://127.0.0.1:$HTTP/__count")
out=$(h2ws --path /hello --no-end --data $'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n')
expect_match "$out" 'status=502' \
    "websocket over HTTP/2, the backend answers 200 without switching: 502 (a 2xx would mean open)"
expect_match "$out" 'header x-meshd-response-flags: UPE' "  ... flag UPE"
after=$("${CURL[@]}" "http://127.0.0.1:$HTTP/__count")
expect_eq "$after" "$((before + 1))" \
    "  ... the DATA held for the switch (a request) never reached the backend (a smuggled request)"
out=$(h2ws --path /status/404 --no-end)
expect_match "$out" 'status=404' "websocket over HTTP/2, a non-2xx refusal passes as it is"
out=$("$H2RAW_BIN" --timeout 10 127.0.0.1 "$DIRECT" --method CONNECT -H ':protocol: websocket' \
    --path /ws --no-end 2>&1)
expect_match "$out" 'status=405' \
    "websocket over HTTP/2 matching a 2xx direct response: 405, as a CONNECT (a 2xx would open it)"
# Only websocket: any other :protocol would reach the backend as an Upgrade meshd cannot
# vouch for, h2c above all (a tunnel past routing and checks: h2c smuggling).
before=$("${CURL[@]}" "http://127.0.0.1:$HTTP/__count")
for proto in h2c connect-udp; do
    out=$("$H2RAW_BIN" --timeout 10 127.0.0.1 "$WEB" --method CONNECT -H ":protocol: $proto" \
        -H 'http2-settings: AAMAAABkAAQCAAAAAAIAAAAA' --path /ws --no-end 2>&1)
    expect_match "$out" 'status=501' "extended CONNECT with :protocol $proto: 501"
done
expect_match "$out" 'header x-meshd-response-flags: DPE' "  ... flag DPE"
after=$("${CURL[@]}" "http://127.0.0.1:$HTTP/__count")
expect_eq "$after" "$before" "  ... and the backend never saw them"
# :protocol needs CONNECT, :scheme and :path (RFC 8441 4): nghttp2 resets, nothing goes out
before=$("${CURL[@]}" "http://127.0.0.1:$HTTP/__count")
out=$("$H2RAW_BIN" --timeout 10 127.0.0.1 "$WEB" --method GET -H ':protocol: websocket' --path /ws 2>&1)
expect_match "$out" 'rst-stream=PROTOCOL_ERROR' ":protocol with GET: RST_STREAM(PROTOCOL_ERROR)"
out=$("$H2RAW_BIN" --timeout 10 127.0.0.1 "$WEB" --connect -H ':protocol: websocket' 2>&1)
expect_match "$out" 'rst-stream=PROTOCOL_ERROR' ":protocol without :scheme and :path: RST_STREAM(PROTOCOL_ERROR)"
after=$("${CURL[@]}" "http://127.0.0.1:$HTTP/__count")
expect_eq "$after" "$before" "  ... neither reached the backend"

# Between two sidecars the hop is HTTP/2 (docs/compile.md), and HTTP/2 has no Upgrade (it
# went out over HTTP/2 without its Upgrade header, and the WebSocket failed). A WebSocket
# takes the hop as an extended CONNECT (RFC 8441) once the endpoint's SETTINGS said it takes
# one, and an HTTP/1.1 connection before. A second meshd in front reaches this one's "web"
# listener through an http2 cluster.
WEB_LOG=$MESHD_LOG
write_snapshot "$T_DIR/front.json" --protocol http2 --endpoint "127.0.0.1:$WEB" --listener front
start_meshd "$T_DIR/front.json" || bail_out "the front meshd starts"
FRONT=${MESHD_PORTS[front]:-}
out=$(raw "$FRONT" "send:$ws_req" 'expect:\r\n\r\n' 'send:first' 'expect:first')
expect_match "$out" $'^HTTP/1\\.1 101 .*first$' \
    "websocket over two hops before the front spoke HTTP/2 to the next: 101, bytes pass"
wait_for 5 grep -q 'access "GET /ws HTTP/1.1" 101 ' "$WEB_LOG"
expect_match "$(grep 'access "GET /ws HTTP/1' "$WEB_LOG" | tail -n 1)" '"GET /ws HTTP/1.1" 101 ' \
    "  ... the hop took HTTP/1.1 (the endpoint's SETTINGS not known yet)"
expect_eq "$("${CURL[@]}" "http://127.0.0.1:$FRONT/hello")" "hello from a" \
    "two hops, HTTP/2 between them: a plain request passes"
out=$(raw "$FRONT" "send:$ws_req" 'expect:\r\n\r\n' 'send:over two hops' 'expect:over two hops')
expect_match "$out" $'^HTTP/1\\.1 101 ' "websocket over two hops with an http2 cluster between: 101"
expect_match "$out" 'over two hops$' "websocket over two hops: the tunnel carries bytes"
expect_eq "$(header_of "$out" sec-websocket-accept)" 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=' \
    "  ... the front answers the client's key (RFC 6455's example), which the hop does not carry"
expect_match "$(header_of "$out" upgrade)" '^websocket$' "  ... Upgrade: websocket in the 101"
wait_for 5 grep -q 'access "GET /ws HTTP/2" 200 ' "$WEB_LOG"
expect_match "$(grep 'access "GET /ws HTTP/2' "$WEB_LOG" | tail -n 1)" '"GET /ws HTTP/2" 200 ' \
    "  ... the hop was an HTTP/2 extended CONNECT (the next meshd's stream, its 200)"
out=$(raw "$FRONT" "send:$ws_req" 'expect:\r\n\r\n' 'send:half' 'expect:half' shutwr readall)
expect_match "$out" 'half$' "websocket over an extended CONNECT hop: bytes, then the client's FIN"
expect_eq "$(cat "$T_DIR/raw.outcome")" "mesh-test-raw: eof" \
    "  ... the FIN went as END_STREAM, and the backend's FIN came back (a half-close each way)"
out=$(raw "$FRONT" "send:${ws_req}early-bytes" 'expect:early-bytes')
expect_match "$out" $'101 .*\r\n\r\nearly-bytes' \
    "  ... bytes sent with the upgrade request wait for the 2xx, then go"
out=$(raw "$FRONT" "send:$(req GET /status/404 'Upgrade: websocket' 'Connection: Upgrade' \
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' 'Sec-WebSocket-Version: 13' 'Connection: close')" readall)
expect_eq "$(status_of "$out")" 404 "  ... a refusal by the backend passes back as it is"
# Without a Sec-WebSocket-Key the front could not answer the client: the Upgrade takes
# HTTP/1.1 and the backend judges it (400), where it got a 101 it could not check.
out=$(raw "$FRONT" "send:$(req GET /ws 'Upgrade: websocket' 'Connection: Upgrade' \
    'Sec-WebSocket-Version: 13' 'Connection: close')" readall)
expect_eq "$(status_of "$out")" 400 "  ... an Upgrade without a key: the backend's 400, no 101"
wait_for 5 grep -q 'access "GET /ws HTTP/1.1" 400 ' "$WEB_LOG"
expect_match "$(grep 'access "GET /ws HTTP/1.1" 400 ' "$WEB_LOG")" '400' \
    "  ... over HTTP/1.1 to the next meshd"

# An HTTP/2 client's extended CONNECT over the same hop: a stream each side.
h2ws_front() { "$H2RAW_BIN" --timeout 20 127.0.0.1 "$FRONT" --method CONNECT \
    -H ':protocol: websocket' -H 'sec-websocket-version: 13' "$@" 2>&1; }
out=$(h2ws_front --path /ws --data-after-status --data $'\x81\x05hello' --out "$T_DIR/ws2h.out")
expect_match "$out" 'status=200' "HTTP/2 websocket over two hops: 200"
expect_eq "$(od -An -c "$T_DIR/ws2h.out" | tr -s ' ')" "$(printf '\x81\x05hello' | od -An -c | tr -s ' ')" \
    "  ... echoed byte-exact, and END_STREAM both ways"
out=$(h2ws_front --path /ws --data 'sent before the 200' --out "$T_DIR/ws2h-early.out")
expect_eq "$(cat "$T_DIR/ws2h-early.out")" "sent before the 200" \
    "  ... DATA sent before the 200 waits for both hops to switch, then goes through"
h2ws_front --path /ws --data-after-status --data-file "$T_DIR/1m" --out "$T_DIR/ws2h-1m.out" \
    >"$T_DIR/ws2h-1m.log"
expect_eq "$(sha_of "$T_DIR/ws2h-1m.out")" "$(sha_of "$T_DIR/1m")" \
    "  ... 1 MiB through and back, byte-exact (flow control on both streams)"
before=$("${CURL[@]}" "http://127.0.0.1:$HTTP/__count")
out=$(h2ws_front --path /hello --no-end --data $'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n')
expect_match "$out" 'status=502' "  ... a backend that answers 200 without switching: 502 from the next hop"
after=$("${CURL[@]}" "http://127.0.0.1:$HTTP/__count")
expect_eq "$after" "$((before + 1))" "  ... and the held DATA never reached the backend"
out=$(h2c "$FRONT" --authority "127.0.0.1:$HTTP" --no-end --out "$T_DIR/h2t-2hop.out" \
    --data $'GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
expect_match "$(cat "$T_DIR/h2t-2hop.out")" 'hello from a' \
    "HTTP/2 CONNECT to the front: its tunnel is raw bytes to the next meshd, then HTTP/1.1 inside"

# A plain request still works on the web listener.
expect_eq "$("${CURL[@]}" "http://127.0.0.1:$WEB/hello")" "hello from a" "still serving plain HTTP"
