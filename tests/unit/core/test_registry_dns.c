/* The snapshot's dns table: loader errors by path, and lookups. */
#include "core/common.h"
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <criterion/criterion.h>
#include "core/snapshot.h"
#include "../leakcheck.h"

static char errbuf[4096];

static bool rejects(const char *dns_json, const char *expect)
{
    char doc[2048];
    snprintf(doc, sizeof(doc),
             "{\"version\": \"t\", \"listeners\": [{\"name\": \"l\", \"address\": \"127.0.0.1\", "
             "\"port\": 0, \"route_config\": \"r\"}], \"route_configs\": [{\"name\": \"r\", "
             "\"virtual_hosts\": []}], \"dns\": %s}",
             dns_json);
    struct mesh_err err;
    struct mesh_snapshot *s = mesh_snapshot_parse(doc, strlen(doc), &err);
    if (s) {
        mesh_snapshot_unref(s);
        cr_log_error("accepted: %s", dns_json);
        return false;
    }
    mesh_err_format(&err, errbuf, sizeof(errbuf));
    bool ok = strstr(errbuf, expect) != NULL;
    if (!ok)
        cr_log_error("for %s expected '%s' in:\n%s", dns_json, expect, errbuf);
    return ok;
}

Test(dns_loader, errors_name_the_path)
{
    cr_expect(rejects("{}", "dns: "));
    cr_expect(rejects("[1]", "dns[0]: must be an object"));
    cr_expect(rejects("[{\"addresses\": [\"10.0.0.1\"]}]", "dns[0].name"));
    cr_expect(rejects("[{\"name\": \"a\"}]", "dns[0].addresses"));
    cr_expect(rejects("[{\"name\": \"a\", \"addresses\": []}]", "dns[0].addresses: must list"));
    cr_expect(rejects("[{\"name\": \"a\", \"addresses\": [\"x.y\"]}]",
                      "dns[0].addresses[0]: 'x.y' is not a numeric"));
    cr_expect(rejects("[{\"name\": \"a\", \"addresses\": [7]}]", "dns[0].addresses[0]: must be"));
    cr_expect(rejects("[{\"name\": \"A.b\", \"addresses\": [\"10.0.0.1\"]}]", "lowercase"));
    cr_expect(rejects("[{\"name\": \"a.\", \"addresses\": [\"10.0.0.1\"]}]", "must not end"));
    cr_expect(rejects("[{\"name\": \"a..b\", \"addresses\": [\"10.0.0.1\"]}]", "empty label"));
    cr_expect(rejects("[{\"name\": \"*.a\", \"addresses\": [\"10.0.0.1\"]}]", "no wildcards"));
    cr_expect(rejects("[{\"name\": \"a\", \"addresses\": [\"10.0.0.1\"], \"ttl\": 5}]",
                      "dns[0].ttl: unknown field"));
    cr_expect(rejects("[{\"name\": \"b\", \"addresses\": [\"10.0.0.1\"]}, {\"name\": \"a\", "
                      "\"addresses\": [\"10.0.0.2\"]}, {\"name\": \"b\", \"addresses\": "
                      "[\"10.0.0.3\"]}]",
                      "dns[2].name: duplicate name 'b' (also dns[0])"));
    char longlabel[200];
    snprintf(longlabel, sizeof(longlabel), "[{\"name\": \"%064d\", \"addresses\": [\"::1\"]}]", 0);
    cr_expect(rejects(longlabel, "longer than 63"));
    mesh_assert_no_leaks();
}

Test(dns_loader, lookup)
{
    const char *doc = "{\"version\": \"t\", \"listeners\": [{\"name\": \"l\", \"address\": "
                      "\"127.0.0.1\", \"port\": 0, \"route_config\": \"r\"}], \"route_configs\": "
                      "[{\"name\": \"r\", \"virtual_hosts\": []}], \"dns\": ["
                      "{\"name\": \"reviews\", \"addresses\": [\"10.96.0.10\"]}, "
                      "{\"name\": \"reviews.default\", \"addresses\": [\"10.96.0.10\"]}, "
                      "{\"name\": \"reviews.default.svc\", \"addresses\": [\"10.96.0.10\"]}, "
                      "{\"name\": \"api.example.org\", \"addresses\": [\"192.0.2.1\"]}]}";
    struct mesh_err err;
    struct mesh_snapshot *s = mesh_snapshot_parse(doc, strlen(doc), &err);
    cr_assert(s);
    cr_expect_eq(s->dns.n, 4);
    /* any case, trailing dot or not */
    const struct mesh_dns_entry *e = mesh_dns_lookup(&s->dns, "Reviews.Default.", 16);
    cr_assert(e);
    cr_expect_str_eq(e->name, "reviews.default");
    cr_expect_eq(e->n_v4, 1);
    cr_expect_eq(ntohl(e->v4[0].s_addr), 0x0a60000a);
    cr_expect(mesh_dns_lookup(&s->dns, "reviews", 7));
    cr_expect(mesh_dns_lookup(&s->dns, "reviews.default.svc", 19));
    cr_expect(mesh_dns_lookup(&s->dns, "api.example.org", 15));
    cr_expect_null(mesh_dns_lookup(&s->dns, "reviews.defaul", 14));
    cr_expect_null(mesh_dns_lookup(&s->dns, "reviews.default.x", 17));
    cr_expect_null(mesh_dns_lookup(&s->dns, "review", 6));
    cr_expect_null(mesh_dns_lookup(&s->dns, "", 0));
    cr_expect_null(mesh_dns_lookup(&s->dns, ".", 1));
    mesh_snapshot_unref(s);
    mesh_assert_no_leaks();
}

Test(dns_loader, mixed_families_and_absent_table)
{
    const char *doc = "{\"version\": \"t\", \"listeners\": [{\"name\": \"l\", \"address\": "
                      "\"127.0.0.1\", \"port\": 0, \"route_config\": \"r\"}], \"route_configs\": "
                      "[{\"name\": \"r\", \"virtual_hosts\": []}], \"dns\": [{\"name\": \"b\", "
                      "\"addresses\": [\"10.0.0.1\", \"fd00::1\", \"10.0.0.2\"]}, {\"name\": "
                      "\"a\", \"addresses\": [\"fd00::2\"]}]}";
    struct mesh_err err;
    struct mesh_snapshot *s = mesh_snapshot_parse(doc, strlen(doc), &err);
    cr_assert(s);
    cr_assert_eq(s->dns.n, 2);
    cr_expect_str_eq(s->dns.entries[0].name, "a");
    const struct mesh_dns_entry *b = mesh_dns_lookup(&s->dns, "B", 1);
    cr_assert(b);
    cr_expect_eq(b->n_v4, 2);
    cr_expect_eq(b->n_v6, 1);
    cr_expect_eq(ntohl(b->v4[1].s_addr), 0x0a000002);
    cr_expect_eq(mesh_dns_lookup(&s->dns, "a", 1)->n_v4, 0);
    mesh_snapshot_unref(s);
    const char *none = "{\"version\": \"t\", \"listeners\": [{\"name\": \"l\", \"address\": "
                       "\"127.0.0.1\", \"port\": 0, \"route_config\": \"r\"}], "
                       "\"route_configs\": [{\"name\": \"r\", \"virtual_hosts\": []}]}";
    s = mesh_snapshot_parse(none, strlen(none), &err);
    cr_assert(s);
    cr_expect_eq(s->dns.n, 0);
    cr_expect_null(mesh_dns_lookup(&s->dns, "a", 1));
    cr_expect_null(mesh_dns_lookup(NULL, "a", 1));
    mesh_snapshot_unref(s);
    mesh_assert_no_leaks();
}
