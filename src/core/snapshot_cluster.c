/* Snapshot loader: clusters[] and their endpoints (docs/snapshot.md). */
#include "core/common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <jansson.h>
#include "core/arena.h"
#include "core/snapshot.h"
#include "core/snapshot-int.h"

static const char *const endpoint_fields[] = {"address", "port", "weight", NULL};
static const char *const cluster_fields[] = {
    "name", "protocol", "lb_policy", "connect_timeout_ms", "idle_timeout_ms",
    "max_connections", "max_pending_requests", "max_requests_per_connection", "endpoints", NULL,
};

static void parse_endpoints(struct mesh_snap_ctx *c, struct mesh_cluster *cl, json_t *arr,
                            const char *path)
{
    cl->n_endpoints = json_array_size(arr);
    cl->endpoints = mesh_snap_zalloc(c, cl->n_endpoints, sizeof(*cl->endpoints));
    uint64_t total_weight = 0;
    json_t *keys = json_object(); /* endpoint key -> index, for duplicates */
    if (!keys)
        mesh_snap_oom();
    for (size_t i = 0; i < cl->n_endpoints; i++) {
        struct mesh_endpoint *ep = &cl->endpoints[i];
        json_t *o = json_array_get(arr, i);
        char p[MESH_SNAP_PATH_MAX];
        mesh_snap_path_idx(p, path, i);
        if (!json_is_object(o)) {
            mesh_snap_fail(c, p, "must be an object");
            continue;
        }
        mesh_snap_check_fields(c, o, p, endpoint_fields);
        ep->weight = 1;
        mesh_snap_get_uint(c, o, p, "weight", false, 1, UINT32_MAX, &ep->weight);
        total_weight += ep->weight;
        if (!mesh_snap_get_addr(c, o, p, false, &ep->address, &ep->port, &ep->sa, &ep->salen))
            continue;
        if (mesh_snap_is_unspecified(&ep->sa)) {
            char pa[MESH_SNAP_PATH_MAX];
            mesh_snap_path_key(pa, p, "address");
            mesh_snap_fail(c, pa, "must not be the unspecified address");
            continue;
        }
        ep->key = mesh_snap_sockaddr_key(c, &ep->sa);
        json_t *prev = json_object_get(keys, ep->key);
        if (prev)
            mesh_snap_fail(c, p, "duplicate endpoint %s (first at index %lld)", ep->key,
                 (long long)json_integer_value(prev));
        else if (json_object_set_new(keys, ep->key, json_integer((json_int_t)i)) != 0)
            mesh_snap_oom();
    }
    json_decref(keys);
    /* load balancers sum weights in 32 bits */
    if (total_weight > UINT32_MAX)
        mesh_snap_fail(c, path, "the sum of endpoint weights must not exceed %u", UINT32_MAX);
}

static void parse_cluster(struct mesh_snap_ctx *c, struct mesh_cluster *cl, json_t *o, const char *path)
{
    char p[MESH_SNAP_PATH_MAX];
    mesh_snap_check_fields(c, o, path, cluster_fields);

    cl->connect_timeout_ms = 1000;
    cl->idle_timeout_ms = 60000;
    cl->max_connections = 1024;
    cl->max_pending_requests = 1024;
    cl->max_requests_per_connection = 0;

    cl->name = mesh_snap_get_string(c, o, path, "name", true, true);
    if (cl->name)
        mesh_snap_register_name(c, c->cluster_names, cl->name, cl->index, path, "cluster");

    const char *proto = mesh_snap_get_string(c, o, path, "protocol", false, false);
    if (proto) {
        if (strcmp(proto, "http1") == 0) {
            cl->protocol = MESH_PROTO_HTTP1;
        } else if (strcmp(proto, "http2") == 0) {
            cl->protocol = MESH_PROTO_HTTP2;
        } else {
            mesh_snap_path_key(p, path, "protocol");
            mesh_snap_fail(c, p, "must be \"http1\" or \"http2\"");
        }
    }
    const char *lb = mesh_snap_get_string(c, o, path, "lb_policy", false, false);
    if (lb) {
        if (strcmp(lb, "round_robin") == 0) {
            cl->lb_policy = MESH_LBP_ROUND_ROBIN;
        } else if (strcmp(lb, "random") == 0) {
            cl->lb_policy = MESH_LBP_RANDOM;
        } else {
            mesh_snap_path_key(p, path, "lb_policy");
            mesh_snap_fail(c, p, "must be \"round_robin\" or \"random\"");
        }
    }
    /* a zero connect timeout or connection limit could never succeed */
    mesh_snap_get_uint(c, o, path, "connect_timeout_ms", false, 1, UINT32_MAX, &cl->connect_timeout_ms);
    mesh_snap_get_duration(c, o, path, "idle_timeout_ms", &cl->idle_timeout_ms);
    mesh_snap_get_uint(c, o, path, "max_connections", false, 1, UINT32_MAX, &cl->max_connections);
    mesh_snap_get_uint(c, o, path, "max_pending_requests", false, 0, UINT32_MAX,
             &cl->max_pending_requests);
    mesh_snap_get_uint(c, o, path, "max_requests_per_connection", false, 0, UINT32_MAX,
             &cl->max_requests_per_connection);

    json_t *eps = mesh_snap_get_array(c, o, path, "endpoints", false, p);
    if (eps)
        parse_endpoints(c, cl, eps, p);
}

void mesh_snap_parse_clusters(struct mesh_snap_ctx *c, struct mesh_snapshot *s, json_t *arr,
                           const char *path)
{
    s->n_clusters = json_array_size(arr);
    s->clusters = mesh_snap_zalloc(c, s->n_clusters, sizeof(*s->clusters));
    for (size_t i = 0; i < s->n_clusters; i++) {
        json_t *o = json_array_get(arr, i);
        char p[MESH_SNAP_PATH_MAX];
        mesh_snap_path_idx(p, path, i);
        s->clusters[i].index = i;
        if (!json_is_object(o)) {
            mesh_snap_fail(c, p, "must be an object");
            continue;
        }
        parse_cluster(c, &s->clusters[i], o, p);
    }
}
