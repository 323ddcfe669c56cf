/* The control plane's resource API, request by request, on a temporary store (no sockets). */
#include "core/common.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include "core/store.h"
#include "roles/control_api.h"
#include "../leakcheck.h"

#define TOKEN "0123456789abcdef0123456789abcdef"

static char dir[64];
static struct mesh_store *st;
static struct mesh_control_api *api;
static struct mesh_api_response resp;
static json_t *js; /* resp's body parsed, when JSON */

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/meshd-api-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/store.db", dir);
    struct mesh_err err;
    mesh_err_init(&err, path);
    cr_assert_eq(mesh_store_open(path, NULL, &st, &err), MESH_OK);
    api = mesh_control_api_new(st, TOKEN);
    cr_assert_not_null(api);
}

static void teardown(void)
{
    json_decref(js);
    js = NULL;
    mesh_api_response_free(&resp);
    mesh_control_api_free(api);
    mesh_store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(api);

#define API_TEST(name) LEAK_TEST_OPTS(api, name, .init = setup, .fini = teardown)

/* Serves one request; <auth> NULL sends no Authorization header. Returns the status. */
static int req_from(bool loopback, const char *method, const char *target, const char *auth,
                    const char *body)
{
    json_decref(js);
    js = NULL;
    mesh_api_response_free(&resp);
    char hdr[128];
    if (auth)
        snprintf(hdr, sizeof(hdr), "Bearer %s", auth);
    struct mesh_api_request r = {
        .method = method, .method_len = strlen(method), .target = target,
        .target_len = strlen(target), .authorization = auth ? hdr : NULL,
        .authorization_len = auth ? strlen(hdr) : 0, .body = body ? body : "",
        .body_len = body ? strlen(body) : 0, .peer_loopback = loopback};
    mesh_control_api_serve(api, &r, &resp);
    cr_assert_not_null(resp.body);
    if (resp.content_type && strcmp(resp.content_type, "application/json") == 0) {
        json_error_t je;
        js = json_loadb(resp.body, resp.len, 0, &je);
        cr_assert_not_null(js, "not JSON: %s", resp.body);
    }
    return resp.status;
}

static int req(const char *method, const char *target, const char *auth, const char *body)
{
    return req_from(true, method, target, auth, body);
}

static const char *str_at(const char *path)
{
    /* "a.b.0.c": objects by key, arrays by index */
    json_t *v = js;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *tok = strtok(buf, "."); tok && v; tok = strtok(NULL, "."))
        v = json_is_array(v) ? json_array_get(v, (size_t)atoi(tok)) : json_object_get(v, tok);
    return json_string_value(v);
}

static long long int_at(const char *key)
{
    return (long long)json_integer_value(json_object_get(js, key));
}

static const char vs_yaml[] = "apiVersion: networking.istio.io/v1beta1\n"
                              "kind: VirtualService\n"
                              "metadata:\n"
                              "  name: reviews\n"
                              "  labels:\n"
                              "    app: reviews\n"
                              "spec:\n"
                              "  hosts: [reviews]\n"
                              "  http:\n"
                              "  - route:\n"
                              "    - destination:\n"
                              "        host: reviews\n"
                              "        subset: v1\n"
                              "---\n"
                              "apiVersion: networking.istio.io/v1beta1\n"
                              "kind: DestinationRule\n"
                              "metadata:\n"
                              "  name: reviews\n"
                              "spec:\n"
                              "  host: reviews\n";

API_TEST(healthz_and_revision)
{
    cr_expect_eq(req("GET", "/healthz", NULL, NULL), 200);
    cr_expect_str_eq(str_at("status"), "ok");
    cr_expect_eq(req("GET", "/v1/revision", NULL, NULL), 200);
    cr_expect_eq(int_at("revision"), 0);
    cr_expect_eq(req("POST", "/healthz", NULL, NULL), 405);
    cr_expect_str_eq(resp.allow, "GET");
    cr_expect_eq(req("GET", "/v2/x", NULL, NULL), 404);
    cr_expect_eq(req("GET", "/v1/revision?x=1", NULL, NULL), 400);
    cr_expect_eq(req("GET", "/v1/revision?%ff%fe=1", NULL, NULL), 400);
    cr_expect_not_null(str_at("error"), "bytes that are not UTF-8 still give a message");
    cr_expect_eq(req("GET", "/v1/resources/vs/Bad_NS/x", NULL, NULL), 400);
    cr_expect_eq(req("PUT", "/v1/resources/vs/%2e%2e/x", TOKEN, "kind: x"), 400);
}

API_TEST(auth)
{
    cr_expect_eq(req("POST", "/v1/apply", NULL, vs_yaml), 401);
    cr_expect(resp.auth_challenge);
    cr_expect_eq(req("POST", "/v1/apply", "wrong", vs_yaml), 401);
    cr_expect_eq(req("POST", "/v1/apply", TOKEN "x", vs_yaml), 401);
    cr_expect_eq(req("GET", "/v1/resources", "wrong", NULL), 401, "a wrong token is refused");
    cr_expect_eq(req("GET", "/v1/resources", NULL, NULL), 200, "loopback reads need none");
    cr_expect_eq(req_from(false, "GET", "/v1/resources", NULL, NULL), 401);
    cr_expect_eq(req_from(false, "GET", "/v1/resources", TOKEN, NULL), 200);
    cr_expect_eq(req_from(false, "GET", "/healthz", NULL, NULL), 200, "health is open");
    cr_expect_eq(req("GET", "/v1/revision", NULL, NULL), 200);
    cr_expect_eq(int_at("revision"), 0, "nothing was written");
}

API_TEST(apply_get_list)
{
    cr_assert_eq(req("POST", "/v1/apply", TOKEN, vs_yaml), 200, "%s", resp.body);
    cr_expect_eq(int_at("revision"), 1);
    cr_expect_str_eq(str_at("results.0.kind"), "VirtualService");
    cr_expect_str_eq(str_at("results.0.namespace"), "default");
    cr_expect_str_eq(str_at("results.0.result"), "created");
    cr_expect_str_eq(str_at("results.0.resourceVersion"), "1");
    cr_expect_str_eq(str_at("results.1.kind"), "DestinationRule");
    cr_assert_eq(req("POST", "/v1/apply", TOKEN, vs_yaml), 200);
    cr_expect_str_eq(str_at("results.0.result"), "unchanged");
    cr_expect_eq(int_at("revision"), 1);

    cr_expect_eq(req("GET", "/v1/resources/vs/default/reviews", NULL, NULL), 200);
    cr_expect_str_eq(str_at("metadata.resourceVersion"), "1");
    cr_expect_str_eq(str_at("spec.http.0.route.0.destination.subset"), "v1");
    cr_expect_eq(req("GET", "/v1/resources/virtualservices/default/nope", NULL, NULL), 404);
    cr_expect_eq(req("GET", "/v1/resources/widgets/default/x", NULL, NULL), 400);

    cr_expect_eq(req("GET", "/v1/resources?kind=dr", NULL, NULL), 200);
    cr_expect_str_eq(str_at("kind"), "List");
    cr_expect_str_eq(str_at("metadata.resourceVersion"), "1");
    cr_expect_eq(json_array_size(json_object_get(js, "items")), 1);
    cr_expect_eq(req("GET", "/v1/resources", NULL, NULL), 200);
    cr_expect_eq(json_array_size(json_object_get(js, "items")), 2);
    cr_expect_eq(req("GET", "/v1/resources/vs/other", NULL, NULL), 200);
    cr_expect_eq(json_array_size(json_object_get(js, "items")), 0);
    cr_expect_eq(req("GET", "/v1/resources?labelSelector=app%20in%20(reviews%2Cx)", NULL, NULL),
                 200);
    cr_expect_eq(json_array_size(json_object_get(js, "items")), 1, "%s", resp.body);
    cr_expect_eq(req("GET", "/v1/resources?labelSelector=app+notin+(reviews)", NULL, NULL), 200);
    cr_expect_eq(json_array_size(json_object_get(js, "items")), 1, "the DR has no app label");
    cr_expect_eq(req("GET", "/v1/resources?labelSelector=in%20(", NULL, NULL), 400);
    cr_expect_eq(req("GET", "/v1/resources?kind=vs&namepsace=x", NULL, NULL), 400);
    cr_expect_eq(req("GET", "/v1/resources?kind=vs&kind=dr", NULL, NULL), 400);
    cr_expect_eq(req("GET", "/v1/resources/vs%zz", NULL, NULL), 400);
}

API_TEST(apply_errors_have_positions)
{
    const char *bad = "apiVersion: networking.istio.io/v1beta1\n"
                      "kind: VirtualService\n"
                      "metadata:\n"
                      "  name: bad\n"
                      "spec:\n"
                      "  hosts: [bad]\n"
                      "  http:\n"
                      "  - route:\n"
                      "    - destination:\n"
                      "        host: bad\n"
                      "      weight: 300\n";
    cr_assert_eq(req("POST", "/v1/apply", TOKEN, bad), 400);
    cr_expect_str_eq(str_at("details.0"), "body:11:15: VirtualService default/bad: "
                                          "spec.http[0].route[0].weight: must be between 0 and "
                                          "100");
    /* a JSON array: the loader sees it inside a List on the same line; columns are the body's */
    const char *arr = "[{\"apiVersion\":\"networking.istio.io/v1beta1\","
                      "\"kind\":\"DestinationRule\",\"metadata\":{\"name\":\"x\"},"
                      "\"spec\":{\"hostx\":\"x\"}}]";
    cr_assert_eq(req("POST", "/v1/apply", TOKEN, arr), 400);
    const char *d = str_at("details.0");
    cr_assert_not_null(d);
    int col = (int)(strstr(arr, "\"hostx\"") - arr) + 1;
    char want[64];
    snprintf(want, sizeof(want), "body:1:%d: DestinationRule default/x: spec.hostx", col);
    cr_expect(strncmp(d, want, strlen(want)) == 0, "got %s, want %s...", d, want);
    cr_expect_eq(req("POST", "/v1/apply", TOKEN, "  \n"), 400);
    cr_expect_eq(req("POST", "/v1/apply", TOKEN, "apiVersion: apps/v1\nkind: Deployment\n"
                                                 "metadata:\n  name: d\n"),
                 400, "only skipped kinds: nothing to apply");
    cr_expect_eq(req("GET", "/v1/revision", NULL, NULL), 200);
    cr_expect_eq(int_at("revision"), 0);
}

API_TEST(json_array_and_dry_run)
{
    const char *arr = "[{\"apiVersion\":\"networking.istio.io/v1beta1\","
                      "\"kind\":\"DestinationRule\",\"metadata\":{\"name\":\"a\","
                      "\"namespace\":\"prod\"},\"spec\":{\"host\":\"a\"}},"
                      "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"a\"},"
                      "\"spec\":{\"ports\":[{\"port\":80}]}}]";
    cr_assert_eq(req("POST", "/v1/apply?dryRun=1", TOKEN, arr), 200, "%s", resp.body);
    cr_expect_str_eq(str_at("results.0.result"), "created");
    cr_expect(json_is_true(json_object_get(js, "dryRun")));
    cr_expect_eq(int_at("revision"), 0);
    cr_assert_eq(req("POST", "/v1/apply?note=first", TOKEN, arr), 200);
    cr_expect_eq(int_at("revision"), 1);
    cr_expect_str_eq(str_at("results.0.namespace"), "prod");
    cr_assert_eq(req("POST", "/v1/apply?dryRun=true", TOKEN, arr), 200);
    cr_expect_str_eq(str_at("results.0.result"), "unchanged");
    cr_expect_str_eq(str_at("results.1.result"), "unchanged");
    cr_expect_eq(req("POST", "/v1/apply?dryRun=maybe", TOKEN, arr), 400);
    cr_expect_eq(req("POST", "/v1/apply?note=a%0Ab", TOKEN, arr), 400, "no control characters");
    cr_expect_eq(req("GET", "/v1/history?objects=0", NULL, NULL), 200);
    cr_expect_str_eq(str_at("items.0.note"), "first");
    cr_expect_null(json_object_get(json_array_get(json_object_get(js, "items"), 0), "object"));
}

API_TEST(put_and_delete_with_resource_versions)
{
    const char *doc = "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
                      "metadata:\n  name: r\nspec:\n  host: r\n";
    cr_assert_eq(req("PUT", "/v1/resources/dr/prod/r", TOKEN, doc), 201, "%s", resp.body);
    cr_expect_str_eq(str_at("object.metadata.namespace"), "prod");
    cr_expect_str_eq(str_at("object.metadata.resourceVersion"), "1");
    cr_expect_eq(req("PUT", "/v1/resources/dr/prod/r", TOKEN, doc), 200);
    cr_expect_str_eq(str_at("results.0.result"), "unchanged");
    const char *v1 = "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
                     "metadata:\n  name: r\n  namespace: prod\n  resourceVersion: \"1\"\n"
                     "spec:\n  host: r2\n";
    cr_expect_eq(req("PUT", "/v1/resources/dr/prod/r", TOKEN, v1), 200);
    cr_expect_str_eq(str_at("results.0.result"), "configured");
    cr_expect_eq(req("PUT", "/v1/resources/dr/prod/r", TOKEN, v1), 409, "stale: %s", resp.body);
    cr_expect(strstr(str_at("error"), "has been modified") != NULL);
    cr_expect_eq(req("PUT", "/v1/resources/dr/other/r", TOKEN, v1), 400, "namespace mismatch");
    cr_expect_eq(req("PUT", "/v1/resources/vs/prod/r", TOKEN, doc), 400, "kind mismatch");
    cr_expect_eq(req("PUT", "/v1/resources/dr/prod/q", TOKEN, doc), 400, "name mismatch");
    char two[512];
    snprintf(two, sizeof(two), "%s---\n%s", doc, doc);
    cr_expect_eq(req("PUT", "/v1/resources/dr/prod/r", TOKEN, two), 400, "one document only");
    cr_expect_eq(req("PUT", "/v1/resources/dr/prod", TOKEN, doc), 405);

    cr_expect_eq(req("DELETE", "/v1/resources/dr/prod/r?resourceVersion=1", TOKEN, NULL), 409);
    cr_expect_eq(req("DELETE", "/v1/resources/dr/prod/r?resourceVersion=x", TOKEN, NULL), 400);
    cr_expect_eq(req("DELETE", "/v1/resources/dr/prod/r?resourceVersion=2", TOKEN, NULL), 200);
    cr_expect_eq(int_at("revision"), 3);
    cr_expect_str_eq(str_at("results.0.result"), "deleted");
    cr_expect_eq(req("DELETE", "/v1/resources/dr/prod/r", TOKEN, NULL), 404);
    cr_expect_eq(req("DELETE", "/v1/resources/dr/prod/r", NULL, NULL), 401);
}

API_TEST(history_diff_rollback)
{
    cr_assert_eq(req("POST", "/v1/apply", TOKEN, vs_yaml), 200);
    char v2[sizeof(vs_yaml)];
    memcpy(v2, vs_yaml, sizeof(vs_yaml));
    *strstr(v2, "subset: v1") = '\0';
    char body[1024];
    snprintf(body, sizeof(body), "%ssubset: v2%s", v2, strstr(vs_yaml, "subset: v1") + 10);
    cr_assert_eq(req("POST", "/v1/apply", TOKEN, body), 200, "%s", resp.body);
    cr_expect_eq(int_at("revision"), 2);

    cr_expect_eq(req("GET", "/v1/history?kind=vs&name=reviews", NULL, NULL), 200);
    cr_expect_eq(json_array_size(json_object_get(js, "items")), 2);
    cr_expect_str_eq(str_at("items.1.op"), "update");
    cr_expect_eq(req("GET", "/v1/history?kind=nope", NULL, NULL), 400);

    cr_expect_eq(req("GET", "/v1/diff?from=1&to=2", NULL, NULL), 200);
    cr_expect_str_eq(resp.content_type, "text/plain; charset=utf-8");
    cr_expect(strstr(resp.body, "-        subset: v1\n+        subset: v2\n") != NULL, "%s",
              resp.body);
    cr_expect_eq(req("GET", "/v1/diff?from=1", NULL, NULL), 200);
    cr_expect_eq(req("GET", "/v1/diff", NULL, NULL), 400, "from is required");
    cr_expect_eq(req("GET", "/v1/diff?from=9", NULL, NULL), 400);

    cr_expect_eq(req("POST", "/v1/rollback?to=1", NULL, NULL), 401);
    cr_expect_eq(req("POST", "/v1/rollback?to=1", TOKEN, NULL), 200);
    cr_expect_eq(int_at("revision"), 3);
    cr_expect_eq(int_at("previous"), 2);
    cr_expect_str_eq(str_at("changes.0.op"), "configured");
    cr_expect_eq(req("POST", "/v1/rollback?to=3", TOKEN, NULL), 200);
    cr_expect_eq(int_at("revision"), 3, "nothing to do");
    cr_expect_eq(req("POST", "/v1/rollback?to=42", TOKEN, NULL), 400);
    cr_expect_eq(req("POST", "/v1/rollback", TOKEN, NULL), 400);
    cr_expect_eq(req("GET", "/v1/resources/vs/default/reviews", NULL, NULL), 200);
    cr_expect_str_eq(str_at("spec.http.0.route.0.destination.subset"), "v1");
}

Test(api_misc, loopback_addresses)
{
    cr_expect(mesh_control_is_loopback("127.0.0.1"));
    cr_expect(mesh_control_is_loopback("127.9.8.7"));
    cr_expect(mesh_control_is_loopback("::1"));
    cr_expect(mesh_control_is_loopback("::ffff:127.0.0.1"));
    cr_expect(!mesh_control_is_loopback("10.0.0.1"));
    cr_expect(!mesh_control_is_loopback("::ffff:10.0.0.1"));
    cr_expect(!mesh_control_is_loopback("fd00::2"));
    cr_expect(!mesh_control_is_loopback("localhost"));
    cr_expect(!mesh_control_is_loopback(NULL));
    cr_expect_null(mesh_control_api_new(NULL, ""));
}
