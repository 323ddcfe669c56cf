/* Included first by every .c file: build config, compiler helpers, invariants. */
#ifndef MESH_CORE_COMMON_H
#define MESH_CORE_COMMON_H

#include "config.h"
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdlib.h>

#define MESH_LIKELY(x) __builtin_expect(!!(x), 1)
#define MESH_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MESH_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MESH_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define MESH_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MESH_MAX(a, b) ((a) > (b) ? (a) : (b))
#define MESH_PRINTF(f, a) __attribute__((format(printf, f, a)))

/** Always-on invariant check for anything that would corrupt memory. */
#define MESH_BUG_ON(cond)                                                                          \
    do {                                                                                           \
        if (MESH_UNLIKELY(cond))                                                                   \
            mesh_bug(__FILE__, __LINE__, #cond);                                                   \
    } while (0)

_Noreturn void mesh_bug(const char *file, int line, const char *what);

/** Setup-path allocation: aborts with a message on OOM (h2o h2o_mem_alloc). */
void *mesh_xmalloc(size_t n);
void *mesh_xcalloc(size_t n, size_t size);
void *mesh_xrealloc(void *p, size_t n);
char *mesh_xstrdup(const char *s);
/** <s> with everything but RFC 3986's unreserved characters percent-encoded; free(). */
char *mesh_pct_encode(const char *s);

#endif /* MESH_CORE_COMMON_H */
