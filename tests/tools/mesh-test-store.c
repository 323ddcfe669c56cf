/*
 * mesh-test-store: drives the configuration store from its own process, for the kill -9
 * crash test (tests/integration/store_crash.sh).
 *
 *   mesh-test-store apply-loop DB N ITERS   apply a batch of N objects ITERS times, each
 *                                           round changing every object; prints
 *                                           "applying R" before each apply and
 *                                           "rev R ms T" after its commit
 *   mesh-test-store check DB N              open (recovering the WAL), then verify:
 *                                           integrity_check and foreign_key_check clean,
 *                                           revisions 1..R contiguous, each with exactly N
 *                                           history rows, the current objects = revision R
 *
 * Exit status: 0 ok, 1 a check failed (message on stderr), 2 usage.
 */
#include "core/common.h"
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "core/status.h"
#include "core/store.h"

static void print_err(const struct mesh_err *err)
{
    char buf[8192];
    mesh_err_format(err, buf, sizeof(buf));
    fputs(buf, stderr);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* N VirtualServices; every one carries <round> so that each round changes all of them. */
static json_t *make_batch(long n, long round)
{
    json_t *docs = json_array();
    for (long i = 0; i < n; i++) {
        char name[32], host[64];
        snprintf(name, sizeof(name), "vs-%05ld", i);
        snprintf(host, sizeof(host), "svc-%05ld.default.svc.cluster.local", i);
        json_t *d = json_pack(
            "{ss ss s{ss ss s{ss ss}} s{s[s] s[{s[{s{ss s{si}} si}] s{si}}] s{sI}}}", "apiVersion",
            "networking.istio.io/v1beta1", "kind", "VirtualService", "metadata", "name", name,
            "namespace", "default", "labels", "app", "crash", "tier", (i % 2) ? "a" : "b",
            "spec", "hosts", host, "http", "route", "destination", "host", host, "port", "number",
            8080, "weight", 100, "retries", "attempts", (int)(i % 5), "round", "value",
            (json_int_t)round);
        json_array_append_new(docs, d);
    }
    return docs;
}

static int apply_loop(const char *db, long n, long iters)
{
    struct mesh_err err;
    mesh_err_init(&err, db);
    struct mesh_store *st;
    if (mesh_store_open(db, NULL, &st, &err) != MESH_OK) {
        print_err(&err);
        return 1;
    }
    for (long it = 1; it <= iters; it++) {
        int64_t rev = 0;
        if (mesh_store_revision(st, &rev, &err) != MESH_OK) {
            print_err(&err);
            mesh_store_close(st);
            return 1;
        }
        /* the round is the revision this apply will make: check() compares them */
        json_t *docs = make_batch(n, (long)rev + 1);
        printf("applying %" PRId64 "\n", rev + 1);
        fflush(stdout);
        double t0 = now_ms();
        int rc = mesh_store_apply(st, docs, "crash-test", NULL, &rev, &err);
        json_decref(docs);
        if (rc != MESH_OK) {
            print_err(&err);
            mesh_store_close(st);
            return 1;
        }
        printf("rev %" PRId64 " ms %.0f\n", rev, now_ms() - t0);
        fflush(stdout);
    }
    mesh_store_close(st);
    return 0;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "check: " __VA_ARGS__);                                                    \
        fputc('\n', stderr);                                                                       \
        rc = 1;                                                                                    \
        goto out;                                                                                  \
    } while (0)

static int check(const char *path, long n)
{
    struct mesh_err err;
    mesh_err_init(&err, path);
    struct mesh_store *st;
    /* the store's own open first: it is the code that must cope with a crashed file */
    if (mesh_store_open(path, NULL, &st, &err) != MESH_OK) {
        print_err(&err);
        return 1;
    }
    int64_t cur = -1;
    if (mesh_store_revision(st, &cur, &err) != MESH_OK) {
        print_err(&err);
        mesh_store_close(st);
        return 1;
    }
    json_t *list = NULL;
    int lrc = mesh_store_list(st, NULL, &list, NULL, &err);
    mesh_store_close(st);
    if (lrc != MESH_OK) {
        print_err(&err);
        return 1;
    }

    int rc = 0;
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        FAIL("cannot open %s", path);
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL) != SQLITE_OK)
        FAIL("integrity_check: %s", sqlite3_errmsg(db));
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(s, 0);
        if (strcmp(r, "ok") != 0)
            FAIL("integrity_check: %s", r);
    }
    sqlite3_finalize(s);
    s = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &s, NULL) != SQLITE_OK)
        FAIL("foreign_key_check: %s", sqlite3_errmsg(db));
    if (sqlite3_step(s) == SQLITE_ROW)
        FAIL("foreign_key_check: a dangling reference in %s", sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    s = NULL;

    int64_t nrev = query_int(db, "SELECT COUNT(*) FROM revisions");
    int64_t maxrev = query_int(db, "SELECT COALESCE(MAX(rev), 0) FROM revisions");
    if (maxrev != cur || nrev != maxrev)
        FAIL("revisions not contiguous: %" PRId64 " rows, max %" PRId64 ", store says %" PRId64,
             nrev, maxrev, cur);
    /* all or nothing: every committed revision holds the whole batch */
    sqlite3_stmt *p;
    if (sqlite3_prepare_v2(db,
                           "SELECT rev, c FROM (SELECT v.rev, (SELECT COUNT(*) FROM history h "
                           "WHERE h.rev = v.rev) AS c FROM revisions v) WHERE c != ?1 LIMIT 1",
                           -1, &p, NULL) != SQLITE_OK)
        FAIL("query: %s", sqlite3_errmsg(db));
    sqlite3_bind_int64(p, 1, n);
    if (sqlite3_step(p) == SQLITE_ROW) {
        int64_t r = sqlite3_column_int64(p, 0), c = sqlite3_column_int64(p, 1);
        sqlite3_finalize(p);
        FAIL("revision %" PRId64 " is partial: %" PRId64 " of %ld objects", r, c, n);
    }
    sqlite3_finalize(p);
    /* each history row is the version written at its revision (round = revision) */
    int64_t wrong = query_int(db, "SELECT COUNT(*) FROM history "
                                  "WHERE json_extract(object, '$.spec.round.value') != rev");
    if (wrong != 0)
        FAIL("%" PRId64 " history rows do not hold their revision's round", wrong);
    int64_t nres = query_int(db, "SELECT COUNT(*) FROM resources");
    if (nres != (maxrev ? n : 0) || (long)json_array_size(list) != nres)
        FAIL("%" PRId64 " current objects (list: %zu), expected %ld", nres, json_array_size(list),
             maxrev ? n : 0);
    int64_t stale = query_int(db, "SELECT COUNT(*) FROM resources WHERE rev != "
                                  "(SELECT MAX(rev) FROM revisions)");
    if (stale != 0)
        FAIL("%" PRId64 " current objects are not at the last revision", stale);
    /* the objects hold the round of the last revision, all of them */
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o) {
        json_t *round = json_object_get(json_object_get(o, "spec"), "round");
        if (json_integer_value(json_object_get(round, "value")) != maxrev)
            FAIL("object %zu holds round %" JSON_INTEGER_FORMAT ", revision is %" PRId64, i,
                 json_integer_value(json_object_get(round, "value")), maxrev);
    }
    printf("ok: revision %" PRId64 ", %" PRId64 " objects\n", maxrev, nres);
out:
    sqlite3_finalize(s);
    sqlite3_close(db);
    json_decref(list);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "apply-loop") == 0)
        return apply_loop(argv[2], atol(argv[3]), atol(argv[4]));
    if (argc == 4 && strcmp(argv[1], "check") == 0)
        return check(argv[2], atol(argv[3]));
    fprintf(stderr, "usage: mesh-test-store apply-loop DB N ITERS | check DB N\n");
    return 2;
}
