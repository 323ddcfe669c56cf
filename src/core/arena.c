#include "core/common.h"
#include <string.h>
#include <sys/mman.h>
#include "core/arena.h"
#include "core/status.h"

/*
 * Mapped arenas take their chunks from mmap: a page nobody wrote to costs no
 * RSS (so a chunk needs no sizing to what is used), nothing else of the
 * process lands between them (a big, long-lived snapshot does not pin the
 * holes that its parse left in the malloc heap), and freeing gives the pages
 * straight back. Under LeakSanitizer the chunks stay on malloc: it only
 * looks for pointers (to regexes and the like) in memory it knows.
 */
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_MAP 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_MAP 0
#endif
#endif
#ifndef ARENA_MAP
#define ARENA_MAP 1
#endif

/* Blocks larger than a quarter chunk get their own allocation (nginx "large"). */
struct chunk {
    struct chunk *next;
    size_t size, used;
    size_t mapped;        /* bytes mmap'ed for this chunk; 0 = malloc'ed */
    _Alignas(16) unsigned char data[];
};

struct defer {
    struct defer *next;
    void (*fn)(void *);
    void *arg;
};

struct mesh_arena {
    struct chunk *head;   /* current chunk first; the last in the list is the first ever made */
    struct chunk *first;
    struct defer *defers;
    size_t chunk_size, budget, used;
    bool map;             /* chunks from mmap (mesh_arena_new_mapped) */
};

static struct chunk *chunk_new(const struct mesh_arena *a, size_t size)
{
    struct chunk *c;
    size_t mapped = 0;
    if (ARENA_MAP && a->map) {
        mapped = (sizeof(*c) + size + 4095) & ~(size_t)4095; /* the page's tail is usable too */
        if (mapped < size)
            return NULL;
        size = mapped - sizeof(*c);
        c = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (c == MAP_FAILED)
            return NULL;
    } else {
        if (size > SIZE_MAX - sizeof(*c)) /* a huge request must fail, not wrap */
            return NULL;
        c = malloc(sizeof(*c) + size);
        if (!c)
            return NULL;
    }
    c->next = NULL;
    c->size = size;
    c->used = 0;
    c->mapped = mapped;
    return c;
}

static void chunk_free(struct chunk *c)
{
    if (c->mapped)
        munmap(c, c->mapped);
    else
        free(c);
}

struct mesh_arena *mesh_arena_new(size_t chunk_size, size_t budget)
{
    struct mesh_arena *a = mesh_xcalloc(1, sizeof(*a));
    a->chunk_size = chunk_size < 256 ? 256 : chunk_size;
    a->budget = budget;
    return a;
}

struct mesh_arena *mesh_arena_new_mapped(size_t chunk_size)
{
    struct mesh_arena *a = mesh_arena_new(chunk_size, 0);
    a->map = true;
    return a;
}

/* <size> bytes at <align> (1 or 16) from the current chunk, or a new one. */
static void *arena_alloc(struct mesh_arena *a, size_t size, size_t align)
{
    size_t need = (size + align - 1) & ~(align - 1);
    if (need < size)
        return NULL;
    if (a->budget && (need > a->budget || a->used > a->budget - need))
        return NULL;
    struct chunk *c = a->head;
    if (c && align > 1)
        c->used = MESH_MIN((c->used + 15) & ~(size_t)15, c->size); /* after a string */
    if (!c || c->size - c->used < need) {
        size_t csize = need > a->chunk_size / 4 ? need : a->chunk_size;
        struct chunk *n = chunk_new(a, csize);
        if (!n)
            return NULL;
        if (!a->first)
            a->first = n;
        if (csize == need && c) {
            /* big block: keep bump-allocating from the current chunk */
            n->next = c->next;
            c->next = n;
        } else {
            n->next = c;
            a->head = n;
        }
        c = n;
    }
    void *p = c->data + c->used;
    c->used += need;
    a->used += need;
    return p;
}

void *mesh_arena_alloc(struct mesh_arena *a, size_t size)
{
    return arena_alloc(a, size, 16);
}

void *mesh_arena_calloc(struct mesh_arena *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = mesh_arena_alloc(a, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

char *mesh_arena_strndup(struct mesh_arena *a, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *p = arena_alloc(a, n + 1, 1); /* text needs no alignment: strings pack */
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

int mesh_arena_defer(struct mesh_arena *a, void (*fn)(void *), void *arg)
{
    struct defer *d = mesh_arena_alloc(a, sizeof(*d));
    if (!d)
        return MESH_ELIMIT;
    d->fn = fn;
    d->arg = arg;
    d->next = a->defers;
    a->defers = d;
    return MESH_OK;
}

static void run_defers(struct mesh_arena *a)
{
    while (a->defers) {
        struct defer *d = a->defers;
        a->defers = d->next;
        d->fn(d->arg);
    }
}

void mesh_arena_reset(struct mesh_arena *a)
{
    run_defers(a);
    struct chunk *c = a->head;
    while (c) {
        struct chunk *next = c->next;
        if (c != a->first)
            chunk_free(c);
        c = next;
    }
    a->head = a->first;
    if (a->first) {
        a->first->next = NULL;
        a->first->used = 0;
    }
    a->used = 0;
}

void mesh_arena_free(struct mesh_arena *a)
{
    if (!a)
        return;
    run_defers(a);
    struct chunk *c = a->head;
    while (c) {
        struct chunk *next = c->next;
        chunk_free(c);
        c = next;
    }
    free(a);
}

size_t mesh_arena_used(const struct mesh_arena *a)
{
    return a->used;
}
