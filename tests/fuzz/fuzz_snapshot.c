/* libFuzzer target: the snapshot loader must reject any input cleanly, never crash or leak. */
#include "core/common.h"
#include <stdlib.h>
#include <string.h>
#include "core/router.h"
#include "core/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mesh_err err; /* 26 KB: keep it off the fuzzer's stack */
    char buf[1024];
    struct mesh_snapshot *s = mesh_snapshot_parse((const char *)data, size, &err);
    mesh_err_format(&err, buf, sizeof(buf));
    if (!s)
        return 0;
    /* a snapshot that loads must be usable: route a request through every listener */
    for (size_t i = 0; i < s->n_listeners; i++) {
        const struct mesh_router_req rq = {.method = "GET", .method_len = 3, .scheme = "http",
                                           .scheme_len = 4, .authority = "Example.com:80",
                                           .authority_len = 14, .path = "/a?b", .path_len = 4};
        const struct mesh_route *r = mesh_router_match(s->listeners[i].route_config, &rq);
        if (r && r->action == MESH_ACTION_CLUSTER)
            MESH_BUG_ON(r->cluster == NULL || r->cluster != &s->clusters[r->cluster->index]);
    }
    /* the kept document comes back (/config_dump) */
    char *doc = mesh_snapshot_dump(s, false);
    MESH_BUG_ON(doc == NULL || strlen(doc) == 0);
    free(doc);
    mesh_snapshot_unref(s);
    return 0;
}
