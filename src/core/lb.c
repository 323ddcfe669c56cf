/*
 * Load balancers: which endpoint of a cluster serves a request (docs/snapshot.md,
 * "clusters[]"). Per worker, no lock on the pick: the worker's binding of the
 * stream's snapshot gives the view (usable endpoints per priority level), and
 * shared atomics give the requests in flight. See lb-int.h for the layout.
 *
 * Costs per pick at n endpoints: round robin O(1) (equal weights, or weighted
 * with the EDF period precomputed) or O(log n) (the EDF heap itself, Envoy's
 * weighted round robin, while an endpoint warms up or when the period is too
 * long to precompute); random and least request O(1) or
 * O(log n) (binary search over cumulative weights); ring hash O(log ring);
 * Maglev O(1). Rebuilding a view is O(n) and happens only when an endpoint is
 * ejected or returns.
 */
#include "core/common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/lb-int.h"
#include "core/lb_hash.h"
#include "core/snapshot_policy.h"

/* Envoy's overprovisioning factor: a level 71% healthy still takes all its traffic. */
#define LB_OVERPROVISION 140
#define LB_LOAD_SCALE 10000u
/* Envoy's slow start floor: a new endpoint starts at this share of its weight. */
#define LB_WARM_MIN 0.1
/* picks that may land on an endpoint already tried before settling (retry on another host) */
#define LB_OTHER_HOST_TRIES 5
/* a weighted round robin schedule: at most this many slots per endpoint, and in all */
#define LB_SCHED_PER_EP 8
#define LB_SCHED_MAX 65536

/* ---- Randomness and time ---- */

static uint64_t next_rand(struct mesh_lb_worker *wl)
{
    uint64_t x = wl->rand; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    wl->rand = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [0, n) without a division (Lemire's multiply-shift). */
static uint32_t rand_below(struct mesh_lb_worker *wl, uint64_t n)
{
    return (uint32_t)(((next_rand(wl) >> 32) * n) >> 32);
}

static double rand01(struct mesh_lb_worker *wl)
{
    return (double)(next_rand(wl) >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t lb_now(struct mesh_lb_worker *wl)
{
    uint64_t fake = atomic_load_explicit(&wl->sh->fake_now_ms, memory_order_relaxed);
    if (fake)
        return fake;
    if (wl->w && wl->w->base) /* the turn's clock: no system call per pick */
        return mesh_worker_now_ms(wl->w);
    return mesh_lb_now_ms(wl->sh);
}

static void dec_sat(_Atomic uint32_t *c)
{
    uint32_t v = atomic_load_explicit(c, memory_order_relaxed);
    while (v && !atomic_compare_exchange_weak_explicit(c, &v, v - 1, memory_order_relaxed,
                                                       memory_order_relaxed))
        ;
}

/* ---- Bindings ---- */

/*
 * Binds <lc> (its cluster) to the shared state, with the arrays its view
 * needs. Under sh->lock. Only a cluster that gets traffic pays for this: a
 * sidecar's snapshot names every service of the mesh, and most never see a
 * request from it.
 */
static void bind_fill(struct mesh_lb_worker *wl, struct lb_cl *lc, uint64_t now)
{
    const struct mesh_cluster *cl = lc->cl;
    bool created;
    lc->epoch = UINT64_MAX;
    lc->cs = mesh_lb_cluster_ref(wl->sh, cl->name, &created);
    lc->cs->od = cl->outlier;
    lc->cs->n_endpoints = cl->n_endpoints;
    if (cl->outlier.enabled && !atomic_load(&lc->cs->next_review_ms))
        atomic_store(&lc->cs->next_review_ms, now + cl->outlier.interval_ms);
    size_t n = cl->n_endpoints;
    lc->eps = mesh_xcalloc(n ? n : 1, sizeof(*lc->eps));
    lc->usable = mesh_xcalloc(n ? n : 1, 1);
    for (size_t e = 0; e < n; e++)
        lc->eps[e] = mesh_lb_ep_ref(lc->cs, cl->endpoints[e].key, created, now);
    lc->lv = mesh_xcalloc(cl->n_levels ? cl->n_levels : 1, sizeof(*lc->lv));
    lc->load_cum = mesh_xcalloc(cl->n_levels ? cl->n_levels : 1, sizeof(*lc->load_cum));
    for (size_t l = 0; l < cl->n_levels; l++) {
        size_t m = cl->levels[l].n_eps;
        lc->lv[l].avail = mesh_xcalloc(m, sizeof(*lc->lv[l].avail));
        lc->lv[l].prob = mesh_xcalloc(m, sizeof(*lc->lv[l].prob));
        lc->lv[l].alias = mesh_xcalloc(m, sizeof(*lc->lv[l].alias));
        lc->lv[l].work = mesh_xcalloc(2 * m, sizeof(*lc->lv[l].work));
        lc->lv[l].heap = mesh_xcalloc(m, sizeof(*lc->lv[l].heap));
        if (cl->lb_policy == MESH_LBP_ROUND_ROBIN && !cl->equal_weights) {
            size_t cap = MESH_MIN(m * LB_SCHED_PER_EP, (size_t)LB_SCHED_MAX);
            lc->lv[l].sched = mesh_xcalloc(cap, sizeof(*lc->lv[l].sched));
            lc->lv[l].sched_cap = (uint32_t)cap;
        }
    }
}

/* The first use of <lc> in this binding. */
static __attribute__((noinline)) void bind_fill_now(struct mesh_lb_worker *wl, struct lb_cl *lc)
{
    uint64_t now = lb_now(wl);
    pthread_mutex_lock(&wl->sh->lock);
    bind_fill(wl, lc, now);
    pthread_mutex_unlock(&wl->sh->lock);
}

static struct lb_bind *bind_new(struct mesh_lb_worker *wl, struct mesh_snapshot *snap)
{
    struct lb_bind *b = mesh_xcalloc(1, sizeof(*b));
    b->snap = mesh_snapshot_ref(snap);
    b->cls = mesh_xcalloc(snap->n_clusters ? snap->n_clusters : 1, sizeof(*b->cls));
    uint64_t now = lb_now(wl);
    pthread_mutex_lock(&wl->sh->lock);
    for (size_t i = 0; i < snap->n_clusters; i++) {
        struct lb_cl *lc = &b->cls[i];
        lc->cl = &snap->clusters[i];
        /* Bound now: a cluster that has shared state (traffic under an earlier snapshot,
         * here or in another worker), so that its counters, ejections and in-flight
         * requests carry over; and one with slow start, whose endpoints added by a later
         * snapshot must be told from its first ones. The others bind on first use. */
        if (lc->cl->slow_start_ms || mesh_lb_cluster_find(wl->sh, lc->cl->name))
            bind_fill(wl, lc, now);
    }
    pthread_mutex_unlock(&wl->sh->lock);
    return b;
}

static void bind_free(struct mesh_lb_worker *wl, struct lb_bind *b)
{
    struct mesh_snapshot *snap = b->snap;
    pthread_mutex_lock(&wl->sh->lock);
    for (size_t i = 0; i < snap->n_clusters; i++) {
        struct lb_cl *lc = &b->cls[i];
        if (!lc->cs)
            continue;
        for (size_t e = 0; e < lc->cl->n_endpoints; e++)
            mesh_lb_ep_unref(wl->sh, lc->cs, lc->eps[e]);
        mesh_lb_cluster_unref(wl->sh, lc->cs);
    }
    pthread_mutex_unlock(&wl->sh->lock);
    for (size_t i = 0; i < snap->n_clusters; i++) {
        struct lb_cl *lc = &b->cls[i];
        if (!lc->cs)
            continue;
        for (size_t l = 0; l < lc->cl->n_levels; l++) {
            free(lc->lv[l].avail);
            free(lc->lv[l].prob);
            free(lc->lv[l].alias);
            free(lc->lv[l].work);
            free(lc->lv[l].heap);
            free(lc->lv[l].sched);
        }
        free(lc->lv);
        free(lc->load_cum);
        free(lc->eps);
        free(lc->usable);
    }
    free(b->cls);
    free(b);
    mesh_snapshot_unref(snap);
}

static struct lb_bind *bind_get(struct mesh_lb_worker *wl, struct mesh_snapshot *snap)
{
    for (size_t i = 0; i < LB_BINDS; i++)
        if (wl->binds[i] && wl->binds[i]->snap == snap)
            return wl->binds[i];
    /* the new one goes first; the oldest goes (a stream still on it rebinds) */
    struct lb_bind *b = bind_new(wl, snap);
    if (wl->binds[LB_BINDS - 1])
        bind_free(wl, wl->binds[LB_BINDS - 1]);
    memmove(&wl->binds[1], &wl->binds[0], (LB_BINDS - 1) * sizeof(wl->binds[0]));
    wl->binds[0] = b;
    return b;
}

static bool snap_has(const struct mesh_snapshot *snap, const struct mesh_cluster *cl)
{
    return snap->n_clusters && cl >= snap->clusters && cl < snap->clusters + snap->n_clusters;
}

static void arm_sweep(struct mesh_lb_worker *wl, unsigned ms);

/* The binding of <cl>: from any bound snapshot, else <hint>'s, else the worker's current one. */
static struct lb_cl *bind_for(struct mesh_lb_worker *wl, const struct mesh_cluster *cl,
                              struct mesh_snapshot *hint)
{
    struct lb_cl *lc = NULL;
    for (size_t i = 0; i < LB_BINDS; i++)
        if (wl->binds[i] && snap_has(wl->binds[i]->snap, cl)) {
            lc = &wl->binds[i]->cls[cl->index];
            break;
        }
    if (!lc) {
        if (!hint && wl->w && wl->w->snap && snap_has(wl->w->snap, cl))
            hint = wl->w->snap;
        if (!hint || !snap_has(hint, cl))
            return NULL;
        lc = &bind_get(wl, hint)->cls[cl->index];
        if (wl->w && hint != wl->w->snap)
            arm_sweep(wl, LB_SWEEP_MS); /* a stream's old snapshot came back */
    }
    if (MESH_UNLIKELY(!lc->cs))
        bind_fill_now(wl, lc);
    return lc;
}

struct lb_cl *mesh_lb_bind_cluster(struct mesh_lb_worker *wl, struct mesh_snapshot *snap,
                                   const struct mesh_cluster *cl)
{
    return bind_for(wl, cl, snap);
}

struct mesh_lb_worker *mesh_lb_worker_new(struct mesh_lb_shared *sh, struct mesh_worker *w,
                                          uint64_t seed)
{
    struct mesh_lb_worker *wl = mesh_xcalloc(1, sizeof(*wl));
    wl->sh = sh;
    wl->w = w;
    wl->rand = seed ? seed : 0x9E3779B97F4A7C15ULL;
    return wl;
}

/*
 * Frees the bindings whose snapshot nobody but the binding holds any more (no
 * connection, not the worker's nor the runtime's current one: nothing can
 * take a new reference to it), so that an old snapshot goes as soon as its
 * last connection does rather than when LB_BINDS newer ones push it out.
 * Returns whether a binding of another snapshot than the worker's is left.
 */
static bool sweep(struct mesh_lb_worker *wl)
{
    const struct mesh_snapshot *cur = wl->w ? wl->w->snap : NULL;
    size_t k = 0;
    bool left = false;
    for (size_t i = 0; i < LB_BINDS; i++) {
        struct lb_bind *b = wl->binds[i];
        if (!b)
            continue;
        if (b->snap != cur && atomic_load(&b->snap->refcnt) == 1) {
            bind_free(wl, b);
            continue;
        }
        left |= b->snap != cur;
        wl->binds[k++] = b;
    }
    for (; k < LB_BINDS; k++)
        wl->binds[k] = NULL;
    return left;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct mesh_lb_worker *wl = arg;
    wl->sweep_armed = false;
    if (sweep(wl))
        arm_sweep(wl, LB_SWEEP_MS);
}

/* A one-shot timer on the worker's loop (freed by libevent with the base if pending). */
static void arm_sweep(struct mesh_lb_worker *wl, unsigned ms)
{
    if (wl->sweep_armed || !wl->w || !wl->w->base)
        return;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    wl->sweep_armed = event_base_once(wl->w->base, -1, EV_TIMEOUT, on_sweep, wl, &tv) == 0;
}

void mesh_lb_worker_snapshot(struct mesh_lb_worker *wl, struct mesh_snapshot *snap)
{
    bind_get(wl, snap);
    /* the previous snapshot is the worker's until the caller moves on, and the runtime's
     * until the swap returns: the first sweep comes soon after (an idle sidecar frees it
     * then), the next ones every LB_SWEEP_MS while a connection holds it */
    for (size_t i = 1; i < LB_BINDS; i++)
        if (wl->binds[i])
            arm_sweep(wl, LB_SWEEP_FIRST_MS);
}

void mesh_lb_worker_sweep(struct mesh_lb_worker *wl)
{
    sweep(wl);
}

void mesh_lb_worker_free(struct mesh_lb_worker *wl)
{
    if (!wl)
        return;
    for (size_t i = 0; i < LB_BINDS; i++)
        if (wl->binds[i])
            bind_free(wl, wl->binds[i]);
    free(wl);
}

/* ---- Views ---- */

static double warm_factor(const struct lb_cl *lc, uint32_t idx, uint64_t now)
{
    uint64_t start = lc->eps[idx]->warm_start_ms;
    uint32_t win = lc->cl->slow_start_ms;
    if (!start || !win || now >= start + win)
        return 1.0;
    double f = (double)(now - start) / win;
    return f < LB_WARM_MIN ? LB_WARM_MIN : f;
}

static double eff_weight(const struct lb_cl *lc, uint32_t idx, uint64_t now)
{
    double w = lc->cl->endpoints[idx].weight;
    return now < lc->warm_until_ms ? w * warm_factor(lc, idx, now) : w;
}

static bool heap_less(const struct lb_heap_ent *a, const struct lb_heap_ent *b)
{
    return a->deadline < b->deadline;
}

#define EDF_ONE (1ull << 32)

static uint64_t edf_step(double w)
{
    double s = (double)EDF_ONE / w;
    return s < 1 ? 1 : (uint64_t)s;
}

/* A 4-ary min-heap: half the levels of a binary one, the children share a cache line. */
static void heap_down(struct lb_heap_ent *h, size_t n, size_t i)
{
    for (;;) {
        size_t c = 4 * i + 1, m = i;
        size_t end = MESH_MIN(c + 4, n);
        for (; c < end; c++)
            if (heap_less(&h[c], &h[m]))
                m = c;
        if (m == i)
            return;
        struct lb_heap_ent t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/*
 * Vose's alias method: slot i keeps avail[i] with probability prob[i] / 2^32
 * and gives the rest to avail[alias[i]], so a weighted draw is one random
 * number whatever the number of endpoints.
 */
static void alias_build(const struct mesh_cluster *cl, struct lb_view_level *v, uint64_t total)
{
    size_t n = v->n, ns = 0, nl = 0;
    if (!n)
        return;
    uint32_t *small = v->work, *large = v->work + n;
    /* scaled weights, n x w / total, in 32.32 fixed point: 1.0 is 2^32 */
    uint64_t one = 1ull << 32;
    uint64_t *q = mesh_xcalloc(n, sizeof(*q));
    for (size_t i = 0; i < n; i++) {
        q[i] = (uint64_t)(((unsigned __int128)cl->endpoints[v->avail[i]].weight * n << 32) / total);
        if (q[i] < one)
            small[ns++] = (uint32_t)i;
        else
            large[nl++] = (uint32_t)i;
    }
    while (ns && nl) {
        uint32_t s = small[--ns], l = large[nl - 1];
        v->prob[s] = (uint32_t)q[s];
        v->alias[s] = l;
        q[l] -= one - q[s];
        if (q[l] < one) {
            nl--;
            small[ns++] = l;
        }
    }
    while (nl) { /* what rounding left: kept whole */
        uint32_t l = large[--nl];
        v->prob[l] = UINT32_MAX;
        v->alias[l] = l;
    }
    while (ns) {
        uint32_t s = small[--ns];
        v->prob[s] = UINT32_MAX;
        v->alias[s] = s;
    }
    free(q);
}

/* One pick of a weighted round robin period: the <k>th (from 1) of avail[<pos>], due at k/w. */
struct sched_slot {
    uint32_t k, w, pos;
};

static int slot_cmp(const void *a, const void *b)
{
    const struct sched_slot *x = a, *y = b;
    uint64_t l = (uint64_t)x->k * y->w, r = (uint64_t)y->k * x->w; /* < 2^32 each: exact */
    if (l != r)
        return l < r ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/*
 * Weighted round robin as one array read per pick: the order in which EDF
 * serves one period (weights divided by their GCD; endpoint i is due at k/w_i
 * for k = 1..w_i, so the period holds each exactly w_i times), the cursor
 * starting anywhere in it. Only for a period of at most LB_SCHED_PER_EP slots
 * per usable endpoint (and LB_SCHED_MAX): else sched_len stays 0 and the heap
 * picks. The caller makes sure no endpoint warms up (weights would change).
 */
static void sched_build(struct mesh_lb_worker *wl, const struct mesh_cluster *cl,
                        struct lb_view_level *v)
{
    v->sched_len = 0;
    if (!v->sched || !v->n)
        return;
    uint64_t g = 0, len = 0;
    for (size_t k = 0; k < v->n; k++)
        g = gcd(cl->endpoints[v->avail[k]].weight, g);
    for (size_t k = 0; k < v->n; k++) {
        len += cl->endpoints[v->avail[k]].weight / g;
        if (len > v->sched_cap || len > (uint64_t)v->n * LB_SCHED_PER_EP)
            return;
    }
    struct sched_slot *slots = mesh_xcalloc(len, sizeof(*slots));
    size_t o = 0;
    for (uint32_t k = 0; k < v->n; k++) {
        uint32_t w = (uint32_t)(cl->endpoints[v->avail[k]].weight / g);
        for (uint32_t j = 1; j <= w; j++)
            slots[o++] = (struct sched_slot){j, w, k};
    }
    qsort(slots, len, sizeof(*slots), slot_cmp);
    for (size_t i = 0; i < len; i++)
        v->sched[i] = v->avail[slots[i].pos];
    free(slots);
    v->sched_len = (uint32_t)len;
    v->cursor = rand_below(wl, len); /* the workers do not all start at the same slot */
}

static void view_build(struct mesh_lb_worker *wl, struct lb_cl *lc, uint64_t now)
{
    const struct mesh_cluster *cl = lc->cl;
    const struct mesh_outlier_cfg *od = &cl->outlier;
    lc->epoch = atomic_load(&lc->cs->epoch);
    size_t n_ok = 0;
    for (size_t i = 0; i < cl->n_endpoints; i++) {
        lc->usable[i] = !atomic_load(&lc->eps[i]->ejected);
        n_ok += lc->usable[i];
    }
    /* panic (too few healthy endpoints) or detection off (a reload removed it): all serve */
    if (!od->enabled || (od->min_health_percent &&
                         (uint64_t)n_ok * 100 < (uint64_t)od->min_health_percent * cl->n_endpoints))
        memset(lc->usable, 1, cl->n_endpoints);
    lc->warm_until_ms = 0;
    for (size_t i = 0; i < cl->n_endpoints; i++) {
        uint64_t s = lc->eps[i]->warm_start_ms;
        if (s && cl->slow_start_ms && s + cl->slow_start_ms > now)
            lc->warm_until_ms = MESH_MAX(lc->warm_until_ms, s + cl->slow_start_ms);
    }
    uint64_t health_sum = 0;
    uint32_t *health = lc->load_cum; /* health first, loads over it below */
    for (size_t l = 0; l < cl->n_levels; l++) {
        const struct mesh_lb_level *lev = &cl->levels[l];
        struct lb_view_level *v = &lc->lv[l];
        uint64_t total = 0;
        v->n = 0;
        for (size_t k = 0; k < lev->n_eps; k++) {
            uint32_t idx = lev->eps[k];
            if (!lc->usable[idx])
                continue;
            total += cl->endpoints[idx].weight;
            v->avail[v->n] = idx;
            v->heap[v->n].ep = idx;
            v->heap[v->n].step = edf_step(cl->endpoints[idx].weight);
            /* a random start: the workers do not all begin with the same endpoint */
            v->heap[v->n].deadline = (uint64_t)(rand01(wl) * (double)edf_step(eff_weight(lc, idx, now)));
            v->n++;
        }
        alias_build(cl, v, total);
        for (size_t k = v->n / 4 + 1; k-- > 0;)
            heap_down(v->heap, v->n, k);
        v->cursor = v->n ? rand_below(wl, v->n) : 0;
        if (lc->warm_until_ms == 0)
            sched_build(wl, cl, v);
        else
            v->sched_len = 0;
        uint64_t h = (uint64_t)LB_OVERPROVISION * LB_LOAD_SCALE / 100 * v->n / lev->n_eps;
        health[l] = (uint32_t)MESH_MIN(h, (uint64_t)LB_LOAD_SCALE);
        health_sum += health[l];
    }
    /* Envoy's priority load: each level takes what its health covers, the rest spills down;
     * when all levels together cover less than everything, they are scaled up. */
    uint64_t rem = LB_LOAD_SCALE, cum = 0;
    for (size_t l = 0; l < cl->n_levels; l++) {
        uint64_t h = health[l];
        if (health_sum && health_sum < LB_LOAD_SCALE)
            h = h * LB_LOAD_SCALE / health_sum;
        uint64_t take = MESH_MIN(h, rem);
        rem -= take;
        cum += take;
        lc->load_cum[l] = (uint32_t)cum;
    }
    /* rounding may leave a sliver: the last level with endpoints takes it */
    if (health_sum && rem) {
        for (size_t l = cl->n_levels; l-- > 0;) {
            if (lc->lv[l].n) {
                for (size_t k = l; k < cl->n_levels; k++)
                    lc->load_cum[k] += (uint32_t)rem;
                break;
            }
        }
    }
}

/* ---- Picks within a level ---- */

static uint32_t weighted_random(struct mesh_lb_worker *wl, const struct lb_cl *lc,
                                const struct lb_view_level *v, uint64_t now)
{
    for (int tries = 0;; tries++) {
        uint32_t idx;
        uint64_t r = next_rand(wl);
        uint32_t i = (uint32_t)(((r >> 32) * v->n) >> 32);
        if (lc->cl->equal_weights)
            idx = v->avail[i];
        else
            idx = v->avail[(uint32_t)r < v->prob[i] ? i : v->alias[i]];
        /* slow start by rejection: a warming endpoint is kept with its warm factor */
        if (now >= lc->warm_until_ms || tries >= 8 || rand01(wl) < warm_factor(lc, idx, now))
            return idx;
    }
}

static uint32_t edf_pick(const struct lb_cl *lc, struct lb_view_level *v, uint64_t now)
{
    struct lb_heap_ent *top = &v->heap[0];
    uint32_t idx = top->ep;
    top->deadline += now < lc->warm_until_ms ? edf_step(eff_weight(lc, idx, now)) : top->step;
    if (MESH_UNLIKELY(top->deadline >= 1ull << 62)) { /* rebase long before it could wrap */
        uint64_t base = top->deadline;
        for (size_t i = 0; i < v->n; i++)
            base = MESH_MIN(base, v->heap[i].deadline);
        for (size_t i = 0; i < v->n; i++)
            v->heap[i].deadline -= base;
    }
    heap_down(v->heap, v->n, 0);
    return idx;
}

static uint32_t least_request(struct mesh_lb_worker *wl, const struct lb_cl *lc,
                              const struct lb_view_level *v, uint64_t now)
{
    uint32_t a = weighted_random(wl, lc, v, now);
    if (v->n == 1)
        return a;
    uint32_t b = weighted_random(wl, lc, v, now);
    /* fewer requests in flight per unit of weight wins (Envoy: weight / (active + 1)) */
    uint64_t aa = atomic_load_explicit(&lc->eps[a]->active, memory_order_relaxed) + 1;
    uint64_t ab = atomic_load_explicit(&lc->eps[b]->active, memory_order_relaxed) + 1;
    if (lc->cl->equal_weights && now >= lc->warm_until_ms)
        return ab < aa ? b : a;
    if (now >= lc->warm_until_ms) {
        uint64_t wa = lc->cl->endpoints[a].weight, wb = lc->cl->endpoints[b].weight;
        return ab * wa < aa * wb ? b : a;
    }
    double la = aa / eff_weight(lc, a, now), lb = ab / eff_weight(lc, b, now);
    return lb < la ? b : a;
}

static uint32_t hashed(struct mesh_lb_worker *wl, const struct lb_cl *lc, size_t l,
                       const struct lb_view_level *v, uint64_t h, uint64_t now)
{
    const struct mesh_cluster *cl = lc->cl;
    const struct mesh_lb_level *lev = &cl->levels[l];
    /* an ejected endpoint's keys move elsewhere; the others' stay put */
    for (uint64_t attempt = 0; attempt < 16; attempt++) {
        uint32_t idx = cl->lb_policy == MESH_LBP_RING_HASH
                           ? mesh_lb_ring_lookup(lev, h)
                           : mesh_lb_maglev_lookup(lev, cl->maglev_table_size, h);
        if (lc->usable[idx])
            return idx;
        h = mesh_lb_mix(h + attempt + 1);
    }
    return weighted_random(wl, lc, v, now);
}

/*
 * One endpoint index of <lc>, or -1 when no level has one. <has_hash>: the
 * request gave a key hashing to <h> (ring hash, Maglev).
 */
static int64_t pick_index(struct mesh_lb_worker *wl, struct lb_cl *lc, bool has_hash, uint64_t h,
                          uint64_t now)
{
    const struct mesh_cluster *cl = lc->cl;
    struct lb_cluster_state *cs = lc->cs;
    if (cl->outlier.enabled &&
        MESH_UNLIKELY(now >= atomic_load_explicit(&cs->next_review_ms, memory_order_relaxed)))
        mesh_lb_review(wl->sh, cs, now);
    if (MESH_UNLIKELY(lc->epoch != atomic_load_explicit(&cs->epoch, memory_order_relaxed)))
        view_build(wl, lc, now);
    if (!cl->n_levels)
        return -1;
    size_t l = 0;
    if (cl->n_levels > 1) {
        uint32_t total = lc->load_cum[cl->n_levels - 1];
        if (!total)
            return -1;
        uint32_t r = has_hash ? (uint32_t)((h >> 24) % LB_LOAD_SCALE) : rand_below(wl, LB_LOAD_SCALE);
        while (l + 1 < cl->n_levels && lc->load_cum[l] <= r)
            l++;
    }
    struct lb_view_level *v = &lc->lv[l];
    if (!v->n)
        return -1;
    switch (cl->lb_policy) {
    case MESH_LBP_ROUND_ROBIN:
        if (cl->equal_weights && now >= lc->warm_until_ms)
            return v->avail[v->cursor++ % v->n];
        if (MESH_LIKELY(v->sched_len)) {
            uint32_t i = v->cursor;
            v->cursor = i + 1 < v->sched_len ? i + 1 : 0;
            return v->sched[i];
        }
        if (v->sched && lc->warm_until_ms && now >= lc->warm_until_ms) {
            /* slow start is over: precompute the schedule (once) */
            view_build(wl, lc, now);
            return pick_index(wl, lc, has_hash, h, now);
        }
        return edf_pick(lc, v, now);
    case MESH_LBP_LEAST_REQUEST:
        return least_request(wl, lc, v, now);
    case MESH_LBP_RING_HASH:
    case MESH_LBP_MAGLEV:
        if (has_hash)
            return hashed(wl, lc, l, v, h, now);
        return weighted_random(wl, lc, v, now);
    case MESH_LBP_RANDOM:
    default:
        return weighted_random(wl, lc, v, now);
    }
}

/* ---- Hash keys ---- */

static bool find_cookie(const struct mesh_headers *hs, const char *name, size_t nlen,
                        const char **val, size_t *vlen)
{
    for (uint32_t i = 0; i < hs->n; i++) {
        const struct mesh_header *hd = &hs->v[i];
        if (!mesh_header_is(hd, "cookie", 6))
            continue;
        const char *p = hd->value, *end = hd->value + hd->value_len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *pe = semi ? semi : end;
            const char *eq = memchr(p, '=', (size_t)(pe - p));
            if (eq && (size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0) {
                *val = eq + 1;
                *vlen = (size_t)(pe - eq - 1);
                return true;
            }
            p = pe;
        }
    }
    return false;
}

static bool find_query(const char *path, size_t len, const char *name, size_t nlen,
                       const char **val, size_t *vlen)
{
    const char *q = path ? memchr(path, '?', len) : NULL;
    if (!q)
        return false;
    const char *p = q + 1, *end = path + len;
    const char *hash = memchr(p, '#', (size_t)(end - p));
    if (hash)
        end = hash;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ne = eq ? eq : pe;
        if ((size_t)(ne - p) == nlen && memcmp(p, name, nlen) == 0) {
            *val = eq ? eq + 1 : pe;
            *vlen = eq ? (size_t)(pe - eq - 1) : 0;
            return true;
        }
        p = pe + 1;
    }
    return false;
}

/* Sets a fresh hash cookie on the response; its value's hash is the request's key. */
static bool generate_cookie(struct mesh_stream *s, const struct mesh_hash_policy *hp, uint64_t *h)
{
    char val[17];
    snprintf(val, sizeof(val), "%016llx", (unsigned long long)next_rand(s->w->lb));
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "%s=%s", hp->name, val);
    if (hp->cookie_ttl_ms)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "; Max-Age=%llu",
                      (unsigned long long)((hp->cookie_ttl_ms + 999u) / 1000u));
    if (hp->cookie_path && (size_t)n < sizeof(buf))
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "; Path=%s", hp->cookie_path);
    if (n <= 0 || (size_t)n >= sizeof(buf))
        return false;
    char *v = mesh_arena_strndup(s->arena, buf, (size_t)n);
    if (!v || mesh_headers_add(s->arena, &s->resp_add, "set-cookie", 10, v, (size_t)n) != 0)
        return false;
    MESH_STAT_INC(&s->w->stats, lb_cookie_generated);
    *h = mesh_lb_hash(val, 16);
    return true;
}

static bool request_hash(struct mesh_stream *s, const struct mesh_cluster *cl, uint64_t *h)
{
    const struct mesh_hash_policy *hp = &cl->hash;
    const char *val = NULL;
    size_t vlen = 0;
    switch (hp->kind) {
    case MESH_HASH_HEADER: {
        const struct mesh_header *hd = mesh_headers_get(&s->req.hdrs, hp->name, hp->name_len);
        if (!hd)
            return false;
        val = hd->value;
        vlen = hd->value_len;
        break;
    }
    case MESH_HASH_COOKIE:
        if (!find_cookie(&s->req.hdrs, hp->name, hp->name_len, &val, &vlen)) {
            /* once per request: a retry does not set a second cookie */
            return hp->cookie_generate && s->n_tried == 0 && generate_cookie(s, hp, h);
        }
        break;
    case MESH_HASH_SOURCE_IP:
        if (!s->conn || !s->conn->peer_ip[0])
            return false;
        val = s->conn->peer_ip;
        vlen = strlen(val);
        break;
    case MESH_HASH_QUERY_PARAM:
        if (!find_query(s->req.path, s->req.path_len, hp->name, hp->name_len, &val, &vlen))
            return false;
        break;
    default:
        return false;
    }
    *h = mesh_lb_hash(val, vlen);
    return true;
}

/* ---- Passthrough ---- */

static bool passthrough_fill(struct mesh_endpoint *ep, const struct sockaddr_storage *dst,
                             socklen_t len, char *addr, size_t asz, char *key, size_t ksz)
{
    if (!len || (dst->ss_family != AF_INET && dst->ss_family != AF_INET6))
        return false;
    memset(ep, 0, sizeof(*ep));
    ep->sa = *dst;
    ep->salen = len;
    ep->weight = 1;
    const void *a;
    if (dst->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)dst;
        a = &in->sin_addr;
        ep->port = ntohs(in->sin_port);
    } else {
        const struct sockaddr_in6 *in = (const struct sockaddr_in6 *)dst;
        a = &in->sin6_addr;
        ep->port = ntohs(in->sin6_port);
    }
    if (!inet_ntop(dst->ss_family, a, addr, (socklen_t)asz))
        return false;
    snprintf(key, ksz, dst->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", addr, ep->port);
    return true;
}

/* The stream's original destination as an endpoint, in the stream arena. */
static const struct mesh_endpoint *passthrough_stream(struct mesh_stream *s)
{
    char addr[INET6_ADDRSTRLEN], key[INET6_ADDRSTRLEN + 10];
    struct mesh_endpoint tmp;
    if (!s->conn || !passthrough_fill(&tmp, &s->conn->dst, s->conn->dst_len, addr, sizeof(addr),
                                      key, sizeof(key)))
        return NULL;
    struct mesh_endpoint *ep = mesh_arena_calloc(s->arena, 1, sizeof(*ep));
    if (!ep)
        return NULL;
    *ep = tmp;
    ep->address = mesh_arena_strndup(s->arena, addr, strlen(addr));
    ep->key = mesh_arena_strndup(s->arena, key, strlen(key));
    return ep->address && ep->key ? ep : NULL;
}

/* TCP has no arena: the worker's one slot (see lb-int.h); the connection copies it. */
static const struct mesh_endpoint *passthrough_conn(struct mesh_lb_worker *wl,
                                                    const struct mesh_conn *c)
{
    struct mesh_endpoint *ep = &wl->pt_ep;
    if (!c || !passthrough_fill(ep, &c->dst, c->dst_len, wl->pt_addr, sizeof(wl->pt_addr),
                                wl->pt_key, sizeof(wl->pt_key)))
        return NULL;
    ep->address = wl->pt_addr;
    ep->key = wl->pt_key;
    return ep;
}

/* ---- Entry points ---- */

static bool was_tried(const struct mesh_stream *s, const struct mesh_endpoint *ep)
{
    for (unsigned i = 0; i < s->n_tried; i++)
        if (s->tried[i] == ep)
            return true;
    return false;
}

static bool avoid_tried(const struct mesh_stream *s)
{
    return s->n_tried && s->route && s->route->policy && s->route->policy->retry &&
           s->route->policy->retry->other_host;
}

static const struct mesh_endpoint *pick_stream(struct mesh_stream *s, const struct mesh_cluster *cl,
                                               struct lb_cl **lcp)
{
    struct mesh_lb_worker *wl = s->w->lb;
    struct lb_cl *lc = bind_for(wl, cl, s->snap);
    *lcp = lc;
    if (!lc)
        return NULL;
    if (cl->lb_policy == MESH_LBP_PASSTHROUGH)
        return passthrough_stream(s);
    uint64_t now = lb_now(wl);
    uint64_t h = 0;
    bool has_hash = (cl->lb_policy == MESH_LBP_RING_HASH || cl->lb_policy == MESH_LBP_MAGLEV) &&
                    request_hash(s, cl, &h);
    bool avoid = avoid_tried(s);
    int64_t idx = -1;
    for (int t = 0; t < LB_OTHER_HOST_TRIES; t++) {
        idx = pick_index(wl, lc, has_hash, h, now);
        if (idx < 0 || !avoid || !was_tried(s, &cl->endpoints[idx]))
            break;
        if (has_hash) /* the next candidate on the ring / table */
            h = mesh_lb_mix(h + (uint64_t)t + 1);
    }
    if (idx < 0)
        return NULL;
    atomic_fetch_add_explicit(&lc->eps[idx]->active, 1, memory_order_relaxed);
    return &cl->endpoints[idx];
}

enum mesh_lb_result mesh_lb_pick_ex(struct mesh_stream *s, const struct mesh_cluster *cl,
                                    const struct mesh_endpoint **out)
{
    struct lb_cl *lc = bind_for(s->w->lb, cl, s->snap);
    if (lc && cl->max_requests != UINT32_MAX &&
        atomic_load_explicit(&lc->cs->rq_active, memory_order_relaxed) >= cl->max_requests)
        return MESH_LB_OVERFLOW;
    const struct mesh_endpoint *ep = pick_stream(s, cl, &lc);
    if (!ep)
        return MESH_LB_NO_HEALTHY;
    atomic_fetch_add_explicit(&lc->cs->rq_active, 1, memory_order_relaxed);
    *out = ep;
    return MESH_LB_OK;
}

const struct mesh_endpoint *mesh_lb_pick(struct mesh_stream *s, const struct mesh_cluster *cl)
{
    struct lb_cl *lc;
    const struct mesh_endpoint *ep = pick_stream(s, cl, &lc);
    if (ep)
        atomic_fetch_add_explicit(&lc->cs->rq_active, 1, memory_order_relaxed);
    return ep;
}

/* <ep> of <cl> came back with <status>/<flags>: in-flight counts and outlier detection. */
static void done(struct mesh_lb_worker *wl, struct lb_cl *lc, const struct mesh_endpoint *ep,
                 int status, unsigned flags)
{
    const struct mesh_cluster *cl = lc->cl;
    dec_sat(&lc->cs->rq_active);
    if (cl->lb_policy == MESH_LBP_PASSTHROUGH || ep < cl->endpoints ||
        ep >= cl->endpoints + cl->n_endpoints)
        return;
    struct lb_ep_state *es = lc->eps[ep - cl->endpoints];
    dec_sat(&es->active);
    mesh_lb_outlier_report(wl, lc, es, status, flags, lb_now(wl));
}

void mesh_lb_done(struct mesh_stream *s, int status, unsigned flags)
{
    if (!s->cluster || !s->endpoint)
        return;
    struct lb_cl *lc = bind_for(s->w->lb, s->cluster, s->snap);
    if (lc)
        done(s->w->lb, lc, s->endpoint, status, flags);
}

const struct mesh_endpoint *mesh_lb_pick_tcp(struct mesh_worker *w, const struct mesh_cluster *cl,
                                             const struct mesh_conn *c)
{
    struct mesh_lb_worker *wl = w->lb;
    struct lb_cl *lc = bind_for(wl, cl, NULL);
    if (!lc)
        return NULL;
    const struct mesh_endpoint *ep = NULL;
    if (cl->lb_policy == MESH_LBP_PASSTHROUGH) {
        ep = passthrough_conn(wl, c);
    } else {
        uint64_t h = 0;
        bool has_hash = (cl->lb_policy == MESH_LBP_RING_HASH || cl->lb_policy == MESH_LBP_MAGLEV) &&
                        c && c->peer_ip[0];
        if (has_hash)
            h = mesh_lb_hash(c->peer_ip, strlen(c->peer_ip));
        int64_t idx = pick_index(wl, lc, has_hash, h, lb_now(wl));
        if (idx >= 0) {
            ep = &cl->endpoints[idx];
            atomic_fetch_add_explicit(&lc->eps[idx]->active, 1, memory_order_relaxed);
        }
    }
    if (ep)
        atomic_fetch_add_explicit(&lc->cs->rq_active, 1, memory_order_relaxed);
    return ep;
}

void mesh_lb_done_tcp(struct mesh_worker *w, const struct mesh_cluster *cl,
                      const struct mesh_endpoint *ep, bool ok)
{
    struct lb_cl *lc = bind_for(w->lb, cl, NULL);
    if (lc && ep)
        done(w->lb, lc, ep, ok ? 200 : 0, ok ? 0 : MESH_RF_UF);
}

bool mesh_lb_retry_acquire(struct mesh_worker *w, const struct mesh_cluster *cl)
{
    struct lb_cl *lc = bind_for(w->lb, cl, NULL);
    if (!lc || cl->max_retries == UINT32_MAX)
        return true;
    if (atomic_fetch_add(&lc->cs->retries_active, 1) >= cl->max_retries) {
        dec_sat(&lc->cs->retries_active);
        return false;
    }
    return true;
}

void mesh_lb_retry_release(struct mesh_worker *w, const struct mesh_cluster *cl)
{
    struct lb_cl *lc = bind_for(w->lb, cl, NULL);
    if (lc && cl->max_retries != UINT32_MAX)
        dec_sat(&lc->cs->retries_active);
}
