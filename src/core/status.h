/* Error convention: hot paths return enum mesh_status; setup paths fill struct mesh_err. */
#ifndef MESH_CORE_STATUS_H
#define MESH_CORE_STATUS_H

#include <stdarg.h>
#include <stdio.h>
#include "core/common.h"

enum mesh_status {
    MESH_OK = 0,
    MESH_EAGAIN = -1,   /* would block; retry on the next event */
    MESH_EINVAL = -2,   /* bad argument / bad config value */
    MESH_ENOTFOUND = -3,
    MESH_EPROTO = -4,   /* peer violated the protocol */
    MESH_ETLS = -5,
    MESH_ELIMIT = -6,   /* a budget was exceeded (-> 4xx/503, not a crash) */
    MESH_EIO = -7,
    MESH_ESTORE = -8,
    MESH_ELUA = -9,
    MESH_ECONFLICT = -10, /* a stale update (optimistic concurrency): HTTP 409 */
    MESH_EFATAL = -900, /* <= MESH_EFATAL: the object is unusable; only *_free() is allowed */
    MESH_ENOMEM = -901,
    MESH_EBUG = -902,
};
#define mesh_status_is_fatal(st) ((st) <= MESH_EFATAL)

/** Static string for a status; never NULL. */
const char *mesh_strstatus(int st);

/*
 * Setup-path errors (config, snapshot, store): every error is collected, not
 * just the first, so a user sees all of them at once. Each entry carries a
 * source position (file:line:col for YAML) or a field path (JSON snapshots).
 */
#define MESH_ERR_MAX 64
struct mesh_err_entry {
    int status;
    int line, col;        /* 0 when not known */
    char path[160];       /* field path: "listeners[0].port" */
    char msg[240];
};
struct mesh_err {
    const char *file;     /* borrowed: the file being read, or NULL */
    size_t count;         /* entries recorded (saturates at MESH_ERR_MAX, total keeps counting) */
    size_t total;
    struct mesh_err_entry e[MESH_ERR_MAX];
};

void mesh_err_init(struct mesh_err *err, const char *file);
/** Records one error; <path> may be NULL. Returns MESH_EINVAL for convenience. */
int mesh_err_add(struct mesh_err *err, int line, int col, const char *path, const char *fmt, ...)
    MESH_PRINTF(5, 6);
/** Formats all entries, one per line ("FILE:LINE:COL: PATH: MSG"), into <buf>. */
size_t mesh_err_format(const struct mesh_err *err, char *buf, size_t size);
/** mesh_err_format() to <f>. */
void mesh_err_print(const struct mesh_err *err, FILE *f);

#endif /* MESH_CORE_STATUS_H */
