#include "core/common.h"
#include <ftw.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include "core/store.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/* Criterion does not fail a test on LeakSanitizer's exit report: each test checks itself. */
static void expect_no_leaks(void)
{
#ifdef HAVE_LSAN
    cr_expect_eq(__lsan_do_recoverable_leak_check(), 0, "leak: see the LeakSanitizer report");
#endif
}

#define STORE_TEST(name, ...)                                                                      \
    static void name##_body(void);                                                                 \
    Test(store, name, ##__VA_ARGS__)                                                               \
    {                                                                                              \
        name##_body();                                                                             \
        expect_no_leaks();                                                                         \
    }                                                                                              \
    static void name##_body(void)

static char dir[128];
static char path[256]; /* dir/data/store.db: "data" does not exist yet */
static struct mesh_err err;
static char errbuf[16384];

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(p);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/meshd-test-store.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/data/%s", dir, MESH_STORE_FILE);
    mesh_err_init(&err, "test.yaml");
    errbuf[0] = '\0';
}

static void teardown(void)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(store, .init = setup, .fini = teardown);

static const char *errors(void)
{
    mesh_err_format(&err, errbuf, sizeof(errbuf));
    return errbuf;
}

static struct mesh_store *open_store(void)
{
    struct mesh_store *st = NULL;
    int rc = mesh_store_open(path, NULL, &st, &err);
    cr_assert_eq(rc, MESH_OK, "open: %s", errors());
    return st;
}

/* JSON from a printf format (single quotes become double quotes, for readability). */
static json_t *js(const char *fmt, ...) MESH_PRINTF(1, 2);
static json_t *js(const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    for (char *p = buf; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_error_t jerr;
    json_t *v = json_loads(buf, 0, &jerr);
    cr_assert_not_null(v, "bad test JSON: %s: %s", jerr.text, buf);
    return v;
}

/* A VirtualService <ns>/<name> routing to <subset>, with labels (a JSON object body). */
static json_t *vs(const char *ns, const char *name, const char *subset, const char *labels)
{
    return js("{'apiVersion': 'networking.istio.io/v1beta1', 'kind': 'VirtualService',"
              " 'metadata': {'name': '%s', 'namespace': '%s', 'labels': {%s}},"
              " 'spec': {'hosts': ['%s'], 'http': [{'route': [{'destination':"
              " {'host': '%s', 'subset': '%s'}}]}]}}",
              name, ns, labels ? labels : "", name, name, subset);
}

static json_t *dr(const char *ns, const char *name)
{
    return js("{'apiVersion': 'networking.istio.io/v1beta1', 'kind': 'DestinationRule',"
              " 'metadata': {'name': '%s', 'namespace': '%s'},"
              " 'spec': {'host': '%s', 'subsets': [{'name': 'v1', 'labels': {'version': 'v1'}}]}}",
              name, ns, name);
}

/* Applies the documents (stolen references) and returns the status. */
static int apply(struct mesh_store *st, struct mesh_store_result *res, int64_t *rev, ...)
{
    json_t *docs = json_array();
    va_list ap;
    va_start(ap, rev);
    for (json_t *d; (d = va_arg(ap, json_t *));)
        json_array_append_new(docs, d);
    va_end(ap);
    int rc = mesh_store_apply(st, docs, "test", res, rev, &err);
    json_decref(docs);
    return rc;
}

static int64_t revision(struct mesh_store *st)
{
    int64_t rev = -1;
    cr_assert_eq(mesh_store_revision(st, &rev, &err), MESH_OK, "%s", errors());
    return rev;
}

static const char *str_at(json_t *obj, const char *a, const char *b)
{
    return json_string_value(json_object_get(json_object_get(obj, a), b));
}

static mode_t mode_of(const char *p)
{
    struct stat sb;
    cr_assert_eq(stat(p, &sb), 0, "stat %s", p);
    return sb.st_mode & 0777;
}

/* ---- open, files, schema ---- */

STORE_TEST(open_creates_a_private_directory_and_files)
{
    struct mesh_store *st = open_store();
    int64_t rev;
    cr_assert_eq(apply(st, NULL, &rev, vs("default", "reviews", "v1", NULL), NULL), MESH_OK, "%s",
                 errors());
    char p[300];
    snprintf(p, sizeof(p), "%s/data", dir);
    cr_expect_eq(mode_of(p), 0700);
    cr_expect_eq(mode_of(path), 0600);
    snprintf(p, sizeof(p), "%s-wal", path);
    cr_expect_eq(mode_of(p), 0600);
    snprintf(p, sizeof(p), "%s-shm", path);
    cr_expect_eq(mode_of(p), 0600);
    mesh_store_close(st);
}

STORE_TEST(open_tightens_a_world_readable_database)
{
    mesh_store_close(open_store());
    cr_assert_eq(chmod(path, 0644), 0);
    mesh_store_close(open_store());
    cr_expect_eq(mode_of(path), 0600);
}

STORE_TEST(uses_wal_and_foreign_keys)
{
    mesh_store_close(open_store());
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    cr_expect_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    cr_expect_eq(sqlite3_column_int(s, 0), MESH_STORE_SCHEMA_VERSION);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static int64_t sql_int(const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    int64_t v = -1;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void sql_exec(const char *sql)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
}

STORE_TEST(an_older_schema_is_migrated_and_keeps_its_data)
{
    struct mesh_store_opts v1 = {.max_schema_version = 1};
    struct mesh_store *st = NULL;
    cr_assert_eq(mesh_store_open(path, &v1, &st, &err), MESH_OK, "%s", errors());
    cr_assert_eq(apply(st, NULL, NULL, vs("default", "reviews", "v1", NULL), NULL), MESH_OK);
    mesh_store_close(st);
    cr_expect_eq(sql_int("PRAGMA user_version"), 1);
    cr_expect_eq(sql_int("SELECT COUNT(*) FROM sqlite_master WHERE name = 'history_by_rev'"), 0);

    st = open_store();
    cr_expect_eq(sql_int("PRAGMA user_version"), MESH_STORE_SCHEMA_VERSION);
    cr_expect_eq(sql_int("SELECT COUNT(*) FROM sqlite_master WHERE name = 'history_by_rev'"), 1);
    json_t *obj = NULL;
    cr_assert_eq(mesh_store_get(st, "VirtualService", "default", "reviews", &obj, &err), MESH_OK,
                 "%s", errors());
    cr_expect_str_eq(str_at(obj, "metadata", "resourceVersion"), "1");
    json_decref(obj);
    mesh_store_close(st);
}

STORE_TEST(a_newer_schema_is_refused_with_a_clear_message)
{
    mesh_store_close(open_store());
    sql_exec("PRAGMA user_version = 99");
    struct mesh_store *st = (void *)1;
    cr_expect_eq(mesh_store_open(path, NULL, &st, &err), MESH_ESTORE);
    cr_expect_null(st);
    cr_expect(strstr(errors(), "schema version 99 is newer than this meshd supports (2)"), "%s",
              errbuf);
    cr_expect_eq(err.e[0].status, MESH_ESTORE);
}

STORE_TEST(a_file_that_is_not_a_database_is_refused)
{
    char p[300];
    snprintf(p, sizeof(p), "%s/data", dir);
    mkdir(p, 0700);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("this is not a database, but it is long enough to have a header page...........\n"
          "................................................................................\n",
          f);
    fclose(f);
    struct mesh_store *st = NULL;
    cr_expect_neq(mesh_store_open(path, NULL, &st, &err), MESH_OK);
    cr_expect(strstr(errors(), "not a database"), "%s", errbuf);
}

/* ---- apply ---- */

STORE_TEST(apply_reports_created_configured_unchanged_like_kubectl)
{
    struct mesh_store *st = open_store();
    cr_expect_eq(revision(st), 0);
    struct mesh_store_result res[2];
    int64_t rev = 0;
    cr_assert_eq(apply(st, res, &rev, vs("default", "reviews", "v1", NULL),
                       dr("default", "reviews"), NULL),
                 MESH_OK, "%s", errors());
    cr_expect_eq(rev, 1);
    cr_expect_eq(res[0].op, MESH_STORE_CREATED);
    cr_expect_eq(res[1].op, MESH_STORE_CREATED);
    cr_expect_eq(res[0].resource_version, 1);
    cr_expect_str_eq(mesh_store_op_name(res[0].op), "created");

    /* the same file again: nothing changes, no revision */
    cr_assert_eq(apply(st, res, &rev, vs("default", "reviews", "v1", NULL),
                       dr("default", "reviews"), NULL),
                 MESH_OK, "%s", errors());
    cr_expect_eq(rev, 1);
    cr_expect_eq(res[0].op, MESH_STORE_UNCHANGED);
    cr_expect_eq(res[1].op, MESH_STORE_UNCHANGED);
    cr_expect_eq(res[1].resource_version, 1);
    cr_expect_eq(revision(st), 1);

    /* one changed: one new revision, one history row */
    cr_assert_eq(apply(st, res, &rev, vs("default", "reviews", "v2", NULL),
                       dr("default", "reviews"), NULL),
                 MESH_OK, "%s", errors());
    cr_expect_eq(rev, 2);
    cr_expect_eq(res[0].op, MESH_STORE_CONFIGURED);
    cr_expect_str_eq(mesh_store_op_name(res[0].op), "configured");
    cr_expect_eq(res[0].resource_version, 2);
    cr_expect_eq(res[1].op, MESH_STORE_UNCHANGED);
    cr_expect_eq(res[1].resource_version, 1);
    mesh_store_close(st);
    cr_expect_eq(sql_int("SELECT COUNT(*) FROM history"), 3);
    cr_expect_eq(sql_int("SELECT COUNT(*) FROM revisions"), 2);
}

STORE_TEST(get_returns_the_object_with_server_fields)
{
    struct mesh_store *st = open_store();
    json_t *doc = js("{'apiVersion': 'networking.istio.io/v1', 'kind': 'VirtualService',"
                     " 'metadata': {'name': 'reviews'}, 'spec': {'hosts': ['reviews']}}");
    cr_assert_eq(mesh_store_apply(st, doc, NULL, NULL, NULL, &err), MESH_OK, "%s", errors());
    json_decref(doc);
    json_t *obj = NULL;
    cr_assert_eq(mesh_store_get(st, "VirtualService", "default", "reviews", &obj, &err), MESH_OK,
                 "%s", errors());
    cr_expect_str_eq(str_at(obj, "metadata", "namespace"), "default");
    cr_expect_str_eq(str_at(obj, "metadata", "resourceVersion"), "1");
    const char *ts = str_at(obj, "metadata", "creationTimestamp");
    cr_assert_not_null(ts);
    cr_expect_eq(strlen(ts), strlen("2024-05-01T10:00:00Z"));
    cr_expect_str_eq(json_string_value(json_object_get(obj, "apiVersion")),
                     "networking.istio.io/v1");
    json_decref(obj);

    obj = (void *)1;
    cr_expect_eq(mesh_store_get(st, "VirtualService", "default", "ratings", &obj, &err),
                 MESH_ENOTFOUND);
    cr_expect_null(obj);
    cr_expect(strstr(errors(), "VirtualService default/ratings: not found"), "%s", errbuf);
    mesh_store_close(st);
}

STORE_TEST(get_modify_apply_round_trips)
{
    struct mesh_store *st = open_store();
    cr_assert_eq(apply(st, NULL, NULL, vs("default", "reviews", "v1", NULL), NULL), MESH_OK);
    json_t *obj = NULL;
    cr_assert_eq(mesh_store_get(st, "VirtualService", "default", "reviews", &obj, &err), MESH_OK);
    /* unchanged as read (resourceVersion and creationTimestamp included): a no-op */
    struct mesh_store_result res;
    int64_t rev;
    cr_assert_eq(mesh_store_apply(st, obj, NULL, &res, &rev, &err), MESH_OK, "%s", errors());
    cr_expect_eq(res.op, MESH_STORE_UNCHANGED);
    cr_expect_eq(rev, 1);
    json_object_set_new(json_object_get(obj, "spec"), "gateways", js("['mesh']"));
    cr_assert_eq(mesh_store_apply(st, obj, NULL, &res, &rev, &err), MESH_OK, "%s", errors());
    cr_expect_eq(res.op, MESH_STORE_CONFIGURED);
    cr_expect_eq(rev, 2);
    /* the same read-modify-write again: its resourceVersion 1 is stale now */
    cr_expect_eq(mesh_store_apply(st, obj, NULL, &res, &rev, &err), MESH_STORE_ECONFLICT);
    cr_expect_eq(res.status, MESH_STORE_ECONFLICT);
    cr_expect_eq(rev, 2);
    json_decref(obj);
    mesh_store_close(st);
}

STORE_TEST(a_stale_resource_version_is_a_409_and_the_batch_is_refused)
{
    struct mesh_store *st = open_store();
    cr_assert_eq(apply(st, NULL, NULL, vs("default", "reviews", "v1", NULL), NULL), MESH_OK);
    cr_assert_eq(apply(st, NULL, NULL, vs("default", "reviews", "v2", NULL), NULL), MESH_OK);
    json_t *stale = vs("default", "reviews", "v3", NULL);
    json_object_set_new(json_object_get(stale, "metadata"), "resourceVersion", json_string("1"));
    struct mesh_store_result res[2];
    int64_t rev;
    int rc = apply(st, res, &rev, dr("default", "reviews"), stale, NULL);
    cr_expect_eq(rc, MESH_STORE_ECONFLICT);
    cr_expect_eq(res[0].status, MESH_OK);
    cr_expect_eq(res[0].resource_version, 0, "nothing was applied");
    cr_expect_eq(res[1].status, MESH_STORE_ECONFLICT);
    cr_expect_eq(rev, 2);
    cr_assert_eq(err.count, 1, "%s", errors());
    cr_expect_eq(err.e[0].status, MESH_STORE_ECONFLICT);
    cr_expect_str_eq(err.e[0].msg, "VirtualService default/reviews: the object has been modified; "
                                   "please apply your changes to the latest version");
    /* all or nothing: the DestinationRule of the same batch is not there */
    json_t *obj = NULL;
    cr_expect_eq(mesh_store_get(st, "DestinationRule", "default", "reviews", &obj, &err),
                 MESH_ENOTFOUND);
    cr_expect_eq(revision(st), 2);

    /* the current version (as a number, too) is accepted */
    json_t *fresh = vs("default", "reviews", "v3", NULL);
    json_object_set_new(json_object_get(fresh, "metadata"), "resourceVersion", json_integer(2));
    cr_expect_eq(apply(st, res, &rev, fresh, NULL), MESH_OK, "%s", errors());
    cr_expect_eq(rev, 3);
    mesh_store_close(st);
}

STORE_TEST(a_resource_version_for_a_missing_object_is_a_conflict)
{
    struct mesh_store *st = open_store();
    json_t *d = vs("default", "reviews", "v1", NULL);
    json_object_set_new(json_object_get(d, "metadata"), "resourceVersion", json_string("7"));
    cr_expect_eq(apply(st, NULL, NULL, d, NULL), MESH_STORE_ECONFLICT);
    cr_expect_eq(revision(st), 0);
    mesh_store_close(st);
}

STORE_TEST(bad_documents_are_all_reported_and_nothing_is_written)
{
    struct mesh_store *st = open_store();
    struct mesh_store_result res[7];
    int rc = apply(st, res, NULL, vs("default", "ok", "v1", NULL), js("[1]"),
                   js("{'apiVersion': 'v1', 'metadata': {'name': 'x'}}"),
                   js("{'apiVersion': 'v1', 'kind': 'Service', 'metadata': {}}"),
                   js("{'apiVersion': 'v1', 'kind': 'Service', 'metadata': {'name': 'a/b'}}"),
                   js("{'apiVersion': 'v1', 'kind': 'Service', 'metadata': {'name': 's',"
                      " 'labels': {'app': 1}}}"),
                   js("{'apiVersion': 'v1', 'kind': 'Service', 'metadata': {'name': 't',"
                      " 'resourceVersion': 'abc'}}"),
                   NULL);
    cr_expect_eq(rc, MESH_EINVAL);
    cr_expect_eq(res[0].status, MESH_OK);
    for (int i = 1; i < 7; i++)
        cr_expect_eq(res[i].status, MESH_EINVAL, "document %d", i + 1);
    const char *e = errors();
    cr_expect(strstr(e, "document 2: not an object"), "%s", e);
    cr_expect(strstr(e, "document 3: kind: required"), "%s", e);
    cr_expect(strstr(e, "document 4 (Service): metadata.name: required"), "%s", e);
    cr_expect(strstr(e, "document 5 (Service): metadata.name: not a valid name"), "%s", e);
    cr_expect(strstr(e, "Service default/s: metadata.labels.app: must be a string"), "%s", e);
    cr_expect(strstr(e, "Service default/t: metadata.resourceVersion: not a revision number"),
              "%s", e);
    cr_expect_eq(revision(st), 0);
    mesh_store_close(st);
}

STORE_TEST(the_same_object_twice_in_one_batch_is_refused)
{
    struct mesh_store *st = open_store();
    cr_expect_eq(apply(st, NULL, NULL, vs("default", "reviews", "v1", NULL),
                       vs("default", "reviews", "v2", NULL), NULL),
                 MESH_EINVAL);
    cr_expect(strstr(errors(), "VirtualService default/reviews: documents 1 and 2 are the same"),
              "%s", errbuf);
    cr_expect_eq(revision(st), 0);
    mesh_store_close(st);
}

STORE_TEST(an_empty_batch_changes_nothing)
{
    struct mesh_store *st = open_store();
    json_t *docs = json_array();
    int64_t rev = -1;
    cr_expect_eq(mesh_store_apply(st, docs, NULL, NULL, &rev, &err), MESH_OK, "%s", errors());
    cr_expect_eq(rev, 0);
    json_decref(docs);
    mesh_store_close(st);
}

/* ---- list and label selectors ---- */

static json_t *list(struct mesh_store *st, const char *kind, const char *ns, const char *sel)
{
    struct mesh_store_filter f = {.kind = kind, .ns = ns, .selector = sel};
    json_t *out = NULL;
    int rc = mesh_store_list(st, &f, &out, NULL, &err);
    cr_assert_eq(rc, MESH_OK, "%s", errors());
    return out;
}

/* "ns/name ns/name ..." of a list, for compact assertions. */
static const char *names(json_t *arr)
{
    static char buf[1024];
    size_t i, off = 0;
    json_t *o;
    buf[0] = '\0';
    json_array_foreach(arr, i, o) {
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s/%s", i ? " " : "",
                                str_at(o, "metadata", "namespace"), str_at(o, "metadata", "name"));
    }
    json_decref(arr);
    return buf;
}

STORE_TEST(list_filters_by_kind_namespace_and_labels)
{
    struct mesh_store *st = open_store();
    cr_assert_eq(apply(st, NULL, NULL,
                       vs("default", "a", "v1", "'app': 'web', 'env': 'prod', 'tier': 'front'"),
                       vs("default", "b", "v1", "'app': 'web', 'env': 'dev', 'tier': 'back'"),
                       vs("shop", "c", "v1", "'app': 'api', 'tier': 'front'"),
                       vs("shop", "d", "v1", "'app': 'api', 'legacy': 'yes'"),
                       dr("default", "a"), NULL),
                 MESH_OK, "%s", errors());
    cr_expect_str_eq(names(list(st, NULL, NULL, NULL)),
                     "default/a default/a default/b shop/c shop/d");
    cr_expect_str_eq(names(list(st, "VirtualService", NULL, NULL)),
                     "default/a default/b shop/c shop/d");
    cr_expect_str_eq(names(list(st, "VirtualService", "shop", NULL)), "shop/c shop/d");
    cr_expect_str_eq(names(list(st, NULL, NULL, "app=web")), "default/a default/b");
    cr_expect_str_eq(names(list(st, NULL, NULL, "app==web,env!=prod")), "default/b");
    cr_expect_str_eq(names(list(st, "VirtualService", NULL, "env!=prod")),
                     "default/b shop/c shop/d");
    cr_expect_str_eq(names(list(st, NULL, NULL, "tier in (front, back)")),
                     "default/a default/b shop/c");
    cr_expect_str_eq(names(list(st, "VirtualService", NULL, "tier notin (front)")),
                     "default/b shop/d");
    cr_expect_str_eq(names(list(st, NULL, NULL, "legacy")), "shop/d");
    cr_expect_str_eq(names(list(st, "VirtualService", NULL, "!legacy,app")),
                     "default/a default/b shop/c");
    cr_expect_str_eq(names(list(st, "Gateway", NULL, NULL)), "");

    json_t *out = (void *)1;
    struct mesh_store_filter f = {.selector = "app in (web"};
    cr_expect_eq(mesh_store_list(st, &f, &out, NULL, &err), MESH_EINVAL);
    cr_expect_null(out);
    cr_expect(strstr(errors(), "label selector \"app in (web\""), "%s", errbuf);
    mesh_store_close(st);
}

STORE_TEST(list_returns_the_revision_it_read_at)
{
    struct mesh_store *st = open_store();
    cr_assert_eq(apply(st, NULL, NULL, vs("default", "a", "v1", NULL), NULL), MESH_OK);
    cr_assert_eq(apply(st, NULL, NULL, vs("default", "b", "v1", NULL), NULL), MESH_OK);
    json_t *out = NULL;
    int64_t rev = 0;
    cr_assert_eq(mesh_store_list(st, NULL, &out, &rev, &err), MESH_OK);
    cr_expect_eq(rev, 2);
    cr_expect_str_eq(str_at(json_array_get(out, 0), "metadata", "resourceVersion"), "1");
    cr_expect_str_eq(str_at(json_array_get(out, 1), "metadata", "resourceVersion"), "2");
    json_decref(out);
    mesh_store_close(st);
}

/* ---- delete ---- */

STORE_TEST(delete_with_and_without_a_precondition)
{
    struct mesh_store *st = open_store();
    cr_assert_eq(apply(st, NULL, NULL, vs("default", "a", "v1", NULL),
                       vs("default", "b", "v1", NULL), NULL),
                 MESH_OK);
    int64_t rev = 0;
    cr_expect_eq(mesh_store_delete(st, "VirtualService", "default", "zz", 0, NULL, &rev, &err),
                 MESH_ENOTFOUND);
    cr_expect(strstr(errors(), "VirtualService default/zz: not found"), "%s", errbuf);
    cr_expect_eq(mesh_store_delete(st, "VirtualService", "default", "a", 7, NULL, &rev, &err),
                 MESH_STORE_ECONFLICT);
    cr_expect(strstr(errors(), "VirtualService default/a: the object has been modified"), "%s",
              errbuf);
    cr_expect_eq(rev, 1);
    cr_expect_eq(mesh_store_delete(st, "VirtualService", "default", "a", 1, "bob", &rev, &err),
                 MESH_OK, "%s", errors());
    cr_expect_eq(rev, 2);
    cr_expect_eq(mesh_store_delete(st, "VirtualService", "default", "b", 0, NULL, &rev, &err),
                 MESH_OK, "%s", errors());
    cr_expect_eq(rev, 3);
    cr_expect_str_eq(names(list(st, NULL, NULL, NULL)), "");
    /* a deleted object can be created again */
    struct mesh_store_result res;
    cr_expect_eq(apply(st, &res, &rev, vs("default", "a", "v9", NULL), NULL), MESH_OK);
    cr_expect_eq(res.op, MESH_STORE_CREATED);
    cr_expect_eq(rev, 4);
    mesh_store_close(st);
}

/* ---- history, changes, state at a revision ---- */

/* Builds: r1 a+b created, r2 a changed, r3 b deleted, r4 c created. */
static struct mesh_store *four_revisions(void)
{
    struct mesh_store *st = open_store();
    cr_assert_eq(apply(st, NULL, NULL, vs("default", "a", "v1", "'app': 'a'"),
                       vs("default", "b", "v1", NULL), NULL),
                 MESH_OK, "%s", errors());
    cr_assert_eq(apply(st, NULL, NULL, vs("default", "a", "v2", "'app': 'a'"), NULL), MESH_OK);
    cr_assert_eq(mesh_store_delete(st, "VirtualService", "default", "b", 0, "carol: cleanup", NULL,
                                   &err),
                 MESH_OK);
    cr_assert_eq(apply(st, NULL, NULL, dr("default", "c"), NULL), MESH_OK);
    return st;
}

/* "rev:op:name rev:op:name ..." of history rows. */
static const char *rows(json_t *arr)
{
    static char buf[1024];
    size_t i, off = 0;
    json_t *r;
    buf[0] = '\0';
    json_array_foreach(arr, i, r) {
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%lld:%s:%s", i ? " " : "",
                                (long long)json_integer_value(json_object_get(r, "revision")),
                                json_string_value(json_object_get(r, "op")),
                                json_string_value(json_object_get(r, "name")));
    }
    json_decref(arr);
    return buf;
}

STORE_TEST(history_keeps_every_change)
{
    struct mesh_store *st = four_revisions();
    json_t *h = NULL;
    cr_assert_eq(mesh_store_history(st, NULL, &h, &err), MESH_OK, "%s", errors());
    json_t *del = json_array_get(h, 3);
    cr_expect_str_eq(json_string_value(json_object_get(del, "note")), "carol: cleanup");
    cr_expect_str_eq(json_string_value(json_object_get(del, "kind")), "VirtualService");
    cr_expect_str_eq(json_string_value(json_object_get(del, "namespace")), "default");
    cr_expect_str_eq(str_at(json_object_get(del, "object"), "metadata", "resourceVersion"), "3");
    cr_expect_not_null(json_object_get(json_array_get(h, 0), "timestamp"));
    cr_expect_str_eq(rows(h), "1:create:a 1:create:b 2:update:a 3:delete:b 4:create:c");

    struct mesh_store_filter f = {.kind = "VirtualService", .name = "a"};
    cr_assert_eq(mesh_store_history(st, &f, &h, &err), MESH_OK);
    cr_expect_str_eq(rows(h), "1:create:a 2:update:a");
    f = (struct mesh_store_filter){.kind = "DestinationRule"};
    cr_assert_eq(mesh_store_history(st, &f, &h, &err), MESH_OK);
    cr_expect_str_eq(rows(h), "4:create:c");
    mesh_store_close(st);
}

STORE_TEST(changes_since_a_revision_for_watchers)
{
    struct mesh_store *st = four_revisions();
    json_t *c = NULL;
    int64_t rev = 0;
    cr_assert_eq(mesh_store_changes(st, 2, &c, &rev, &err), MESH_OK, "%s", errors());
    cr_expect_eq(rev, 4);
    cr_expect_str_eq(rows(c), "3:delete:b 4:create:c");
    cr_assert_eq(mesh_store_changes(st, 4, &c, &rev, &err), MESH_OK);
    cr_expect_str_eq(rows(c), "");
    cr_expect_eq(mesh_store_changes(st, 5, &c, &rev, &err), MESH_EINVAL);
    cr_expect(strstr(errors(), "revision 5 does not exist (the current revision is 4)"), "%s",
              errbuf);
    mesh_store_close(st);
}

STORE_TEST(state_at_a_revision)
{
    struct mesh_store *st = four_revisions();
    json_t *s = NULL;
    cr_assert_eq(mesh_store_state_at(st, 0, NULL, &s, &err), MESH_OK, "%s", errors());
    cr_expect_str_eq(names(s), "");
    cr_assert_eq(mesh_store_state_at(st, 1, NULL, &s, &err), MESH_OK);
    char *text = json_dumps(json_object_get(json_array_get(s, 0), "spec"), JSON_COMPACT);
    cr_expect(strstr(text, "\"subset\": \"v1\"") || strstr(text, "\"subset\":\"v1\""), "%s",
              text);
    free(text);
    cr_expect_str_eq(names(s), "default/a default/b");
    cr_assert_eq(mesh_store_state_at(st, 3, NULL, &s, &err), MESH_OK);
    cr_expect_str_eq(names(s), "default/a");
    cr_assert_eq(mesh_store_state_at(st, MESH_STORE_CURRENT, NULL, &s, &err), MESH_OK);
    cr_expect_str_eq(names(s), "default/c default/a");
    struct mesh_store_filter f = {.selector = "app=a"};
    cr_assert_eq(mesh_store_state_at(st, 2, &f, &s, &err), MESH_OK);
    cr_expect_str_eq(str_at(json_array_get(s, 0), "metadata", "resourceVersion"), "2");
    cr_expect_str_eq(names(s), "default/a");
    cr_expect_eq(mesh_store_state_at(st, 9, NULL, &s, &err), MESH_EINVAL);
    mesh_store_close(st);
}

/* ---- rollback ---- */

/* The current state and the state at <rev>, as canonical JSON without server fields. */
static char *state_text(struct mesh_store *st, int64_t rev)
{
    json_t *s = NULL;
    cr_assert_eq(mesh_store_state_at(st, rev, NULL, &s, &err), MESH_OK, "%s", errors());
    size_t i;
    json_t *o;
    json_array_foreach(s, i, o) json_object_del(json_object_get(o, "metadata"), "resourceVersion");
    char *text = json_dumps(s, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(s);
    return text;
}

STORE_TEST(rollback_is_one_new_revision_equal_to_the_old_state)
{
    struct mesh_store *st = four_revisions();
    json_t *changes = NULL;
    int64_t rev = 0;
    cr_assert_eq(mesh_store_rollback(st, 1, NULL, &changes, &rev, &err), MESH_OK, "%s", errors());
    cr_expect_eq(rev, 5);
    char *text = json_dumps(changes, JSON_COMPACT);
    cr_expect_str_eq(text, "[{\"kind\":\"DestinationRule\",\"namespace\":\"default\","
                           "\"name\":\"c\",\"op\":\"deleted\"},"
                           "{\"kind\":\"VirtualService\",\"namespace\":\"default\","
                           "\"name\":\"a\",\"op\":\"configured\"},"
                           "{\"kind\":\"VirtualService\",\"namespace\":\"default\","
                           "\"name\":\"b\",\"op\":\"created\"}]");
    free(text);
    json_decref(changes);
    char *now = state_text(st, MESH_STORE_CURRENT), *then = state_text(st, 1);
    cr_expect_str_eq(now, then);
    free(now);
    free(then);

    json_t *h = NULL;
    cr_assert_eq(mesh_store_changes(st, 4, &h, NULL, &err), MESH_OK);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(h, 0), "note")),
                     "rollback to revision 1");
    cr_expect_str_eq(rows(h), "5:delete:c 5:update:a 5:create:b");

    /* already equal: nothing to do, no revision */
    cr_assert_eq(mesh_store_rollback(st, 1, NULL, &changes, &rev, &err), MESH_OK);
    cr_expect_eq(rev, 5);
    cr_expect_eq(json_array_size(changes), 0);
    json_decref(changes);
    /* to 0: everything deleted */
    cr_assert_eq(mesh_store_rollback(st, 0, "alice: wipe", NULL, &rev, &err), MESH_OK);
    cr_expect_eq(rev, 6);
    cr_expect_str_eq(names(list(st, NULL, NULL, NULL)), "");
    cr_expect_eq(mesh_store_rollback(st, 7, NULL, NULL, &rev, &err), MESH_EINVAL);
    cr_expect_eq(rev, 6);
    mesh_store_close(st);
}

/* ---- diff ---- */

STORE_TEST(diff_renders_yaml_resource_by_resource)
{
    struct mesh_store *st = four_revisions();
    char *out = NULL;
    size_t len = 0;
    cr_assert_eq(mesh_store_diff(st, 1, 4, &out, &len, &err), MESH_OK, "%s", errors());
    cr_expect_eq(len, strlen(out));
    cr_expect_str_eq(out, "--- /dev/null\n"
                          "+++ DestinationRule/default/c@4\n"
                          "@@ -0,0 +1,11 @@\n"
                          "+apiVersion: networking.istio.io/v1beta1\n"
                          "+kind: DestinationRule\n"
                          "+metadata:\n"
                          "+  name: c\n"
                          "+  namespace: default\n"
                          "+spec:\n"
                          "+  host: c\n"
                          "+  subsets:\n"
                          "+  - labels:\n"
                          "+      version: v1\n"
                          "+    name: v1\n"
                          "--- VirtualService/default/a@1\n"
                          "+++ VirtualService/default/a@4\n"
                          "@@ -12,4 +12,4 @@\n"
                          "   - route:\n"
                          "     - destination:\n"
                          "         host: a\n"
                          "-        subset: v1\n"
                          "+        subset: v2\n"
                          "--- VirtualService/default/b@1\n"
                          "+++ /dev/null\n"
                          "@@ -1,14 +0,0 @@\n"
                          "-apiVersion: networking.istio.io/v1beta1\n"
                          "-kind: VirtualService\n"
                          "-metadata:\n"
                          "-  labels: {}\n"
                          "-  name: b\n"
                          "-  namespace: default\n"
                          "-spec:\n"
                          "-  hosts:\n"
                          "-  - b\n"
                          "-  http:\n"
                          "-  - route:\n"
                          "-    - destination:\n"
                          "-        host: b\n"
                          "-        subset: v1\n");
    free(out);
    /* the same revision twice, and the current revision by default */
    cr_assert_eq(mesh_store_diff(st, 3, 3, &out, NULL, &err), MESH_OK);
    cr_expect_str_eq(out, "");
    free(out);
    cr_assert_eq(mesh_store_diff(st, 3, MESH_STORE_CURRENT, &out, NULL, &err), MESH_OK);
    cr_expect(strncmp(out, "--- /dev/null\n+++ DestinationRule/default/c@4\n", 46) == 0, "%s",
              out);
    free(out);
    cr_expect_eq(mesh_store_diff(st, 1, 12, &out, NULL, &err), MESH_EINVAL);
    mesh_store_close(st);
}

/* ---- concurrency ---- */

STORE_TEST(a_writer_waits_for_another_process_lock_then_gives_up)
{
    mesh_store_close(open_store());
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    struct mesh_store_opts opts = {.busy_timeout_ms = 200};
    struct mesh_store *st = NULL;
    cr_assert_eq(mesh_store_open(path, &opts, &st, &err), MESH_OK, "%s", errors());
    int rc = apply(st, NULL, NULL, vs("default", "a", "v1", NULL), NULL);
    cr_expect_eq(rc, MESH_EAGAIN, "%s", errors());
    cr_expect(strstr(errors(), "locked by another writer; retry"), "%s", errbuf);
    /* readers are not blocked by a writer (WAL) */
    json_t *out = NULL;
    cr_expect_eq(mesh_store_list(st, NULL, &out, NULL, &err), MESH_OK);
    json_decref(out);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    cr_expect_eq(apply(st, NULL, NULL, vs("default", "a", "v1", NULL), NULL), MESH_OK);
    mesh_store_close(st);
}

/* One writer process: <iters> increments of spec.count by read-modify-write. */
static int increment_loop(int iters, int wfd)
{
    struct mesh_err e;
    mesh_err_init(&e, NULL);
    struct mesh_store *st;
    if (mesh_store_open(path, NULL, &st, &e) != MESH_OK)
        return 1;
    int conflicts = 0;
    for (int i = 0; i < iters;) {
        json_t *obj = NULL;
        if (mesh_store_get(st, "ConfigMap", "default", "counter", &obj, &e) != MESH_OK)
            return 2;
        json_t *spec = json_object_get(obj, "spec");
        json_int_t n = json_integer_value(json_object_get(spec, "count"));
        usleep((useconds_t)(rand() % 300)); /* widen the read-modify-write window */
        json_object_set_new(spec, "count", json_integer(n + 1));
        mesh_err_init(&e, NULL);
        int rc = mesh_store_apply(st, obj, NULL, NULL, NULL, &e);
        json_decref(obj);
        if (rc == MESH_OK)
            i++;
        else if (rc == MESH_STORE_ECONFLICT || rc == MESH_EAGAIN)
            conflicts++;
        else
            return 3;
    }
    mesh_store_close(st);
    if (write(wfd, &conflicts, sizeof(conflicts)) != (ssize_t)sizeof(conflicts))
        return 4;
    return 0;
}

STORE_TEST(concurrent_processes_lose_no_update, .timeout = 60)
{
    enum { PROCS = 4, ITERS = 40 };
    struct mesh_store *st = open_store();
    json_t *counter = js("{'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata':"
                         " {'name': 'counter'}, 'spec': {'count': 0}}");
    cr_assert_eq(mesh_store_apply(st, counter, NULL, NULL, NULL, &err), MESH_OK, "%s", errors());
    json_decref(counter);
    mesh_store_close(st);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        cr_assert_neq(pids[p], -1);
        if (pids[p] == 0) {
            srand((unsigned)getpid());
            _exit(increment_loop(ITERS, fds[1]));
        }
    }
    close(fds[1]);
    for (int p = 0; p < PROCS; p++) {
        int status;
        cr_assert_eq(waitpid(pids[p], &status, 0), pids[p]);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d: status %#x", p,
                  status);
    }
    int conflicts = 0, c;
    while (read(fds[0], &c, sizeof(c)) == (ssize_t)sizeof(c))
        conflicts += c;
    close(fds[0]);
    cr_log_info("%d writers x %d increments: %d conflicts retried", PROCS, ITERS, conflicts);

    st = open_store();
    json_t *obj = NULL;
    cr_assert_eq(mesh_store_get(st, "ConfigMap", "default", "counter", &obj, &err), MESH_OK);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(obj, "spec"), "count")),
                 PROCS * ITERS);
    cr_expect_str_eq(str_at(obj, "metadata", "resourceVersion"), "161");
    json_decref(obj);
    cr_expect_eq(revision(st), 1 + PROCS * ITERS);
    mesh_store_close(st);
}
