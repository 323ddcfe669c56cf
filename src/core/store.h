/*
 * The control plane's versioned configuration store: Istio and Kubernetes resources as
 * JSON documents in SQLite (WAL), every change a new global revision, full history kept.
 * See docs/store.md for the schema, revision semantics, concurrency and crash safety.
 *
 * The store knows a document's identity (apiVersion, kind, metadata.namespace,
 * metadata.name, metadata.labels) and nothing of its spec: typed parsing and validation
 * happen before, in the resource layer.
 *
 * Threads: a struct mesh_store is one SQLite connection; use it from one thread at a time.
 * Several stores (threads or processes) may open the same file: writers are serialised by
 * SQLite's write lock (BEGIN IMMEDIATE, busy timeout), readers see committed revisions.
 *
 * Errors: every function returns MESH_OK or a negative status and, on error, appends a
 * message to <err> (initialised by the caller with mesh_err_init(); NULL discards
 * messages); the entry's status is the returned one. MESH_EINVAL: bad input (400);
 * MESH_ENOTFOUND (404); MESH_STORE_ECONFLICT: stale resourceVersion (409); MESH_EAGAIN:
 * another writer held the lock past the busy timeout (503, retry); MESH_ESTORE: SQLite
 * failed (500).
 */
#ifndef MESH_CORE_STORE_H
#define MESH_CORE_STORE_H

#include <jansson.h>
#include "core/common.h"
#include "core/status.h"

struct mesh_store;

/* 409 Conflict: a resourceVersion precondition failed (the object changed since it was read). */
#define MESH_STORE_ECONFLICT MESH_ECONFLICT
/* Wherever a revision is taken: the current one. */
#define MESH_STORE_CURRENT ((int64_t)-1)
/* File name of the database inside the control plane's --data-dir. */
#define MESH_STORE_FILE "store.db"
/* Schema version this build writes; older files are migrated on open, newer ones refused. */
#define MESH_STORE_SCHEMA_VERSION 2

struct mesh_store_opts {
    int busy_timeout_ms;    /* how long a writer waits for another's lock; 0 = 10000 */
    int max_schema_version; /* tests: migrate no further than this; 0 = the latest */
};

/**
 * Opens (creating if absent) the store at <path>. Missing parent directories are created
 * 0700; the database and its -wal/-shm files are 0600. An older schema is migrated in one
 * transaction; a newer one is refused. <opts> may be NULL. On success *<out> is the store,
 * the caller owns it (mesh_store_close()).
 */
int mesh_store_open(const char *path, const struct mesh_store_opts *opts, struct mesh_store **out,
                    struct mesh_err *err);
/** Finalises statements and closes the connection; NULL is allowed. */
void mesh_store_close(struct mesh_store *st);

enum mesh_store_op {
    MESH_STORE_UNCHANGED = 0,
    MESH_STORE_CREATED,
    MESH_STORE_CONFIGURED,
    MESH_STORE_DELETED,
};
/** kubectl's words: "unchanged", "created", "configured", "deleted". */
const char *mesh_store_op_name(enum mesh_store_op op);

/** What apply did (or, when the apply failed, would have done) with one document. */
struct mesh_store_result {
    int status;               /* MESH_OK, MESH_EINVAL (bad identity), MESH_STORE_ECONFLICT */
    enum mesh_store_op op;    /* UNCHANGED, CREATED or CONFIGURED */
    int64_t resource_version; /* the document's resourceVersion afterwards; 0 when not applied */
};

/**
 * Creates or updates every document of <docs> (a JSON array of objects, or one object;
 * borrowed) in ONE transaction and ONE new revision: all or nothing. A document equal to the
 * stored one is left alone (no new history row); when nothing changes no revision is made.
 * A document missing metadata.namespace goes to "default". A document carrying
 * metadata.resourceVersion ("12" or 12) is an update of exactly that version: any other
 * stored version, or no stored object, fails the whole apply with MESH_STORE_ECONFLICT.
 * Server-managed fields (metadata.resourceVersion, metadata.creationTimestamp) are not
 * stored. <note> (optional, borrowed) is recorded with the revision, e.g. "alice: canary".
 * <results> (optional) has one entry per document. *<rev> (optional) is the new revision,
 * or the current one when nothing changed. Errors name each failing document.
 */
int mesh_store_apply(struct mesh_store *st, json_t *docs, const char *note,
                     struct mesh_store_result *results, int64_t *rev, struct mesh_err *err);

/**
 * The current object <kind> <ns>/<name> (<ns> NULL: "default") with
 * metadata.resourceVersion (a string, as in Kubernetes) and metadata.creationTimestamp set.
 * Kinds are matched exactly ("VirtualService"): aliases are the CLI's business.
 * Caller owns *<out> (json_decref). MESH_ENOTFOUND when absent.
 */
int mesh_store_get(struct mesh_store *st, const char *kind, const char *ns, const char *name,
                   json_t **out, struct mesh_err *err);

/** Query filter; every NULL field matches everything. */
struct mesh_store_filter {
    const char *kind;
    const char *ns;
    const char *name;
    const char *selector; /* label selector: "app=x,env!=prod,tier in (a,b),!legacy" */
};

/**
 * Current objects matching <f> (NULL = all), sorted by kind, namespace, name, each as
 * mesh_store_get() returns it. *<out> is a new JSON array the caller owns; *<rev>
 * (optional) the revision they were read at (list, then watch changes after it).
 * A bad selector is MESH_EINVAL.
 */
int mesh_store_list(struct mesh_store *st, const struct mesh_store_filter *f, json_t **out,
                    int64_t *rev, struct mesh_err *err);

/**
 * Deletes <kind> <ns>/<name> (<ns> NULL: "default") in a new revision (*<rev>, optional).
 * <resource_version> > 0 is a precondition (MESH_STORE_ECONFLICT when the stored one
 * differs), 0 deletes whatever is there. MESH_ENOTFOUND when absent.
 */
int mesh_store_delete(struct mesh_store *st, const char *kind, const char *ns, const char *name,
                      int64_t resource_version, const char *note, int64_t *rev,
                      struct mesh_err *err);

/** The current global revision (0 for an empty store). */
int mesh_store_revision(struct mesh_store *st, int64_t *rev, struct mesh_err *err);

/**
 * History rows: a JSON array, oldest first, of
 *   {"revision": 12, "timestamp": "2024-05-01T10:00:00Z", "note": "...", "op": "create" |
 *    "update" | "delete", "kind": ..., "namespace": ..., "name": ..., "object": {...}}
 * ("note" only when one was given; for "delete" the object is the last one before it; each
 * object carries metadata.resourceVersion = its revision). Caller owns *<out>.
 *
 * mesh_store_history(): every change of the resources matching <f> (kind, ns, name; NULL =
 * all; the selector is ignored). mesh_store_changes(): every change after revision <since>,
 * for watchers; *<rev> (optional) is the revision read up to. <since> beyond the current
 * revision is MESH_EINVAL.
 */
int mesh_store_history(struct mesh_store *st, const struct mesh_store_filter *f, json_t **out,
                       struct mesh_err *err);
int mesh_store_changes(struct mesh_store *st, int64_t since, json_t **out, int64_t *rev,
                       struct mesh_err *err);

/**
 * Objects as they were at revision <rev> (0..current, or MESH_STORE_CURRENT) matching <f>
 * (NULL = all), sorted by kind, namespace, name; each with metadata.resourceVersion = the
 * revision that wrote it. Caller owns *<out>. A revision that does not exist is MESH_EINVAL.
 */
int mesh_store_state_at(struct mesh_store *st, int64_t rev, const struct mesh_store_filter *f,
                        json_t **out, struct mesh_err *err);

/**
 * Makes the current state equal to the state at <to_rev> with ONE new revision of creates,
 * updates and deletes (atomic); nothing is written when they are already equal. <note>
 * defaults to "rollback to revision N". *<changes> (optional, caller owns) is a JSON array
 * of {"kind", "namespace", "name", "op": "created" | "configured" | "deleted"}; *<rev>
 * (optional) the new revision, or the current one when nothing changed.
 */
int mesh_store_rollback(struct mesh_store *st, int64_t to_rev, const char *note, json_t **changes,
                        int64_t *rev, struct mesh_err *err);

/**
 * Unified diff (`diff -u`, 3 lines of context) of the YAML rendering of the whole
 * configuration at <rev_a> against <rev_b> (MESH_STORE_CURRENT for the current one),
 * resource by resource in kind/namespace/name order, headed
 * "--- VirtualService/default/reviews@12" and "+++ VirtualService/default/reviews@15"
 * ("/dev/null" for the side where the object does not exist). Equal states give "".
 * *<out> is a NUL-terminated malloc'd string the caller frees; *<len> (optional) its length.
 */
int mesh_store_diff(struct mesh_store *st, int64_t rev_a, int64_t rev_b, char **out, size_t *len,
                    struct mesh_err *err);

#endif /* MESH_CORE_STORE_H */
