/* Diagnostics for config files: every error, warning and note with its file position. */
#ifndef MESH_CORE_DIAG_H
#define MESH_CORE_DIAG_H

#include <stdarg.h>
#include <stdio.h>
#include "core/common.h"

/*
 * struct mesh_err (status.h) keeps 64 fixed-size entries and has no severity;
 * validating a directory of Istio YAML needs more: warnings and notes beside
 * errors, the resource each one is about, and no small cap. Entries are
 * formatted as
 *
 *   FILE:LINE:COL: KIND NAMESPACE/NAME: PATH: MESSAGE
 *   FILE:LINE:COL: KIND NAMESPACE/NAME: warning: PATH: MESSAGE
 *
 * where the subject and the path are left out when unknown.
 */

enum mesh_diag_severity {
    MESH_DIAG_ERROR = 0,
    MESH_DIAG_WARNING = 1,
    MESH_DIAG_NOTE = 2,
};

struct mesh_diag {
    enum mesh_diag_severity severity;
    char *file;           /* "-" for stdin, "<memory>" for a buffer */
    int line, col;        /* 1-based; 0 when unknown */
    char *subject;        /* "VirtualService default/reviews", or NULL */
    char *path;           /* "spec.http[0].route[1].weight", or NULL */
    char *msg;
};

/* A very broken input must not take all memory: later entries are only counted. */
#define MESH_DIAG_MAX 10000

struct mesh_diags {
    struct mesh_diag *v;  /* entries in the order they were added */
    size_t n, cap;
    size_t n_errors, n_warnings, n_notes; /* totals, including entries over MESH_DIAG_MAX */
};

void mesh_diags_init(struct mesh_diags *d);
/** Frees every entry; <d> can be reused after mesh_diags_init(). */
void mesh_diags_free(struct mesh_diags *d);

/**
 * Records one entry. <file>, <subject> and <path> may be NULL and are copied.
 * Control characters in the texts are replaced by '?': they come from user input
 * and end up on a terminal.
 */
void mesh_diags_add(struct mesh_diags *d, enum mesh_diag_severity sev, const char *file, int line,
                    int col, const char *subject, const char *path, const char *fmt, ...)
    MESH_PRINTF(8, 9);
void mesh_diags_vadd(struct mesh_diags *d, enum mesh_diag_severity sev, const char *file, int line,
                     int col, const char *subject, const char *path, const char *fmt, va_list ap)
    MESH_PRINTF(8, 0);

/** One entry in the format above, without a newline, into <buf> (truncated). */
size_t mesh_diag_format(const struct mesh_diag *e, char *buf, size_t size);
/** Prints entries of severity <= <max_sev>, one per line, and a line for any dropped ones. */
void mesh_diags_print(const struct mesh_diags *d, FILE *f, enum mesh_diag_severity max_sev);
/**
 * Orders the entries of each run of consecutive entries from the same file by
 * line and column, keeping the order of equal positions (for printing: checks
 * that run after a whole object would otherwise come after its fields).
 */
void mesh_diags_sort(struct mesh_diags *d);
/** Entries recorded beyond MESH_DIAG_MAX (counted but not kept). */
size_t mesh_diags_dropped(const struct mesh_diags *d);

#endif /* MESH_CORE_DIAG_H */
