/* Snapshot loader: route.retry and route.mirrors (docs/snapshot.md). */
#include "core/common.h"
#include "core/snapshot.h"
#include "core/snapshot-int.h"

const struct mesh_retry_policy *mesh_snap_parse_retry(struct mesh_snap_ctx *c, json_t *v,
                                                      const char *path)
{
    (void)v;
    mesh_snap_fail(c, path, "retries are not supported by this build yet");
    return NULL;
}

struct mesh_mirror *mesh_snap_parse_mirrors(struct mesh_snap_ctx *c, json_t *v, const char *path,
                                            size_t *n)
{
    (void)v;
    *n = 0;
    mesh_snap_fail(c, path, "mirrors are not supported by this build yet");
    return NULL;
}
