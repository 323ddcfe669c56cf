/*
 * libFuzzer target: an endpoint delta from the control plane (snapshot_delta.h) applied to
 * a fixed snapshot must be refused cleanly or give a snapshot whose routes reach its own
 * clusters; never a crash, a leak, or a change to the snapshot it came from.
 */
#include "core/common.h"
#include <stdlib.h>
#include <string.h>
#include "core/router.h"
#include "core/snapshot.h"
#include "core/snapshot_delta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char base[] =
    "{\"version\":\"c-base\",\"listeners\":[{\"name\":\"l\",\"address\":\"127.0.0.1\",\"port\":0,"
    "\"route_config\":\"r\"}],\"route_configs\":[{\"name\":\"r\",\"virtual_hosts\":[{\"name\":"
    "\"v\",\"domains\":[\"*\"],\"routes\":[{\"match\":{\"prefix\":\"/a\"},\"route\":{"
    "\"weighted_clusters\":[{\"name\":\"a\",\"weight\":1},{\"name\":\"b\",\"weight\":1}]}},"
    "{\"match\":{\"prefix\":\"/\"},\"route\":{\"cluster\":\"b\"}}]}]}],\"clusters\":["
    "{\"name\":\"a\",\"lb_policy\":\"ring_hash\",\"endpoints\":[{\"address\":\"10.0.0.1\","
    "\"port\":80}]},{\"name\":\"b\",\"endpoints\":[{\"address\":\"10.0.0.2\",\"port\":80,"
    "\"locality\":\"r/z\"}]}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mesh_err err; /* 26 KB: keep it off the fuzzer's stack */
    struct mesh_snapshot *cur = mesh_snapshot_parse(base, sizeof(base) - 1, &err);
    MESH_BUG_ON(cur == NULL);
    struct mesh_snapshot *s = mesh_snapshot_apply_delta(cur, (const char *)data, size, "c-next",
                                                        &err);
    if (s) {
        MESH_BUG_ON(s->n_clusters != cur->n_clusters || strcmp(s->version, "c-next") != 0);
        const struct mesh_router_req rq = {.method = "GET", .method_len = 3, .scheme = "http",
                                           .scheme_len = 4, .authority = "x", .authority_len = 1,
                                           .path = "/a", .path_len = 2};
        const struct mesh_route *r = mesh_router_match(s->listeners[0].route_config, &rq);
        MESH_BUG_ON(r == NULL || r->n_weighted != 2);
        for (size_t i = 0; i < r->n_weighted; i++) {
            const struct mesh_cluster *c = mesh_snapshot_cluster(s, r->weighted[i].cluster);
            MESH_BUG_ON(c != &s->clusters[c->index] || strcmp(c->name, i ? "b" : "a") != 0);
        }
        char *doc = mesh_snapshot_dump(s, false);
        MESH_BUG_ON(doc == NULL);
        free(doc);
        mesh_snapshot_unref(s);
    }
    /* the snapshot it came from is as it was */
    MESH_BUG_ON(strcmp(cur->version, "c-base") != 0 || cur->clusters[0].n_endpoints != 1 ||
                strcmp(cur->clusters[0].endpoints[0].address, "10.0.0.1") != 0);
    mesh_snapshot_unref(cur);
    return 0;
}
