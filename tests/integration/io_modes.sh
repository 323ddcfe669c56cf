#!/usr/bin/env bash
# Socket I/O modes (--io, docs/performance.md "Batched I/O"): io_uring and one system call
# per operation both proxy HTTP/1.1, HTTP/2 and big bodies; /stats says which one runs and
# that io_uring batches; a bad --io is refused. Yield-polling (--poll-spins) polls after busy
# turns only, never while idle, and not at all with 0.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${MESH_SRCDIR:-$(dirname "$0")/../..}/tests/integration/lib.sh"

start_backend a
write_snapshot "$T_DIR/snap.json" --endpoint "127.0.0.1:$BACKEND"

out=$("$MESH_BIN" --role=sidecar --snapshot "$T_DIR/snap.json" --io epoll 2>&1)
expect_eq "$?" 2 "--io epoll: refused with exit status 2"
expect_match "$out" 'expected auto, uring or syscalls, got "epoll"' "--io epoll: says what it takes"

stat()
{
    "${CURL[@]}" "$(admin_url /stats)" | awk -v k="$1:" '$1 == k {print $2}'
}

# The same traffic through one meshd of a mode: small requests both protocols, concurrent
# ones, and 32 MiB each way (the socket fills: the would-block path of the mode).
traffic()
{
    local mode=$1 out n big=$((32 * 1024 * 1024))
    out=$("${CURL[@]}" -i "$(mesh_url /hello)" 2>&1)
    expect_eq "$(status_of "$out")" 200 "--io $mode: GET over HTTP/1.1"
    expect_eq "$(body_of "$out")" "hello from a" "--io $mode: the backend's body"
    out=$("${CURL[@]}" --http2-prior-knowledge "$(mesh_url /hello)" 2>&1)
    expect_eq "$out" "hello from a" "--io $mode: GET over HTTP/2"
    n=$("${CURL[@]}" --max-time 60 "$(mesh_url "/bytes/$big")" | wc -c)
    expect_eq "$n" "$big" "--io $mode: download $big bytes"
    n=$(head -c "$big" /dev/zero | "${CURL[@]}" --max-time 60 -T - -X POST "$(mesh_url /echo)" | wc -c)
    expect_eq "$n" "$big" "--io $mode: upload and echo $big bytes"
    if have_cmd h2load; then
        h2load --h1 -n 2000 -c 20 "$(mesh_url /hello)" >"$T_DIR/h2load-$mode.out" 2>&1
        expect_match "$(cat "$T_DIR/h2load-$mode.out")" 'status codes: 2000 2xx' \
            "--io $mode: 2000 requests on 20 connections, all 200"
    else
        skip "--io $mode: concurrent requests" "h2load not installed"
    fi
}

start_meshd "$T_DIR/snap.json" --io syscalls || bail_out "meshd --io syscalls starts"
traffic syscalls
expect_eq "$(stat io_uring_workers)" 0 "--io syscalls: /stats io_uring_workers 0"
rounds=$(stat io_rounds)
ops=$(stat io_ops)
expect_eq "$rounds" "$ops" "--io syscalls: one kernel entry per operation ($ops)"
expect_le 8000 "$ops" "--io syscalls: the operations are counted ($ops >= 8000)"
stop_meshd "$MESHD_PID"

# The default (auto) takes io_uring where the kernel allows it; --io uring then runs with it,
# and where it does not (an old kernel, a seccomp profile) --io uring refuses to start.
start_meshd "$T_DIR/snap.json" || bail_out "meshd (default --io) starts"
have_uring=$(stat io_uring_workers)
expect_match "$have_uring" '^[01]$' "default --io auto: io_uring_workers is 0 or 1 ($have_uring)"
stop_meshd "$MESHD_PID"
if [ "$have_uring" = 1 ]; then
    start_meshd "$T_DIR/snap.json" --io uring || bail_out "meshd --io uring starts"
    traffic uring
    expect_eq "$(stat io_uring_workers)" 1 "--io uring: /stats io_uring_workers 1"
    rounds=$(stat io_rounds)
    ops=$(stat io_ops)
    expect_le 8000 "$ops" "--io uring: the operations are counted ($ops >= 8000)"
    # 20 connections in flight: turns find several ready, and their I/O shares an entry
    expect_le $((rounds + 1)) "$ops" "--io uring: fewer kernel entries ($rounds) than operations ($ops)"
    stop_meshd "$MESHD_PID"
else
    out=$(timeout 10 "$MESH_BIN" --role=sidecar --snapshot "$T_DIR/snap.json" --io uring 2>&1)
    expect_ne "$?" 0 "--io uring without io_uring: meshd does not start"
    expect_match "$out" 'io_uring is not usable here' "--io uring without io_uring: says why"
fi

# ---- a stop while the upstream goes away ---------------------------------------------------
# SIGTERM to meshd and its backend at the same moment (what deleting a pod does): the pooled
# upstream connections turn readable (EOF) while the worker winds down, and their reads go
# through the batch like any other. meshd still exits, cleanly, within its drain.
for i in $(seq 1 10); do
    start_backend "gone$i"
    write_snapshot "$T_DIR/gone.json" --endpoint "127.0.0.1:$BACKEND"
    start_meshd "$T_DIR/gone.json" || bail_out "meshd (stop with its backend) starts"
    if have_cmd h2load; then
        h2load --h1 -n 400 -c 40 "$(mesh_url /hello)" >/dev/null 2>&1 # 40 pooled connections
    else
        for _ in 1 2 3 4; do "${CURL[@]}" -o /dev/null "$(mesh_url /hello)"; done
    fi
    kill -s TERM "${BACKEND_PID[gone$i]}" "$MESHD_PID"
    if wait_exit "$MESHD_PID" 10; then
        check_exit "$MESHD_PID"
    else
        not_ok "stop $i with the backend: meshd exits within 10 s of SIGTERM"
        kill -s KILL "$MESHD_PID" 2>/dev/null
        wait_exit "$MESHD_PID" 5
    fi
    wait_exit "${BACKEND_PID[gone$i]}" 10 || kill -s KILL "${BACKEND_PID[gone$i]}" 2>/dev/null
done

# ---- yield-polling (--poll-spins, docs/ARCHITECTURE.md "Worker loop") ----------------------
for bad in 1025 -1 lots; do
    out=$("$MESH_BIN" --role=sidecar --snapshot "$T_DIR/snap.json" --poll-spins "$bad" 2>&1)
    expect_eq "$?" 2 "--poll-spins $bad: refused with exit status 2"
    expect_match "$out" "--poll-spins: expected 0..1024, got \"$bad\"" "--poll-spins $bad: says what it takes"
done

load()
{
    if have_cmd h2load; then
        h2load --h1 -n 2000 -c 20 "$(mesh_url /hello)" >"$T_DIR/h2load-spin.out" 2>&1
        expect_match "$(cat "$T_DIR/h2load-spin.out")" 'status codes: 2000 2xx' "$1: 2000 requests, all 200"
    else
        for _ in $(seq 1 200); do "${CURL[@]}" -o /dev/null "$(mesh_url /hello)"; done
    fi
}

# --poll-spins 0: a worker sleeps as soon as a turn is done
start_meshd "$T_DIR/snap.json" --poll-spins 0 || bail_out "meshd --poll-spins 0 starts"
load "--poll-spins 0"
expect_eq "$(stat io_spin_polls)" 0 "--poll-spins 0: no spin polls"
stop_meshd "$MESHD_PID"

# The default spins after busy turns only: under load it polls, idle it does not. Serving
# the /stats request itself is a few busy turns, each followed by at most 16 polls; a
# worker that kept spinning while idle would make hundreds of thousands in that second.
start_meshd "$T_DIR/snap.json" || bail_out "meshd (default --poll-spins) starts"
load "default --poll-spins"
polls=$(stat io_spin_polls)
hits=$(stat io_spin_hits)
expect_le 1 "$polls" "default --poll-spins: busy turns are followed by spin polls ($polls)"
# 20 connections in flight against a local backend: some poll finds the next bytes
expect_le 1 "$hits" "default --poll-spins: spin polls find work ($hits of $polls)"
a=$(stat io_spin_polls)
sleep 1
b=$(stat io_spin_polls)
expect_le $((b - a)) 200 "default --poll-spins: an idle worker does not spin ($((b - a)) polls in 1 s)"
out=$("${CURL[@]}" -i "$(mesh_url /hello)" 2>&1)
expect_eq "$(status_of "$out")" 200 "default --poll-spins: still serves after idling"
stop_meshd "$MESHD_PID"
