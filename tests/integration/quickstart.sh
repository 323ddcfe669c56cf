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

QS=$MESH_SRCDIR/scripts/quickstart
[ -x "$QS" ] || bail_out "scripts/quickstart is executable"
[ -x "$T_TOOLS/mesh-demo-app" ] || bail_out "tests/tools/mesh-demo-app is built"
have_cmd curl || bail_out "curl is installed"
REQS=400

# leftovers: processes whose command line names a quickstart work directory under $T_DIR
# (the script makes its work directory in $TMPDIR).
leftovers() { pgrep -f "$T_DIR/quickstart-meshd" || true; }
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
OUT=$(timeout 120 bash -c 'TMPDIR=$1 MESH_BUILD_DIR=$2 "$3" --no-build --requests "$4" 2>&1' \
    _ "$T_DIR" "$MESH_BUILDDIR" "$QS" "$REQS")
RC=$?
printf '%s\n' "$OUT" >"$T_DIR/quickstart.out"
if [ "$RC" = 0 ]; then
    ok "scripts/quickstart --no-build exits 0"
else
    not_ok "scripts/quickstart --no-build exits 0" "exit $RC" "$(tail -n 40 "$T_DIR/quickstart.out")"
fi

SPLIT=$(grep -m 1 -E 'reviews-v1: [0-9]+ \([0-9.]+%\), reviews-v2: [0-9]+' <<<"$OUT")
expect_match "$SPLIT" '^ *reviews-v1: [0-9]+ \([0-9.]+%\), reviews-v2: [0-9]+ \([0-9.]+%\)$' \
    "it prints the canary split, and no other answers"
V1=$(sed -n 's/.*reviews-v1: \([0-9]*\).*/\1/p' <<<"$SPLIT")
V2=$(sed -n 's/.*reviews-v2: \([0-9]*\).*/\1/p' <<<"$SPLIT")
expect_eq "$((V1 + V2))" "$REQS" "every one of the $REQS answers went through v1 or v2"
# 80/20 over 400 requests: v2 ~ 80 +- 8 (one sd); 48..112 is 4 sd either way
if [ "${V2:-0}" -ge 48 ] && [ "${V2:-0}" -le 112 ]; then
    ok "the split is near 80/20 (v1 $V1, v2 $V2 of $REQS)"
else
    not_ok "the split is near 80/20" "v1 ${V1:-?}, v2 ${V2:-?} of $REQS"
fi
expect_match "$OUT" 'over HTTP/1.1 and one over HTTP/2' "it sends HTTP/1.1 and HTTP/2 requests"
expect_eq "$(grep -cE '^ +-> frontend -> reviews-v[12] -> ratings$' <<<"$OUT")" 2 \
    "... and both go through the chain frontend -> reviews -> ratings"
expect_eq "$(grep -cE '^ +default/(frontend|reviews-v1|reviews-v2|ratings) +sidecar +SYNCED ' <<<"$OUT")" 4 \
    "proxy-status lists the four sidecars SYNCED"
expect_match "$OUT" 'virtualservice.networking.istio.io/reviews configured' \
    "the new VirtualService is applied"
AFTER=$(grep -E 'reviews-v1: [0-9]+ \(' <<<"$OUT" | sed -n 2p)
expect_match "$AFTER" '^ *reviews-v1: 0 \(0\.0%\), reviews-v2: 100 \(100\.0%\)$' \
    "after it every answer comes from reviews-v2"
expect_match "$OUT" 'every process stopped cleanly' "every process exited 0 (no sanitizer report)"
expect_eq "$(leftovers)" "" "no process is left behind"
expect_eq "$(find "$T_DIR" -maxdepth 1 -name 'quickstart-meshd.*' | wc -l)" 0 \
    "the work directory is removed"

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
