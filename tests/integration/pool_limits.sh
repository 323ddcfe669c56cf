#!/usr/bin/env bash
# Connection pool limits with real backends and concurrent clients (meshd --concurrency 1):
# max_pending_requests and the cluster's max_requests overflow with 503 and the UO flag,
# counted in the stats; TCP keepalive is set on upstream sockets.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${MESH_SRCDIR:-$(dirname "$0")/../..}/tests/integration/lib.sh"

start_backend a
start_backend k   # its own backend: pools are per endpoint, shared by clusters
A=${BACKEND_PORT[a]} K=${BACKEND_PORT[k]}

cat >"$T_DIR/pool.json" <<EOF
{"version":"pool-1",
 "admin":{"address":"127.0.0.1","port":0},
 "listeners":[{"name":"pending","address":"127.0.0.1","port":0,"route_config":"rc_pending"},
              {"name":"maxreq","address":"127.0.0.1","port":0,"route_config":"rc_maxreq"},
              {"name":"ka","address":"127.0.0.1","port":0,"route_config":"rc_ka"}],
 "route_configs":[
   {"name":"rc_pending","virtual_hosts":[{"name":"all","domains":["*"],"routes":[
     {"match":{"prefix":"/"},"route":{"cluster":"pending"}}]}]},
   {"name":"rc_maxreq","virtual_hosts":[{"name":"all","domains":["*"],"routes":[
     {"match":{"prefix":"/"},"route":{"cluster":"maxreq"}}]}]},
   {"name":"rc_ka","virtual_hosts":[{"name":"all","domains":["*"],"routes":[
     {"match":{"prefix":"/"},"route":{"cluster":"ka"}}]}]}],
 "clusters":[
   {"name":"pending","max_connections":1,"max_pending_requests":1,
    "endpoints":[{"address":"127.0.0.1","port":$A}]},
   {"name":"maxreq","max_requests":2,
    "endpoints":[{"address":"127.0.0.1","port":$A}]},
   {"name":"ka","tcp_keepalive":{"time_s":77,"interval_s":5,"probes":3},
    "endpoints":[{"address":"127.0.0.1","port":$K}]}]}
EOF
start_meshd "$T_DIR/pool.json" || bail_out "meshd starts"
PENDING=${MESHD_PORTS[pending]:-} MAXREQ=${MESHD_PORTS[maxreq]:-} KA=${MESHD_PORTS[ka]:-}
[ -n "$PENDING" ] && [ -n "$MAXREQ" ] && [ -n "$KA" ] || bail_out "ready line names every listener"

# fire TAG PORT PATH: a background curl; its status and flags go to $T_DIR/TAG.out.
fire()
{
    "${CURL[@]}" -o /dev/null -D "$T_DIR/$1.hdr" -w '%{http_code}\n' "http://127.0.0.1:$2$3" \
        >"$T_DIR/$1.out" 2>/dev/null &
}

# outcome TAG: "200", or "503 UO" (status and x-meshd-response-flags).
outcome()
{
    printf '%s %s' "$(cat "$T_DIR/$1.out")" \
        "$(tr -d '\r' <"$T_DIR/$1.hdr" | awk -F': ' 'tolower($1)=="x-meshd-response-flags" {print $2}')"
}

done_all() { local t; for t in "$@"; do [ -s "$T_DIR/$t.out" ] || return 1; done; }

stat_of() { "${CURL[@]}" "$(admin_url /stats)" | awk -v k="$1:" '$1==k {print $2}'; }
stat_ge() { local v; v=$(stat_of "$1"); [[ $v =~ ^[0-9]+$ ]] && [ "$v" -ge "$2" ]; }

# -- max_pending_requests: 1 connection busy, 1 request waiting, the next overflows.
base=$(backend_count a)
fire p1 "$PENDING" /delay/3000
wait_for 10 count_above a "$base" || not_ok "the first slow request reaches the backend"
fire p2 "$PENDING" /delay/10
wait_for 10 stat_ge upstream_rq_pending_total 2 || not_ok "the second request waits for the connection"
fire p3 "$PENDING" /delay/10
wait_for 10 done_all p3
expect_eq "$(outcome p3)" "503 UO" "max_pending_requests: the request beyond it gets 503 UO"
wait_for 15 done_all p1 p2
expect_eq "$(outcome p1) | $(outcome p2)" "200  | 200 " "the running and the waiting request both succeed"

# -- max_requests: 2 in flight to the cluster (any connections), the third overflows.
base=$(backend_count a)
fire m1 "$MAXREQ" /delay/3000
fire m2 "$MAXREQ" /delay/3000
wait_for 10 count_above a $((base + 1)) || not_ok "two slow requests reach the backend"
inflight=$("${CURL[@]}" "$(admin_url /clusters)" | awk -F'::' '$1=="maxreq" && $2=="rq_active" {print $3}')
expect_eq "$inflight" 2 "/clusters shows 2 requests in flight to the cluster"
fire m3 "$MAXREQ" /x
fire m4 "$MAXREQ" /y
wait_for 10 done_all m3 m4
expect_eq "$(outcome m3) | $(outcome m4)" "503 UO | 503 UO" "max_requests: requests beyond it get 503 UO"
wait_for 15 done_all m1 m2
expect_eq "$(outcome m1) | $(outcome m2)" "200  | 200 " "the requests in flight succeed"
expect_eq "$(http_code "http://127.0.0.1:$MAXREQ/again")" 200 "with the cluster idle again, requests pass"
expect_eq "$(stat_of upstream_rq_overflow)" 3 "upstream_rq_overflow counts the 3 overflows"

# -- tcp_keepalive on the upstream socket (ss shows the keepalive timer).
expect_eq "$(http_code "http://127.0.0.1:$KA/ka")" 200 "request through the keepalive cluster"
if have_cmd ss; then
    kat=$(ss -tno state established "( dport = :$K )" 2>/dev/null | grep -c 'timer:(keepalive')
    if [ "$kat" -ge 1 ]; then ok "upstream socket has TCP keepalive on"; else
        not_ok "upstream socket has TCP keepalive on" "$(ss -tno state established "( dport = :$K )")"; fi
else
    skip "upstream socket has TCP keepalive on" "ss missing"
fi

stop_meshd
