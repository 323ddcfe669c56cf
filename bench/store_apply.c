/*
 * Store apply micro-benchmark: one batch of N resources (10,000 by default) applied three
 * times into a fresh store: all created, all configured (every spec changed), all
 * unchanged. The target (issue 3) is under 2 s for the first.
 *
 *   make && ./bench/store_apply [N] [DIR]      (DIR: where the store goes, default /tmp)
 */
#include "core/common.h"
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "core/status.h"
#include "core/store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A VirtualService the size of a typical one (about 600 bytes of JSON). */
static json_t *make_batch(long n, int gen)
{
    json_t *docs = json_array();
    for (long i = 0; i < n; i++) {
        char name[32], host[64];
        snprintf(name, sizeof(name), "reviews-%05ld", i);
        snprintf(host, sizeof(host), "reviews-%05ld.bookinfo.svc.cluster.local", i);
        json_array_append_new(
            docs,
            json_pack("{ss ss s{ss ss s{ss ss}} s{s[s] s[{s[{s{s{ss}}}] s[{s{ss ss} si} "
                      "{s{ss ss} si}] ss s{si ss}}]}}",
                      "apiVersion", "networking.istio.io/v1beta1", "kind", "VirtualService",
                      "metadata", "name", name, "namespace", "bookinfo", "labels", "app",
                      "reviews", "team", (i % 3) ? "blue" : "green", "spec", "hosts", host,
                      "http", "match", "headers", "end-user", "exact", "jason", "route",
                      "destination", "host", host, "subset", "v2", "weight", 90 - gen,
                      "destination", "host", host, "subset", "v3", "weight", 10 + gen, "timeout",
                      "2s", "retries", "attempts", 3, "perTryTimeout", "500ms"));
    }
    return docs;
}

static int run(struct mesh_store *st, long n, int gen, const char *what,
               enum mesh_store_op expect)
{
    json_t *docs = make_batch(n, gen);
    struct mesh_store_result *res = mesh_xcalloc((size_t)n, sizeof(*res));
    struct mesh_err err;
    mesh_err_init(&err, NULL);
    int64_t rev = 0;
    double t0 = now_s();
    int rc = mesh_store_apply(st, docs, "bench", res, &rev, &err);
    double dt = now_s() - t0;
    json_decref(docs);
    if (rc != MESH_OK) {
        char buf[4096];
        mesh_err_format(&err, buf, sizeof(buf));
        fprintf(stderr, "apply failed: %s", buf);
        free(res);
        return 1;
    }
    long ok = 0;
    for (long i = 0; i < n; i++)
        ok += res[i].op == expect;
    free(res);
    printf("apply %-10s %6ld resources: %7.3f s (%.1f us each), revision %lld%s\n", what, n, dt,
           dt * 1e6 / (double)n, (long long)rev, ok == n ? "" : "  UNEXPECTED RESULT");
    return ok == n ? 0 : 1;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000;
    const char *base = argc > 2 ? argv[2] : "/tmp";
    if (n <= 0) {
        fprintf(stderr, "usage: store_apply [N] [DIR]\n");
        return 2;
    }
    char dir[4096], path[4200];
    snprintf(dir, sizeof(dir), "%s/meshd-bench-store.XXXXXX", base);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, MESH_STORE_FILE);
    struct mesh_err err;
    mesh_err_init(&err, NULL);
    struct mesh_store *st;
    int rc = 1;
    if (mesh_store_open(path, NULL, &st, &err) == MESH_OK) {
        rc = run(st, n, 0, "created", MESH_STORE_CREATED) ||
             run(st, n, 1, "configured", MESH_STORE_CONFIGURED) ||
             run(st, n, 1, "unchanged", MESH_STORE_UNCHANGED);
        mesh_store_close(st);
    } else {
        char buf[4096];
        mesh_err_format(&err, buf, sizeof(buf));
        fputs(buf, stderr);
    }
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < MESH_ARRAY_LEN(suffixes); i++) {
        char f[4300];
        snprintf(f, sizeof(f), "%s%s", path, suffixes[i]);
        unlink(f);
    }
    rmdir(dir);
    return rc;
}
