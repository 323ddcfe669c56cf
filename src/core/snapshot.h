/*
 * The snapshot: the compiled, self-contained configuration of one proxy, and
 * the only thing the data plane reads (docs/snapshot.md is the schema).
 *
 * A snapshot is immutable once loaded and refcounted: the runtime holds one
 * reference for "current", every worker holds one for the snapshot it serves
 * from, and every connection holds one for the snapshot it was accepted under.
 * All memory of a snapshot lives in its own arena and is freed with the last
 * reference.
 */
#ifndef MESH_CORE_SNAPSHOT_H
#define MESH_CORE_SNAPSHOT_H

#include <stdatomic.h>
#include <sys/socket.h>
#include "core/common.h"
#include "core/status.h"
#include "core/snapshot_cluster.h" /* clusters, endpoints */
#include "core/snapshot_dns.h"     /* the dns table */
#include "core/snapshot_l4.h"      /* tcp and tls routes */
#include "core/snapshot_match.h"   /* route matches */
#include "core/snapshot_policy.h"  /* retries, mirrors, filters */

struct mesh_arena;
struct mesh_route_index;

enum mesh_route_action {
    MESH_ACTION_CLUSTER = 0,
    MESH_ACTION_DIRECT = 1,
    MESH_ACTION_REDIRECT = 2,      /* answered by the route's redirect filter */
};

struct mesh_weighted_cluster {
    const struct mesh_cluster *cluster;
    uint32_t weight;
    struct mesh_filter *filters;   /* destination-level filters (header operations) */
    size_t n_filters;
};

struct mesh_route {
    struct mesh_route_match match; /* snapshot_match.h */
    enum mesh_route_action action;
    /* MESH_ACTION_CLUSTER */
    const struct mesh_cluster *cluster; /* resolved at load: never NULL for a CLUSTER route */
    struct mesh_weighted_cluster *weighted; /* a split by weight instead of <cluster> */
    size_t n_weighted;
    uint32_t total_weight;
    uint32_t timeout_ms;           /* whole request; 0 = the snapshot's request timeout */
    /* MESH_ACTION_DIRECT */
    int direct_status;
    const char *direct_body;       /* may be NULL */
    size_t direct_body_len;
    /* every action */
    const struct mesh_route_policy *policy; /* snapshot_policy.h; NULL = nothing more to do */
};

struct mesh_vhost {
    const char *name;
    const char **domains;          /* lowercase: "example.com", "*.example.com", "example.*", "*" */
    size_t n_domains;
    struct mesh_route *routes;
    size_t n_routes;
    const struct mesh_route_index *index; /* built by router.c at load; NULL = scan in order */
};

struct mesh_route_config {
    const char *name;
    struct mesh_vhost *vhosts;
    size_t n_vhosts;
};

struct mesh_listener_cfg {
    const char *name;
    const char *address;
    uint16_t port;                 /* 0 = ephemeral (tests) */
    struct sockaddr_storage sa;
    socklen_t salen;
    const struct mesh_route_config *route_config; /* resolved at load; NULL with a handler */
    const char *handler;           /* served by a handler the role registered (control API) */
    const struct mesh_listener_l4 *l4; /* snapshot_l4.h: tcp/tls routes and "unmatched";
                                          NULL = HTTP only */
};

struct mesh_timeouts {
    uint32_t request_ms;           /* whole request, default 15000 (Istio has none; Envoy 15s) */
    uint32_t idle_ms;              /* downstream connection idle, default 300000 */
    uint32_t stream_idle_ms;       /* no bytes on a stream, default 300000 */
    uint32_t drain_ms;             /* SIGTERM grace, default 5000 */
};

struct mesh_snapshot {
    _Atomic unsigned refcnt;
    struct mesh_arena *arena;      /* owns every string and array below */
    const char *version;
    const char *admin_address;     /* NULL when there is no admin listener */
    uint16_t admin_port;
    struct sockaddr_storage admin_sa;
    socklen_t admin_salen;
    struct mesh_listener_cfg *listeners;
    size_t n_listeners;
    struct mesh_route_config *route_configs;
    size_t n_route_configs;
    struct mesh_cluster *clusters;
    size_t n_clusters;
    struct mesh_timeouts timeouts;
    struct mesh_dns_table dns;     /* snapshot_dns.h: mesh names -> addresses; empty when absent */
    /* the source document re-serialised (compact, sorted keys) and compressed (lz.h):
     * read it with mesh_snapshot_dump(), for /config_dump */
    const unsigned char *json_lz;
    size_t json_lz_len, json_len;
    /*
     * A snapshot derived by a delta (snapshot_delta.h) has clusters of its own and shares
     * everything else with <parent>, which it holds a reference to; its document is the
     * parent's with <delta> ({"clusters": [...]}, compact) applied (no json_lz of its own);
     * <depth> counts the deltas since a whole load. NULL / 0 for a loaded snapshot.
     */
    struct mesh_snapshot *parent;
    const char *delta;
    unsigned depth;
};

/**
 * Parses and validates a snapshot from JSON text. On success returns a
 * snapshot with one reference (caller owns). On failure returns NULL and
 * fills <err> with every problem found, each with its JSON path
 * ("clusters[0].endpoints[1].port") and reason; a JSON syntax error carries
 * line and column instead. <err> is initialised here (err->file = NULL; set
 * it afterwards to name the source); NULL discards the errors. Setup path.
 */
struct mesh_snapshot *mesh_snapshot_parse(const char *json, size_t len, struct mesh_err *err);
/**
 * Reads <path> and parses it. <err> is initialised here with err->file =
 * <path> (borrowed: keep <path> alive while formatting the errors).
 */
struct mesh_snapshot *mesh_snapshot_load_file(const char *path, struct mesh_err *err);

static inline struct mesh_snapshot *mesh_snapshot_ref(struct mesh_snapshot *s)
{
    atomic_fetch_add_explicit(&s->refcnt, 1, memory_order_relaxed);
    return s;
}
/** Drops one reference; the last one frees the snapshot. NULL is allowed. */
void mesh_snapshot_unref(struct mesh_snapshot *s);

/**
 * The source document, NUL-terminated: indented by 2 with sorted keys when
 * <indent> (/config_dump), else compact. NULL when out of memory. Caller
 * frees. Admin path: decompresses (and to indent, parses) the kept copy.
 */
char *mesh_snapshot_dump(const struct mesh_snapshot *s, bool indent);

/*
 * The cluster of <s> that <c> names, where <c> was taken from a route, a mirror or a
 * listener of <s>. A snapshot derived from another by a delta (snapshot_delta.h) shares its
 * routes and listeners with it but has its own clusters, at the same indexes: every
 * cluster taken from configuration for a request or a connection goes through this.
 */
static inline const struct mesh_cluster *mesh_snapshot_cluster(const struct mesh_snapshot *s,
                                                               const struct mesh_cluster *c)
{
    return c ? &s->clusters[c->index] : NULL;
}

/** Cluster by name, or NULL. A linear scan: for setup and admin, not per request. */
const struct mesh_cluster *mesh_snapshot_find_cluster(const struct mesh_snapshot *s,
                                                      const char *name);

#endif /* MESH_CORE_SNAPSHOT_H */
