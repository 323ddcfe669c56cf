#include "core/common.h"
#include <stdio.h>
#include <string.h>

void mesh_bug(const char *file, int line, const char *what)
{
    fprintf(stderr, "meshd: BUG at %s:%d: %s\n", file, line, what);
    abort();
}

static void oom(size_t n)
{
    fprintf(stderr, "meshd: out of memory allocating %zu bytes\n", n);
    abort();
}

void *mesh_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *mesh_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *mesh_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *mesh_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = mesh_xmalloc(n);
    memcpy(p, s, n);
    return p;
}
