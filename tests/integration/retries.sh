#!/usr/bin/env bash
# Route retries (docs/snapshot.md "retry"): retry_on conditions counted on the backends,
# retries on another host, connect failures, per-try timeouts under the route timeout,
# the 64 KiB replay limit, gRPC statuses, max_retries, and an HTTP/2 upstream.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${MESH_SRCDIR:-$(dirname "$0")/../..}/tests/integration/lib.sh"

start_backend bad --fail-status 503
start_backend good
start_backend ka
BAD=${BACKEND_PORT[bad]}
GOOD=${BACKEND_PORT[good]}
CLOSED=$(free_port) || bail_out "found a closed port"
H2=
mkdir -p "$T_DIR/docroot"
echo "h2 file" >"$T_DIR/docroot/file"
if start_nghttpd h2 "$T_DIR/docroot" -v; then
    H2=${BACKEND_PORT[h2]}
fi

# One listener per scenario (listener NAME routes everything to cluster NAME with RETRY).
listeners= rcs= sep=
scenario()
{
    local name=$1 retry=$2 extra=${3:-}
    listeners+="$sep{\"name\":\"$name\",\"address\":\"127.0.0.1\",\"port\":0,\"route_config\":\"$name\"}"
    rcs+="$sep{\"name\":\"$name\",\"virtual_hosts\":[{\"name\":\"all\",\"domains\":[\"*\"],"
    rcs+="\"routes\":[{\"match\":{\"prefix\":\"/\"},\"route\":{\"cluster\":\"$name\""
    rcs+=",\"retry\":$retry$extra}}]}]}"
    sep=,
}
ep() { printf '{"address":"127.0.0.1","port":%s}' "$1"; }

scenario s5xx '{"attempts":2,"retry_on":["5xx"],"backoff_base_ms":1}'
scenario other '{"attempts":2,"retry_on":["5xx"],"backoff_base_ms":1}'
scenario codes '{"attempts":2,"retry_on":["retriable-status-codes"],"retriable_status_codes":[418],"backoff_base_ms":1}'
scenario cf '{"attempts":2,"retry_on":["connect-failure"],"backoff_base_ms":1}'
scenario dead '{"attempts":2,"retry_on":["connect-failure"],"backoff_base_ms":1}'
scenario pertry '{"attempts":2,"per_try_timeout_ms":200,"retry_on":["5xx"],"backoff_base_ms":1}' \
    ',"timeout_ms":10000'
scenario budget '{"attempts":5,"per_try_timeout_ms":200,"retry_on":["reset"],"backoff_base_ms":1}' \
    ',"timeout_ms":300'
scenario grpc '{"attempts":2,"retry_on":["unavailable"],"backoff_base_ms":1}'
scenario ka '{}'
scenario capped '{"attempts":2,"retry_on":["5xx"],"backoff_base_ms":1}'
[ -n "$H2" ] && scenario h2 '{"attempts":2,"retry_on":["retriable-status-codes"],"retriable_status_codes":[404],"backoff_base_ms":1}'

clusters="{\"name\":\"s5xx\",\"endpoints\":[$(ep "$BAD")]}"
clusters+=",{\"name\":\"other\",\"endpoints\":[$(ep "$BAD"),$(ep "$GOOD")]}"
clusters+=",{\"name\":\"codes\",\"endpoints\":[$(ep "$GOOD")]}"
clusters+=",{\"name\":\"cf\",\"endpoints\":[$(ep "$CLOSED"),$(ep "$GOOD")]}"
clusters+=",{\"name\":\"dead\",\"endpoints\":[$(ep "$CLOSED")]}"
clusters+=",{\"name\":\"pertry\",\"endpoints\":[$(ep "$GOOD")]}"
clusters+=",{\"name\":\"budget\",\"endpoints\":[$(ep "$GOOD")]}"
clusters+=",{\"name\":\"grpc\",\"endpoints\":[$(ep "$GOOD")]}"
clusters+=",{\"name\":\"ka\",\"endpoints\":[$(ep "${BACKEND_PORT[ka]}")]}"
clusters+=",{\"name\":\"capped\",\"max_retries\":0,\"endpoints\":[$(ep "$BAD")]}"
[ -n "$H2" ] && clusters+=",{\"name\":\"h2\",\"protocol\":\"http2\",\"endpoints\":[$(ep "$H2")]}"

cat >"$T_DIR/retries.json" <<EOF
{"version":"retries-1",
 "admin":{"address":"127.0.0.1","port":0},
 "listeners":[$listeners],
 "route_configs":[$rcs],
 "clusters":[$clusters]}
EOF
start_meshd "$T_DIR/retries.json" || bail_out "meshd starts"

url() { printf 'http://127.0.0.1:%s%s' "${MESHD_PORTS[$1]}" "$2"; }

# stat NAME: a counter from the admin /stats.
stat()
{
    "${CURL[@]}" "$(admin_url /stats)" | sed -n "s/^$1: //p"
}

# grew NAME BEFORE: how much backend NAME's request count grew since BEFORE.
grew()
{
    local now
    now=$(backend_count "$1")
    echo $((now - $2))
}

# ---- 5xx: exactly 1 + attempts tries, the last answer stands ----
b0=$(backend_count bad)
r0=$(stat upstream_rq_retry)
expect_eq "$(http_code "$(url s5xx /x)")" 503 "5xx: the client gets the last try's 503"
expect_eq "$(grew bad "$b0")" 3 "5xx: the backend saw 1 + 2 attempts"
expect_eq "$(($(stat upstream_rq_retry) - r0))" 2 "5xx: upstream_rq_retry counts 2 retries"

# ---- another host: the healthy endpoint answers ----
codes=
for i in $(seq 1 10); do
    codes+="$(http_code "$(url other /x)") "
done
expect_eq "$codes" "200 200 200 200 200 200 200 200 200 200 " \
    "retry on another host: every request gets 200 with a failing endpoint in the cluster"
expect_le 1 "$(stat upstream_rq_retry_success)" "upstream_rq_retry_success counted"

# ---- the body is replayed ----
random_file "$T_DIR/body1k" 1024
sum=$(sha_of "$T_DIR/body1k")
same=0
b0=$(backend_count bad)
for i in 1 2 3 4; do
    "${CURL[@]}" -o "$T_DIR/echo.out" --data-binary @"$T_DIR/body1k" "$(url other /echo)"
    [ "$(sha_of "$T_DIR/echo.out")" = "$sum" ] && same=$((same + 1))
done
expect_eq "$same" 4 "a retried POST reaches the healthy endpoint with its whole body"
expect_le 1 "$(grew bad "$b0")" "the POSTs met the failing endpoint first (so they were retried)"
b0=$(backend_count bad)
expect_eq "$(http_code "$(url s5xx /echo)" --data-binary @"$T_DIR/body1k")" 503 \
    "a 1 KiB body: the last 503 comes back"
expect_eq "$(grew bad "$b0")" 3 "a 1 KiB body is retried (1 + 2 tries)"

# ---- no retry past the 64 KiB replay buffer ----
random_file "$T_DIR/body100k" 102400
b0=$(backend_count bad)
expect_eq "$(http_code "$(url s5xx /echo)" --data-binary @"$T_DIR/body100k")" 503 \
    "a 100 KiB body: the 503 comes back"
expect_eq "$(grew bad "$b0")" 1 "a 100 KiB body is not retried (no replay past 64 KiB)"

# ---- retriable_status_codes: only the listed codes ----
g0=$(backend_count good)
expect_eq "$(http_code "$(url codes /status/418)")" 418 "listed status 418: the last answer stands"
expect_eq "$(grew good "$g0")" 3 "listed status 418 is retried twice"
g0=$(backend_count good)
expect_eq "$(http_code "$(url codes /status/500)")" 500 "unlisted status 500 passes through"
expect_eq "$(grew good "$g0")" 1 "unlisted status 500 is not retried"

# ---- a reused keep-alive connection that dies is replayed once, whatever the policy ----
u0=$(stat upstream_rq_retry_reused)
expect_eq "$(http_code "$(url ka /x)")" 200 "keep-alive: a first request leaves an idle connection"
expect_eq "$(http_code "$(url ka /reset)")" 502 "keep-alive: /reset on a fresh connection too is a 502"
expect_eq "$(backend_count ka)" 3 "keep-alive: /reset was replayed once on a new connection"
expect_eq "$(($(stat upstream_rq_retry_reused) - u0))" 1 "upstream_rq_retry_reused counted"

# ---- connect-failure ----
codes=
for i in $(seq 1 6); do
    codes+="$(http_code "$(url cf /x)") "
done
expect_eq "$codes" "200 200 200 200 200 200 " \
    "connect-failure: a closed port in the cluster, every request still gets 200"
r0=$(stat upstream_rq_retry)
out=$("${CURL[@]}" -i "$(url dead /x)" 2>&1)
expect_eq "$(status_of "$out")" 503 "connect-failure, no endpoint up: 503"
expect_match "$(header_of "$out" x-meshd-response-flags)" UF "connect-failure: the UF flag"
expect_eq "$(($(stat upstream_rq_retry) - r0))" 2 "connect-failure: 2 retries before giving up"

# ---- per-try timeout ----
g0=$(backend_count good)
t0=$(stat upstream_rq_per_try_timeout)
out=$("${CURL[@]}" -i "$(url pertry /delay/3000)" 2>&1)
expect_eq "$(status_of "$out")" 504 "per-try timeout on every try: 504"
expect_match "$(header_of "$out" x-meshd-response-flags)" UT "per-try timeout: the UT flag"
expect_eq "$(grew good "$g0")" 3 "per-try timeout: 1 + 2 tries reached the backend"
expect_eq "$(($(stat upstream_rq_per_try_timeout) - t0))" 3 "upstream_rq_per_try_timeout counts 3"
# the route timeout (300 ms) covers every try: 5 attempts of 200 ms cannot all run
g0=$(backend_count good)
expect_eq "$(http_code "$(url budget /delay/3000)")" 504 "route timeout under retries: 504"
n=$(grew good "$g0")
expect_le "$n" 3 "the route timeout stops the retries ($n of 6 tries ran)"

# ---- gRPC status in a trailers-only answer ----
g0=$(backend_count good)
out=$("${CURL[@]}" -i "$(url grpc /grpc/14)" 2>&1)
expect_eq "$(status_of "$out")" 200 "grpc-status 14: the answer is 200"
expect_eq "$(header_of "$out" grpc-status)" 14 "grpc-status 14 reaches the client after the retries"
expect_eq "$(grew good "$g0")" 3 "grpc-status 14 (unavailable) is retried twice"
g0=$(backend_count good)
http_code "$(url grpc /grpc/13)" >/dev/null
expect_eq "$(grew good "$g0")" 1 "grpc-status 13 (internal) is not retried on 'unavailable'"

# ---- max_retries 0: retries refused, the first answer stands ----
b0=$(backend_count bad)
o0=$(stat upstream_rq_retry_overflow)
expect_eq "$(http_code "$(url capped /x)")" 503 "max_retries 0: the 503 comes back"
expect_eq "$(grew bad "$b0")" 1 "max_retries 0: no retry reached the backend"
expect_eq "$(($(stat upstream_rq_retry_overflow) - o0))" 1 "upstream_rq_retry_overflow counted"

# ---- HTTP/2 upstream: a retried response is reset, the next try runs ----
if [ -n "$H2" ]; then
    h2_requests() { grep -c 'recv HEADERS frame' "$T_DIR/nghttpd-h2.log"; }
    n0=$(h2_requests)
    expect_eq "$(http_code "$(url h2 /missing)")" 404 "HTTP/2 upstream: listed 404, the last answer stands"
    expect_eq "$(($(h2_requests) - n0))" 3 "HTTP/2 upstream: 1 + 2 tries"
    expect_eq "$("${CURL[@]}" "$(url h2 /file)")" "h2 file" "HTTP/2 upstream: a 200 goes through"
else
    skip "HTTP/2 upstream retries" "nghttpd not found"
fi

stop_meshd
