/*
 * Clusters and endpoints of a snapshot (docs/snapshot.md, "clusters[]"):
 * where a request goes and how an endpoint is chosen. Parsed by
 * snapshot_cluster.c; the load balancers (lb.c) and pools (upstream.c) read it.
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
};

struct mesh_endpoint {
    const char *address;           /* as written: "127.0.0.1", "::1" */
    uint16_t port;
    uint32_t weight;               /* default 1 */
    struct sockaddr_storage sa;    /* resolved at load time: numeric addresses only */
    socklen_t salen;
    const char *key;               /* "127.0.0.1:8080": names the endpoint in pools and stats */
};

struct mesh_cluster {
    const char *name;
    size_t index;                  /* position in snapshot->clusters (per-worker state is indexed by it) */
    enum mesh_upstream_proto protocol;
    enum mesh_lb_policy lb_policy;
    uint32_t connect_timeout_ms;   /* default 1000 */
    uint32_t idle_timeout_ms;      /* idle pooled upstream connection; default 60000 */
    uint32_t max_connections;      /* per endpoint per worker; default 1024 */
    uint32_t max_pending_requests; /* waiting for a connection; default 1024 */
    uint32_t max_requests_per_connection; /* 0 = unlimited */
    struct mesh_endpoint *endpoints;
    size_t n_endpoints;
};

#endif /* MESH_CORE_SNAPSHOT_CLUSTER_H */
