#!/usr/bin/env bash
# tests/integration/quickstart.sh: scripts/quickstart, non-interactively, with this build
# tree's binaries (--no-build): it exits 0 having started a control plane and four pods
# (application + sidecar), prints the canary split with both versions of reviews within
# generous bounds of 80/20, an HTTP/2 answer through the chain, proxy-status with four
# SYNCED sidecars, then every answer from reviews-v2 after the new VirtualService; it leaves
# no process and no temporary directory behind. --keep stays up until SIGTERM and the curl it
# prints works. Bad arguments and a build dir without binaries fail with a message.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

# shellcheck source=tests/integration/quickstart_lib.sh
source "$MESH_SRCDIR/tests/integration/quickstart_lib.sh"

quickstart() { TMPDIR=$T_DIR MESH_BUILD_DIR=$MESH_BUILDDIR "$QS" "$@"; }

# ---- arguments ----
OUT=$(quickstart --help 2>&1)
expect_eq "$?" 0 "--help exits 0"
expect_match "$OUT" '--no-build' "--help describes the options"
OUT=$(quickstart --bogus 2>&1)
expect_eq "$?" 2 "an unknown argument exits 2"
expect_match "$OUT" "unknown argument '--bogus'" "... naming it"
OUT=$(quickstart --requests 3 2>&1)
expect_eq "$?" 2 "--requests 3 is refused"
mkdir -p "$T_DIR/empty"
OUT=$(TMPDIR=$T_DIR MESH_BUILD_DIR=$T_DIR/empty "$QS" --no-build 2>&1)
expect_eq "$?" 1 "--no-build with a build dir without binaries exits 1"
expect_match "$OUT" 'meshd or .*mesh-demo-app is missing' "... saying what is missing"

# ---- the demo ----
qs_demo 120
qs_check_demo 4 'frontend|reviews-v1|reviews-v2|ratings'

# ---- --keep ----
TMPDIR=$T_DIR MESH_BUILD_DIR=$MESH_BUILDDIR "$QS" --no-build --keep --requests 20 \
    >"$T_DIR/keep.out" 2>&1 &
KEEP=$!
track "$KEEP" other "quickstart --keep" "$T_DIR/keep.out"
if wait_for 90 grep -q 'press Ctrl-C' "$T_DIR/keep.out"; then
    ok "--keep stays up after the demo"
    CMD=$(grep -m 1 -o "curl -H 'Host: frontend[^']*' http://127.0.0.1:[0-9]*/" "$T_DIR/keep.out")
    URL=$(grep -o 'http://[^ ]*' <<<"$CMD")
    expect_match "$("${CURL[@]}" -H 'Host: frontend.default.svc.cluster.local' "$URL")" \
        '^frontend -> reviews-v[12] -> ratings$' "the curl it prints answers through the chain"
else
    not_ok "--keep stays up after the demo" "$(tail -n 20 "$T_DIR/keep.out")"
fi
kill -TERM "$KEEP"
if wait_exit "$KEEP" 20; then
    expect_eq "${T_STATUS[$KEEP]:-?}" 0 "--keep exits 0 on SIGTERM"
else
    not_ok "--keep exits on SIGTERM"
fi
LEFT=$(leftovers)
expect_eq "$LEFT" "" "... and leaves no process behind"
# whatever a failure left: these pids run from this test's own directory
[ -z "$LEFT" ] || kill -TERM $LEFT 2>/dev/null
