#!/usr/bin/env bash
# Two worker threads (--concurrency 2): each with its own SO_REUSEPORT listener, /stats
# summed over both, a SIGHUP snapshot reaching both, SIGTERM draining both. Every other
# test runs one worker. Also the command line: --help, --version, bad roles and levels,
# --admin overriding the snapshot's admin address, and a non-loopback admin refused.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${MESH_SRCDIR:-$(dirname "$0")/../..}/tests/integration/lib.sh"

start_backend a
start_backend b
A=${BACKEND_PORT[a]}
B=${BACKEND_PORT[b]}

# ---- the command line ---------------------------------------------------------------------
out=$("$MESH_BIN" --help 2>&1); rc=$?
expect_eq "$rc" 0 "--help exits 0"
expect_match "$out" '--role' "--help lists --role"
out=$("$MESH_BIN" --version 2>&1); rc=$?
expect_eq "$rc" 0 "--version exits 0"
expect_match "$out" '^meshd [0-9]+\.[0-9]+' "--version prints meshd and its version"
out=$("$MESH_BIN" --role=bogus 2>&1); rc=$?
expect_eq "$rc" 2 "an unknown role exits 2"
expect_match "$out" 'unknown role "bogus"' "an unknown role is named"
out=$("$MESH_BIN" --role=registry 2>&1); rc=$?
expect_eq "$rc" 3 "a role not built yet (registry) exits 3"
expect_match "$out" 'registry role is not built yet' "a role not built yet says so"
out=$("$MESH_BIN" --role=sidecar --log-level=loud 2>&1); rc=$?
expect_eq "$rc" 2 "a bad --log-level exits 2"
expect_match "$out" 'log-level.*"loud"' "a bad --log-level names the value"
out=$("$MESH_BIN" --role=sidecar --concurrency 0 2>&1); rc=$?
expect_ne "$rc" 0 "--concurrency 0 is refused"

write_snapshot "$T_DIR/w.json" --endpoint "127.0.0.1:$A" --version w-a --drain-ms 5000
ADM=$(free_port) || bail_out "found a free port"
start_meshd "$T_DIR/w.json" --admin "127.0.0.1:$ADM" || bail_out "meshd (--admin) starts"
expect_eq "$MESH_ADMIN_PORT" "$ADM" "--admin overrides the snapshot's admin port"
expect_eq "$(http_code "$(admin_url /ready)")" 200 "--admin: /ready answers there"
kill -TERM "$MESHD_PID"
wait_exit "$MESHD_PID" 10 || not_ok "meshd (--admin) exits on SIGTERM"

out=$(timeout 10 "$MESH_BIN" --role=sidecar --snapshot "$T_DIR/w.json" --concurrency 1 \
    --admin "0.0.0.0:$ADM" 2>&1); rc=$?
expect_ne "$rc" 0 "a non-loopback --admin is refused"
expect_match "$out" 'must be on loopback' "a non-loopback --admin: the reason"

# ---- two workers ----------------------------------------------------------------------------
start_meshd "$T_DIR/w.json" --concurrency 2 || bail_out "meshd (two workers) starts"
W_PID=$MESHD_PID
threads=$(ls /proc/"$W_PID"/task | wc -l)
expect_le 3 "$threads" "two workers: at least 3 threads (main and two workers)"

# New connections are spread by the kernel over the two listeners; each request its own.
before=$(backend_count a)
good=0
for _ in $(seq 40); do
    [ "$("${CURL[@]}" "$(mesh_url /hello)" 2>/dev/null)" = "hello from a" ] && good=$((good + 1))
done
expect_eq "$good" 40 "two workers: 40 requests on 40 connections answered"
expect_eq "$(($(backend_count a) - before))" 40 "two workers: the backend got all 40"
stats=$("${CURL[@]}" "$(admin_url /stats)")
total=$(awk -F'[: ]+' '$1 == "downstream_rq_total" {print $2}' <<<"$stats")
expect_le 40 "${total:-0}" "two workers: /stats sums downstream_rq_total over both (>= 40)"
cx=$(awk -F'[: ]+' '$1 == "downstream_cx_total" {print $2}' <<<"$stats")
expect_le 40 "${cx:-0}" "two workers: /stats sums downstream_cx_total over both (>= 40)"

# SIGHUP: the new snapshot reaches both workers (40 fresh connections all see b).
write_snapshot "$T_DIR/w.json" --endpoint "127.0.0.1:$B" --version w-b --drain-ms 5000
kill -HUP "$W_PID"
wait_for 10 answers "$(mesh_url /hello)" "hello from b" || not_ok "two workers: reload seen"
good=0
for _ in $(seq 40); do
    [ "$("${CURL[@]}" "$(mesh_url /hello)" 2>/dev/null)" = "hello from b" ] && good=$((good + 1))
done
expect_eq "$good" 40 "two workers: after SIGHUP all 40 new connections reach b"
expect_eq "$("${CURL[@]}" "$(admin_url /config_dump)" | jq -r .version 2>/dev/null)" w-b \
    "two workers: /config_dump shows the new version"

# A snapshot whose listener moves is refused (sockets open at start); b keeps serving.
write_snapshot "$T_DIR/w.json.new" --endpoint "127.0.0.1:$A" --version w-moved --listener other
sed 's/"port":0,/"port":'"$(free_port)"',/' "$T_DIR/w.json.new" >"$T_DIR/w.json.tmp" &&
    mv "$T_DIR/w.json.tmp" "$T_DIR/w.json"
size0=$(wc -c <"$MESHD_LOG")
kill -HUP "$W_PID"
if wait_for 10 log_since_matches "$size0" 'listener addresses or ports changed'; then
    ok "two workers: a moved listener is refused, the log says why"
else
    not_ok "two workers: a moved listener is refused, the log says why" \
        "log: $(tail -c +$((size0 + 1)) "$MESHD_LOG" | head -c 600)"
fi
expect_eq "$("${CURL[@]}" "$(mesh_url /hello)")" "hello from b" "two workers: the old snapshot serves on"

# SIGTERM: requests in flight on several connections (so on both workers, most likely)
# finish with 200, then meshd exits 0.
pids=()
before=$(backend_count b)
for i in $(seq 6); do
    "${CURL[@]}" -o "$T_DIR/drain$i.body" -w '%{http_code}' "$(mesh_url /delay/800)" \
        >"$T_DIR/drain$i.code" 2>"$T_DIR/drain$i.err" &
    pids+=($!)
done
wait_for 10 count_above b $((before + 5)) ||
    not_ok "two workers: the 6 requests reached the backend before SIGTERM"
kill -TERM "$W_PID"
for p in "${pids[@]}"; do wait "$p"; done
codes=$(cat "$T_DIR"/drain?.code | tr -d '\n')
expect_eq "$codes" 200200200200200200 "two workers: SIGTERM lets 6 in-flight requests finish"
if wait_exit "$W_PID" 10; then
    expect_eq "$T_LAST_STATUS" 0 "two workers: meshd exits 0 after the drain"
else
    not_ok "two workers: meshd exits within 10 s of SIGTERM"
fi
