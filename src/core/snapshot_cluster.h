/*
 * Clusters and endpoints of a snapshot (docs/snapshot.md, "clusters[]"):
 * where a request goes and how an endpoint is chosen. Parsed by
 * snapshot_cluster.c (which also builds the ring hash and Maglev tables,
 * lb_hash.c); the load balancers (lb.c) and pools (upstream.c) read it.
 */
#ifndef MESH_CORE_SNAPSHOT_CLUSTER_H
#define MESH_CORE_SNAPSHOT_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum mesh_upstream_proto {
    MESH_PROTO_HTTP1 = 0,
    MESH_PROTO_HTTP2 = 1,
};

enum mesh_lb_policy {
    MESH_LBP_ROUND_ROBIN = 0,
    MESH_LBP_RANDOM = 1,
    MESH_LBP_LEAST_REQUEST = 2,
    MESH_LBP_RING_HASH = 3,
    MESH_LBP_MAGLEV = 4,
    MESH_LBP_PASSTHROUGH = 5,
};

/* "round_robin", "random", ... as in the snapshot. */
const char *mesh_lb_policy_name(enum mesh_lb_policy p);

enum mesh_hash_kind {
    MESH_HASH_NONE = 0,
    MESH_HASH_HEADER,
    MESH_HASH_COOKIE,
    MESH_HASH_SOURCE_IP,
    MESH_HASH_QUERY_PARAM,
};

struct mesh_hash_policy {
    enum mesh_hash_kind kind;
    const char *name;              /* header (lowercase), cookie or query parameter name */
    uint32_t name_len;
    bool cookie_generate;          /* cookie: ttl_ms was given, a missing cookie is set */
    uint32_t cookie_ttl_ms;        /* 0: a session cookie (no Max-Age) */
    const char *cookie_path;       /* NULL: no Path attribute */
};

struct mesh_outlier_cfg {
    bool enabled;
    uint32_t consecutive_5xx;      /* 0 = off */
    uint32_t consecutive_gateway;  /* 0 = off */
    uint32_t interval_ms;
    uint32_t base_ejection_ms;
    uint32_t max_ejection_percent;
    uint32_t min_health_percent;
};

struct mesh_tcp_keepalive {
    bool enabled;
    uint32_t time_s, interval_s, probes; /* 0 = the kernel's default */
};

struct mesh_endpoint {
    const char *address;           /* as written: "127.0.0.1", "::1" */
    const char *locality;          /* "region/zone/subzone" or NULL */
    const char *key;               /* "127.0.0.1:8080": names the endpoint in pools and stats */
    uint32_t weight;               /* default 1 */
    uint32_t priority;             /* 0 = most preferred */
    uint16_t port;
    socklen_t salen;
    struct sockaddr_storage sa;    /* resolved at load time: numeric addresses only */
};

struct mesh_ring_entry {
    uint64_t hash;
    uint32_t ep;                   /* index into cluster->endpoints */
};

/* The endpoints of one priority, with the hash tables over them (built at load). */
struct mesh_lb_level {
    uint32_t priority;
    uint32_t *eps;                 /* indexes into cluster->endpoints */
    size_t n_eps;
    struct mesh_ring_entry *ring;  /* ring_hash: sorted by hash */
    size_t n_ring;
    uint32_t *maglev;              /* maglev: maglev_table_size endpoint indexes */
};

struct mesh_cluster {
    const char *name;
    size_t index;                  /* position in snapshot->clusters (per-worker state is indexed by it) */
    enum mesh_upstream_proto protocol;
    enum mesh_lb_policy lb_policy;
    struct mesh_hash_policy hash;  /* ring_hash and maglev */
    uint32_t ring_size;            /* default 1024 */
    uint32_t maglev_table_size;    /* default 65537 */
    uint32_t slow_start_ms;        /* 0 = off */
    uint32_t connect_timeout_ms;   /* default 1000 */
    uint32_t idle_timeout_ms;      /* idle pooled upstream connection; default 60000 */
    uint32_t max_connections;      /* per endpoint per worker; default 1024 */
    uint32_t max_pending_requests; /* waiting for a connection, per endpoint per worker; default 1024 */
    uint32_t max_requests;         /* in flight to the cluster, all workers; default UINT32_MAX */
    uint32_t max_retries;          /* retries in flight to the cluster, all workers; default UINT32_MAX */
    uint32_t max_requests_per_connection; /* 0 = unlimited */
    struct mesh_tcp_keepalive keepalive;
    struct mesh_outlier_cfg outlier;
    struct mesh_endpoint *endpoints;
    size_t n_endpoints;
    struct mesh_lb_level *levels;  /* by priority, most preferred first */
    size_t n_levels;
    bool equal_weights;            /* every endpoint has the same weight */
};

#endif /* MESH_CORE_SNAPSHOT_CLUSTER_H */
