# Shared by quickstart.sh and quickstart_netns.sh (sourced after lib.sh): running the demo
# of scripts/quickstart and checking what it printed.

QS=$MESH_SRCDIR/scripts/quickstart
[ -x "$QS" ] || bail_out "scripts/quickstart is executable"
[ -x "$T_TOOLS/mesh-demo-app" ] || bail_out "tests/tools/mesh-demo-app is built"
have_cmd curl || bail_out "curl is installed"
REQS=400

# leftovers: processes whose command line names a quickstart work directory under $T_DIR
# (the script makes its work directory in $TMPDIR).
leftovers() { pgrep -f "$T_DIR/quickstart-meshd" || true; }

# qs_demo TIMEOUT ARG...: runs scripts/quickstart --no-build --requests $REQS ARG... into
# $OUT (kept in $T_DIR/quickstart.out) and says whether it exited 0.
qs_demo()
{
    local limit=$1 rc what
    shift
    what="scripts/quickstart $* --no-build exits 0"
    OUT=$(timeout "$limit" bash -c 'TMPDIR=$1 MESH_BUILD_DIR=$2 "$3" "${@:5}" --no-build \
        --requests "$4" 2>&1' _ "$T_DIR" "$MESH_BUILDDIR" "$QS" "$REQS" "$@")
    rc=$?
    printf '%s\n' "$OUT" >"$T_DIR/quickstart.out"
    if [ "$rc" = 0 ]; then
        ok "$what"
    else
        not_ok "$what" "exit $rc" "$(tail -n 40 "$T_DIR/quickstart.out")"
    fi
}

# qs_check_demo N PODS-REGEX: what every demo prints: the canary split (both versions, near
# 80/20), both protocols through the chain, proxy-status with N sidecars SYNCED, every answer
# from reviews-v2 after the new VirtualService, a clean stop with nothing left behind.
qs_check_demo()
{
    local n=$1 pods=$2 split v1 v2 after
    split=$(grep -m 1 -E 'reviews-v1: [0-9]+ \([0-9.]+%\), reviews-v2: [0-9]+' <<<"$OUT")
    expect_match "$split" '^ *reviews-v1: [0-9]+ \([0-9.]+%\), reviews-v2: [0-9]+ \([0-9.]+%\)$' \
        "it prints the canary split, and no other answers"
    v1=$(sed -n 's/.*reviews-v1: \([0-9]*\).*/\1/p' <<<"$split")
    v2=$(sed -n 's/.*reviews-v2: \([0-9]*\).*/\1/p' <<<"$split")
    expect_eq "$((v1 + v2))" "$REQS" "every one of the $REQS answers went through v1 or v2"
    # 80/20 over 400 requests: v2 ~ 80 +- 8 (one sd); 48..112 is 4 sd either way
    if [ "${v1:-0}" -gt 0 ] && [ "${v2:-0}" -ge 48 ] && [ "${v2:-0}" -le 112 ]; then
        ok "the split shows both versions, near 80/20 (v1 $v1, v2 $v2 of $REQS)"
    else
        not_ok "the split shows both versions, near 80/20" "v1 ${v1:-?}, v2 ${v2:-?} of $REQS"
    fi
    expect_match "$OUT" 'over HTTP/1.1 and one over HTTP/2' "it sends HTTP/1.1 and HTTP/2 requests"
    expect_eq "$(grep -cE '^ +-> frontend -> reviews-v[12] -> ratings$' <<<"$OUT")" 2 \
        "... and both go through the chain frontend -> reviews -> ratings"
    expect_eq "$(grep -cE "^ +default/($pods) +sidecar +SYNCED " <<<"$OUT")" "$n" \
        "proxy-status lists the $n sidecars SYNCED"
    expect_match "$OUT" 'virtualservice.networking.istio.io/reviews configured' \
        "the new VirtualService is applied"
    after=$(grep -E 'reviews-v1: [0-9]+ \(' <<<"$OUT" | sed -n 2p)
    expect_match "$after" '^ *reviews-v1: 0 \(0\.0%\), reviews-v2: 100 \(100\.0%\)$' \
        "after it every answer comes from reviews-v2"
    expect_match "$OUT" 'every process stopped cleanly' "every process exited 0 (no sanitizer report)"
    expect_eq "$(leftovers)" "" "no process is left behind"
    expect_eq "$(find "$T_DIR" -maxdepth 1 -name 'quickstart-meshd.*' | wc -l)" 0 \
        "the work directory is removed"
}
