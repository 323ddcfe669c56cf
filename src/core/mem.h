/*
 * A per-thread cache of freed blocks by size class (haproxy's pool caches,
 * libevent's mm hooks), for the libraries whose allocations come and go with
 * every request: libevent's evbuffer chains (1 and 16 KiB) and nghttp2's
 * streams, frames and header buffers. glibc keeps only blocks up to 1 KiB
 * in its thread cache, so those took its slow path: 2,000-3,300 instructions
 * a proxied request (docs/performance.md "Allocation cache").
 */
#ifndef MESH_CORE_MEM_H
#define MESH_CORE_MEM_H

#include "core/common.h"
#include <nghttp2/nghttp2.h>

/**
 * malloc, calloc, realloc and free through the calling thread's cache. A
 * block of these functions goes back to mesh_mem_free or mesh_mem_realloc
 * only (it carries a header), from any thread.
 */
void *mesh_mem_alloc(size_t n);
void *mesh_mem_calloc(size_t n, size_t size);
void *mesh_mem_realloc(void *p, size_t n);
void mesh_mem_free(void *p);
/**
 * Routes libevent's allocations through the cache. Must run before any other
 * libevent call (event_set_mem_functions); memory that a libevent function
 * returns for its caller to free is then a block of this cache.
 */
void mesh_mem_use_for_libevent(void);
/** An nghttp2 allocator over the cache, for nghttp2_session_*_new3 (which copy it). */
nghttp2_mem *mesh_mem_nghttp2(void);
/** Blocks the calling thread's cache holds now. */
size_t mesh_mem_cached(void);
/** Frees the calling thread's cache; a thread's exit does it too. */
void mesh_mem_thread_flush(void);

#endif /* MESH_CORE_MEM_H */
