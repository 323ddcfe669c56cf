/*
 * Inside the load balancer (lb.c: bindings and picks; outlier.c: state
 * shared by the workers, outlier detection). Nothing else includes this.
 *
 * State lives at two levels:
 * - shared (struct mesh_lb_shared, one per runtime): per cluster *name* and
 *   endpoint *key*, so it survives a reload that keeps them: active request
 *   counts, consecutive error counters, ejections. Counters are atomics
 *   touched on the hot path; ejection and review take sh->lock.
 * - per worker (struct mesh_lb_worker): a *binding* of each recent snapshot's
 *   clusters to their shared state, and the view the picks walk (the usable
 *   endpoints of each priority level, cumulative weights, the EDF heap and
 *   its precomputed schedule). The view is rebuilt when the cluster's
 *   ejection epoch moves, and when slow start ends for weighted round robin.
 *   A cluster of a binding is bound (lc->cs set, shared state referenced,
 *   arrays allocated) on first use, or at once when it already has shared
 *   state or slow start: a sidecar holds every service of the mesh and
 *   talks to a few.
 */
#ifndef MESH_CORE_LB_INT_H
#define MESH_CORE_LB_INT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include "core/lb.h"
#include "core/proxy-int.h"

struct lb_ep_state {
    char *key;                         /* owned */
    struct lb_ep_state *hnext;         /* in the cluster state's hash */
    unsigned refs;                     /* bindings holding it (sh->lock) */
    _Atomic uint32_t active;           /* requests in flight, all workers */
    _Atomic uint32_t cons_5xx, cons_gw;
    _Atomic bool ejected;              /* written under sh->lock */
    uint64_t ejected_until_ms;         /* sh->lock */
    uint64_t last_change_ms;           /* last ejection or return (sh->lock) */
    uint32_t times_ejected;            /* the ejection multiplier (sh->lock) */
    uint64_t total_ejections;          /* sh->lock */
    uint64_t warm_start_ms;            /* slow start from here; 0 = none (immutable) */
};

struct lb_cluster_state {
    char *name;                        /* owned */
    struct lb_cluster_state *next;     /* in sh->clusters */
    unsigned refs;                     /* bindings holding it (sh->lock) */
    struct lb_ep_state **tab;          /* hash by key (sh->lock) */
    size_t tab_size, n_eps;
    _Atomic uint32_t rq_active;        /* requests in flight (max_requests) */
    _Atomic uint32_t retries_active;   /* retries in flight (max_retries) */
    _Atomic uint64_t epoch;            /* bumps when an endpoint is ejected or returns */
    _Atomic uint64_t next_review_ms;
    uint32_t n_ejected;                /* sh->lock */
    struct mesh_outlier_cfg od;        /* of the newest binding (sh->lock) */
    size_t n_endpoints;                /* of the newest binding (sh->lock) */
};

struct mesh_lb_shared {
    pthread_mutex_t lock;
    struct lb_cluster_state *clusters;
    _Atomic uint64_t fake_now_ms;      /* tests: a fixed clock when non-zero */
};

/* EDF entry: virtual times in 1/2^32 units of "one pick of a weight 1 endpoint" */
struct lb_heap_ent {
    uint64_t deadline;
    uint64_t step;                     /* 2^32 / weight, while no endpoint warms up */
    uint32_t ep;
};

/* The usable endpoints of one priority level, as a worker picks from them. */
struct lb_view_level {
    uint32_t *avail;                   /* endpoint indexes */
    size_t n;
    uint32_t *prob, *alias;            /* Vose's alias table over avail: O(1) weighted draws */
    uint32_t *work;                    /* scratch for building it (2 x the level's size) */
    struct lb_heap_ent *heap;          /* EDF for weighted round robin */
    uint32_t *sched;                   /* weighted round robin: one EDF period, precomputed
                                        * (NULL unless the cluster is weighted round robin) */
    uint32_t sched_cap, sched_len;     /* sched_len 0: the heap picks (slow start, long period) */
    uint32_t cursor;                   /* round robin: into avail (equal weights) or sched */
};

struct lb_cl {
    const struct mesh_cluster *cl;
    struct lb_cluster_state *cs;       /* NULL until bound (see above): nothing below is set */
    struct lb_ep_state **eps;          /* per endpoint index */
    uint8_t *usable;                   /* per endpoint index, in the view */
    struct lb_view_level *lv;          /* per cl->levels */
    uint32_t *load_cum;                /* per level: cumulative share in 1/10000 */
    uint64_t epoch;                    /* of the view; UINT64_MAX = build it */
    uint64_t warm_until_ms;            /* an endpoint warms up until then */
};

struct lb_bind {
    struct mesh_snapshot *snap;        /* reference */
    struct lb_cl *cls;                 /* per snap->clusters */
};

#define LB_BINDS 4
/* how often a worker looks for bindings whose snapshot only they still hold */
#define LB_SWEEP_MS 1000
#define LB_SWEEP_FIRST_MS 50           /* after a new snapshot */

struct mesh_lb_worker {
    struct mesh_lb_shared *sh;
    struct mesh_worker *w;             /* stats; NULL in some tests */
    struct lb_bind *binds[LB_BINDS];   /* most recently bound first */
    uint64_t rand;
    bool sweep_armed;                  /* a sweep of old bindings is due (lb.c) */
    /* mesh_lb_pick_tcp() of a passthrough cluster: the original destination of the last
     * connection picked for, valid until the next pick (its caller keeps a copy). One slot,
     * not a list: the destinations a worker meets are unbounded. */
    struct mesh_endpoint pt_ep;
    char pt_addr[INET6_ADDRSTRLEN], pt_key[INET6_ADDRSTRLEN + 10];
};

uint64_t mesh_lb_now_ms(struct mesh_lb_shared *sh);

/* outlier.c: shared state (each under sh->lock unless said otherwise) */
struct lb_cluster_state *mesh_lb_cluster_ref(struct mesh_lb_shared *sh, const char *name,
                                             bool *created);
struct lb_ep_state *mesh_lb_ep_ref(struct lb_cluster_state *cs, const char *key, bool initial,
                                   uint64_t now);
void mesh_lb_ep_unref(struct mesh_lb_shared *sh, struct lb_cluster_state *cs,
                      struct lb_ep_state *es);
void mesh_lb_cluster_unref(struct mesh_lb_shared *sh, struct lb_cluster_state *cs);
struct lb_cluster_state *mesh_lb_cluster_find(struct mesh_lb_shared *sh, const char *name);
struct lb_ep_state *mesh_lb_ep_find(struct lb_cluster_state *cs, const char *key);
/* Takes the lock itself: returns ejected endpoints whose time is up (at most every interval). */
void mesh_lb_review(struct mesh_lb_shared *sh, struct lb_cluster_state *cs, uint64_t now);
/* An answer from <es> (no lock held): counts it and ejects when a threshold is reached. */
void mesh_lb_outlier_report(struct mesh_lb_worker *wl, struct lb_cl *lc, struct lb_ep_state *es,
                            int status, unsigned flags, uint64_t now);

/* lb.c, for the tests: the binding of <cl> (a cluster of <snap>) in <wl>, built if needed. */
struct lb_cl *mesh_lb_bind_cluster(struct mesh_lb_worker *wl, struct mesh_snapshot *snap,
                                   const struct mesh_cluster *cl);

#endif /* MESH_CORE_LB_INT_H */
