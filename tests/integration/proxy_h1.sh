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

# ---- keep-alive: three URLs, one downstream connection --------------------------------
out=$("${CURL[@]}" -w '%{num_connects} ' -o /dev/null -o /dev/null -o /dev/null \
    "$(mesh_url /k1)" "$(mesh_url /k2)" "$(mesh_url /k3)" 2>&1)
expect_eq "$out" "1 0 0 " "keep-alive: curl reuses one connection for 3 requests"

# ---- pipelining: 3 requests in one write, answered in order ---------------------------
# The middle one is slow, so a proxy answering out of order would put it last.
out=$(raw "$MESH_PORT" "send:GET /status/201 HTTP/1.1\r\nHost: t\r\n\r\nGET /delay/300 HTTP/1.1\r\nHost: t\r\n\r\nGET /status/202 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" readall)
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

out=$(raw "$MESH_PORT" "send:POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: t\r\n\r\n" readall)
expect_eq "$(status_of "$out")" 200 "chunked upload with extension and trailer: 200"
expect_match "$out" "hello world!" "chunked upload with extension and trailer: body intact"

# Trailers, h1 -> h1: a request trailer reaches the backend, a response trailer the client.
out=$(raw "$MESH_PORT" "send:POST /headers HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nX-Req-Trailer: tv\r\n\r\n" readall)
expect_eq "$(status_of "$out")" 200 "chunked request with a trailer: 200"
expect_match "$(body_of "$out")" $'# trailers\nX-Req-Trailer: tv' \
    "request trailer forwarded h1 -> h1 (as a trailer, name case kept)"
out=$(raw "$MESH_PORT" "send:GET /trailers HTTP/1.1\r\nHost: t\r\nTE: trailers\r\nConnection: close\r\n\r\n" readall)
expect_match "$(body_of "$out")" 'trailers from a' "chunked response with a trailer: body"
expect_match "$out" $'\r\n0\r\n([^\r]*\r\n)*x-backend-trailer: a\r\n' \
    "response trailer forwarded h1 -> h1"

# ---- chunked response -----------------------------------------------------------------
n=$("${CURL[@]}" "$(mesh_url /bytes/300000)" | wc -c)
expect_eq "$n" 300000 "chunked response (/bytes/300000): all bytes arrive"
out=$(raw "$MESH_PORT" "send:GET /bytes/10 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" readall)
expect_match "$(body_of "$out")" "xxxxxxxxxx" "chunked response: raw framing carries the body"
expect_match "$(header_of "$out" transfer-encoding)$(header_of "$out" content-length)" \
    "^(chunked|10)$" "chunked response: framed by chunked or content-length"

# ---- Expect: 100-continue -------------------------------------------------------------
out=$(raw "$MESH_PORT" "send:POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n" "expect:100 Continue\r\n\r\n" "send:hello-there" "expect:hello-there")
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
out=$(raw "$MESH_PORT" "send:HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\nHEAD /bytes/1000 HTTP/1.1\r\nHost: t\r\n\r\nGET /status/201 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" readall)
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
expect_match "$(printf '%s\n' "$out" | grep -i '^x-request-id:')" '^[xX]-[rR]equest-[iI][dD]: [^ ]+' \
    "x-request-id added when absent"
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

# ---- bounded memory: big bodies stream through --------------------------------------------------
# 256 MiB each way (1 GiB with MESH_TEST_BIG=1) through a fresh meshd whose peak RSS may not grow
# by more than 64 MiB (ASan's quarantine is made small for it so that it measures meshd).
big=$((256 * 1024 * 1024))
[ "${MESH_TEST_BIG:-0}" = 1 ] && big=$((1024 * 1024 * 1024))
first_pid=$MESHD_PID
saved_asan=$ASAN_OPTIONS
export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=4"
start_meshd "$T_DIR/snap.json" || bail_out "meshd (memory) starts"
export ASAN_OPTIONS=$saved_asan
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
MESHD_PID=$first_pid

# ---- the backend saw every request (sanity for the counters the other tests use) ------------
expect_match "$(backend_count a)" '^[0-9]+$' "backend /__count answers"
