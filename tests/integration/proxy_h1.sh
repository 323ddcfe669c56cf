#!/usr/bin/env bash
# HTTP/1.1 through meshd: keep-alive, pipelining, chunked both ways, 100-continue, HEAD,
# header-name case, x-request-id / x-forwarded-*, hop-by-hop stripping, large bodies.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${MESH_SRCDIR:-$(dirname "$0")/../..}/tests/integration/lib.sh"

start_backend a
write_snapshot "$T_DIR/snap.json" --endpoint "127.0.0.1:$BACKEND"
start_meshd "$T_DIR/snap.json" || bail_out "meshd starts"

# ---- basic GET ----------------------------------------------------------------------
out=$("${CURL[@]}" -i "$(mesh_url /hello)" 2>&1)
expect_eq "$(status_of "$out")" 200 "GET /hello through meshd: 200"
expect_eq "$(body_of "$out")" "hello from a" "GET /hello: body comes from the backend"
expect_eq "$(header_of "$out" x-backend)" a "GET /hello: backend response header passes"

out=$("${CURL[@]}" --http1.0 -i "$(mesh_url /hello)" 2>&1)
expect_eq "$(status_of "$out")" 200 "HTTP/1.0 GET: 200"
expect_match "$out" '^HTTP/1\.1 200' "HTTP/1.0 GET: answered as HTTP/1.1, the server's version (RFC 9110 6.2)"
expect_eq "$(body_of "$out")" "hello from a" "HTTP/1.0 GET: the body, delimited for an HTTP/1.0 client"

# ---- keep-alive: three URLs, one downstream connection --------------------------------
out=$("${CURL[@]}" -w '%{num_connects} ' -o /dev/null -o /dev/null -o /dev/null \
    "$(mesh_url /k1)" "$(mesh_url /k2)" "$(mesh_url /k3)" 2>&1)
expect_eq "$out" "1 0 0 " "keep-alive: curl reuses one connection for 3 requests"

# ---- pipelining: 3 requests in one write, answered in order ---------------------------
# The middle one is slow, so a proxy answering out of order would put it last.
out=$(raw "$MESH_PORT" \
    "send:$(req GET /status/201)$(req GET /delay/300)$(req GET /status/202 'Connection: close')" \
    readall)
order=$(printf '%s' "$out" | tr -d '\r' | grep -Eo '^HTTP/1\.1 [0-9]{3}' | awk '{print $2}' |
    tr '\n' ' ')
expect_eq "$order" "201 200 202 " "pipelining: 3 responses in request order"
expect_match "$out" "delayed 300 ms by a" "pipelining: the middle (slow) response is complete"
expect_eq "$(cat "$T_DIR/raw.outcome")" "mesh-test-raw: eof" \
    "pipelining: connection closed after the 'Connection: close' request"

# ---- chunked request body -------------------------------------------------------------
random_file "$T_DIR/100k" 100000
"${CURL[@]}" -H 'Transfer-Encoding: chunked' --data-binary @"$T_DIR/100k" \
    -o "$T_DIR/100k.out" "$(mesh_url /echo)"
expect_eq "$(sha_of "$T_DIR/100k.out")" "$(sha_of "$T_DIR/100k")" \
    "chunked upload (100 kB) echoed byte-exact"

out=$(raw "$MESH_PORT" "send:$(req POST /echo 'Transfer-Encoding: chunked' 'Connection: close')"\
"5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: t\r\n\r\n" readall)
expect_eq "$(status_of "$out")" 200 "chunked upload with extension and trailer: 200"
expect_match "$out" "hello world!" "chunked upload with extension and trailer: body intact"

# Trailers, h1 -> h1: a request trailer reaches the backend, a response trailer the client.
out=$(raw "$MESH_PORT" "send:$(req POST /headers 'Transfer-Encoding: chunked' 'Connection: close')"\
"3\r\nabc\r\n0\r\nX-Req-Trailer: tv\r\n\r\n" readall)
expect_eq "$(status_of "$out")" 200 "chunked request with a trailer: 200"
expect_match "$(body_of "$out")" $'# trailers\nX-Req-Trailer: tv' \
    "request trailer forwarded h1 -> h1 (as a trailer, name case kept)"
out=$(raw "$MESH_PORT" "send:$(req GET /trailers 'TE: trailers' 'Connection: close')" readall)
expect_match "$(body_of "$out")" 'trailers from a' "chunked response with a trailer: body"
expect_match "$out" $'\r\n0\r\n([^\r]*\r\n)*x-backend-trailer: a\r\n' \
    "response trailer forwarded h1 -> h1"

# ---- chunked response -----------------------------------------------------------------
n=$("${CURL[@]}" "$(mesh_url /bytes/300000)" | wc -c)
expect_eq "$n" 300000 "chunked response (/bytes/300000): all bytes arrive"
out=$(raw "$MESH_PORT" "send:$(req GET /bytes/10 'Connection: close')" readall)
expect_match "$(body_of "$out")" "xxxxxxxxxx" "chunked response: raw framing carries the body"
expect_match "$(header_of "$out" transfer-encoding)$(header_of "$out" content-length)" \
    "^(chunked|10)$" "chunked response: framed by chunked or content-length"

# ---- Expect: 100-continue -------------------------------------------------------------
out=$(raw "$MESH_PORT" "send:$(req POST /echo 'Content-Length: 11' 'Expect: 100-continue')" \
    "expect:100 Continue\r\n\r\n" "send:hello-there" "expect:hello-there")
expect_match "$out" $'^HTTP/1\\.1 100 Continue\r\n' "Expect: 100-continue: 100 before the body"
expect_eq "$(status_of "$out")" 200 "Expect: 100-continue: final 200"
expect_match "$(body_of "$out")" "^hello-there" "Expect: 100-continue: body echoed"

random_file "$T_DIR/2m" $((2 * 1024 * 1024))
"${CURL[@]}" -v --expect100-timeout 8 -H 'Expect: 100-continue' --data-binary @"$T_DIR/2m" \
    -o "$T_DIR/2m.out" "$(mesh_url /echo)" 2>"$T_DIR/2m.err"
expect_match "$(cat "$T_DIR/2m.err")" "< HTTP/1.1 100 Continue" \
    "curl Expect: 100-continue (2 MiB): 100 received"
expect_eq "$(sha_of "$T_DIR/2m.out")" "$(sha_of "$T_DIR/2m")" "curl 100-continue upload echoed"

# ---- HEAD -------------------------------------------------------------------------------
out=$("${CURL[@]}" -I "$(mesh_url /hello)" 2>&1)
expect_eq "$(status_of "$out")" 200 "HEAD: 200"
expect_eq "$("${CURL[@]}" -I -o /dev/null -w '%{size_download}' "$(mesh_url /hello)")" 0 \
    "HEAD: no body"
# A body after a HEAD response would be read as the next response: check the framing.
out=$(raw "$MESH_PORT" \
    "send:$(req HEAD /hello)$(req HEAD /bytes/1000)$(req GET /status/201 'Connection: close')" \
    readall)
order=$(printf '%s' "$out" | tr -d '\r' | grep -Eo '^HTTP/1\.1 [0-9]{3}' | awk '{print $2}' |
    tr '\n' ' ')
expect_eq "$order" "200 200 201 " "HEAD then GET on one connection: framing intact"
expect_no_match "$out" "hello from a|xxxx" "HEAD: no body bytes on the wire"

# ---- header names keep their case end to end --------------------------------------------
out=$("${CURL[@]}" -H 'X-Custom-Case: v' -H 'x-lower: l' -H 'X-UPPER: U' "$(mesh_url /headers)")
expect_match "$out" $'(^|\n)X-Custom-Case: v(\n|$)' "header name case preserved: X-Custom-Case"
expect_match "$out" $'(^|\n)X-UPPER: U(\n|$)' "header name case preserved: X-UPPER"
expect_match "$out" $'(^|\n)x-lower: l(\n|$)' "header name case preserved: x-lower"

# ---- x-request-id, x-forwarded-for, x-forwarded-proto -------------------------------------
out=$("${CURL[@]}" "$(mesh_url /headers)")
expect_match "$(printf '%s\n' "$out" | grep -i '^x-request-id:')" \
    '^[xX]-[rR]equest-[iI][dD]: [^ ]+' "x-request-id added when absent"
expect_match "$(printf '%s\n' "$out" | grep -i '^x-forwarded-for:')" '127\.0\.0\.1' \
    "x-forwarded-for carries the client address"
expect_match "$(printf '%s\n' "$out" | grep -i '^x-forwarded-proto:')" ': http$' \
    "x-forwarded-proto: http"
id1=$(printf '%s\n' "$out" | grep -i '^x-request-id:')
id2=$("${CURL[@]}" "$(mesh_url /headers)" | grep -i '^x-request-id:')
expect_ne "$id2" "$id1" "x-request-id differs between requests"
out=$("${CURL[@]}" -H 'X-Request-Id: my-id-123' "$(mesh_url /headers)")
expect_eq "$(printf '%s\n' "$out" | grep -ci '^x-request-id:')" 1 \
    "x-request-id: exactly one when the client sent one"
expect_match "$(printf '%s\n' "$out" | grep -i '^x-request-id:')" ': my-id-123$' \
    "x-request-id kept when present"
out=$("${CURL[@]}" -H 'X-Forwarded-For: 10.1.2.3' "$(mesh_url /headers)")
expect_match "$(printf '%s\n' "$out" | grep -i '^x-forwarded-for:' | tr '\n' ' ')" \
    '10\.1\.2\.3.*127\.0\.0\.1' "x-forwarded-for appends the client to an existing value"

# ---- hop-by-hop headers stripped ------------------------------------------------------------
out=$("${CURL[@]}" -H 'Connection: keep-alive, X-Hop-Listed' -H 'X-Hop-Listed: secret' \
    -H 'Keep-Alive: timeout=5' -H 'TE: gzip' -H 'Proxy-Connection: keep-alive' \
    -H 'X-Keep: yes' "$(mesh_url /headers)")
expect_match "$out" $'(^|\n)X-Keep: yes' "hop-by-hop: an end-to-end header still passes"
expect_eq "$(printf '%s\n' "$out" | grep -ci '^keep-alive:')" 0 "hop-by-hop: Keep-Alive stripped"
expect_eq "$(printf '%s\n' "$out" | grep -ci '^te:')" 0 "hop-by-hop: TE stripped"
expect_eq "$(printf '%s\n' "$out" | grep -ci '^proxy-connection:')" 0 \
    "hop-by-hop: Proxy-Connection stripped"
expect_eq "$(printf '%s\n' "$out" | grep -ci '^x-hop-listed:')" 0 \
    "hop-by-hop: a header named in Connection stripped"
expect_eq "$(printf '%s\n' "$out" | grep -i '^connection:' | grep -ci 'x-hop-listed')" 0 \
    "hop-by-hop: the client's Connection value not forwarded"
# ...and on responses: the backend's /hop-headers sends a mixed-case X-Mixed-Case and
# Keep-Alive, Connection: X-Hop with X-Hop, and Proxy-Connection.
out=$("${CURL[@]}" -i "$(mesh_url /hop-headers)" | tr -d '\r')
expect_match "$out" $'\nX-Mixed-Case: Kept(\n|$)' "response header name case preserved: X-Mixed-Case"
expect_eq "$(printf '%s\n' "$out" | grep -ci '^keep-alive:')" 0 "response hop-by-hop: Keep-Alive stripped"
expect_eq "$(printf '%s\n' "$out" | grep -ci '^x-hop:')" 0 \
    "response hop-by-hop: a header named in Connection stripped"
expect_eq "$(printf '%s\n' "$out" | grep -ci '^proxy-connection:')" 0 \
    "response hop-by-hop: Proxy-Connection stripped"
expect_eq "$(printf '%s\n' "$out" | grep -i '^connection:' | grep -ci 'x-hop')" 0 \
    "response hop-by-hop: the backend's Connection value not forwarded"
expect_match "$out" $'\n\nhop headers$' "response hop-by-hop: the body intact"
out=$("${CURL[@]}" -i --http2-prior-knowledge "$(mesh_url /hop-headers)" | tr -d '\r')
expect_eq "$(printf '%s\n' "$out" | grep -Eci '^(keep-alive|x-hop|proxy-connection|connection):')" 0 \
    "response hop-by-hop, HTTP/2 client: none of them (an HTTP/2 response may not carry them)"
expect_match "$out" $'\nx-mixed-case: Kept(\n|$)' "HTTP/2 client: the header, lowercased as HTTP/2 requires"

# ---- large bodies, byte-exact -----------------------------------------------------------------
for size in 1048576 67108864; do
    random_file "$T_DIR/up" "$size"
    "${CURL[@]}" --max-time 60 --data-binary @"$T_DIR/up" -o "$T_DIR/up.out" "$(mesh_url /echo)"
    expect_eq "$(sha_of "$T_DIR/up.out")" "$(sha_of "$T_DIR/up")" \
        "upload+echo $size bytes (content-length) byte-exact"
    "${CURL[@]}" --max-time 60 -H 'Transfer-Encoding: chunked' --data-binary @"$T_DIR/up" \
        -o "$T_DIR/up.out" "$(mesh_url /echo)"
    expect_eq "$(sha_of "$T_DIR/up.out")" "$(sha_of "$T_DIR/up")" \
        "upload+echo $size bytes (chunked) byte-exact"
    "${CURL[@]}" --max-time 60 -o "$T_DIR/down.out" "$(mesh_url "/bytes/$size")"
    head -c "$size" /dev/zero | tr '\0' x >"$T_DIR/down.ref"
    expect_eq "$(sha_of "$T_DIR/down.out")" "$(sha_of "$T_DIR/down.ref")" \
        "download $size bytes (chunked from the backend) byte-exact"
    rm -f "$T_DIR/up" "$T_DIR/up.out" "$T_DIR/down.out" "$T_DIR/down.ref"
done

# ---- upstream keep-alive: sequential requests share one upstream connection ------------------
# /__conns counts the backend's accepted connections; asking it directly adds one each time.
c0=$("${CURL[@]}" "http://127.0.0.1:$BACKEND/__conns")
for i in 1 2 3 4 5 6 7 8 9 10; do
    "${CURL[@]}" -o /dev/null "$(mesh_url "/reuse/$i")"
done
c1=$("${CURL[@]}" "http://127.0.0.1:$BACKEND/__conns")
expect_le $((c1 - c0 - 1)) 1 \
    "upstream keep-alive: 10 sequential requests opened $((c1 - c0 - 1)) upstream connection(s)"

# ---- round robin and virtual hosts -----------------------------------------------------------
start_backend b
cat >"$T_DIR/routing.json" <<EOF
{"version":"routing-1",
 "admin":{"address":"127.0.0.1","port":0},
 "listeners":[{"name":"main","address":"127.0.0.1","port":0,"route_config":"rc"}],
 "route_configs":[{"name":"rc","virtual_hosts":[
   {"name":"a","domains":["a.example"],
    "routes":[{"match":{"prefix":"/"},"route":{"cluster":"only_a"}}]},
   {"name":"b","domains":["*.b.example"],
    "routes":[{"match":{"prefix":"/"},"route":{"cluster":"only_b"}}]},
   {"name":"rest","domains":["*"],"routes":[
     {"match":{"path":"/exact"},"direct_response":{"status":200,"body":"exact\n"}},
     {"match":{"prefix":"/rr"},"route":{"cluster":"both"}},
     {"match":{"prefix":"/"},"direct_response":{"status":404,"body":"no route\n"}}]}]}],
 "clusters":[
   {"name":"only_a","protocol":"http1",
    "endpoints":[{"address":"127.0.0.1","port":${BACKEND_PORT[a]}}]},
   {"name":"only_b","protocol":"http1",
    "endpoints":[{"address":"127.0.0.1","port":${BACKEND_PORT[b]}}]},
   {"name":"both","protocol":"http1","lb_policy":"round_robin","endpoints":[
     {"address":"127.0.0.1","port":${BACKEND_PORT[a]}},
     {"address":"127.0.0.1","port":${BACKEND_PORT[b]}}]}]}
EOF
first_pid=$MESHD_PID
first_port=$MESH_PORT
if start_meshd "$T_DIR/routing.json"; then
    expect_eq "$("${CURL[@]}" -H 'Host: a.example' "$(mesh_url /x)")" "hello from a" \
        "virtual host a.example -> a"
    expect_eq "$("${CURL[@]}" -H 'Host: A.Example:8080' "$(mesh_url /x)")" "hello from a" \
        "virtual host match is case-insensitive, with a port"
    expect_eq "$("${CURL[@]}" -H 'Host: x.b.example' "$(mesh_url /x)")" "hello from b" \
        "virtual host *.b.example -> b"
    expect_eq "$("${CURL[@]}" -H 'Host: other' "$(mesh_url /exact)")" "exact" "exact path route"
    expect_eq "$(http_code "$(mesh_url /exact/more)" -H 'Host: other')" 404 \
        "exact path does not match a longer path"
    seq_ab=
    for i in 1 2 3 4 5 6; do
        seq_ab+=$("${CURL[@]}" "$(mesh_url "/rr/$i")" | awk '{print $3}')
    done
    expect_match "$seq_ab" '^(ababab|bababa)$' "round robin over two endpoints alternates ($seq_ab)"
    stop_meshd "$MESHD_PID"
fi
MESHD_PID=$first_pid
MESH_PORT=$first_port

# ---- bounded memory: big bodies stream through --------------------------------------------------
# 256 MiB each way (1 GiB with MESH_TEST_BIG=1) through a fresh meshd whose peak RSS may not grow
# by more than 64 MiB (ASan's quarantine is made small for it so that it measures meshd).
big=$((256 * 1024 * 1024))
[ "${MESH_TEST_BIG:-0}" = 1 ] && big=$((1024 * 1024 * 1024))
first_pid=$MESHD_PID
first_port=$MESH_PORT
# start_meshd_measured SNAPSHOT WHAT: a fresh meshd whose RSS measures meshd, not ASan
start_meshd_measured()
{
    ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=4" start_meshd "$1" ||
        bail_out "meshd ($2) starts"
}
start_meshd_measured "$T_DIR/snap.json" memory
hwm()
{
    awk '/^VmHWM:/ {print int($2 / 1024)}' "/proc/$MESHD_PID/status"
}
hwm0=$(hwm)
n=$("${CURL[@]}" --max-time 120 "$(mesh_url "/bytes/$big")" | wc -c)
expect_eq "$n" "$big" "download $big bytes (h1)"
n=$(head -c "$big" /dev/zero | "${CURL[@]}" --max-time 120 -T - -X POST "$(mesh_url /echo)" | wc -c)
expect_eq "$n" "$big" "upload+echo $big bytes (h1, chunked, streaming both ways)"
n=$(head -c "$big" /dev/zero | "${CURL[@]}" --max-time 120 --http2-prior-knowledge -T - -X POST \
    "$(mesh_url /echo)" | wc -c)
expect_eq "$n" "$big" "upload+echo $big bytes (h2 -> h1)"
hwm1=$(hwm)
expect_le $((hwm1 - hwm0)) 64 "bounded memory: peak RSS grew ${hwm0} -> ${hwm1} MiB (<= 64 MiB)"
stop_meshd "$MESHD_PID"
# A slow reader: the fast ones above drain meshd as fast as the backend fills it, so only
# backpressure toward the backend keeps a download bounded when the client lags. 32 MiB
# read at 16 MB/s, HTTP/1.1 and HTTP/2, by a fresh meshd: without backpressure its peak grew
# 23-29 MiB, with it about 4.
start_meshd_measured "$T_DIR/snap.json" "slow reader"
slow=$((32 * 1024 * 1024))
hwm0=$(hwm)
n=$("${CURL[@]}" --max-time 60 --limit-rate 16M "$(mesh_url "/bytes/$slow")" | wc -c)
expect_eq "$n" "$slow" "slow reader: download $slow bytes (h1)"
n=$("${CURL[@]}" --max-time 60 --limit-rate 16M --http2-prior-knowledge "$(mesh_url "/bytes/$slow")" | wc -c)
expect_eq "$n" "$slow" "slow reader: download $slow bytes (h2 -> h1)"
hwm1=$(hwm)
expect_le $((hwm1 - hwm0)) 12 "slow reader: peak RSS grew ${hwm0} -> ${hwm1} MiB (<= 12 MiB: backpressure)"
stop_meshd "$MESHD_PID"
# A backend that never reads (--stall): a 64 MiB upload may only fill the sockets and
# meshd's bounded buffers, then the client is held back (curl gives up after 3 s).
start_backend stalled --stall
write_snapshot "$T_DIR/stall.json" --endpoint "127.0.0.1:${BACKEND_PORT[stalled]}"
start_meshd_measured "$T_DIR/stall.json" "stalled backend"
hwm0=$(hwm)
head -c $((64 * 1024 * 1024)) /dev/zero |
    curl -s -o /dev/null --max-time 3 -T - -X POST "$(mesh_url /echo)" 2>/dev/null
hwm1=$(hwm)
expect_le $((hwm1 - hwm0)) 12 \
    "a backend that reads nothing: peak RSS grew ${hwm0} -> ${hwm1} MiB (<= 12 MiB: backpressure)"
stop_meshd "$MESHD_PID"
MESHD_PID=$first_pid
MESH_PORT=$first_port

# ---- 1xx: an interim 103 from the backend, then the final answer ------------------------------
# (kept last: if the final answer never comes, only this check's 10 s bound is spent)
out=$(raw "$MESH_PORT" "send:$(req GET /early-hints 'Connection: close')" readall)
expect_eq "$(status_of "$out")" 200 "backend 103 then 200: final 200 arrives"
expect_match "$(body_of "$out")" '^hints from a' "backend 103 then 200: body intact"
expect_match "$out" $'^HTTP/1\\.1 103 [^\r]*\r\n' "backend 103 Early Hints forwarded to the client"

# ---- the backend saw every request (sanity for the counters the other tests use) ------------
expect_match "$(backend_count a)" '^[0-9]+$' "backend /__count answers"
