/*
 * Load balancing and outlier detection (docs/snapshot.md, "clusters[]"):
 * which endpoint of a cluster serves a request, and what each answer says
 * about that endpoint's health.
 */
#ifndef MESH_CORE_LB_H
#define MESH_CORE_LB_H

#include "core/snapshot.h"

struct mesh_stream;
struct mesh_worker;
struct mesh_conn;
struct mesh_lb_shared;
struct mesh_lb_worker;

/*
 * Endpoint of <cl> for <s> (its headers, peer and the endpoints it already
 * tried feed the hash and retry policies). NULL when the cluster has no
 * endpoint to offer (none, or all ejected beyond the policy). Every pick that
 * returns an endpoint is matched by exactly one mesh_lb_done() for <s>.
 */
const struct mesh_endpoint *mesh_lb_pick(struct mesh_stream *s, const struct mesh_cluster *cl);
enum mesh_lb_result {
    MESH_LB_OK = 0,
    MESH_LB_NO_HEALTHY,   /* no endpoint to offer: 503 UH */
    MESH_LB_OVERFLOW,     /* the cluster's max_requests are in flight: 503 UO */
};
/*
 * mesh_lb_pick() that also enforces the cluster's max_requests (all workers
 * together). *out is set only with MESH_LB_OK, which is matched by one
 * mesh_lb_done() like a pick.
 */
enum mesh_lb_result mesh_lb_pick_ex(struct mesh_stream *s, const struct mesh_cluster *cl,
                                    const struct mesh_endpoint **out);
/*
 * The try that mesh_lb_pick() started ended: <status> is the upstream's final
 * status (0 when there was none: connect failure, reset, timeout, client
 * gone) and <flags> the MESH_RF_* that describe the failure.
 */
void mesh_lb_done(struct mesh_stream *s, int status, unsigned flags);

/*
 * A retry of a request to <cl> may start: false when the cluster's
 * max_retries retries are already in flight (the caller then gives up
 * retrying). Each true is matched by one mesh_lb_retry_release().
 */
bool mesh_lb_retry_acquire(struct mesh_worker *w, const struct mesh_cluster *cl);
void mesh_lb_retry_release(struct mesh_worker *w, const struct mesh_cluster *cl);

/*
 * The same choice for a TCP connection (tcp_routes): no request, so hash
 * policies hash the source address of <c>. Matched by one mesh_lb_done_tcp().
 * For a passthrough cluster the endpoint (the connection's original destination)
 * lives in one slot of the worker, valid until its next pick: a caller that keeps it
 * copies it (tcp_proxy.c does).
 */
const struct mesh_endpoint *mesh_lb_pick_tcp(struct mesh_worker *w, const struct mesh_cluster *cl,
                                             const struct mesh_conn *c);
/* <ok>: the connection to <ep> was established (false: it failed or was refused). */
void mesh_lb_done_tcp(struct mesh_worker *w, const struct mesh_cluster *cl,
                      const struct mesh_endpoint *ep, bool ok);

/* ---- Lifecycle (worker.c) ---- */
/* State shared by the workers of one runtime (outlier detection, in-flight counts). */
struct mesh_lb_shared *mesh_lb_shared_new(void);
/* After every worker's state is freed. */
void mesh_lb_shared_free(struct mesh_lb_shared *sh);
/* Tests: a fixed clock (ms) for ejections and slow start; 0 = the real clock. */
void mesh_lb_shared_set_clock(struct mesh_lb_shared *sh, uint64_t now_ms);
/* One worker's state; <w> receives its stats (may be NULL in tests). */
struct mesh_lb_worker *mesh_lb_worker_new(struct mesh_lb_shared *sh, struct mesh_worker *w,
                                          uint64_t seed);
void mesh_lb_worker_free(struct mesh_lb_worker *wl);
/*
 * The worker now serves <snap>: binds its clusters to the shared state
 * before the previous snapshot's binding may go, so that state survives a
 * reload for every cluster and endpoint that stays.
 */
void mesh_lb_worker_snapshot(struct mesh_lb_worker *wl, struct mesh_snapshot *snap);
/*
 * Drops the bindings of snapshots that only the bindings still hold (every
 * connection on them closed), freeing those snapshots. Runs by itself on the
 * worker's loop (every LB_SWEEP_MS while there are old bindings); callable
 * directly (tests).
 */
void mesh_lb_worker_sweep(struct mesh_lb_worker *wl);

/* ---- Introspection (admin /clusters; any thread) ---- */
struct mesh_lb_cluster_info {
    uint32_t rq_active, retries_active, n_ejected;
};
struct mesh_lb_ep_info {
    bool ejected, warming;
    uint64_t ejected_for_ms;       /* left of the current ejection */
    uint32_t active, cons_5xx, cons_gw, times_ejected;
    uint64_t total_ejections;
};
void mesh_lb_cluster_info(struct mesh_lb_shared *sh, const struct mesh_cluster *cl,
                          struct mesh_lb_cluster_info *out);
void mesh_lb_endpoint_info(struct mesh_lb_shared *sh, const struct mesh_cluster *cl,
                           const struct mesh_endpoint *ep, struct mesh_lb_ep_info *out);
/* Returns ejected endpoints whose time is up in every cluster due for review. */
void mesh_lb_review_all(struct mesh_lb_shared *sh);

#endif /* MESH_CORE_LB_H */
