#!/usr/bin/env bash
# Outlier detection with real backends: a backend switched to answering 503 is ejected
# after consecutive errors (admin /clusters shows it, stats count it), traffic stops
# reaching it, and after base_ejection_time it returns and, healed, serves again. Then a
# backend that never answers: its request timeouts (504 UT) count as gateway errors and
# eject it too.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${MESH_SRCDIR:-$(dirname "$0")/../..}/tests/integration/lib.sh"

start_backend a
start_backend b
start_backend c
A=${BACKEND_PORT[a]} B=${BACKEND_PORT[b]} C=${BACKEND_PORT[c]}

cat >"$T_DIR/outlier.json" <<EOF
{"version":"outlier-1",
 "admin":{"address":"127.0.0.1","port":0},
 "listeners":[{"name":"main","address":"127.0.0.1","port":0,"route_config":"rc"}],
 "route_configs":[{"name":"rc","virtual_hosts":[{"name":"all","domains":["*"],"routes":[
   {"match":{"prefix":"/"},"route":{"cluster":"be"}}]}]}],
 "clusters":[{"name":"be",
   "outlier_detection":{"consecutive_5xx":3,"interval_ms":200,"base_ejection_time_ms":3000,
                        "max_ejection_percent":50},
   "endpoints":[{"address":"127.0.0.1","port":$A},{"address":"127.0.0.1","port":$B},
                {"address":"127.0.0.1","port":$C}]}]}
EOF
start_meshd "$T_DIR/outlier.json" || bail_out "meshd starts"

# health NAME: the health_flags of backend NAME in /clusters.
health()
{
    "${CURL[@]}" "$(admin_url /clusters)" 2>/dev/null |
        awk -F'::' -v k="127.0.0.1:${BACKEND_PORT[$1]}" '$1=="be" && $2==k && $3=="health_flags" {print $4}'
}

# codes N: the statuses of N requests through meshd, "200 200 503..."
codes()
{
    "${CURL[@]}" -o /dev/null -w '%{http_code} ' $(printf -- "$(mesh_url /x) %.0s" $(seq "$1")) 2>/dev/null
}

expect_eq "$(health a)" healthy "every backend starts healthy"
"${CURL[@]}" "http://127.0.0.1:$A/__fail/503" >/dev/null 2>&1
expect_eq "$(http_code "http://127.0.0.1:$A/x")" 503 "backend a switched to answering 503"

# ejected_after_traffic: one round of requests, then is a ejected? (for wait_for)
ejected_after_traffic()
{
    codes 3 >/dev/null
    [ "$(health a)" = /failed_outlier_check ]
}
if wait_for 10 ejected_after_traffic; then
    ok "a failing backend is ejected (/clusters: /failed_outlier_check)"
else
    not_ok "a failing backend is ejected" "$("${CURL[@]}" "$(admin_url /clusters)")"
fi
stats=$("${CURL[@]}" "$(admin_url /stats)")
expect_match "$stats" $'outlier_ejections_total: 1\n' "outlier_ejections_total counts one ejection"
expect_match "$stats" $'outlier_ejections_consecutive_5xx: 1\n' "counted as consecutive 5xx"

# While ejected: nothing reaches a, every request succeeds on b and c.
before=$(backend_count a)
got=$(codes 30)
after=$(backend_count a)
expect_eq "$after" "$before" "no request reaches the ejected backend (a's /__count stays $before)"
expect_no_match "$got" '503' "every request succeeds while a is ejected"

# Healed, it returns after base_ejection_time (3 s) and serves again.
"${CURL[@]}" "http://127.0.0.1:$A/__fail/0" >/dev/null 2>&1
returned() { [ "$(health a)" = healthy ]; }
if wait_for 15 returned; then
    ok "after base_ejection_time the backend returns (/clusters: healthy)"
else
    not_ok "the ejected backend returns" "$("${CURL[@]}" "$(admin_url /clusters)")"
fi
before=$(backend_count a)
got=$(codes 30)
after=$(backend_count a)
if [[ $after =~ ^[0-9]+$ ]] && [ "$after" -ge $((before + 5)) ]; then
    ok "the returned backend serves again ($((after - before)) of 30 requests)"
else
    not_ok "the returned backend serves again" "a's count $before -> $after"
fi
expect_no_match "$got" '503' "and answers 200"
expect_match "$("${CURL[@]}" "$(admin_url /clusters)")" 'be::127.0.0.1:[0-9]+::outlier::ejections::1' \
    "/clusters keeps the ejection count"

stop_meshd

# Timeouts are gateway errors: a backend that accepts but never answers is ejected after
# consecutive_gateway_errors timed-out requests, then every request goes to the other one.
start_backend stalled --stall
start_backend fine
S=${BACKEND_PORT[stalled]} F=${BACKEND_PORT[fine]}
cat >"$T_DIR/timeouts.json" <<EOF
{"version":"outlier-2",
 "admin":{"address":"127.0.0.1","port":0},
 "listeners":[{"name":"main","address":"127.0.0.1","port":0,"route_config":"rc"}],
 "route_configs":[{"name":"rc","virtual_hosts":[{"name":"all","domains":["*"],"routes":[
   {"match":{"prefix":"/"},"route":{"cluster":"be","timeout_ms":300}}]}]}],
 "clusters":[{"name":"be",
   "outlier_detection":{"consecutive_5xx":0,"consecutive_gateway_errors":2,
                        "interval_ms":200,"base_ejection_time_ms":60000,
                        "max_ejection_percent":50},
   "endpoints":[{"address":"127.0.0.1","port":$S},{"address":"127.0.0.1","port":$F}]}]}
EOF
start_meshd "$T_DIR/timeouts.json" || bail_out "meshd starts with the timeout snapshot"
stalled_ejected()
{
    codes 2 >/dev/null
    [ "$(health stalled)" = /failed_outlier_check ]
}
if wait_for 15 stalled_ejected; then
    ok "a backend whose requests time out (504 UT) is ejected as a gateway error"
else
    not_ok "a backend whose requests time out is ejected" "$("${CURL[@]}" "$(admin_url /clusters)")"
fi
expect_match "$("${CURL[@]}" "$(admin_url /stats)")" $'outlier_ejections_consecutive_gateway: 1\n' \
    "counted as consecutive gateway errors"
got=$(codes 10)
expect_eq "$(grep -o 'hello from fine' <<<"$got" | wc -l)" 9 \
    "while it is ejected the other backend answers (the bodies of 9 of 10 go to stdout)"
expect_no_match "$got" '504' "no request times out while it is ejected"
stop_meshd
