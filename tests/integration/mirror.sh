#!/usr/bin/env bash
# Route mirrors (docs/snapshot.md "route".mirrors): every request copied to the mirror
# cluster with "-shadow" on its authority, the client answered by the primary alone even
# when the mirror is stalled or down, a shadow that falls behind dropped, percent sampling.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${MESH_SRCDIR:-$(dirname "$0")/../..}/tests/integration/lib.sh"

start_backend primary
start_backend mirror
start_backend stalled --stall
start_backend half
PRIMARY=${BACKEND_PORT[primary]}
MIRROR=${BACKEND_PORT[mirror]}
STALLED=${BACKEND_PORT[stalled]}
HALF=${BACKEND_PORT[half]}
CLOSED=$(free_port) || bail_out "found a closed port"

# listener NAME: everything to cluster "primary", mirrored to MIRRORS (a JSON array).
listeners= rcs= sep=
scenario()
{
    local name=$1 mirrors=$2
    listeners+="$sep{\"name\":\"$name\",\"address\":\"127.0.0.1\",\"port\":0,\"route_config\":\"$name\"}"
    rcs+="$sep{\"name\":\"$name\",\"virtual_hosts\":[{\"name\":\"all\",\"domains\":[\"*\"],"
    rcs+="\"routes\":[{\"match\":{\"prefix\":\"/\"},\"route\":{\"cluster\":\"primary\""
    rcs+=",\"mirrors\":$mirrors}}]}]}"
    sep=,
}
scenario all '[{"cluster":"mirror"}]'
scenario stall '[{"cluster":"stalled"}]'
scenario down '[{"cluster":"down"}]'
scenario half '[{"cluster":"half","percent":50}]'
ep() { printf '[{"address":"127.0.0.1","port":%s}]' "$1"; }
cat >"$T_DIR/mirror.json" <<EOF
{"version":"mirror-1",
 "admin":{"address":"127.0.0.1","port":0},
 "listeners":[$listeners],
 "route_configs":[$rcs],
 "clusters":[{"name":"primary","endpoints":$(ep "$PRIMARY")},
             {"name":"mirror","endpoints":$(ep "$MIRROR")},
             {"name":"stalled","endpoints":$(ep "$STALLED")},
             {"name":"down","endpoints":$(ep "$CLOSED")},
             {"name":"half","endpoints":$(ep "$HALF")}]}
EOF
start_meshd "$T_DIR/mirror.json" || bail_out "meshd starts"

url() { printf 'http://127.0.0.1:%s%s' "${MESHD_PORTS[$1]}" "$2"; }
stat() { "${CURL[@]}" "$(admin_url /stats)" | sed -n "s/^$1: //p"; }
count_is() { [ "$(backend_count "$1")" = "$2" ]; }

# ---- every request copied, the copy's answer discarded ----
bodies=
for i in $(seq 1 20); do
    bodies+=$("${CURL[@]}" "$(url all /hello)")
done
expect_eq "$bodies" "$(for i in $(seq 1 20); do printf 'hello from primary'; done)" \
    "the client gets the primary's answers"
check "the mirror received the 20 copies" wait_for 10 count_is mirror 20
expect_eq "$(backend_count primary)" 20 "the primary received each request once"
expect_eq "$(stat mirror_rq_total)" 20 "mirror_rq_total counts the copies"

out=$("${CURL[@]}" -H 'Host: app.example:8080' "$(url all /hello)")
wait_for 10 count_is mirror 21
expect_eq "$("${CURL[@]}" "http://127.0.0.1:$MIRROR/__last_host")" "app.example-shadow:8080" \
    "the copy's authority carries -shadow (port kept)"
expect_eq "$("${CURL[@]}" "http://127.0.0.1:$PRIMARY/__last_host")" "app.example:8080" \
    "the primary sees the authority unchanged"

b=$("${CURL[@]}" --http2-prior-knowledge -H 'Host: h2.example' "$(url all /hello)")
expect_eq "$b" "hello from primary" "HTTP/2 client: the primary answers"
check "HTTP/2 client: the copy reaches the mirror" wait_for 10 count_is mirror 22
expect_eq "$("${CURL[@]}" "http://127.0.0.1:$MIRROR/__last_host")" "h2.example-shadow" \
    "HTTP/2 client: the copy's :authority carries -shadow"

random_file "$T_DIR/body" 300000
sum=$(sha_of "$T_DIR/body")
"${CURL[@]}" -o "$T_DIR/echo.out" --data-binary @"$T_DIR/body" "$(url all /echo)"
expect_eq "$(sha_of "$T_DIR/echo.out")" "$sum" "a mirrored POST: the client gets its body back"
check "a mirrored POST reaches the mirror too" wait_for 10 count_is mirror 23

# ---- a stalled mirror never slows the client ----
# the stalled backend never reads: a client that waited for the copy would hit --max-time
ok_n=0
for i in 1 2 3 4 5; do
    b=$(curl -sS --max-time 4 "$(url stall /hello)" 2>/dev/null)
    [ "$b" = "hello from primary" ] && ok_n=$((ok_n + 1))
done
expect_eq "$ok_n" 5 "stalled mirror: the client gets the primary's answer every time"
f0=$(stat mirror_rq_failed)
random_file "$T_DIR/big" $((8 * 1024 * 1024))
sum=$(sha_of "$T_DIR/big")
curl -sS --max-time 30 -o "$T_DIR/big.out" --data-binary @"$T_DIR/big" "$(url stall /echo)"
expect_eq "$(sha_of "$T_DIR/big.out")" "$sum" \
    "stalled mirror: an 8 MiB upload streams through to the primary"
expect_le $((f0 + 1)) "$(stat mirror_rq_failed)" "the copy that fell behind was dropped (mirror_rq_failed)"

# ---- a mirror that is down changes nothing for the client ----
f0=$(stat mirror_rq_failed)
codes=
for i in 1 2 3; do
    codes+="$(http_code "$(url down /hello)") "
done
expect_eq "$codes" "200 200 200 " "mirror down: the client gets 200"
failed_by() { [ "$(stat mirror_rq_failed)" -ge "$1" ]; }
check "mirror down: mirror_rq_failed counts the 3 failures" wait_for 10 failed_by $((f0 + 3))

# ---- percent 50 sends about half ----
N=2000
t0=$(stat mirror_rq_total)
if have_cmd h2load; then
    h2load -n $N -c 4 --h1 "$(url half /hello)" >"$T_DIR/h2load.out" 2>&1
else
    for i in $(seq 1 $N); do printf 'url = "%s"\noutput = /dev/null\n' "$(url half /hello)"; done |
        curl -sS --max-time 120 -K - >/dev/null
fi
sent=$(($(stat mirror_rq_total) - t0))
check "percent 50: the mirror got every copy sent" wait_for 15 count_is half "$sent"
# Binomial(2000, 0.5): sd 22; +-80 (4% of N) is 3.6 sd
expect_le 920 "$sent" "percent 50: at least 920 of $N copied ($sent)"
expect_le "$sent" 1080 "percent 50: at most 1080 of $N copied ($sent)"

stop_meshd
