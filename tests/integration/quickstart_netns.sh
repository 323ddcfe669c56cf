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

# shellcheck source=tests/integration/quickstart_lib.sh
source "$MESH_SRCDIR/tests/integration/quickstart_lib.sh"
why=$(netns_missing)
if [ -n "$why" ]; then
    skip "quickstart --netns" "$why"
    exit 0
fi
chmod a+rx "$T_DIR" # the sidecars run as uid 1337 and read the token under the work dir

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
qs_demo 150 --netns
PREFIX=$(grep -o -m 1 'qs-[0-9]*-hub' <<<"$OUT")
PREFIX=${PREFIX%-hub}
check "it names its namespaces (qs-PID-NAME)" test -n "$PREFIX"
expect_match "$OUT" 'frontend +10\.244\.4\.1 +app on 127\.0\.0\.1:9080, calls http://reviews:9080/' \
    "the frontend pod's application calls reviews by name"
expect_match "$OUT" 'the four application pods registered themselves' \
    "the sidecars registered their pods (--register)"

qs_check_demo 5 'frontend|reviews-v1|reviews-v2|ratings|client'
expect_eq "$(namespaces "$PREFIX")" "" "no namespace and no /etc/netns entry is left behind"

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
