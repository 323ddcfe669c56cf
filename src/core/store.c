#include "core/common.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "core/labelsel.h"
#include "core/log.h"
#include "core/store-int.h"

/*
 * Schema migrations: entry N takes a database from version N to N+1 (PRAGMA user_version).
 * Append only; never edit a step that has shipped. See docs/store.md for the tables.
 */
static const char *const migrations[] = {
    /* 0 -> 1: revisions, current objects, history */
    "CREATE TABLE revisions (\n"
    "    rev  INTEGER PRIMARY KEY,\n" /* the global revision: 1, 2, 3... */
    "    ts   INTEGER NOT NULL,\n"    /* commit time, ms since the epoch */
    "    note TEXT\n"                 /* optional \"author: message\" */
    ");\n"
    "CREATE TABLE resources (\n"
    "    id          INTEGER PRIMARY KEY,\n"
    "    kind        TEXT NOT NULL,\n"
    "    namespace   TEXT NOT NULL,\n"
    "    name        TEXT NOT NULL,\n"
    "    api_version TEXT NOT NULL,\n"
    "    labels      TEXT NOT NULL DEFAULT '{}',\n"
    "    object      TEXT NOT NULL,\n"
    "    created_rev INTEGER NOT NULL REFERENCES revisions(rev),\n"
    "    rev         INTEGER NOT NULL REFERENCES revisions(rev),\n"
    "    UNIQUE (kind, namespace, name)\n"
    ");\n"
    "CREATE TABLE history (\n"
    "    rev       INTEGER NOT NULL REFERENCES revisions(rev),\n"
    "    kind      TEXT NOT NULL,\n"
    "    namespace TEXT NOT NULL,\n"
    "    name      TEXT NOT NULL,\n"
    "    op        TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete')),\n"
    "    object    TEXT NOT NULL,\n"
    "    PRIMARY KEY (kind, namespace, name, rev)\n"
    ") WITHOUT ROWID;\n",
    /* 1 -> 2: watchers and state-at scan history by revision */
    "CREATE INDEX history_by_rev ON history (rev);\n",
};

_Static_assert(MESH_ARRAY_LEN(migrations) == MESH_STORE_SCHEMA_VERSION,
               "MESH_STORE_SCHEMA_VERSION must count the migrations");

static const char *const stmt_sql[MESH_STORE__NSTMT] = {
    [MESH_STORE__BEGIN] = "BEGIN",
    [MESH_STORE__BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [MESH_STORE__COMMIT] = "COMMIT",
    [MESH_STORE__ROLLBACK] = "ROLLBACK",
    [MESH_STORE__MAX_REV] = "SELECT COALESCE(MAX(rev), 0) FROM revisions",
    [MESH_STORE__INSERT_REV] = "INSERT INTO revisions (rev, ts, note) VALUES (?1, ?2, ?3)",
    [MESH_STORE__FIND] = "SELECT id, rev, object FROM resources "
                         "WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
    [MESH_STORE__INSERT_RES] = "INSERT INTO resources (kind, namespace, name, api_version, labels, "
                               "object, created_rev, rev) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    [MESH_STORE__UPDATE_RES] = "UPDATE resources SET api_version = ?2, labels = ?3, object = ?4, "
                               "rev = ?5 WHERE id = ?1",
    [MESH_STORE__DELETE_RES] = "DELETE FROM resources WHERE id = ?1",
    [MESH_STORE__INSERT_HIST] = "INSERT INTO history (rev, kind, namespace, name, op, object) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [MESH_STORE__GET] = "SELECT r.rev, r.object, v.ts FROM resources r "
                        "JOIN revisions v ON v.rev = r.created_rev "
                        "WHERE r.kind = ?1 AND r.namespace = ?2 AND r.name = ?3",
    [MESH_STORE__LIST] = "SELECT r.rev, r.object, v.ts, r.labels FROM resources r "
                         "JOIN revisions v ON v.rev = r.created_rev "
                         "WHERE (?1 IS NULL OR r.kind = ?1) AND (?2 IS NULL OR r.namespace = ?2) "
                         "AND (?3 IS NULL OR r.name = ?3) "
                         "ORDER BY r.kind, r.namespace, r.name",
    [MESH_STORE__CURRENT] = "SELECT id, kind, namespace, name, rev, object FROM resources "
                            "ORDER BY kind, namespace, name",
    /* SQLite takes the bare columns op and object from the row holding MAX(rev) */
    [MESH_STORE__STATE_AT] = "SELECT kind, namespace, name, MAX(rev), op, object FROM history "
                             "WHERE rev <= ?1 GROUP BY kind, namespace, name "
                             "ORDER BY kind, namespace, name",
    [MESH_STORE__HISTORY] = "SELECT h.rev, v.ts, v.note, h.op, h.kind, h.namespace, h.name, "
                            "h.object FROM history h JOIN revisions v ON v.rev = h.rev "
                            "WHERE h.rev > ?1 AND (?2 IS NULL OR h.kind = ?2) "
                            "AND (?3 IS NULL OR h.namespace = ?3) AND (?4 IS NULL OR h.name = ?4) "
                            "ORDER BY h.rev, h.kind, h.namespace, h.name",
};

/* ---- errors and statements ---- */

int mesh_store__err(struct mesh_err *err, int status, const char *fmt, ...)
{
    if (!err)
        return status;
    char msg[sizeof(err->e[0].msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t before = err->count;
    mesh_err_add(err, 0, 0, NULL, "%s", msg);
    if (err->count > before)
        err->e[err->count - 1].status = status;
    return status;
}

int mesh_store__sql_fail(struct mesh_store *st, int rc, const char *what, struct mesh_err *err)
{
    int prim = rc & 0xff;
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
        return mesh_store__err(err, MESH_EAGAIN,
                               "store %s: %s: the database is locked by another writer; retry",
                               st->path, what);
    return mesh_store__err(err, MESH_ESTORE, "store %s: %s: %s", st->path, what,
                           st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
}

sqlite3_stmt *mesh_store__stmt(struct mesh_store *st, enum mesh_store__stmt id,
                               struct mesh_err *err)
{
    sqlite3_stmt *s = st->stmts[id];
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return s;
    }
    int rc = sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
    if (rc != SQLITE_OK) {
        mesh_store__sql_fail(st, rc, "prepare", err);
        return NULL;
    }
    st->stmts[id] = s;
    return s;
}

/* Steps a statement that returns no rows, then resets it. */
static int step_done(struct mesh_store *st, sqlite3_stmt *s, const char *what,
                     struct mesh_err *err)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return mesh_store__sql_fail(st, rc, what, err);
    return MESH_OK;
}

int mesh_store__begin(struct mesh_store *st, bool write, struct mesh_err *err)
{
    sqlite3_stmt *s =
        mesh_store__stmt(st, write ? MESH_STORE__BEGIN_IMMEDIATE : MESH_STORE__BEGIN, err);
    if (!s)
        return MESH_ESTORE;
    return step_done(st, s, write ? "begin write" : "begin read", err);
}

int mesh_store__commit(struct mesh_store *st, struct mesh_err *err)
{
    sqlite3_stmt *s = mesh_store__stmt(st, MESH_STORE__COMMIT, err);
    if (!s) {
        mesh_store__rollback(st);
        return MESH_ESTORE;
    }
    int rc = step_done(st, s, "commit", err);
    if (rc != MESH_OK)
        mesh_store__rollback(st);
    return rc;
}

void mesh_store__rollback(struct mesh_store *st)
{
    if (sqlite3_get_autocommit(st->db))
        return; /* SQLite already rolled back (e.g. after SQLITE_FULL) */
    struct mesh_err ignored;
    mesh_err_init(&ignored, NULL);
    sqlite3_stmt *s = mesh_store__stmt(st, MESH_STORE__ROLLBACK, &ignored);
    if (s)
        step_done(st, s, "rollback", &ignored);
}

int mesh_store__max_rev(struct mesh_store *st, int64_t *rev, struct mesh_err *err)
{
    sqlite3_stmt *s = mesh_store__stmt(st, MESH_STORE__MAX_REV, err);
    if (!s)
        return MESH_ESTORE;
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return mesh_store__sql_fail(st, rc, "read revision", err);
    }
    *rev = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return MESH_OK;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int mesh_store__new_rev(struct mesh_store *st, int64_t rev, const char *note, struct mesh_err *err)
{
    sqlite3_stmt *s = mesh_store__stmt(st, MESH_STORE__INSERT_REV, err);
    if (!s)
        return MESH_ESTORE;
    sqlite3_bind_int64(s, 1, rev);
    sqlite3_bind_int64(s, 2, now_ms());
    sqlite3_bind_text(s, 3, note && *note ? note : NULL, -1, SQLITE_STATIC);
    return step_done(st, s, "new revision", err);
}

static int write_history(struct mesh_store *st, int64_t rev, const char *kind, const char *ns,
                         const char *name, const char *op, const char *object,
                         struct mesh_err *err)
{
    sqlite3_stmt *s = mesh_store__stmt(st, MESH_STORE__INSERT_HIST, err);
    if (!s)
        return MESH_ESTORE;
    sqlite3_bind_int64(s, 1, rev);
    sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, op, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, object, -1, SQLITE_STATIC);
    return step_done(st, s, "write history", err);
}

int mesh_store__write_create(struct mesh_store *st, int64_t rev, const char *kind, const char *ns,
                             const char *name, const char *api_version, const char *labels,
                             const char *object, struct mesh_err *err)
{
    sqlite3_stmt *s = mesh_store__stmt(st, MESH_STORE__INSERT_RES, err);
    if (!s)
        return MESH_ESTORE;
    sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, api_version, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, labels, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, object, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, rev);
    int rc = step_done(st, s, "create", err);
    if (rc == MESH_OK)
        rc = write_history(st, rev, kind, ns, name, "create", object, err);
    return rc;
}

int mesh_store__write_update(struct mesh_store *st, int64_t rev, int64_t id, const char *kind,
                             const char *ns, const char *name, const char *api_version,
                             const char *labels, const char *object, struct mesh_err *err)
{
    sqlite3_stmt *s = mesh_store__stmt(st, MESH_STORE__UPDATE_RES, err);
    if (!s)
        return MESH_ESTORE;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_text(s, 2, api_version, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, labels, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, object, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, rev);
    int rc = step_done(st, s, "update", err);
    if (rc == MESH_OK)
        rc = write_history(st, rev, kind, ns, name, "update", object, err);
    return rc;
}

int mesh_store__write_delete(struct mesh_store *st, int64_t rev, int64_t id, const char *kind,
                             const char *ns, const char *name, const char *object,
                             struct mesh_err *err)
{
    sqlite3_stmt *s = mesh_store__stmt(st, MESH_STORE__DELETE_RES, err);
    if (!s)
        return MESH_ESTORE;
    sqlite3_bind_int64(s, 1, id);
    int rc = step_done(st, s, "delete", err);
    if (rc == MESH_OK)
        rc = write_history(st, rev, kind, ns, name, "delete", object, err);
    return rc;
}

/* ---- small helpers ---- */

void mesh_store__format_time(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void mesh_store__ident(char *buf, size_t size, const char *kind, const char *ns, const char *name)
{
    if (ns && *ns)
        snprintf(buf, size, "%s %s/%s", kind, ns, name);
    else
        snprintf(buf, size, "%s %s", kind, name);
}

json_t *mesh_store__decode(const char *object, int64_t rev)
{
    json_t *obj = json_loads(object, 0, NULL);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return NULL;
    }
    json_t *meta = json_object_get(obj, "metadata");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(obj, "metadata", meta);
    }
    char buf[24];
    snprintf(buf, sizeof(buf), "%lld", (long long)rev);
    json_object_set_new(meta, "resourceVersion", json_string(buf));
    return obj;
}

const char *mesh_store_op_name(enum mesh_store_op op)
{
    switch (op) {
    case MESH_STORE_UNCHANGED: return "unchanged";
    case MESH_STORE_CREATED: return "created";
    case MESH_STORE_CONFIGURED: return "configured";
    case MESH_STORE_DELETED: return "deleted";
    default: return "?";
    }
}

/* ---- open, permissions, migrations ---- */

/* mkdir -p of the directory part of <path>; only the directories it creates get 0700. */
static int make_parent_dirs(const char *path, struct mesh_err *err)
{
    char *dir = mesh_xstrdup(path);
    char *slash = strrchr(dir, '/');
    int rc = MESH_OK;
    if (!slash || slash == dir)
        goto out;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            rc = mesh_store__err(err, MESH_EIO, "store %s: cannot create directory %s: %s", path,
                                 dir, strerror(errno));
            goto out;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
out:
    free(dir);
    return rc;
}

/*
 * SQLite creates the -wal and -shm files with the permissions of the database file, so
 * creating the database 0600 first keeps all three private. Files left wider by an
 * older version are tightened.
 */
static int make_private(const char *path, struct mesh_err *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return mesh_store__err(err, MESH_EIO, "store %s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) == 0 && (sb.st_mode & 077) != 0) {
        mesh_log_warn("store %s: mode was %03o, setting 0600", path, (unsigned)(sb.st_mode & 0777));
        if (fchmod(fd, 0600) != 0) {
            int e = errno;
            close(fd);
            return mesh_store__err(err, MESH_EIO, "store %s: chmod 0600: %s", path, strerror(e));
        }
    }
    close(fd);
    static const char *const suffixes[] = {"-wal", "-shm", "-journal"};
    for (size_t i = 0; i < MESH_ARRAY_LEN(suffixes); i++) {
        char side[4096];
        snprintf(side, sizeof(side), "%s%s", path, suffixes[i]);
        if (chmod(side, 0600) != 0 && errno != ENOENT)
            mesh_log_warn("store %s: chmod 0600: %s", side, strerror(errno));
    }
    return MESH_OK;
}

static int exec_sql(struct mesh_store *st, const char *sql, const char *what, struct mesh_err *err)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? MESH_OK : mesh_store__sql_fail(st, rc, what, err);
}

static int pragma_int(struct mesh_store *st, const char *sql, int *out, struct mesh_err *err)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return mesh_store__sql_fail(st, rc, sql, err);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? MESH_OK : mesh_store__sql_fail(st, rc, sql, err);
}

static int check_wal(struct mesh_store *st, struct mesh_err *err)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return mesh_store__sql_fail(st, rc, "set WAL mode", err);
    rc = sqlite3_step(s);
    bool wal = rc == SQLITE_ROW &&
               strcmp((const char *)sqlite3_column_text(s, 0) ?: "", "wal") == 0;
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW)
        return mesh_store__sql_fail(st, rc, "set WAL mode", err);
    if (!wal)
        return mesh_store__err(err, MESH_ESTORE,
                               "store %s: cannot use WAL mode (a file system without shared "
                               "memory, e.g. NFS?)",
                               st->path);
    return MESH_OK;
}

static int migrate(struct mesh_store *st, int target, struct mesh_err *err)
{
    int version = 0;
    int rc = pragma_int(st, "PRAGMA user_version", &version, err);
    if (rc != MESH_OK)
        return rc;
    if (version > MESH_STORE_SCHEMA_VERSION)
        return mesh_store__err(err, MESH_ESTORE,
                               "store %s: schema version %d is newer than this meshd supports "
                               "(%d): run a newer meshd, or restore a backup",
                               st->path, version, MESH_STORE_SCHEMA_VERSION);
    if (version >= target)
        return MESH_OK;
    /* one write transaction; re-read inside it: another process may have just migrated */
    if ((rc = mesh_store__begin(st, true, err)) != MESH_OK)
        return rc;
    if ((rc = pragma_int(st, "PRAGMA user_version", &version, err)) != MESH_OK)
        goto fail;
    int from = version;
    for (; version < target; version++) {
        char what[64];
        snprintf(what, sizeof(what), "migrate schema %d -> %d", version, version + 1);
        if ((rc = exec_sql(st, migrations[version], what, err)) != MESH_OK)
            goto fail;
    }
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", target);
    if ((rc = exec_sql(st, sql, "set schema version", err)) != MESH_OK)
        goto fail;
    if ((rc = mesh_store__commit(st, err)) != MESH_OK)
        return rc;
    if (from > 0 && from < target)
        mesh_log_info("store %s: migrated schema %d -> %d", st->path, from, target);
    return MESH_OK;
fail:
    mesh_store__rollback(st);
    return rc;
}

int mesh_store_open(const char *path, const struct mesh_store_opts *opts, struct mesh_store **out,
                    struct mesh_err *err)
{
    *out = NULL;
    if (!path || !*path)
        return mesh_store__err(err, MESH_EINVAL, "store: no database path");
    int busy = opts && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 10000;
    int target = MESH_STORE_SCHEMA_VERSION;
    if (opts && opts->max_schema_version > 0 && opts->max_schema_version < target)
        target = opts->max_schema_version;
    int rc = make_parent_dirs(path, err);
    if (rc == MESH_OK)
        rc = make_private(path, err);
    if (rc != MESH_OK)
        return rc;

    struct mesh_store *st = mesh_xcalloc(1, sizeof(*st));
    st->path = mesh_xstrdup(path);
    int src = sqlite3_open_v2(path, &st->db,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                              NULL);
    if (src != SQLITE_OK) {
        rc = mesh_store__sql_fail(st, src, "open", err);
        goto fail;
    }
    sqlite3_busy_timeout(st->db, busy);
    sqlite3_extended_result_codes(st->db, 1);
    /* FULL: a revision acknowledged to a client survives a power cut, not only kill -9.
     * 32 MiB of page cache: a 10,000-object apply stays in memory until its commit. */
    if ((rc = check_wal(st, err)) != MESH_OK ||
        (rc = exec_sql(st,
                       "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; "
                       "PRAGMA cache_size = -32768",
                       "set pragmas", err)) != MESH_OK ||
        (rc = migrate(st, target, err)) != MESH_OK)
        goto fail;
    *out = st;
    return MESH_OK;
fail:
    mesh_store_close(st);
    return rc;
}

void mesh_store_close(struct mesh_store *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < MESH_STORE__NSTMT; i++)
        sqlite3_finalize(st->stmts[i]);
    if (st->db && sqlite3_close(st->db) != SQLITE_OK)
        mesh_log_error("store %s: close: %s", st->path, sqlite3_errmsg(st->db));
    free(st->path);
    free(st);
}

int mesh_store_revision(struct mesh_store *st, int64_t *rev, struct mesh_err *err)
{
    return mesh_store__max_rev(st, rev, err);
}

/* ---- apply ---- */

/* One document of an apply, reduced to what the store keeps. */
struct doc {
    json_t *obj; /* owned shallow copy without server-managed fields */
    const char *kind, *ns, *name, *api_version; /* borrowed from obj */
    char *object;                               /* canonical JSON of obj */
    char *labels;                               /* canonical JSON of metadata.labels */
    int64_t expect_rv;                          /* metadata.resourceVersion; 0 = none */
};

#define CANONICAL (JSON_COMPACT | JSON_SORT_KEYS)

/* Names as Kubernetes allows them at most; the resource layer checks the finer syntax. */
static bool bad_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return true;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == '/' || s[i] == 0x7f)
            return true;
    return false;
}

static int parse_rv(json_t *v, int64_t *out)
{
    *out = 0;
    if (!v || json_is_null(v))
        return MESH_OK;
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        *out = json_integer_value(v);
        return MESH_OK;
    }
    if (!json_is_string(v))
        return MESH_EINVAL;
    const char *s = json_string_value(v);
    if (!*s)
        return MESH_OK;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno || *end || n <= 0 || s[0] < '0' || s[0] > '9')
        return MESH_EINVAL;
    *out = n;
    return MESH_OK;
}

static int prepare_doc(json_t *in, size_t idx, struct doc *d, struct mesh_err *err)
{
    char who[320];
    snprintf(who, sizeof(who), "document %zu", idx + 1);
    if (!json_is_object(in))
        return mesh_store__err(err, MESH_EINVAL, "%s: not an object", who);
    /* shallow copies of the root and metadata: only metadata is edited (a deep copy of
     * every document was a third of the time of a large apply) */
    d->obj = json_copy(in);
    json_t *meta = json_object_get(d->obj, "metadata");
    if (json_is_object(meta)) {
        meta = json_copy(meta);
        json_object_set_new(d->obj, "metadata", meta);
    }
    d->api_version = json_string_value(json_object_get(d->obj, "apiVersion"));
    d->kind = json_string_value(json_object_get(d->obj, "kind"));
    d->name = json_is_object(meta) ? json_string_value(json_object_get(meta, "name")) : NULL;
    if (!json_is_object(meta))
        return mesh_store__err(err, MESH_EINVAL, "%s: metadata: required (an object)", who);
    if (!d->kind || bad_name(d->kind, 63))
        return mesh_store__err(err, MESH_EINVAL, "%s: kind: required", who);
    if (!d->name || bad_name(d->name, 253))
        return mesh_store__err(err, MESH_EINVAL, "%s (%s): metadata.name: %s", who, d->kind,
                               d->name ? "not a valid name" : "required");
    json_t *jns = json_object_get(meta, "namespace");
    if (jns && !json_is_string(jns))
        return mesh_store__err(err, MESH_EINVAL, "%s (%s %s): metadata.namespace: not a string",
                               who, d->kind, d->name);
    if (!jns || !*json_string_value(jns)) {
        jns = json_string("default");
        json_object_set_new(meta, "namespace", jns);
    }
    d->ns = json_string_value(jns);
    mesh_store__ident(who, sizeof(who), d->kind, d->ns, d->name);
    if (bad_name(d->ns, 63))
        return mesh_store__err(err, MESH_EINVAL, "%s: metadata.namespace: not a valid name", who);
    if (!d->api_version || !*d->api_version)
        return mesh_store__err(err, MESH_EINVAL, "%s: apiVersion: required", who);
    json_t *labels = json_object_get(meta, "labels");
    if (labels && !json_is_null(labels)) {
        const char *k;
        json_t *v;
        if (!json_is_object(labels))
            return mesh_store__err(err, MESH_EINVAL, "%s: metadata.labels: not an object", who);
        json_object_foreach(labels, k, v)
            if (!json_is_string(v))
                return mesh_store__err(err, MESH_EINVAL,
                                       "%s: metadata.labels.%s: must be a string", who, k);
    }
    if (parse_rv(json_object_get(meta, "resourceVersion"), &d->expect_rv) != MESH_OK)
        return mesh_store__err(err, MESH_EINVAL,
                               "%s: metadata.resourceVersion: not a revision number", who);
    json_object_del(meta, "resourceVersion");
    json_object_del(meta, "creationTimestamp");
    d->labels = json_is_object(labels) ? json_dumps(labels, CANONICAL) : NULL;
    if (!d->labels)
        d->labels = mesh_xstrdup("{}");
    d->object = json_dumps(d->obj, CANONICAL);
    if (!d->object)
        return mesh_store__err(err, MESH_EINVAL, "%s: cannot encode as JSON", who);
    return MESH_OK;
}

static void conflict(struct mesh_err *err, const struct doc *d)
{
    char who[320];
    mesh_store__ident(who, sizeof(who), d->kind, d->ns, d->name);
    mesh_store__err(err, MESH_STORE_ECONFLICT,
                    "%s: the object has been modified; please apply your changes to the latest "
                    "version",
                    who);
}

/* Applies one prepared document inside the write transaction of revision <rev>. */
static int apply_doc(struct mesh_store *st, int64_t rev, const struct doc *d,
                     struct mesh_store_result *r, struct mesh_err *err)
{
    sqlite3_stmt *s = mesh_store__stmt(st, MESH_STORE__FIND, err);
    if (!s)
        return MESH_ESTORE;
    sqlite3_bind_text(s, 1, d->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, d->ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, d->name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sqlite3_reset(s);
        return mesh_store__sql_fail(st, rc, "read", err);
    }
    bool found = rc == SQLITE_ROW;
    int64_t id = found ? sqlite3_column_int64(s, 0) : 0;
    int64_t cur = found ? sqlite3_column_int64(s, 1) : 0;
    bool same = found && strcmp((const char *)sqlite3_column_text(s, 2), d->object) == 0;
    sqlite3_reset(s);

    if (d->expect_rv && d->expect_rv != cur) {
        conflict(err, d);
        r->status = MESH_STORE_ECONFLICT;
        return MESH_OK; /* keep going: report every conflicting document */
    }
    if (same) {
        r->op = MESH_STORE_UNCHANGED;
        r->resource_version = cur;
        return MESH_OK;
    }
    r->op = found ? MESH_STORE_CONFIGURED : MESH_STORE_CREATED;
    r->resource_version = rev;
    if (found)
        return mesh_store__write_update(st, rev, id, d->kind, d->ns, d->name, d->api_version,
                                        d->labels, d->object, err);
    return mesh_store__write_create(st, rev, d->kind, d->ns, d->name, d->api_version, d->labels,
                                    d->object, err);
}

int mesh_store_apply(struct mesh_store *st, json_t *docs, const char *note,
                     struct mesh_store_result *results, int64_t *rev, struct mesh_err *err)
{
    size_t n = json_is_array(docs) ? json_array_size(docs) : 1;
    struct doc *d = mesh_xcalloc(n ? n : 1, sizeof(*d));
    struct mesh_store_result *r = results ? results : mesh_xcalloc(n ? n : 1, sizeof(*r));
    memset(r, 0, n * sizeof(*r));
    json_t *seen = json_object(); /* "kind\x1fns\x1fname" -> index: one document per object */
    int rc = MESH_OK;
    int64_t cur = 0;

    for (size_t i = 0; i < n; i++) {
        json_t *in = json_is_array(docs) ? json_array_get(docs, i) : docs;
        r[i].status = prepare_doc(in, i, &d[i], err);
        if (r[i].status != MESH_OK) {
            rc = MESH_EINVAL;
            continue;
        }
        char key[600];
        snprintf(key, sizeof(key), "%s\x1f%s\x1f%s", d[i].kind, d[i].ns, d[i].name);
        json_t *prev = json_object_get(seen, key);
        if (prev) {
            char who[320];
            mesh_store__ident(who, sizeof(who), d[i].kind, d[i].ns, d[i].name);
            r[i].status = rc = mesh_store__err(err, MESH_EINVAL,
                                               "%s: documents %lld and %zu are the same object",
                                               who, json_integer_value(prev) + 1, i + 1);
            continue;
        }
        json_object_set_new(seen, key, json_integer((json_int_t)i));
    }
    if (rc != MESH_OK)
        goto out;
    if ((rc = mesh_store__begin(st, true, err)) != MESH_OK)
        goto out;
    if ((rc = mesh_store__max_rev(st, &cur, err)) != MESH_OK ||
        (rc = mesh_store__new_rev(st, cur + 1, note, err)) != MESH_OK)
        goto rollback;
    size_t changed = 0, conflicts = 0;
    for (size_t i = 0; i < n; i++) {
        if ((rc = apply_doc(st, cur + 1, &d[i], &r[i], err)) != MESH_OK)
            goto rollback;
        conflicts += r[i].status != MESH_OK;
        changed += r[i].status == MESH_OK && r[i].op != MESH_STORE_UNCHANGED;
    }
    if (conflicts) {
        rc = MESH_STORE_ECONFLICT;
        goto rollback;
    }
    if (changed == 0) {
        mesh_store__rollback(st); /* drop the empty revision: no-ops make none */
        goto out;
    }
    if ((rc = mesh_store__commit(st, err)) != MESH_OK)
        goto out;
    cur++;
    goto out;
rollback:
    mesh_store__rollback(st);
out:
    if (rc != MESH_OK)
        for (size_t i = 0; i < n; i++)
            r[i].resource_version = 0;
    if (rev)
        *rev = cur;
    for (size_t i = 0; i < n; i++) {
        json_decref(d[i].obj);
        free(d[i].object);
        free(d[i].labels);
    }
    free(d);
    if (r != results)
        free(r);
    json_decref(seen);
    return rc;
}

/* ---- get, list, delete ---- */

/* Row (rev, object, created ts) -> the object as clients see it. */
static json_t *client_object(struct mesh_store *st, sqlite3_stmt *s, struct mesh_err *err)
{
    json_t *obj = mesh_store__decode((const char *)sqlite3_column_text(s, 1),
                                     sqlite3_column_int64(s, 0));
    if (!obj) {
        mesh_store__err(err, MESH_ESTORE, "store %s: corrupt object JSON", st->path);
        return NULL;
    }
    char ts[32];
    mesh_store__format_time(sqlite3_column_int64(s, 2), ts, sizeof(ts));
    json_object_set_new(json_object_get(obj, "metadata"), "creationTimestamp", json_string(ts));
    return obj;
}

int mesh_store_get(struct mesh_store *st, const char *kind, const char *ns, const char *name,
                   json_t **out, struct mesh_err *err)
{
    *out = NULL;
    if (!ns)
        ns = "default";
    sqlite3_stmt *s = mesh_store__stmt(st, MESH_STORE__GET, err);
    if (!s)
        return MESH_ESTORE;
    sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *out = client_object(st, s, err);
        rc = *out ? MESH_OK : MESH_ESTORE;
    } else if (rc == SQLITE_DONE) {
        char who[320];
        mesh_store__ident(who, sizeof(who), kind, ns, name);
        rc = mesh_store__err(err, MESH_ENOTFOUND, "%s: not found", who);
    } else {
        rc = mesh_store__sql_fail(st, rc, "get", err);
    }
    sqlite3_reset(s);
    return rc;
}

int mesh_store_list(struct mesh_store *st, const struct mesh_store_filter *f, json_t **out,
                    int64_t *rev, struct mesh_err *err)
{
    static const struct mesh_store_filter all;
    if (!f)
        f = &all;
    *out = NULL;
    struct mesh_labelsel *sel = mesh_labelsel_parse(f->selector, err);
    if (!sel)
        return MESH_EINVAL;
    int64_t cur = 0;
    int rc = mesh_store__begin(st, false, err); /* one snapshot for the rows and the revision */
    if (rc != MESH_OK)
        goto out;
    if ((rc = mesh_store__max_rev(st, &cur, err)) != MESH_OK)
        goto end;
    sqlite3_stmt *s = mesh_store__stmt(st, MESH_STORE__LIST, err);
    if (!s) {
        rc = MESH_ESTORE;
        goto end;
    }
    sqlite3_bind_text(s, 1, f->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, f->ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, f->name, -1, SQLITE_STATIC);
    json_t *arr = json_array();
    int src;
    bool by_labels = f->selector && *f->selector;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        if (by_labels) {
            json_t *labels = json_loads((const char *)sqlite3_column_text(s, 3), 0, NULL);
            bool match = mesh_labelsel_match(sel, labels);
            json_decref(labels);
            if (!match)
                continue;
        }
        json_t *obj = client_object(st, s, err);
        if (!obj) {
            src = SQLITE_CORRUPT;
            break;
        }
        json_array_append_new(arr, obj);
    }
    sqlite3_reset(s);
    if (src != SQLITE_DONE) {
        json_decref(arr);
        rc = src == SQLITE_CORRUPT ? MESH_ESTORE : mesh_store__sql_fail(st, src, "list", err);
        goto end;
    }
    *out = arr;
end:
    mesh_store__rollback(st); /* a read transaction: nothing to commit */
out:
    mesh_labelsel_free(sel);
    if (rev)
        *rev = cur;
    return rc;
}

int mesh_store_delete(struct mesh_store *st, const char *kind, const char *ns, const char *name,
                      int64_t resource_version, const char *note, int64_t *rev,
                      struct mesh_err *err)
{
    char who[320];
    int64_t cur = 0;
    if (!ns)
        ns = "default";
    mesh_store__ident(who, sizeof(who), kind, ns, name);
    int rc = mesh_store__begin(st, true, err);
    if (rc != MESH_OK)
        goto out;
    if ((rc = mesh_store__max_rev(st, &cur, err)) != MESH_OK)
        goto rollback;
    sqlite3_stmt *s = mesh_store__stmt(st, MESH_STORE__FIND, err);
    if (!s) {
        rc = MESH_ESTORE;
        goto rollback;
    }
    sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
    int src = sqlite3_step(s);
    if (src == SQLITE_DONE) {
        sqlite3_reset(s);
        rc = mesh_store__err(err, MESH_ENOTFOUND, "%s: not found", who);
        goto rollback;
    }
    if (src != SQLITE_ROW) {
        sqlite3_reset(s);
        rc = mesh_store__sql_fail(st, src, "read", err);
        goto rollback;
    }
    int64_t id = sqlite3_column_int64(s, 0);
    int64_t have = sqlite3_column_int64(s, 1);
    char *object = mesh_xstrdup((const char *)sqlite3_column_text(s, 2));
    sqlite3_reset(s);
    if (resource_version > 0 && resource_version != have) {
        free(object);
        rc = mesh_store__err(err, MESH_STORE_ECONFLICT,
                             "%s: the object has been modified; please apply your changes to the "
                             "latest version",
                             who);
        goto rollback;
    }
    rc = mesh_store__new_rev(st, cur + 1, note, err);
    if (rc == MESH_OK)
        rc = mesh_store__write_delete(st, cur + 1, id, kind, ns, name, object, err);
    free(object);
    if (rc != MESH_OK)
        goto rollback;
    if ((rc = mesh_store__commit(st, err)) == MESH_OK)
        cur++;
    goto out;
rollback:
    mesh_store__rollback(st);
out:
    if (rev)
        *rev = cur;
    return rc;
}
