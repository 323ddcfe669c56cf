/*
 * The worker's cache of stream arenas (proxy.c): reused up to MESH_STREAM_CACHE_MAX, and
 * what a burst left given back by the trim timer, as many a period as no stream took.
 */
#include "core/common.h"
#include <event2/event.h>
#include <string.h>
#include <criterion/criterion.h>
#include "core/arena.h"
#include "core/proxy-int.h"
#include "../leakcheck.h"

static void worker_init(struct mesh_worker *w)
{
    memset(w, 0, sizeof(*w));
    w->base = event_base_new();
    cr_assert_not_null(w->base);
    w->arena_trim_ms = 20;
}

static void worker_free(struct mesh_worker *w)
{
    mesh_stream_worker_free(w);
    cr_expect_eq(w->n_arena_cache, 0);
    event_base_free(w->base);
    mesh_assert_no_leaks();
}

/* Takes <n> arenas and gives them all back. */
static void burst(struct mesh_worker *w, size_t n)
{
    static struct mesh_arena *held[MESH_STREAM_CACHE_MAX + 100];
    cr_assert_leq(n, MESH_ARRAY_LEN(held));
    for (size_t i = 0; i < n; i++) {
        held[i] = mesh_stream_arena_take(w);
        cr_assert_not_null(held[i]);
        cr_assert_not_null(mesh_arena_alloc(held[i], 100), "a taken arena is usable");
    }
    for (size_t i = 0; i < n; i++)
        mesh_stream_arena_give(w, held[i]);
}

/* One period of the trim timer (it is the only event). */
static void one_period(struct mesh_worker *w)
{
    cr_assert(w->arena_trim_armed);
    event_base_loop(w->base, EVLOOP_ONCE);
}

Test(stream_cache, reused_not_remade)
{
    struct mesh_worker w;
    worker_init(&w);
    struct mesh_arena *a = mesh_stream_arena_take(&w);
    mesh_stream_arena_give(&w, a);
    cr_expect_eq(w.n_arena_cache, 1);
    cr_expect_eq(mesh_stream_arena_take(&w), a, "the arena given back is the next one taken");
    mesh_stream_arena_give(&w, a);
    cr_expect_not(w.arena_trim_armed, "a small cache needs no trimming");
    worker_free(&w);
}

Test(stream_cache, a_burst_is_kept_then_given_back)
{
    struct mesh_worker w;
    worker_init(&w);
    burst(&w, 200);
    cr_expect_eq(w.n_arena_cache, 200, "a burst of 200 streams is kept for the next one");
    cr_expect(w.arena_trim_armed);
    /* the timer was armed when the 33rd came back: only those 33 sat unused all period */
    one_period(&w);
    cr_expect_eq(w.n_arena_cache, 167);
    burst(&w, 50); /* this period at most 50 are in use: 117 were not needed */
    one_period(&w);
    cr_expect_eq(w.n_arena_cache, 50, "what no stream took in a period is freed");
    one_period(&w); /* nothing used: down to what is kept for good */
    cr_expect_eq(w.n_arena_cache, MESH_STREAM_CACHE_KEEP);
    cr_expect_not(w.arena_trim_armed, "and the timer stops");
    worker_free(&w);
}

Test(stream_cache, busy_cache_is_not_trimmed)
{
    struct mesh_worker w;
    worker_init(&w);
    burst(&w, 300);
    burst(&w, 300); /* every arena was in use in this period */
    one_period(&w);
    cr_expect_eq(w.n_arena_cache, 300, "what a steady load uses stays");
    worker_free(&w);
}

Test(stream_cache, bounded)
{
    struct mesh_worker w;
    worker_init(&w);
    burst(&w, MESH_STREAM_CACHE_MAX + 100);
    cr_expect_eq(w.n_arena_cache, MESH_STREAM_CACHE_MAX, "beyond the cap, arenas are freed");
    worker_free(&w);
}
