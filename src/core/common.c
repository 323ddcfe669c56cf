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

char *mesh_pct_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = mesh_xmalloc(n * 3 + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}
