/* Timeout queues: one list and one libevent timer per duration (tqueue.h). */
#include "core/tqueue.h"
#include <string.h>

struct mesh_tq {
    struct mesh_list entries;   /* in deadline order: oldest first */
    uint32_t ms;
    struct event *ev;           /* set for the head's deadline while entries wait */
    struct mesh_tqs *owner;
};

struct mesh_tqs {
    struct event_base *base;
    struct mesh_tq **q;
    size_t n, cap;
};

static void arm(struct mesh_tq *q, uint64_t due, uint64_t now)
{
    uint64_t ms = due > now ? due - now : 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(q->ev, &tv);
}

/*
 * Fires what is due, head first. A callback may add or remove any entry, of this queue
 * or another, so the head is read again each time. A head removed before its time only
 * left the timer early: it finds nothing due and re-arms for the new head.
 */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mesh_tq *q = arg;
    uint64_t now = mesh_base_now_ms(q->owner->base);
    while (!mesh_list_empty(&q->entries)) {
        struct mesh_tq_entry *e = mesh_list_entry(q->entries.next, struct mesh_tq_entry, link);
        if (e->due_ms > now) {
            arm(q, e->due_ms, now);
            return;
        }
        mesh_list_remove(&e->link);
        e->q = NULL;
        e->fire(e);
    }
}

struct mesh_tqs *mesh_tqs_new(struct event_base *base)
{
    struct mesh_tqs *t = mesh_xcalloc(1, sizeof(*t));
    t->base = base;
    return t;
}

void mesh_tqs_free(struct mesh_tqs *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        while (!mesh_list_empty(&t->q[i]->entries)) /* left by an owner: it is not queued now */
            mesh_tq_del(mesh_list_entry(t->q[i]->entries.next, struct mesh_tq_entry, link));
        event_free(t->q[i]->ev);
        free(t->q[i]);
    }
    free(t->q);
    free(t);
}

size_t mesh_tqs_count(const struct mesh_tqs *t)
{
    return t->n;
}

void mesh_tq_entry_init(struct mesh_tq_entry *e, mesh_tq_fire_fn fire)
{
    mesh_list_init(&e->link);
    e->q = NULL;
    e->due_ms = 0;
    e->fire = fire;
}

/* The queue for <ms>; durations are few (the timeouts of a configuration), so a scan. */
static struct mesh_tq *queue_for(struct mesh_tqs *t, uint32_t ms)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->q[i]->ms == ms)
            return t->q[i];
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4;
        struct mesh_tq **nq = realloc(t->q, cap * sizeof(*nq));
        if (!nq)
            return NULL;
        t->q = nq;
        t->cap = cap;
    }
    struct mesh_tq *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->ev = evtimer_new(t->base, on_timer, q);
    if (!q->ev) {
        free(q);
        return NULL;
    }
    mesh_list_init(&q->entries);
    q->ms = ms;
    q->owner = t;
    t->q[t->n++] = q;
    return q;
}

bool mesh_tq_add(struct mesh_tqs *t, struct mesh_tq_entry *e, uint32_t ms, uint64_t now_ms)
{
    mesh_tq_del(e);
    struct mesh_tq *q = queue_for(t, ms);
    if (!q)
        return false;
    e->due_ms = now_ms + ms;
    e->q = q;
    mesh_list_insert_tail(&q->entries, &e->link);
    if (!evtimer_pending(q->ev, NULL))
        arm(q, e->due_ms, now_ms); /* pending: set for an earlier head, which re-arms */
    return true;
}

void mesh_tq_del(struct mesh_tq_entry *e)
{
    if (!e->q)
        return;
    mesh_list_remove(&e->link);
    e->q = NULL;
}
