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

const struct mesh_endpoint *mesh_lb_pick(struct mesh_stream *s, const struct mesh_cluster *cl)
{
    struct mesh_worker *w = s->w;
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

void mesh_lb_done(struct mesh_stream *s, int status, unsigned flags)
{
    (void)s;
    (void)status;
    (void)flags;
}
