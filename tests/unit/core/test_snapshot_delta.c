/* The proxy's side of an endpoint delta (snapshot_delta.h): clusters replaced by name. */
#include <criterion/criterion.h>
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
    cr_expect_str_eq(s->route_configs[0].vhosts[0].routes[0].cluster->name, CART);
    cr_expect_eq(mesh_snapshot_find_cluster(cur, CART)->n_endpoints, 2);
    cr_expect_str_eq(cur->version, "c-old");
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
    /* an invalid cluster is the loader's error, with its path */
    const char *bad = "{\"clusters\":[{\"name\":\"" CART "\",\"endpoints\":[{\"address\":"
                      "\"10.1.0.8\",\"port\":70000}]}]}";
    cr_expect_null(mesh_snapshot_apply_delta(cur, bad, strlen(bad), "c-x", &err));
    cr_expect(strstr(why(&err), "clusters[0].endpoints[0].port"), "%s", why(&err));
}
