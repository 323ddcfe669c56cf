#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include "core/status.h"

const char *mesh_strstatus(int st)
{
    switch (st) {
    case MESH_OK: return "ok";
    case MESH_EAGAIN: return "would block";
    case MESH_EINVAL: return "invalid argument";
    case MESH_ENOTFOUND: return "not found";
    case MESH_EPROTO: return "protocol error";
    case MESH_ETLS: return "TLS error";
    case MESH_ELIMIT: return "limit exceeded";
    case MESH_EIO: return "I/O error";
    case MESH_ESTORE: return "store error";
    case MESH_ELUA: return "script error";
    case MESH_ECONFLICT: return "conflict";
    case MESH_ENOMEM: return "out of memory";
    case MESH_EBUG: return "internal error";
    default: return mesh_status_is_fatal(st) ? "fatal error" : "unknown error";
    }
}

/*
 * Cuts a UTF-8 sequence that a truncating snprintf left incomplete at the end of <s>: the
 * text goes into JSON (a NACK's reason), and one broken character would lose all of it.
 */
static void utf8_trim_tail(char *s)
{
    size_t n = strlen(s), i = n, k = 0;
    while (i > 0 && k < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        k++;
    }
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (lead >= 0xC0 && k + 1 < want)
        s[i - 1] = '\0';
}

void mesh_err_init(struct mesh_err *err, const char *file)
{
    err->file = file;
    err->count = 0;
    err->total = 0;
}

int mesh_err_add(struct mesh_err *err, int line, int col, const char *path, const char *fmt, ...)
{
    err->total++;
    if (err->count >= MESH_ERR_MAX)
        return MESH_EINVAL;
    struct mesh_err_entry *e = &err->e[err->count++];
    e->status = MESH_EINVAL;
    e->line = line;
    e->col = col;
    snprintf(e->path, sizeof(e->path), "%s", path ? path : "");
    utf8_trim_tail(e->path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    utf8_trim_tail(e->msg);
    return MESH_EINVAL;
}

size_t mesh_err_format(const struct mesh_err *err, char *buf, size_t size)
{
    size_t off = 0;
    if (!size)
        return 0;
    buf[0] = '\0';
    for (size_t i = 0; i < err->count && off < size; i++) {
        const struct mesh_err_entry *e = &err->e[i];
        int n;
        if (e->line > 0)
            n = snprintf(buf + off, size - off, "%s:%d:%d: ", err->file ? err->file : "-", e->line,
                         e->col);
        else
            n = snprintf(buf + off, size - off, "%s: ", err->file ? err->file : "-");
        if (n < 0)
            break;
        off += (size_t)n;
        if (off >= size)
            break;
        n = snprintf(buf + off, size - off, "%s%s%s\n", e->path, e->path[0] ? ": " : "", e->msg);
        if (n < 0)
            break;
        off += (size_t)n;
    }
    if (err->total > err->count && off < size) {
        int n = snprintf(buf + off, size - off, "... and %zu more errors\n", err->total - err->count);
        if (n > 0)
            off += (size_t)n;
    }
    if (off < size)
        return off;
    utf8_trim_tail(buf); /* the whole text did not fit */
    return strlen(buf);
}

void mesh_err_print(const struct mesh_err *err, FILE *f)
{
    char buf[MESH_ERR_MAX * 420];
    mesh_err_format(err, buf, sizeof(buf));
    fputs(buf, f);
}
