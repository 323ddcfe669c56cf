/* Registration leases on a temporary store, driven by a fake clock (no sockets, no timers). */
#include "core/common.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "core/store.h"
#include "roles/control_registry.h"
#include "../leakcheck.h"

static char dir[64], path[128];
static struct mesh_store *st;
static struct mesh_registry *reg;
static int64_t clock_ms = 1000000;
static json_t *ans;
static int pushes;

static int64_t fake_now(void *arg)
{
    (void)arg;
    return clock_ms;
}

static void on_change(void *arg)
{
    (*(int *)arg)++;
}

static void open_registry(void)
{
    struct mesh_err err;
    mesh_err_init(&err, path);
    struct mesh_registry_opts o = {.now_ms = fake_now};
    reg = mesh_registry_new(st, &o, &err);
    cr_assert_not_null(reg);
    mesh_registry_on_change(reg, on_change, &pushes);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/meshd-reg-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/store.db", dir);
    struct mesh_err err;
    mesh_err_init(&err, path);
    cr_assert_eq(mesh_store_open(path, NULL, &st, &err), MESH_OK);
    pushes = 0;
    open_registry();
}

static void teardown(void)
{
    json_decref(ans);
    ans = NULL;
    mesh_registry_free(reg);
    mesh_store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(lease, .init = setup, .fini = teardown);

static int call(const char *method, char *const *segs, size_t n, const char *body)
{
    json_decref(ans);
    ans = NULL;
    int st_code = mesh_registry_serve(reg, method, segs, n, body ? body : "",
                                      body ? strlen(body) : 0, &ans);
    cr_assert_not_null(ans);
    return st_code;
}

static int post(const char *body)
{
    static char v1[] = "v1", r[] = "register";
    char *segs[] = {v1, r};
    return call("POST", segs, 2, body);
}

static const char *op(void)
{
    return json_string_value(json_object_get(ans, "op"));
}

/* The WorkloadEntry in the store, or NULL. Caller decrefs. */
static json_t *stored(const char *ns, const char *name)
{
    json_t *o = NULL;
    if (mesh_store_get(st, "WorkloadEntry", ns, name, &o, NULL) != MESH_OK)
        return NULL;
    return o;
}

#define REG_A                                                                                      \
    "{\"namespace\": \"default\", \"name\": \"reviews-1\", \"service\": \"reviews\", "           \
    "\"address\": \"10.0.0.5\", \"ports\": {\"http\": 9080}, \"labels\": {\"version\": \"v1\"}, " \
    "\"locality\": \"r1/z1\", \"ttl_s\": 10}"

Test(lease, register_renew_expire)
{
    cr_assert_eq(post(REG_A), 200, "%s", json_dumps(ans, 0));
    cr_expect_str_eq(op(), "created");
    cr_expect_eq(pushes, 1);
    json_t *we = stored("default", "reviews-1");
    cr_assert(we);
    json_t *spec = json_object_get(we, "spec");
    cr_expect_str_eq(json_string_value(json_object_get(spec, "address")), "10.0.0.5");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(spec, "labels"), "app")),
                     "reviews");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(spec, "ports"), "http")), 9080);
    cr_expect_str_eq(json_string_value(json_object_get(spec, "locality")), "r1/z1");
    json_decref(we);
    int64_t rev0;
    mesh_store_revision(st, &rev0, NULL);

    /* renewals before the deadline: no write, no push */
    clock_ms += 9000;
    cr_expect_eq(mesh_registry_expire(reg), 0);
    cr_assert_eq(post(REG_A), 200);
    cr_expect_str_eq(op(), "renewed");
    cr_expect_eq(json_integer_value(json_object_get(ans, "expires_in_ms")), 10000);
    int64_t rev1;
    mesh_store_revision(st, &rev1, NULL);
    cr_expect_eq(rev1, rev0);
    cr_expect_eq(pushes, 1);

    /* 9.999 s later still there; at 10 s gone */
    clock_ms += 9999;
    cr_expect_eq(mesh_registry_expire(reg), 0);
    cr_expect_eq(mesh_registry_count(reg), 1);
    clock_ms += 1;
    cr_expect_eq(mesh_registry_expire(reg), 1);
    cr_expect_eq(mesh_registry_count(reg), 0);
    cr_expect_null(stored("default", "reviews-1"));
    cr_expect_eq(pushes, 2);
    cr_expect_eq(mesh_registry_changes(reg), 2);
    mesh_assert_no_leaks();
}

Test(lease, change_deregister_and_ttl_zero)
{
    cr_assert_eq(post(REG_A), 200);
    /* a new address is a change: written and pushed */
    cr_assert_eq(post("{\"namespace\": \"default\", \"name\": \"reviews-1\", \"service\": "
                      "\"reviews\", \"address\": \"10.0.0.6\", \"ports\": {\"http\": 9080}, "
                      "\"labels\": {\"version\": \"v1\"}, \"locality\": \"r1/z1\", \"ttl_s\": 10}"),
                 200);
    cr_expect_str_eq(op(), "configured");
    cr_expect_eq(pushes, 2);
    json_t *we = stored("default", "reviews-1");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(we, "spec"), "address")),
                     "10.0.0.6");
    json_decref(we);
    /* DELETE */
    static char v1[] = "v1", r[] = "register", ns[] = "default", nm[] = "reviews-1";
    char *segs[] = {v1, r, ns, nm};
    cr_expect_eq(call("DELETE", segs, 4, NULL), 200);
    cr_expect_str_eq(op(), "deleted");
    cr_expect_null(stored("default", "reviews-1"));
    cr_expect_eq(call("DELETE", segs, 4, NULL), 404);
    cr_expect_eq(pushes, 3);
    /* ttl 0 deregisters too */
    cr_assert_eq(post(REG_A), 200);
    cr_expect_eq(post("{\"namespace\": \"default\", \"name\": \"reviews-1\", \"address\": "
                      "\"10.0.0.5\", \"ttl_s\": 0}"),
                 200);
    cr_expect_str_eq(op(), "deleted");
    cr_expect_eq(mesh_registry_count(reg), 0);
    mesh_assert_no_leaks();
}

/* A restarted control plane finds its leases in the store, each with a full TTL from then. */
Test(lease, survives_restart_until_ttl)
{
    cr_assert_eq(post(REG_A), 200);
    clock_ms += 8000;
    mesh_registry_free(reg);
    open_registry(); /* "restart" 8 s into a 10 s lease */
    cr_expect_eq(mesh_registry_count(reg), 1);
    static char v1[] = "v1", ry[] = "registry";
    char *segs[] = {v1, ry};
    cr_assert_eq(call("GET", segs, 2, NULL), 200);
    json_t *item = json_array_get(json_object_get(ans, "items"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(item, "service")), "reviews");
    cr_expect_eq(json_integer_value(json_object_get(item, "ttl_s")), 10);
    cr_expect_eq(json_integer_value(json_object_get(item, "expires_in_ms")), 10000);
    /* the sidecar's next renewal is recognised as one (no write) */
    cr_assert_eq(post(REG_A), 200);
    cr_expect_str_eq(op(), "renewed");
    cr_expect_eq(pushes, 1);
    clock_ms += 10000;
    cr_expect_eq(mesh_registry_expire(reg), 1);
    cr_expect_null(stored("default", "reviews-1"));
    mesh_assert_no_leaks();
}

Test(lease, bad_registrations)
{
    cr_expect_eq(post("not json"), 400);
    cr_expect_eq(post("[]"), 400);
    cr_expect_eq(post("{\"namespace\": \"default\"}"), 400);
    char *d = json_dumps(json_object_get(ans, "details"), 0);
    cr_expect(strstr(d, "name: is required") && strstr(d, "address: is required"), "%s", d);
    free(d);
    cr_expect_eq(post("{\"namespace\": \"Bad_NS\", \"name\": \"a\", \"address\": \"nope\", "
                      "\"ports\": {\"http\": 70000}, \"ttl_s\": -1, \"colour\": 1, \"labels\": "
                      "{\"k\": 5}}"),
                 400);
    d = json_dumps(json_object_get(ans, "details"), 0);
    static const char *const want[] = {"colour: unknown field", "namespace: 'Bad_NS'",
                                       "address: 'nope'", "ports: http: must be a port",
                                       "ttl_s: must be", "labels: k: must be a string"};
    for (size_t i = 0; i < MESH_ARRAY_LEN(want); i++)
        cr_expect(strstr(d, want[i]), "missing '%s' in %s", want[i], d);
    free(d);
    cr_expect_eq(mesh_registry_count(reg), 0);
    cr_expect_eq(pushes, 0);
    /* a WorkloadEntry written by hand is not taken over */
    json_t *doc = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s}}", "apiVersion",
                            "networking.istio.io/v1", "kind", "WorkloadEntry", "metadata", "name",
                            "reviews-1", "namespace", "default", "spec", "address", "10.9.9.9");
    cr_assert_eq(mesh_store_apply(st, doc, NULL, NULL, NULL, NULL), MESH_OK);
    json_decref(doc);
    cr_expect_eq(post(REG_A), 409);
    mesh_assert_no_leaks();
}
