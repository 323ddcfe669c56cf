/*
 * The route index (route_index.c): the literal prefix it files a regex under,
 * that a lookup in a large table only tries the routes that can match, and,
 * above all, that it picks exactly the route a scan in order picks, over many
 * generated tables and requests (a differential test with a fixed seed).
 */
#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include <criterion/criterion.h>
#include "core/proxy-int.h"
#include "core/route_index.h"
#include "core/router.h"
#include "core/snapshot.h"
#include "../leakcheck.h"

static struct mesh_err err;
static char errbuf[16384];

static struct mesh_snapshot *load_doc(const char *routes)
{
    static const char fmt[] =
        "{\"version\": \"t\", \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\","
        " \"port\": 0, \"route_config\": \"rc\"}], \"route_configs\": [{\"name\": \"rc\","
        " \"virtual_hosts\": [{\"name\": \"v\", \"domains\": [\"*\"], \"routes\": %s}]}]}";
    size_t n = strlen(fmt) + strlen(routes) + 1;
    char *doc = malloc(n);
    cr_assert_not_null(doc);
    snprintf(doc, n, fmt, routes);
    struct mesh_snapshot *s = mesh_snapshot_parse(doc, strlen(doc), &err);
    mesh_err_format(&err, errbuf, sizeof(errbuf));
    free(doc);
    return s;
}

/* ---- literal prefixes ---------------------------------------------------------------- */

static const char *literal(const char *re, bool caseless)
{
    static char out[64];
    size_t n = mesh_route_regex_literal(re, caseless, out, sizeof(out) - 1);
    out[n] = '\0';
    return out;
}

Test(match_index, regex_literal_prefix)
{
    cr_expect_str_eq(literal("/api/v[0-9]+", false), "/api/v");
    cr_expect_str_eq(literal("^/api/.*", false), "/api/");
    cr_expect_str_eq(literal("/a\\.b/c", false), "/a.b/c", "escaped punctuation is literal");
    cr_expect_str_eq(literal("/a.b", false), "/a", "'.' is any character");
    cr_expect_str_eq(literal("/ab?", false), "/a", "an optional atom is not certain");
    cr_expect_str_eq(literal("/ab*", false), "/a");
    cr_expect_str_eq(literal("/ab{0,3}", false), "/a");
    cr_expect_str_eq(literal("/ab+c", false), "/ab", "one 'b' is certain, nothing after it");
    cr_expect_str_eq(literal("/a(b|c)", false), "/a", "alternation inside a group");
    cr_expect_str_eq(literal("/a|/b", false), "", "top-level alternation");
    cr_expect_str_eq(literal("/a(?:x)|/b", false), "");
    cr_expect_str_eq(literal("/a[|]b", false), "/a", "'|' in a class is no alternation");
    cr_expect_str_eq(literal("/a\\|b", false), "/a|b");
    cr_expect_str_eq(literal("(?i)/a", false), "");
    cr_expect_str_eq(literal("/a(?x) b", false), "", "extended mode is beyond the scan");
    cr_expect_str_eq(literal("/a\\Q|\\E", false), "");
    cr_expect_str_eq(literal("/a[[:alpha:]|]", false), "");
    cr_expect_str_eq(literal("/a\\d", false), "/a");
    cr_expect_str_eq(literal("/\xc3\xa9t\xc3\xa9", false), "/", "non-ASCII stops the scan");
    cr_expect_str_eq(literal("/ApI/x", true), "/api/x", "caseless: folded");
    cr_expect_str_eq(literal("/ab/desk", true), "/ab/de",
                     "caseless: 'k' and 's' have non-ASCII case partners in UTF-8");
    cr_expect_str_eq(literal("/ab/desk", false), "/ab/desk");
    cr_expect_str_eq(literal("", false), "");
    char small[3];
    cr_expect_eq(mesh_route_regex_literal("/abcdef", false, small, sizeof(small)), 3);
}

/* ---- the index narrows the candidates ------------------------------------------- */

static bool count_candidate(void *arg, size_t i, bool path_known)
{
    (void)i;
    (void)path_known;
    (*(size_t *)arg)++;
    return false;
}

static size_t candidates(const struct mesh_vhost *vh, const char *path)
{
    size_t n = 0;
    size_t r = mesh_route_index_find(vh->index, path, strlen(path), count_candidate, &n,
                                     vh->n_routes);
    cr_expect_eq(r, vh->n_routes);
    return n;
}

LEAK_TEST(match_index, a_lookup_tries_only_routes_that_can_match)
{
    /* 1000 routes: 450 exact, 450 prefix, 100 regex */
    size_t cap = 1 << 20, len = 0;
    char *routes = malloc(cap);
    cr_assert_not_null(routes);
    len += (size_t)snprintf(routes + len, cap - len, "[");
    for (int i = 0; i < 1000; i++) {
        const char *sep = i ? "," : "";
        if (i % 10 == 9)
            len += (size_t)snprintf(routes + len, cap - len,
                                    "%s{\"match\": {\"regex\": \"/re/%d/[a-z]+\"}, "
                                    "\"direct_response\": {\"status\": 200}}", sep, i);
        else
            len += (size_t)snprintf(routes + len, cap - len,
                                    "%s{\"match\": {\"%s\": \"/svc/%d/%s\"}, "
                                    "\"direct_response\": {\"status\": 200}}", sep,
                                    i % 2 ? "prefix" : "path", i, i % 2 ? "" : "exact");
    }
    snprintf(routes + len, cap - len, "]");
    struct mesh_snapshot *s = load_doc(routes);
    free(routes);
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_vhost *vh = &s->route_configs[0].vhosts[0];
    cr_assert_eq(vh->n_routes, 1000);
    cr_assert_not_null(vh->index);
    cr_expect_eq(candidates(vh, "/svc/998/exact"), 1);
    cr_expect_eq(candidates(vh, "/svc/997/anything/below"), 1);
    cr_expect_eq(candidates(vh, "/svc/99/exact"), 0, "\"/svc/99\" is no key");
    cr_expect_eq(candidates(vh, "/re/999/abc"), 1);
    cr_expect_eq(candidates(vh, "/nothing"), 0);

    /* and the router takes them */
    struct mesh_router_req rq = {.path = "/re/999/abc", .path_len = 11};
    const struct mesh_route *r = mesh_router_route(vh, &rq);
    cr_expect_eq(r, &vh->routes[999]);
    rq.path = "/svc/997/x";
    rq.path_len = 10;
    cr_expect_eq(mesh_router_route(vh, &rq), &vh->routes[997]);
    mesh_snapshot_unref(s);
}

/* ---- differential: index against a scan in order ---------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11) % n;
}

/* Path pieces, chosen to collide: case variants, and the UTF-8 characters that PCRE2 folds
 * onto ASCII letters (KELVIN SIGN, LONG S) or that look like them (dotted capital I). */
static const char *const atoms[] = {"/", "a", "b", "k", "s", "A", "K", "S", ".", "-", "i", "I",
                                    "\xe2\x84\xaa", "\xc5\xbf", "\xc4\xb0", "ab", "/a"};
static const char *const tails[] = {"", ".*", "[a-z]*", "(a|b)", "b?", "k+", "s*", "\\d*",
                                    "(?i)ab", "[^/]+", "/.*", "a{0,2}", ".", "(?:K|k)", "|/b.*",
                                    "\\.", "S+", "(/k)?"};

struct buf {
    char *p;
    size_t len, cap;
};

static void put(struct buf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        cr_assert_not_null(b->p);
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

/* <s> as a JSON string body ('"' and '\' escaped). */
static void put_json(struct buf *b, const char *s)
{
    char one[3] = {0};
    for (; *s; s++) {
        one[0] = *s == '"' || *s == '\\' ? '\\' : *s;
        one[1] = *s == '"' || *s == '\\' ? *s : '\0';
        put(b, one);
    }
}

static void random_path(char *out, size_t cap, size_t atoms_max)
{
    out[0] = '/';
    out[1] = '\0';
    size_t n = rnd((uint32_t)atoms_max + 1);
    for (size_t i = 0; i < n; i++) {
        const char *a = atoms[rnd(MESH_ARRAY_LEN(atoms))];
        if (strlen(out) + strlen(a) < cap)
            strcat(out, a);
    }
}

/* A table of 1..40 routes with every kind of path match and a few other conditions. */
static void random_table(struct buf *b, char keys[][64], size_t *n_keys)
{
    size_t n = 1 + rnd(40);
    put(b, "[");
    for (size_t i = 0; i < n; i++) {
        char key[64];
        random_path(key, sizeof(key) - 16, 4);
        snprintf(keys[i], 64, "%s", key);
        put(b, i ? ",{\"match\": {" : "{\"match\": {");
        uint32_t kind = rnd(3);
        if (kind == 2) {
            char re[128];
            snprintf(re, sizeof(re), "%s%s%s", rnd(8) == 0 ? "^" : "", key,
                     tails[rnd(MESH_ARRAY_LEN(tails))]);
            put(b, "\"regex\": \"");
            put_json(b, re);
        } else {
            put(b, kind ? "\"prefix\": \"" : "\"path\": \"");
            put_json(b, key);
        }
        put(b, "\"");
        if (rnd(3) == 0)
            put(b, ", \"ignore_case\": true");
        if (rnd(4) == 0)
            put(b, ", \"headers\": [{\"name\": \"x-v\", \"exact\": \"1\"}]");
        if (rnd(10) == 0)
            put(b, ", \"method\": {\"exact\": \"POST\"}");
        if (rnd(10) == 0)
            put(b, ", \"query_params\": [{\"name\": \"q\", \"present\": true}]");
        put(b, "}, \"direct_response\": {\"status\": 200}}");
    }
    put(b, "]");
    *n_keys = n;
}

/* A request path: random, or a route's key with its case changed and pieces appended. */
static void random_request(char *out, size_t cap, char keys[][64], size_t n_keys)
{
    if (rnd(2)) {
        random_path(out, cap - 8, 6);
    } else {
        snprintf(out, cap - 24, "%s", keys[rnd((uint32_t)n_keys)]);
        for (char *p = out; *p; p++)
            if (rnd(4) == 0 && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
                *p ^= 0x20;
        if (rnd(2)) {
            char tail[32];
            random_path(tail, sizeof(tail), 2);
            strcat(out, tail + rnd(2)); /* with or without its leading '/' */
        }
    }
    static const char *const queries[] = {"", "", "?q", "?x=1&q=2", "?", "?a/b"};
    strcat(out, queries[rnd(MESH_ARRAY_LEN(queries))]);
}

LEAK_TEST(match_index, index_picks_what_a_scan_in_order_picks)
{
    size_t hits = 0, misses = 0, late = 0;
    struct buf b = {0};
    for (int t = 0; t < 300; t++) {
        char keys[41][64];
        size_t n_keys;
        b.len = 0;
        random_table(&b, keys, &n_keys);
        struct mesh_snapshot *s = load_doc(b.p);
        cr_assert_not_null(s, "table %d did not load: %s\n%s", t, errbuf, b.p);
        const struct mesh_vhost *vh = &s->route_configs[0].vhosts[0];
        if (vh->n_routes > 1) /* a single route is scanned */
            cr_assert_not_null(vh->index);
        else
            cr_assert_null(vh->index);
        for (int q = 0; q < 200; q++) {
            char path[160];
            random_request(path, sizeof(path), keys, n_keys);
            struct mesh_header xv = {.name = "X-V", .name_len = 3, .value = "1", .value_len = 1};
            struct mesh_headers hdrs = {.v = &xv, .n = rnd(2), .cap = 1};
            bool post = rnd(4) == 0;
            struct mesh_router_req rq = {.method = post ? "POST" : "GET", .method_len = post ? 4 : 3,
                                         .scheme = "http", .scheme_len = 4, .authority = "h",
                                         .authority_len = 1, .path = path,
                                         .path_len = strlen(path), .headers = &hdrs};
            const struct mesh_route *want = mesh_router_route_scan(vh, &rq);
            const struct mesh_route *got = mesh_router_route(vh, &rq);
            if (got != want) {
                cr_assert_fail("table %d, %s %s%s: index gives route %d, the scan %d\n%s", t,
                               rq.method, path, hdrs.n ? " with x-v: 1" : "",
                               got ? (int)(got - vh->routes) : -1,
                               want ? (int)(want - vh->routes) : -1, b.p);
            }
            if (want) {
                hits++;
                late += want != vh->routes;
            } else {
                misses++;
            }
        }
        mesh_snapshot_unref(s);
    }
    free(b.p);
    /* the generator must exercise both outcomes, and not only the first route */
    cr_expect_gt(hits, 6000, "hits %zu", hits);
    cr_expect_gt(misses, 6000, "misses %zu", misses);
    cr_expect_gt(late, 3000, "matches past the first route %zu", late);
}
