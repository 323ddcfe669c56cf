/* Store internals shared by store.c (open, apply, get, list, delete) and store_history.c. */
#ifndef MESH_CORE_STORE_INT_H
#define MESH_CORE_STORE_INT_H

#include <sqlite3.h>
#include "core/store.h"

enum mesh_store__stmt {
    MESH_STORE__BEGIN,
    MESH_STORE__BEGIN_IMMEDIATE,
    MESH_STORE__COMMIT,
    MESH_STORE__ROLLBACK,
    MESH_STORE__MAX_REV,
    MESH_STORE__INSERT_REV,
    MESH_STORE__FIND,
    MESH_STORE__INSERT_RES,
    MESH_STORE__UPDATE_RES,
    MESH_STORE__DELETE_RES,
    MESH_STORE__INSERT_HIST,
    MESH_STORE__GET,
    MESH_STORE__LIST,
    MESH_STORE__CURRENT,
    MESH_STORE__STATE_AT,
    MESH_STORE__HISTORY,
    MESH_STORE__NSTMT
};

struct mesh_store {
    sqlite3 *db;
    char *path;
    bool in_txn;
    sqlite3_stmt *stmts[MESH_STORE__NSTMT]; /* prepared on first use, kept until close */
};

/** One object of a state (current, or at a revision), sorted by kind, namespace, name. */
struct mesh_store__entry {
    char *kind, *ns, *name;
    char *object; /* canonical JSON, without server-managed fields */
    int64_t id;   /* resources.id for the current state, 0 otherwise */
    int64_t rev;  /* the revision that wrote this version */
};

struct mesh_store__state {
    size_t n, cap;
    struct mesh_store__entry *v;
};

/** Appends an entry with status <status>; returns <status>. */
int mesh_store__err(struct mesh_err *err, int status, const char *fmt, ...) MESH_PRINTF(3, 4);
/** Maps SQLite's <rc> (BUSY/LOCKED -> MESH_EAGAIN, else MESH_ESTORE) with its message. */
int mesh_store__sql_fail(struct mesh_store *st, int rc, const char *what, struct mesh_err *err);
/** The cached statement <id>, reset and unbound; NULL (error recorded) when it cannot. */
sqlite3_stmt *mesh_store__stmt(struct mesh_store *st, enum mesh_store__stmt id,
                               struct mesh_err *err);
/** BEGIN (read) or BEGIN IMMEDIATE (write); end with mesh_store__commit/__rollback. */
int mesh_store__begin(struct mesh_store *st, bool write, struct mesh_err *err);
int mesh_store__commit(struct mesh_store *st, struct mesh_err *err);
void mesh_store__rollback(struct mesh_store *st);
int mesh_store__max_rev(struct mesh_store *st, int64_t *rev, struct mesh_err *err);
/** Inserts revision <rev> (its row must exist before history rows reference it). */
int mesh_store__new_rev(struct mesh_store *st, int64_t rev, const char *note, struct mesh_err *err);

/** Writes one change at <rev>: the resources row and the history row. */
int mesh_store__write_create(struct mesh_store *st, int64_t rev, const char *kind, const char *ns,
                             const char *name, const char *api_version, const char *labels,
                             const char *object, struct mesh_err *err);
int mesh_store__write_update(struct mesh_store *st, int64_t rev, int64_t id, const char *kind,
                             const char *ns, const char *name, const char *api_version,
                             const char *labels, const char *object, struct mesh_err *err);
int mesh_store__write_delete(struct mesh_store *st, int64_t rev, int64_t id, const char *kind,
                             const char *ns, const char *name, const char *object,
                             struct mesh_err *err);

/** The current objects, or those at <rev>; free with mesh_store__state_free(). */
int mesh_store__load_current(struct mesh_store *st, struct mesh_store__state *s,
                             struct mesh_err *err);
int mesh_store__load_at(struct mesh_store *st, int64_t rev, struct mesh_store__state *s,
                        struct mesh_err *err);
void mesh_store__state_free(struct mesh_store__state *s);
/** strcmp order of (kind, ns, name), the order of the SQL ORDER BY (BINARY collation). */
int mesh_store__entry_cmp(const struct mesh_store__entry *a, const struct mesh_store__entry *b);

/** Parses stored JSON and sets metadata.resourceVersion to "<rev>"; NULL on corrupt text. */
json_t *mesh_store__decode(const char *object, int64_t rev);
/** "2024-05-01T10:00:00Z" for <ms> since the epoch. */
void mesh_store__format_time(int64_t ms, char *buf, size_t size);
/** "Kind ns/name" (or "Kind name" when cluster-scoped) for messages. */
void mesh_store__ident(char *buf, size_t size, const char *kind, const char *ns, const char *name);

#endif /* MESH_CORE_STORE_INT_H */
