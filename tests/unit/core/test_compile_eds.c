/*
 * The control plane's endpoint path (docs/control.md "Push"): mesh_compile_clusters() gives
 * the clusters of the services whose endpoints changed exactly as a whole compile does, and
 * the version composes (compile.h), so a delta's version is the one a whole compile of the
 * new state gives. Also the resource set's in-place updates the path relies on (the proxy's
 * side is test_snapshot_delta.c).
 */
#include "compile_fixture.h"

#define SLICE(name, svc, ip)                                                                       \
    "---\n"                                                                                        \
    "apiVersion: discovery.k8s.io/v1\n"                                                            \
    "kind: EndpointSlice\n"                                                                        \
    "metadata: {name: " name ", namespace: shop, labels: {kubernetes.io/service-name: " svc "}}\n" \
    "addressType: IPv4\n"                                                                          \
    "ports: [{name: http, port: 8080}]\n"                                                          \
    "endpoints: [{addresses: [" ip "]}, {addresses: [10.9.9.9]}]\n"

#define SVC(name, ip)                                                                              \
    "---\n"                                                                                        \
    "apiVersion: v1\n"                                                                             \
    "kind: Service\n"                                                                              \
    "metadata: {name: " name ", namespace: shop}\n"                                                \
    "spec:\n"                                                                                      \
    "  clusterIP: " ip "\n"                                                                        \
    "  selector: {app: " name "}\n"                                                                \
    "  ports: [{name: http, port: 80, targetPort: 8080}]\n"

#define DR_CART                                                                                    \
    "---\n"                                                                                        \
    "apiVersion: networking.istio.io/v1\n"                                                         \
    "kind: DestinationRule\n"                                                                      \
    "metadata: {name: cart, namespace: shop}\n"                                                    \
    "spec:\n"                                                                                      \
    "  host: cart\n"                                                                               \
    "  subsets: [{name: v1, labels: {version: v1}}]\n"

#define MESH SVC("cart", "10.96.1.1") SVC("pay", "10.96.1.2") DR_CART

static void content_node(struct mesh_node *n, const char *ns)
{
    node_for(n, ns, "client", NULL, 0);
    n->version = NULL; /* the content hash */
}

/* The version text for rest + the sum of the cluster hashes of <s>. */
static void composed_version(json_t *s, char out[24])
{
    uint64_t h = mesh_compile_rest_hash(s);
    size_t i;
    json_t *cl;
    json_array_foreach(json_object_get(s, "clusters"), i, cl)
        h += mesh_compile_hash(cl);
    mesh_compile_version_text(h, out);
}

static json_t *whole(const char *ns)
{
    struct mesh_node n;
    content_node(&n, ns);
    return json_incref(compile_node(&n));
}

COMPILE_TEST(version_is_the_sum_of_its_parts)
{
    load(MESH SLICE("cart-a", "cart", "10.1.0.1") SLICE("pay-a", "pay", "10.2.0.1"));
    json_t *s = whole("web");
    char v[24];
    composed_version(s, v);
    cr_expect_str_eq(jstr(s, "version"), v);
    json_decref(s);
}

COMPILE_TEST(clusters_of_the_scope_match_a_whole_compile)
{
    load(MESH SLICE("cart-a", "cart", "10.1.0.1") SLICE("pay-a", "pay", "10.2.0.1"));
    json_t *before = whole("web");
    /* the update: cart's slice moves to another address, replaced in place */
    const char *upd = SLICE("cart-a", "cart", "10.1.0.7");
    cr_assert_eq(mesh_resource_load_buffer(&set, upd, strlen(upd), "update", MESH_LOAD_REPLACE),
                 MESH_OK);
    cr_expect_eq(set.diags.n_warnings, 0, "a replacement is not a duplicate");

    static const char *const scope[] = {"shop/cart"};
    struct mesh_compile_only only = {.services = scope, .n = 1};
    struct mesh_node n;
    content_node(&n, "web");
    json_t *part = NULL;
    cr_assert_eq(mesh_compile_clusters(&set, &n, &only, &part, &diags), MESH_OK);
    /* cart:80 plain and subset v1 (sorted by name: 'v' < '|'); nothing of pay */
    cr_assert_eq(json_array_size(part), 2);
    cr_expect_str_eq(jstr(json_array_get(part, 0), "name"),
                     "outbound|80|v1|cart.shop.svc.cluster.local");
    cr_expect_str_eq(jstr(json_array_get(part, 1), "name"),
                     "outbound|80||cart.shop.svc.cluster.local");

    json_t *after = whole("web");
    /* each cluster is the whole compile's, and the old version plus the changes is the new */
    char v[24];
    uint64_t h = mesh_compile_rest_hash(before);
    size_t i;
    json_t *cl;
    json_array_foreach(json_object_get(before, "clusters"), i, cl) {
        json_t *now = find_named(part, jstr(cl, "name"));
        h += mesh_compile_hash(now ? now : cl);
        if (now)
            cr_expect(json_equal(now, find_named(json_object_get(after, "clusters"),
                                                 jstr(cl, "name"))));
    }
    mesh_compile_version_text(h, v);
    cr_expect_str_eq(jstr(after, "version"), v);
    cr_expect_str_neq(jstr(before, "version"), v);
    json_decref(part);
    json_decref(before);
    json_decref(after);
}

COMPILE_TEST(namespace_scope_takes_every_service_there)
{
    load(MESH SLICE("cart-a", "cart", "10.1.0.1"));
    static const char *const scope[] = {"shop/*"};
    struct mesh_compile_only only = {.services = scope, .n = 1};
    struct mesh_node n;
    content_node(&n, "web");
    json_t *part = NULL;
    cr_assert_eq(mesh_compile_clusters(&set, &n, &only, &part, &diags), MESH_OK);
    cr_expect_eq(json_array_size(part), 3, "cart, cart v1 and pay");
    json_decref(part);
}

COMPILE_TEST(headless_and_gateways_need_a_whole_compile)
{
    load("apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: shop}\n"
         "spec:\n  clusterIP: None\n  ports: [{name: tcp, port: 5432}]\n");
    static const char *const scope[] = {"shop/db"};
    struct mesh_compile_only only = {.services = scope, .n = 1};
    struct mesh_node n;
    content_node(&n, "web");
    json_t *part = NULL;
    cr_expect_eq(mesh_compile_clusters(&set, &n, &only, &part, &diags), MESH_EINVAL,
                 "a headless service's endpoints are in the DNS table");
    cr_expect_null(part);
    n.role = MESH_NODE_GATEWAY;
    cr_expect_eq(mesh_compile_clusters(&set, &n, &only, &part, &diags), MESH_EINVAL);
}

COMPILE_TEST(set_remove_keeps_the_index)
{
    load(MESH SLICE("cart-a", "cart", "10.1.0.1") SLICE("pay-a", "pay", "10.2.0.1"));
    size_t n = set.n;
    cr_assert(mesh_resource_set_remove(&set, "Service/shop/cart"));
    cr_expect(!mesh_resource_set_remove(&set, "Service/shop/cart"));
    cr_expect_eq(set.n, n - 1);
    cr_expect_null(mesh_resource_set_find(&set, "Service/shop/cart"));
    /* every other key still finds its own resource */
    for (size_t i = 0; i < set.n; i++)
        cr_expect_eq(mesh_resource_set_find(&set, set.items[i]->key), set.items[i]);
}
