/*
 * match.destination_port (docs/snapshot.md "match"): the inbound listener's
 * routes pick the application port by the connection's original destination
 * port. It is one more condition of a route: first match still wins, through
 * the route index exactly as through a scan.
 */
#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include <criterion/criterion.h>
#include "core/addr.h"
#include "core/router.h"
#include "core/snapshot.h"
#include "../leakcheck.h"

#define DOC_HEAD                                                                                   \
    "{\"version\": \"t\", \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\","           \
    " \"port\": 0, \"route_config\": \"rc\"}],"                                                    \
    " \"route_configs\": [{\"name\": \"rc\", \"virtual_hosts\": [{\"name\": \"v\","                \
    " \"domains\": [\"*\"], \"routes\": ["

#define OK_200 "\"direct_response\": {\"status\": 200}"

static struct mesh_snapshot *parse_ok(const char *doc)
{
    struct mesh_err err;
    struct mesh_snapshot *s = mesh_snapshot_parse(doc, strlen(doc), &err);
    if (!s) {
        char buf[2048];
        mesh_err_format(&err, buf, sizeof(buf));
        cr_assert_fail("rejected: %s", buf);
    }
    return s;
}

/* The cluster the request <path> on a connection to <port> goes to, NULL for a 404. */
static const char *routed(const struct mesh_snapshot *s, uint16_t port, const char *path)
{
    const struct mesh_route_config *rc = &s->route_configs[0];
    struct mesh_router_req rq = {.method = "GET", .method_len = 3, .authority = "reviews:9080",
                                 .authority_len = 12, .path = path, .path_len = strlen(path),
                                 .dst_port = port};
    const struct mesh_route *r = mesh_router_match(rc, &rq);
    const struct mesh_vhost *vh = mesh_router_vhost(rc, rq.authority, rq.authority_len);
    cr_expect_eq(r, mesh_router_route_scan(vh, &rq), "the index and the scan disagree on %u %s",
                 port, path);
    return r ? r->cluster->name : NULL;
}

/* What the compiler emits for a sidecar's workload (compile_inbound.c). */
Test(route_dst_port, inbound_routes_by_port)
{
    struct mesh_snapshot *s = parse_ok(
        DOC_HEAD
        "  {\"match\": {\"prefix\": \"/\", \"destination_port\": 9081},"
        "   \"route\": {\"cluster\": \"inbound|9081||\"}},"
        "  {\"match\": {\"prefix\": \"/\", \"destination_port\": 9090},"
        "   \"route\": {\"cluster\": \"inbound|9090||\"}}]}]}],"
        " \"clusters\": [{\"name\": \"inbound|9081||\", \"endpoints\": []},"
        "  {\"name\": \"inbound|9090||\", \"protocol\": \"http2\", \"endpoints\": []}]}");
    cr_expect_str_eq(routed(s, 9081, "/"), "inbound|9081||");
    cr_expect_str_eq(routed(s, 9090, "/grpc.Svc/Call"), "inbound|9090||");
    cr_expect_null(routed(s, 9080, "/"), "a port the workload does not serve: 404");
    cr_expect_null(routed(s, 0, "/"), "an unknown destination matches no port");
    mesh_snapshot_unref(s);
    mesh_assert_no_leaks();
}

Test(route_dst_port, one_more_condition_keeps_route_order)
{
    struct mesh_snapshot *s = parse_ok(
        DOC_HEAD
        "  {\"match\": {\"prefix\": \"/api\", \"destination_port\": 80},"
        "   \"route\": {\"cluster\": \"a\"}},"
        "  {\"match\": {\"path\": \"/api/x\"}, \"route\": {\"cluster\": \"b\"}},"
        "  {\"match\": {\"prefix\": \"/\", \"destination_port\": 81},"
        "   \"route\": {\"cluster\": \"c\"}},"
        "  {\"match\": {\"regex\": \"/[a-z]+\", \"destination_port\": 82},"
        "   \"route\": {\"cluster\": \"d\"}},"
        "  {\"match\": {\"prefix\": \"/\", \"destination_port\": 82,"
        "   \"headers\": [{\"name\": \"x\", \"exact\": \"1\"}]},"
        "   \"route\": {\"cluster\": \"e\"}}"
        " ]}]}],"
        " \"clusters\": [{\"name\": \"a\", \"endpoints\": []},"
        "  {\"name\": \"b\", \"endpoints\": []},"
        "  {\"name\": \"c\", \"endpoints\": []}, {\"name\": \"d\", \"endpoints\": []},"
        "  {\"name\": \"e\", \"endpoints\": []}]}");
    cr_expect_str_eq(routed(s, 80, "/api/x"), "a");
    cr_expect_str_eq(routed(s, 81, "/api/x"), "b");
    cr_expect_str_eq(routed(s, 81, "/api/y"), "c");
    cr_expect_str_eq(routed(s, 82, "/abc"), "d");
    cr_expect_null(routed(s, 82, "/ABC"), "no x header: e does not hold either");
    cr_expect_null(routed(s, 83, "/api/y"));
    mesh_snapshot_unref(s);
    mesh_assert_no_leaks();
}

Test(route_dst_port, bad_values_are_errors_with_their_path)
{
    const char *doc =
        DOC_HEAD
        "  {\"match\": {\"prefix\": \"/\", \"destination_port\": 0}, " OK_200 "},"
        "  {\"match\": {\"prefix\": \"/\", \"destination_port\": \"80\"}, " OK_200 "},"
        "  {\"match\": {\"prefix\": \"/\", \"destination_port\": 65536}, " OK_200 "}"
        " ]}]}]}";
    struct mesh_err err;
    struct mesh_snapshot *s = mesh_snapshot_parse(doc, strlen(doc), &err);
    cr_assert_null(s);
    char buf[4096];
    mesh_err_format(&err, buf, sizeof(buf));
    for (int i = 0; i < 3; i++) {
        char want[128];
        snprintf(want, sizeof(want),
                 "route_configs[0].virtual_hosts[0].routes[%d].match.destination_port", i);
        cr_expect(strstr(buf, want), "no error at %s in:\n%s", want, buf);
    }
    mesh_assert_no_leaks();
}

Test(route_dst_port, port_of_a_destination)
{
    struct sockaddr_storage ss;
    socklen_t len;
    cr_assert_eq(mesh_addr_parse("10.244.2.1:9081", &ss, &len), 0);
    cr_expect_eq(mesh_router_dst_port(&ss, len), 9081);
    cr_assert_eq(mesh_addr_parse("[::1]:15006", &ss, &len), 0);
    cr_expect_eq(mesh_router_dst_port(&ss, len), 15006);
    cr_expect_eq(mesh_router_dst_port(&ss, 0), 0, "no destination known");
    cr_expect_eq(mesh_router_dst_port(NULL, 0), 0);
}
