#!/usr/bin/env bash
# tests/integration/quickstart_netns.sh: scripts/quickstart --netns with this build tree's
# binaries (--no-build), as root: each pod in a network namespace with `meshd iptables`,
# sidecars that register their pods, unmodified applications calling each other by name. It
# exits 0 having printed the canary split with both versions of reviews (near 80/20), an
# HTTP/2 answer through the chain, proxy-status with the five sidecars SYNCED, then every
# answer from reviews-v2; it leaves no namespace, /etc/netns file, process or temporary
# directory behind. --keep stays up until Ctrl-C (SIGINT), the curl it prints works from the
# client pod, and the interrupt cleans up everything too. Without root it refuses with a
# message and exit 2. Skipped (77) when namespaces cannot be made here.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=scripts/lib/netns.sh
source "$MESH_SRCDIR/scripts/lib/netns.sh"

QS=$MESH_SRCDIR/scripts/quickstart
[ -x "$QS" ] || bail_out "scripts/quickstart is executable"
[ -x "$T_TOOLS/mesh-demo-app" ] || bail_out "tests/tools/mesh-demo-app is built"
have_cmd curl || bail_out "curl is installed"
why=$(netns_missing)
if [ -n "$why" ]; then
    skip "quickstart --netns" "$why"
    exit 0
fi
REQS=400
chmod a+rx "$T_DIR" # the sidecars run as uid 1337 and read the token under the work dir

leftovers() { pgrep -f "$T_DIR/quickstart-meshd" || true; }
# namespaces PREFIX: the network namespaces (and /etc/netns entries) named PREFIX-*
namespaces() { { ip netns list | awk '{print $1}'; ls /etc/netns 2>/dev/null; } | grep "^$1-" || true; }

# ---- without root: a clear refusal ----
OUT=$(setpriv --reuid 65534 --regid 65534 --clear-groups bash "$QS" --netns --no-build 2>&1)
RC=$?
if [ "$RC" = 126 ] || [[ $OUT == *"Permission denied"* ]]; then
    skip "--netns without root" "uid 65534 cannot read $QS"
else
    expect_eq "$RC" 2 "--netns without root exits 2"
    expect_match "$OUT" 'quickstart: --netns needs root' "... saying it needs root"
fi

# ---- the demo ----
OUT=$(timeout 150 bash -c 'TMPDIR=$1 MESH_BUILD_DIR=$2 "$3" --netns --no-build --requests "$4" 2>&1' \
    _ "$T_DIR" "$MESH_BUILDDIR" "$QS" "$REQS")
RC=$?
printf '%s\n' "$OUT" >"$T_DIR/quickstart.out"
if [ "$RC" = 0 ]; then
    ok "scripts/quickstart --netns --no-build exits 0"
else
    not_ok "scripts/quickstart --netns --no-build exits 0" "exit $RC" \
        "$(tail -n 40 "$T_DIR/quickstart.out")"
fi
PREFIX=$(grep -o -m 1 'qs-[0-9]*-hub' <<<"$OUT")
PREFIX=${PREFIX%-hub}
check "it names its namespaces (qs-PID-NAME)" test -n "$PREFIX"
expect_match "$OUT" 'frontend +10\.244\.4\.1 +app on 127\.0\.0\.1:9080, calls http://reviews:9080/' \
    "the frontend pod's application calls reviews by name"
expect_match "$OUT" 'the four application pods registered themselves' \
    "the sidecars registered their pods (--register)"

SPLIT=$(grep -m 1 -E 'reviews-v1: [0-9]+ \([0-9.]+%\), reviews-v2: [0-9]+' <<<"$OUT")
expect_match "$SPLIT" '^ *reviews-v1: [0-9]+ \([0-9.]+%\), reviews-v2: [0-9]+ \([0-9.]+%\)$' \
    "it prints the canary split, and no other answers"
V1=$(sed -n 's/.*reviews-v1: \([0-9]*\).*/\1/p' <<<"$SPLIT")
V2=$(sed -n 's/.*reviews-v2: \([0-9]*\).*/\1/p' <<<"$SPLIT")
expect_eq "$((V1 + V2))" "$REQS" "every one of the $REQS answers went through v1 or v2"
# 80/20 over 400 requests: v2 ~ 80 +- 8 (one sd); 48..112 is 4 sd either way
if [ "${V1:-0}" -gt 0 ] && [ "${V2:-0}" -ge 48 ] && [ "${V2:-0}" -le 112 ]; then
    ok "the split shows both versions, near 80/20 (v1 $V1, v2 $V2 of $REQS)"
else
    not_ok "the split shows both versions, near 80/20" "v1 ${V1:-?}, v2 ${V2:-?} of $REQS"
fi
expect_eq "$(grep -cE '^ +-> frontend -> reviews-v[12] -> ratings$' <<<"$OUT")" 2 \
    "the HTTP/1.1 and the HTTP/2 request both went through frontend -> reviews -> ratings"
expect_eq "$(grep -cE '^ +default/(frontend|reviews-v1|reviews-v2|ratings|client) +sidecar +SYNCED ' <<<"$OUT")" 5 \
    "proxy-status lists the five sidecars SYNCED"
AFTER=$(grep -E 'reviews-v1: [0-9]+ \(' <<<"$OUT" | sed -n 2p)
expect_match "$AFTER" '^ *reviews-v1: 0 \(0\.0%\), reviews-v2: 100 \(100\.0%\)$' \
    "after the new VirtualService every answer comes from reviews-v2"
expect_match "$OUT" 'every process stopped cleanly' "every process exited 0 (no sanitizer report)"
expect_eq "$(namespaces "$PREFIX")" "" "no namespace and no /etc/netns entry is left behind"
expect_eq "$(leftovers)" "" "no process is left behind"
expect_eq "$(find "$T_DIR" -maxdepth 1 -name 'quickstart-meshd.*' | wc -l)" 0 \
    "the work directory is removed"

# ---- --keep, then Ctrl-C ----
# (a background job of a script starts with SIGINT ignored: env gives it back, as a terminal would)
TMPDIR=$T_DIR MESH_BUILD_DIR=$MESH_BUILDDIR env --default-signal=INT "$QS" --netns --no-build \
    --keep --requests 20 >"$T_DIR/keep.out" 2>&1 &
KEEP=$!
track "$KEEP" other "quickstart --netns --keep" "$T_DIR/keep.out"
if wait_for 90 grep -q 'press Ctrl-C' "$T_DIR/keep.out"; then
    ok "--keep stays up after the demo"
    CMD=$(grep -m 1 -o 'ip netns exec qs-[0-9]*-client curl http://frontend:9080/' "$T_DIR/keep.out")
    PREFIX=$(grep -o -m 1 'qs-[0-9]*-hub' "$T_DIR/keep.out")
    PREFIX=${PREFIX%-hub}
    check "it prints a curl to run in the client pod" test -n "$CMD"
    # shellcheck disable=SC2086 # the printed command, word by word
    expect_match "$($CMD -s --max-time 10 2>&1)" '^frontend -> reviews-v[12] -> ratings$' \
        "the curl it prints answers through the chain"
else
    not_ok "--keep stays up after the demo" "$(tail -n 20 "$T_DIR/keep.out")"
fi
kill -INT "$KEEP"
if wait_exit "$KEEP" 30; then
    expect_eq "${T_STATUS[$KEEP]:-?}" 0 "--keep exits 0 on Ctrl-C (SIGINT)"
else
    not_ok "--keep exits on Ctrl-C"
fi
[ -z "$PREFIX" ] || expect_eq "$(namespaces "$PREFIX")" "" "... and deletes its namespaces"
LEFT=$(leftovers)
expect_eq "$LEFT" "" "... and leaves no process behind"
# whatever a failure left: these pids run from this test's own directory
[ -z "$LEFT" ] || kill -TERM $LEFT 2>/dev/null
