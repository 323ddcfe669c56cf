#!/usr/bin/env bash
# tcp_routes: TCP routes by destination address and port (weighted), TLS routes by SNI
# without terminating TLS, fallback to HTTP on a listener with both, no route -> closed,
# connect failure, idle timeout, half-close, and the SIGTERM drain.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${MESH_SRCDIR:-$(dirname "$0")/../..}/tests/integration/lib.sh"

start_backend a
start_backend b
A_HTTP=${BACKEND_PORT[a]} B_HTTP=${BACKEND_PORT[b]} A_ECHO=${BACKEND_ECHO_PORT[a]}
CLOSED=$(free_port) || bail_out "a free port for the connect-failure cluster"

# ---- TLS backends: openssl s_server, each with its own self-signed certificate ----------------
HAVE_TLS=0
declare -A TLS_PORT=()
# start_tls NAME CN: s_server -www on an ephemeral port; sets TLS_PORT[NAME].
start_tls()
{
    local name=$1 cn=$2 log=$T_DIR/tls-$1.log
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=$cn" -keyout "$T_DIR/$name.key" -out "$T_DIR/$name.crt" >/dev/null 2>&1 ||
        return 1
    openssl s_server -accept 127.0.0.1:0 -cert "$T_DIR/$name.crt" -key "$T_DIR/$name.key" \
        -www </dev/null >"$log" 2>&1 &
    track $! other "s_server $name" "$log"
    wait_for 10 grep -q '^ACCEPT 127.0.0.1:' "$log" || return 1
    TLS_PORT[$name]=$(sed -n 's/^ACCEPT 127\.0\.0\.1://p' "$log")
}
if have_cmd openssl && start_tls sa a.example.com && start_tls sb x.b.example.com; then
    HAVE_TLS=1
else
    diag "openssl (req, s_server) unavailable: the TLS routes are skipped"
    TLS_PORT[sa]=1 TLS_PORT[sb]=1
fi

# write_snap VERSION PORT_MATCH: listener "tcp" routes destination_port PORT_MATCH to a 80/20
# split over the HTTP ports of a and b, then (by address) everything else to a's echo.
write_snap()
{
    cat >"$T_DIR/snap.json.tmp" <<EOF
{"version":"$1",
 "admin":{"address":"127.0.0.1","port":0},
 "timeouts":{"drain_ms":1500},
 "listeners":[
   {"name":"tcp","address":"127.0.0.1","port":0,"tcp_routes":[
     {"match":{"destination_port":$2},
      "weighted_clusters":[{"name":"a_http","weight":80},{"name":"b_http","weight":20}]},
     {"match":{"destination_addresses":["10.0.0.0/8","::1"]},"cluster":"closed"},
     {"match":{"destination_addresses":["127.0.0.0/8"]},"cluster":"a_echo"}]},
   {"name":"tls","address":"127.0.0.1","port":0,"route_config":"rc","tcp_routes":[
     {"match":{"sni":["a.example.com"]},"cluster":"sa"},
     {"match":{"sni":["*.b.example.com"]},"cluster":"sb"}]},
   {"name":"tlsonly","address":"127.0.0.1","port":0,"tcp_routes":[
     {"match":{"sni":["a.example.com"]},"cluster":"sa"}]},
   {"name":"refused","address":"127.0.0.1","port":0,"tcp_routes":[{"cluster":"closed"}]},
   {"name":"echo","address":"127.0.0.1","port":0,"tcp_routes":[{"cluster":"a_echo"}]},
   {"name":"idle","address":"127.0.0.1","port":0,"tcp_routes":[
     {"cluster":"a_echo","idle_timeout_ms":300}]},
   {"name":"busy","address":"127.0.0.1","port":0,"tcp_routes":[
     {"cluster":"a_echo","idle_timeout_ms":1000}]}],
 "route_configs":[{"name":"rc","virtual_hosts":[{"name":"all","domains":["*"],
   "routes":[{"match":{"prefix":"/"},"route":{"cluster":"a_http"}}]}]}],
 "clusters":[
   {"name":"a_http","endpoints":[{"address":"127.0.0.1","port":$A_HTTP}]},
   {"name":"b_http","endpoints":[{"address":"127.0.0.1","port":$B_HTTP}]},
   {"name":"a_echo","endpoints":[{"address":"127.0.0.1","port":$A_ECHO}]},
   {"name":"closed","connect_timeout_ms":500,"endpoints":[{"address":"127.0.0.1","port":$CLOSED}]},
   {"name":"sa","endpoints":[{"address":"127.0.0.1","port":${TLS_PORT[sa]}}]},
   {"name":"sb","endpoints":[{"address":"127.0.0.1","port":${TLS_PORT[sb]}}]}]}
EOF
    mv -f "$T_DIR/snap.json.tmp" "$T_DIR/snap.json"
}

# Port 1 never matches: until the reload below, "tcp" takes the route by address.
write_snap v1 1
start_meshd "$T_DIR/snap.json" || bail_out "meshd starts"
TCP=${MESHD_PORTS[tcp]} TLS=${MESHD_PORTS[tls]} TLSONLY=${MESHD_PORTS[tlsonly]}
REFUSED=${MESHD_PORTS[refused]} IDLE=${MESHD_PORTS[idle]} ECHO=${MESHD_PORTS[echo]}
BUSY=${MESHD_PORTS[busy]}

stat_of()
{
    "${CURL[@]}" "$(admin_url /stats)" | sed -n "s/^$1: //p"
}

# ---- TCP by destination address: raw bytes to an echo ---------------------------------------
"$RAW_BIN" --timeout 10 127.0.0.1 "$TCP" 'send:\x16\0\xff binary\r\n' 'expect:binary\r\n' \
    'send:second' 'expect:second' shutwr readall >"$T_DIR/echo.out" 2>"$T_DIR/raw.outcome"
expect_eq "$(od -An -tx1 "$T_DIR/echo.out" | tr -s ' \n' ' ')" \
    " 16 00 ff 20 62 69 6e 61 72 79 0d 0a 73 65 63 6f 6e 64 " \
    "tcp route by address: bytes (NUL, 0xff, a 0x16 first byte) echoed unchanged"
expect_eq "$(cat "$T_DIR/raw.outcome")" "mesh-test-raw: eof" \
    "tcp route: the client's FIN goes through, the echo's FIN comes back (half-close)"

# The client half-closes first and still receives what the upstream sends afterwards.
out=$(raw "$TCP" 'send:late' shutwr readall)
expect_eq "$out" "late" "tcp route: data flows back after the client's FIN"

# ---- TCP by destination port, after a reload that names the listener's own port -------------
write_snap v2 "$TCP"
kill -HUP "$MESHD_PID"
wait_for 10 grep -q 'reloaded snapshot version v2' "$MESHD_LOG" ||
    bail_out "meshd reloads the snapshot with destination_port $TCP"

random_file "$T_DIR/1m" 1048576
"${CURL[@]}" --data-binary @"$T_DIR/1m" -o "$T_DIR/1m.out" "http://127.0.0.1:$TCP/echo"
expect_eq "$(sha_of "$T_DIR/1m.out")" "$(sha_of "$T_DIR/1m")" \
    "tcp route by port: 1 MiB HTTP upload through the byte proxy echoed byte-exact"
# 32 MiB each way at once (the echo answers while the upload goes on): both sides fill their
# sockets and buffers, so backpressure holds each direction in turn; the upstream side's
# reads and writes go through the worker's batch like the client side's.
random_file "$T_DIR/32m" $((32 * 1024 * 1024))
"${CURL[@]}" --max-time 60 --data-binary @"$T_DIR/32m" -o "$T_DIR/32m.out" "http://127.0.0.1:$TCP/echo"
expect_eq "$(sha_of "$T_DIR/32m.out")" "$(sha_of "$T_DIR/32m")" \
    "tcp route: 32 MiB up and echoed back down at the same time, byte-exact"
n=$("${CURL[@]}" --max-time 60 "http://127.0.0.1:$TCP/bytes/$((32 * 1024 * 1024))" | wc -c)
expect_eq "$n" $((32 * 1024 * 1024)) "tcp route: a 32 MiB download through the byte proxy"

hdrs=$("${CURL[@]}" "http://127.0.0.1:$TCP/headers")
expect_match "$hdrs" "Host: 127.0.0.1:$TCP" "tcp route: the backend sees the client's own request"
expect_no_match "$hdrs" '(x-request-id|x-forwarded-for|x-forwarded-proto):' \
    "tcp route: no HTTP processing (meshd adds no headers)"

SECONDS=0
# 1000 connections, each a new TCP connection (Connection: close): the split converges to 80/20.
N=1000
total_before=$(stat_of tcp_cx_total)
urls=()
for ((i = 0; i < N; i++)); do urls+=("http://127.0.0.1:$TCP/"); done
"${CURL[@]}" --max-time 40 -H 'Connection: close' "${urls[@]}" >"$T_DIR/split.out" 2>&1
na=$(grep -c '^hello from a$' "$T_DIR/split.out")
nb=$(grep -c '^hello from b$' "$T_DIR/split.out")
expect_eq "$((na + nb))" "$N" "weighted tcp route: all $N connections answered"
# 80% of 1000: sd = sqrt(1000 x 0.8 x 0.2) = 12.6; +-4.5 sd
if [ "$na" -ge 743 ] && [ "$na" -le 857 ]; then
    ok "weighted tcp route: 80/20 split over $N connections (a=$na b=$nb)"
else
    not_ok "weighted tcp route: 80/20 split over $N connections" "a=$na b=$nb"
fi
expect_eq "$(($(stat_of tcp_cx_total) - total_before))" "$N" \
    "tcp_cx_total counts each proxied connection"
diag "$N connections through the weighted tcp route in ${SECONDS} s"

# ---- TLS by SNI, not terminated ---------------------------------------------------------------
# tls_subject PORT [SNI [s_client args]]: the subject of the certificate the client saw.
tls_subject()
{
    local port=$1 sni=${2:-}
    shift 2 || shift $#
    timeout "${TLS_BOUND:-10}" openssl s_client -connect "127.0.0.1:$port" ${sni:+-servername "$sni"} "$@" \
        </dev/null 2>&1 | sed -n 's/^subject=//p'
}
noroute_before=$(stat_of tcp_cx_no_route)
if [ $HAVE_TLS = 1 ]; then
    sni_before=$(stat_of tcp_cx_sni)
    expect_eq "$(tls_subject "$TLS" a.example.com)" "CN = a.example.com" \
        "tls route: SNI a.example.com reaches backend sa, whose certificate the client sees"
    expect_eq "$(tls_subject "$TLS" y.x.b.example.com)" "CN = x.b.example.com" \
        "tls route: SNI y.x.b.example.com takes the *.b.example.com route to sb"
    page=$("${CURL[@]}" -k --resolve "a.example.com:$TLS:127.0.0.1" "https://a.example.com:$TLS/")
    expect_match "$page" "-cert $T_DIR/sa.crt" "tls route: curl over TLS gets sa's s_server page"
    page=$("${CURL[@]}" -k --resolve "z.b.example.com:$TLS:127.0.0.1" "https://z.b.example.com:$TLS/")
    expect_match "$page" "-cert $T_DIR/sb.crt" "tls route: curl to z.b.example.com gets sb's page"

    # A ClientHello in two TLS records (512-byte fragments, a long ALPN list): meshd reads both.
    alpn=$(printf 'proto-number-%03d,' $(seq 1 40))
    expect_eq "$(tls_subject "$TLS" a.example.com -max_send_frag 512 -alpn "${alpn%,}")" \
        "CN = a.example.com" "tls route: a ClientHello fragmented over two records"

    # Unknown SNI on a listener with HTTP: handed to the HTTP codec, which waits for a request
    # line that never comes (so the client is cut short here).
    http1_before=$(stat_of downstream_cx_http1)
    expect_eq "$(TLS_BOUND=3 tls_subject "$TLS" c.example.com)" "" \
        "tls listener with route_config: unknown SNI gets no TLS backend"
    expect_eq "$(($(stat_of downstream_cx_http1) - http1_before))" 1 \
        "tls listener with route_config: unknown SNI is handed to HTTP"
    expect_eq "$(tls_subject "$TLSONLY" c.example.com)" "" \
        "tls-only listener: unknown SNI is closed"
    expect_eq "$(tls_subject "$TLSONLY")" "" "tls-only listener: no SNI at all is closed"
    expect_eq "$(tls_subject "$TLSONLY" a.example.com)" "CN = a.example.com" \
        "tls-only listener: a.example.com passes"
    expect_eq "$(($(stat_of tcp_cx_sni) - sni_before))" 6 "tcp_cx_sni counts the SNI routes"
else
    skip "tls routes" "openssl unavailable"
fi

# ---- The listener with both serves HTTP to everything else, no byte lost --------------------
expect_eq "$("${CURL[@]}" "http://127.0.0.1:$TLS/x")" "hello from a" \
    "listener with route_config and tcp_routes: plain HTTP is routed as HTTP"
out=$(raw "$TLS" "send:$(req GET /echo 'Content-Length: 5' 'Connection: close')hello" readall)
expect_eq "$(header_of "$out" x-backend)" a "listener with both: HTTP request with a body"
expect_eq "$(body_of "$out")" "hello" "listener with both: the body read while sniffing arrives"
hdrs=$("${CURL[@]}" "http://127.0.0.1:$TLS/headers")
expect_match "$hdrs" 'x-forwarded-proto: http' "listener with both: HTTP goes through the HTTP path"

# ---- No route, connect failure, idle timeout --------------------------------------------------
out=$(raw "$TLSONLY" 'send:GET / HTTP/1.1\r\nHost: t\r\n\r\n' readall)
expect_eq "$out" "" "tls-only listener: plain bytes are closed without an answer"
expect_eq "$(cat "$T_DIR/raw.outcome")" "mesh-test-raw: eof" "tls-only listener: closed, not hung"
if [ $HAVE_TLS = 1 ]; then n_closed=3; else n_closed=1; fi
expect_eq "$(($(stat_of tcp_cx_no_route) - noroute_before))" "$n_closed" \
    "tcp_cx_no_route counts the connections closed without a route"

# A client that starts a ClientHello and stalls: after the 5 s wait it is routed without SNI,
# so closed here (the listener has nothing else). It waits in the background meanwhile.
"$RAW_BIN" --timeout 15 127.0.0.1 "$TLSONLY" 'send:\x16\x03\x01\x01\x3a\x01' readall \
    >"$T_DIR/stall.out" 2>"$T_DIR/stall.outcome" &
STALL_PID=$!
track "$STALL_PID" other "stalled client" "$T_DIR/stall.outcome"
# An HTTP client that says nothing until the ClientHello wait is over is served as HTTP.
"$RAW_BIN" --timeout 20 127.0.0.1 "$TLS" "waitfile:$T_DIR/late" \
    "send:$(req GET /late 'Connection: close')" readall >"$T_DIR/late.out" 2>/dev/null &
LATE_PID=$!
track "$LATE_PID" other "late HTTP client" /dev/null

fail_before=$(stat_of upstream_cx_connect_fail)
out=$(raw "$REFUSED" 'send:hello' readall)
expect_eq "$out|$(cat "$T_DIR/raw.outcome")" "|mesh-test-raw: eof" \
    "connect failure: the client's connection is closed"
expect_eq "$(($(stat_of upstream_cx_connect_fail) - fail_before))" 1 \
    "connect failure is counted in upstream_cx_connect_fail"

out=$(raw "$IDLE" 'send:ping' 'expect:ping' readall)
expect_eq "$out|$(cat "$T_DIR/raw.outcome")" "ping|mesh-test-raw: eof" \
    "idle_timeout_ms: a silent TCP connection is closed (well before the 10 s client bound)"
# The idle timeout is lazy (a byte only stamps a deadline; the timer re-arms itself when it
# fires early): a connection that keeps talking lives past it. 30 echoes 100 ms apart, 3 s
# on a route with a 1 s idle timeout.
busy_echoes()
{
    local i got n=0
    exec 7<>"/dev/tcp/127.0.0.1/$BUSY" || return 0
    for i in $(seq 10 39); do
        printf 'm%s' "$i" >&7 || break
        IFS= read -r -t 5 -N 3 got <&7 || break
        [ "$got" = "m$i" ] && n=$((n + 1))
        sleep 0.1
    done
    exec 7>&-
    echo "$n"
}
expect_eq "$(busy_echoes)" 30 "idle_timeout_ms: a connection that keeps talking outlives it (30 echoes over 3 s, 1 s timeout)"

wait_exit "$STALL_PID" 20
expect_eq "$(cat "$T_DIR/stall.out")|$(cat "$T_DIR/stall.outcome")" "|mesh-test-raw: eof" \
    "a stalled ClientHello is closed after the ClientHello wait (not left open)"
: >"$T_DIR/late"
wait_exit "$LATE_PID" 15
expect_eq "$(body_of "$(cat "$T_DIR/late.out")")" "hello from a" \
    "a silent client past the ClientHello wait is then served as HTTP"

# ---- SIGTERM drain: TCP connections keep working, then close at the drain deadline ----------
"$RAW_BIN" --timeout 20 127.0.0.1 "$ECHO" 'send:before' 'expect:before' "waitfile:$T_DIR/go" \
    'send:-during' 'expect:-during' readall >"$T_DIR/drain.out" 2>"$T_DIR/drain.outcome" &
RAW_PID=$!
track "$RAW_PID" other "drain client" "$T_DIR/drain.outcome"
wait_for 10 grep -q before "$T_DIR/drain.out" || not_ok "drain client connected"
kill -TERM "$MESHD_PID"
wait_for 10 grep -q 'draining' "$MESHD_LOG" || not_ok "meshd logs the drain"
: >"$T_DIR/go"
wait_exit "$RAW_PID" 15
expect_eq "$(cat "$T_DIR/drain.out")|$(cat "$T_DIR/drain.outcome")" \
    "before-during|mesh-test-raw: eof" \
    "drain: an open TCP connection still carries bytes, then is closed at the deadline"
if wait_exit "$MESHD_PID" 15; then
    check_exit "$MESHD_PID"
else
    not_ok "meshd exits after the drain deadline"
fi
