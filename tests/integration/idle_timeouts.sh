#!/usr/bin/env bash
# Idle timeouts are lazy (docs/ARCHITECTURE.md "Lazy idle timers"): a request does not re-arm
# its connections' timers; a timer that fires early re-arms itself for the rest, and one that
# fires on a connection in use does nothing. So a connection used more often than its idle
# timeout stays open however long it lives, and one left idle still closes.
# Upstream: the pool's idle_timeout_ms (2 s). Downstream: timeouts.idle_ms (2 s).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${MESH_SRCDIR:-$(dirname "$0")/../..}/tests/integration/lib.sh"

start_backend a
write_snapshot "$T_DIR/snap.json" --endpoint "127.0.0.1:$BACKEND" --pool-idle-ms 2000 --idle-ms 2000
start_meshd "$T_DIR/snap.json" --concurrency 1 || bail_out "meshd starts"

stat()
{
    "${CURL[@]}" "$(admin_url /stats)" | awk -v k="$1:" '$1 == k {print $2}'
}

# ---- upstream: one pooled connection, used every 150 ms for 5 s ----------------------------
for i in $(seq 1 33); do
    out=$("${CURL[@]}" "$(mesh_url /hello)")
    [ "$out" = "hello from a" ] || not_ok "request $i through the pool" "got: $out"
    sleep 0.15
done
expect_eq "$(stat upstream_cx_total)" 1 \
    "pool: one upstream connection served 33 requests over 5 s (idle timeout 2 s, never idle that long)"
expect_le 32 "$(stat upstream_cx_reused)" "pool: the connection was reused (upstream_cx_reused)"
no_upstream() { [ "$(stat upstream_cx_active)" = 0 ]; }
if wait_for 10 no_upstream; then
    ok "pool: left idle, the upstream connection is closed (within 10 s)"
else
    not_ok "pool: left idle, the upstream connection is closed (within 10 s)" \
        "upstream_cx_active $(stat upstream_cx_active)"
fi
out=$("${CURL[@]}" "$(mesh_url /hello)")
expect_eq "$out" "hello from a" "pool: a new connection serves after the idle one closed"
expect_eq "$(stat upstream_cx_total)" 2 "pool: it is the second upstream connection"

# ---- downstream: one keep-alive connection, a request every 200 ms for 5 s -----------------
if have_cmd h2load; then
    before=$(stat downstream_cx_idle_timeout)
    h2load --h1 -n 25 -c 1 --rps 5 "$(mesh_url /hello)" >"$T_DIR/h2load.out" 2>&1
    expect_match "$(cat "$T_DIR/h2load.out")" 'status codes: 25 2xx' \
        "downstream: 25 requests on one connection over 5 s (idle timeout 2 s), all 200"
    expect_match "$(cat "$T_DIR/h2load.out")" 'requests: 25 total, 25 started, 25 done, 25 succeeded' \
        "downstream: the connection was never cut by its idle timer"
    expect_eq "$(stat downstream_cx_idle_timeout)" "$before" "downstream: no idle timeout counted"
    # HTTP/2: the connection is idle between requests, busy during them
    h2load -n 25 -c 1 --rps 5 "$(mesh_url /hello)" >"$T_DIR/h2load2.out" 2>&1
    expect_match "$(cat "$T_DIR/h2load2.out")" 'requests: 25 total, 25 started, 25 done, 25 succeeded' \
        "downstream HTTP/2: 25 requests on one connection over 5 s, none cut"
else
    skip "downstream: a keep-alive connection used every 200 ms" "h2load not installed"
fi
# left idle, a connection is closed: a raw client that sends nothing sees EOF
"$RAW_BIN" --timeout 10 127.0.0.1 "$MESH_PORT" readall >/dev/null 2>"$T_DIR/idle.outcome"
expect_eq "$(cat "$T_DIR/idle.outcome")" "mesh-test-raw: eof" \
    "downstream: a silent connection is closed (idle_ms 2000, bound 10 s)"
stop_meshd "$MESHD_PID"
