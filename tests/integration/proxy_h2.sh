#!/usr/bin/env bash
# HTTP/2 through meshd: h2c prior knowledge downstream, HTTP/2 upstream (nghttpd),
# h1 <-> h2 in both directions, trailers, many concurrent streams (h2load).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${MESH_SRCDIR:-$(dirname "$0")/../..}/tests/integration/lib.sh"

start_backend a
mkdir -p "$T_DIR/docroot"
printf 'hello from nghttpd\n' >"$T_DIR/docroot/index.html"
random_file "$T_DIR/docroot/big.bin" 1048576
have_h2d=0
if start_nghttpd h2 "$T_DIR/docroot" --trailer 'x-trailer-a: va'; then
    have_h2d=1
else
    diag "nghttpd not installed (Debian: nghttp2-server): HTTP/2 upstream checks are skipped"
fi
H2_PORT=${BACKEND_PORT[h2]:-1}

# Two listeners: "h1up" routes to the HTTP/1.1 backend, "h2up" to nghttpd over HTTP/2.
cat >"$T_DIR/snap.json" <<EOF
{"version":"h2-1",
 "admin":{"address":"127.0.0.1","port":0},
 "listeners":[
   {"name":"h1up","address":"127.0.0.1","port":0,"route_config":"to_h1"},
   {"name":"h2up","address":"127.0.0.1","port":0,"route_config":"to_h2"}],
 "route_configs":[
   {"name":"to_h1","virtual_hosts":[{"name":"all","domains":["*"],
     "routes":[{"match":{"prefix":"/"},"route":{"cluster":"h1be"}}]}]},
   {"name":"to_h2","virtual_hosts":[{"name":"all","domains":["*"],
     "routes":[{"match":{"prefix":"/"},"route":{"cluster":"h2be"}}]}]}],
 "clusters":[
   {"name":"h1be","protocol":"http1","endpoints":[{"address":"127.0.0.1","port":$BACKEND}]},
   {"name":"h2be","protocol":"http2","endpoints":[{"address":"127.0.0.1","port":$H2_PORT}]}]}
EOF
start_meshd "$T_DIR/snap.json" || bail_out "meshd starts"
P1=${MESHD_PORTS[h1up]:-}
P2=${MESHD_PORTS[h2up]:-}
[ -n "$P1" ] && [ -n "$P2" ] || bail_out "ready line names both listeners (h1up, h2up)" \
    "ports: ${!MESHD_PORTS[*]}"

# ---- h2c prior knowledge downstream, HTTP/1.1 upstream ---------------------------------------
out=$("${CURL[@]}" --http2-prior-knowledge -w '%{http_version} %{http_code}' \
    "http://127.0.0.1:$P1/hello" 2>&1)
expect_eq "$out" $'hello from a\n2 200' "h2c prior knowledge (curl) -> h1 backend: HTTP/2 200"

if have_cmd nghttp; then
    out=$(timeout 20 nghttp -v "http://127.0.0.1:$P1/hello" 2>&1)
    expect_match "$out" ':status: 200' "nghttp -> h1 backend: :status 200"
    expect_match "$out" 'hello from a' "nghttp -> h1 backend: body"
    expect_match "$out" 'x-backend: a' "nghttp -> h1 backend: backend header, lowercase in h2"
else
    skip "nghttp -> h1 backend" "nghttp not installed"
fi

# Same port speaks HTTP/1.1 too (preface sniffing).
expect_eq "$("${CURL[@]}" "http://127.0.0.1:$P1/hello")" "hello from a" \
    "HTTP/1.1 on the same listener as h2c"

for size in 1048576 16777216; do
    random_file "$T_DIR/up" "$size"
    "${CURL[@]}" --max-time 60 --http2-prior-knowledge --data-binary @"$T_DIR/up" \
        -o "$T_DIR/up.out" "http://127.0.0.1:$P1/echo"
    expect_eq "$(sha_of "$T_DIR/up.out")" "$(sha_of "$T_DIR/up")" \
        "h2c upload $size bytes -> h1 backend /echo byte-exact"
done
rm -f "$T_DIR/up" "$T_DIR/up.out"

# The headers meshd adds reach the backend from an HTTP/2 client too (/headers echoes them).
out=$("${CURL[@]}" --http2-prior-knowledge "http://127.0.0.1:$P1/headers")
expect_match "$out" $'(^|\n)x-request-id: [0-9a-f-]{36}(\n|$)' "h2 client: x-request-id added"
expect_match "$out" $'(^|\n)x-forwarded-for: 127\\.0\\.0\\.1(\n|$)' "h2 client: x-forwarded-for added"
expect_match "$out" $'(^|\n)x-forwarded-proto: http(\n|$)' "h2 client: x-forwarded-proto added"
out=$("${CURL[@]}" --http2-prior-knowledge -H 'x-request-id: mine-1' "http://127.0.0.1:$P1/headers")
expect_match "$out" $'(^|\n)x-request-id: mine-1(\n|$)' "h2 client: its own x-request-id kept"

# Response trailers from an HTTP/1.1 backend (chunked) reach an h2 client as trailers.
out=$("$H2RAW_BIN" --timeout 10 127.0.0.1 "$P1" --path /trailers 2>&1)
expect_match "$out" 'status=200' "h2 client <- h1 upstream /trailers: 200"
expect_match "$out" 'trailer x-backend-trailer: a' "trailers h1 -> h2: x-backend-trailer arrives"
n=$("${CURL[@]}" --http2-prior-knowledge "http://127.0.0.1:$P1/bytes/3000000" | wc -c)
expect_eq "$n" 3000000 "h2c download 3 MB from a chunked h1 response"

out=$("${CURL[@]}" --http2-prior-knowledge -H 'X-Custom: one' "http://127.0.0.1:$P1/headers")
expect_match "$out" $'(^|\n)[Xx]-[Cc]ustom: one' "h2 -> h1: request header forwarded"
expect_match "$out" $'(^|\n)[Hh]ost: 127\\.0\\.0\\.1:'"$P1" "h2 -> h1: :authority becomes Host"

st=$(http_code "http://127.0.0.1:$P1/status/404" --http2-prior-knowledge)
expect_eq "$st" 404 "h2 -> h1: upstream status passes (404)"

# ---- HTTP/2 upstream ------------------------------------------------------------------------
if [ "$have_h2d" = 1 ]; then
    out=$("${CURL[@]}" -w '%{http_version} %{http_code}' "http://127.0.0.1:$P2/index.html" 2>&1)
    expect_eq "$out" $'hello from nghttpd\n1.1 200' "h1 client -> h2 upstream (nghttpd): 200"
    out=$("${CURL[@]}" --http2-prior-knowledge -w '%{http_version} %{http_code}' \
        "http://127.0.0.1:$P2/index.html" 2>&1)
    expect_eq "$out" $'hello from nghttpd\n2 200' "h2 client -> h2 upstream (nghttpd): 200"
    # A request body to an HTTP/2 upstream: 1 MiB, far past HTTP/2's 64 KiB initial
    # window, from both kinds of client (nghttpd reads it all, then serves the file).
    out=$("${CURL[@]}" --http2-prior-knowledge --data-binary @"$T_DIR/docroot/big.bin" \
        -w '%{http_code}' "http://127.0.0.1:$P2/index.html" 2>&1)
    expect_eq "$out" $'hello from nghttpd\n200' "h2 client, 1 MiB request body -> h2 upstream: 200"
    out=$("${CURL[@]}" --data-binary @"$T_DIR/docroot/big.bin" -w '%{http_code}' \
        "http://127.0.0.1:$P2/index.html" 2>&1)
    expect_eq "$out" $'hello from nghttpd\n200' "h1 client, 1 MiB request body -> h2 upstream: 200"
    "${CURL[@]}" -o "$T_DIR/big.h1" "http://127.0.0.1:$P2/big.bin"
    expect_eq "$(sha_of "$T_DIR/big.h1")" "$(sha_of "$T_DIR/docroot/big.bin")" \
        "h1 client <- h2 upstream: 1 MiB byte-exact"
    "${CURL[@]}" --http2-prior-knowledge -o "$T_DIR/big.h2" "http://127.0.0.1:$P2/big.bin"
    expect_eq "$(sha_of "$T_DIR/big.h2")" "$(sha_of "$T_DIR/docroot/big.bin")" \
        "h2 client <- h2 upstream: 1 MiB byte-exact"
    expect_eq "$(http_code "http://127.0.0.1:$P2/missing")" 404 "h2 upstream 404 passes to h1"

    # Trailers: nghttpd adds "x-trailer-a: va" after every response body.
    if have_cmd nghttp; then
        out=$(timeout 20 nghttp -v "http://127.0.0.1:$P2/index.html" 2>&1)
        expect_match "$out" ':status: 200' "nghttp -> h2 upstream: :status 200"
        # In nghttp -v the trailer is a HEADERS frame received after the DATA frames.
        after_data=$(printf '%s\n' "$out" | awk '/recv DATA frame/ {d=1} d' | tr -d '\r')
        expect_match "$after_data" 'x-trailer-a: va' "trailers h2 -> h2: x-trailer-a after the body"
    else
        skip "trailers h2 -> h2" "nghttp not installed"
    fi
    out=$(raw "$P2" "send:$(req GET /index.html 'TE: trailers' 'Connection: close')" readall)
    expect_eq "$(status_of "$out")" 200 "h1 client (TE: trailers) -> h2 upstream: 200"
    expect_match "$out" $'\r\n0\r\n([^\r]*\r\n)*x-trailer-a: va\r\n' \
        "trailers h2 -> h1: in the chunked trailer section"
else
    skip "h2 upstream checks" "nghttpd not installed"
fi

# ---- many concurrent streams ----------------------------------------------------------------
upstream_cx() { "${CURL[@]}" "$(admin_url /stats)" | awk -F'[: ]+' '$1 == "upstream_cx_total" {print $2}'; }
if have_cmd h2load; then
    out=$(timeout 60 h2load -n 2000 -c 4 -m 10 "http://127.0.0.1:$P1/hello" 2>&1)
    expect_match "$out" 'requests: 2000 total, 2000 started, 2000 done, 2000 succeeded' \
        "h2load -n2000 -c4 -m10 -> h1 backend: all succeeded"
    expect_match "$out" 'status codes: 2000 2xx' "h2load -> h1 backend: 2000 2xx"
    if [ "$have_h2d" = 1 ]; then
        cx0=$(upstream_cx)
        out=$(timeout 60 h2load -n 2000 -c 4 -m 10 "http://127.0.0.1:$P2/index.html" 2>&1)
        expect_match "$out" 'status codes: 2000 2xx' "h2load -> h2 upstream: 2000 2xx"
        # 40 streams at once from 4 connections share the pooled upstream connection (one
        # more at most, if none was open): an HTTP/2 pool multiplexes
        expect_le $(($(upstream_cx) - cx0)) 1 \
            "h2 upstream multiplexed: 2000 requests, 40 at once, opened $(($(upstream_cx) - cx0)) connection(s)"
    fi
    out=$(timeout 60 h2load --h1 -n 1000 -c 4 "http://127.0.0.1:$P1/hello" 2>&1)
    expect_match "$out" 'status codes: 1000 2xx' "h2load --h1 -n1000 -c4: 1000 2xx"
else
    skip "h2load concurrency" "h2load not installed"
fi

# An interim 103 from the HTTP/1.1 backend, then the final 200, to an h2 client.
out=$("$H2RAW_BIN" --timeout 5 127.0.0.1 "$P1" --path /early-hints 2>&1)
expect_match "$out" 'status=200' "h2 client, backend 103 then 200: final 200 arrives"
expect_match "$out" $'status=103\n(.*\n)*status=200' "h2 client: 103 forwarded before the 200"

# After all that the h1 listener still answers.
expect_eq "$("${CURL[@]}" --http2-prior-knowledge "http://127.0.0.1:$P1/hello")" "hello from a" \
    "still serving after the load"
