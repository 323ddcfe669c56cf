/*
 * Outlier detection and the load balancer state shared by all workers
 * (Envoy's outlier detector, consecutive errors only): per cluster name and
 * endpoint key, refcounted by the workers' bindings so that an endpoint that
 * stays across a reload keeps its counters and its ejection.
 */
#include "core/common.h"
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include "core/lb-int.h"
#include "core/lb_hash.h"

/* Envoy's default max_ejection_time: a growing ejection stops growing here. */
#define LB_MAX_EJECTION_MS 300000u

uint64_t mesh_lb_now_ms(struct mesh_lb_shared *sh)
{
    uint64_t fake = atomic_load_explicit(&sh->fake_now_ms, memory_order_relaxed);
    if (fake)
        return fake;
    /* wall clock, like the libevent cached time the workers read */
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

struct mesh_lb_shared *mesh_lb_shared_new(void)
{
    struct mesh_lb_shared *sh = mesh_xcalloc(1, sizeof(*sh));
    pthread_mutex_init(&sh->lock, NULL);
    return sh;
}

void mesh_lb_shared_set_clock(struct mesh_lb_shared *sh, uint64_t now_ms)
{
    atomic_store(&sh->fake_now_ms, now_ms);
}

void mesh_lb_shared_free(struct mesh_lb_shared *sh)
{
    if (!sh)
        return;
    /* every binding is gone by now; anything left is a refcount bug, freed anyway */
    while (sh->clusters) {
        struct lb_cluster_state *cs = sh->clusters;
        sh->clusters = cs->next;
        for (size_t i = 0; i < cs->tab_size; i++)
            for (struct lb_ep_state *e = cs->tab[i], *n; e; e = n) {
                n = e->hnext;
                free(e->key);
                free(e);
            }
        free(cs->tab);
        free(cs->name);
        free(cs);
    }
    pthread_mutex_destroy(&sh->lock);
    free(sh);
}

struct lb_cluster_state *mesh_lb_cluster_find(struct mesh_lb_shared *sh, const char *name)
{
    for (struct lb_cluster_state *cs = sh->clusters; cs; cs = cs->next)
        if (strcmp(cs->name, name) == 0)
            return cs;
    return NULL;
}

struct lb_cluster_state *mesh_lb_cluster_ref(struct mesh_lb_shared *sh, const char *name,
                                             bool *created)
{
    struct lb_cluster_state *cs = mesh_lb_cluster_find(sh, name);
    *created = !cs;
    if (!cs) {
        cs = mesh_xcalloc(1, sizeof(*cs));
        cs->name = mesh_xstrdup(name);
        cs->tab_size = 16;
        cs->tab = mesh_xcalloc(cs->tab_size, sizeof(*cs->tab));
        cs->next = sh->clusters;
        sh->clusters = cs;
    }
    cs->refs++;
    return cs;
}

void mesh_lb_cluster_unref(struct mesh_lb_shared *sh, struct lb_cluster_state *cs)
{
    if (--cs->refs)
        return;
    for (struct lb_cluster_state **pp = &sh->clusters; *pp; pp = &(*pp)->next)
        if (*pp == cs) {
            *pp = cs->next;
            break;
        }
    free(cs->tab); /* its endpoints went first: each binding holds them too */
    free(cs->name);
    free(cs);
}

static size_t slot(const struct lb_cluster_state *cs, const char *key)
{
    return mesh_lb_hash(key, strlen(key)) & (cs->tab_size - 1);
}

struct lb_ep_state *mesh_lb_ep_find(struct lb_cluster_state *cs, const char *key)
{
    for (struct lb_ep_state *e = cs->tab[slot(cs, key)]; e; e = e->hnext)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void grow(struct lb_cluster_state *cs)
{
    size_t old = cs->tab_size;
    struct lb_ep_state **t = cs->tab;
    cs->tab_size *= 2;
    cs->tab = mesh_xcalloc(cs->tab_size, sizeof(*cs->tab));
    for (size_t i = 0; i < old; i++)
        for (struct lb_ep_state *e = t[i], *n; e; e = n) {
            n = e->hnext;
            size_t k = slot(cs, e->key);
            e->hnext = cs->tab[k];
            cs->tab[k] = e;
        }
    free(t);
}

struct lb_ep_state *mesh_lb_ep_ref(struct lb_cluster_state *cs, const char *key, bool initial,
                                   uint64_t now)
{
    struct lb_ep_state *e = mesh_lb_ep_find(cs, key);
    if (!e) {
        if (cs->n_eps >= cs->tab_size)
            grow(cs);
        e = mesh_xcalloc(1, sizeof(*e));
        e->key = mesh_xstrdup(key);
        /* endpoints of a cluster's first snapshot serve at once; later ones warm up */
        e->warm_start_ms = initial ? 0 : now;
        size_t k = slot(cs, key);
        e->hnext = cs->tab[k];
        cs->tab[k] = e;
        cs->n_eps++;
    }
    e->refs++;
    return e;
}

void mesh_lb_ep_unref(struct mesh_lb_shared *sh, struct lb_cluster_state *cs,
                      struct lb_ep_state *es)
{
    (void)sh;
    if (--es->refs)
        return;
    for (struct lb_ep_state **pp = &cs->tab[slot(cs, es->key)]; *pp; pp = &(*pp)->hnext)
        if (*pp == es) {
            *pp = es->hnext;
            break;
        }
    cs->n_eps--;
    if (atomic_load(&es->ejected)) {
        cs->n_ejected--;
        atomic_fetch_add(&cs->epoch, 1);
    }
    free(es->key);
    free(es);
}

static uint64_t ejection_ms(const struct mesh_outlier_cfg *od, uint32_t times)
{
    uint64_t cap = MESH_MAX((uint64_t)od->base_ejection_ms, (uint64_t)LB_MAX_EJECTION_MS);
    return MESH_MIN((uint64_t)od->base_ejection_ms * times, cap);
}

static void review_locked(struct lb_cluster_state *cs, uint64_t now)
{
    uint32_t interval = cs->od.interval_ms ? cs->od.interval_ms : 10000;
    atomic_store(&cs->next_review_ms, now + interval);
    bool changed = false;
    for (size_t i = 0; i < cs->tab_size; i++)
        for (struct lb_ep_state *e = cs->tab[i]; e; e = e->hnext) {
            if (atomic_load(&e->ejected)) {
                if (now >= e->ejected_until_ms) {
                    atomic_store(&e->ejected, false);
                    atomic_store(&e->cons_5xx, 0);
                    atomic_store(&e->cons_gw, 0);
                    e->last_change_ms = now;
                    cs->n_ejected--;
                    changed = true;
                }
            } else if (e->times_ejected && now >= e->last_change_ms + cs->od.base_ejection_ms) {
                /* healthy for a whole base period: the multiplier shrinks again */
                e->times_ejected--;
                e->last_change_ms = now;
            }
        }
    if (changed)
        atomic_fetch_add(&cs->epoch, 1);
}

void mesh_lb_review(struct mesh_lb_shared *sh, struct lb_cluster_state *cs, uint64_t now)
{
    pthread_mutex_lock(&sh->lock);
    review_locked(cs, now);
    pthread_mutex_unlock(&sh->lock);
}

enum { EJECT_NONE, EJECT_5XX, EJECT_GW };

/* Returns whether <es> was ejected; *overflow when max_ejection_percent forbade it. */
static bool eject(struct mesh_lb_shared *sh, struct lb_cluster_state *cs, struct lb_ep_state *es,
                  const struct mesh_outlier_cfg *od, uint64_t now, bool *overflow)
{
    bool done = false;
    *overflow = false;
    pthread_mutex_lock(&sh->lock);
    if (!atomic_load(&es->ejected)) {
        size_t n = cs->n_endpoints ? cs->n_endpoints : 1;
        /* at least one endpoint may always be ejected */
        if (cs->n_ejected > 0 && (uint64_t)(cs->n_ejected + 1) * 100 > (uint64_t)od->max_ejection_percent * n) {
            *overflow = true;
        } else {
            es->times_ejected++;
            es->total_ejections++;
            es->ejected_until_ms = now + ejection_ms(od, es->times_ejected);
            es->last_change_ms = now;
            atomic_store(&es->ejected, true);
            cs->n_ejected++;
            atomic_fetch_add(&cs->epoch, 1);
            done = true;
        }
    }
    atomic_store(&es->cons_5xx, 0);
    atomic_store(&es->cons_gw, 0);
    pthread_mutex_unlock(&sh->lock);
    return done;
}

static void reset_counter(_Atomic uint32_t *c)
{
    /* a load first: a success must not write a shared cache line every time */
    if (atomic_load_explicit(c, memory_order_relaxed))
        atomic_store_explicit(c, 0, memory_order_relaxed);
}

void mesh_lb_outlier_report(struct mesh_lb_worker *wl, struct lb_cl *lc, struct lb_ep_state *es,
                            int status, unsigned flags, uint64_t now)
{
    const struct mesh_outlier_cfg *od = &lc->cl->outlier;
    if (!od->enabled)
        return;
    bool local = status == 0 && (flags & (MESH_RF_UF | MESH_RF_UC | MESH_RF_UT));
    if (status == 0 && !local)
        return; /* the client went away, or the proxy refused: says nothing about the endpoint */
    if (!local && status < 500) {
        reset_counter(&es->cons_5xx);
        reset_counter(&es->cons_gw);
        return;
    }
    bool gw = local || status == 502 || status == 503 || status == 504;
    uint32_t n5 = atomic_fetch_add(&es->cons_5xx, 1) + 1;
    uint32_t ng = 0;
    if (gw)
        ng = atomic_fetch_add(&es->cons_gw, 1) + 1;
    else
        reset_counter(&es->cons_gw);
    int why = EJECT_NONE;
    if (od->consecutive_5xx && n5 >= od->consecutive_5xx)
        why = EJECT_5XX;
    else if (od->consecutive_gateway && ng >= od->consecutive_gateway)
        why = EJECT_GW;
    if (why == EJECT_NONE)
        return;
    bool overflow;
    bool ejected = eject(wl->sh, lc->cs, es, od, now, &overflow);
    if (!wl->w)
        return;
    struct mesh_stats *st = &wl->w->stats;
    if (overflow)
        MESH_STAT_INC(st, outlier_ejections_overflow);
    if (!ejected)
        return;
    MESH_STAT_INC(st, outlier_ejections_total);
    if (why == EJECT_5XX)
        MESH_STAT_INC(st, outlier_ejections_consecutive_5xx);
    else
        MESH_STAT_INC(st, outlier_ejections_consecutive_gateway);
}

void mesh_lb_cluster_info(struct mesh_lb_shared *sh, const struct mesh_cluster *cl,
                          struct mesh_lb_cluster_info *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&sh->lock);
    struct lb_cluster_state *cs = mesh_lb_cluster_find(sh, cl->name);
    if (cs) {
        out->rq_active = atomic_load(&cs->rq_active);
        out->retries_active = atomic_load(&cs->retries_active);
        out->n_ejected = cs->n_ejected;
    }
    pthread_mutex_unlock(&sh->lock);
}

void mesh_lb_endpoint_info(struct mesh_lb_shared *sh, const struct mesh_cluster *cl,
                           const struct mesh_endpoint *ep, struct mesh_lb_ep_info *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t now = mesh_lb_now_ms(sh);
    pthread_mutex_lock(&sh->lock);
    struct lb_cluster_state *cs = mesh_lb_cluster_find(sh, cl->name);
    struct lb_ep_state *es = cs && ep->key ? mesh_lb_ep_find(cs, ep->key) : NULL;
    if (es) {
        out->ejected = atomic_load(&es->ejected);
        out->ejected_for_ms = out->ejected && es->ejected_until_ms > now ? es->ejected_until_ms - now : 0;
        out->active = atomic_load(&es->active);
        out->cons_5xx = atomic_load(&es->cons_5xx);
        out->cons_gw = atomic_load(&es->cons_gw);
        out->times_ejected = es->times_ejected;
        out->total_ejections = es->total_ejections;
        if (es->warm_start_ms && cl->slow_start_ms && now < es->warm_start_ms + cl->slow_start_ms)
            out->warming = true;
    }
    pthread_mutex_unlock(&sh->lock);
}

void mesh_lb_review_all(struct mesh_lb_shared *sh)
{
    uint64_t now = mesh_lb_now_ms(sh);
    pthread_mutex_lock(&sh->lock);
    for (struct lb_cluster_state *cs = sh->clusters; cs; cs = cs->next)
        if (cs->od.enabled && now >= atomic_load(&cs->next_review_ms))
            review_locked(cs, now);
    pthread_mutex_unlock(&sh->lock);
}
