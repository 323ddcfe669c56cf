/* The proxy's side of an endpoint delta (snapshot_delta.h): clusters replaced by name. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/snapshot.h"
#include "core/snapshot_delta.h"
#include "../leakcheck.h"

#define CART "outbound|80||cart.shop.svc.cluster.local"

static const char base[] =
    "{\"version\":\"c-old\",\"listeners\":[{\"name\":\"l\",\"address\":\"127.0.0.1\",\"port\":0,"
    "\"route_config\":\"r\"}],\"route_configs\":[{\"name\":\"r\",\"virtual_hosts\":[{\"name\":"
    "\"v\",\"domains\":[\"*\"],\"routes\":[{\"match\":{\"prefix\":\"/\"},\"route\":{\"cluster\":"
    "\"" CART "\"}}]}]}],\"clusters\":[{\"name\":\"" CART "\",\"endpoints\":[{\"address\":"
    "\"10.1.0.1\",\"port\":8080},{\"address\":\"10.1.0.2\",\"port\":8080}]},{\"name\":\"pay\","
    "\"endpoints\":[{\"address\":\"10.2.0.1\",\"port\":8080}]}]}";

static struct mesh_snapshot *cur;

static void setup(void)
{
    struct mesh_err err;
    cur = mesh_snapshot_parse(base, strlen(base), &err);
    if (!cur)
        mesh_err_print(&err, stderr);
    cr_assert(cur);
}

static void teardown(void)
{
    mesh_snapshot_unref(cur);
    cur = NULL;
    mesh_assert_no_leaks();
}

TestSuite(snapshot_delta, .init = setup, .fini = teardown);

static char *why(const struct mesh_err *err)
{
    static char buf[1024];
    mesh_err_format(err, buf, sizeof(buf));
    return buf;
}

Test(snapshot_delta, replaces_the_named_clusters)
{
    const char *d = "{\"clusters\":[{\"name\":\"" CART "\",\"endpoints\":[{\"address\":"
                    "\"10.1.0.8\",\"port\":9090}]}]}";
    struct mesh_err err;
    struct mesh_snapshot *s = mesh_snapshot_apply_delta(cur, d, strlen(d), "c-new", &err);
    cr_assert(s, "%s", why(&err));
    cr_expect_str_eq(s->version, "c-new");
    cr_assert_eq(s->n_clusters, 2);
    const struct mesh_cluster *c = mesh_snapshot_find_cluster(s, CART);
    cr_assert(c);
    cr_assert_eq(c->n_endpoints, 1);
    cr_expect_str_eq(c->endpoints[0].address, "10.1.0.8");
    cr_expect_eq(c->endpoints[0].port, 9090);
    /* the other cluster and the route are as they were; the old snapshot is untouched */
    cr_expect_eq(mesh_snapshot_find_cluster(s, "pay")->n_endpoints, 1);
    cr_expect_eq(mesh_snapshot_find_cluster(cur, CART)->n_endpoints, 2);
    cr_expect_str_eq(cur->version, "c-old");
    /* derived: the routes are shared, and reach the new cluster through its index */
    cr_expect_eq(s->parent, cur);
    cr_expect_eq(s->depth, 1);
    cr_expect_eq(s->route_configs, cur->route_configs);
    const struct mesh_cluster *via_route =
        mesh_snapshot_cluster(s, s->route_configs[0].vhosts[0].routes[0].cluster);
    cr_expect_eq(via_route, c);
    cr_expect_eq(mesh_snapshot_cluster(cur, cur->route_configs[0].vhosts[0].routes[0].cluster)
                     ->n_endpoints, 2);
    /* its document is the parent's with the delta, for /config_dump */
    char *doc = mesh_snapshot_dump(s, false);
    cr_assert(doc);
    cr_expect(strstr(doc, "\"10.1.0.8\""), "%s", doc);
    cr_expect_null(strstr(doc, "\"10.1.0.2\""), "%s", doc);
    cr_expect(strstr(doc, "\"version\":\"c-new\""), "%s", doc);
    free(doc);
    /* the old snapshot may go first: the derived one holds it */
    mesh_snapshot_unref(cur);
    cur = NULL;
    cr_expect_str_eq(mesh_snapshot_find_cluster(s, "pay")->endpoints[0].address, "10.2.0.1");
    /* loaded whole again: the same document, no parent */
    struct mesh_snapshot *flat = mesh_snapshot_flatten(s, &err);
    cr_assert(flat, "%s", why(&err));
    cr_expect_null(flat->parent);
    cr_expect_eq(flat->depth, 0);
    cr_expect_str_eq(flat->version, "c-new");
    char *a = mesh_snapshot_dump(s, true), *b = mesh_snapshot_dump(flat, true);
    cr_expect_str_eq(a, b);
    free(a);
    free(b);
    mesh_snapshot_unref(flat);
    mesh_snapshot_unref(s);
}

Test(snapshot_delta, a_long_chain_is_loaded_whole)
{
    struct mesh_snapshot *s = mesh_snapshot_ref(cur);
    for (unsigned k = 1; k <= MESH_SNAPSHOT_MAX_DEPTH + 1; k++) {
        char d[256], v[16];
        snprintf(d, sizeof(d), "{\"clusters\":[{\"name\":\"pay\",\"endpoints\":[{\"address\":"
                 "\"10.2.0.%u\",\"port\":8080}]}]}", k + 1);
        snprintf(v, sizeof(v), "c-%u", k);
        struct mesh_err err;
        struct mesh_snapshot *next = mesh_snapshot_apply_delta(s, d, strlen(d), v, &err);
        cr_assert(next, "%s", why(&err));
        mesh_snapshot_unref(s);
        s = next;
        cr_expect_eq(s->depth, k <= MESH_SNAPSHOT_MAX_DEPTH ? k : 0u, "delta %u", k);
        char want[16];
        snprintf(want, sizeof(want), "10.2.0.%u", k + 1);
        cr_expect_str_eq(mesh_snapshot_find_cluster(s, "pay")->endpoints[0].address, want);
        cr_expect_eq(mesh_snapshot_find_cluster(s, CART)->n_endpoints, 2);
    }
    cr_expect_null(s->parent);
    mesh_snapshot_unref(s);
}

Test(snapshot_delta, refuses_what_it_cannot_apply)
{
    struct mesh_err err;
    const char *unknown = "{\"clusters\":[{\"name\":\"nope\",\"endpoints\":[]}]}";
    cr_expect_null(mesh_snapshot_apply_delta(cur, unknown, strlen(unknown), "c-x", &err));
    cr_expect(strstr(why(&err), "no such cluster in the snapshot: nope"), "%s", why(&err));
    cr_expect_null(mesh_snapshot_apply_delta(cur, "{\"clusters\":3}", 14, "c-x", &err));
    cr_expect(strstr(why(&err), "expected {\"clusters\": [...]}"), "%s", why(&err));
    cr_expect_null(mesh_snapshot_apply_delta(cur, "{", 1, "c-x", &err));
    const char *twice = "{\"clusters\":[{\"name\":\"pay\"},{\"name\":\"pay\"}]}";
    cr_expect_null(mesh_snapshot_apply_delta(cur, twice, strlen(twice), "c-x", &err));
    cr_expect(strstr(why(&err), "in the delta twice"), "%s", why(&err));
    /* an invalid cluster is the loader's error, with its path */
    const char *bad = "{\"clusters\":[{\"name\":\"" CART "\",\"endpoints\":[{\"address\":"
                      "\"10.1.0.8\",\"port\":70000}]}]}";
    cr_expect_null(mesh_snapshot_apply_delta(cur, bad, strlen(bad), "c-x", &err));
    cr_expect(strstr(why(&err), "clusters[0].endpoints[0].port"), "%s", why(&err));
}
