# shellcheck shell=bash
# tests/integration/lib.sh: sourced by every integration test.
#
# Gives each test a temporary directory (removed on success, kept and printed on failure),
# starts backends (mesh-test-backend, nghttpd) and meshd on ephemeral ports, writes
# snapshots, and prints TAP-style results ("ok N - what" / "not ok N - what").
# On exit it SIGTERMs every process it started, waits (bounded), and fails the test if
# meshd or a backend exited uncleanly, died from a signal, or wrote a sanitizer report.
#
# Environment (set by `make check`; derived from this file's location otherwise):
#   MESH_BIN       the meshd binary
#   MESH_SRCDIR    the source tree
#   MESH_BUILDDIR  the build tree (tests/tools/* are found there)
#   MESH_TEST_KEEP=1 keeps the temporary directory even on success
#
# Exit status: 0 all checks passed, 1 a check failed, 77 everything was skipped,
# 99 the harness itself broke (e.g. a tool is missing).

if [ -z "${BASH_VERSION:-}" ]; then
    echo "lib.sh: needs bash" >&2
    exit 99
fi
set -u
set -o pipefail
export LC_ALL=C   # byte semantics for regexes, tr, sed on raw HTTP

T_NAME=$(basename "$0" .sh)
MESH_SRCDIR=${MESH_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
MESH_BUILDDIR=${MESH_BUILDDIR:-$PWD}
MESH_BIN=${MESH_BIN:-$MESH_BUILDDIR/meshd}
T_TOOLS=$MESH_BUILDDIR/tests/tools
BACKEND_BIN=$T_TOOLS/mesh-test-backend
RAW_BIN=$T_TOOLS/mesh-test-raw
H2RAW_BIN=$T_TOOLS/mesh-test-h2raw
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/meshd-$T_NAME.XXXXXX") || exit 99
T_N=0          # checks run
T_FAILED=0     # checks failed
T_SKIPPED=0    # checks skipped
T_PIDS=()      # every process we started, in order
declare -A T_KIND=()    # pid -> meshd | backend | other
declare -A T_LOG=()     # pid -> its stderr log
declare -A T_LABEL=()   # pid -> a name for messages
declare -A T_STATUS=()  # pid -> exit status, once reaped
declare -A BACKEND_PORT=() BACKEND_ECHO_PORT=() BACKEND_PID=()
declare -A MESHD_PORTS=()  # listener name (and "admin") -> port of the last meshd started
MESHD_PID=
MESHD_LOG=
MESH_PORT=
MESH_ADMIN_PORT=
T_MESHD_SEQ=0

# Standard curl: silent, errors shown, always bounded.
CURL=(curl -sS --max-time 10)

# ---- TAP-style results ------------------------------------------------------

diag()
{
    local line
    while IFS= read -r line; do
        printf '# %s\n' "$line"
    done <<<"$*"
}

ok()
{
    T_N=$((T_N + 1))
    printf 'ok %d - %s\n' "$T_N" "$1"
}

# not_ok DESC [DETAILS...]: a failed check; details are printed as diagnostics.
not_ok()
{
    T_N=$((T_N + 1))
    T_FAILED=$((T_FAILED + 1))
    printf 'not ok %d - %s\n' "$T_N" "$1"
    shift
    [ $# -gt 0 ] && diag "$*"
    return 0
}

skip()
{
    T_N=$((T_N + 1))
    T_SKIPPED=$((T_SKIPPED + 1))
    printf 'ok %d - %s # SKIP %s\n' "$T_N" "$1" "${2:-}"
}

# check DESC CMD...: ok when CMD succeeds.
check()
{
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else not_ok "$desc" "command failed: $*"; fi
}

# expect_eq ACTUAL EXPECTED DESC
expect_eq()
{
    if [ "$1" == "$2" ]; then
        ok "$3"
    else
        not_ok "$3" "expected: $(printf '%q' "$2")" "got:      $(printf '%q' "$1")"
    fi
}

expect_ne()
{
    if [ "$1" != "$2" ]; then
        ok "$3"
    else
        not_ok "$3" "expected anything but: $(printf '%q' "$2")"
    fi
}

# expect_match ACTUAL ERE DESC: ACTUAL matches the extended regex (anywhere, multi-line).
expect_match()
{
    if [[ $1 =~ $2 ]]; then
        ok "$3"
    else
        not_ok "$3" "expected to match: $2" "got: $(printf '%s' "$1" | head -c 2000)"
    fi
}

expect_no_match()
{
    if [[ $1 =~ $2 ]]; then
        not_ok "$3" "expected NOT to match: $2" "got: $(printf '%s' "$1" | head -c 2000)"
    else
        ok "$3"
    fi
}

# expect_le A B DESC: integer A <= B
expect_le()
{
    if [[ $1 =~ ^-?[0-9]+$ ]] && [ "$1" -le "$2" ]; then
        ok "$3"
    else
        not_ok "$3" "expected <= $2, got: $1"
    fi
}

# bail_out MSG: a failure after which the rest of the script cannot run.
bail_out()
{
    not_ok "$1" "${2:-}"
    printf 'Bail out! %s\n' "$1"
    exit 1
}

have_cmd()
{
    command -v "$1" >/dev/null 2>&1
}

# ---- waiting, bounded -----------------------------------------------------------

# wait_for TIMEOUT_S CMD...: polls CMD every 50 ms until it succeeds; 1 on timeout.
# CMD's arguments are expanded once: poll a function (count_above, answers...) instead of
# `test "$(...)"`.
# CMD returning 125 means "will never succeed" and ends the wait at once.
wait_for()
{
    local limit=$1 i rc
    shift
    for ((i = 0; i < limit * 20; i++)); do
        "$@"
        rc=$?
        [ $rc -eq 0 ] && return 0
        [ $rc -eq 125 ] && return 125
        sleep 0.05
    done
    "$@"
}

# alive PID: the process exists and is not a zombie.
alive()
{
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [ "${st:0:1}" != Z ]
}

# wait_exit PID TIMEOUT_S: waits for PID to end; reaps it and records its status.
# Returns 0 when it ended (status in T_STATUS[PID] and $T_LAST_STATUS), 1 on timeout.
T_LAST_STATUS=
wait_exit()
{
    local pid=$1 limit=$2 i st
    for ((i = 0; i < limit * 20; i++)); do
        alive "$pid" || break
        sleep 0.05
    done
    alive "$pid" && return 1
    if [ -z "${T_STATUS[$pid]:-}" ]; then
        wait "$pid" 2>/dev/null
        st=$?
        T_STATUS[$pid]=$st
    fi
    T_LAST_STATUS=${T_STATUS[$pid]}
    return 0
}

# describe_status STATUS: "exit 0", "signal 11 (SEGV)"...
describe_status()
{
    if [ "$1" -gt 128 ]; then
        printf 'signal %d (%s)' $(($1 - 128)) "$(kill -l $(($1 - 128)) 2>/dev/null)"
    else
        printf 'exit %d' "$1"
    fi
}

# sanitizer_report LOG: prints the report lines, 0 when there is one.
sanitizer_report()
{
    [ -f "$1" ] && grep -E 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$1"
}

# ---- processes ------------------------------------------------------------------

# track PID KIND LABEL LOG
track()
{
    T_PIDS+=("$1")
    T_KIND[$1]=$2
    T_LABEL[$1]=$3
    T_LOG[$1]=$4
}

# start_backend NAME [extra mesh-test-backend args]: HTTP backend on an ephemeral port,
# plus a raw TCP echo listener. Sets BACKEND_PORT[NAME], BACKEND_ECHO_PORT[NAME],
# BACKEND_PID[NAME], and the shortcut $BACKEND (the last one's port).
start_backend()
{
    local name=$1
    shift
    local ready=$T_DIR/backend-$name.ready log=$T_DIR/backend-$name.log
    [ -x "$BACKEND_BIN" ] || bail_out "mesh-test-backend not built: $BACKEND_BIN"
    rm -f "$ready"
    "$BACKEND_BIN" --listen 127.0.0.1:0 --echo-listen 127.0.0.1:0 --ready-file "$ready" \
        --name "$name" "$@" >"$log" 2>&1 &
    local pid=$!
    track "$pid" backend "backend $name" "$log"
    if ! wait_for 10 test -s "$ready"; then
        bail_out "backend $name ready within 10 s" "$(tail -n 20 "$log")"
    fi
    BACKEND_PID[$name]=$pid
    BACKEND_PORT[$name]=$(sed -n 's/^port=//p' "$ready")
    BACKEND_ECHO_PORT[$name]=$(sed -n 's/^echo_port=//p' "$ready")
    BACKEND=${BACKEND_PORT[$name]}
}

# backend_count NAME: requests the backend has received (its /__count), or "error".
backend_count()
{
    "${CURL[@]}" "http://127.0.0.1:${BACKEND_PORT[$1]}/__count" 2>/dev/null || echo error
}

# count_above NAME N: the backend has received more than N requests (for wait_for).
count_above()
{
    local c
    c=$(backend_count "$1")
    [[ $c =~ ^[0-9]+$ ]] && [ "$c" -gt "$2" ]
}

# answers URL TEXT: GET URL returns exactly TEXT (for wait_for).
answers()
{
    [ "$("${CURL[@]}" "$1" 2>/dev/null)" = "$2" ]
}

# log_since_matches SIZE ERE: meshd's log ($MESHD_LOG), after its first SIZE bytes, matches ERE
# (for wait_for: what a SIGHUP logged).
log_since_matches()
{
    tail -c +$(($1 + 1)) "$MESHD_LOG" | grep -Eq "$2"
}

# file_grew FILE SIZE: FILE is now larger than SIZE bytes (for wait_for).
file_grew()
{
    [ "$(wc -c <"$1")" -gt "$2" ]
}

# free_port: a TCP port that nothing listens on right now: for a closed port ("connection
# refused") or one that a listener of the test binds next (a Gateway's servers). Picked
# below the kernel's ephemeral range: a port in that range can be taken by any outgoing
# connection, or port-0 listener, of a test running in parallel between this check and
# the bind (push.sh's gateway once lost its port that way).
free_port()
{
    local p lo=32768
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
    [ "$lo" -gt 12000 ] 2>/dev/null || lo=32768
    for ((p = 0; p < 50; p++)); do
        local cand=$((10000 + RANDOM % (lo - 10000)))
        if ! (exec 9<>"/dev/tcp/127.0.0.1/$cand") 2>/dev/null; then
            echo "$cand"
            return 0
        fi
    done
    return 1
}

# start_nghttpd NAME DOCROOT [extra nghttpd args]: nghttpd (h2c, no TLS) on an ephemeral
# port; sets BACKEND_PORT[NAME] and BACKEND_PID[NAME]. Returns 1 if nghttpd is missing.
start_nghttpd()
{
    local name=$1 docroot=$2
    shift 2
    have_cmd nghttpd || return 1
    local log=$T_DIR/nghttpd-$name.log port tries
    # nghttpd cannot bind port 0 and report it: try a few free ports.
    for ((tries = 0; tries < 5; tries++)); do
        port=$(free_port) || return 1
        nghttpd --no-tls -d "$docroot" "$@" "$port" >"$log" 2>&1 &
        local pid=$!
        track "$pid" other "nghttpd $name" "$log"
        if wait_for 10 h2_listening "$port" "$pid"; then
            BACKEND_PID[$name]=$pid
            BACKEND_PORT[$name]=$port
            return 0
        fi
        kill "$pid" 2>/dev/null
        wait_exit "$pid" 5
    done
    bail_out "nghttpd $name started" "$(tail -n 20 "$log")"
}

h2_listening()
{
    kill -0 "$2" 2>/dev/null || return 1
    (exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start_meshd SNAPSHOT [extra meshd args]: runs meshd with --ready-fd 3 and waits (10 s)
# for its ready line "ready admin=<port> <listener>=<port> ...". Sets MESHD_PID,
# MESHD_LOG, MESHD_PORTS[name], MESH_ADMIN_PORT, and MESH_PORT (the first listener).
# Returns 1 (after a "not ok") when meshd does not become ready.
start_meshd()
{
    local snap=$1
    shift
    T_MESHD_SEQ=$((T_MESHD_SEQ + 1))
    local ready=$T_DIR/meshd-$T_MESHD_SEQ.ready
    MESHD_LOG=$T_DIR/meshd-$T_MESHD_SEQ.log
    [ -x "$MESH_BIN" ] || bail_out "meshd binary exists: $MESH_BIN"
    : >"$ready"
    "$MESH_BIN" --role=sidecar --snapshot "$snap" --concurrency 1 --ready-fd 3 "$@" \
        3>"$ready" >"$MESHD_LOG" 2>&1 &
    MESHD_PID=$!
    track "$MESHD_PID" meshd "meshd #$T_MESHD_SEQ" "$MESHD_LOG"
    if ! wait_for 10 ready_line_complete "$ready" "$MESHD_PID"; then
        local why="no ready line within 10 s"
        kill -0 "$MESHD_PID" 2>/dev/null || why="meshd exited before its ready line"
        not_ok "meshd #$T_MESHD_SEQ ready ($why)" \
            "command: $MESH_BIN --role=sidecar --snapshot $snap --concurrency 1 --ready-fd 3 $*" \
            "ready fd got: $(cat "$ready")" "log: $(tail -n 30 "$MESHD_LOG")"
        return 1
    fi
    local line tok first=
    IFS= read -r line <"$ready"
    MESHD_PORTS=()
    for tok in ${line#ready }; do
        MESHD_PORTS[${tok%%=*}]=${tok#*=}
        if [ "${tok%%=*}" != admin ] && [ -z "$first" ]; then
            first=${tok#*=}
        fi
    done
    MESH_ADMIN_PORT=${MESHD_PORTS[admin]:-}
    MESH_PORT=$first
    if [[ ! $line =~ ^ready\ ([a-zA-Z0-9_.-]+=[0-9]+ ?)+$ ]] || [ -z "$MESH_PORT" ]; then
        not_ok "meshd ready line well-formed" "got: $(printf '%q' "$line")"
        return 1
    fi
    return 0
}

ready_line_complete()
{
    [ -s "$1" ] && [ "$(tail -c 1 "$1" | od -An -c | tr -d ' ')" = '\n' ] && return 0
    alive "$2" || return 125
    return 1
}

# stop_meshd [PID] [SIGNAL]: signals meshd (default SIGTERM), waits up to 15 s, and checks
# that it exited with status 0 and wrote no sanitizer report. Returns 0 when clean.
stop_meshd()
{
    local pid=${1:-$MESHD_PID} sig=${2:-TERM}
    kill -s "$sig" "$pid" 2>/dev/null
    if ! wait_exit "$pid" 15; then
        not_ok "${T_LABEL[$pid]} exits within 15 s of SIG$sig"
        kill -s KILL "$pid" 2>/dev/null
        wait_exit "$pid" 5
        return 1
    fi
    check_exit "$pid"
}

# check_exit PID: the reaped process exited 0 with a clean log (prints one result).
T_CHECKED=()
check_exit()
{
    local pid=$1 st=${T_STATUS[$1]} rep
    T_CHECKED+=("$pid")
    rep=$(sanitizer_report "${T_LOG[$pid]}")
    if [ -n "$rep" ]; then
        not_ok "${T_LABEL[$pid]} ran without sanitizer reports" "$rep" \
            "log: ${T_LOG[$pid]}"
        return 1
    fi
    if [ "$st" -ne 0 ]; then
        not_ok "${T_LABEL[$pid]} exits cleanly" "it ended with $(describe_status "$st")" \
            "log tail: $(tail -n 20 "${T_LOG[$pid]}")"
        return 1
    fi
    ok "${T_LABEL[$pid]} exits cleanly"
    return 0
}

t_cleanup()
{
    local pid
    trap - EXIT INT TERM
    # Ask everything to stop, then wait for each (bounded).
    for pid in "${T_PIDS[@]}"; do
        [ -n "${T_STATUS[$pid]:-}" ] || kill -s TERM "$pid" 2>/dev/null
    done
    for pid in "${T_PIDS[@]}"; do
        [ -n "${T_STATUS[$pid]:-}" ] && continue
        if ! wait_exit "$pid" 15; then
            not_ok "${T_LABEL[$pid]} exits within 15 s of SIGTERM (killed)"
            kill -s KILL "$pid" 2>/dev/null
            wait_exit "$pid" 5
            continue
        fi
    done
    for pid in "${T_PIDS[@]}"; do
        [[ " ${T_CHECKED[*]} " == *" $pid "* ]] && continue
        case ${T_KIND[$pid]} in
        meshd | backend) check_exit "$pid" ;;
        *) ;;
        esac
    done
    printf '1..%d\n' "$T_N"
    if [ "$T_FAILED" -gt 0 ]; then
        diag "$T_NAME: $T_FAILED of $T_N checks failed; files kept in $T_DIR"
        for pid in "${T_PIDS[@]}"; do
            [ "${T_KIND[$pid]}" = meshd ] || continue
            diag "---- ${T_LABEL[$pid]} log (${T_LOG[$pid]}), last 40 lines:"
            diag "$(tail -n 40 "${T_LOG[$pid]}")"
        done
        exit 1
    fi
    if [ "${MESH_TEST_KEEP:-0}" = 1 ]; then
        diag "files kept in $T_DIR"
    else
        rm -rf "$T_DIR"
    fi
    if [ "$T_N" -gt 0 ] && [ "$T_SKIPPED" -eq "$T_N" ]; then
        exit 77
    fi
    exit 0
}
trap t_cleanup EXIT
trap 'not_ok "interrupted"; exit 1' INT TERM

# ---- snapshots ------------------------------------------------------------------

# write_snapshot FILE [options]: one listener "main" (127.0.0.1, port 0) and an admin
# listener (127.0.0.1, port 0), every request routed to the cluster "be".
#   --protocol http1|http2        the cluster's upstream protocol (default http1)
#   --endpoint HOST:PORT          repeatable; none gives a cluster without endpoints
#   --route-timeout-ms N          the route's timeout_ms
#   --request-timeout-ms N        timeouts.request_ms
#   --drain-ms N                  timeouts.drain_ms
#   --connect-timeout-ms N        the cluster's connect_timeout_ms
#   --stream-idle-ms MS           timeouts.stream_idle_ms
#   --version V                   snapshot version (default t1)
#   --listener NAME               listener name (default main)
# The file is written atomically (rename), so it can be replaced under a running meshd.
write_snapshot()
{
    local file=$1
    shift
    local proto=http1 version=t1 listener=main route_extra= cluster_extra= timeouts=
    local eps=() ep
    while [ $# -gt 0 ]; do
        case $1 in
        --protocol) proto=$2 ;;
        --endpoint) eps+=("$2") ;;
        --route-timeout-ms) route_extra+=",\"timeout_ms\":$2" ;;
        --request-timeout-ms) timeouts+="${timeouts:+,}\"request_ms\":$2" ;;
        --drain-ms) timeouts+="${timeouts:+,}\"drain_ms\":$2" ;;
        --connect-timeout-ms) cluster_extra+=",\"connect_timeout_ms\":$2" ;;
        --pool-idle-ms) cluster_extra+=",\"idle_timeout_ms\":$2" ;;
        --idle-ms) timeouts+="${timeouts:+,}\"idle_ms\":$2" ;;
        --stream-idle-ms) timeouts+="${timeouts:+,}\"stream_idle_ms\":$2" ;;
        --version) version=$2 ;;
        --listener) listener=$2 ;;
        *)
            echo "write_snapshot: unknown option $1" >&2
            return 1
            ;;
        esac
        shift 2
    done
    local eps_json= sep=
    for ep in ${eps[@]+"${eps[@]}"}; do
        eps_json+="$sep{\"address\":\"${ep%:*}\",\"port\":${ep##*:}}"
        sep=,
    done
    {
        printf '{"version":"%s",\n' "$version"
        printf ' "admin":{"address":"127.0.0.1","port":0},\n'
        [ -n "$timeouts" ] && printf ' "timeouts":{%s},\n' "$timeouts"
        printf ' "listeners":[{"name":"%s","address":"127.0.0.1","port":0,' "$listener"
        printf '"route_config":"rc"}],\n'
        printf ' "route_configs":[{"name":"rc","virtual_hosts":[{"name":"all","domains":["*"],\n'
        printf '   "routes":[{"match":{"prefix":"/"},"route":{"cluster":"be"%s}}]}]}],\n' \
            "$route_extra"
        printf ' "clusters":[{"name":"be","protocol":"%s"%s,"endpoints":[%s]}]}\n' \
            "$proto" "$cluster_extra" "$eps_json"
    } >"$file.tmp.$$" && mv -f "$file.tmp.$$" "$file"
}

# ---- requests -------------------------------------------------------------------

# mesh_url PATH: URL of PATH on meshd's first listener.
mesh_url()
{
    printf 'http://127.0.0.1:%s%s' "$MESH_PORT" "$1"
}

admin_url()
{
    printf 'http://127.0.0.1:%s%s' "$MESH_ADMIN_PORT" "$1"
}

# http_code URL [curl args]: prints the status code (000 on connection failure).
http_code()
{
    local url=$1
    shift
    "${CURL[@]}" -o /dev/null -w '%{http_code}' "$@" "$url" 2>/dev/null
    return 0
}

# raw PORT OP...: mesh-test-raw against 127.0.0.1:PORT with a 10 s bound; prints the bytes
# received. Its outcome (eof/reset/timeout) goes to $T_DIR/raw.outcome.
raw()
{
    local port=$1
    shift
    "$RAW_BIN" --timeout 10 127.0.0.1 "$port" "$@" 2>"$T_DIR/raw.outcome"
    return 0
}

# req METHOD TARGET [HEADER...]: an HTTP/1.1 request head written with mesh-test-raw
# escapes: the request line, "Host: t", the headers, the blank line.
#   raw "$MESH_PORT" "send:$(req GET /a)$(req GET /b 'Connection: close')" readall
req()
{
    local out="$1 $2 HTTP/1.1\r\nHost: t\r\n" h
    shift 2
    for h in "$@"; do
        out+="$h\r\n"
    done
    printf '%s' "$out\r\n"
}

# status_of TEXT: the status code of the first HTTP/1.x status line that is not an
# interim response (100, 102, 103; 101 counts as final).
status_of()
{
    printf '%s' "$1" | tr -d '\r' | awk '/^HTTP\/1\.[01] [0-9][0-9][0-9]/ {
        if ($2 !~ /^10[0235]$/) { print $2; exit } }'
}

# body_of TEXT: what follows the header block of the final (non-interim) response.
body_of()
{
    local t=$1
    while [[ $t =~ ^HTTP/1\.[01]\ 10[0235] && $t == *$'\r\n\r\n'* ]]; do
        t=${t#*$'\r\n\r\n'}
    done
    [[ $t == *$'\r\n\r\n'* ]] && printf '%s' "${t#*$'\r\n\r\n'}"
    return 0
}

# header_of TEXT NAME: the value of header NAME (case-insensitive) in the final response.
header_of()
{
    local t=$1
    while [[ $t =~ ^HTTP/1\.[01]\ 10[0235] && $t == *$'\r\n\r\n'* ]]; do
        t=${t#*$'\r\n\r\n'}
    done
    printf '%s' "${t%%$'\r\n\r\n'*}" | tr -d '\r' |
        awk -v n="$2" 'BEGIN{n=tolower(n)} NR>1 { i=index($0, ":");
            if (tolower(substr($0, 1, i-1)) == n) { v=substr($0, i+1); sub(/^[ \t]+/, "", v);
            print v; exit } }'
}

# random_file PATH SIZE_BYTES
random_file()
{
    head -c "$2" /dev/urandom >"$1"
}

sha_of()
{
    sha256sum "$1" | cut -d' ' -f1
}

diag "$T_NAME: temporary directory $T_DIR"
diag "meshd: $MESH_BIN"
