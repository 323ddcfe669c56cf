/* The compiler's unit tests: one compile per call, helpers to look into the snapshot. */
#ifndef MESH_TESTS_COMPILE_FIXTURE_H
#define MESH_TESTS_COMPILE_FIXTURE_H
#include "core/common.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <criterion/criterion.h>
#include "core/compile.h"
#include "core/compile_check.h"
#include "core/resource.h"
#include "core/status.h"
#include "../leakcheck.h"

/* Each test frees its compile (cleanup) before asking LeakSanitizer. */
#define COMPILE_TEST(name)                                                                         \
    static void name##_body(void);                                                                 \
    Test(compile, name)                                                                            \
    {                                                                                              \
        name##_body();                                                                             \
        cleanup();                                                                                 \
        mesh_assert_no_leaks();                                                                    \
    }                                                                                              \
    static void name##_body(void)

/* ---- Harness: one compile per call, results kept until cleanup() ---- */

static struct mesh_resource_set set;
static struct mesh_diags diags;
static json_t *snap;
static bool loaded;

static inline void cleanup(void)
{
    if (loaded) {
        mesh_resource_set_free(&set);
        mesh_diags_free(&diags);
        loaded = false;
    }
    json_decref(snap);
    snap = NULL;
}

static inline void load(const char *yaml)
{
    cleanup();
    mesh_resource_set_init(&set);
    mesh_diags_init(&diags);
    loaded = true;
    int rc = mesh_resource_load_buffer(&set, yaml, strlen(yaml), "test.yaml", 0);
    if (rc != MESH_OK)
        mesh_diags_print(&set.diags, stderr, MESH_DIAG_ERROR);
    cr_assert_eq(rc, MESH_OK, "the fixture must load without errors");
}

/* Parses the compiled snapshot back as a proxy would; fails the test when it is rejected. */
static inline void expect_parses(json_t *s)
{
    struct mesh_err err;
    bool ok = mesh_compile_check(s, &err, NULL);
    if (!ok) {
        char buf[8192];
        mesh_err_format(&err, buf, sizeof(buf));
        char *text = json_dumps(s, JSON_SORT_KEYS | JSON_INDENT(1));
        cr_log_error("snapshot rejected:\n%s\n%s", buf, text);
        free(text);
    }
    cr_expect(ok, "mesh_snapshot_parse must accept the compiled snapshot");
}

static inline void node_for(struct mesh_node *n, const char *ns, const char *name,
                     const struct mesh_kv *labels, size_t n_labels)
{
    mesh_node_init(n);
    n->namespace_ = ns;
    n->name = name;
    n->labels = labels;
    n->n_labels = n_labels;
    n->version = "test";
}

static inline json_t *compile_node(const struct mesh_node *n)
{
    json_decref(snap);
    snap = NULL;
    mesh_diags_free(&diags);
    mesh_diags_init(&diags);
    int rc = mesh_compile(&set, n, &snap, &diags);
    if (rc != MESH_OK)
        mesh_diags_print(&diags, stderr, MESH_DIAG_NOTE);
    cr_assert_eq(rc, MESH_OK);
    cr_assert(snap);
    expect_parses(snap);
    return snap;
}

static inline json_t *compile_in(const char *ns)
{
    struct mesh_node n;
    node_for(&n, ns, "client", NULL, 0);
    return compile_node(&n);
}

static inline json_t *find_named(json_t *arr, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        const char *nm = json_string_value(json_object_get(o, "name"));
        if (nm && strcmp(nm, name) == 0)
            return o;
    }
    return NULL;
}

static inline json_t *cluster(const char *name)
{
    return find_named(json_object_get(snap, "clusters"), name);
}

static inline json_t *vhosts(void)
{
    json_t *rc = find_named(json_object_get(snap, "route_configs"), "outbound");
    return json_object_get(rc, "virtual_hosts");
}

static inline json_t *vhost(const char *name)
{
    return find_named(vhosts(), name);
}

static inline bool has_domain(json_t *vh, const char *d)
{
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(vh, "domains"), i, o)
    {
        if (strcmp(json_string_value(o), d) == 0)
            return true;
    }
    return false;
}

static inline json_t *route(json_t *vh, size_t i)
{
    return json_array_get(json_object_get(vh, "routes"), i);
}

static inline const char *jstr(json_t *o, const char *path)
{
    /* "a.b.c" walk through objects */
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = json_object_get(cur, tok);
    return json_string_value(cur);
}

static inline long long jint(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static inline size_t n_endpoints(const char *cluster_name)
{
    json_t *c = cluster(cluster_name);
    cr_assert(c, "no cluster %s", cluster_name);
    return json_array_size(json_object_get(c, "endpoints"));
}

static inline const char *endpoint_addr(const char *cluster_name, size_t i)
{
    json_t *c = cluster(cluster_name);
    return json_string_value(json_object_get(json_array_get(json_object_get(c, "endpoints"), i),
                                             "address"));
}

/* A compile diagnostic whose path and message contain the given texts. */
static inline bool has_diag(enum mesh_diag_severity sev, const char *subject, const char *path,
                     const char *msg_part)
{
    for (size_t i = 0; i < diags.n; i++) {
        const struct mesh_diag *d = &diags.v[i];
        if (d->severity != sev)
            continue;
        if (subject && (!d->subject || strcmp(d->subject, subject) != 0))
            continue;
        if (path && (!d->path || strcmp(d->path, path) != 0))
            continue;
        if (msg_part && !strstr(d->msg, msg_part))
            continue;
        return true;
    }
    return false;
}

/* ---- Fixtures ---- */

#define REVIEWS_SVC                                                                                \
    "apiVersion: v1\n"                                                                             \
    "kind: Service\n"                                                                              \
    "metadata: {name: reviews, namespace: default}\n"                                              \
    "spec:\n"                                                                                      \
    "  clusterIP: 10.96.0.10\n"                                                                    \
    "  selector: {app: reviews}\n"                                                                 \
    "  ports: [{name: http, port: 9080, targetPort: 9080}]\n"                                      \
    "---\n"                                                                                        \
    "apiVersion: v1\n"                                                                             \
    "kind: Endpoints\n"                                                                            \
    "metadata: {name: reviews, namespace: default}\n"                                              \
    "subsets:\n"                                                                                   \
    "- addresses: [{ip: 10.1.0.3}, {ip: 10.1.0.1}, {ip: 10.1.0.2}]\n"                              \
    "  notReadyAddresses: [{ip: 10.1.0.9}]\n"                                                      \
    "  ports: [{name: http, port: 9080}]\n"

#define RATINGS_SVC(ns)                                                                            \
    "---\n"                                                                                        \
    "apiVersion: v1\n"                                                                             \
    "kind: Service\n"                                                                              \
    "metadata: {name: ratings, namespace: " ns "}\n"                                               \
    "spec:\n"                                                                                      \
    "  selector: {app: ratings}\n"                                                                 \
    "  ports: [{name: http, port: 9080}]\n"                                                        \
    "---\n"                                                                                        \
    "apiVersion: v1\n"                                                                             \
    "kind: Endpoints\n"                                                                            \
    "metadata: {name: ratings, namespace: " ns "}\n"                                               \
    "subsets:\n"                                                                                   \
    "- addresses: [{ip: 10.2.0.1}]\n"                                                              \
    "  ports: [{name: http, port: 9080}]\n"

#define REVIEWS_FQDN "reviews.default.svc.cluster.local"
#define REVIEWS_CLUSTER "outbound|9080||" REVIEWS_FQDN


/* <got> equals the JSON text <want>; both are printed when they differ. */
static inline void expect_json(json_t *got, const char *want)
{
    json_error_t e;
    json_t *w = json_loads(want, 0, &e);
    cr_assert(w, "bad expected JSON: %s: %s", want, e.text);
    bool eq = json_equal(got, w);
    if (!eq) {
        char *g = got ? json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
        char *x = json_dumps(w, JSON_SORT_KEYS | JSON_COMPACT);
        cr_log_error("got:  %s\nwant: %s", g ? g : "(null)", x);
        free(g);
        free(x);
    }
    json_decref(w);
    cr_expect(eq, "JSON differs");
}

#endif /* MESH_TESTS_COMPILE_FIXTURE_H */
