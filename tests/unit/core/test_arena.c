#include "core/common.h"
#include <string.h>
#include <criterion/criterion.h>
#include "core/arena.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

static struct mesh_arena *a;

static void free_it_later(void *p)
{
    free(p);
}

static void setup(void)
{
    a = mesh_arena_new(4096, 64 * 1024);
}

static void teardown(void)
{
    mesh_arena_free(a);
}

TestSuite(arena, .init = setup, .fini = teardown);

Test(arena, alloc_is_16_byte_aligned)
{
    for (size_t n = 1; n < 40; n++) {
        void *p = mesh_arena_alloc(a, n);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p & 15u, 0, "size %zu", n);
        memset(p, 0xab, n); /* ASan: the whole block is addressable */
    }
}

Test(arena, calloc_zeroes_and_checks_overflow)
{
    unsigned char *p = mesh_arena_calloc(a, 10, 10);
    cr_assert_not_null(p);
    for (size_t i = 0; i < 100; i++)
        cr_assert_eq(p[i], 0);
    cr_expect_null(mesh_arena_calloc(a, SIZE_MAX / 2, 4));
}

Test(arena, strndup_copies_and_terminates)
{
    char *s = mesh_arena_strndup(a, "hello world", 5);
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "hello");
}

Test(arena, strings_pack_and_blocks_stay_aligned)
{
    char *s1 = mesh_arena_strndup(a, "10.0.0.1", 8);
    char *s2 = mesh_arena_strndup(a, "10.0.0.1:80", 11);
    cr_assert(s1 && s2);
    cr_expect_eq(s2, s1 + 9, "strings are not padded to 16 bytes");
    cr_expect_str_eq(s1, "10.0.0.1");
    cr_expect_str_eq(s2, "10.0.0.1:80");
    void *p = mesh_arena_alloc(a, 24);
    cr_assert_not_null(p);
    cr_expect_eq((uintptr_t)p & 15u, 0, "a block after a string is aligned");
    cr_expect((char *)p >= s2 + 12);
    memset(p, 0xab, 24);
    cr_expect_str_eq(s2, "10.0.0.1:80");
    cr_expect_eq(mesh_arena_used(a), 9 + 12 + 32);
}

Test(arena, mapped_arena_allocates_big_and_small)
{
    struct mesh_arena *m = mesh_arena_new_mapped(64 * 1024);
    char *first = mesh_arena_alloc(m, 100);
    cr_assert_not_null(first);
    memset(first, 1, 100);
    char *big = mesh_arena_alloc(m, 300 * 1024); /* its own mapping */
    cr_assert_not_null(big);
    memset(big, 2, 300 * 1024);
    cr_expect_eq(mesh_arena_alloc(m, 16), first + 112, "the big block left the chunk alone");
    for (int i = 0; i < 200; i++) { /* spills into more chunks */
        unsigned char *p = mesh_arena_calloc(m, 1, 1000);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p & 15u, 0);
        cr_assert_eq(p[0] | p[999], 0);
        memset(p, 3, 1000);
        char *s = mesh_arena_strndup(m, "abc", 3);
        cr_assert_not_null(s);
        cr_assert_str_eq(s, "abc");
    }
    cr_expect_eq(big[300 * 1024 - 1], 2);
    cr_assert_eq(mesh_arena_defer(m, free_it_later, mesh_xmalloc(10)), 0);
    mesh_arena_free(m);
#ifdef HAVE_LSAN
    cr_expect_eq(__lsan_do_recoverable_leak_check(), 0, "mapped arena leaked");
#endif
}

Test(arena, budget_exceeded_returns_null)
{
    cr_expect_null(mesh_arena_alloc(a, 128 * 1024));
    cr_expect_null(mesh_arena_alloc(a, SIZE_MAX));
    /* fill up to the budget exactly, then one more byte fails */
    size_t used = 0;
    while (used + 1024 <= 64 * 1024) {
        cr_assert_not_null(mesh_arena_alloc(a, 1024));
        used += 1024;
    }
    cr_expect_eq(mesh_arena_used(a), 64 * 1024);
    cr_expect_null(mesh_arena_alloc(a, 1));
}

Test(arena, unlimited_budget_grows)
{
    struct mesh_arena *u = mesh_arena_new(4096, 0);
    for (int i = 0; i < 1000; i++)
        cr_assert_not_null(mesh_arena_alloc(u, 1000));
    cr_expect_eq(mesh_arena_used(u), 1000 * 1008);
    mesh_arena_free(u);
}

Test(arena, unlimited_budget_refuses_sizes_that_wrap)
{
    /* no budget to stop them: the chunk header must not wrap the size into a tiny block */
    struct mesh_arena *u = mesh_arena_new(4096, 0);
    cr_expect_null(mesh_arena_alloc(u, SIZE_MAX - 40));
    cr_expect_null(mesh_arena_strndup(u, "x", SIZE_MAX - 1));
    cr_expect_null(mesh_arena_calloc(u, 1, SIZE_MAX - 40));
    cr_expect_not_null(mesh_arena_alloc(u, 16), "and the arena still works");
    mesh_arena_free(u);
}

Test(arena, big_blocks_do_not_waste_the_current_chunk)
{
    char *small1 = mesh_arena_alloc(a, 16);
    /* too big for what is left and above a quarter chunk: its own block */
    char *big = mesh_arena_alloc(a, 4090);
    char *small2 = mesh_arena_alloc(a, 16);
    cr_assert(small1 && big && small2);
    memset(big, 1, 4090);
    /* the small ones still come from the same chunk, back to back */
    cr_expect_eq(small2, small1 + 16);
    char *huge = mesh_arena_alloc(a, 20000); /* bigger than a chunk */
    cr_assert_not_null(huge);
    memset(huge, 2, 20000);
    cr_expect_eq(mesh_arena_alloc(a, 16), small2 + 16);
}

Test(arena, first_alloc_may_be_big)
{
    struct mesh_arena *b = mesh_arena_new(4096, 0);
    char *big = mesh_arena_alloc(b, 10000);
    cr_assert_not_null(big);
    memset(big, 3, 10000);
    char *small = mesh_arena_alloc(b, 32);
    cr_assert_not_null(small);
    memset(small, 4, 32);
    mesh_arena_reset(b);
    cr_expect_eq(mesh_arena_used(b), 0);
    cr_assert_not_null(mesh_arena_alloc(b, 64));
    mesh_arena_free(b);
}

Test(arena, reset_reuses_the_first_chunk)
{
    void *p = mesh_arena_alloc(a, 100);
    for (int i = 0; i < 20; i++)
        cr_assert_not_null(mesh_arena_alloc(a, 1000)); /* spill into more chunks */
    cr_assert_not_null(mesh_arena_alloc(a, 5000));
    mesh_arena_reset(a);
    cr_expect_eq(mesh_arena_used(a), 0);
    void *q = mesh_arena_alloc(a, 100);
    cr_expect_eq(p, q);
    /* the budget starts over too */
    for (int i = 0; i < 60; i++)
        cr_assert_not_null(mesh_arena_alloc(a, 1024));
}

Test(arena, reset_of_an_empty_arena_is_harmless)
{
    mesh_arena_reset(a);
    mesh_arena_reset(a);
    cr_expect_not_null(mesh_arena_alloc(a, 1));
}

static int order[8];
static int n_order;

static void record(void *arg)
{
    order[n_order++] = (int)(intptr_t)arg;
}

Test(arena, defers_run_lifo_on_reset_and_free)
{
    n_order = 0;
    for (intptr_t i = 1; i <= 3; i++)
        cr_assert_eq(mesh_arena_defer(a, record, (void *)i), 0);
    mesh_arena_reset(a);
    cr_assert_eq(n_order, 3);
    cr_expect_eq(order[0], 3);
    cr_expect_eq(order[1], 2);
    cr_expect_eq(order[2], 1);

    /* once run, they do not run again; new ones run at free */
    struct mesh_arena *b = mesh_arena_new(256, 0);
    mesh_arena_defer(b, record, (void *)(intptr_t)7);
    mesh_arena_defer(b, record, (void *)(intptr_t)8);
    mesh_arena_reset(a);
    cr_expect_eq(n_order, 3);
    mesh_arena_free(b);
    cr_assert_eq(n_order, 5);
    cr_expect_eq(order[3], 8);
    cr_expect_eq(order[4], 7);
}

static void free_it(void *p)
{
    free(p);
}

Test(arena, defer_releases_outside_memory)
{
    struct mesh_arena *b = mesh_arena_new(256, 0);
    cr_assert_eq(mesh_arena_defer(b, free_it, mesh_xmalloc(100)), 0);
    mesh_arena_free(b);
#ifdef HAVE_LSAN
    /* Criterion ignores LeakSanitizer's exit status after the test: ask here */
    cr_expect_eq(__lsan_do_recoverable_leak_check(), 0, "the defer hook did not free");
#endif
}

Test(arena, defer_fails_over_budget)
{
    struct mesh_arena *b = mesh_arena_new(256, 16);
    cr_assert_not_null(mesh_arena_alloc(b, 16));
    cr_expect_neq(mesh_arena_defer(b, record, NULL), 0);
    mesh_arena_free(b);
}

Test(arena, free_null_is_allowed)
{
    mesh_arena_free(NULL);
}
