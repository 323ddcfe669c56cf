#include "core/common.h"
#include <string.h>
#include <criterion/criterion.h>
#include "core/router.h"

/* Route tables built by hand: the router is tested apart from the loader. */

#define ROUTE_PREFIX(p) {.match = {.kind = MESH_MATCH_PREFIX, .path = (p), .path_len = sizeof(p) - 1}}
#define ROUTE_EXACT(p) {.match = {.kind = MESH_MATCH_EXACT, .path = (p), .path_len = sizeof(p) - 1}}
#define VHOST(n, doms, rts)                                                                        \
    {.name = (n), .domains = (doms), .n_domains = MESH_ARRAY_LEN(doms), .routes = (rts),           \
     .n_routes = MESH_ARRAY_LEN(rts)}

static struct mesh_route no_routes[] = {ROUTE_PREFIX("/")};

static const char *d_any[] = {"*"};
static const char *d_prefix_short[] = {"api.*"};
static const char *d_prefix_long[] = {"api.example.*"};
static const char *d_suffix_short[] = {"*.com"};
static const char *d_suffix_long[] = {"*.example.com"};
static const char *d_exact[] = {"other.org", "api.example.com"};
static const char *d_ipv6[] = {"[::1]"};
static const char *d_ipv4[] = {"127.0.0.1"};

/* "*" first and exact last: precedence must not depend on order */
static struct mesh_vhost vhosts[] = {
    VHOST("any", d_any, no_routes),
    VHOST("prefix_short", d_prefix_short, no_routes),
    VHOST("prefix_long", d_prefix_long, no_routes),
    VHOST("suffix_short", d_suffix_short, no_routes),
    VHOST("suffix_long", d_suffix_long, no_routes),
    VHOST("ipv6", d_ipv6, no_routes),
    VHOST("ipv4", d_ipv4, no_routes),
    VHOST("exact", d_exact, no_routes),
};
static const struct mesh_route_config rc = {.name = "rc", .vhosts = vhosts,
                                            .n_vhosts = MESH_ARRAY_LEN(vhosts)};
/* the same without the catch-all */
static const struct mesh_route_config rc_no_any = {.name = "rc2", .vhosts = vhosts + 1,
                                                   .n_vhosts = MESH_ARRAY_LEN(vhosts) - 1};

static const char *vhost_name(const struct mesh_route_config *c, const char *authority)
{
    const struct mesh_vhost *vh = mesh_router_vhost(c, authority, strlen(authority));
    return vh ? vh->name : "(none)";
}

Test(router, exact_domain_beats_every_wildcard)
{
    cr_expect_str_eq(vhost_name(&rc, "api.example.com"), "exact");
    cr_expect_str_eq(vhost_name(&rc, "other.org"), "exact");
}

Test(router, longest_suffix_wildcard_wins)
{
    cr_expect_str_eq(vhost_name(&rc, "www.example.com"), "suffix_long");
    cr_expect_str_eq(vhost_name(&rc, "www.foo.com"), "suffix_short");
    /* the wildcard matches at least one character: "*.example.com" is not "example.com" */
    cr_expect_str_eq(vhost_name(&rc, "example.com"), "suffix_short");
    cr_expect_str_eq(vhost_name(&rc, ".com"), "any");
}

Test(router, suffix_wildcard_beats_prefix_wildcard)
{
    /* matches both "api.*" and "*.com" */
    cr_expect_str_eq(vhost_name(&rc, "api.foo.com"), "suffix_short");
}

Test(router, longest_prefix_wildcard_wins)
{
    cr_expect_str_eq(vhost_name(&rc, "api.example.org"), "prefix_long");
    cr_expect_str_eq(vhost_name(&rc, "api.internal"), "prefix_short");
    cr_expect_str_eq(vhost_name(&rc, "api."), "any");
}

Test(router, catch_all_is_last)
{
    cr_expect_str_eq(vhost_name(&rc, "unrelated.net"), "any");
    cr_expect_str_eq(vhost_name(&rc, ""), "any");
}

Test(router, port_is_stripped)
{
    cr_expect_str_eq(vhost_name(&rc, "api.example.com:8080"), "exact");
    cr_expect_str_eq(vhost_name(&rc, "www.example.com:443"), "suffix_long");
    cr_expect_str_eq(vhost_name(&rc, "127.0.0.1:15001"), "ipv4");
    cr_expect_str_eq(vhost_name(&rc, "other.org:"), "exact");
}

Test(router, ipv6_authority_keeps_brackets)
{
    cr_expect_str_eq(vhost_name(&rc, "[::1]"), "ipv6");
    cr_expect_str_eq(vhost_name(&rc, "[::1]:80"), "ipv6");
    cr_expect_str_eq(vhost_name(&rc, "[::2]:80"), "any");
    /* an unterminated literal is not split at its colons */
    cr_expect_str_eq(vhost_name(&rc_no_any, "[::1"), "(none)");
}

Test(router, authority_is_case_insensitive)
{
    cr_expect_str_eq(vhost_name(&rc, "API.Example.COM"), "exact");
    cr_expect_str_eq(vhost_name(&rc, "WWW.EXAMPLE.COM:80"), "suffix_long");
    cr_expect_str_eq(vhost_name(&rc, "Api.Example.Org"), "prefix_long");
}

Test(router, authority_length_is_respected)
{
    /* not NUL-terminated where the length ends */
    const char buf[] = "other.orgXYZ";
    const struct mesh_vhost *vh = mesh_router_vhost(&rc, buf, 9);
    cr_assert_not_null(vh);
    cr_expect_str_eq(vh->name, "exact");
}

Test(router, no_matching_vhost_returns_null)
{
    cr_expect_null(mesh_router_vhost(&rc_no_any, "unrelated.net", 13));
    cr_expect_null(mesh_router_vhost(&rc_no_any, NULL, 0));
    cr_expect_null(mesh_router_vhost(NULL, "a", 1));
    struct mesh_router_req rq = {.authority = "unrelated.net", .authority_len = 13, .path = "/",
                                 .path_len = 1};
    cr_expect_null(mesh_router_match(&rc_no_any, &rq));
    cr_expect_null(mesh_router_match(&rc_no_any, NULL));
}

static struct mesh_route routes[] = {
    ROUTE_EXACT("/healthz"),
    ROUTE_PREFIX("/api"),
    ROUTE_PREFIX("/api/v2"), /* shadowed by "/api": first match wins */
    ROUTE_EXACT("/"),
    ROUTE_PREFIX("/static/"),
};
static const char *d_routes[] = {"*"};
static struct mesh_vhost vh_routes = VHOST("r", d_routes, routes);

/* The request view of a GET to <path>; the route tables here have no index (scan). */
static struct mesh_router_req get(const char *path)
{
    return (struct mesh_router_req){.method = "GET", .method_len = 3, .scheme = "http",
                                    .scheme_len = 4, .authority = "x", .authority_len = 1,
                                    .path = path, .path_len = path ? strlen(path) : 0};
}

static int route_index(const char *path)
{
    struct mesh_router_req rq = get(path);
    const struct mesh_route *r = mesh_router_route(&vh_routes, &rq);
    return r ? (int)(r - routes) : -1;
}

Test(router, first_matching_route_wins)
{
    cr_expect_eq(route_index("/api/v2/users"), 1);
    cr_expect_eq(route_index("/healthz"), 0);
}

Test(router, prefix_is_a_plain_string_prefix)
{
    cr_expect_eq(route_index("/api"), 1);
    cr_expect_eq(route_index("/api/x"), 1);
    cr_expect_eq(route_index("/apix"), 1);
    cr_expect_eq(route_index("/ap"), -1);
    cr_expect_eq(route_index("/static/a.css"), 4);
    cr_expect_eq(route_index("/static"), -1);
}

Test(router, exact_path_ignores_the_query)
{
    cr_expect_eq(route_index("/healthz?verbose=1"), 0);
    cr_expect_eq(route_index("/healthz/"), -1);
    cr_expect_eq(route_index("/healthzz"), -1);
    cr_expect_eq(route_index("/?q"), 3);
    cr_expect_eq(route_index("/"), 3);
}

Test(router, prefix_does_not_match_into_the_query)
{
    /* "/ap?i" has path "/ap": the query must not complete the prefix */
    cr_expect_eq(route_index("/ap?i"), -1);
    cr_expect_eq(route_index("/api?x=1"), 1);
}

Test(router, paths_are_case_sensitive)
{
    cr_expect_eq(route_index("/HEALTHZ"), -1);
    cr_expect_eq(route_index("/API"), -1);
}

Test(router, no_matching_route_returns_null)
{
    cr_expect_eq(route_index("/other"), -1);
    cr_expect_eq(route_index(""), -1);
    struct mesh_router_req none = get(NULL), root = get("/");
    cr_expect_null(mesh_router_route(&vh_routes, &none));
    cr_expect_null(mesh_router_route(NULL, &root));
    cr_expect_null(mesh_router_route(&vh_routes, NULL));
}

Test(router, match_combines_both_steps)
{
    struct mesh_vhost one[] = {vh_routes};
    struct mesh_route_config c = {.name = "c", .vhosts = one, .n_vhosts = 1};
    struct mesh_router_req rq = {.authority = "x:1", .authority_len = 3, .path = "/api/v1?y",
                                 .path_len = 9};
    const struct mesh_route *r = mesh_router_match(&c, &rq);
    cr_assert_not_null(r);
    cr_expect_str_eq(r->match.path, "/api");
}
