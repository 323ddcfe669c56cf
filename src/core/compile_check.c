#include "core/common.h"
#include <string.h>
#include "core/compile_check.h"
#include "core/snapshot.h"

bool mesh_compile_check(json_t *snapshot, struct mesh_err *err, size_t *n_endpoints)
{
    if (n_endpoints)
        *n_endpoints = 0;
    char *text = json_dumps(snapshot, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text) {
        mesh_err_init(err, NULL);
        mesh_err_add(err, 0, 0, NULL, "the snapshot cannot be serialised");
        return false;
    }
    struct mesh_snapshot *s = mesh_snapshot_parse(text, strlen(text), err);
    free(text);
    if (!s)
        return false;
    for (size_t i = 0; n_endpoints && i < s->n_clusters; i++)
        *n_endpoints += s->clusters[i].n_endpoints;
    mesh_snapshot_unref(s);
    return true;
}
