/*
 * Compile benchmark: a mesh of N Kubernetes Services (each with Endpoints of 10
 * addresses) and N/2 VirtualServices across 10 namespaces; compiles the
 * snapshot of one sidecar and prints the median time of several runs, and the time of the
 * control plane's endpoint path (mesh_compile_clusters: the clusters of one service).
 *
 *   make && ./bench/compile [N...]      (default: 1000 5000 10000)
 *
 * Loading the YAML is timed separately (it is the loader's cost, paid once per
 * change, not per proxy). Build without --enable-sanitizers for real numbers.
 */
#include "core/common.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "core/compile.h"
#include "core/resource.h"
#include "core/compile_check.h"
#include "core/status.h"

#define N_NAMESPACES 10
#define ENDPOINTS_PER_SERVICE 10

struct buf {
    char *p;
    size_t n, cap;
};

static void MESH_PRINTF(2, 3) put(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if ((size_t)n < b->cap - b->n) {
            b->n += (size_t)n;
            return;
        }
        b->cap = b->cap ? b->cap * 2 : 1 << 20;
        b->p = mesh_xrealloc(b->p, b->cap);
    }
}

static char *generate(size_t n, size_t *len)
{
    struct buf b = {0};
    put(&b, "# generated\n");
    for (size_t i = 0; i < n; i++) {
        size_t ns = i % N_NAMESPACES;
        put(&b,
            "---\napiVersion: v1\nkind: Service\nmetadata: {name: svc%zu, namespace: ns%zu}\n"
            "spec:\n  clusterIP: 10.96.%zu.%zu\n  selector: {app: svc%zu}\n"
            "  ports: [{name: http, port: 80, targetPort: 8080}]\n",
            i, ns, i / 250, i % 250 + 1, i);
        put(&b, "---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: svc%zu, namespace: ns%zu}\n"
                "subsets:\n- ports: [{name: http, port: 8080}]\n  addresses:\n",
            i, ns);
        for (size_t e = 0; e < ENDPOINTS_PER_SERVICE; e++)
            put(&b, "  - ip: 10.%zu.%zu.%zu\n", 1 + (i * ENDPOINTS_PER_SERVICE + e) / 65536,
                (i * ENDPOINTS_PER_SERVICE + e) / 256 % 256, (i * ENDPOINTS_PER_SERVICE + e) % 256);
    }
    for (size_t i = 0; i < n / 2; i++) {
        size_t ns = i % N_NAMESPACES, other = (i + 1) % n;
        put(&b,
            "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
            "metadata: {name: vs%zu, namespace: ns%zu}\n"
            "spec:\n  hosts: [svc%zu]\n  http:\n"
            "  - match: [{uri: {prefix: /api/v2}}, {uri: {exact: /v2}}]\n"
            "    timeout: 3s\n"
            "    route: [{destination: {host: svc%zu.ns%zu.svc.cluster.local}}]\n"
            "  - route: [{destination: {host: svc%zu}, weight: 90},\n"
            "            {destination: {host: svc%zu.ns%zu.svc.cluster.local}, weight: 10}]\n",
            i, ns, i, other, other % N_NAMESPACES, i, other, other % N_NAMESPACES);
    }
    *len = b.n;
    return b.p;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* CPU time of this thread: the figure that does not depend on what else the machine runs */
static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int run(size_t n)
{
    size_t len;
    char *yaml = generate(n, &len);
    struct mesh_resource_set set;
    mesh_resource_set_init(&set);
    double t0 = now_ms();
    int rc = mesh_resource_load_buffer(&set, yaml, len, "bench.yaml", 0);
    double load_ms = now_ms() - t0;
    free(yaml);
    if (rc != MESH_OK) {
        mesh_diags_print(&set.diags, stderr, MESH_DIAG_ERROR);
        mesh_resource_set_free(&set);
        return 1;
    }

    struct mesh_node node;
    mesh_node_init(&node);
    node.namespace_ = "ns0";
    node.name = "client";

    enum { RUNS = 9 };
    double compile[RUNS], total[RUNS], cpu[RUNS];
    size_t bytes = 0, n_eps = 0;
    for (int r = 0; r < RUNS; r++) {
        struct mesh_diags d;
        mesh_diags_init(&d);
        json_t *snap = NULL;
        double a = now_ms(), ca = cpu_ms();
        rc = mesh_compile(&set, &node, &snap, &d);
        double b = now_ms();
        cpu[r] = cpu_ms() - ca;
        char *text = snap ? json_dumps(snap, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        double c = now_ms();
        compile[r] = b - a;
        total[r] = c - a;
        if (rc != MESH_OK || !text) {
            mesh_diags_print(&d, stderr, MESH_DIAG_ERROR);
            return 1;
        }
        if (r == 0) {
            bytes = strlen(text);
            struct mesh_err err;
            if (!mesh_compile_check(snap, &err, &n_eps)) {
                char msg[4096];
                mesh_err_format(&err, msg, sizeof(msg));
                fprintf(stderr, "the compiled snapshot is rejected:\n%s", msg);
                return 1;
            }
        }
        free(text);
        json_decref(snap);
        mesh_diags_free(&d);
    }
    /* the control plane's endpoint path: the clusters of one service (push_class.c) */
    double eds[RUNS];
    static const char *const scope[] = {"ns1/svc1"};
    struct mesh_compile_only only = {.services = scope, .n = 1};
    for (int r = 0; r < RUNS; r++) {
        struct mesh_diags d;
        mesh_diags_init(&d);
        json_t *cl = NULL;
        double a = now_ms();
        rc = mesh_compile_clusters(&set, &node, &only, &cl, &d);
        eds[r] = now_ms() - a;
        if (rc != MESH_OK || json_array_size(cl) == 0) {
            fprintf(stderr, "the endpoint path compiled no cluster of ns1/svc1\n");
            return 1;
        }
        json_decref(cl);
        mesh_diags_free(&d);
    }
    qsort(compile, RUNS, sizeof(double), cmp_double);
    qsort(total, RUNS, sizeof(double), cmp_double);
    qsort(cpu, RUNS, sizeof(double), cmp_double);
    qsort(eds, RUNS, sizeof(double), cmp_double);
    printf("%6zu services %7zu endpoints %5zu VS: compile %7.2f ms (cpu %7.2f ms)  "
           "+serialize %7.2f ms  (%zu KiB; load %.0f ms); one service's clusters %6.2f ms\n",
           n, n_eps, n / 2, compile[RUNS / 2], cpu[RUNS / 2], total[RUNS / 2], bytes / 1024,
           load_ms, eds[RUNS / 2]);
    mesh_resource_set_free(&set);
    return 0;
}

int main(int argc, char **argv)
{
    static const size_t defaults[] = {1000, 5000, 10000};
    int rc = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            rc |= run(strtoul(argv[i], NULL, 10));
    } else {
        for (size_t i = 0; i < MESH_ARRAY_LEN(defaults); i++)
            rc |= run(defaults[i]);
    }
    return rc;
}
