#!/usr/bin/env bash
# Route matching seen from outside (docs/snapshot.md "match"): path exact/prefix/regex and
# ignore_case, method, scheme, authority, headers (exact, prefix, regex, present, invert,
# repeated), query parameters, AND within a route, first match wins, no match -> 404, behind
# 300 filler routes so that the route index is in play; a bad regex is refused at start and
# on reload, with its JSON path. Five backends; the one that answered is its x-backend.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${MESH_SRCDIR:-$(dirname "$0")/../..}/tests/integration/lib.sh"

NAMES=(alpha beta gamma delta epsilon)
for n in "${NAMES[@]}"; do start_backend "$n"; done

# routes FILE EXTRA_ROUTE: the test's route table (EXTRA_ROUTE, if any, goes first).
routes()
{
    local file=$1 extra=${2:-} i n sep=
    {
        printf '{"version":"match-1","admin":{"address":"127.0.0.1","port":0},\n'
        printf ' "listeners":[{"name":"main","address":"127.0.0.1","port":0,"route_config":"rc"}],\n'
        printf ' "route_configs":[{"name":"rc","virtual_hosts":[{"name":"all","domains":["*"],\n'
        printf '  "routes":[\n'
        [ -n "$extra" ] && printf '%s,\n' "$extra"
        # fillers: exact and prefix paths the requests below never hit (one is probed)
        for ((i = 0; i < 300; i++)); do
            if ((i % 2)); then
                printf '   {"match":{"prefix":"/fillp/%d/"},"route":{"cluster":"epsilon"}},\n' "$i"
            else
                printf '   {"match":{"path":"/fill/%d"},"route":{"cluster":"delta"}},\n' "$i"
            fi
        done
        cat <<'EOF'
   {"match":{"path":"/exact"},"route":{"cluster":"alpha"}},
   {"match":{"prefix":"/CI/","ignore_case":true},"route":{"cluster":"beta"}},
   {"match":{"regex":"/re/[0-9]+/item"},"route":{"cluster":"gamma"}},
   {"match":{"regex":"/rei/[a-z]+","ignore_case":true},"route":{"cluster":"delta"}},
   {"match":{"prefix":"/m","method":{"exact":"POST"}},"route":{"cluster":"alpha"}},
   {"match":{"prefix":"/m","method":{"regex":"P(UT|ATCH)"}},"route":{"cluster":"gamma"}},
   {"match":{"prefix":"/m"},"route":{"cluster":"beta"}},
   {"match":{"prefix":"/s","scheme":{"exact":"https"}},"route":{"cluster":"gamma"}},
   {"match":{"prefix":"/s"},"route":{"cluster":"delta"}},
   {"match":{"prefix":"/auth","authority":{"exact":"api.test:8080"}},"route":{"cluster":"alpha"}},
   {"match":{"prefix":"/auth","authority":{"regex":"[a-z]+\\.example(:[0-9]+)?"}},"route":{"cluster":"beta"}},
   {"match":{"prefix":"/h","headers":[{"name":"x-env","exact":"canary"}]},"route":{"cluster":"alpha"}},
   {"match":{"prefix":"/h","headers":[{"name":"x-env","prefix":"blue"}]},"route":{"cluster":"beta"}},
   {"match":{"prefix":"/h","headers":[{"name":"x-env","regex":"v[0-9]+"}]},"route":{"cluster":"gamma"}},
   {"match":{"prefix":"/h","headers":[{"name":"x-debug","present":true}]},"route":{"cluster":"delta"}},
   {"match":{"prefix":"/h","headers":[{"name":"x-user","exact":"bot","invert":true}]},"route":{"cluster":"epsilon"}},
   {"match":{"prefix":"/tag","headers":[{"name":"x-tag","exact":"a,b"}]},"route":{"cluster":"gamma"}},
   {"match":{"prefix":"/q","query_params":[{"name":"v","exact":"2"}]},"route":{"cluster":"alpha"}},
   {"match":{"prefix":"/q","query_params":[{"name":"id","regex":"[0-9]+"}]},"route":{"cluster":"beta"}},
   {"match":{"prefix":"/q","query_params":[{"name":"u","prefix":"adm"}]},"route":{"cluster":"gamma"}},
   {"match":{"prefix":"/q","query_params":[{"name":"debug","present":true}]},"route":{"cluster":"delta"}},
   {"match":{"prefix":"/and","method":{"exact":"PUT"},
             "headers":[{"name":"x-a","exact":"1"},{"name":"x-b","present":true}],
             "query_params":[{"name":"z","exact":"9"}]},"route":{"cluster":"alpha"}},
   {"match":{"prefix":"/and"},"route":{"cluster":"epsilon"}},
   {"match":{"prefix":"/first"},"route":{"cluster":"alpha"}},
   {"match":{"path":"/first/x"},"route":{"cluster":"beta"}},
   {"match":{"regex":"/first.*"},"route":{"cluster":"gamma"}},
   {"match":{"regex":"/win/[a-z]+"},"route":{"cluster":"delta"}},
   {"match":{"prefix":"/win/"},"route":{"cluster":"epsilon"}}
  ]}]}],
EOF
        printf ' "clusters":['
        for n in "${NAMES[@]}"; do
            printf '%s{"name":"%s","endpoints":[{"address":"127.0.0.1","port":%s}]}' \
                "$sep" "$n" "${BACKEND_PORT[$n]}"
            sep=,
        done
        printf ']}\n'
    } >"$file.tmp.$$" && mv -f "$file.tmp.$$" "$file"
}

# who PATH [curl args]: the x-backend of the answer, or "status N" when no backend answered.
who()
{
    local path=$1 out code name
    shift
    out=$("${CURL[@]}" -o /dev/null -D - "$@" "$(mesh_url "$path")" 2>/dev/null | tr -d '\r')
    code=$(printf '%s\n' "$out" | awk 'NR==1{print $2}')
    name=$(printf '%s\n' "$out" | awk -F': ' 'tolower($1)=="x-backend"{print $2; exit}')
    if [ -n "$name" ]; then echo "$name"; else echo "status ${code:-000}"; fi
}

# expect_who EXPECTED DESC PATH [curl args]; ROUTED counts the checks a backend should answer
ROUTED=0
expect_who()
{
    local want=$1 desc=$2
    shift 2
    [[ $want == status* ]] || ROUTED=$((ROUTED + 1))
    expect_eq "$(who "$@")" "$want" "$desc"
}

routes "$T_DIR/match.json"
start_meshd "$T_DIR/match.json" || bail_out "meshd starts with the route table"

# ---- path ----------------------------------------------------------------------------
expect_who alpha "path: exact" /exact
expect_who alpha "path: exact ignores the query" "/exact?x=1"
expect_who "status 404" "path: exact is whole (/exact/)" /exact/
expect_who "status 404" "path: exact is case-sensitive" /EXACT
expect_who beta "prefix ignore_case: /ci/ matches /CI/" /ci/a
expect_who beta "prefix ignore_case: /cI/ too" /cI/b
expect_who gamma "regex: /re/[0-9]+/item" /re/42/item
expect_who "status 404" "regex: full match (nothing after)" /re/42/items
expect_who "status 404" "regex: full match (digits required)" /re/x/item
expect_who delta "regex ignore_case" /REI/AbC
expect_who delta "a late filler route (index)" /fill/298
expect_who epsilon "a late filler prefix route (index)" /fillp/299/x
expect_who "status 404" "no match: 404" /nothing
expect_who "status 404" "no match: filler keys are whole" /fill/29

# ---- method, scheme, authority -------------------------------------------------------
expect_who alpha "method: exact POST" /m -X POST
expect_who gamma "method: regex P(UT|ATCH)" /m -X PATCH
expect_who beta "method: GET falls through" /m
expect_who gamma "scheme: https (absolute-form target)" /s --request-target "https://t/s/x"
expect_who delta "scheme: http falls through" /s/x
expect_who alpha "authority: exact, port included" /auth -H "Host: api.test:8080"
expect_who "status 404" "authority: exact without the port does not match" /auth -H "Host: api.test"
expect_who beta "authority: regex" /auth -H "Host: shop.example:81"
expect_who "status 404" "authority: no condition holds" /auth -H "Host: other.org"

# ---- headers ---------------------------------------------------------------------------
BOT=(-H "x-user: bot")
expect_who alpha "header exact" /h -H "x-env: canary" "${BOT[@]}"
expect_who alpha "header names compare without case" /h -H "X-Env: canary" "${BOT[@]}"
expect_who beta "header prefix" /h -H "x-env: blue-7" "${BOT[@]}"
expect_who gamma "header regex" /h -H "x-env: v12" "${BOT[@]}"
expect_who delta "header present (empty value)" /h -H "x-debug;" "${BOT[@]}"
expect_who epsilon "header invert: absent header" /h
expect_who epsilon "header invert: other value" /h -H "x-user: alice"
expect_who "status 404" "header invert: the value itself" /h "${BOT[@]}"
expect_who "status 404" "header exact: values compare with case" /h -H "x-env: Canary" "${BOT[@]}"
expect_who gamma "a repeated header matches on its joined values" /tag -H "x-tag: a" -H "x-tag: b"
expect_who "status 404" "one value of a repeated header is not enough" /tag -H "x-tag: a"
if curl -V | grep -qi 'http2'; then
    expect_who alpha "header exact over HTTP/2 (lowercase names)" /h --http2-prior-knowledge \
        -H "X-Env: canary" "${BOT[@]}"
else
    skip "header exact over HTTP/2" "curl without HTTP/2"
fi

# ---- query parameters -----------------------------------------------------------------
expect_who alpha "query exact" "/q?v=2"
expect_who alpha "query exact among others" "/q?a=1&v=2&b"
expect_who "status 404" "query: the first occurrence counts" "/q?v=3&v=2"
expect_who beta "query regex" "/q?id=123"
expect_who "status 404" "query regex: full match" "/q?id=123x"
expect_who gamma "query prefix" "/q?u=admin"
expect_who delta "query present without a value" "/q?debug"
expect_who "status 404" "query: none given" /q

# ---- AND within a route, first match wins -------------------------------------------------
ALL=(-X PUT -H "x-a: 1" -H "x-b: yes")
expect_who alpha "AND: every condition holds" "/and?z=9" "${ALL[@]}"
expect_who epsilon "AND: method missing" "/and?z=9" -H "x-a: 1" -H "x-b: yes"
expect_who epsilon "AND: one header missing" "/and?z=9" -X PUT -H "x-a: 1"
expect_who epsilon "AND: query value differs" "/and?z=8" "${ALL[@]}"
expect_who alpha "first match wins over a later exact" /first/x
expect_who alpha "first match wins over a later regex" /firstly
expect_who delta "a regex before a prefix" /win/abc
expect_who epsilon "the prefix after a regex that does not match" /win/123

# each backend received what it was sent, and no request went to two of them
total=0
for n in "${NAMES[@]}"; do
    c=$(backend_count "$n")
    [[ $c =~ ^[0-9]+$ ]] || c=0
    total=$((total + c))
done
expect_eq "$total" "$ROUTED" "the backends together received one request per routed check"

# ---- a bad regex ---------------------------------------------------------------------------
routes "$T_DIR/bad.json" '   {"match":{"regex":"/a(b"},"route":{"cluster":"alpha"}}'
timeout 10 "$MESH_BIN" --role=sidecar --snapshot "$T_DIR/bad.json" --concurrency 1 \
    >"$T_DIR/bad.out" 2>&1
st=$?
expect_match "$st" '^([1-9]|[1-9][0-9]|1[01][0-9]|12[0-3])$' \
    "bad regex at startup: meshd exits non-zero (not by a signal, no timeout)"
expect_match "$(cat "$T_DIR/bad.out")" \
    'route_configs\[0\]\.virtual_hosts\[0\]\.routes\[0\]\.match\.regex: invalid regex: missing closing parenthesis at offset 4' \
    "bad regex at startup: the error names the JSON path, PCRE2's message and the offset"
expect_eq "$(sanitizer_report "$T_DIR/bad.out")" "" "bad regex at startup: no sanitizer report"

routes "$T_DIR/bad_hdr.json" \
    '   {"match":{"prefix":"/","headers":[{"name":"x","regex":"[z-a]"}]},"route":{"cluster":"alpha"}}'
size0=$(wc -c <"$MESHD_LOG")
cp "$T_DIR/bad_hdr.json" "$T_DIR/match.json.new" && mv -f "$T_DIR/match.json.new" "$T_DIR/match.json"
kill -HUP "$MESHD_PID"
log_has_path()
{
    tail -c +$((size0 + 1)) "$MESHD_LOG" | grep -q 'routes\[0\]\.match\.headers\[0\]\.regex: invalid regex'
}
if wait_for 10 log_has_path; then
    ok "bad header regex on SIGHUP: refused with its JSON path"
else
    not_ok "bad header regex on SIGHUP: refused with its JSON path" \
        "log since SIGHUP: $(tail -c +$((size0 + 1)) "$MESHD_LOG" | head -c 600)"
fi
expect_who alpha "after the refused reload the old table keeps serving" /exact
stop_meshd
