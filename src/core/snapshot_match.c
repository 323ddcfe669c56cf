/* Snapshot loader: routes[].match (docs/snapshot.md). */
#include "core/common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <jansson.h>
#include "core/arena.h"
#include "core/snapshot.h"
#include "core/snapshot-int.h"

static const char *const match_fields[] = {"prefix", "path", NULL};

void mesh_snap_parse_match(struct mesh_snap_ctx *c, struct mesh_route_match *r, json_t *m, const char *path)
{
    mesh_snap_check_fields(c, m, path, match_fields);
    json_t *prefix = json_object_get(m, "prefix");
    json_t *exact = json_object_get(m, "path");
    if (!prefix == !exact) {
        mesh_snap_fail(c, path, "must have exactly one of \"prefix\" or \"path\"");
        return;
    }
    const char *key = prefix ? "prefix" : "path";
    r->kind = prefix ? MESH_MATCH_PREFIX : MESH_MATCH_EXACT;
    const char *v = mesh_snap_get_string(c, m, path, key, true, true);
    if (!v)
        return;
    char p[MESH_SNAP_PATH_MAX];
    mesh_snap_path_key(p, path, key);
    /* the router compares the path before '?', so a '?' here could never match */
    if (v[0] != '/')
        mesh_snap_fail(c, p, "must start with '/'");
    else if (strchr(v, '?'))
        mesh_snap_fail(c, p, "must not contain '?'");
    r->path = v;
    r->path_len = strlen(v);
}

void mesh_snap_index_vhost(struct mesh_snap_ctx *c, struct mesh_vhost *vh)
{
    (void)c;
    vh->index = NULL; /* routes are scanned in order */
}
