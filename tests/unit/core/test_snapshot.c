#include "core/common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include "core/arena.h"
#include "core/snapshot.h"

#ifndef MESH_TOP_SRCDIR
#define MESH_TOP_SRCDIR "."
#endif

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/*
 * Criterion ignores a worker's exit status once the test body has returned, so
 * LeakSanitizer's report at exit would not fail anything: every test checks for
 * leaks itself before it returns (SNAPSHOT_TEST).
 */
static void expect_no_leaks(void)
{
#ifdef HAVE_LSAN
    cr_expect_eq(__lsan_do_recoverable_leak_check(), 0, "leak: see the LeakSanitizer report");
#endif
}

#define SNAPSHOT_TEST(name)                                                                        \
    static void name##_body(void);                                                                 \
    Test(snapshot, name)                                                                           \
    {                                                                                              \
        name##_body();                                                                             \
        expect_no_leaks();                                                                         \
    }                                                                                              \
    static void name##_body(void)

static struct mesh_err err;
static char errbuf[16384];

static struct mesh_snapshot *parse(const char *json)
{
    struct mesh_snapshot *s = mesh_snapshot_parse(json, strlen(json), &err);
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

/* A valid document that tests break one field at a time (with %s slots). */
static const char *const minimal =
    "{\"version\": \"v1\","
    " \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\", \"port\": 0,"
    "                  \"route_config\": \"rc\"}],"
    " \"route_configs\": [{\"name\": \"rc\", \"virtual_hosts\": [{\"name\": \"vh\","
    "     \"domains\": [\"*\"], \"routes\": [{\"match\": {\"prefix\": \"/\"},"
    "                                       \"route\": {\"cluster\": \"c\"}}]}]}],"
    " \"clusters\": [{\"name\": \"c\", \"endpoints\": [{\"address\": \"127.0.0.1\", \"port\": 1}]}]"
    "}";

static const char *const full =
    "{\n"
    "  \"version\": \"full-7\",\n"
    "  \"admin\": {\"address\": \"::1\", \"port\": 0},\n"
    "  \"timeouts\": {\"request_ms\": 1, \"idle_ms\": 2, \"stream_idle_ms\": 3,"
    "                 \"drain_ms\": 4294967295},\n"
    "  \"listeners\": [\n"
    "    {\"name\": \"out\", \"address\": \"127.0.0.1\", \"port\": 15001,"
    "     \"route_config\": \"b\"},\n"
    "    {\"name\": \"in\", \"address\": \"::\", \"port\": 15006, \"route_config\": \"a\"}\n"
    "  ],\n"
    "  \"route_configs\": [\n"
    "    {\"name\": \"a\", \"virtual_hosts\": []},\n"
    "    {\"name\": \"b\", \"virtual_hosts\": [\n"
    "      {\"name\": \"web\", \"domains\": [\"Example.COM\", \"*.Example.com\"], \"routes\": [\n"
    "        {\"match\": {\"path\": \"/healthz\"},"
    "         \"direct_response\": {\"status\": 200, \"body\": \"ok\\n\"}},\n"
    "        {\"match\": {\"path\": \"/gone\"}, \"direct_response\": {\"status\": 410}},\n"
    "        {\"match\": {\"prefix\": \"/api\"},"
    "         \"route\": {\"cluster\": \"api\", \"timeout_ms\": 2500}},\n"
    "        {\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"web\"}}\n"
    "      ]}\n"
    "    ]}\n"
    "  ],\n"
    "  \"clusters\": [\n"
    "    {\"name\": \"web\", \"protocol\": \"http1\", \"lb_policy\": \"round_robin\",\n"
    "     \"endpoints\": []},\n"
    "    {\"name\": \"api\", \"protocol\": \"http2\", \"lb_policy\": \"random\",\n"
    "     \"connect_timeout_ms\": 250, \"idle_timeout_ms\": 0, \"max_connections\": 8,\n"
    "     \"max_pending_requests\": 0, \"max_requests_per_connection\": 100,\n"
    "     \"endpoints\": [{\"address\": \"10.0.0.1\", \"port\": 8080, \"weight\": 3},\n"
    "                   {\"address\": \"0:0::1\", \"port\": 9090}]}\n"
    "  ]\n"
    "}\n";

static void setup(void)
{
    mesh_err_init(&err, NULL);
    errbuf[0] = '\0';
}

TestSuite(snapshot, .init = setup);

SNAPSHOT_TEST(example_file_parses_with_defaults)
{
    struct mesh_snapshot *s =
        mesh_snapshot_load_file(MESH_TOP_SRCDIR "/etc/examples/static-proxy.json", &err);
    mesh_err_format(&err, errbuf, sizeof(errbuf));
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_str_eq(s->version, "static-1");
    cr_expect_str_eq(s->admin_address, "127.0.0.1");
    cr_expect_eq(s->admin_port, 15000);
    cr_expect_eq(s->admin_sa.ss_family, AF_INET);
    cr_assert_eq(s->n_listeners, 1);
    cr_expect_str_eq(s->listeners[0].name, "outbound");
    cr_expect_eq(s->listeners[0].port, 15001);
    cr_expect_eq(s->listeners[0].route_config, &s->route_configs[0]);
    cr_expect_eq(ntohs(((struct sockaddr_in *)&s->listeners[0].sa)->sin_port), 15001);
    cr_expect_eq(s->listeners[0].salen, sizeof(struct sockaddr_in));

    cr_expect_eq(s->timeouts.request_ms, 15000);
    cr_expect_eq(s->timeouts.idle_ms, 300000);
    cr_expect_eq(s->timeouts.stream_idle_ms, 300000);
    cr_expect_eq(s->timeouts.drain_ms, 5000);

    cr_assert_eq(s->n_clusters, 1);
    const struct mesh_cluster *c = &s->clusters[0];
    cr_expect_eq(c->index, 0);
    cr_expect_eq(c->protocol, MESH_PROTO_HTTP1);
    cr_expect_eq(c->lb_policy, MESH_LBP_ROUND_ROBIN);
    cr_expect_eq(c->connect_timeout_ms, 1000);
    cr_expect_eq(c->idle_timeout_ms, 60000);
    cr_expect_eq(c->max_connections, 1024);
    cr_expect_eq(c->max_pending_requests, 1024);
    cr_expect_eq(c->max_requests_per_connection, 0);
    cr_assert_eq(c->n_endpoints, 1);
    cr_expect_eq(c->endpoints[0].weight, 1);
    cr_expect_str_eq(c->endpoints[0].key, "127.0.0.1:8080");

    const struct mesh_route *r = &s->route_configs[0].vhosts[0].routes[0];
    cr_expect_eq(r->action, MESH_ACTION_CLUSTER);
    cr_expect_eq(r->cluster, c);
    cr_expect_eq(r->timeout_ms, 0);
    cr_expect_eq(mesh_snapshot_find_cluster(s, "backend"), c);
    cr_expect_null(mesh_snapshot_find_cluster(s, "nope"));
    mesh_snapshot_unref(s);
}

SNAPSHOT_TEST(every_field_is_read)
{
    struct mesh_snapshot *s = parse(full);
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_str_eq(s->version, "full-7");
    cr_expect_str_eq(s->admin_address, "::1");
    cr_expect_eq(s->admin_port, 0);
    cr_expect_eq(s->admin_sa.ss_family, AF_INET6);
    cr_expect_eq(s->admin_salen, sizeof(struct sockaddr_in6));
    cr_expect_eq(s->timeouts.request_ms, 1);
    cr_expect_eq(s->timeouts.idle_ms, 2);
    cr_expect_eq(s->timeouts.stream_idle_ms, 3);
    cr_expect_eq(s->timeouts.drain_ms, UINT32_MAX);

    cr_assert_eq(s->n_listeners, 2);
    cr_expect_eq(s->listeners[0].route_config, &s->route_configs[1]);
    cr_expect_eq(s->listeners[1].route_config, &s->route_configs[0]);
    cr_expect_eq(s->listeners[1].sa.ss_family, AF_INET6);

    const struct mesh_vhost *vh = &s->route_configs[1].vhosts[0];
    cr_assert_eq(vh->n_domains, 2);
    cr_expect_str_eq(vh->domains[0], "example.com");
    cr_expect_str_eq(vh->domains[1], "*.example.com");
    cr_assert_eq(vh->n_routes, 4);
    cr_expect_eq(vh->routes[0].match.kind, MESH_MATCH_EXACT);
    cr_expect_str_eq(vh->routes[0].match.path, "/healthz");
    cr_expect_eq(vh->routes[0].match.path_len, 8);
    cr_expect_eq(vh->routes[0].action, MESH_ACTION_DIRECT);
    cr_expect_eq(vh->routes[0].direct_status, 200);
    cr_expect_str_eq(vh->routes[0].direct_body, "ok\n");
    cr_expect_eq(vh->routes[0].direct_body_len, 3);
    cr_expect_null(vh->routes[1].direct_body);
    cr_expect_eq(vh->routes[1].direct_status, 410);
    cr_expect_eq(vh->routes[2].match.kind, MESH_MATCH_PREFIX);
    cr_expect_eq(vh->routes[2].cluster, &s->clusters[1]);
    cr_expect_eq(vh->routes[2].timeout_ms, 2500);
    cr_expect_eq(vh->routes[3].cluster, &s->clusters[0]);

    const struct mesh_cluster *api = &s->clusters[1];
    cr_expect_eq(s->clusters[0].n_endpoints, 0);
    cr_expect_eq(api->index, 1);
    cr_expect_eq(api->protocol, MESH_PROTO_HTTP2);
    cr_expect_eq(api->lb_policy, MESH_LBP_RANDOM);
    cr_expect_eq(api->connect_timeout_ms, 250);
    cr_expect_eq(api->idle_timeout_ms, 0);
    cr_expect_eq(api->max_connections, 8);
    cr_expect_eq(api->max_pending_requests, 0);
    cr_expect_eq(api->max_requests_per_connection, 100);
    cr_assert_eq(api->n_endpoints, 2);
    cr_expect_eq(api->endpoints[0].weight, 3);
    cr_expect_str_eq(api->endpoints[0].key, "10.0.0.1:8080");
    /* the key is canonical, the address stays as written */
    cr_expect_str_eq(api->endpoints[1].address, "0:0::1");
    cr_expect_str_eq(api->endpoints[1].key, "[::1]:9090");
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&api->endpoints[1].sa;
    cr_expect_eq(sin6->sin6_family, AF_INET6);
    cr_expect_eq(ntohs(sin6->sin6_port), 9090);
    cr_expect(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
    mesh_snapshot_unref(s);
}

SNAPSHOT_TEST(json_is_kept_sorted_compact_and_compressed)
{
    struct mesh_snapshot *s = parse(minimal);
    cr_assert_not_null(s, "%s", errbuf);
    char *text = mesh_snapshot_dump(s, false);
    cr_assert_not_null(text);
    cr_expect_eq(strlen(text), s->json_len);
    cr_expect(strncmp(text, "{\"clusters\":[", 13) == 0, "%s", text);
    cr_expect_null(strchr(text, '\n'), "compact: %s", text);
    /* keys sorted: "version" comes after "route_configs" */
    cr_expect(strstr(text, "\"route_configs\"") < strstr(text, "\"version\""));
    free(text);
    mesh_snapshot_unref(s);
}

SNAPSHOT_TEST(dump_is_sorted_and_indented)
{
    struct mesh_snapshot *s = parse(minimal);
    cr_assert_not_null(s, "%s", errbuf);
    char *text = mesh_snapshot_dump(s, true);
    cr_assert_not_null(text);
    cr_expect(strncmp(text, "{\n  \"clusters\": [", 17) == 0, "%s", text);
    cr_expect(strstr(text, "\"route_configs\"") < strstr(text, "\"version\""));
    /* the same document: it parses again into the same compact text */
    struct mesh_snapshot *again = parse(text);
    cr_assert_not_null(again, "%s", errbuf);
    char *a = mesh_snapshot_dump(s, false), *b = mesh_snapshot_dump(again, false);
    cr_assert(a && b);
    cr_expect_str_eq(a, b);
    free(a);
    free(b);
    mesh_snapshot_unref(again);
    free(text);
    mesh_snapshot_unref(s);
}

SNAPSHOT_TEST(big_repetitive_document_is_kept_small)
{
    /* 500 clusters of one endpoint each: the kept copy is a small part of the text */
    size_t cap = 500 * 200 + 256, n = 0;
    char *doc = malloc(cap);
    cr_assert_not_null(doc);
    n += (size_t)snprintf(doc + n, cap - n, "{\"version\": \"v\", \"listeners\": [{\"name\": \"l\", "
                          "\"address\": \"127.0.0.1\", \"port\": 0, \"handler\": \"h\"}], \"clusters\": [");
    for (int i = 0; i < 500; i++)
        n += (size_t)snprintf(doc + n, cap - n,
                              "%s{\"name\": \"outbound|80||svc%d.ns%d.svc.cluster.local\", "
                              "\"endpoints\": [{\"address\": \"10.1.%d.%d\", \"port\": 8080}]}",
                              i ? ", " : "", i, i % 10, i / 256, i % 256);
    n += (size_t)snprintf(doc + n, cap - n, "]}");
    cr_assert_lt(n, cap);
    struct mesh_snapshot *s = parse(doc);
    free(doc);
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_lt(s->json_lz_len * 4, s->json_len, "%zu of %zu", s->json_lz_len, s->json_len);
    char *text = mesh_snapshot_dump(s, false);
    cr_assert_not_null(text);
    cr_expect_not_null(strstr(text, "\"address\":\"10.1.1.243\""));
    cr_expect_not_null(strstr(text, "svc499.ns9.svc.cluster.local"));
    free(text);
    mesh_snapshot_unref(s);
}

SNAPSHOT_TEST(syntax_error_has_line_and_column)
{
    cr_assert_null(parse("{\n  \"version\": \"v\",\n  oops\n}"));
    cr_assert_eq(err.count, 1);
    cr_expect_eq(err.e[0].line, 3);
    cr_expect_gt(err.e[0].col, 0);
    cr_expect_str_eq(err.e[0].path, "");
    cr_expect(strstr(err.e[0].msg, "invalid JSON") != NULL, "%s", err.e[0].msg);
}

SNAPSHOT_TEST(duplicate_key_is_a_syntax_error)
{
    cr_assert_null(parse("{\"version\": \"a\",\n \"version\": \"b\"}"));
    cr_assert_eq(err.count, 1);
    cr_expect_eq(err.e[0].line, 2);
    cr_expect(strstr(err.e[0].msg, "duplicate") != NULL, "%s", err.e[0].msg);
}

SNAPSHOT_TEST(empty_and_trailing_garbage_are_rejected)
{
    cr_expect_null(mesh_snapshot_parse("", 0, &err));
    cr_expect_eq(err.count, 1);
    cr_expect_str_eq(err.e[0].msg, "the document is empty");
    cr_expect_null(mesh_snapshot_parse(NULL, 0, &err));
    cr_expect_null(parse("{} {}"));
    cr_expect_eq(err.count, 1);
    cr_expect_null(parse("{\"version\": \"a\\u0000b\"}"));
    cr_expect_eq(err.count, 1);
}

SNAPSHOT_TEST(top_level_must_be_an_object)
{
    cr_assert_null(parse("[1, 2]"));
    cr_assert_eq(err.count, 1);
    cr_expect(strstr(err.e[0].msg, "object") != NULL);
}

SNAPSHOT_TEST(unknown_fields_are_errors_everywhere)
{
    cr_assert_null(parse(
        "{\"version\": \"v\", \"extra\": 1,"
        " \"admin\": {\"address\": \"127.0.0.1\", \"port\": 1, \"tls\": true},"
        " \"timeouts\": {\"connect_ms\": 1},"
        " \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\", \"port\": 0,"
        "                  \"route_config\": \"rc\", \"backlog\": 5}],"
        " \"route_configs\": [{\"name\": \"rc\", \"x\": 0, \"virtual_hosts\": [{\"name\": \"v\","
        "     \"domains\": [\"*\"], \"cors\": {}, \"routes\": [{\"match\": {\"prefix\": \"/\","
        "     \"header\": []}, \"route\": {\"cluster\": \"c\", \"retries\": 3}, \"rbac\": 1},"
        "     {\"match\": {\"path\": \"/x\"},"
        "      \"direct_response\": {\"status\": 200, \"h\": 1}}]}]}],"
        " \"clusters\": [{\"name\": \"c\", \"tls\": {}, \"endpoints\": [{\"address\": \"::1\","
        "     \"port\": 1, \"zone\": \"a\"}]}]}"));
    EXPECT_ERROR("extra", "unknown field");
    EXPECT_ERROR("admin.tls", "unknown field");
    EXPECT_ERROR("timeouts.connect_ms", "unknown field");
    EXPECT_ERROR("listeners[0].backlog", "unknown field");
    EXPECT_ERROR("route_configs[0].x", "unknown field");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].cors", "unknown field");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[0].match.header", "unknown field");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[0].route.retries", "unknown field");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[0].rbac", "unknown field");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[1].direct_response.h",
                 "unknown field");
    EXPECT_ERROR("clusters[0].tls", "unknown field");
    EXPECT_ERROR("clusters[0].endpoints[0].zone", "unknown field");
    cr_expect_eq(err.total, 12, "%s", errbuf);
}

SNAPSHOT_TEST(required_fields_are_reported)
{
    cr_assert_null(parse(
        "{\"admin\": {},"
        " \"listeners\": [{}],"
        " \"route_configs\": [{\"virtual_hosts\": [{\"routes\": [{\"route\": {}}]}]}],"
        " \"clusters\": [{\"endpoints\": [{}]}]}"));
    EXPECT_ERROR("version", "is required");
    EXPECT_ERROR("admin.address", "is required");
    EXPECT_ERROR("admin.port", "is required");
    EXPECT_ERROR("listeners[0].name", "is required");
    EXPECT_ERROR("listeners[0].address", "is required");
    EXPECT_ERROR("listeners[0].port", "is required");
    EXPECT_ERROR("listeners[0].route_config", "is required");
    EXPECT_ERROR("route_configs[0].name", "is required");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].name", "is required");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].domains", "is required");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[0].match", "is required");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[0].route",
                 "exactly one of \"cluster\" or \"weighted_clusters\"");
    EXPECT_ERROR("clusters[0].name", "is required");
    EXPECT_ERROR("clusters[0].endpoints[0].address", "is required");
    EXPECT_ERROR("clusters[0].endpoints[0].port", "is required");
}

SNAPSHOT_TEST(listeners_are_required_and_not_empty)
{
    cr_assert_null(parse("{\"version\": \"v\"}"));
    EXPECT_ERROR("listeners", "is required");
    cr_assert_null(parse("{\"version\": \"v\", \"listeners\": []}"));
    EXPECT_ERROR("listeners", "at least one listener");
}

SNAPSHOT_TEST(wrong_types_are_reported)
{
    cr_assert_null(parse(
        "{\"version\": 1, \"admin\": [], \"timeouts\": {\"request_ms\": \"10s\"},"
        " \"listeners\": [\"l\"], \"route_configs\": {}, \"clusters\": [{\"name\": \"c\","
        " \"endpoints\": [{\"address\": \"127.0.0.1\", \"port\": 80.0, \"weight\": true}],"
        " \"protocol\": 2}]}"));
    EXPECT_ERROR("version", "must be a string");
    EXPECT_ERROR("admin", "must be an object");
    EXPECT_ERROR("timeouts.request_ms", "must be an integer");
    EXPECT_ERROR("listeners[0]", "must be an object");
    EXPECT_ERROR("route_configs", "must be an array");
    EXPECT_ERROR("clusters[0].endpoints[0].port", "must be an integer");
    EXPECT_ERROR("clusters[0].endpoints[0].weight", "must be an integer");
    EXPECT_ERROR("clusters[0].protocol", "must be a string");
}

SNAPSHOT_TEST(ranges_are_checked)
{
    cr_assert_null(parse(
        "{\"version\": \"\", \"admin\": {\"address\": \"127.0.0.1\", \"port\": 65536},"
        " \"timeouts\": {\"idle_ms\": -1, \"drain_ms\": 4294967296},"
        " \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\", \"port\": -1,"
        "                  \"route_config\": \"rc\"}],"
        " \"route_configs\": [{\"name\": \"rc\", \"virtual_hosts\": [{\"name\": \"v\","
        "     \"domains\": [\"*\"], \"routes\": ["
        "     {\"match\": {\"path\": \"/a\"}, \"direct_response\": {\"status\": 199}},"
        "     {\"match\": {\"path\": \"/b\"}, \"direct_response\": {\"status\": 600}},"
        "     {\"match\": {\"path\": \"/c\"}, \"route\": {\"cluster\": \"c\", \"timeout_ms\": -5}}"
        "     ]}]}],"
        " \"clusters\": [{\"name\": \"c\", \"connect_timeout_ms\": 0, \"max_connections\": 0,"
        "     \"endpoints\": [{\"address\": \"127.0.0.1\", \"port\": 80},"
        "                     {\"address\": \"127.0.0.2\", \"port\": 0, \"weight\": 0}]}]}"));
    EXPECT_ERROR("version", "must not be empty");
    EXPECT_ERROR("admin.port", "must be between 0 and 65535");
    EXPECT_ERROR("timeouts.idle_ms", "must be between 0 and 4294967295");
    EXPECT_ERROR("timeouts.drain_ms", "must be between 0 and 4294967295");
    EXPECT_ERROR("listeners[0].port", "must be between 0 and 65535");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[0].direct_response.status",
                 "must be between 200 and 599");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[1].direct_response.status",
                 "must be between 200 and 599");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[2].route.timeout_ms",
                 "must be between 0 and 4294967295");
    EXPECT_ERROR("clusters[0].connect_timeout_ms", "must be between 1 and 4294967295");
    EXPECT_ERROR("clusters[0].max_connections", "must be between 1 and 4294967295");
    EXPECT_ERROR("clusters[0].endpoints[1].port", "must be between 1 and 65535");
    EXPECT_ERROR("clusters[0].endpoints[1].weight", "must be between 1 and 4294967295");
    cr_expect_eq(err.total, 12, "%s", errbuf);
}

SNAPSHOT_TEST(error_lines_name_file_and_path)
{
    static const char *const doc =
        "{\"version\": \"v\", \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\","
        " \"port\": 1, \"route_config\": \"rc\"}],"
        " \"route_configs\": [{\"name\": \"rc\", \"virtual_hosts\": []}],"
        " \"clusters\": [{\"name\": \"c\", \"endpoints\": [{\"address\": \"127.0.0.1\","
        " \"port\": 1}, {\"address\": \"127.0.0.1\", \"port\": 70000}]}]}";
    char tmpl[] = "/tmp/test_snapshot_XXXXXX";
    int fd = mkstemp(tmpl);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs(doc, f);
    fclose(f);
    cr_expect_null(mesh_snapshot_load_file(tmpl, &err));
    unlink(tmpl);
    mesh_err_format(&err, errbuf, sizeof(errbuf));
    char want[256];
    snprintf(want, sizeof(want), "%s: clusters[0].endpoints[1].port: must be between 1 and 65535\n",
             tmpl);
    cr_expect_str_eq(errbuf, want);
}

SNAPSHOT_TEST(missing_file_is_reported_with_its_name)
{
    cr_assert_null(mesh_snapshot_load_file("/nonexistent/snap.json", &err));
    mesh_err_format(&err, errbuf, sizeof(errbuf));
    cr_expect(strstr(errbuf, "/nonexistent/snap.json: cannot open: No such file") == errbuf,
              "%s", errbuf);
}

SNAPSHOT_TEST(references_must_resolve)
{
    cr_assert_null(parse(
        "{\"version\": \"v\","
        " \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\", \"port\": 1,"
        "                  \"route_config\": \"nope\"}],"
        " \"route_configs\": [{\"name\": \"rc\", \"virtual_hosts\": [{\"name\": \"v\","
        "     \"domains\": [\"*\"], \"routes\": [{\"match\": {\"prefix\": \"/\"},"
        "     \"route\": {\"cluster\": \"missing\"}}]}]}]}"));
    EXPECT_ERROR("listeners[0].route_config", "no route config named 'nope'");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[0].route.cluster",
                 "no cluster named 'missing'");
    cr_expect_eq(err.total, 2, "%s", errbuf);
}

SNAPSHOT_TEST(names_must_be_unique)
{
    cr_assert_null(parse(
        "{\"version\": \"v\","
        " \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\", \"port\": 0,"
        "                  \"route_config\": \"rc\"},"
        "                 {\"name\": \"l\", \"address\": \"127.0.0.1\", \"port\": 0,"
        "                  \"route_config\": \"rc\"}],"
        " \"route_configs\": [{\"name\": \"rc\", \"virtual_hosts\": ["
        "     {\"name\": \"v\", \"domains\": [\"a.com\"], \"routes\": []},"
        "     {\"name\": \"v\", \"domains\": [\"A.com\"], \"routes\": []}]},"
        "   {\"name\": \"rc\", \"virtual_hosts\": []}],"
        " \"clusters\": [{\"name\": \"c\"}, {\"name\": \"c\"}]}"));
    EXPECT_ERROR("listeners[1].name", "duplicate listener name 'l'");
    EXPECT_ERROR("route_configs[1].name", "duplicate route config name 'rc'");
    EXPECT_ERROR("route_configs[0].virtual_hosts[1].name", "duplicate virtual host name 'v'");
    EXPECT_ERROR("route_configs[0].virtual_hosts[1].domains[0]", "duplicate domain 'a.com'");
    EXPECT_ERROR("clusters[1].name", "duplicate cluster name 'c'");
    cr_expect_eq(err.total, 5, "%s", errbuf);
}

SNAPSHOT_TEST(route_needs_exactly_one_match_and_one_action)
{
    cr_assert_null(parse(
        "{\"version\": \"v\","
        " \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\", \"port\": 0,"
        "                  \"route_config\": \"rc\"}],"
        " \"route_configs\": [{\"name\": \"rc\", \"virtual_hosts\": [{\"name\": \"v\","
        "     \"domains\": [\"*\"], \"routes\": ["
        "     {\"match\": {\"prefix\": \"/\", \"path\": \"/\"}, \"route\": {\"cluster\": \"c\"}},"
        "     {\"match\": {}, \"route\": {\"cluster\": \"c\"}},"
        "     {\"match\": {\"prefix\": \"/\"}, \"route\": {\"cluster\": \"c\"},"
        "      \"direct_response\": {\"status\": 200}},"
        "     {\"match\": {\"prefix\": \"/\"}},"
        "     {\"match\": {\"prefix\": \"x\"}, \"route\": {\"cluster\": \"c\"}},"
        "     {\"match\": {\"path\": \"/a?b\"}, \"route\": {\"cluster\": \"c\"}}"
        "     ]}]}],"
        " \"clusters\": [{\"name\": \"c\"}]}"));
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[0].match", "exactly one of");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[1].match", "exactly one of");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[2]", "exactly one of");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[3]", "exactly one of");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[4].match.prefix", "start with '/'");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[5].match.path", "'?'");
    cr_expect_eq(err.total, 6, "%s", errbuf);
}

SNAPSHOT_TEST(addresses_must_be_numeric)
{
    cr_assert_null(parse(
        "{\"version\": \"v\","
        " \"admin\": {\"address\": \"localhost\", \"port\": 0},"
        " \"listeners\": [{\"name\": \"l\", \"address\": \"[::1]\", \"port\": 0,"
        "                  \"route_config\": \"rc\"}],"
        " \"route_configs\": [{\"name\": \"rc\", \"virtual_hosts\": []}],"
        " \"clusters\": [{\"name\": \"c\", \"endpoints\": ["
        "     {\"address\": \"backend.svc\", \"port\": 80},"
        "     {\"address\": \"0.0.0.0\", \"port\": 80},"
        "     {\"address\": \"1.2.3\", \"port\": 80}]}]}"));
    EXPECT_ERROR("admin.address", "numeric IPv4 or IPv6");
    EXPECT_ERROR("listeners[0].address", "numeric IPv4 or IPv6");
    EXPECT_ERROR("clusters[0].endpoints[0].address", "numeric IPv4 or IPv6");
    EXPECT_ERROR("clusters[0].endpoints[1].address", "unspecified");
    EXPECT_ERROR("clusters[0].endpoints[2].address", "numeric IPv4 or IPv6");
    cr_expect_eq(err.total, 5, "%s", errbuf);
}

SNAPSHOT_TEST(duplicate_endpoints_and_listener_ports_are_rejected)
{
    cr_assert_null(parse(
        "{\"version\": \"v\", \"admin\": {\"address\": \"127.0.0.1\", \"port\": 15000},"
        " \"listeners\": ["
        "   {\"name\": \"a\", \"address\": \"127.0.0.1\","
        "    \"port\": 15001, \"route_config\": \"rc\"},"
        "   {\"name\": \"b\", \"address\": \"127.0.0.1\","
        "    \"port\": 15001, \"route_config\": \"rc\"},"
        "   {\"name\": \"c\", \"address\": \"127.0.0.1\","
        "    \"port\": 15000, \"route_config\": \"rc\"},"
        "   {\"name\": \"d\", \"address\": \"127.0.0.1\", \"port\": 0, \"route_config\": \"rc\"},"
        "   {\"name\": \"e\", \"address\": \"127.0.0.1\", \"port\": 0, \"route_config\": \"rc\"}],"
        " \"route_configs\": [{\"name\": \"rc\", \"virtual_hosts\": []}],"
        " \"clusters\": [{\"name\": \"c\", \"endpoints\": ["
        "     {\"address\": \"::1\", \"port\": 80}, {\"address\": \"0::1\", \"port\": 80}]}]}"));
    EXPECT_ERROR("listeners[1]", "already used by listeners[0]");
    EXPECT_ERROR("listeners[2]", "already used by admin");
    EXPECT_ERROR("clusters[0].endpoints[1]", "duplicate endpoint [::1]:80");
    cr_expect_eq(err.total, 3, "%s", errbuf);
}

SNAPSHOT_TEST(domains_are_checked)
{
    cr_assert_null(parse(
        "{\"version\": \"v\","
        " \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\", \"port\": 0,"
        "                  \"route_config\": \"rc\"}],"
        " \"route_configs\": [{\"name\": \"rc\", \"virtual_hosts\": ["
        "   {\"name\": \"a\", \"domains\": [], \"routes\": []},"
        "   {\"name\": \"b\", \"domains\": [\"a*b.com\", \"**\", \"x.com:80\", \"\", 5,"
        "                                  \"a b\", \"[::1]:80\"], \"routes\": []},"
        "   {\"name\": \"c\", \"domains\": [\"[::1]\", \"*-bar.com\", \"foo-*\"],"
        "    \"routes\": []}]}]}"));
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].domains", "must not be empty");
    EXPECT_ERROR("route_configs[0].virtual_hosts[1].domains[0]", "'*'");
    EXPECT_ERROR("route_configs[0].virtual_hosts[1].domains[1]", "'*'");
    EXPECT_ERROR("route_configs[0].virtual_hosts[1].domains[2]", "without a port");
    EXPECT_ERROR("route_configs[0].virtual_hosts[1].domains[3]", "non-empty string");
    EXPECT_ERROR("route_configs[0].virtual_hosts[1].domains[4]", "non-empty string");
    EXPECT_ERROR("route_configs[0].virtual_hosts[1].domains[5]", "spaces");
    EXPECT_ERROR("route_configs[0].virtual_hosts[1].domains[6]", "without a port");
    cr_expect_eq(err.total, 8, "%s", errbuf);
}

SNAPSHOT_TEST(several_errors_are_all_reported)
{
    cr_assert_null(parse(
        "{\"version\": \"v\", \"colour\": \"blue\","
        " \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\", \"port\": 99999,"
        "                  \"route_config\": \"rc\"}],"
        " \"route_configs\": [{\"name\": \"rc\", \"virtual_hosts\": [{\"name\": \"v\","
        "     \"domains\": [\"*\"], \"routes\": [{\"match\": {\"prefix\": \"/\"},"
        "     \"route\": {\"cluster\": \"ghost\"}}]}]}],"
        " \"clusters\": [{\"name\": \"c\", \"protocol\": \"http3\", \"lb_policy\": \"fastest\","
        "     \"endpoints\": [{\"address\": \"127.0.0.1\", \"port\": 1},"
        "                     {\"address\": \"127.0.0.1\", \"port\": 0}]}]}"));
    EXPECT_ERROR("colour", "unknown field");
    EXPECT_ERROR("listeners[0].port", "must be between 0 and 65535");
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[0].route.cluster", "no cluster");
    EXPECT_ERROR("clusters[0].protocol", "\"http1\" or \"http2\"");
    EXPECT_ERROR("clusters[0].lb_policy", "\"round_robin\", \"random\"");
    EXPECT_ERROR("clusters[0].endpoints[1].port", "must be between 1 and 65535");
    cr_expect_eq(err.total, 6, "%s", errbuf);
    cr_expect_eq(err.count, 6);
}

SNAPSHOT_TEST(error_list_saturates_but_counts_everything)
{
    char doc[8192];
    int off = snprintf(doc, sizeof(doc), "{\"version\": \"v\"");
    for (int i = 0; i < 100; i++)
        off += snprintf(doc + off, sizeof(doc) - (size_t)off, ", \"x%d\": 0", i);
    snprintf(doc + off, sizeof(doc) - (size_t)off, "}");
    cr_assert_null(parse(doc));
    cr_expect_eq(err.count, MESH_ERR_MAX);
    cr_expect_eq(err.total, 101); /* 100 unknown fields and the missing listeners */
    cr_expect(strstr(errbuf, "more errors") != NULL);
}

SNAPSHOT_TEST(zero_endpoints_and_ephemeral_ports_are_valid)
{
    struct mesh_snapshot *s = parse(
        "{\"version\": \"v\", \"admin\": {\"address\": \"127.0.0.1\", \"port\": 0},"
        " \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\", \"port\": 0,"
        "                  \"route_config\": \"rc\"}],"
        " \"route_configs\": [{\"name\": \"rc\", \"virtual_hosts\": [{\"name\": \"v\","
        "     \"domains\": [\"*\"], \"routes\": [{\"match\": {\"prefix\": \"/\"},"
        "     \"route\": {\"cluster\": \"c\"}}]}]}],"
        " \"clusters\": [{\"name\": \"c\", \"endpoints\": []}, {\"name\": \"d\"}]}");
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_eq(s->clusters[0].n_endpoints, 0);
    cr_expect_eq(s->clusters[1].n_endpoints, 0);
    cr_expect_eq(s->admin_port, 0);
    cr_expect_eq(s->listeners[0].port, 0);
    mesh_snapshot_unref(s);
}

SNAPSHOT_TEST(no_admin_means_null_address)
{
    struct mesh_snapshot *s = parse(minimal);
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_null(s->admin_address);
    mesh_snapshot_unref(s);
}

SNAPSHOT_TEST(refcount_frees_on_last_unref)
{
    struct mesh_snapshot *s = parse(minimal);
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_eq(mesh_snapshot_ref(s), s);
    cr_expect_eq(atomic_load(&s->refcnt), 2);
    mesh_snapshot_unref(s);
    /* still alive: reading it must not trip ASan */
    cr_expect_str_eq(s->version, "v1");
    mesh_snapshot_unref(s);
    mesh_snapshot_unref(NULL);
}

SNAPSHOT_TEST(null_err_is_allowed)
{
    cr_expect_null(mesh_snapshot_parse("{", 1, NULL));
    struct mesh_snapshot *s = mesh_snapshot_parse(minimal, strlen(minimal), NULL);
    cr_assert_not_null(s);
    mesh_snapshot_unref(s);
}

SNAPSHOT_TEST(control_characters_are_scrubbed_from_errors)
{
    cr_assert_null(parse("{\"version\": \"v\", \"a\\u001b[31m\\nb\": 1,"
                         " \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\","
                         " \"port\": 0, \"route_config\": \"x\\ty\"}]}"));
    EXPECT_ERROR("a?[31m?b", "unknown field");
    EXPECT_ERROR("listeners[0].route_config", "no route config named 'x?y'");
}

/* ---- weighted clusters and handler listeners ---- */

static const char *const weighted =
    "{\"version\": \"w\","
    " \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\", \"port\": 0,"
    "                  \"route_config\": \"rc\"}],"
    " \"route_configs\": [{\"name\": \"rc\", \"virtual_hosts\": [{\"name\": \"vh\","
    "     \"domains\": [\"*\"], \"routes\": [{\"match\": {\"prefix\": \"/\"},"
    "       \"route\": {%s}}]}]}],"
    " \"clusters\": [{\"name\": \"a\", \"endpoints\": []}, {\"name\": \"b\", \"endpoints\": []}]"
    "}";

static struct mesh_snapshot *parse_weighted(const char *route)
{
    char doc[4096];
    snprintf(doc, sizeof(doc), weighted, route);
    return parse(doc);
}

SNAPSHOT_TEST(weighted_clusters_resolve_with_total)
{
    struct mesh_snapshot *s = parse_weighted(
        "\"weighted_clusters\": [{\"name\": \"a\", \"weight\": 90}, {\"name\": \"b\", \"weight\": 10}]");
    cr_assert_not_null(s, "%s", errbuf);
    const struct mesh_route *r = &s->route_configs[0].vhosts[0].routes[0];
    cr_expect_eq(r->n_weighted, 2);
    cr_expect_eq(r->total_weight, 100);
    cr_expect_str_eq(r->weighted[0].cluster->name, "a");
    cr_expect_str_eq(r->weighted[1].cluster->name, "b");
    cr_expect_eq(r->weighted[1].weight, 10);
    mesh_snapshot_unref(s);
}

SNAPSHOT_TEST(weighted_clusters_errors)
{
    const char *p = "route_configs[0].virtual_hosts[0].routes[0].route";
    cr_expect_null(parse_weighted("\"cluster\": \"a\", \"weighted_clusters\": []"));
    EXPECT_ERROR(p, "exactly one of \"cluster\" or \"weighted_clusters\"");
    cr_expect_null(parse_weighted("\"weighted_clusters\": []"));
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[0].route.weighted_clusters",
                 "at least one cluster");
    cr_expect_null(parse_weighted("\"weighted_clusters\": [{\"name\": \"zz\", \"weight\": 1},"
                                  " {\"name\": \"a\", \"weight\": 0}]"));
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[0].route.weighted_clusters[0].name",
                 "no cluster named 'zz'");
    cr_expect_null(parse_weighted("\"weighted_clusters\": [{\"name\": \"a\", \"weight\": 0}]"));
    EXPECT_ERROR("route_configs[0].virtual_hosts[0].routes[0].route.weighted_clusters",
                 "must not all be 0");
}

SNAPSHOT_TEST(handler_listener_needs_no_route_config)
{
    const char *doc = "{\"version\": \"h\", \"listeners\": [{\"name\": \"api\", \"address\": "
                      "\"127.0.0.1\", \"port\": 0, \"handler\": \"api\"}]}";
    struct mesh_snapshot *s = parse(doc);
    cr_assert_not_null(s, "%s", errbuf);
    cr_expect_str_eq(s->listeners[0].handler, "api");
    cr_expect_null(s->listeners[0].route_config);
    mesh_snapshot_unref(s);
    cr_expect_null(parse("{\"version\": \"h\", \"listeners\": [{\"name\": \"l\", \"address\": "
                         "\"127.0.0.1\", \"port\": 0}]}"));
    EXPECT_ERROR("listeners[0].route_config", "is required");
}
