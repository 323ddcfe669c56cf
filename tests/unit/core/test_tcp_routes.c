/*
 * tcp_routes: the loader (listeners[].tcp_routes, every error with its path) and the
 * route walk of tcp_proxy.c (destination port and address, SNI, order, waiting for
 * the ClientHello), and listeners[].unmatched (ALLOW_ANY / REGISTRY_ONLY).
 */
#include "core/common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <criterion/criterion.h>
#include "core/snapshot.h"
#include "core/tcp_proxy.h"
#include "../leakcheck.h"

#define L4_TEST(name)                                                                              \
    static void name##_body(void);                                                                 \
    Test(tcp_routes, name)                                                                         \
    {                                                                                              \
        name##_body();                                                                             \
        mesh_assert_no_leaks();                                                                    \
    }                                                                                              \
    static void name##_body(void)

static struct mesh_err err;
static char errbuf[16384];

/*
 * A snapshot whose listener "l" has <listener_extra> (JSON members) and the clusters a, b
 * and pt (passthrough, for listeners[].unmatched).
 */
static struct mesh_snapshot *parse_listener(const char *listener_extra)
{
    char doc[8192];
    snprintf(doc, sizeof(doc),
             "{\"version\": \"t\","
             " \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\", \"port\": 0 %s}],"
             " \"route_configs\": [{\"name\": \"rc\", \"virtual_hosts\": []}],"
             " \"clusters\": [{\"name\": \"a\", \"endpoints\": [{\"address\": \"127.0.0.1\","
             "   \"port\": 1}]}, {\"name\": \"b\", \"endpoints\": []},"
             "   {\"name\": \"pt\", \"lb_policy\": \"passthrough\"}]}",
             listener_extra);
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

#define EXPECT_ERROR(path, msg)                                                                    \
    cr_expect(has_error(path, msg), "expected \"%s: %s\" in:\n%s", path, msg, errbuf)

/* Parses a listener that must fail, with exactly one error at <path> containing <msg>. */
static void expect_one_error(const char *extra, const char *path, const char *msg)
{
    struct mesh_snapshot *s = parse_listener(extra);
    cr_expect_null(s, "accepted: %s", extra);
    mesh_snapshot_unref(s);
    EXPECT_ERROR(path, msg);
    cr_expect_eq(err.total, 1, "for %s:\n%s", extra, errbuf);
}

/* ---- Loader ---- */

L4_TEST(loads_every_field)
{
    struct mesh_snapshot *s = parse_listener(
        ", \"route_config\": \"rc\", \"tcp_routes\": ["
        " {\"match\": {\"destination_port\": 9000, \"destination_addresses\": [\"10.1.2.3/8\","
        "   \"fd00::1/16\", \"192.168.0.7\"]}, \"cluster\": \"a\", \"idle_timeout_ms\": 2500},"
        " {\"match\": {\"sni\": [\"A.Example.COM\", \"*.Example.org\"]},"
        "   \"weighted_clusters\": [{\"name\": \"a\", \"weight\": 90}, {\"name\": \"b\","
        "   \"weight\": 10}]},"
        " {\"cluster\": \"b\"}]");
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_listener_cfg *l = &s->listeners[0];
    cr_assert_not_null(l->l4);
    cr_expect_eq(l->route_config, &s->route_configs[0]);
    cr_assert_eq(l->l4->n_routes, 3);
    cr_expect(l->l4->any_sni);
    const struct mesh_tcp_route *r = &l->l4->routes[0];
    cr_expect_eq(r->dst_port, 9000);
    cr_expect_eq(r->cluster, &s->clusters[0]);
    cr_expect_eq(r->idle_timeout_ms, 2500);
    cr_assert_eq(r->n_dst_addrs, 3);
    cr_expect_eq(r->dst_addrs[0].family, AF_INET);
    cr_expect_eq(r->dst_addrs[0].prefix_len, 8);
    cr_expect_arr_eq(r->dst_addrs[0].addr, ((uint8_t[]){10, 0, 0, 0}), 4, "host bits cleared");
    cr_expect_eq(r->dst_addrs[1].family, AF_INET6);
    cr_expect_eq(r->dst_addrs[1].prefix_len, 16);
    cr_expect_arr_eq(r->dst_addrs[1].addr, ((uint8_t[]){0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                        0, 0, 0, 0}), 16);
    cr_expect_eq(r->dst_addrs[2].prefix_len, 32, "a plain address is a /32");
    r = &l->l4->routes[1];
    cr_expect_eq(r->dst_port, 0);
    cr_assert_eq(r->n_sni, 2);
    cr_expect_str_eq(r->sni[0], "a.example.com");
    cr_expect_str_eq(r->sni[1], "*.example.org");
    cr_expect_null(r->cluster);
    cr_assert_eq(r->n_weighted, 2);
    cr_expect_eq(r->weighted[1].cluster, &s->clusters[1]);
    cr_expect_eq(r->total_weight, 100);
    cr_expect_eq(r->idle_timeout_ms, 3600000, "default idle timeout");
    r = &l->l4->routes[2];
    cr_expect_eq(r->n_dst_addrs + r->n_sni + r->dst_port, 0, "no match: everything");
    mesh_snapshot_unref(s);
}

L4_TEST(tcp_only_and_http_only_listeners)
{
    struct mesh_snapshot *s = parse_listener(", \"tcp_routes\": [{\"cluster\": \"a\"}]");
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_null(s->listeners[0].route_config);
    cr_expect_not_null(s->listeners[0].l4);
    cr_expect_not(s->listeners[0].l4->any_sni);
    mesh_snapshot_unref(s);
    s = parse_listener(", \"route_config\": \"rc\", \"tcp_routes\": []");
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_null(s->listeners[0].l4, "an empty tcp_routes is HTTP only");
    mesh_snapshot_unref(s);
}

L4_TEST(listener_kind_errors)
{
    expect_one_error("", "listeners[0].route_config", "is required (or give \"tcp_routes\"");
    expect_one_error(", \"tcp_routes\": []", "listeners[0].tcp_routes",
                     "must have at least one route");
    expect_one_error(", \"handler\": \"api\", \"tcp_routes\": [{\"cluster\": \"a\"}]",
                     "listeners[0]", "has a handler and tcp_routes");
    expect_one_error(", \"tcp_routes\": {}", "listeners[0].tcp_routes", "must be an array");
}

L4_TEST(route_errors_have_paths)
{
    expect_one_error(", \"tcp_routes\": [3]", "listeners[0].tcp_routes[0]", "must be an object");
    expect_one_error(", \"tcp_routes\": [{\"cluster\": \"a\", \"port\": 1}]",
                     "listeners[0].tcp_routes[0].port", "unknown field");
    expect_one_error(", \"tcp_routes\": [{}]", "listeners[0].tcp_routes[0]",
                     "exactly one of \"cluster\" or \"weighted_clusters\"");
    expect_one_error(", \"tcp_routes\": [{\"cluster\": \"a\", \"weighted_clusters\": []}]",
                     "listeners[0].tcp_routes[0]", "exactly one of");
    expect_one_error(", \"tcp_routes\": [{\"cluster\": \"nope\"}]",
                     "listeners[0].tcp_routes[0].cluster", "no cluster named 'nope'");
    expect_one_error(", \"tcp_routes\": [{\"cluster\": \"a\"}, {\"cluster\": \"\"}]",
                     "listeners[0].tcp_routes[1].cluster", "");
    expect_one_error(", \"tcp_routes\": [{\"cluster\": \"a\", \"idle_timeout_ms\": -1}]",
                     "listeners[0].tcp_routes[0].idle_timeout_ms", "must be between");
    expect_one_error(", \"tcp_routes\": [{\"weighted_clusters\": []}]",
                     "listeners[0].tcp_routes[0].weighted_clusters", "at least one cluster");
    expect_one_error(", \"tcp_routes\": [{\"weighted_clusters\": [{\"name\": \"a\", \"weight\": 0},"
                     " {\"name\": \"b\", \"weight\": 0}]}]",
                     "listeners[0].tcp_routes[0].weighted_clusters", "must not all be 0");
    expect_one_error(", \"tcp_routes\": [{\"weighted_clusters\": [{\"name\": \"x\", \"weight\": 1}]}]",
                     "listeners[0].tcp_routes[0].weighted_clusters[0].name", "no cluster named 'x'");
    expect_one_error(", \"tcp_routes\": [{\"weighted_clusters\": [{\"name\": \"a\", \"weight\": 1,"
                     " \"request_headers\": {}}]}]",
                     "listeners[0].tcp_routes[0].weighted_clusters[0].request_headers",
                     "unknown field");
    expect_one_error(", \"tcp_routes\": [{\"weighted_clusters\": [{\"name\": \"b\", \"weight\": 1},"
                     " {\"name\": \"a\", \"weight\": 1000001}]}]",
                     "listeners[0].tcp_routes[0].weighted_clusters[1].weight", "must be between");
}

L4_TEST(match_errors_have_paths)
{
    expect_one_error(", \"tcp_routes\": [{\"match\": {\"port\": 1}, \"cluster\": \"a\"}]",
                     "listeners[0].tcp_routes[0].match.port", "unknown field");
    expect_one_error(", \"tcp_routes\": [{\"match\": {\"destination_port\": 0}, \"cluster\": \"a\"}]",
                     "listeners[0].tcp_routes[0].match.destination_port", "between 1 and 65535");
    expect_one_error(", \"tcp_routes\": [{\"match\": {\"destination_port\": 65536},"
                     " \"cluster\": \"a\"}]",
                     "listeners[0].tcp_routes[0].match.destination_port", "between 1 and 65535");
    static const char *const bad_addrs[] = {"\"10.0.0.0/33\"", "\"::/129\"", "\"10.0.0/8\"",
                                            "\"10.0.0.0/\"", "\"10.0.0.0/+8\"", "\"/8\"",
                                            "\"example.com\"", "\"10.0.0.0/8/8\"", "7"};
    for (size_t i = 0; i < MESH_ARRAY_LEN(bad_addrs); i++) {
        char extra[512];
        snprintf(extra, sizeof(extra),
                 ", \"tcp_routes\": [{\"match\": {\"destination_addresses\": [\"10.0.0.1\", %s]},"
                 " \"cluster\": \"a\"}]",
                 bad_addrs[i]);
        expect_one_error(extra, "listeners[0].tcp_routes[0].match.destination_addresses[1]", "");
    }
    expect_one_error(", \"tcp_routes\": [{\"match\": {\"destination_addresses\": []},"
                     " \"cluster\": \"a\"}]",
                     "listeners[0].tcp_routes[0].match.destination_addresses", "must not be empty");
    static const char *const bad_sni[] = {"\"\"", "\"*\"", "\"*.\"", "\"a..b\"", "\"a.b.\"",
                                          "\"a b\"", "\"a.*.com\"", "\"api.*\"", "\"a:443\"",
                                          "\"**.a.com\"", "1"};
    for (size_t i = 0; i < MESH_ARRAY_LEN(bad_sni); i++) {
        char extra[512];
        snprintf(extra, sizeof(extra),
                 ", \"tcp_routes\": [{\"match\": {\"sni\": [\"ok.com\", %s]}, \"cluster\": \"a\"}]",
                 bad_sni[i]);
        expect_one_error(extra, "listeners[0].tcp_routes[0].match.sni[1]", "");
    }
    expect_one_error(", \"tcp_routes\": [{\"match\": {\"sni\": []}, \"cluster\": \"a\"}]",
                     "listeners[0].tcp_routes[0].match.sni", "must not be empty");
}

/* ---- Route walk ---- */

static struct sockaddr_storage dst;
static socklen_t dst_len;

static void set_dst(const char *ip, uint16_t port)
{
    memset(&dst, 0, sizeof(dst));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&dst;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&dst;
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        dst_len = sizeof(*s4);
    } else {
        cr_assert_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1, "%s", ip);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        dst_len = sizeof(*s6);
    }
}

/* Index of the route taken for <ip>:<port> with <sni> known (-1: none). */
static long route_for(const struct mesh_listener_l4 *l4, const char *ip, uint16_t port,
                      const char *sni)
{
    set_dst(ip, port);
    size_t next = 0;
    bool wait;
    const struct mesh_tcp_route *r = mesh_l4_walk(l4, &dst, dst_len, &next, true, sni, &wait);
    cr_expect_not(wait);
    return r ? (long)(r - l4->routes) : -1;
}

L4_TEST(walk_by_destination)
{
    struct mesh_snapshot *s = parse_listener(
        ", \"tcp_routes\": ["
        " {\"match\": {\"destination_port\": 5432}, \"cluster\": \"a\"},"
        " {\"match\": {\"destination_addresses\": [\"10.0.0.0/8\", \"2001:db8::/32\"]},"
        "   \"cluster\": \"a\"},"
        " {\"match\": {\"destination_addresses\": [\"192.168.1.128/25\"],"
        "   \"destination_port\": 80}, \"cluster\": \"a\"}]");
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_listener_l4 *l4 = s->listeners[0].l4;
    cr_expect_eq(route_for(l4, "127.0.0.1", 5432, NULL), 0);
    cr_expect_eq(route_for(l4, "10.200.3.4", 5432, NULL), 0, "first match wins");
    cr_expect_eq(route_for(l4, "10.200.3.4", 80, NULL), 1);
    cr_expect_eq(route_for(l4, "11.0.0.1", 80, NULL), -1);
    cr_expect_eq(route_for(l4, "2001:db8:ffff::1", 1, NULL), 1);
    cr_expect_eq(route_for(l4, "2001:db9::1", 1, NULL), -1);
    cr_expect_eq(route_for(l4, "::ffff:10.1.1.1", 1, NULL), 1, "IPv4-mapped is IPv4");
    cr_expect_eq(route_for(l4, "192.168.1.200", 80, NULL), 2);
    cr_expect_eq(route_for(l4, "192.168.1.127", 80, NULL), -1, "just outside the /25");
    cr_expect_eq(route_for(l4, "192.168.1.200", 81, NULL), -1, "AND of port and address");
    size_t next = 0;
    bool wait;
    cr_expect_null(mesh_l4_walk(l4, &dst, 0, &next, true, NULL, &wait),
                   "unknown destination matches no condition");
    mesh_snapshot_unref(s);
}

L4_TEST(walk_by_sni_waits_in_order)
{
    struct mesh_snapshot *s = parse_listener(
        ", \"tcp_routes\": ["
        " {\"match\": {\"destination_port\": 1}, \"cluster\": \"a\"},"
        " {\"match\": {\"sni\": [\"a.example.com\"], \"destination_port\": 443}, \"cluster\": \"a\"},"
        " {\"match\": {\"sni\": [\"*.example.com\"]}, \"cluster\": \"a\"},"
        " {\"match\": {\"destination_port\": 443}, \"cluster\": \"b\"}]");
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_listener_l4 *l4 = s->listeners[0].l4;
    bool wait;
    size_t next = 0;
    set_dst("127.0.0.1", 1);
    const struct mesh_tcp_route *r = mesh_l4_walk(l4, &dst, dst_len, &next, false, NULL, &wait);
    cr_expect_eq(r, &l4->routes[0], "a route before any SNI route takes it at once");
    next = 0;
    set_dst("127.0.0.1", 443);
    r = mesh_l4_walk(l4, &dst, dst_len, &next, false, NULL, &wait);
    cr_expect_null(r);
    cr_expect(wait);
    cr_expect_eq(next, 1, "waits at the first SNI route that could match");
    size_t again = next;
    r = mesh_l4_walk(l4, &dst, dst_len, &again, true, "a.example.com", &wait);
    cr_expect_eq(r, &l4->routes[1]);
    again = next;
    r = mesh_l4_walk(l4, &dst, dst_len, &again, true, "x.y.example.com", &wait);
    cr_expect_eq(r, &l4->routes[2], "a wildcard takes several labels");
    again = next;
    r = mesh_l4_walk(l4, &dst, dst_len, &again, true, "example.com", &wait);
    cr_expect_eq(r, &l4->routes[3], "*.example.com does not take example.com");
    again = next;
    r = mesh_l4_walk(l4, &dst, dst_len, &again, true, NULL, &wait);
    cr_expect_eq(r, &l4->routes[3], "no SNI: the next route without one");
    cr_expect_eq(route_for(l4, "127.0.0.1", 8443, "a.example.com"), 2, "port 8443: wildcard");
    cr_expect_eq(route_for(l4, "127.0.0.1", 8443, "a.example.org"), -1);
    mesh_snapshot_unref(s);
}

/* ---- listeners[].unmatched: the loader and the HTTP-port lookup of tcp_proxy.c ---- */

L4_TEST(unmatched_passthrough_loads_with_sorted_http_ports)
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
    cr_expect_eq(u->cluster, &s->clusters[2]);
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

L4_TEST(unmatched_refuse_and_defaults)
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

L4_TEST(unmatched_errors_name_the_path)
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
