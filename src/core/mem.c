#include "core/common.h"
#include <pthread.h>
#include <string.h>
#include <event2/event.h>
#include "core/mem.h"

/*
 * Under AddressSanitizer a cached block is poisoned, so a use after free
 * still reports; LeakSanitizer finds the cached blocks through the thread's
 * cache, and a thread's exit frees them.
 */
#if defined(__SANITIZE_ADDRESS__)
#define MEM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEM_ASAN 1
#endif
#endif
#ifdef MEM_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define MEM_MIN_SHIFT 5             /* the smallest class: 32 bytes */
#define MEM_CLASSES 12              /* 32 B .. 64 KiB, powers of two */
#define MEM_BIG MEM_CLASSES         /* larger: a plain malloc, never cached */
#define MEM_KEEP_MAX 1024           /* blocks a thread keeps per class ... */
#define MEM_KEEP_BYTES (1024 * 1024) /* ... and bytes (16 KiB read chains: 64) */
#define MEM_MAGIC 0x6d656d31u       /* "mem1": a block that did not come from here is a bug */

/*
 * Before every block; 16 bytes, so the block keeps malloc's alignment. A
 * cached block is linked through its header, never poisoned, so that
 * LeakSanitizer can follow the list.
 */
struct hdr {
    uint32_t cls;
    uint32_t magic;
    union {
        uint64_t size;    /* MEM_BIG: the size asked for (realloc copies it) */
        struct hdr *next; /* cached */
    };
};

/*
 * The one piece of per-thread state: libevent's hooks take no context
 * argument, and a worker's allocations must not share a lock with another's.
 */
struct cache {
    struct hdr *head[MEM_CLASSES];
    uint32_t n[MEM_CLASSES];
    bool registered;
};
static __thread struct cache tc;
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static size_t class_size(unsigned cls)
{
    return (size_t)1 << (cls + MEM_MIN_SHIFT);
}

static unsigned class_of(size_t n)
{
    if (n <= class_size(0))
        return 0;
    if (n > class_size(MEM_CLASSES - 1))
        return MEM_BIG;
    return (unsigned)(64 - __builtin_clzll((unsigned long long)(n - 1))) - MEM_MIN_SHIFT;
}

static uint32_t keep_max(unsigned cls)
{
    size_t by_bytes = MEM_KEEP_BYTES / class_size(cls);
    return (uint32_t)MESH_MAX(1, MESH_MIN(by_bytes, MEM_KEEP_MAX));
}

static void flush(struct cache *c)
{
    for (unsigned cls = 0; cls < MEM_CLASSES; cls++) {
        while (c->head[cls]) {
            struct hdr *h = c->head[cls];
            UNPOISON(h + 1, class_size(cls));
            c->head[cls] = h->next;
            free(h);
        }
        c->n[cls] = 0;
    }
}

static void on_thread_exit(void *arg)
{
    struct cache *c = arg;
    flush(c);
    c->registered = false;
}

static void make_exit_key(void)
{
    MESH_BUG_ON(pthread_key_create(&exit_key, on_thread_exit) != 0);
}

/* The first block a thread keeps: have its exit free the cache. */
static void register_thread(void)
{
    pthread_once(&exit_once, make_exit_key);
    pthread_setspecific(exit_key, &tc);
    tc.registered = true;
}

void *mesh_mem_alloc(size_t n)
{
    unsigned cls = class_of(n ? n : 1);
    if (cls < MEM_CLASSES) {
        struct hdr *h = tc.head[cls];
        if (h) {
            tc.head[cls] = h->next;
            tc.n[cls]--;
            UNPOISON(h + 1, class_size(cls));
            return h + 1;
        }
        n = class_size(cls);
    } else if (n > SIZE_MAX - sizeof(struct hdr)) {
        return NULL;
    }
    struct hdr *h = malloc(sizeof(*h) + n);
    if (!h)
        return NULL;
    h->cls = cls;
    h->magic = MEM_MAGIC;
    h->size = n;
    return h + 1;
}

void mesh_mem_free(void *p)
{
    if (!p)
        return;
    struct hdr *h = (struct hdr *)p - 1;
    MESH_BUG_ON(h->magic != MEM_MAGIC);
    unsigned cls = h->cls;
#ifdef MEM_ASAN
    /* a cached block is poisoned: freeing it again would link it twice */
    MESH_BUG_ON(cls < MEM_CLASSES && __asan_address_is_poisoned(p));
#endif
    if (cls >= MEM_CLASSES || tc.n[cls] >= keep_max(cls)) {
        h->magic = 0;
        free(h);
        return;
    }
    if (MESH_UNLIKELY(!tc.registered))
        register_thread();
    h->next = tc.head[cls];
    tc.head[cls] = h;
    tc.n[cls]++;
    POISON(p, class_size(cls));
}

void *mesh_mem_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = mesh_mem_alloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *mesh_mem_realloc(void *p, size_t n)
{
    if (!p)
        return mesh_mem_alloc(n);
    if (!n) {
        mesh_mem_free(p);
        return NULL;
    }
    struct hdr *h = (struct hdr *)p - 1;
    MESH_BUG_ON(h->magic != MEM_MAGIC);
    size_t have = h->cls < MEM_CLASSES ? class_size(h->cls) : h->size;
    if (h->cls < MEM_CLASSES && n <= have)
        return p; /* the class has room */
    if (h->cls == MEM_BIG && class_of(n) == MEM_BIG) {
        if (n > SIZE_MAX - sizeof(*h))
            return NULL;
        struct hdr *nh = realloc(h, sizeof(*nh) + n);
        if (!nh)
            return NULL;
        nh->size = n;
        return nh + 1;
    }
    void *q = mesh_mem_alloc(n);
    if (!q)
        return NULL;
    memcpy(q, p, MESH_MIN(have, n));
    mesh_mem_free(p);
    return q;
}

void mesh_mem_use_for_libevent(void)
{
    event_set_mem_functions(mesh_mem_alloc, mesh_mem_realloc, mesh_mem_free);
}

static void *ng_malloc(size_t n, void *ud)
{
    return mesh_mem_alloc(n);
}

static void ng_free(void *p, void *ud)
{
    mesh_mem_free(p);
}

static void *ng_calloc(size_t n, size_t size, void *ud)
{
    return mesh_mem_calloc(n, size);
}

static void *ng_realloc(void *p, size_t n, void *ud)
{
    return mesh_mem_realloc(p, n);
}

nghttp2_mem *mesh_mem_nghttp2(void)
{
    /* constant; nghttp2 copies it into each session */
    static nghttp2_mem mem = {NULL, ng_malloc, ng_free, ng_calloc, ng_realloc};
    return &mem;
}

size_t mesh_mem_cached(void)
{
    size_t n = 0;
    for (unsigned cls = 0; cls < MEM_CLASSES; cls++)
        n += tc.n[cls];
    return n;
}

void mesh_mem_thread_flush(void)
{
    flush(&tc);
}
