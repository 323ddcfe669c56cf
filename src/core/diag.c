#include "core/common.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "core/diag.h"

void mesh_diags_init(struct mesh_diags *d)
{
    memset(d, 0, sizeof(*d));
}

void mesh_diags_free(struct mesh_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].file);
        free(d->v[i].subject);
        free(d->v[i].path);
        free(d->v[i].msg);
    }
    free(d->v);
    memset(d, 0, sizeof(*d));
}

/* User text goes to a terminal: no escape sequences, no line breaks. */
static char *clean_dup(const char *s)
{
    if (!s)
        return NULL;
    char *p = mesh_xstrdup(s);
    for (char *q = p; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f)
            *q = '?';
    return p;
}

void mesh_diags_vadd(struct mesh_diags *d, enum mesh_diag_severity sev, const char *file, int line,
                     int col, const char *subject, const char *path, const char *fmt, va_list ap)
{
    switch (sev) {
    case MESH_DIAG_ERROR: d->n_errors++; break;
    case MESH_DIAG_WARNING: d->n_warnings++; break;
    case MESH_DIAG_NOTE: d->n_notes++; break;
    }
    if (d->n >= MESH_DIAG_MAX)
        return;
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->v = mesh_xrealloc(d->v, d->cap * sizeof(*d->v));
    }
    char msg[1024];
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0)
        msg[0] = '\0';
    struct mesh_diag *e = &d->v[d->n++];
    e->severity = sev;
    e->file = clean_dup(file ? file : "-");
    e->line = line;
    e->col = col;
    e->subject = subject && *subject ? clean_dup(subject) : NULL;
    e->path = path && *path ? clean_dup(path) : NULL;
    e->msg = clean_dup(msg);
}

void mesh_diags_add(struct mesh_diags *d, enum mesh_diag_severity sev, const char *file, int line,
                    int col, const char *subject, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mesh_diags_vadd(d, sev, file, line, col, subject, path, fmt, ap);
    va_end(ap);
}

size_t mesh_diag_format(const struct mesh_diag *e, char *buf, size_t size)
{
    static const char *const sev[] = {"", "warning: ", "note: "};
    char pos[32] = "";
    if (!size)
        return 0;
    if (e->line > 0)
        snprintf(pos, sizeof(pos), ":%d:%d", e->line, e->col);
    int n = snprintf(buf, size, "%s%s: %s%s%s%s%s%s", e->file, pos, e->subject ? e->subject : "",
                     e->subject ? ": " : "", sev[e->severity], e->path ? e->path : "",
                     e->path ? ": " : "", e->msg);
    if (n < 0) {
        buf[0] = '\0';
        return 0;
    }
    return (size_t)n < size ? (size_t)n : size - 1;
}

static bool before(const struct mesh_diag *a, const struct mesh_diag *b)
{
    return a->line < b->line || (a->line == b->line && a->col < b->col);
}

void mesh_diags_sort(struct mesh_diags *d)
{
    size_t start = 0;
    while (start < d->n) {
        size_t end = start + 1;
        while (end < d->n && strcmp(d->v[end].file, d->v[start].file) == 0)
            end++;
        /* insertion sort: stable, and runs are short and mostly in order already */
        for (size_t i = start + 1; i < end; i++) {
            struct mesh_diag e = d->v[i];
            size_t j = i;
            while (j > start && before(&e, &d->v[j - 1])) {
                d->v[j] = d->v[j - 1];
                j--;
            }
            d->v[j] = e;
        }
        start = end;
    }
}

size_t mesh_diags_dropped(const struct mesh_diags *d)
{
    return d->n_errors + d->n_warnings + d->n_notes - d->n;
}

void mesh_diags_print(const struct mesh_diags *d, FILE *f, enum mesh_diag_severity max_sev)
{
    char buf[2048];
    for (size_t i = 0; i < d->n; i++) {
        if (d->v[i].severity > max_sev)
            continue;
        mesh_diag_format(&d->v[i], buf, sizeof(buf));
        fprintf(f, "%s\n", buf);
    }
    size_t dropped = mesh_diags_dropped(d);
    if (dropped)
        fprintf(f, "... and %zu more messages not shown\n", dropped);
}
