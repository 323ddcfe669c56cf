/*
 * Route matches end to end inside the process: the loader (snapshot_match.c)
 * parses them from snapshot JSON, the router (router.c) evaluates them on
 * request views. Route tables come from real snapshots, so regexes are
 * compiled the way meshd compiles them and freed with the snapshot.
 */
#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include <criterion/criterion.h>
#include "core/arena.h"
#include "core/proxy-int.h"
#include "core/router.h"
#include "core/snapshot.h"
#include "../leakcheck.h"

#define MATCH_TEST(name) LEAK_TEST(match, name)

static struct mesh_err err;
static char errbuf[16384];
static char doc[65536];

/* A snapshot whose only virtual host has <routes> (a JSON array text). */
static struct mesh_snapshot *load(const char *routes)
{
    snprintf(doc, sizeof(doc),
             "{\"version\": \"t\", \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\","
             " \"port\": 0, \"route_config\": \"rc\"}], \"route_configs\": [{\"name\": \"rc\","
             " \"virtual_hosts\": [{\"name\": \"v\", \"domains\": [\"*\"], \"routes\": %s}]}]}",
             routes);
    struct mesh_snapshot *s = mesh_snapshot_parse(doc, strlen(doc), &err);
    mesh_err_format(&err, errbuf, sizeof(errbuf));
    return s;
}

static const struct mesh_vhost *vhost(const struct mesh_snapshot *s)
{
    return &s->route_configs[0].vhosts[0];
}

static bool has_error(const char *path, const char *msg)
{
    for (size_t i = 0; i < err.count; i++)
        if (strcmp(err.e[i].path, path) == 0 && strstr(err.e[i].msg, msg))
            return true;
    return false;
}

#define EXPECT_ERROR(path, msg)                                                                    \
    cr_expect(has_error(path, msg), "expected \"%s: %s\" in:\n%s", path, msg, errbuf)
#define R0 "route_configs[0].virtual_hosts[0].routes[0].match"

/* A route that answers locally, with <match> (JSON object text). */
#define ROUTE(match) "{\"match\": " match ", \"direct_response\": {\"status\": 200}}"

/* A request: "METHOD SCHEME AUTHORITY PATH" plus "name: value" headers (NULL-terminated). */
struct req {
    struct mesh_router_req rq;
    struct mesh_headers hdrs;
    struct mesh_header v[8];
    char line[512];
};

static struct mesh_router_req *mkreq(struct req *r, struct mesh_arena *arena, const char *line,
                                     const char *const *headers)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->line, sizeof(r->line), "%s", line);
    char *save = NULL;
    const char *m = strtok_r(r->line, " ", &save);
    const char *sc = strtok_r(NULL, " ", &save);
    const char *au = strtok_r(NULL, " ", &save);
    const char *pa = strtok_r(NULL, " ", &save);
    r->rq = (struct mesh_router_req){.method = m, .method_len = strlen(m), .scheme = sc,
                                     .scheme_len = strlen(sc), .authority = au,
                                     .authority_len = strlen(au), .path = pa,
                                     .path_len = strlen(pa), .headers = &r->hdrs,
                                     .arena = arena};
    for (size_t i = 0; headers && headers[i]; i++) {
        cr_assert_lt(i, MESH_ARRAY_LEN(r->v));
        const char *colon = strchr(headers[i], ':');
        cr_assert_not_null(colon);
        r->v[i] = (struct mesh_header){.name = headers[i],
                                       .name_len = (uint32_t)(colon - headers[i]),
                                       .value = colon + 2,
                                       .value_len = (uint32_t)strlen(colon + 2)};
        r->hdrs.n++;
    }
    r->hdrs.v = r->v;
    r->hdrs.cap = (uint32_t)MESH_ARRAY_LEN(r->v);
    return &r->rq;
}

/* Index of the route taken for <line> + <headers>, -1 for none; index and scan must agree,
 * with and without a scratch arena. */
static int route_for(const struct mesh_snapshot *s, const char *line, const char *const *headers)
{
    struct req r;
    const struct mesh_vhost *vh = vhost(s);
    const struct mesh_route *a = mesh_router_route(vh, mkreq(&r, NULL, line, headers));
    const struct mesh_route *b = mesh_router_route_scan(vh, &r.rq);
    struct mesh_arena *arena = mesh_arena_new(4096, 0);
    const struct mesh_route *c = mesh_router_route(vh, mkreq(&r, arena, line, headers));
    mesh_arena_free(arena);
    cr_expect_eq(a, b, "index and scan disagree on \"%s\"", line);
    cr_expect_eq(a, c, "with and without an arena disagree on \"%s\"", line);
    return a ? (int)(a - vh->routes) : -1;
}

#define GET(path) "GET http example.com " path
#define HDRS(...) ((const char *const[]){__VA_ARGS__, NULL})

MATCH_TEST(regex_is_a_full_match_of_the_path_without_query)
{
    struct mesh_snapshot *s = load("[" ROUTE("{\"regex\": \"/api/v[0-9]+\"}") "]");
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_eq(vhost(s)->routes[0].match.kind, MESH_MATCH_REGEX);
    cr_expect_str_eq(vhost(s)->routes[0].match.path, "/api/v[0-9]+");
    cr_expect_eq(route_for(s, GET("/api/v12"), NULL), 0);
    cr_expect_eq(route_for(s, GET("/api/v1?x=/y"), NULL), 0);
    cr_expect_eq(route_for(s, GET("/api/v12/x"), NULL), -1, "anchored at the end");
    cr_expect_eq(route_for(s, GET("/x/api/v1"), NULL), -1, "anchored at the start");
    cr_expect_eq(route_for(s, GET("/api/v"), NULL), -1);
    cr_expect_eq(route_for(s, GET("/API/v1"), NULL), -1, "case-sensitive by default");
    mesh_snapshot_unref(s);
}

MATCH_TEST(a_regex_alternation_applies_to_the_whole_path)
{
    /* "a|b" anchored at both ends is "^(?:a|b)$", not "^a|b$" */
    struct mesh_snapshot *s = load("[" ROUTE("{\"regex\": \"/a|/b/.*\"}") "]");
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_eq(route_for(s, GET("/a"), NULL), 0);
    cr_expect_eq(route_for(s, GET("/b/x"), NULL), 0);
    cr_expect_eq(route_for(s, GET("/ax"), NULL), -1);
    cr_expect_eq(route_for(s, GET("/x/b/"), NULL), -1);
    mesh_snapshot_unref(s);
}

MATCH_TEST(ignore_case_applies_to_path_prefix_and_regex)
{
    struct mesh_snapshot *s = load("["
        ROUTE("{\"path\": \"/Exact\", \"ignore_case\": true}") ","
        ROUTE("{\"prefix\": \"/Api/\", \"ignore_case\": true}") ","
        ROUTE("{\"regex\": \"/re/[a-c]+\", \"ignore_case\": true}") ","
        ROUTE("{\"prefix\": \"/Case\"}") "]");
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_eq(route_for(s, GET("/eXACT"), NULL), 0);
    cr_expect_eq(route_for(s, GET("/exact?q"), NULL), 0);
    cr_expect_eq(route_for(s, GET("/exactly"), NULL), -1);
    cr_expect_eq(route_for(s, GET("/aPI/users"), NULL), 1);
    cr_expect_eq(route_for(s, GET("/RE/AbC"), NULL), 2);
    cr_expect_eq(route_for(s, GET("/re/abd"), NULL), -1);
    cr_expect_eq(route_for(s, GET("/Case/x"), NULL), 3);
    cr_expect_eq(route_for(s, GET("/case/x"), NULL), -1, "without ignore_case the case counts");
    mesh_snapshot_unref(s);
}

MATCH_TEST(method_scheme_and_authority)
{
    struct mesh_snapshot *s = load("["
        ROUTE("{\"prefix\": \"/\", \"method\": {\"exact\": \"POST\"}}") ","
        ROUTE("{\"prefix\": \"/\", \"scheme\": {\"exact\": \"https\"}}") ","
        ROUTE("{\"prefix\": \"/\", \"authority\": {\"prefix\": \"api.\"}}") ","
        ROUTE("{\"prefix\": \"/\", \"authority\": {\"regex\": \"[a-z]+\\\\.test:[0-9]+\"}}") ","
        ROUTE("{\"prefix\": \"/\", \"method\": {\"regex\": \"P(UT|ATCH)\"}}") "]");
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_eq(route_for(s, "POST http example.com /", NULL), 0);
    cr_expect_eq(route_for(s, "post http example.com /", NULL), -1, "methods are case-sensitive");
    cr_expect_eq(route_for(s, "GET https example.com /", NULL), 1);
    cr_expect_eq(route_for(s, "GET http api.example.com /", NULL), 2);
    cr_expect_eq(route_for(s, "GET http shop.test:8080 /", NULL), 3, "the port is part of it");
    cr_expect_eq(route_for(s, "GET http shop.test /", NULL), -1);
    cr_expect_eq(route_for(s, "PATCH http example.com /", NULL), 4);
    cr_expect_eq(route_for(s, "PATCHX http example.com /", NULL), -1);
    mesh_snapshot_unref(s);
}

MATCH_TEST(absent_method_or_scheme_never_matches)
{
    struct mesh_snapshot *s = load("[" ROUTE("{\"prefix\": \"/\", \"scheme\": {\"prefix\": \"\"}}") "]");
    cr_assert_not_null(s, "%s", errbuf);
    struct mesh_router_req rq = {.path = "/", .path_len = 1};
    cr_expect_null(mesh_router_route(vhost(s), &rq));
    rq.scheme = "http";
    rq.scheme_len = 4;
    cr_expect_not_null(mesh_router_route(vhost(s), &rq));
    mesh_snapshot_unref(s);
}

MATCH_TEST(header_exact_prefix_regex_present_and_invert)
{
    struct mesh_snapshot *s = load("["
        ROUTE("{\"prefix\": \"/\", \"headers\": [{\"name\": \"x-env\", \"exact\": \"canary\"}]}") ","
        ROUTE("{\"prefix\": \"/\", \"headers\": [{\"name\": \"x-env\", \"prefix\": \"blue\"}]}") ","
        ROUTE("{\"prefix\": \"/\", \"headers\": [{\"name\": \"x-env\", \"regex\": \"v[0-9]\"}]}") ","
        ROUTE("{\"prefix\": \"/\", \"headers\": [{\"name\": \"x-debug\", \"present\": true}]}") ","
        ROUTE("{\"prefix\": \"/\", \"headers\": [{\"name\": \"x-user\", \"exact\": \"bot\","
              " \"invert\": true}]}") "]");
    cr_assert_not_null(s, "%s", errbuf);
    /* every request below carries x-user: bot, so that the last route is not a catch-all */
    cr_expect_eq(route_for(s, GET("/"), HDRS("x-env: canary", "x-user: bot")), 0);
    cr_expect_eq(route_for(s, GET("/"), HDRS("X-Env: canary", "x-user: bot")), 0,
                 "header names compare without case");
    cr_expect_eq(route_for(s, GET("/"), HDRS("x-env: Canary", "x-user: bot")), -1,
                 "values compare with case");
    cr_expect_eq(route_for(s, GET("/"), HDRS("x-env: blue-2", "x-user: bot")), 1);
    cr_expect_eq(route_for(s, GET("/"), HDRS("x-env: v7", "x-user: bot")), 2);
    cr_expect_eq(route_for(s, GET("/"), HDRS("x-env: v77", "x-user: bot")), -1, "full match");
    cr_expect_eq(route_for(s, GET("/"), HDRS("x-debug: ", "x-user: bot")), 3,
                 "present holds for an empty value");
    /* invert: the header is absent, or present with another value */
    cr_expect_eq(route_for(s, GET("/"), NULL), 4);
    cr_expect_eq(route_for(s, GET("/"), HDRS("x-user: alice")), 4);
    cr_expect_eq(route_for(s, GET("/"), HDRS("x-user: bot")), -1);
    mesh_snapshot_unref(s);
}

MATCH_TEST(present_inverted_means_absent)
{
    struct mesh_snapshot *s = load("[" ROUTE("{\"prefix\": \"/\", \"headers\": [{\"name\": "
                                            "\"x-internal\", \"present\": true, \"invert\": true}]}") "]");
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_eq(route_for(s, GET("/"), NULL), 0);
    cr_expect_eq(route_for(s, GET("/"), HDRS("x-internal: 1")), -1);
    mesh_snapshot_unref(s);
}

MATCH_TEST(a_repeated_header_matches_on_its_joined_values)
{
    struct mesh_snapshot *s = load("["
        ROUTE("{\"prefix\": \"/\", \"headers\": [{\"name\": \"x-tag\", \"exact\": \"a,b\"}]}") ","
        ROUTE("{\"prefix\": \"/\", \"headers\": [{\"name\": \"x-tag\", \"regex\": \"a,.*,c\"}]}") "]");
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_eq(route_for(s, GET("/"), HDRS("x-tag: a", "x-other: z", "X-Tag: b")), 0);
    cr_expect_eq(route_for(s, GET("/"), HDRS("x-tag: a", "x-tag: b", "x-tag: c")), 1);
    cr_expect_eq(route_for(s, GET("/"), HDRS("x-tag: a")), -1);
    mesh_snapshot_unref(s);
}

MATCH_TEST(query_parameters)
{
    struct mesh_snapshot *s = load("["
        ROUTE("{\"prefix\": \"/\", \"query_params\": [{\"name\": \"v\", \"exact\": \"2\"}]}") ","
        ROUTE("{\"prefix\": \"/\", \"query_params\": [{\"name\": \"user\", \"prefix\": \"adm\"}]}") ","
        ROUTE("{\"prefix\": \"/\", \"query_params\": [{\"name\": \"id\", \"regex\": \"[0-9]+\"}]}") ","
        ROUTE("{\"prefix\": \"/\", \"query_params\": [{\"name\": \"debug\", \"present\": true}]}") ","
        ROUTE("{\"prefix\": \"/\", \"query_params\": [{\"name\": \"q\", \"exact\": \"a%20b\"}]}") "]");
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_eq(route_for(s, GET("/p?v=2"), NULL), 0);
    cr_expect_eq(route_for(s, GET("/p?x=1&v=2&y"), NULL), 0);
    cr_expect_eq(route_for(s, GET("/p?v=3&v=2"), NULL), -1, "the first occurrence counts");
    cr_expect_eq(route_for(s, GET("/p?vv=2"), NULL), -1, "names compare whole");
    cr_expect_eq(route_for(s, GET("/p?user=admin"), NULL), 1);
    cr_expect_eq(route_for(s, GET("/p?id=42"), NULL), 2);
    cr_expect_eq(route_for(s, GET("/p?id=42a"), NULL), -1);
    cr_expect_eq(route_for(s, GET("/p?debug"), NULL), 3, "a parameter without '='");
    cr_expect_eq(route_for(s, GET("/p?a=1&debug="), NULL), 3);
    cr_expect_eq(route_for(s, GET("/p?q=a%20b"), NULL), 4, "values are not decoded");
    cr_expect_eq(route_for(s, GET("/p?q=a b"), NULL), -1);
    cr_expect_eq(route_for(s, GET("/p"), NULL), -1);
    cr_expect_eq(route_for(s, GET("/p?"), NULL), -1);
    mesh_snapshot_unref(s);
}

MATCH_TEST(every_condition_of_a_route_must_hold_and_the_first_route_wins)
{
    struct mesh_snapshot *s = load("["
        ROUTE("{\"prefix\": \"/api\", \"method\": {\"exact\": \"GET\"},"
              " \"headers\": [{\"name\": \"x-v\", \"exact\": \"2\"}],"
              " \"query_params\": [{\"name\": \"beta\", \"present\": true}]}") ","
        ROUTE("{\"prefix\": \"/api\", \"headers\": [{\"name\": \"x-v\", \"exact\": \"2\"}]}") ","
        ROUTE("{\"regex\": \"/api/.*\"}") ","
        ROUTE("{\"prefix\": \"/api/v2\"}") "]");
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_eq(route_for(s, GET("/api/v2?beta"), HDRS("x-v: 2")), 0);
    cr_expect_eq(route_for(s, "POST http h /api/v2?beta", HDRS("x-v: 2")), 1);
    cr_expect_eq(route_for(s, GET("/api/v2"), HDRS("x-v: 2")), 1);
    cr_expect_eq(route_for(s, GET("/api/v2?beta"), NULL), 2, "regex before a longer prefix");
    cr_expect_eq(route_for(s, GET("/api"), NULL), -1);
    mesh_snapshot_unref(s);
}

MATCH_TEST(bad_regexes_are_reported_with_path_message_and_offset)
{
    cr_assert_null(load("["
        ROUTE("{\"regex\": \"/a(b\"}") ","
        ROUTE("{\"prefix\": \"/\", \"headers\": [{\"name\": \"x\", \"regex\": \"[z-a]\"}]}") ","
        ROUTE("{\"prefix\": \"/\", \"method\": {\"regex\": \"*\"}}") ","
        ROUTE("{\"prefix\": \"/\", \"query_params\": [{\"name\": \"q\", \"regex\": \"a{2,1}\"}]}") "]"));
    EXPECT_ERROR(R0 ".regex", "invalid regex: missing closing parenthesis at offset 4");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[1].match.headers[0].regex",
                 "invalid regex: range out of order in character class at offset 3");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[2].match.method.regex",
                 "invalid regex: quantifier does not follow a repeatable item at offset 0");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[3].match.query_params[0].regex",
                 "invalid regex: numbers out of order in {} quantifier at offset 5");
}

MATCH_TEST(path_kind_errors)
{
    cr_assert_null(load("["
        ROUTE("{\"regex\": \"/a\", \"prefix\": \"/\"}") ","
        ROUTE("{\"ignore_case\": true}") ","
        ROUTE("{\"regex\": \"\"}") ","
        ROUTE("{\"prefix\": \"/\", \"ignore_case\": 1}") ","
        ROUTE("{\"regex\": 5}") "]"));
    EXPECT_ERROR(R0, "must have exactly one of \"prefix\", \"path\" or \"regex\"");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[1].match", "exactly one of");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[2].match.regex", "must not be empty");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[3].match.ignore_case",
                 "must be true or false");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[4].match.regex", "must be a string");
}

MATCH_TEST(string_match_errors)
{
    cr_assert_null(load("["
        ROUTE("{\"prefix\": \"/\", \"method\": {\"exact\": \"GET\", \"prefix\": \"G\"}}") ","
        ROUTE("{\"prefix\": \"/\", \"scheme\": {}}") ","
        ROUTE("{\"prefix\": \"/\", \"authority\": {\"present\": true}}") ","
        ROUTE("{\"prefix\": \"/\", \"method\": \"GET\"}") ","
        ROUTE("{\"prefix\": \"/\", \"method\": {\"exact\": 1}}") ","
        ROUTE("{\"prefix\": \"/\", \"method\": {\"regex\": \"\"}}") "]"));
    EXPECT_ERROR(R0 ".method", "must have exactly one of \"exact\", \"prefix\" or \"regex\"");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[1].match.scheme", "exactly one of");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[2].match.authority.present",
                 "unknown field");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[3].match.method", "must be an object");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[4].match.method.exact",
                 "must be a string");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[5].match.method.regex",
                 "must not be empty");
}

MATCH_TEST(header_and_query_match_errors)
{
    cr_assert_null(load("["
        ROUTE("{\"prefix\": \"/\", \"headers\": [{\"name\": \"X-Env\", \"exact\": \"a\"}]}") ","
        ROUTE("{\"prefix\": \"/\", \"headers\": [{\"name\": \":path\", \"exact\": \"a\"}]}") ","
        ROUTE("{\"prefix\": \"/\", \"headers\": [{\"name\": \"x\", \"present\": false}]}") ","
        ROUTE("{\"prefix\": \"/\", \"headers\": [{\"exact\": \"a\", \"regex\": \"b\"}]}") ","
        ROUTE("{\"prefix\": \"/\", \"headers\": [{\"name\": \"x\", \"exact\": \"a\","
              " \"invert\": \"yes\", \"negate\": true}]}") ","
        ROUTE("{\"prefix\": \"/\", \"query_params\": [{\"name\": \"a=b\", \"exact\": \"1\"},"
              " {\"name\": \"c\", \"invert\": true, \"exact\": \"1\"}, 7]}") ","
        ROUTE("{\"prefix\": \"/\", \"headers\": {\"name\": \"x\"}}") ","
        ROUTE("{\"prefix\": \"/\", \"headers\": [{\"name\": \"a b\", \"present\": true}]}") "]"));
    const char *rt = "route_configs[0].virtual_hosts[0].routes";
    char p[200];
#define ERR_AT(i, sub, msg)                                                                        \
    do {                                                                                           \
        snprintf(p, sizeof(p), "%s[%d].match%s", rt, i, sub);                                      \
        EXPECT_ERROR(p, msg);                                                                      \
    } while (0)
    ERR_AT(0, ".headers[0].name", "must be lowercase");
    ERR_AT(1, ".headers[0].name", "pseudo header ':path' is not allowed");
    ERR_AT(2, ".headers[0].present", "must be true");
    ERR_AT(3, ".headers[0].name", "is required");
    ERR_AT(3, ".headers[0]", "must have exactly one of \"exact\", \"prefix\", \"regex\" or \"present\"");
    ERR_AT(4, ".headers[0].invert", "must be true or false");
    ERR_AT(4, ".headers[0].negate", "unknown field");
    ERR_AT(5, ".query_params[0].name", "must not contain '&', '=' or '#'");
    ERR_AT(5, ".query_params[1].invert", "unknown field");
    ERR_AT(5, ".query_params[2]", "must be an object");
    ERR_AT(6, ".headers", "must be an array");
    ERR_AT(7, ".headers[0].name", "is not a valid header name");
#undef ERR_AT
}

MATCH_TEST(empty_header_and_query_arrays_are_no_conditions)
{
    struct mesh_snapshot *s =
        load("[" ROUTE("{\"prefix\": \"/\", \"headers\": [], \"query_params\": []}") "]");
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_eq(route_for(s, GET("/"), NULL), 0);
    mesh_snapshot_unref(s);
}

MATCH_TEST(accepts_checks_one_route)
{
    struct mesh_snapshot *s = load("[" ROUTE("{\"regex\": \"/x/[0-9]+\", \"method\": "
                                            "{\"exact\": \"GET\"}}") "]");
    cr_assert_not_null(s, "%s", errbuf);
    struct req r;
    cr_expect(mesh_router_accepts(&vhost(s)->routes[0], mkreq(&r, NULL, GET("/x/1"), NULL)));
    cr_expect_not(mesh_router_accepts(&vhost(s)->routes[0], mkreq(&r, NULL, GET("/x/a"), NULL)));
    cr_expect_not(mesh_router_accepts(&vhost(s)->routes[0],
                                      mkreq(&r, NULL, "PUT http h /x/1", NULL)));
    cr_expect_not(mesh_router_accepts(NULL, &r.rq));
    mesh_snapshot_unref(s);
}
