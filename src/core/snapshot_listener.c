/* Snapshot loader: listeners[] (docs/snapshot.md). */
#include "core/common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <jansson.h>
#include "core/arena.h"
#include "core/snapshot.h"
#include "core/snapshot-int.h"

static const char *const listener_fields[] = {"name", "address", "port", "route_config", "handler",
                                              NULL};

static bool same_sockaddr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

void mesh_snap_parse_listeners(struct mesh_snap_ctx *c, struct mesh_snapshot *s, json_t *arr,
                            const char *path)
{
    s->n_listeners = json_array_size(arr);
    if (s->n_listeners == 0) {
        mesh_snap_fail(c, path, "must have at least one listener");
        return;
    }
    s->listeners = mesh_snap_zalloc(c, s->n_listeners, sizeof(*s->listeners));
    json_t *names = json_object();
    if (!names)
        mesh_snap_oom();
    for (size_t i = 0; i < s->n_listeners; i++) {
        struct mesh_listener_cfg *l = &s->listeners[i];
        json_t *o = json_array_get(arr, i);
        char p[MESH_SNAP_PATH_MAX];
        mesh_snap_path_idx(p, path, i);
        if (!json_is_object(o)) {
            mesh_snap_fail(c, p, "must be an object");
            continue;
        }
        mesh_snap_check_fields(c, o, p, listener_fields);
        l->name = mesh_snap_get_string(c, o, p, "name", true, true);
        if (l->name)
            mesh_snap_register_name(c, names, l->name, i, p, "listener");
        bool addr_ok = mesh_snap_get_addr(c, o, p, true, &l->address, &l->port, &l->sa, &l->salen);
        /* a listener either routes (route_config) or is served by a role's handler */
        l->handler = mesh_snap_get_string(c, o, p, "handler", false, true);
        const char *rc = mesh_snap_get_string(c, o, p, "route_config", !l->handler, true);
        if (rc && l->handler) {
            mesh_snap_fail(c, p, "has both route_config and handler: give one");
        } else if (rc) {
            json_t *idx = json_object_get(c->rc_names, rc);
            if (idx) {
                l->route_config = &s->route_configs[json_integer_value(idx)];
            } else {
                char pr[MESH_SNAP_PATH_MAX];
                mesh_snap_path_key(pr, p, "route_config");
                mesh_snap_fail(c, pr, "no route config named '%s'", rc);
            }
        }
        /* port 0 is ephemeral, so only fixed ports can collide */
        if (!addr_ok || l->port == 0)
            continue;
        for (size_t j = 0; j < i; j++) {
            if (s->listeners[j].address && same_sockaddr(&s->listeners[j].sa, &l->sa)) {
                mesh_snap_fail(c, p, "address %s port %u is already used by listeners[%zu]", l->address,
                     (unsigned)l->port, j);
                break;
            }
        }
        if (s->admin_address && s->admin_port != 0 && same_sockaddr(&s->admin_sa, &l->sa))
            mesh_snap_fail(c, p, "address %s port %u is already used by admin", l->address,
                 (unsigned)l->port);
    }
    json_decref(names);
}
