/* Bump allocator with a budget: one per connection, per stream, per snapshot. */
#ifndef MESH_CORE_ARENA_H
#define MESH_CORE_ARENA_H

#include "core/common.h"

struct mesh_arena;

/**
 * New arena. <chunk_size> is the size of each block, <budget> the total bytes it
 * may hand out (0 = unlimited). Caller owns; free with mesh_arena_free().
 */
struct mesh_arena *mesh_arena_new(size_t chunk_size, size_t budget);
/**
 * New arena whose chunks come from mmap (not malloc): for big, long-lived
 * ones (a snapshot). Untouched pages cost no RSS and free returns the pages
 * to the system at once. No budget. Caller owns; mesh_arena_free().
 */
struct mesh_arena *mesh_arena_new_mapped(size_t chunk_size);
/** 16-byte aligned memory valid until reset/free; NULL when over budget. */
void *mesh_arena_alloc(struct mesh_arena *a, size_t size);
void *mesh_arena_calloc(struct mesh_arena *a, size_t n, size_t size);
/** NUL-terminated copy of <n> bytes of <s> (not aligned: strings pack); NULL when over budget. */
char *mesh_arena_strndup(struct mesh_arena *a, const char *s, size_t n);
/** Runs <fn>(<arg>) at reset/free, last registered first. */
int mesh_arena_defer(struct mesh_arena *a, void (*fn)(void *), void *arg);
/** Frees everything but the first chunk, so a keep-alive connection reuses it. */
void mesh_arena_reset(struct mesh_arena *a);
void mesh_arena_free(struct mesh_arena *a);
/** Bytes handed out since creation or the last reset. */
size_t mesh_arena_used(const struct mesh_arena *a);

#endif /* MESH_CORE_ARENA_H */
