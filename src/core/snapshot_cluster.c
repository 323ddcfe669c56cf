/* Snapshot loader: clusters[] and their endpoints (docs/snapshot.md). */
#include "core/common.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <string.h>
#include <jansson.h>
#include "core/arena.h"
#include "core/lb_hash.h"
#include "core/snapshot.h"
#include "core/snapshot-int.h"

static const char *const endpoint_fields[] = {"address", "port", "weight", "priority", "locality",
                                              NULL};
static const char *const cluster_fields[] = {
    "name", "protocol", "lb_policy", "hash_policy", "ring_size", "maglev_table_size",
    "slow_start_ms", "connect_timeout_ms", "idle_timeout_ms", "max_connections",
    "max_pending_requests", "max_requests", "max_retries", "max_requests_per_connection",
    "tcp_keepalive", "outlier_detection", "endpoints", NULL,
};
static const char *const hash_fields[] = {"header", "cookie", "source_ip", "query_param", NULL};
static const char *const cookie_fields[] = {"name", "ttl_ms", "path", NULL};
static const char *const keepalive_fields[] = {"time_s", "interval_s", "probes", NULL};
static const char *const outlier_fields[] = {
    "consecutive_5xx", "consecutive_gateway_errors", "interval_ms", "base_ejection_time_ms",
    "max_ejection_percent", "min_health_percent", NULL,
};

static const char *const policy_names[] = {
    [MESH_LBP_ROUND_ROBIN] = "round_robin", [MESH_LBP_RANDOM] = "random",
    [MESH_LBP_LEAST_REQUEST] = "least_request", [MESH_LBP_RING_HASH] = "ring_hash",
    [MESH_LBP_MAGLEV] = "maglev", [MESH_LBP_PASSTHROUGH] = "passthrough",
};

const char *mesh_lb_policy_name(enum mesh_lb_policy p)
{
    return (size_t)p < MESH_ARRAY_LEN(policy_names) ? policy_names[p] : "?";
}

static bool is_prime(uint32_t n)
{
    if (n < 2)
        return false;
    for (uint32_t d = 2; (uint64_t)d * d <= n; d++)
        if (n % d == 0)
            return false;
    return true;
}

/* RFC 6265 cookie-name token / cookie-octet path: what can go in a Set-Cookie verbatim. */
static bool is_token(const char *s)
{
    for (; *s; s++)
        if (*s <= 0x20 || *s >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", *s))
            return false;
    return true;
}

static bool is_cookie_path(const char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s >= 0x7f || *s == ';')
            return false;
    return true;
}

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
        char p[MESH_SNAP_PATH_MAX];
        ep->weight = 1;
        json_t *o = mesh_snap_array_object(c, arr, i, path, endpoint_fields, p);
        if (!o)
            continue;
        mesh_snap_get_uint(c, o, p, "weight", false, 1, UINT32_MAX, &ep->weight);
        mesh_snap_get_uint(c, o, p, "priority", false, 0, 1000000, &ep->priority);
        ep->locality = mesh_snap_get_string(c, o, p, "locality", false, false);
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

static void parse_hash_policy(struct mesh_snap_ctx *c, struct mesh_hash_policy *h, json_t *o,
                              const char *path)
{
    char p[MESH_SNAP_PATH_MAX];
    mesh_snap_check_fields(c, o, path, hash_fields);
    if (json_object_size(o) != 1) {
        mesh_snap_fail(c, path,
                       "must have exactly one of \"header\", \"cookie\", \"source_ip\" or "
                       "\"query_param\"");
        return;
    }
    if (json_object_get(o, "header")) {
        const char *n = mesh_snap_get_string(c, o, path, "header", true, true);
        mesh_snap_path_key(p, path, "header");
        if (n && !is_token(n)) {
            mesh_snap_fail(c, p, "must be a header name");
        } else if (n) {
            char *low = mesh_snap_sdup(c, n, strlen(n));
            for (char *q = low; *q; q++)
                *q = (char)tolower((unsigned char)*q);
            h->kind = MESH_HASH_HEADER;
            h->name = low;
            h->name_len = (uint32_t)strlen(low);
        }
    } else if (json_object_get(o, "query_param")) {
        const char *n = mesh_snap_get_string(c, o, path, "query_param", true, true);
        mesh_snap_path_key(p, path, "query_param");
        if (n && strpbrk(n, "&=#? ")) {
            mesh_snap_fail(c, p, "must not contain '&', '=', '#', '?' or spaces");
        } else if (n) {
            h->kind = MESH_HASH_QUERY_PARAM;
            h->name = n;
            h->name_len = (uint32_t)strlen(n);
        }
    } else if (json_object_get(o, "source_ip")) {
        bool on = false;
        mesh_snap_path_key(p, path, "source_ip");
        if (mesh_snap_get_bool(c, o, path, "source_ip", &on) && !on)
            mesh_snap_fail(c, p, "must be true (leave hash_policy out instead)");
        else if (on)
            h->kind = MESH_HASH_SOURCE_IP;
    } else {
        json_t *ck = mesh_snap_get_object(c, o, path, "cookie", true, p);
        if (!ck)
            return;
        mesh_snap_check_fields(c, ck, p, cookie_fields);
        const char *n = mesh_snap_get_string(c, ck, p, "name", true, true);
        char pp[MESH_SNAP_PATH_MAX];
        if (n && !is_token(n)) {
            mesh_snap_path_key(pp, p, "name");
            mesh_snap_fail(c, pp, "must be a cookie name (an RFC 6265 token)");
            n = NULL;
        }
        const char *cpath = mesh_snap_get_string(c, ck, p, "path", false, true);
        if (cpath && !is_cookie_path(cpath)) {
            mesh_snap_path_key(pp, p, "path");
            mesh_snap_fail(c, pp, "must not contain ';' or control characters");
            cpath = NULL;
        }
        h->cookie_path = cpath;
        if (json_object_get(ck, "ttl_ms") &&
            mesh_snap_get_duration(c, ck, p, "ttl_ms", &h->cookie_ttl_ms))
            h->cookie_generate = true;
        if (n) {
            h->kind = MESH_HASH_COOKIE;
            h->name = n;
            h->name_len = (uint32_t)strlen(n);
        }
    }
}

static void parse_keepalive(struct mesh_snap_ctx *c, struct mesh_tcp_keepalive *k, json_t *o,
                            const char *path)
{
    mesh_snap_check_fields(c, o, path, keepalive_fields);
    k->enabled = true;
    /* Linux's limits for TCP_KEEPIDLE / TCP_KEEPINTVL (32767 s) and TCP_KEEPCNT (127) */
    mesh_snap_get_uint(c, o, path, "time_s", false, 1, 32767, &k->time_s);
    mesh_snap_get_uint(c, o, path, "interval_s", false, 1, 32767, &k->interval_s);
    mesh_snap_get_uint(c, o, path, "probes", false, 1, 127, &k->probes);
}

static void parse_outlier(struct mesh_snap_ctx *c, struct mesh_outlier_cfg *od, json_t *o,
                          const char *path)
{
    mesh_snap_check_fields(c, o, path, outlier_fields);
    od->enabled = true;
    od->consecutive_5xx = 5;
    od->consecutive_gateway = 0;
    od->interval_ms = 10000;
    od->base_ejection_ms = 30000;
    od->max_ejection_percent = 10;
    od->min_health_percent = 0;
    mesh_snap_get_uint(c, o, path, "consecutive_5xx", false, 0, UINT32_MAX, &od->consecutive_5xx);
    mesh_snap_get_uint(c, o, path, "consecutive_gateway_errors", false, 0, UINT32_MAX,
                       &od->consecutive_gateway);
    /* a review every 0 ms would spin */
    mesh_snap_get_uint(c, o, path, "interval_ms", false, 1, UINT32_MAX, &od->interval_ms);
    mesh_snap_get_duration(c, o, path, "base_ejection_time_ms", &od->base_ejection_ms);
    mesh_snap_get_uint(c, o, path, "max_ejection_percent", false, 0, 100,
                       &od->max_ejection_percent);
    mesh_snap_get_uint(c, o, path, "min_health_percent", false, 0, 100, &od->min_health_percent);
}

static void *snap_alloc(void *ctx, size_t n, size_t size)
{
    struct mesh_snap_ctx *c = ctx;
    return n ? mesh_snap_zalloc(c, n, size) : NULL;
}

static void parse_policy(struct mesh_snap_ctx *c, struct mesh_cluster *cl, json_t *o,
                         const char *path)
{
    char p[MESH_SNAP_PATH_MAX];
    const char *lb = mesh_snap_get_string(c, o, path, "lb_policy", false, false);
    if (lb) {
        size_t i;
        for (i = 0; i < MESH_ARRAY_LEN(policy_names); i++)
            if (strcmp(lb, policy_names[i]) == 0)
                break;
        if (i < MESH_ARRAY_LEN(policy_names)) {
            cl->lb_policy = (enum mesh_lb_policy)i;
        } else {
            mesh_snap_path_key(p, path, "lb_policy");
            mesh_snap_fail(c, p, "must be \"round_robin\", \"random\", \"least_request\", "
                                 "\"ring_hash\", \"maglev\" or \"passthrough\"");
        }
    }
    bool hashing = cl->lb_policy == MESH_LBP_RING_HASH || cl->lb_policy == MESH_LBP_MAGLEV;
    json_t *hp = mesh_snap_get_object(c, o, path, "hash_policy", false, p);
    if (hp && !hashing)
        mesh_snap_fail(c, p, "only with lb_policy \"ring_hash\" or \"maglev\"");
    else if (hp)
        parse_hash_policy(c, &cl->hash, hp, p);
    if (json_object_get(o, "ring_size") && cl->lb_policy != MESH_LBP_RING_HASH) {
        mesh_snap_path_key(p, path, "ring_size");
        mesh_snap_fail(c, p, "only with lb_policy \"ring_hash\"");
    }
    mesh_snap_get_uint(c, o, path, "ring_size", false, 1, 8388608, &cl->ring_size);
    if (json_object_get(o, "maglev_table_size")) {
        mesh_snap_path_key(p, path, "maglev_table_size");
        if (cl->lb_policy != MESH_LBP_MAGLEV)
            mesh_snap_fail(c, p, "only with lb_policy \"maglev\"");
        else if (mesh_snap_get_uint(c, o, path, "maglev_table_size", false, 2, 5000011,
                                    &cl->maglev_table_size) &&
                 !is_prime(cl->maglev_table_size))
            mesh_snap_fail(c, p, "must be a prime number");
    }
    mesh_snap_get_duration(c, o, path, "slow_start_ms", &cl->slow_start_ms);
}

static void parse_cluster(struct mesh_snap_ctx *c, struct mesh_cluster *cl, json_t *o, const char *path)
{
    char p[MESH_SNAP_PATH_MAX];
    mesh_snap_check_fields(c, o, path, cluster_fields);

    cl->connect_timeout_ms = 1000;
    cl->idle_timeout_ms = 60000;
    cl->max_connections = 1024;
    cl->max_pending_requests = 1024;
    cl->max_requests = UINT32_MAX;
    cl->max_retries = UINT32_MAX;
    cl->max_requests_per_connection = 0;
    cl->ring_size = 1024;
    cl->maglev_table_size = 65537;

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
    parse_policy(c, cl, o, path);
    /* a zero connect timeout or connection limit could never succeed */
    mesh_snap_get_uint(c, o, path, "connect_timeout_ms", false, 1, UINT32_MAX, &cl->connect_timeout_ms);
    mesh_snap_get_duration(c, o, path, "idle_timeout_ms", &cl->idle_timeout_ms);
    mesh_snap_get_uint(c, o, path, "max_connections", false, 1, UINT32_MAX, &cl->max_connections);
    mesh_snap_get_uint(c, o, path, "max_pending_requests", false, 0, UINT32_MAX,
             &cl->max_pending_requests);
    mesh_snap_get_uint(c, o, path, "max_requests", false, 1, UINT32_MAX, &cl->max_requests);
    mesh_snap_get_uint(c, o, path, "max_retries", false, 0, UINT32_MAX, &cl->max_retries);
    mesh_snap_get_uint(c, o, path, "max_requests_per_connection", false, 0, UINT32_MAX,
             &cl->max_requests_per_connection);
    json_t *ka = mesh_snap_get_object(c, o, path, "tcp_keepalive", false, p);
    if (ka)
        parse_keepalive(c, &cl->keepalive, ka, p);
    json_t *od = mesh_snap_get_object(c, o, path, "outlier_detection", false, p);
    if (od)
        parse_outlier(c, &cl->outlier, od, p);

    json_t *eps = mesh_snap_get_array(c, o, path, "endpoints", false, p);
    if (eps && cl->lb_policy == MESH_LBP_PASSTHROUGH && json_array_size(eps) > 0) {
        mesh_snap_fail(c, p, "must be empty with lb_policy \"passthrough\"");
        return;
    }
    if (eps)
        parse_endpoints(c, cl, eps, p);
    if (cl->lb_policy == MESH_LBP_MAGLEV && cl->n_endpoints >= cl->maglev_table_size) {
        mesh_snap_path_key(p, path, "maglev_table_size");
        mesh_snap_fail(c, p, "must be larger than the number of endpoints (%zu)", cl->n_endpoints);
        return;
    }
    /* tables only for a cluster that parsed cleanly: they need every key */
    for (size_t i = 0; i < cl->n_endpoints; i++)
        if (!cl->endpoints[i].key)
            return;
    if (!mesh_lb_build_levels(cl, snap_alloc, c))
        mesh_snap_oom();
}

void mesh_snap_parse_cluster(struct mesh_snap_ctx *c, struct mesh_cluster *cl, json_t *o,
                             const char *path)
{
    parse_cluster(c, cl, o, path);
}

void mesh_snap_parse_clusters(struct mesh_snap_ctx *c, struct mesh_snapshot *s, json_t *arr,
                           const char *path)
{
    s->n_clusters = json_array_size(arr);
    s->clusters = mesh_snap_zalloc(c, s->n_clusters, sizeof(*s->clusters));
    for (size_t i = 0; i < s->n_clusters; i++) {
        char p[MESH_SNAP_PATH_MAX];
        s->clusters[i].index = i;
        json_t *o = mesh_snap_array_object(c, arr, i, path, NULL, p);
        if (o)
            parse_cluster(c, &s->clusters[i], o, p);
    }
}
