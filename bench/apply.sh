#!/usr/bin/env bash
# bench/apply.sh: `meshd ctl apply -f FILE` of one generated file of N resources (10,000 by
# default), end to end: local validation, upload, validation in the control plane, one store
# transaction, the answer. Each run starts a fresh control plane on a fresh data dir and times
# three applies of the file: all created, all configured (every object edited), all unchanged.
# Prints each time and PASS/MISS for the median "created" against the target (issue 3: < 2 s).
#
#   bench/apply.sh                       # builds meshd without sanitizers in build-bench/
#   MESH_BIN=/path/to/meshd bench/apply.sh -n 10000 -r 5
#
# It is a benchmark, not a test: it exits 0 once it has run (1 if it could not set up).
set -u
set -o pipefail

N=10000
RUNS=3
TARGET_MS=2000
MESH_BIN=${MESH_BIN:-}
while [ $# -gt 0 ]; do
    case $1 in
    -n) N=$2; shift 2 ;;
    -r) RUNS=$2; shift 2 ;;
    --mesh-bin) MESH_BIN=$2; shift 2 ;;
    -h | --help)
        sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) echo "bench/apply.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done
[[ $N =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] && [[ $RUNS =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] ||
    { echo "bench/apply.sh: -n and -r take a positive number" >&2; exit 2; }

top=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "bench/apply.sh: $*" >&2; exit 1; }

if [ -z "$MESH_BIN" ]; then
    build=$top/build-bench
    echo "bench/apply.sh: building meshd without sanitizers in $build" >&2
    ( cd "$top" && { [ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi >/dev/null; } ) ||
        die "autoreconf failed"
    mkdir -p "$build"
    ( cd "$build" && { [ -f Makefile ] || "$top/configure" >configure.out 2>&1; } &&
        make -j"$(nproc)" meshd >make.out 2>&1 ) ||
        die "building meshd failed: see $build/configure.out and $build/make.out"
    MESH_BIN=$build/meshd
    grep -Eq '^MESH_CFLAGS = .*-fsanitize' "$build/Makefile" &&
        die "$build is configured with sanitizers (they would measure ASan): remove it"
fi
[ -x "$MESH_BIN" ] || die "no meshd at $MESH_BIN"
"$MESH_BIN" ctl apply --help 2>/dev/null | grep -q -- '--filename' ||
    die "$MESH_BIN has no 'meshd ctl apply'"

T=$(mktemp -d "${TMPDIR:-/tmp}/bench-apply.XXXXXX") || die "mktemp failed"
CP_PID=
cleanup()
{
    if [ -n "$CP_PID" ]; then
        kill -TERM "$CP_PID" 2>/dev/null
        wait "$CP_PID" 2>/dev/null
    fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# gen N VERSION: N resources, a quarter of each kind (VirtualService, DestinationRule,
# Service, ServiceEntry) in 10 namespaces; VERSION changes every object.
gen()
{
    awk -v n="$1" -v v="$2" 'BEGIN {
        for (i = 0; i < n; i++) {
            ns = "team-" (i % 10); k = i % 4; name = "svc-" i
            printf "---\n"
            if (k == 0) {
                printf "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\n"
                printf "metadata:\n  name: %s\n  namespace: %s\n  labels:\n    app: %s\n", name, ns, name
                printf "spec:\n  hosts:\n  - %s\n  http:\n  - match:\n    - uri:\n        prefix: /api\n", name
                printf "    route:\n    - destination:\n        host: %s\n        subset: v1\n", name
                printf "      weight: %d\n    - destination:\n        host: %s\n        subset: v2\n", 100 - v, name
                printf "      weight: %d\n    timeout: 5s\n", v
            } else if (k == 1) {
                printf "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
                printf "metadata:\n  name: %s\n  namespace: %s\n", name, ns
                printf "spec:\n  host: %s\n  trafficPolicy:\n    connectionPool:\n      tcp:\n", name
                printf "        maxConnections: %d\n  subsets:\n  - name: v1\n    labels:\n", 100 + v
                printf "      version: v1\n  - name: v2\n    labels:\n      version: v2\n"
            } else if (k == 2) {
                printf "apiVersion: v1\nkind: Service\n"
                printf "metadata:\n  name: %s\n  namespace: %s\n  labels:\n    app: %s\n", name, ns, name
                printf "spec:\n  selector:\n    app: %s\n  ports:\n  - name: http\n", name
                printf "    port: %d\n    targetPort: 8080\n", 9000 + v
            } else {
                printf "apiVersion: networking.istio.io/v1beta1\nkind: ServiceEntry\n"
                printf "metadata:\n  name: %s\n  namespace: %s\n", name, ns
                printf "spec:\n  hosts:\n  - %s.example.com\n  location: MESH_EXTERNAL\n", name
                printf "  resolution: DNS\n  ports:\n  - number: %d\n    name: https\n", 443 + v
                printf "    protocol: TLS\n"
            }
        }
    }'
}

now_ms() { date +%s%3N; }

start_control()
{
    : >"$T/ready"
    "$MESH_BIN" --role=control --data-dir "$T/data" --listen 127.0.0.1:0 --admin 127.0.0.1:0 \
        --ready-fd 3 --log-level warn 3>"$T/ready" 2>"$T/control.log" &
    CP_PID=$!
    local i
    for ((i = 0; i < 200; i++)); do
        # complete once it ends with a newline ($(...) drops a trailing newline)
        [ -s "$T/ready" ] && [ -z "$(tail -c 1 "$T/ready")" ] && break
        kill -0 "$CP_PID" 2>/dev/null || die "the control plane exited: $(tail -n 5 "$T/control.log")"
        sleep 0.05
    done
    PORT=$(sed -n 's/^ready admin=[0-9]* api=\([0-9]*\)$/\1/p' "$T/ready")
    [ -n "$PORT" ] || die "no ready line from the control plane"
}

stop_control()
{
    kill -TERM "$CP_PID" 2>/dev/null
    wait "$CP_PID" 2>/dev/null
    CP_PID=
    rm -rf "$T/data"
}

# timed_apply FILE EXPECT: prints the milliseconds of one `meshd ctl apply -f FILE`, checks
# that every line of its output says EXPECT.
timed_apply()
{
    local t0 t1 n
    t0=$(now_ms)
    "$MESH_BIN" ctl apply -f "$1" --server "http://127.0.0.1:$PORT" \
        --token-file "$T/data/token" >"$T/out" 2>"$T/err" ||
        die "ctl apply -f $1 failed: $(tail -n 5 "$T/err")"
    t1=$(now_ms)
    n=$(grep -c " $2\$" "$T/out")
    [ "$n" = "$N" ] || die "expected $N lines '$2', got $n: $(head -n 3 "$T/out")"
    echo $((t1 - t0))
}

gen "$N" 10 >"$T/a.yaml"
gen "$N" 20 >"$T/b.yaml"
echo "# meshd ctl apply of $N resources ($(wc -c <"$T/a.yaml") bytes of YAML, 4 kinds, 10" \
    "namespaces), $RUNS runs, each on a fresh control plane"
echo "# meshd: $MESH_BIN; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %12s %12s %12s\n' run created configured unchanged
created=()
for ((r = 1; r <= RUNS; r++)); do
    start_control
    c=$(timed_apply "$T/a.yaml" created) || exit 1
    g=$(timed_apply "$T/b.yaml" configured) || exit 1
    u=$(timed_apply "$T/b.yaml" unchanged) || exit 1
    stop_control
    printf '%-6s %9d ms %9d ms %9d ms\n' "$r" "$c" "$g" "$u"
    created+=("$c")
done
median=$(printf '%s\n' "${created[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
verdict=MISS
[ "$median" -lt "$TARGET_MS" ] && verdict=PASS
echo "apply of $N resources (created), median of $RUNS: $median ms (target < $TARGET_MS ms): $verdict"
exit 0
