/*
 * listeners[].unmatched (docs/snapshot.md): the loader (every field, every error with its
 * path) and the HTTP-port lookup of tcp_proxy.c.
 */
#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include <criterion/criterion.h>
#include "core/snapshot.h"
#include "core/tcp_proxy.h"
#include "../leakcheck.h"

#define UM_TEST(name)                                                                              \
    static void name##_body(void);                                                                 \
    Test(unmatched, name)                                                                          \
    {                                                                                              \
        name##_body();                                                                             \
        mesh_assert_no_leaks();                                                                    \
    }                                                                                              \
    static void name##_body(void)

static struct mesh_err err;
static char errbuf[16384];

/* Listener "l" with <extra> (JSON members); clusters "pt" (passthrough) and "a" (one endpoint). */
static struct mesh_snapshot *parse_listener(const char *extra)
{
    char doc[8192];
    snprintf(doc, sizeof(doc),
             "{\"version\": \"t\","
             " \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\", \"port\": 0 %s}],"
             " \"route_configs\": [{\"name\": \"rc\", \"virtual_hosts\": []}],"
             " \"clusters\": [{\"name\": \"pt\", \"lb_policy\": \"passthrough\"},"
             "   {\"name\": \"a\", \"endpoints\": [{\"address\": \"127.0.0.1\", \"port\": 1}]}]}",
             extra);
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

static void expect_one_error(const char *extra, const char *path, const char *msg)
{
    struct mesh_snapshot *s = parse_listener(extra);
    cr_expect_null(s, "accepted: %s", extra);
    mesh_snapshot_unref(s);
    cr_expect(has_error(path, msg), "expected \"%s: %s\" in:\n%s", path, msg, errbuf);
    cr_expect_eq(err.total, 1, "for %s:\n%s", extra, errbuf);
}

UM_TEST(passthrough_loads_with_sorted_http_ports)
{
    struct mesh_snapshot *s = parse_listener(
        ", \"route_config\": \"rc\", \"unmatched\": {\"action\": \"passthrough\", \"cluster\": "
        "\"pt\", \"http_ports\": [9080, 80, 8080, 80], \"idle_timeout_ms\": 2500}");
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_listener_cfg *l = &s->listeners[0];
    cr_assert_not_null(l->l4, "a listener with unmatched has an l4 block, even without tcp_routes");
    cr_expect_eq(l->l4->n_routes, 0);
    const struct mesh_unmatched *u = &l->l4->unmatched;
    cr_expect_eq(u->action, MESH_UNMATCHED_PASSTHROUGH);
    cr_expect_eq(u->cluster, &s->clusters[0]);
    cr_expect_eq(u->tcp.cluster, u->cluster);
    cr_expect_eq(u->tcp.idle_timeout_ms, 2500);
    cr_assert_not_null(u->http);
    cr_expect_eq(u->http->action, MESH_ACTION_CLUSTER);
    cr_expect_eq(u->http->cluster, u->cluster);
    cr_expect_null(u->http->policy);
    cr_assert_eq(u->n_http_ports, 3, "duplicates are kept once");
    cr_expect_eq(u->http_ports[0], 80);
    cr_expect_eq(u->http_ports[1], 8080);
    cr_expect_eq(u->http_ports[2], 9080);
    cr_expect(mesh_l4_http_port(u, 80));
    cr_expect(mesh_l4_http_port(u, 8080));
    cr_expect(mesh_l4_http_port(u, 9080));
    cr_expect_not(mesh_l4_http_port(u, 79));
    cr_expect_not(mesh_l4_http_port(u, 81));
    cr_expect_not(mesh_l4_http_port(u, 9081));
    cr_expect_not(mesh_l4_http_port(u, 1));
    mesh_snapshot_unref(s);
}

UM_TEST(refuse_and_defaults)
{
    struct mesh_snapshot *s =
        parse_listener(", \"route_config\": \"rc\", \"unmatched\": {\"action\": \"refuse\"}");
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_unmatched *u = &s->listeners[0].l4->unmatched;
    cr_expect_eq(u->action, MESH_UNMATCHED_REFUSE);
    cr_expect_null(u->cluster);
    cr_expect_null(u->http);
    cr_expect_eq(u->n_http_ports, 0);
    cr_expect_not(mesh_l4_http_port(u, 80), "no http_ports: every unknown destination is TCP");
    mesh_snapshot_unref(s);

    /* next to tcp_routes: the same l4 block carries both */
    s = parse_listener(", \"tcp_routes\": [{\"cluster\": \"a\", \"match\": {\"destination_port\":"
                       " 5432}}], \"unmatched\": {\"action\": \"passthrough\", \"cluster\": \"pt\"}");
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_eq(s->listeners[0].l4->n_routes, 1);
    cr_expect_eq(s->listeners[0].l4->unmatched.action, MESH_UNMATCHED_PASSTHROUGH);
    cr_expect_eq(s->listeners[0].l4->unmatched.tcp.idle_timeout_ms, 3600000, "TCP's default");
    mesh_snapshot_unref(s);

    /* without "unmatched": HTTP only, no l4 block (nothing to pay) */
    s = parse_listener(", \"route_config\": \"rc\"");
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_null(s->listeners[0].l4);
    mesh_snapshot_unref(s);
}

UM_TEST(errors_name_the_path)
{
    const char *rc = ", \"route_config\": \"rc\", ";
    char b[512];
#define UM(json) (snprintf(b, sizeof(b), "%s\"unmatched\": %s", rc, json), b)
    expect_one_error(UM("{\"action\": \"allow\"}"), "listeners[0].unmatched.action",
                     "must be \"passthrough\" or \"refuse\"");
    expect_one_error(UM("{}"), "listeners[0].unmatched.action", "");
    expect_one_error(UM("{\"action\": \"passthrough\"}"), "listeners[0].unmatched.cluster", "");
    expect_one_error(UM("{\"action\": \"refuse\", \"cluster\": \"pt\"}"),
                     "listeners[0].unmatched.cluster", "only with action \"passthrough\"");
    expect_one_error(UM("{\"action\": \"passthrough\", \"cluster\": \"a\"}"),
                     "listeners[0].unmatched.cluster", "must have lb_policy \"passthrough\"");
    expect_one_error(UM("{\"action\": \"passthrough\", \"cluster\": \"nope\"}"),
                     "listeners[0].unmatched.cluster", "nope");
    expect_one_error(UM("{\"action\": \"refuse\", \"http_ports\": [80, 0]}"),
                     "listeners[0].unmatched.http_ports[1]", "between 1 and 65535");
    expect_one_error(UM("{\"action\": \"refuse\", \"http_ports\": [65536]}"),
                     "listeners[0].unmatched.http_ports[0]", "between 1 and 65535");
    expect_one_error(UM("{\"action\": \"refuse\", \"http_ports\": [\"80\"]}"),
                     "listeners[0].unmatched.http_ports[0]", "between 1 and 65535");
    expect_one_error(UM("{\"action\": \"refuse\", \"port\": 1}"), "listeners[0].unmatched.port",
                     "");
    expect_one_error(UM("\"passthrough\""), "listeners[0].unmatched", "");
#undef UM
    expect_one_error(", \"handler\": \"api\", \"unmatched\": {\"action\": \"refuse\"}",
                     "listeners[0].unmatched", "not with a handler");
}
