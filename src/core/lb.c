/*
 * Load balancers: which endpoint of a cluster serves a request. Per-worker
 * cursors, no locks.
 */
#include "core/common.h"
#include "core/lb.h"
#include "core/proxy-int.h"

static uint64_t next_rand(struct mesh_worker *w)
{
    uint64_t x = w->rand_state; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rand_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static const struct mesh_endpoint *pick(struct mesh_worker *w, const struct mesh_cluster *cl)
{
    size_t n = cl->n_endpoints;
    if (!n)
        return NULL;
    if (n == 1)
        return &cl->endpoints[0];
    if (cl->lb_policy == MESH_LBP_RANDOM)
        return &cl->endpoints[(next_rand(w) >> 33) % n];
    /* per-cluster cursors belong to the worker's snapshot; an older one shares a global cursor */
    uint32_t *cur = cl->index < w->n_rr && w->snap->n_clusters == w->n_rr ? &w->rr[cl->index] : NULL;
    uint64_t k = cur ? (*cur)++ : w->rr_seq++;
    return &cl->endpoints[k % n];
}

const struct mesh_endpoint *mesh_lb_pick(struct mesh_stream *s, const struct mesh_cluster *cl)
{
    return pick(s->w, cl);
}

const struct mesh_endpoint *mesh_lb_pick_tcp(struct mesh_worker *w, const struct mesh_cluster *cl,
                                             const struct mesh_conn *c)
{
    (void)c;
    return pick(w, cl);
}

void mesh_lb_done_tcp(struct mesh_worker *w, const struct mesh_cluster *cl,
                      const struct mesh_endpoint *ep, bool ok)
{
    (void)w;
    (void)cl;
    (void)ep;
    (void)ok;
}

bool mesh_lb_retry_acquire(struct mesh_worker *w, const struct mesh_cluster *cl)
{
    (void)w;
    (void)cl;
    return true;
}

void mesh_lb_retry_release(struct mesh_worker *w, const struct mesh_cluster *cl)
{
    (void)w;
    (void)cl;
}

void mesh_lb_done(struct mesh_stream *s, int status, unsigned flags)
{
    (void)s;
    (void)status;
    (void)flags;
}
