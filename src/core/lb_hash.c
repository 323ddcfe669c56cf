/*
 * Ring hash (Karger's consistent hashing, as Envoy's ring_hash) and Maglev
 * (Eisenbud et al., weighted as Envoy does) tables, built per priority level
 * at snapshot load. Both depend only on endpoint keys and weights, never on
 * their order in the snapshot, so a reload that keeps an endpoint keeps most
 * of its keys on it.
 */
#include "core/common.h"
#include <stdlib.h>
#include <string.h>
#include "core/lb_hash.h"

uint64_t mesh_lb_hash(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ULL ^ (n * 0x9E3779B97F4A7C15ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
        b += 8;
        n -= 8;
    }
    while (n--)
        h = (h ^ *b++) * 0x100000001b3ULL;
    return mesh_lb_mix(h);
}

static int ring_cmp(const void *a, const void *b)
{
    const struct mesh_ring_entry *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->ep < y->ep ? -1 : x->ep > y->ep; /* equal hashes: deterministic order */
}

static bool build_ring(const struct mesh_cluster *cl, struct mesh_lb_level *lv,
                       mesh_lb_alloc_fn *alloc, void *ctx)
{
    uint64_t total = 0;
    for (size_t i = 0; i < lv->n_eps; i++)
        total += cl->endpoints[lv->eps[i]].weight;
    uint64_t want = MESH_MAX((uint64_t)cl->ring_size, (uint64_t)lv->n_eps);
    size_t n = 0;
    for (size_t i = 0; i < lv->n_eps; i++) /* each endpoint: its share of the ring, at least one */
        n += (size_t)((cl->endpoints[lv->eps[i]].weight * want + total - 1) / total);
    lv->ring = alloc(ctx, n, sizeof(*lv->ring));
    if (!lv->ring)
        return false;
    size_t k = 0;
    for (size_t i = 0; i < lv->n_eps; i++) {
        const struct mesh_endpoint *ep = &cl->endpoints[lv->eps[i]];
        uint64_t base = mesh_lb_hash(ep->key, strlen(ep->key));
        size_t reps = (size_t)((ep->weight * want + total - 1) / total);
        for (size_t r = 0; r < reps; r++) {
            lv->ring[k].hash = mesh_lb_mix(base + (r + 1) * 0x9E3779B97F4A7C15ULL);
            lv->ring[k].ep = lv->eps[i];
            k++;
        }
    }
    qsort(lv->ring, n, sizeof(*lv->ring), ring_cmp);
    lv->n_ring = n;
    return true;
}

uint32_t mesh_lb_ring_lookup(const struct mesh_lb_level *lv, uint64_t h)
{
    size_t lo = 0, hi = lv->n_ring; /* first entry with hash >= h, wrapping */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (lv->ring[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lv->ring[lo == lv->n_ring ? 0 : lo].ep;
}

struct maglev_build {
    uint64_t offset, skip, next;
    uint64_t weight, target;
};

static bool build_maglev(const struct mesh_cluster *cl, struct mesh_lb_level *lv,
                         mesh_lb_alloc_fn *alloc, void *ctx)
{
    uint64_t m = cl->maglev_table_size;
    lv->maglev = alloc(ctx, m, sizeof(*lv->maglev));
    if (!lv->maglev)
        return false;
    struct maglev_build *b = mesh_xcalloc(lv->n_eps, sizeof(*b));
    bool *used = mesh_xcalloc(m, sizeof(*used));
    uint64_t max_w = 0;
    for (size_t i = 0; i < lv->n_eps; i++) {
        const struct mesh_endpoint *ep = &cl->endpoints[lv->eps[i]];
        uint64_t h = mesh_lb_hash(ep->key, strlen(ep->key));
        b[i].offset = h % m;
        b[i].skip = mesh_lb_mix(h ^ 0x5bd1e9955bd1e995ULL) % (m - 1) + 1;
        b[i].weight = ep->weight;
        max_w = MESH_MAX(max_w, b[i].weight);
    }
    /* An endpoint of weight max_w takes a slot every round, one of max_w / 3 every third. */
    uint64_t filled = 0;
    for (uint64_t round = 0; filled < m; round++) {
        for (size_t i = 0; i < lv->n_eps && filled < m; i++) {
            if (round * b[i].weight < b[i].target)
                continue;
            b[i].target += max_w;
            uint64_t c = (b[i].offset + b[i].skip * b[i].next) % m;
            while (used[c]) {
                b[i].next++;
                c = (b[i].offset + b[i].skip * b[i].next) % m;
            }
            used[c] = true;
            lv->maglev[c] = lv->eps[i];
            b[i].next++;
            filled++;
        }
    }
    free(used);
    free(b);
    return true;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

bool mesh_lb_build_levels(struct mesh_cluster *cl, mesh_lb_alloc_fn *alloc, void *ctx)
{
    cl->levels = NULL;
    cl->n_levels = 0;
    cl->equal_weights = true;
    if (!cl->n_endpoints)
        return true;
    uint32_t *prios = mesh_xcalloc(cl->n_endpoints, sizeof(*prios));
    for (size_t i = 0; i < cl->n_endpoints; i++) {
        prios[i] = cl->endpoints[i].priority;
        if (cl->endpoints[i].weight != cl->endpoints[0].weight)
            cl->equal_weights = false;
    }
    qsort(prios, cl->n_endpoints, sizeof(*prios), u32_cmp);
    size_t nl = 0;
    for (size_t i = 0; i < cl->n_endpoints; i++)
        if (i == 0 || prios[i] != prios[i - 1])
            prios[nl++] = prios[i];
    bool ok = (cl->levels = alloc(ctx, nl, sizeof(*cl->levels))) != NULL;
    for (size_t l = 0; ok && l < nl; l++) {
        struct mesh_lb_level *lv = &cl->levels[l];
        lv->priority = prios[l];
        for (size_t i = 0; i < cl->n_endpoints; i++)
            lv->n_eps += cl->endpoints[i].priority == lv->priority;
        if (!(lv->eps = alloc(ctx, lv->n_eps, sizeof(*lv->eps)))) {
            ok = false;
            break;
        }
        size_t k = 0;
        for (size_t i = 0; i < cl->n_endpoints; i++)
            if (cl->endpoints[i].priority == lv->priority)
                lv->eps[k++] = (uint32_t)i;
        if (cl->lb_policy == MESH_LBP_RING_HASH)
            ok = build_ring(cl, lv, alloc, ctx);
        else if (cl->lb_policy == MESH_LBP_MAGLEV)
            ok = build_maglev(cl, lv, alloc, ctx);
    }
    free(prios);
    if (ok)
        cl->n_levels = nl;
    return ok;
}
