/*
 * What a route does besides choosing a cluster (docs/snapshot.md, "routes[]"
 * and "route"): retries, mirrors, and the route's filters (header operations,
 * CORS, fault injection, rewrite, redirect). Parsed by snapshot_route.c; the
 * proxy (proxy.c) runs retries and mirrors, filter.c runs the filters.
 */
#ifndef MESH_CORE_SNAPSHOT_POLICY_H
#define MESH_CORE_SNAPSHOT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mesh_cluster;
struct mesh_filter_type;

/* One filter of a route's chain: its type and its parsed, immutable config. */
struct mesh_filter {
    const struct mesh_filter_type *type;
    const void *cfg;               /* in the snapshot arena; the type's own struct */
};

/* retry_on conditions (Envoy's names; docs/snapshot.md lists them). */
enum {
    MESH_RETRY_5XX = 1u << 0,
    MESH_RETRY_GATEWAY_ERROR = 1u << 1,     /* 502, 503, 504 */
    MESH_RETRY_RESET = 1u << 2,
    MESH_RETRY_CONNECT_FAILURE = 1u << 3,
    MESH_RETRY_REFUSED_STREAM = 1u << 4,
    MESH_RETRY_RETRIABLE_4XX = 1u << 5,     /* 409 */
    MESH_RETRY_STATUS_CODES = 1u << 6,      /* retriable_status_codes */
    MESH_RETRY_GRPC_CANCELLED = 1u << 7,
    MESH_RETRY_GRPC_DEADLINE_EXCEEDED = 1u << 8,
    MESH_RETRY_GRPC_INTERNAL = 1u << 9,
    MESH_RETRY_GRPC_RESOURCE_EXHAUSTED = 1u << 10,
    MESH_RETRY_GRPC_UNAVAILABLE = 1u << 11,
};

struct mesh_retry_policy {
    uint32_t attempts;             /* retries after the first try; 0 = none */
    uint32_t per_try_timeout_ms;   /* 0 = only the route timeout */
    uint32_t retry_on;             /* MESH_RETRY_* */
    uint16_t *status_codes;        /* retriable_status_codes */
    size_t n_status_codes;
    uint32_t backoff_base_ms;      /* default 25 */
    uint32_t backoff_max_ms;       /* default 10 x base */
    bool other_host;               /* retry on another endpoint when there is one; default true */
};

struct mesh_mirror {
    const struct mesh_cluster *cluster;
    uint32_t percent;              /* millionths of one: 1000000 = every request */
};

struct mesh_route_policy {
    const struct mesh_retry_policy *retry; /* NULL: no retry */
    struct mesh_mirror *mirrors;
    size_t n_mirrors;
    struct mesh_filter *filters;   /* run in order once the route is chosen */
    size_t n_filters;
};

#endif /* MESH_CORE_SNAPSHOT_POLICY_H */
