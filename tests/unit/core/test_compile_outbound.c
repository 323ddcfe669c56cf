/*
 * The outbound traffic policy (compile_outbound.c, docs/compile.md "Outbound traffic
 * policy"): the outbound listener's "unmatched", the PassthroughCluster, the HTTP ports,
 * which Sidecar decides, the mesh-wide default, and the egressProxy warning.
 */
#include "compile_fixture.h"

/* reviews (HTTP 9080), ratings (HTTP 8080 and 9080), db (TCP 5432) */
#define OUTBOUND_MESH                                                                              \
    REVIEWS_SVC                                                                                    \
    "---\n"                                                                                        \
    "apiVersion: v1\n"                                                                             \
    "kind: Service\n"                                                                              \
    "metadata: {name: ratings, namespace: default}\n"                                              \
    "spec:\n"                                                                                      \
    "  clusterIP: 10.96.0.11\n"                                                                    \
    "  ports: [{name: http-alt, port: 8080}, {name: http, port: 9080}]\n"                          \
    "---\n"                                                                                        \
    "apiVersion: v1\n"                                                                             \
    "kind: Service\n"                                                                              \
    "metadata: {name: db, namespace: default}\n"                                                   \
    "spec:\n"                                                                                      \
    "  clusterIP: 10.96.0.12\n"                                                                    \
    "  ports: [{name: tcp-pg, port: 5432}]\n"

#define SIDECAR(name, ns, extra, mode)                                                             \
    "---\n"                                                                                        \
    "apiVersion: networking.istio.io/v1\n"                                                         \
    "kind: Sidecar\n"                                                                              \
    "metadata: {name: " name ", namespace: " ns "}\n"                                              \
    "spec:\n" extra "  outboundTrafficPolicy: {mode: " mode "}\n"

static json_t *outbound_listener(void)
{
    return find_named(json_object_get(snap, "listeners"), "outbound");
}

static const char *unmatched_action(void)
{
    return jstr(outbound_listener(), "unmatched.action");
}

static json_t *compile_labels(const char *ns, const struct mesh_kv *labels, size_t n,
                              bool registry_only)
{
    struct mesh_node node;
    node_for(&node, ns, "client", labels, n);
    node.registry_only = registry_only;
    return compile_node(&node);
}

COMPILE_TEST(allow_any_by_default)
{
    load(OUTBOUND_MESH);
    compile_in("default");
    json_t *l = outbound_listener();
    cr_assert(l);
    expect_json(json_object_get(l, "unmatched"),
                "{\"action\": \"passthrough\", \"cluster\": \"PassthroughCluster\","
                " \"http_ports\": [8080, 9080]}");
    json_t *pc = cluster("PassthroughCluster");
    cr_assert(pc, "the PassthroughCluster is in the snapshot");
    cr_expect_str_eq(jstr(pc, "lb_policy"), "passthrough");
    cr_expect_eq(json_array_size(json_object_get(pc, "endpoints")), 0);
    cr_expect_eq(jint(pc, "connect_timeout_ms"), 10000, "Istio's connectTimeout");
    cr_expect_str_eq(jstr(pc, "protocol"), "http1");
    /* the TCP port keeps its tcp_route; only HTTP ports are listed */
    cr_expect_eq(json_array_size(json_object_get(l, "tcp_routes")), 1);
}

COMPILE_TEST(registry_only_mesh_wide)
{
    load(OUTBOUND_MESH);
    compile_labels("default", NULL, 0, true);
    expect_json(json_object_get(outbound_listener(), "unmatched"),
                "{\"action\": \"refuse\", \"http_ports\": [8080, 9080]}");
    cr_expect_null(cluster("PassthroughCluster"), "nothing passes through: no such cluster");
}

COMPILE_TEST(no_http_service_no_http_ports)
{
    load("apiVersion: v1\n"
         "kind: Service\n"
         "metadata: {name: db, namespace: default}\n"
         "spec:\n"
         "  clusterIP: 10.96.0.12\n"
         "  ports: [{name: tcp-pg, port: 5432}]\n");
    compile_in("default");
    cr_expect_str_eq(unmatched_action(), "passthrough");
    cr_expect_null(json_object_get(json_object_get(outbound_listener(), "unmatched"), "http_ports"));
}

COMPILE_TEST(namespace_sidecar_overrides_the_mesh_default)
{
    load(OUTBOUND_MESH SIDECAR("default", "default", "", "REGISTRY_ONLY"));
    compile_labels("default", NULL, 0, false);
    cr_expect_str_eq(unmatched_action(), "refuse");
    /* a Sidecar that sets only the policy narrows nothing: every service is still seen */
    cr_expect_eq(json_array_size(vhosts()), 2);
    cr_expect(cluster("outbound|5432||db.default.svc.cluster.local"));

    load(OUTBOUND_MESH SIDECAR("default", "default", "", "ALLOW_ANY"));
    compile_labels("default", NULL, 0, true);
    cr_expect_str_eq(unmatched_action(), "passthrough", "ALLOW_ANY in the Sidecar wins");

    /* another namespace's Sidecar does not apply */
    load(OUTBOUND_MESH SIDECAR("default", "other", "", "REGISTRY_ONLY"));
    compile_in("default");
    cr_expect_str_eq(unmatched_action(), "passthrough");
}

COMPILE_TEST(selected_sidecar_decides)
{
    /* root namespace default, namespace default, and one for app=strict */
    load(OUTBOUND_MESH SIDECAR("root", "istio-system", "", "REGISTRY_ONLY")
             SIDECAR("strict", "default", "  workloadSelector: {labels: {app: strict}}\n",
                     "REGISTRY_ONLY"));
    struct mesh_kv strict[] = {{"app", "strict"}}, web[] = {{"app", "web"}};
    compile_labels("default", strict, 1, false);
    cr_expect_str_eq(unmatched_action(), "refuse", "the workloadSelector Sidecar applies");
    compile_labels("default", web, 1, false);
    cr_expect_str_eq(unmatched_action(), "refuse", "no match in the namespace: the root's");
    compile_labels("other", web, 1, false);
    cr_expect_str_eq(unmatched_action(), "refuse", "the root namespace's applies everywhere");

    load(OUTBOUND_MESH SIDECAR("root", "istio-system", "", "REGISTRY_ONLY")
             SIDECAR("ns", "default", "", "ALLOW_ANY"));
    compile_labels("default", web, 1, false);
    cr_expect_str_eq(unmatched_action(), "passthrough", "the namespace's before the root's");
    compile_labels("other", web, 1, false);
    cr_expect_str_eq(unmatched_action(), "refuse");

    /* a Sidecar with egress but no policy: the mesh-wide default */
    load(OUTBOUND_MESH "---\n"
                       "apiVersion: networking.istio.io/v1\n"
                       "kind: Sidecar\n"
                       "metadata: {name: default, namespace: default}\n"
                       "spec:\n"
                       "  egress: [{hosts: [\"./*\"]}]\n");
    compile_labels("default", NULL, 0, true);
    cr_expect_str_eq(unmatched_action(), "refuse");
    compile_labels("default", NULL, 0, false);
    cr_expect_str_eq(unmatched_action(), "passthrough");
}

COMPILE_TEST(egress_proxy_warns)
{
    load(OUTBOUND_MESH "---\n"
                       "apiVersion: networking.istio.io/v1\n"
                       "kind: Sidecar\n"
                       "metadata: {name: default, namespace: default}\n"
                       "spec:\n"
                       "  outboundTrafficPolicy:\n"
                       "    mode: ALLOW_ANY\n"
                       "    egressProxy: {host: egress.example.com, port: {number: 443}}\n");
    compile_in("default");
    cr_expect_str_eq(unmatched_action(), "passthrough");
    cr_expect(has_diag(MESH_DIAG_WARNING, "Sidecar default/default",
                       "spec.outboundTrafficPolicy.egressProxy", "egressProxy is not supported"));
}

COMPILE_TEST(gateways_have_no_unmatched)
{
    load(REVIEWS_SVC "---\n"
                     "apiVersion: networking.istio.io/v1\n"
                     "kind: Gateway\n"
                     "metadata: {name: gw, namespace: istio-system}\n"
                     "spec:\n"
                     "  selector: {istio: ingressgateway}\n"
                     "  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: [\"*\"]}]\n"
                     "---\n"
                     "apiVersion: networking.istio.io/v1\n"
                     "kind: VirtualService\n"
                     "metadata: {name: r, namespace: default}\n"
                     "spec:\n"
                     "  hosts: [\"*\"]\n"
                     "  gateways: [istio-system/gw]\n"
                     "  http: [{route: [{destination: {host: reviews}}]}]\n");
    struct mesh_kv lab[] = {{"istio", "ingressgateway"}};
    struct mesh_node n;
    node_for(&n, "istio-system", "ingressgateway", lab, 1);
    n.role = MESH_NODE_GATEWAY;
    compile_node(&n);
    json_t *l = json_array_get(json_object_get(snap, "listeners"), 0);
    cr_assert(l);
    cr_expect_null(json_object_get(l, "unmatched"));
    cr_expect_null(cluster("PassthroughCluster"));
}
