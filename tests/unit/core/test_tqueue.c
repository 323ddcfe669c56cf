/* Timeout queues (tqueue.c): in order, once, removable, and re-entrant from a callback. */
#include "core/common.h"
#include <event2/event.h>
#include <string.h>
#include <criterion/criterion.h>
#include "core/tqueue.h"
#include "../leakcheck.h"

struct item {
    struct mesh_tq_entry e;
    int id;
    struct rig *rig;
    struct item *del_other;   /* fire: removes this other item */
    uint32_t readd_ms;        /* fire: queues itself again, once, for this long */
};

struct rig {
    struct event_base *base;
    struct mesh_tqs *tqs;
    int order[16];
    uint64_t fired_at[16];
    int n;
};

static void on_fire(struct mesh_tq_entry *e)
{
    struct item *it = MESH_CONTAINER_OF(e, struct item, e);
    struct rig *r = it->rig;
    cr_assert_not(mesh_tq_pending(e), "a firing entry has left its queue");
    if (r->n < 16) {
        r->order[r->n] = it->id;
        r->fired_at[r->n] = mesh_base_now_ms(r->base);
    }
    r->n++;
    if (it->del_other)
        mesh_tq_del(&it->del_other->e);
    if (it->readd_ms) {
        uint32_t ms = it->readd_ms;
        it->readd_ms = 0;
        cr_assert(mesh_tq_add(r->tqs, e, ms, mesh_base_now_ms(r->base)));
    }
}

static void rig_init(struct rig *r, struct item *items, int n)
{
    memset(r, 0, sizeof(*r));
    r->base = event_base_new();
    cr_assert_not_null(r->base);
    r->tqs = mesh_tqs_new(r->base);
    for (int i = 0; i < n; i++) {
        memset(&items[i], 0, sizeof(items[i]));
        mesh_tq_entry_init(&items[i].e, on_fire);
        items[i].id = i;
        items[i].rig = r;
    }
}

static void add(struct rig *r, struct item *it, uint32_t ms)
{
    cr_assert(mesh_tq_add(r->tqs, &it->e, ms, mesh_base_now_ms(r->base)));
}

/* Runs the base until it has nothing left (every timer fired or none armed). */
static void run(struct rig *r)
{
    for (int i = 0; i < 100 && event_base_get_num_events(r->base, EVENT_BASE_COUNT_ADDED); i++) {
        event_base_loop(r->base, EVLOOP_ONCE);
        event_base_update_cache_time(r->base);
    }
}

static void rig_free(struct rig *r)
{
    mesh_tqs_free(r->tqs);
    event_base_free(r->base);
    mesh_assert_no_leaks();
}

Test(tqueue, one_duration_fires_in_order_and_not_early)
{
    struct rig r;
    struct item it[4];
    rig_init(&r, it, 4);
    uint64_t t0 = mesh_base_now_ms(r.base);
    for (int i = 0; i < 4; i++)
        add(&r, &it[i], 20);
    mesh_tq_del(&it[1].e); /* removed: never fires */
    mesh_tq_del(&it[1].e); /* twice is harmless */
    cr_expect_eq(mesh_tqs_count(r.tqs), 1, "one duration, one queue");
    run(&r);
    cr_assert_eq(r.n, 3);
    cr_expect(r.order[0] == 0 && r.order[1] == 2 && r.order[2] == 3);
    for (int i = 0; i < 3; i++)
        cr_expect_geq(r.fired_at[i], t0 + 20, "fired %d at +%llu ms", i,
                      (unsigned long long)(r.fired_at[i] - t0));
    rig_free(&r);
}

Test(tqueue, durations_are_independent)
{
    struct rig r;
    struct item it[3];
    rig_init(&r, it, 3);
    add(&r, &it[0], 60);
    add(&r, &it[1], 10);
    add(&r, &it[2], 30);
    cr_expect_eq(mesh_tqs_count(r.tqs), 3);
    run(&r);
    cr_assert_eq(r.n, 3);
    cr_expect(r.order[0] == 1 && r.order[1] == 2 && r.order[2] == 0, "%d %d %d", r.order[0],
              r.order[1], r.order[2]);
    rig_free(&r);
}

Test(tqueue, re_adding_moves_to_the_tail)
{
    struct rig r;
    struct item it[3];
    rig_init(&r, it, 3);
    add(&r, &it[0], 15);
    add(&r, &it[1], 15);
    add(&r, &it[0], 15); /* again: behind 1 now, and only once */
    add(&r, &it[2], 40); /* another queue: it moves over by the next add */
    add(&r, &it[2], 15);
    cr_expect_eq(mesh_tqs_count(r.tqs), 2);
    run(&r);
    cr_assert_eq(r.n, 3);
    cr_expect(r.order[0] == 1 && r.order[1] == 0 && r.order[2] == 2);
    rig_free(&r);
}

Test(tqueue, callbacks_may_remove_and_add)
{
    struct rig r;
    struct item it[4];
    rig_init(&r, it, 4);
    it[0].del_other = &it[1]; /* due at the same time, right behind it */
    it[2].readd_ms = 10;      /* comes back once, after 3 */
    for (int i = 0; i < 4; i++)
        add(&r, &it[i], 10);
    run(&r);
    cr_assert_eq(r.n, 4, "fired: %d", r.n);
    cr_expect(r.order[0] == 0 && r.order[1] == 2 && r.order[2] == 3 && r.order[3] == 2);
    rig_free(&r);
}

Test(tqueue, freeing_with_entries_queued)
{
    struct rig r;
    struct item it[2];
    rig_init(&r, it, 2);
    add(&r, &it[0], 1000);
    add(&r, &it[1], 2000);
    mesh_tqs_free(r.tqs);
    cr_expect_not(mesh_tq_pending(&it[0].e), "taken out, so its owner's later del is safe");
    mesh_tq_del(&it[1].e);
    event_base_free(r.base);
    mesh_assert_no_leaks();
}
