/* Snapshot loader: route.retry and route.mirrors (docs/snapshot.md, "retry", "route"). */
#include "core/common.h"
#include <string.h>
#include "core/snapshot.h"
#include "core/snapshot-int.h"

/* Envoy's retry_on names (the gRPC ones read grpc-status). */
static const struct {
    const char *name;
    uint32_t bit;
} retry_conds[] = {
    {"5xx", MESH_RETRY_5XX},
    {"gateway-error", MESH_RETRY_GATEWAY_ERROR},
    {"reset", MESH_RETRY_RESET},
    {"connect-failure", MESH_RETRY_CONNECT_FAILURE},
    {"refused-stream", MESH_RETRY_REFUSED_STREAM},
    {"retriable-4xx", MESH_RETRY_RETRIABLE_4XX},
    {"retriable-status-codes", MESH_RETRY_STATUS_CODES},
    {"cancelled", MESH_RETRY_GRPC_CANCELLED},
    {"deadline-exceeded", MESH_RETRY_GRPC_DEADLINE_EXCEEDED},
    {"internal", MESH_RETRY_GRPC_INTERNAL},
    {"resource-exhausted", MESH_RETRY_GRPC_RESOURCE_EXHAUSTED},
    {"unavailable", MESH_RETRY_GRPC_UNAVAILABLE},
};

static void parse_retry_on(struct mesh_snap_ctx *c, json_t *o, const char *path,
                           struct mesh_retry_policy *rp)
{
    char p[MESH_SNAP_PATH_MAX], pi[MESH_SNAP_PATH_MAX];
    json_t *arr = mesh_snap_get_array(c, o, path, "retry_on", false, p);
    if (!arr)
        return;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        mesh_snap_path_idx(pi, p, i);
        if (!json_is_string(v)) {
            mesh_snap_fail(c, pi, "must be a string");
            continue;
        }
        const char *s = json_string_value(v);
        size_t k = 0;
        while (k < MESH_ARRAY_LEN(retry_conds) && strcmp(retry_conds[k].name, s) != 0)
            k++;
        if (k == MESH_ARRAY_LEN(retry_conds)) {
            mesh_snap_fail(c, pi, "unknown retry condition '%s'", s);
            continue;
        }
        rp->retry_on |= retry_conds[k].bit;
    }
}

static void parse_status_codes(struct mesh_snap_ctx *c, json_t *o, const char *path,
                               struct mesh_retry_policy *rp)
{
    char p[MESH_SNAP_PATH_MAX], pi[MESH_SNAP_PATH_MAX];
    json_t *arr = mesh_snap_get_array(c, o, path, "retriable_status_codes", false, p);
    if (!arr || json_array_size(arr) == 0)
        return;
    if (!(rp->retry_on & MESH_RETRY_STATUS_CODES))
        mesh_snap_fail(c, p, "has no effect without \"retriable-status-codes\" in retry_on");
    rp->status_codes = mesh_snap_zalloc(c, json_array_size(arr), sizeof(*rp->status_codes));
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        mesh_snap_path_idx(pi, p, i);
        json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
        if (!json_is_integer(v) || n < 100 || n > 599) {
            mesh_snap_fail(c, pi, "must be an integer between 100 and 599");
            continue;
        }
        rp->status_codes[rp->n_status_codes++] = (uint16_t)n;
    }
}

const struct mesh_retry_policy *mesh_snap_parse_retry(struct mesh_snap_ctx *c, json_t *v,
                                                      const char *path)
{
    static const char *const fields[] = {"attempts",       "per_try_timeout_ms",
                                         "retry_on",       "retriable_status_codes",
                                         "backoff_base_ms", "backoff_max_ms",
                                         "other_host",     NULL};
    if (!json_is_object(v)) {
        mesh_snap_fail(c, path, "must be an object");
        return NULL;
    }
    mesh_snap_check_fields(c, v, path, fields);
    struct mesh_retry_policy *rp = mesh_snap_zalloc(c, 1, sizeof(*rp));
    rp->backoff_base_ms = 25;
    rp->other_host = true;
    mesh_snap_get_uint(c, v, path, "attempts", false, 0, 100, &rp->attempts);
    mesh_snap_get_duration(c, v, path, "per_try_timeout_ms", &rp->per_try_timeout_ms);
    parse_retry_on(c, v, path, rp);
    parse_status_codes(c, v, path, rp);
    mesh_snap_get_duration(c, v, path, "backoff_base_ms", &rp->backoff_base_ms);
    uint64_t dflt_max = (uint64_t)rp->backoff_base_ms * 10;
    rp->backoff_max_ms = dflt_max > UINT32_MAX ? UINT32_MAX : (uint32_t)dflt_max;
    if (json_object_get(v, "backoff_max_ms") &&
        mesh_snap_get_duration(c, v, path, "backoff_max_ms", &rp->backoff_max_ms) &&
        rp->backoff_max_ms < rp->backoff_base_ms) {
        char p[MESH_SNAP_PATH_MAX];
        mesh_snap_path_key(p, path, "backoff_max_ms");
        mesh_snap_fail(c, p, "must not be less than backoff_base_ms (%u)", rp->backoff_base_ms);
    }
    mesh_snap_get_bool(c, v, path, "other_host", &rp->other_host);
    return rp;
}

struct mesh_mirror *mesh_snap_parse_mirrors(struct mesh_snap_ctx *c, json_t *v, const char *path,
                                            size_t *n)
{
    static const char *const fields[] = {"cluster", "percent", NULL};
    *n = 0;
    if (!json_is_array(v)) {
        mesh_snap_fail(c, path, "must be an array");
        return NULL;
    }
    if (json_array_size(v) == 0)
        return NULL;
    struct mesh_mirror *m = mesh_snap_zalloc(c, json_array_size(v), sizeof(*m));
    char pi[MESH_SNAP_PATH_MAX];
    size_t i;
    json_t *o;
    json_array_foreach(v, i, o)
    {
        mesh_snap_path_idx(pi, path, i);
        if (!json_is_object(o)) {
            mesh_snap_fail(c, pi, "must be an object");
            continue;
        }
        mesh_snap_check_fields(c, o, pi, fields);
        const char *name = mesh_snap_get_string(c, o, pi, "cluster", true, true);
        const struct mesh_cluster *cl = name ? mesh_snap_find_cluster(c, name, pi, "cluster") : NULL;
        uint32_t pct = 1000000;
        mesh_snap_get_percent(c, o, pi, "percent", &pct);
        if (!cl)
            continue;
        m[*n].cluster = cl;
        m[*n].percent = pct;
        (*n)++;
    }
    return *n ? m : NULL;
}
