#include "core/common.h"
#include <string.h>
#include "core/compile-int.h"

/*
 * DestinationRule traffic policy -> the fields of a snapshot cluster
 * (docs/snapshot.md "clusters[]", "outlier_detection"): load balancing and
 * consistent hashing, slow start, connection pool limits, outlier detection.
 * Locality load balancing acts on the endpoints (compile_locality.c). What the
 * snapshot cannot express is warned about once per rule (mesh_cc_warn_dr_once).
 */

static uint32_t clamp_ms(int64_t ns, uint32_t min)
{
    int64_t ms = ns / 1000000;
    if (ms < (int64_t)min)
        return min;
    if (ms > (int64_t)UINT32_MAX)
        return UINT32_MAX;
    return (uint32_t)ms;
}

/* ---- Warnings: fields not enforced ---- */

static void warn(struct mesh_cc *c, const struct mesh_resource *r, const char *p,
                 const char *field, const char *msg)
{
    mesh_cc_diag(c, MESH_DIAG_WARNING, r, MESH_CC_JOIN(c, p, ".", field), "%s", msg);
}

static void warn_lb(struct mesh_cc *c, const struct mesh_resource *r, const char *p,
                    const struct mesh_load_balancer *lb)
{
    if (!lb)
        return;
    const struct mesh_consistent_hash *ch = lb->consistent_hash;
    if (ch) {
        if (!ch->http_header_name && !ch->http_cookie && !ch->use_source_ip &&
            !ch->http_query_parameter_name)
            warn(c, r, p, "loadBalancer.consistentHash",
                 "no hash key (httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName): "
                 "every request goes to a random endpoint");
        if (ch->http_cookie && ch->http_cookie->n_attributes)
            warn(c, r, p, "loadBalancer.consistentHash.httpCookie.attributes",
                 "not enforced yet: the cookie is set without them");
        if ((ch->ring_hash && ch->ring_hash->minimum_ring_size > 8388608) ||
            ch->minimum_ring_size > 8388608)
            warn(c, r, p, "loadBalancer.consistentHash.ringHash.minimumRingSize",
                 "more than 8388608: 8388608 is used");
    }
    if (lb->zone_aware_lb_setting)
        warn(c, r, p, "loadBalancer.zoneAwareLbSetting", "not enforced yet");
    if (lb->warmup && (lb->warmup->minimum_percent.set || lb->warmup->aggression.set))
        warn(c, r, p, "loadBalancer.warmup",
             "minimumPercent and aggression are not enforced yet: a new endpoint's share "
             "grows linearly from 0 over the duration");
}

static void warn_pool(struct mesh_cc *c, const struct mesh_resource *r, const char *p,
                      const struct mesh_connection_pool *cp)
{
    if (!cp)
        return;
    struct {
        bool set;
        const char *name;
    } f[] = {
        {cp->tcp && cp->tcp->max_connection_duration.set,
         "connectionPool.tcp.maxConnectionDuration"},
        {cp->tcp && cp->tcp->idle_timeout.set, "connectionPool.tcp.idleTimeout"},
        {cp->http && cp->http->use_client_protocol, "connectionPool.http.useClientProtocol"},
        {cp->http && cp->http->max_concurrent_streams, "connectionPool.http.maxConcurrentStreams"},
    };
    for (size_t i = 0; i < MESH_ARRAY_LEN(f); i++)
        if (f[i].set)
            warn(c, r, p, f[i].name, "not enforced yet");
}

static void warn_outlier(struct mesh_cc *c, const struct mesh_resource *r, const char *p,
                         const struct mesh_outlier_detection *od)
{
    if (!od)
        return;
    if (od->split_external_local_origin_errors || od->consecutive_local_origin_failures.set)
        warn(c, r, p, "outlierDetection.splitExternalLocalOriginErrors",
             "not enforced yet: local failures (resets, connect failures) count as 5xx");
}

static void warn_tls(struct mesh_cc *c, const struct mesh_resource *r, const char *p,
                     const struct mesh_client_tls *tls)
{
    if (tls && tls->mode != MESH_CLIENT_TLS_DISABLE)
        warn(c, r, p, "tls", "not enforced yet: traffic to the endpoints is plain text");
}

static void warn_policy(struct mesh_cc *c, const struct mesh_resource *r, const char *p,
                        const struct mesh_traffic_policy *tp)
{
    if (!tp)
        return;
    warn_lb(c, r, p, tp->load_balancer);
    warn_pool(c, r, p, tp->connection_pool);
    warn_outlier(c, r, p, tp->outlier_detection);
    warn_tls(c, r, p, tp->tls);
    if (tp->tunnel)
        warn(c, r, p, "tunnel", "not enforced yet");
    if (tp->proxy_protocol)
        warn(c, r, p, "proxyProtocol", "not enforced yet");
    if (tp->retry_budget)
        warn(c, r, p, "retryBudget", "not enforced yet");
    for (size_t i = 0; i < tp->n_port_level_settings; i++) {
        const struct mesh_port_traffic_policy *pl = &tp->port_level_settings[i];
        char *pp = mesh_cc_path(c, p, ".portLevelSettings", i, "");
        warn_lb(c, r, pp, pl->load_balancer);
        warn_pool(c, r, pp, pl->connection_pool);
        warn_outlier(c, r, pp, pl->outlier_detection);
        warn_tls(c, r, pp, pl->tls);
    }
}

void mesh_cc_warn_dr_once(struct mesh_cc *c, const struct mesh_resource *r)
{
    if (mesh_cmap_get(&c->dr_warned, r->key))
        return;
    mesh_cmap_put(&c->dr_warned, r->key, (void *)r);
    const struct mesh_destination_rule *dr = r->typed.destination_rule;
    warn_policy(c, r, "spec.trafficPolicy", dr->traffic_policy);
    for (size_t i = 0; i < dr->n_subsets; i++)
        warn_policy(c, r, mesh_cc_path(c, "spec.subsets", "", i, ".trafficPolicy"),
                    dr->subsets[i].traffic_policy);
}

/* ---- Merge (Istio MergeTrafficPolicy) ---- */

static bool port_level(const struct mesh_traffic_policy *tp, uint32_t port,
                       struct mesh_cpolicy *out)
{
    for (size_t i = 0; i < tp->n_port_level_settings; i++) {
        const struct mesh_port_traffic_policy *pl = &tp->port_level_settings[i];
        if (pl->port && pl->port->number == port) {
            /* port-level settings replace, they do not inherit */
            out->lb = pl->load_balancer;
            out->pool = pl->connection_pool;
            out->outlier = pl->outlier_detection;
            return true;
        }
    }
    return false;
}

struct mesh_cpolicy mesh_cc_effective_policy(const struct mesh_traffic_policy *host,
                                             const struct mesh_traffic_policy *subset,
                                             uint32_t port)
{
    struct mesh_cpolicy p = {NULL, NULL, NULL};
    if (host && !port_level(host, port, &p)) {
        p.lb = host->load_balancer;
        p.pool = host->connection_pool;
        p.outlier = host->outlier_detection;
    }
    if (subset && !port_level(subset, port, &p)) {
        if (subset->load_balancer)
            p.lb = subset->load_balancer;
        if (subset->connection_pool)
            p.pool = subset->connection_pool;
        if (subset->outlier_detection)
            p.outlier = subset->outlier_detection;
    }
    return p;
}

/* ---- Cluster fields ---- */

static void set_int(json_t *o, const char *k, uint64_t v)
{
    json_object_set_new_nocheck(o, k, json_integer((json_int_t)v));
}

/* lb_policy, hash_policy, ring_size, maglev_table_size, slow_start_ms */
static void lb_fields(json_t *o, const struct mesh_load_balancer *lb)
{
    /* Istio's default (UNSPECIFIED) is LEAST_REQUEST */
    const char *policy = "least_request";
    const struct mesh_consistent_hash *ch = lb ? lb->consistent_hash : NULL;
    if (ch) {
        policy = ch->maglev ? "maglev" : "ring_hash";
        json_t *hp = json_object();
        if (ch->http_header_name) {
            json_object_set_new_nocheck(hp, "header", json_string(ch->http_header_name));
        } else if (ch->http_cookie) {
            json_t *ck = json_object();
            json_object_set_new_nocheck(ck, "name", json_string(ch->http_cookie->name));
            if (ch->http_cookie->ttl.set)
                set_int(ck, "ttl_ms", clamp_ms(ch->http_cookie->ttl.ns, 0));
            if (ch->http_cookie->path)
                json_object_set_new_nocheck(ck, "path", json_string(ch->http_cookie->path));
            json_object_set_new_nocheck(hp, "cookie", ck);
        } else if (ch->use_source_ip) {
            json_object_set_new_nocheck(hp, "source_ip", json_true());
        } else if (ch->http_query_parameter_name) {
            json_object_set_new_nocheck(hp, "query_param",
                                        json_string(ch->http_query_parameter_name));
        }
        if (json_object_size(hp))
            json_object_set_new_nocheck(o, "hash_policy", hp);
        else
            json_decref(hp);
        uint64_t ring = ch->ring_hash ? ch->ring_hash->minimum_ring_size : ch->minimum_ring_size;
        if (!ch->maglev && ring)
            set_int(o, "ring_size", ring > 8388608 ? 8388608 : ring);
        if (ch->maglev && ch->maglev->table_size)
            set_int(o, "maglev_table_size", ch->maglev->table_size);
    } else if (lb && lb->has_simple) {
        switch (lb->simple) {
        case MESH_LB_ROUND_ROBIN: policy = "round_robin"; break;
        case MESH_LB_RANDOM: policy = "random"; break;
        case MESH_LB_PASSTHROUGH: policy = "passthrough"; break;
        case MESH_LB_LEAST_CONN:
        case MESH_LB_LEAST_REQUEST:
        case MESH_LB_UNSPECIFIED: break;
        }
    }
    json_object_set_new_nocheck(o, "lb_policy", json_string(policy));
    const struct mesh_duration *warm = NULL;
    if (lb && lb->warmup && lb->warmup->duration.set)
        warm = &lb->warmup->duration;
    else if (lb && lb->warmup_duration_secs.set)
        warm = &lb->warmup_duration_secs;
    if (warm)
        set_int(o, "slow_start_ms", clamp_ms(warm->ns, 0));
}

static json_t *outlier_json(const struct mesh_outlier_detection *od)
{
    json_t *o = json_object();
    if (od->consecutive_errors > 0) {
        /* the deprecated field counts gateway errors only (Istio, api#617) */
        set_int(o, "consecutive_5xx", 0);
        set_int(o, "consecutive_gateway_errors", (uint64_t)od->consecutive_errors);
    }
    if (od->consecutive_5xx_errors.set)
        set_int(o, "consecutive_5xx", od->consecutive_5xx_errors.v);
    if (od->consecutive_gateway_errors.set)
        set_int(o, "consecutive_gateway_errors", od->consecutive_gateway_errors.v);
    if (od->interval.set)
        set_int(o, "interval_ms", clamp_ms(od->interval.ns, 1));
    if (od->base_ejection_time.set)
        set_int(o, "base_ejection_time_ms", clamp_ms(od->base_ejection_time.ns, 1));
    if (od->max_ejection_percent > 0)
        set_int(o, "max_ejection_percent", (uint64_t)MESH_MIN(od->max_ejection_percent, 100));
    if (od->min_health_percent > 0)
        set_int(o, "min_health_percent", (uint64_t)MESH_MIN(od->min_health_percent, 100));
    return o;
}

json_t *mesh_cc_cluster_json(const char *name, bool h2, const struct mesh_cpolicy *pol)
{
    /* Istio's defaults where the snapshot's differ: 10s connect, 1h idle, no limits */
    uint32_t connect_ms = 10000, idle_ms = 3600000, max_conn = UINT32_MAX,
             max_pending = UINT32_MAX, max_req = 0;
    json_t *o = json_object();
    lb_fields(o, pol ? pol->lb : NULL);
    const struct mesh_connection_pool *cp = pol ? pol->pool : NULL;
    if (cp && cp->tcp) {
        const struct mesh_tcp_pool *t = cp->tcp;
        if (t->max_connections > 0)
            max_conn = (uint32_t)t->max_connections;
        if (t->connect_timeout.set)
            connect_ms = clamp_ms(t->connect_timeout.ns, 1);
        if (t->tcp_keepalive) {
            json_t *ka = json_object();
            if (t->tcp_keepalive->time.set)
                set_int(ka, "time_s", MESH_MAX(t->tcp_keepalive->time.ns / 1000000000, 1));
            if (t->tcp_keepalive->interval.set)
                set_int(ka, "interval_s",
                        MESH_MAX(t->tcp_keepalive->interval.ns / 1000000000, 1));
            if (t->tcp_keepalive->probes)
                set_int(ka, "probes", t->tcp_keepalive->probes);
            json_object_set_new_nocheck(o, "tcp_keepalive", ka);
        }
    }
    if (cp && cp->http) {
        const struct mesh_http_pool *hp = cp->http;
        if (hp->http1_max_pending_requests > 0)
            max_pending = (uint32_t)hp->http1_max_pending_requests;
        if (hp->max_requests_per_connection > 0)
            max_req = (uint32_t)hp->max_requests_per_connection;
        if (hp->idle_timeout.set)
            idle_ms = clamp_ms(hp->idle_timeout.ns, 0);
        if (hp->h2_upgrade_policy == MESH_H2_UPGRADE_UPGRADE)
            h2 = true;
        if (hp->http2_max_requests > 0)
            set_int(o, "max_requests", (uint64_t)hp->http2_max_requests);
        if (hp->max_retries > 0)
            set_int(o, "max_retries", (uint64_t)hp->max_retries);
    }
    if (pol && pol->outlier)
        json_object_set_new_nocheck(o, "outlier_detection", outlier_json(pol->outlier));
    set_int(o, "connect_timeout_ms", connect_ms);
    set_int(o, "idle_timeout_ms", idle_ms);
    set_int(o, "max_connections", max_conn);
    set_int(o, "max_pending_requests", max_pending);
    set_int(o, "max_requests_per_connection", max_req);
    json_object_set_new_nocheck(o, "name", json_string(name));
    json_object_set_new_nocheck(o, "protocol", json_string(h2 ? "http2" : "http1"));
    return o;
}
