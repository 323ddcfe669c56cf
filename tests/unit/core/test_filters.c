/*
 * The built-in filters: their snapshot fields (each error names its JSON
 * path), the route loader's chain order, and the pure parts (header
 * operations, rewrite, CORS origin match, redirect location).
 */
#include "core/common.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "core/arena.h"
#include "core/filter.h"
#include "core/filters/filters-int.h"
#include "core/proxy-int.h"
#include "core/snapshot.h"
#include "../leakcheck.h"

static struct mesh_err err;
static char errbuf[16384];
static char doc[16384];

/* A snapshot with clusters "a" and "b" whose one virtual host has <routes> (a JSON array body). */
static struct mesh_snapshot *parse_routes(const char *routes)
{
    snprintf(doc, sizeof(doc),
             "{\"version\": \"v1\","
             " \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\", \"port\": 0,"
             "                  \"route_config\": \"rc\"}],"
             " \"route_configs\": [{\"name\": \"rc\", \"virtual_hosts\": [{\"name\": \"vh\","
             "     \"domains\": [\"*\"], \"routes\": [%s]}]}],"
             " \"clusters\": [{\"name\": \"a\", \"endpoints\": [{\"address\": \"127.0.0.1\", \"port\": 1}]},"
             "              {\"name\": \"b\", \"endpoints\": [{\"address\": \"127.0.0.1\", \"port\": 2}]}]"
             "}",
             routes);
    struct mesh_snapshot *s = mesh_snapshot_parse(doc, strlen(doc), &err);
    mesh_err_format(&err, errbuf, sizeof(errbuf));
    return s;
}

static bool has_error(const char *path, const char *msg)
{
    for (size_t i = 0; i < err.count; i++)
        if (strcmp(err.e[i].path, path) == 0 && strstr(err.e[i].msg, msg))
            return true;
    return false;
}

#define R0 "route_configs[0].virtual_hosts[0].routes[0]"

/* The route of <routes> must be refused with <msg> at <path>. */
static void expect_error(const char *routes, const char *path, const char *msg)
{
    struct mesh_snapshot *s = parse_routes(routes);
    cr_expect_null(s, "accepted: %s", routes);
    cr_expect(has_error(path, msg), "expected \"%s: %s\" for %s, got:\n%s", path, msg, routes,
              errbuf);
    mesh_snapshot_unref(s);
}

static const struct mesh_route *route_of(const struct mesh_snapshot *s, size_t i)
{
    return &s->route_configs[0].vhosts[0].routes[i];
}

/* ---- The route loader ---- */

LEAK_TEST(filters, route_without_extras_has_no_policy)
{
    struct mesh_snapshot *s = parse_routes("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"}}");
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_null(route_of(s, 0)->policy);
    mesh_snapshot_unref(s);
}

LEAK_TEST(filters, chain_follows_the_documented_order)
{
    struct mesh_snapshot *s = parse_routes(
        "{\"match\": {\"prefix\": \"/\"},"
        " \"response_headers\": {\"set\": {\"x-r\": \"1\"}},"
        " \"request_headers\": {\"add\": {\"x-q\": \"1\"}},"
        " \"fault\": {\"abort\": {\"http_status\": 503, \"percent\": 0}},"
        " \"cors\": {\"allow_origins\": [{\"exact\": \"https://a.example\"}]},"
        " \"route\": {\"cluster\": \"a\", \"rewrite\": {\"prefix\": \"/v2\"}}}");
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_route_policy *p = route_of(s, 0)->policy;
    cr_assert_not_null(p);
    const char *want[] = {"cors", "fault", "rewrite", "request_headers", "response_headers"};
    cr_assert_eq(p->n_filters, 5);
    for (size_t i = 0; i < 5; i++)
        cr_expect_str_eq(p->filters[i].type->name, want[i]);
    cr_expect_null(p->retry);
    cr_expect_eq(p->n_mirrors, 0);
    mesh_snapshot_unref(s);
}

LEAK_TEST(filters, redirect_is_a_third_action)
{
    struct mesh_snapshot *s = parse_routes(
        "{\"match\": {\"prefix\": \"/old\"}, \"redirect\": {\"path\": \"/new\", \"code\": 308}}");
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_route *r = route_of(s, 0);
    cr_expect_eq(r->action, MESH_ACTION_REDIRECT);
    cr_assert_not_null(r->policy);
    cr_assert_eq(r->policy->n_filters, 1);
    cr_expect_str_eq(r->policy->filters[0].type->name, "redirect");
    const struct mesh_redirect_cfg *cfg = r->policy->filters[0].cfg;
    cr_expect_eq(cfg->code, 308);
    cr_expect_str_eq(cfg->path, "/new");
    mesh_snapshot_unref(s);
}

LEAK_TEST(filters, weighted_entries_carry_destination_filters)
{
    struct mesh_snapshot *s = parse_routes(
        "{\"match\": {\"prefix\": \"/\"}, \"route\": {\"weighted_clusters\": ["
        " {\"name\": \"a\", \"weight\": 1, \"request_headers\": {\"set\": {\"x-dest\": \"a\"}},"
        "  \"response_headers\": {\"remove\": [\"server\"]}},"
        " {\"name\": \"b\", \"weight\": 1}]}}");
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_route *r = route_of(s, 0);
    cr_expect_null(r->policy, "destination filters are not the route's");
    cr_assert_eq(r->weighted[0].n_filters, 2);
    cr_expect_str_eq(r->weighted[0].filters[0].type->name, "request_headers");
    cr_expect_str_eq(r->weighted[0].filters[1].type->name, "response_headers");
    cr_expect_eq(r->weighted[1].n_filters, 0);
    cr_expect_null(r->weighted[1].filters);
    mesh_snapshot_unref(s);
}

LEAK_TEST(filters, route_shape_errors)
{
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
                 " \"redirect\": {\"path\": \"/x\"}}",
                 R0, "exactly one of \"route\", \"direct_response\" or \"redirect\"");
    expect_error("{\"match\": {\"prefix\": \"/\"}}", R0, "exactly one of");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"}, \"rewrite\": {}}",
                 R0 ".rewrite", "unknown field");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"weighted_clusters\": ["
                 " {\"name\": \"a\", \"weight\": 1, \"cors\": {}}]}}",
                 R0 ".route.weighted_clusters[0].cors", "unknown field");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"weighted_clusters\": ["
                 " {\"name\": \"a\", \"weight\": 1, \"request_headers\": {\"set\": {\":path\": \"/\"}}}]}}",
                 R0 ".route.weighted_clusters[0].request_headers.set.:path", "pseudo header");
}

/* ---- Header operations ---- */

LEAK_TEST(filters, header_ops_errors_name_their_path)
{
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
                 " \"request_headers\": {\"set\": {\":authority\": \"x\"}}}",
                 R0 ".request_headers.set.:authority", "pseudo header");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
                 " \"request_headers\": {\"remove\": [\"x-ok\", \"Connection\"]}}",
                 R0 ".request_headers.remove[1]", "hop-by-hop header 'connection'");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
                 " \"response_headers\": {\"add\": {\"transfer-encoding\": \"chunked\"}}}",
                 R0 ".response_headers.add.transfer-encoding", "hop-by-hop");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
                 " \"request_headers\": {\"set\": {\"host\": \"x\"}}}",
                 R0 ".request_headers.set.host", "rewrite.authority");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
                 " \"request_headers\": {\"set\": {\"bad name\": \"x\"}}}",
                 R0 ".request_headers.set.bad name", "not a valid header name");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
                 " \"request_headers\": {\"set\": {\"x-a\": \"v\\r\\nx-b: 1\"}}}",
                 R0 ".request_headers.set.x-a", "control characters");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
                 " \"request_headers\": {\"set\": {\"x-a\": 1}}}",
                 R0 ".request_headers.set.x-a", "must be a string");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
                 " \"request_headers\": {\"append\": {}}}",
                 R0 ".request_headers.append", "unknown field");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
                 " \"response_headers\": []}",
                 R0 ".response_headers", "must be an object");
}

static uint32_t count_named(const struct mesh_headers *h, const char *name)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < h->n; i++)
        n += mesh_header_is(&h->v[i], name, strlen(name));
    return n;
}

LEAK_TEST(filters, header_ops_remove_set_add_in_that_order)
{
    struct mesh_snapshot *s = parse_routes(
        "{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
        " \"request_headers\": {\"set\": {\"X-Set\": \"new\"}, \"add\": {\"x-add\": \"two\", \"x-gone\": \"back\"},"
        "                      \"remove\": [\"x-gone\", \"X-Set\"]}}");
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_hdr_ops *ops = route_of(s, 0)->policy->filters[0].cfg;
    cr_expect_str_eq(ops->set[0].name, "x-set", "names are lowercased");
    struct mesh_arena *a = mesh_arena_new(1024, 0);
    struct mesh_headers h = {0};
    mesh_headers_add(a, &h, "X-Set", 5, "old1", 4);
    mesh_headers_add(a, &h, "x-set", 5, "old2", 4);
    mesh_headers_add(a, &h, "x-add", 5, "one", 3);
    mesh_headers_add(a, &h, "X-Gone", 6, "g", 1);
    mesh_headers_add(a, &h, "other", 5, "o", 1);
    mesh_hdr_ops_apply(a, &h, ops);
    cr_expect_eq(count_named(&h, "x-set"), 1, "set replaces every header of the name");
    cr_expect_str_eq(mesh_headers_get(&h, "x-set", 5)->value, "new");
    cr_expect_eq(count_named(&h, "x-add"), 2, "add appends");
    cr_expect_eq(count_named(&h, "x-gone"), 1, "remove runs before add");
    cr_expect_str_eq(mesh_headers_get(&h, "x-gone", 6)->value, "back");
    cr_expect_eq(count_named(&h, "other"), 1);
    cr_expect_eq(h.n, 5);
    mesh_arena_free(a);
    mesh_snapshot_unref(s);
}

/* ---- CORS ---- */

LEAK_TEST(filters, cors_errors_name_their_path)
{
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
                 " \"cors\": {\"allow_origins\": [{\"exact\": \"a\", \"prefix\": \"b\"}]}}",
                 R0 ".cors.allow_origins[0]", "exactly one of");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
                 " \"cors\": {\"allow_origins\": [{\"regex\": \"(\"}]}}",
                 R0 ".cors.allow_origins[0].regex", "invalid regex");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
                 " \"cors\": {\"allow_origins\": [{\"exact\": \"a\"}, {\"prefix\": \"\"}]}}",
                 R0 ".cors.allow_origins[1].prefix", "must not be empty");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
                 " \"cors\": {\"allow_origins\": [7]}}",
                 R0 ".cors.allow_origins[0]", "must be an object");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
                 " \"cors\": {\"unmatched_preflights\": \"drop\"}}",
                 R0 ".cors.unmatched_preflights", "\"forward\" or \"ignore\"");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
                 " \"cors\": {\"allow_methods\": [\"GET\", \"P OST\"]}}",
                 R0 ".cors.allow_methods[1]", "not a valid token");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
                 " \"cors\": {\"max_age_s\": -1}}",
                 R0 ".cors.max_age_s", "between");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
                 " \"cors\": {\"allow_origin\": []}}",
                 R0 ".cors.allow_origin", "unknown field");
}

LEAK_TEST(filters, cors_origin_match_and_joined_values)
{
    struct mesh_snapshot *s = parse_routes(
        "{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
        " \"cors\": {\"allow_origins\": [{\"exact\": \"https://a.example\"},"
        "                              {\"prefix\": \"http://localhost:\"},"
        "                              {\"regex\": \"https://[a-z]+\\\\.b\\\\.example\"}],"
        "          \"allow_methods\": [\"GET\", \"POST\"], \"allow_headers\": [\"x-a\"],"
        "          \"max_age_s\": 600, \"allow_credentials\": true,"
        "          \"unmatched_preflights\": \"ignore\"}}");
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_cors_cfg *cfg = route_of(s, 0)->policy->filters[0].cfg;
    cr_expect_str_eq(cfg->allow_methods, "GET, POST");
    cr_expect_str_eq(cfg->allow_headers, "x-a");
    cr_expect_null(cfg->expose_headers);
    cr_expect_str_eq(cfg->max_age, "600");
    cr_expect(cfg->allow_credentials);
    cr_expect(cfg->ignore_unmatched);
    struct mesh_arena *a = mesh_arena_new(4096, 256 * 1024);
#define ALLOWED(o) mesh_cors_origin_allowed(a, cfg, o, strlen(o))
    cr_expect(ALLOWED("https://a.example"));
    cr_expect_not(ALLOWED("https://a.example.evil"), "exact is exact");
    cr_expect_not(ALLOWED("https://a.exampl"));
    cr_expect(ALLOWED("http://localhost:3000"));
    cr_expect_not(ALLOWED("http://localhost"));
    cr_expect(ALLOWED("https://x.b.example"));
    cr_expect_not(ALLOWED("https://x.b.example.evil"), "a regex matches the whole origin");
    cr_expect_not(ALLOWED("evil https://x.b.example"));
    cr_expect_not(ALLOWED(""));
#undef ALLOWED
    mesh_arena_free(a);
    mesh_snapshot_unref(s);
}

/* ---- Fault ---- */

LEAK_TEST(filters, fault_errors_name_their_path)
{
    const char *pre = "{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"}, \"fault\": ";
    char r[512];
#define FAULT(x) (snprintf(r, sizeof(r), "%s%s}", pre, x), r)
    expect_error(FAULT("{}"), R0 ".fault", "at least one of \"delay\" or \"abort\"");
    expect_error(FAULT("{\"delay\": {\"percent\": 50}}"), R0 ".fault.delay.fixed_delay_ms", "is required");
    expect_error(FAULT("{\"delay\": {\"fixed_delay_ms\": 10, \"percent\": 101}}"), R0 ".fault.delay.percent", "");
    expect_error(FAULT("{\"abort\": {\"percent\": 10}}"), R0 ".fault.abort",
                 "exactly one of \"http_status\" or \"grpc_status\"");
    expect_error(FAULT("{\"abort\": {\"http_status\": 503, \"grpc_status\": 14}}"), R0 ".fault.abort",
                 "exactly one of");
    expect_error(FAULT("{\"abort\": {\"http_status\": 600}}"), R0 ".fault.abort.http_status", "between");
    expect_error(FAULT("{\"abort\": {\"grpc_status\": 17}}"), R0 ".fault.abort.grpc_status", "between");
    expect_error(FAULT("{\"delay\": {\"fixed_delay_ms\": 10, \"fixed_delay\": 1}}"), R0 ".fault.delay.fixed_delay",
                 "unknown field");
#undef FAULT
}

LEAK_TEST(filters, fault_defaults)
{
    struct mesh_snapshot *s = parse_routes(
        "{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\"},"
        " \"fault\": {\"delay\": {\"fixed_delay_ms\": 300}, \"abort\": {\"grpc_status\": 14, \"percent\": 12.5}}}");
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_fault_cfg *f = route_of(s, 0)->policy->filters[0].cfg;
    cr_expect(f->has_delay && f->has_abort);
    cr_expect_eq(f->delay_ms, 300);
    cr_expect_eq(f->delay_percent, 1000000, "percent defaults to 100");
    cr_expect_eq(f->abort_percent, 125000);
    cr_expect_eq(f->grpc_status, 14);
    cr_expect_eq(f->http_status, 0);
    mesh_snapshot_unref(s);
}

/* ---- Rewrite ---- */

LEAK_TEST(filters, rewrite_errors_name_their_path)
{
    const char *pre = "{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\", \"rewrite\": ";
    char r[512];
#define RW(x) (snprintf(r, sizeof(r), "%s%s}}", pre, x), r)
    expect_error(RW("{}"), R0 ".route.rewrite", "must have \"prefix\", \"regex\" or \"authority\"");
    expect_error(RW("{\"prefix\": \"/a\", \"regex\": {\"pattern\": \"a\", \"substitution\": \"b\"}}"),
                 R0 ".route.rewrite", "not have both");
    expect_error(RW("{\"prefix\": \"v2\"}"), R0 ".route.rewrite.prefix", "must start with '/'");
    expect_error(RW("{\"prefix\": \"/a?b\"}"), R0 ".route.rewrite.prefix", "'?'");
    expect_error(RW("{\"regex\": {\"pattern\": \"(a\", \"substitution\": \"b\"}}"),
                 R0 ".route.rewrite.regex.pattern", "invalid regex");
    expect_error(RW("{\"regex\": {\"pattern\": \"/(a)\", \"substitution\": \"/\\\\2\"}}"),
                 R0 ".route.rewrite.regex.substitution", "\\2 refers to a group");
    expect_error(RW("{\"regex\": {\"pattern\": \"a\"}}"), R0 ".route.rewrite.regex.substitution",
                 "is required");
    expect_error(RW("{\"authority\": \"a/b\"}"), R0 ".route.rewrite.authority", "host[:port]");
    expect_error(RW("{\"authority\": \"\"}"), R0 ".route.rewrite.authority", "");
#undef RW
}

/* Rewrites <path> with the rewrite filter of the first route of <routes>. */
static char *rewrite(const char *routes, const char *path)
{
    struct mesh_snapshot *s = parse_routes(routes);
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_route *r = route_of(s, 0);
    const struct mesh_rewrite_cfg *cfg = r->policy->filters[0].cfg;
    struct mesh_arena *a = mesh_arena_new(4096, 256 * 1024);
    size_t n = 0;
    const char *p = mesh_rewrite_path(a, cfg, r, path, strlen(path), &n);
    char *out = p ? strndup(p, n) : strdup("(unchanged)");
    if (p)
        cr_expect_eq(strlen(p), n);
    mesh_arena_free(a);
    mesh_snapshot_unref(s);
    return out;
}

#define EXPECT_REWRITE(routes, in, want)                                                           \
    do {                                                                                           \
        char *got_ = rewrite(routes, in);                                                          \
        cr_expect_str_eq(got_, want, "%s -> %s, want %s", in, got_, want);                         \
        free(got_);                                                                                \
    } while (0)

LEAK_TEST(filters, rewrite_prefix_replaces_what_matched)
{
    const char *r = "{\"match\": {\"prefix\": \"/api/v1\"}, \"route\": {\"cluster\": \"a\","
                    " \"rewrite\": {\"prefix\": \"/v2\"}}}";
    EXPECT_REWRITE(r, "/api/v1/users?id=3", "/v2/users?id=3");
    EXPECT_REWRITE(r, "/api/v1", "/v2");
    EXPECT_REWRITE(r, "/api/v1x", "/v2x");
    const char *exact = "{\"match\": {\"path\": \"/login\"}, \"route\": {\"cluster\": \"a\","
                        " \"rewrite\": {\"prefix\": \"/auth/login\"}}}";
    EXPECT_REWRITE(exact, "/login?next=/home", "/auth/login?next=/home");
}

LEAK_TEST(filters, rewrite_regex_substitutes_every_match)
{
    const char *r = "{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\","
                    " \"rewrite\": {\"regex\": {\"pattern\": \"^/service/([^/]+)(/.*)$\","
                    "                           \"substitution\": \"\\\\2/instance/\\\\1\"}}}}";
    EXPECT_REWRITE(r, "/service/foo/v1/api?x=1", "/v1/api/instance/foo?x=1");
    EXPECT_REWRITE(r, "/other", "(unchanged)");
    const char *g = "{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\","
                    " \"rewrite\": {\"regex\": {\"pattern\": \"o\", \"substitution\": \"0$\"}}}}";
    EXPECT_REWRITE(g, "/foo/boo?o=o", "/f0$0$/b0$0$?o=o");
    const char *strip = "{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\","
                        " \"rewrite\": {\"regex\": {\"pattern\": \"^/strip\", \"substitution\": \"\"}}}}";
    EXPECT_REWRITE(strip, "/strip", "/");
    EXPECT_REWRITE(strip, "/strip/x", "/x");
    /* a long result goes past the first guess of the output size */
    const char *grow = "{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\","
                       " \"rewrite\": {\"regex\": {\"pattern\": \"x\","
                       " \"substitution\": \"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\"}}}}";
    char *got = rewrite(grow, "/xxxxxxxx");
    cr_expect_eq(strlen(got), 1 + 8 * 40, "got %s", got);
    free(got);
}

LEAK_TEST(filters, rewrite_authority_only_keeps_the_path)
{
    struct mesh_snapshot *s = parse_routes(
        "{\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"a\","
        " \"rewrite\": {\"authority\": \"internal.svc:8080\"}}}");
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_rewrite_cfg *cfg = route_of(s, 0)->policy->filters[0].cfg;
    cr_expect_str_eq(cfg->authority, "internal.svc:8080");
    cr_expect_null(cfg->prefix);
    cr_expect_null(cfg->re);
    mesh_snapshot_unref(s);
}

/* ---- Redirect ---- */

LEAK_TEST(filters, redirect_errors_name_their_path)
{
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"redirect\": {\"code\": 304}}", R0 ".redirect.code",
                 "301, 302, 303, 307 or 308");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"redirect\": {\"port\": 0}}", R0 ".redirect.port",
                 "between 1 and 65535");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"redirect\": {\"path\": \"x\"}}", R0 ".redirect.path",
                 "must start with '/'");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"redirect\": {\"scheme\": \"HTTPS\"}}",
                 R0 ".redirect.scheme", "lowercase URI scheme");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"redirect\": {\"authority\": \"a b\"}}",
                 R0 ".redirect.authority", "host[:port]");
    expect_error("{\"match\": {\"prefix\": \"/\"}, \"redirect\": {\"uri\": \"/x\"}}",
                 R0 ".redirect.uri", "unknown field");
}

/* The Location for a request http://<authority><path> and the redirect of <cfg_json>. */
static char *location(const char *cfg_json, const char *scheme, const char *authority,
                      const char *path)
{
    char r[512];
    snprintf(r, sizeof(r), "{\"match\": {\"prefix\": \"/\"}, \"redirect\": %s}", cfg_json);
    struct mesh_snapshot *s = parse_routes(r);
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_redirect_cfg *cfg = route_of(s, 0)->policy->filters[0].cfg;
    struct mesh_arena *a = mesh_arena_new(1024, 0);
    const char *loc = mesh_redirect_location(a, cfg, scheme, authority, strlen(authority), path,
                                             path ? strlen(path) : 0);
    char *out = strdup(loc ? loc : "(null)");
    mesh_arena_free(a);
    mesh_snapshot_unref(s);
    return out;
}

#define EXPECT_LOCATION(cfg, scheme, auth, path, want)                                             \
    do {                                                                                           \
        char *got_ = location(cfg, scheme, auth, path);                                            \
        cr_expect_str_eq(got_, want, "%s on %s://%s%s", cfg, scheme, auth, path);                  \
        free(got_);                                                                                \
    } while (0)

LEAK_TEST(filters, redirect_location)
{
    EXPECT_LOCATION("{}", "http", "a.example", "/x?q=1", "http://a.example/x?q=1");
    EXPECT_LOCATION("{\"path\": \"/new\"}", "http", "a.example:8080", "/old?q=1",
                    "http://a.example:8080/new?q=1");
    EXPECT_LOCATION("{\"scheme\": \"https\"}", "http", "a.example", "/p", "https://a.example/p");
    EXPECT_LOCATION("{\"scheme\": \"https\"}", "http", "a.example:80", "/p", "https://a.example/p");
    EXPECT_LOCATION("{\"scheme\": \"https\"}", "http", "a.example:8080", "/p",
                    "https://a.example:8080/p");
    EXPECT_LOCATION("{\"port\": 8443}", "http", "a.example:80", "/p", "http://a.example:8443/p");
    EXPECT_LOCATION("{\"scheme\": \"https\", \"port\": 443}", "http", "a.example:8080", "/p",
                    "https://a.example/p");
    EXPECT_LOCATION("{\"authority\": \"b.example\"}", "http", "a.example:9000", "/p",
                    "http://b.example/p");
    EXPECT_LOCATION("{\"authority\": \"b.example\", \"port\": 81}", "http", "a.example", "/p",
                    "http://b.example:81/p");
    EXPECT_LOCATION("{\"port\": 8080}", "http", "[::1]:80", "/p", "http://[::1]:8080/p");
    EXPECT_LOCATION("{\"path\": \"/n\"}", "http", "a", NULL, "http://a/n");
}

LEAK_TEST(filters, builtin_types_by_field_name)
{
    const char *names[] = {"cors", "fault", "redirect", "rewrite", "request_headers",
                           "response_headers"};
    for (size_t i = 0; i < MESH_ARRAY_LEN(names); i++) {
        const struct mesh_filter_type *t = mesh_filter_find(names[i]);
        cr_assert_not_null(t, "%s", names[i]);
        cr_expect_str_eq(t->name, names[i]);
        cr_expect_not_null(t->parse);
        cr_expect(t->on_request || t->on_response, "%s does something", names[i]);
    }
    cr_expect_null(mesh_filter_find("lua"));
    cr_expect_null(mesh_filter_find(""));
}
