/*
 * Timeout queues: timeouts of one duration in a list. An entry added later expires
 * later, so the list is in deadline order, adding and removing are O(1), and one
 * libevent timer, set for the head, serves every entry (h2o's timeout lists, libevent's
 * "common timeouts"). Why: a stream's timeout in libevent's heap cost an event_add and an
 * event_del a request, ~600 instructions of a ~14,000-instruction proxied request.
 *
 * Entries are embedded in their owners; a queue never frees them. The worker's clock is
 * the caller's <now_ms> (libevent's cached time of the turn), so it must not go back by
 * more than a timeout's tolerance: an entry behind a later one fires late by that much.
 */
#ifndef MESH_CORE_TQUEUE_H
#define MESH_CORE_TQUEUE_H

#include "core/common.h"
#include <event2/event.h>
#include "core/list.h"

/** libevent's cached clock of the turn for <base>, in ms: the clock workers keep time by. */
static inline uint64_t mesh_base_now_ms(struct event_base *base)
{
    struct timeval tv;
    event_base_gettimeofday_cached(base, &tv);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

struct mesh_tq;
struct mesh_tq_entry;
/** Called once the entry is due; it has left its queue and may be added again. */
typedef void (*mesh_tq_fire_fn)(struct mesh_tq_entry *e);

struct mesh_tq_entry {
    struct mesh_list link;      /* in q->entries while queued */
    struct mesh_tq *q;          /* NULL: not queued */
    uint64_t due_ms;
    mesh_tq_fire_fn fire;
};

/** The queues of one event base, one per duration, made as durations are first used. */
struct mesh_tqs;

struct mesh_tqs *mesh_tqs_new(struct event_base *base);
/** Frees the queues; an entry still queued is taken out (its owner may still mesh_tq_del it). */
void mesh_tqs_free(struct mesh_tqs *t);

/** Sets up <e> (zeroed or not) to call <fire>. */
void mesh_tq_entry_init(struct mesh_tq_entry *e, mesh_tq_fire_fn fire);
/** Queues <e> to fire <ms> after <now_ms>, first taking it out of where it was; false: no
 * memory for a new queue (e is then not queued). */
bool mesh_tq_add(struct mesh_tqs *t, struct mesh_tq_entry *e, uint32_t ms, uint64_t now_ms);
/** Takes <e> out of its queue, if it is in one. */
void mesh_tq_del(struct mesh_tq_entry *e);
static inline bool mesh_tq_pending(const struct mesh_tq_entry *e)
{
    return e->q != NULL;
}
/** Durations with a queue, for tests. */
size_t mesh_tqs_count(const struct mesh_tqs *t);

#endif /* MESH_CORE_TQUEUE_H */
