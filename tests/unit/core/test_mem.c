/* The per-thread allocation cache (src/core/mem.c): reuse, classes, realloc, bounds,
 * thread exit, and the libevent and nghttp2 hooks. */
#include "core/common.h"
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <nghttp2/nghttp2.h>
#include "core/mem.h"
#include "../leakcheck.h"

#ifdef MESH_HAVE_LSAN
#include <sanitizer/asan_interface.h>
#endif

LEAK_TEST(mem, freed_blocks_are_reused)
{
    mesh_mem_thread_flush();
    char *a = mesh_mem_alloc(100);
    memset(a, 'x', 128); /* the whole class (128) is usable */
    mesh_mem_free(a);
    cr_expect_eq(mesh_mem_cached(), 1);
#ifdef MESH_HAVE_LSAN
    cr_expect(__asan_address_is_poisoned(a), "a cached block is poisoned: a use after free reports");
#endif
    char *b = mesh_mem_alloc(120); /* same class */
    cr_expect_eq(b, a, "the cached block comes back");
    cr_expect_eq(mesh_mem_cached(), 0);
    char *c = mesh_mem_alloc(129); /* the next class: a new block */
    cr_expect_neq(c, a);
    mesh_mem_free(b);
    mesh_mem_free(c);
    mesh_mem_free(NULL);
    mesh_mem_thread_flush();
    cr_expect_eq(mesh_mem_cached(), 0);
}

LEAK_TEST(mem, class_edges_and_big_blocks)
{
    static const size_t sizes[] = {0, 1, 31, 32, 33, 4096, 4097, 65536, 65537, 1 << 20};
    void *p[MESH_ARRAY_LEN(sizes)];
    for (size_t i = 0; i < MESH_ARRAY_LEN(sizes); i++) {
        p[i] = mesh_mem_alloc(sizes[i]);
        cr_assert_not_null(p[i]);
        cr_expect_eq((uintptr_t)p[i] % 16, 0, "16-byte aligned");
        memset(p[i], (int)i, sizes[i]);
    }
    for (size_t i = 0; i < MESH_ARRAY_LEN(sizes); i++)
        mesh_mem_free(p[i]);
    /* big blocks (over 64 KiB) are never kept */
    cr_expect_eq(mesh_mem_cached(), MESH_ARRAY_LEN(sizes) - 2);
    cr_expect_null(mesh_mem_calloc(SIZE_MAX / 2, 4), "calloc overflow");
    cr_expect_null(mesh_mem_alloc(SIZE_MAX - 4), "no wrap-around");
    mesh_mem_thread_flush();
}

LEAK_TEST(mem, calloc_zeroes_a_reused_block)
{
    unsigned char *a = mesh_mem_alloc(200);
    memset(a, 0xab, 200);
    mesh_mem_free(a);
    unsigned char *b = mesh_mem_calloc(10, 20);
    cr_assert_eq(b, a);
    for (int i = 0; i < 200; i++)
        cr_assert_eq(b[i], 0, "byte %d", i);
    mesh_mem_free(b);
    mesh_mem_thread_flush();
}

LEAK_TEST(mem, realloc_keeps_the_bytes)
{
    char *p = mesh_mem_realloc(NULL, 40); /* class 64 */
    memcpy(p, "0123456789", 10);
    cr_expect_eq(mesh_mem_realloc(p, 64), p, "room in the class: the same block");
    char *q = mesh_mem_realloc(p, 5000);
    cr_assert_not_null(q);
    cr_expect(memcmp(q, "0123456789", 10) == 0);
    memset(q + 10, 'y', 4990);
    char *big = mesh_mem_realloc(q, 200000);
    cr_assert_not_null(big);
    cr_expect(memcmp(big, "0123456789", 10) == 0 && big[4999] == 'y');
    big[199999] = 'z';
    char *bigger = mesh_mem_realloc(big, 300000);
    cr_expect(bigger[199999] == 'z' && bigger[4999] == 'y');
    char *small = mesh_mem_realloc(bigger, 20);
    cr_expect(memcmp(small, "0123456789", 10) == 0, "a big block shrinks into a class");
    cr_expect_null(mesh_mem_realloc(small, 0), "realloc to 0 frees");
    mesh_mem_thread_flush();
}

LEAK_TEST(mem, a_thread_keeps_a_bounded_number)
{
    enum { N = 100 };
    void *p[N];
    for (int i = 0; i < N; i++)
        p[i] = mesh_mem_alloc(16 * 1024);
    for (int i = 0; i < N; i++)
        mesh_mem_free(p[i]);
    size_t kept = mesh_mem_cached();
    cr_expect(kept >= 1 && kept <= 64, "16 KiB blocks kept: %zu (at most 1 MiB)", kept);
    enum { M = 1300 };
    static void *q[M];
    for (int i = 0; i < M; i++)
        q[i] = mesh_mem_alloc(64);
    for (int i = 0; i < M; i++)
        mesh_mem_free(q[i]);
    cr_expect_leq(mesh_mem_cached() - kept, 1024, "at most 1,024 blocks of a small class");
    mesh_mem_thread_flush();
}

static void *churn(void *arg)
{
    for (int i = 0; i < 50; i++)
        mesh_mem_free(mesh_mem_alloc((size_t)(i * 300 + 1)));
    *(size_t *)arg = mesh_mem_cached();
    return NULL;
}

/* A thread that ends with blocks in its cache frees them (the leak check fails otherwise). */
LEAK_TEST(mem, thread_exit_frees_the_cache)
{
    size_t kept = 0;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, churn, &kept), 0);
    pthread_join(t, NULL);
    cr_expect_gt(kept, 0, "the thread had blocks cached");
    /* a block freed here from another thread's allocation is fine too */
    void *p = mesh_mem_alloc(10);
    mesh_mem_free(p);
    mesh_mem_thread_flush();
}

LEAK_TEST(mem, libevent_allocates_through_the_cache)
{
    mesh_mem_use_for_libevent(); /* this test process has made no libevent call yet */
    mesh_mem_thread_flush();
    struct evbuffer *b = evbuffer_new();
    static char data[40000];
    memset(data, 'd', sizeof(data));
    evbuffer_add(b, data, sizeof(data));
    evbuffer_drain(b, sizeof(data));
    cr_expect_gt(mesh_mem_cached(), 0, "the drained chains went to the cache");
    evbuffer_add(b, data, 100);
    cr_expect_eq(evbuffer_get_length(b), 100);
    evbuffer_free(b);
    mesh_mem_thread_flush();
}

static ssize_t no_send(nghttp2_session *s, const uint8_t *d, size_t n, int f, void *u)
{
    return (ssize_t)n;
}

LEAK_TEST(mem, nghttp2_sessions_use_the_cache)
{
    mesh_mem_thread_flush();
    nghttp2_session_callbacks *cb;
    cr_assert_eq(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_send_callback(cb, no_send);
    nghttp2_session *s;
    cr_assert_eq(nghttp2_session_client_new3(&s, cb, NULL, NULL, mesh_mem_nghttp2()), 0);
    nghttp2_session_callbacks_del(cb);
    const nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
        {(uint8_t *)":path", (uint8_t *)"/", 5, 1, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":authority", (uint8_t *)"a", 10, 1, 0},
    };
    for (int i = 0; i < 5; i++)
        cr_expect_gt(nghttp2_submit_request(s, NULL, nv, 4, NULL, NULL), 0);
    cr_expect_eq(nghttp2_session_send(s), 0);
    nghttp2_session_del(s);
    cr_expect_gt(mesh_mem_cached(), 0, "the session's blocks went to the cache");
    mesh_mem_thread_flush();
}

/* Blocks a live thread keeps cached are not leaks: LeakSanitizer follows the cache. */
LEAK_TEST(mem, cached_blocks_are_reachable)
{
    void *p[10];
    for (int i = 0; i < 10; i++)
        p[i] = mesh_mem_alloc(300);
    for (int i = 0; i < 10; i++)
        mesh_mem_free(p[i]);
    cr_expect_geq(mesh_mem_cached(), 10);
}

#ifdef MESH_HAVE_LSAN
/* Under ASan a second free of a cached block stops the process (it would be linked twice). */
Test(mem, double_free_is_caught, .signal = SIGABRT)
{
    void *p = mesh_mem_alloc(100);
    mesh_mem_free(p);
    mesh_mem_free(p);
}
#endif
