/* The compiler: Istio/Kubernetes YAML -> snapshot JSON, checked by parsing it back. */
#include "compile_fixture.h"

/* ---- Tests ---- */

COMPILE_TEST(kubernetes_service_and_endpoints)
{
    load(REVIEWS_SVC);
    compile_in("default");
    cr_expect_str_eq(jstr(snap, "version"), "test");
    cr_expect_str_eq(jstr(snap, "admin.address"), "127.0.0.1");
    cr_expect_eq(jint(json_object_get(snap, "admin"), "port"), 15000);
    json_t *l = json_array_get(json_object_get(snap, "listeners"), 0);
    cr_expect_str_eq(jstr(l, "name"), "outbound");
    cr_expect_eq(jint(l, "port"), 15001);
    cr_expect_str_eq(jstr(l, "route_config"), "outbound");

    /* ready addresses only, sorted */
    cr_assert_eq(n_endpoints(REVIEWS_CLUSTER), 3);
    cr_expect_str_eq(endpoint_addr(REVIEWS_CLUSTER, 0), "10.1.0.1");
    cr_expect_str_eq(endpoint_addr(REVIEWS_CLUSTER, 2), "10.1.0.3");
    json_t *c = cluster(REVIEWS_CLUSTER);
    cr_expect_str_eq(jstr(c, "protocol"), "http1");
    cr_expect_str_eq(jstr(c, "lb_policy"), "least_request", "Istio's default");
    cr_expect_eq(jint(c, "connect_timeout_ms"), 10000);

    json_t *vh = vhost(REVIEWS_FQDN);
    cr_assert(vh);
    /* same namespace: the short name too (Istio's domains) */
    cr_expect(has_domain(vh, REVIEWS_FQDN));
    cr_expect(has_domain(vh, "reviews"));
    cr_expect(has_domain(vh, "reviews.default"));
    cr_expect(has_domain(vh, "reviews.default.svc"));
    cr_expect(has_domain(vh, "10.96.0.10"));
    cr_expect_eq(json_array_size(json_object_get(vh, "routes")), 1);
    cr_expect_str_eq(jstr(route(vh, 0), "match.prefix"), "/");
    cr_expect_str_eq(jstr(route(vh, 0), "route.cluster"), REVIEWS_CLUSTER);
    /* Istio's default retry policy on the default route */
    json_t *retry = json_object_get(json_object_get(route(vh, 0), "route"), "retry");
    cr_expect_eq(jint(retry, "attempts"), 2);
}

COMPILE_TEST(other_namespace_has_no_short_name)
{
    load(REVIEWS_SVC);
    compile_in("shop");
    json_t *vh = vhost(REVIEWS_FQDN);
    cr_assert(vh);
    cr_expect(!has_domain(vh, "reviews"));
    cr_expect(has_domain(vh, "reviews.default"));
}

COMPILE_TEST(host_expansion_by_virtual_service_namespace)
{
    load(REVIEWS_SVC RATINGS_SVC("default") RATINGS_SVC("shop")
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: VirtualService\n"
         "metadata: {name: reviews, namespace: default}\n"
         "spec:\n"
         "  hosts: [reviews]\n"
         "  http:\n"
         "  - match: [{uri: {prefix: /ratings}}]\n"
         "    route: [{destination: {host: ratings}}]\n"
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: VirtualService\n"
         "metadata: {name: ratings, namespace: shop}\n"
         "spec:\n"
         "  hosts: [ratings]\n"
         "  http:\n"
         "  - route: [{destination: {host: reviews.default.svc.cluster.local}}]\n");
    compile_in("shop");
    /* "reviews" in namespace default means reviews.default..., "ratings" too */
    json_t *vh = vhost(REVIEWS_FQDN);
    cr_assert(vh);
    cr_expect_str_eq(jstr(route(vh, 0), "match.prefix"), "/ratings");
    cr_expect_str_eq(jstr(route(vh, 0), "route.cluster"),
                     "outbound|9080||ratings.default.svc.cluster.local");
    /* "ratings" in namespace shop is ratings.shop..., not ratings.default... */
    json_t *rd = vhost("ratings.default.svc.cluster.local");
    cr_expect_str_eq(jstr(route(rd, 0), "route.cluster"),
                     "outbound|9080||ratings.default.svc.cluster.local");
    json_t *rs = vhost("ratings.shop.svc.cluster.local");
    cr_expect_str_eq(jstr(route(rs, 0), "route.cluster"), REVIEWS_CLUSTER);
    cr_expect(has_domain(rs, "ratings"));
}

COMPILE_TEST(first_match_wins_and_or_matches)
{
    load(REVIEWS_SVC RATINGS_SVC("default")
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: VirtualService\n"
         "metadata: {name: reviews, namespace: default}\n"
         "spec:\n"
         "  hosts: [reviews]\n"
         "  http:\n"
         "  - match: [{uri: {exact: /health}}, {uri: {prefix: /status/}}]\n"
         "    directResponse: {status: 200, body: {string: ok}}\n"
         "  - match: [{uri: {prefix: /r}}]\n"
         "    timeout: 2.5s\n"
         "    route: [{destination: {host: ratings}}]\n"
         "  - route: [{destination: {host: reviews}}]\n");
    compile_in("default");
    json_t *vh = vhost(REVIEWS_FQDN);
    cr_assert_eq(json_array_size(json_object_get(vh, "routes")), 4);
    cr_expect_str_eq(jstr(route(vh, 0), "match.path"), "/health");
    cr_expect_eq(jint(json_object_get(route(vh, 0), "direct_response"), "status"), 200);
    cr_expect_str_eq(jstr(route(vh, 0), "direct_response.body"), "ok");
    cr_expect_str_eq(jstr(route(vh, 1), "match.prefix"), "/status/");
    cr_expect_str_eq(jstr(route(vh, 2), "match.prefix"), "/r");
    cr_expect_eq(jint(json_object_get(route(vh, 2), "route"), "timeout_ms"), 2500);
    /* the VS ends with a catch-all: no extra default route */
    cr_expect_str_eq(jstr(route(vh, 3), "match.prefix"), "/");
    cr_expect_str_eq(jstr(route(vh, 3), "route.cluster"), REVIEWS_CLUSTER);
}

COMPILE_TEST(export_to)
{
    load("apiVersion: v1\n"
         "kind: Service\n"
         "metadata:\n"
         "  name: private\n"
         "  namespace: a\n"
         "  annotations: {networking.istio.io/exportTo: \".\"}\n"
         "spec: {ports: [{name: http, port: 80}]}\n"
         "---\n"
         "apiVersion: v1\n"
         "kind: Service\n"
         "metadata:\n"
         "  name: shared\n"
         "  namespace: a\n"
         "  annotations: {networking.istio.io/exportTo: \"., b , c\"}\n"
         "spec: {ports: [{name: http, port: 80}]}\n"
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: ServiceEntry\n"
         "metadata: {name: ext, namespace: a}\n"
         "spec:\n"
         "  hosts: [api.example.com]\n"
         "  exportTo: [\".\"]\n"
         "  ports: [{number: 80, name: http, protocol: HTTP}]\n"
         "  resolution: STATIC\n"
         "  endpoints: [{address: 192.0.2.1}]\n"
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: VirtualService\n"
         "metadata: {name: shared, namespace: a}\n"
         "spec:\n"
         "  hosts: [shared]\n"
         "  exportTo: [\".\"]\n"
         "  http: [{match: [{uri: {prefix: /v2}}], route: [{destination: {host: private}}]}]\n");
    compile_in("a");
    cr_expect(vhost("private.a.svc.cluster.local"));
    cr_expect(vhost("api.example.com"));
    cr_expect_eq(json_array_size(json_object_get(vhost("shared.a.svc.cluster.local"), "routes")),
                 2, "the VirtualService applies in its own namespace");

    compile_in("b");
    cr_expect_null(vhost("private.a.svc.cluster.local"));
    cr_expect_null(cluster("outbound|80||private.a.svc.cluster.local"));
    cr_expect_null(vhost("api.example.com"));
    json_t *vh = vhost("shared.a.svc.cluster.local");
    cr_assert(vh, "exported to b");
    cr_expect_eq(json_array_size(json_object_get(vh, "routes")), 1,
                 "the VirtualService is exported to its namespace only");

    compile_in("d");
    cr_expect_null(vhost("shared.a.svc.cluster.local"));
}

#define SIDECAR_MESH                                                                               \
    "apiVersion: v1\n"                                                                             \
    "kind: Service\n"                                                                              \
    "metadata: {name: web, namespace: default}\n"                                                  \
    "spec: {ports: [{name: http, port: 80}]}\n"                                                    \
    "---\n"                                                                                        \
    "apiVersion: v1\n"                                                                             \
    "kind: Service\n"                                                                              \
    "metadata: {name: istiod, namespace: istio-system}\n"                                          \
    "spec: {ports: [{name: http, port: 15014}]}\n"                                                 \
    "---\n"                                                                                        \
    "apiVersion: v1\n"                                                                             \
    "kind: Service\n"                                                                              \
    "metadata: {name: db, namespace: other}\n"                                                     \
    "spec: {ports: [{name: http, port: 8080}]}\n"                                                  \
    "---\n"                                                                                        \
    "apiVersion: v1\n"                                                                             \
    "kind: Service\n"                                                                              \
    "metadata: {name: cache, namespace: other}\n"                                                  \
    "spec: {ports: [{name: http, port: 8080}]}\n"

COMPILE_TEST(sidecar_egress_scoping)
{
    load(SIDECAR_MESH
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: Sidecar\n"
         "metadata: {name: default, namespace: default}\n"
         "spec:\n"
         "  egress: [{hosts: [\"./*\", \"istio-system/*\"]}]\n"
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: Sidecar\n"
         "metadata: {name: frontend, namespace: default}\n"
         "spec:\n"
         "  workloadSelector: {labels: {app: frontend}}\n"
         "  egress: [{hosts: [\"other/db.other.svc.cluster.local\"]}]\n"
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: Sidecar\n"
         "metadata: {name: default, namespace: istio-system}\n"
         "spec:\n"
         "  egress: [{hosts: [\"*/cache.other.svc.cluster.local\", \"./*\"]}]\n");
    /* namespace default, no special labels: the namespace's Sidecar */
    compile_in("default");
    cr_expect(vhost("web.default.svc.cluster.local"));
    cr_expect(vhost("istiod.istio-system.svc.cluster.local"));
    cr_expect_null(vhost("db.other.svc.cluster.local"));
    cr_expect_null(cluster("outbound|8080||db.other.svc.cluster.local"));

    /* a Sidecar whose workloadSelector matches wins over the namespace's */
    struct mesh_kv lab[] = {{"app", "frontend"}, {"version", "v1"}};
    struct mesh_node n;
    node_for(&n, "default", "frontend", lab, 2);
    compile_node(&n);
    cr_expect(vhost("db.other.svc.cluster.local"));
    cr_expect_null(vhost("web.default.svc.cluster.local"));
    cr_expect_eq(json_array_size(vhosts()), 1);

    /* another namespace without a Sidecar: the root namespace's, "." = the workload's */
    compile_in("other");
    cr_expect(vhost("cache.other.svc.cluster.local"));
    cr_expect(vhost("db.other.svc.cluster.local"));
    cr_expect_null(vhost("web.default.svc.cluster.local"));
    cr_expect_null(vhost("istiod.istio-system.svc.cluster.local"));
}

COMPILE_TEST(no_sidecar_sees_everything_exported)
{
    load(SIDECAR_MESH);
    compile_in("default");
    cr_expect_eq(json_array_size(vhosts()), 4);
    cr_expect_eq(json_array_size(json_object_get(snap, "clusters")), 5,
                 "4 services and the PassthroughCluster (ALLOW_ANY)");
}

#define CANARY                                                                                     \
    "apiVersion: networking.istio.io/v1\n"                                                         \
    "kind: ServiceEntry\n"                                                                         \
    "metadata: {name: reviews-vm, namespace: default}\n"                                           \
    "spec:\n"                                                                                      \
    "  hosts: [reviews.vm.internal]\n"                                                             \
    "  location: MESH_INTERNAL\n"                                                                  \
    "  ports: [{number: 9080, name: http, protocol: HTTP, targetPort: 8080}]\n"                    \
    "  resolution: STATIC\n"                                                                       \
    "  workloadSelector: {labels: {app: reviews}}\n"                                               \
    "---\n"                                                                                        \
    "apiVersion: networking.istio.io/v1\n"                                                         \
    "kind: WorkloadEntry\n"                                                                        \
    "metadata: {name: vm1, namespace: default}\n"                                                  \
    "spec: {address: 10.3.0.1, labels: {app: reviews, version: v1}}\n"                             \
    "---\n"                                                                                        \
    "apiVersion: networking.istio.io/v1\n"                                                         \
    "kind: WorkloadEntry\n"                                                                        \
    "metadata: {name: vm2, namespace: default}\n"                                                  \
    "spec: {address: 10.3.0.2, labels: {app: reviews, version: v2}, ports: {http: 9999}}\n"        \
    "---\n"                                                                                        \
    "apiVersion: networking.istio.io/v1\n"                                                         \
    "kind: WorkloadEntry\n"                                                                        \
    "metadata: {name: vm3, namespace: default}\n"                                                  \
    "spec: {address: 10.3.0.3, labels: {app: reviews, version: v2}, weight: 3}\n"                  \
    "---\n"                                                                                        \
    "apiVersion: networking.istio.io/v1\n"                                                         \
    "kind: WorkloadEntry\n"                                                                        \
    "metadata: {name: other, namespace: default}\n"                                                \
    "spec: {address: 10.3.0.4, labels: {app: ratings, version: v2}}\n"                             \
    "---\n"                                                                                        \
    "apiVersion: networking.istio.io/v1\n"                                                         \
    "kind: DestinationRule\n"                                                                      \
    "metadata: {name: reviews, namespace: default}\n"                                              \
    "spec:\n"                                                                                      \
    "  host: reviews.vm.internal\n"                                                                \
    "  subsets:\n"                                                                                 \
    "  - {name: v1, labels: {version: v1}}\n"                                                      \
    "  - {name: v2, labels: {version: v2}}\n"                                                      \
    "---\n"                                                                                        \
    "apiVersion: networking.istio.io/v1\n"                                                         \
    "kind: VirtualService\n"                                                                       \
    "metadata: {name: reviews, namespace: default}\n"                                              \
    "spec:\n"                                                                                      \
    "  hosts: [reviews.vm.internal]\n"                                                             \
    "  http:\n"                                                                                    \
    "  - route:\n"                                                                                 \
    "    - {destination: {host: reviews.vm.internal, subset: v1}, weight: 90}\n"                   \
    "    - {destination: {host: reviews.vm.internal, subset: v2}, weight: 10}\n"

#define VM_HOST "reviews.vm.internal"

COMPILE_TEST(subsets_and_weights)
{
    load(CANARY);
    compile_in("default");
    /* every endpoint the selector picks; the WorkloadEntry ports map beats targetPort */
    cr_assert_eq(n_endpoints("outbound|9080||" VM_HOST), 3);
    json_t *eps = json_object_get(cluster("outbound|9080||" VM_HOST), "endpoints");
    cr_expect_eq(jint(json_array_get(eps, 0), "port"), 8080);
    cr_expect_eq(jint(json_array_get(eps, 1), "port"), 9999);
    cr_expect_eq(jint(json_array_get(eps, 2), "weight"), 3);
    cr_expect_null(json_object_get(json_array_get(eps, 0), "weight"), "weight 1 is the default");
    cr_assert_eq(n_endpoints("outbound|9080|v1|" VM_HOST), 1);
    cr_expect_str_eq(endpoint_addr("outbound|9080|v1|" VM_HOST, 0), "10.3.0.1");
    cr_assert_eq(n_endpoints("outbound|9080|v2|" VM_HOST), 2);

    json_t *r = json_object_get(route(vhost(VM_HOST), 0), "route");
    json_t *wc = json_object_get(r, "weighted_clusters");
    cr_assert_eq(json_array_size(wc), 2);
    cr_expect_str_eq(jstr(json_array_get(wc, 0), "name"), "outbound|9080|v1|" VM_HOST);
    cr_expect_eq(jint(json_array_get(wc, 0), "weight"), 90);
    cr_expect_str_eq(jstr(json_array_get(wc, 1), "name"), "outbound|9080|v2|" VM_HOST);
    cr_expect_eq(jint(json_array_get(wc, 1), "weight"), 10);
}

COMPILE_TEST(kubernetes_service_selects_workload_entries)
{
    load(REVIEWS_SVC
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: WorkloadEntry\n"
         "metadata: {name: vm, namespace: default}\n"
         "spec: {address: 10.9.0.1, labels: {app: reviews, version: v3}}\n"
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: DestinationRule\n"
         "metadata: {name: reviews, namespace: default}\n"
         "spec:\n"
         "  host: reviews\n"
         "  subsets: [{name: v3, labels: {version: v3}}, {name: all, labels: {app: reviews}}]\n");
    compile_in("default");
    cr_expect_eq(n_endpoints(REVIEWS_CLUSTER), 4);
    /* Kubernetes endpoints carry the Service selector's labels only (docs/compile.md) */
    cr_expect_eq(n_endpoints("outbound|9080|v3|" REVIEWS_FQDN), 1);
    cr_expect_eq(n_endpoints("outbound|9080|all|" REVIEWS_FQDN), 4);
}

COMPILE_TEST(skipped_routes)
{
    load(REVIEWS_SVC RATINGS_SVC("default")
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: VirtualService\n"
         "metadata: {name: reviews, namespace: default}\n"
         "spec:\n"
         "  hosts: [reviews]\n"
         "  http:\n"
         "  - match: [{authority: {exact: a}, headers: {host: {exact: b}}}]\n"
         "    route: [{destination: {host: ratings}}]\n"
         "  - match: [{withoutHeaders: {host: {prefix: x}}}, {uri: {prefix: /v1}}]\n"
         "    route: [{destination: {host: ratings}}]\n"
         "  - match: [{uri: {prefix: /old}}]\n"
         "    redirect: {uri: /new, redirectCode: 305}\n"
         "  - match: [{uri: {prefix: /d}}]\n"
         "    delegate: {name: other}\n");
    compile_in("default");
    const char *vs = "VirtualService default/reviews";
    cr_expect(has_diag(MESH_DIAG_WARNING, vs, "spec.http[0].match[0].headers.host",
                       "cannot be expressed; the route is left out"));
    cr_expect(has_diag(MESH_DIAG_WARNING, vs, "spec.http[1].match[0].withoutHeaders.host",
                       "this match is left out"));
    cr_expect(has_diag(MESH_DIAG_WARNING, vs, "spec.http[2].redirect.redirectCode",
                       "the route is left out"));
    cr_expect(has_diag(MESH_DIAG_WARNING, vs, "spec.http[3].delegate", "the route is left out"));
    /* the diagnostics carry the resource's position */
    for (size_t i = 0; i < diags.n; i++)
        if (diags.v[i].subject && strcmp(diags.v[i].subject, vs) == 0)
            cr_expect(diags.v[i].line > 0 && strcmp(diags.v[i].file, "test.yaml") == 0);

    json_t *vh = vhost(REVIEWS_FQDN);
    cr_assert_eq(json_array_size(json_object_get(vh, "routes")), 2, "/v1, default");
    cr_expect_str_eq(jstr(route(vh, 0), "match.prefix"), "/v1");
    cr_expect_str_eq(jstr(route(vh, 1), "match.prefix"), "/");
    cr_expect_str_eq(jstr(route(vh, 1), "route.cluster"), REVIEWS_CLUSTER);
}

COMPILE_TEST(config_time_matches)
{
    load(REVIEWS_SVC RATINGS_SVC("default")
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: VirtualService\n"
         "metadata: {name: reviews, namespace: default}\n"
         "spec:\n"
         "  hosts: [reviews]\n"
         "  http:\n"
         "  - match: [{sourceLabels: {app: productpage}}]\n"
         "    route: [{destination: {host: ratings}}]\n"
         "  - match: [{port: 9999, uri: {prefix: /p}}]\n"
         "    route: [{destination: {host: ratings}}]\n");
    struct mesh_kv lab[] = {{"app", "productpage"}};
    struct mesh_node n;
    node_for(&n, "default", "productpage", lab, 1);
    compile_node(&n);
    json_t *vh = vhost(REVIEWS_FQDN);
    cr_assert_eq(json_array_size(json_object_get(vh, "routes")), 1);
    cr_expect_str_eq(jstr(route(vh, 0), "route.cluster"),
                     "outbound|9080||ratings.default.svc.cluster.local");

    compile_in("default"); /* no labels: the sourceLabels route is not this proxy's */
    vh = vhost(REVIEWS_FQDN);
    cr_assert_eq(json_array_size(json_object_get(vh, "routes")), 1);
    cr_expect_str_eq(jstr(route(vh, 0), "route.cluster"), REVIEWS_CLUSTER);
    cr_expect_eq(diags.n_warnings, 0);
}

COMPILE_TEST(destination_rule_policy)
{
    load(REVIEWS_SVC
         "---\n"
         "apiVersion: v1\n"
         "kind: Service\n"
         "metadata: {name: grpc, namespace: default}\n"
         "spec:\n"
         "  ports: [{name: grpc-api, port: 7070}, {name: web, port: 80, appProtocol: http2}]\n"
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: DestinationRule\n"
         "metadata: {name: reviews, namespace: default}\n"
         "spec:\n"
         "  host: reviews\n"
         "  trafficPolicy:\n"
         "    loadBalancer: {simple: RANDOM}\n"
         "    connectionPool:\n"
         "      tcp: {maxConnections: 7, connectTimeout: 250ms}\n"
         "      http: {http1MaxPendingRequests: 3, maxRequestsPerConnection: 5, idleTimeout: 30s,\n"
         "             h2UpgradePolicy: UPGRADE, http2MaxRequests: 100}\n"
         "    outlierDetection: {consecutive5xxErrors: 2}\n"
         "  subsets:\n"
         "  - name: v1\n"
         "    labels: {app: reviews}\n"
         "    trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}\n");
    compile_in("default");
    json_t *c = cluster(REVIEWS_CLUSTER);
    cr_assert(c);
    cr_expect_str_eq(jstr(c, "lb_policy"), "random");
    cr_expect_eq(jint(c, "max_connections"), 7);
    cr_expect_eq(jint(c, "connect_timeout_ms"), 250);
    cr_expect_eq(jint(c, "max_pending_requests"), 3);
    cr_expect_eq(jint(c, "max_requests_per_connection"), 5);
    cr_expect_eq(jint(c, "idle_timeout_ms"), 30000);
    cr_expect_str_eq(jstr(c, "protocol"), "http2");
    cr_expect_eq(jint(c, "max_requests"), 100);
    cr_expect_eq(jint(json_object_get(c, "outlier_detection"), "consecutive_5xx"), 2);
    json_t *v1 = cluster("outbound|9080|v1|" REVIEWS_FQDN);
    cr_expect_str_eq(jstr(v1, "lb_policy"), "least_request", "subset policy overrides");
    cr_expect_eq(jint(v1, "max_connections"), 7, "the host's pool is inherited");
    cr_expect(json_object_get(v1, "outlier_detection"), "and its outlier detection");
    cr_expect_eq(diags.n_warnings, 1, "only the ports warning: every field is mapped");
    /* protocol from the port name and appProtocol */
    cr_expect_str_eq(jstr(cluster("outbound|7070||grpc.default.svc.cluster.local"), "protocol"),
                     "http2");
    cr_expect_str_eq(jstr(cluster("outbound|80||grpc.default.svc.cluster.local"), "protocol"),
                     "http2");
    /* two HTTP ports route differently; the router ignores the port: said */
    cr_expect(has_diag(MESH_DIAG_WARNING, "Service default/grpc", NULL, "route differently"));
}

COMPILE_TEST(destination_rule_lookup_order)
{
    load(REVIEWS_SVC
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: DestinationRule\n"
         "metadata: {name: wide, namespace: default}\n"
         "spec: {host: \"*.default.svc.cluster.local\", trafficPolicy: {loadBalancer: {simple: "
         "RANDOM}}}\n"
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: DestinationRule\n"
         "metadata: {name: exact, namespace: default}\n"
         "spec: {host: reviews, trafficPolicy: {connectionPool: {tcp: {maxConnections: 9}}}}\n"
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: DestinationRule\n"
         "metadata: {name: mine, namespace: shop}\n"
         "spec: {host: reviews.default.svc.cluster.local,\n"
         "       trafficPolicy: {connectionPool: {tcp: {maxConnections: 3}}}}\n"
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: DestinationRule\n"
         "metadata: {name: zhidden, namespace: shop}\n"
         "spec: {host: reviews.default.svc.cluster.local, exportTo: [\".\"]}\n");
    compile_in("default");
    /* exact beats wildcard */
    cr_expect_eq(jint(cluster(REVIEWS_CLUSTER), "max_connections"), 9);
    cr_expect_str_eq(jstr(cluster(REVIEWS_CLUSTER), "lb_policy"), "least_request");
    /* the client's namespace first; two rules for one host: the first by name, said */
    compile_in("shop");
    cr_expect_eq(jint(cluster(REVIEWS_CLUSTER), "max_connections"), 3,
                 "the rule of the proxy's namespace wins");
    cr_expect(has_diag(MESH_DIAG_WARNING, "DestinationRule shop/zhidden", "spec.host",
                       "only that one is used"));
    compile_in("elsewhere");
    cr_expect_eq(jint(cluster(REVIEWS_CLUSTER), "max_connections"), 9,
                 "then the service's namespace");
}

COMPILE_TEST(missing_destinations)
{
    load(REVIEWS_SVC
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: VirtualService\n"
         "metadata: {name: reviews, namespace: default}\n"
         "spec:\n"
         "  hosts: [reviews]\n"
         "  http:\n"
         "  - match: [{uri: {prefix: /a}}]\n"
         "    route: [{destination: {host: nowhere, port: {number: 80}}}]\n"
         "  - match: [{uri: {prefix: /b}}]\n"
         "    route: [{destination: {host: reviews, subset: v9}}]\n");
    compile_in("default");
    json_t *vh = vhost(REVIEWS_FQDN);
    cr_expect_str_eq(jstr(route(vh, 0), "route.cluster"),
                     "outbound|80||nowhere.default.svc.cluster.local");
    cr_expect_eq(n_endpoints("outbound|80||nowhere.default.svc.cluster.local"), 0);
    cr_expect_eq(n_endpoints("outbound|9080|v9|" REVIEWS_FQDN), 0);
    cr_expect(has_diag(MESH_DIAG_WARNING, "VirtualService default/reviews",
                       "spec.http[0].route[0].destination", "answers 503"));
    cr_expect(has_diag(MESH_DIAG_WARNING, "VirtualService default/reviews",
                       "spec.http[1].route[0].destination", "subset 'v9'"));
}

COMPILE_TEST(service_entries)
{
    load("apiVersion: networking.istio.io/v1\n"
         "kind: ServiceEntry\n"
         "metadata: {name: ext, namespace: default}\n"
         "spec:\n"
         "  hosts: [api.example.com, api2.example.com]\n"
         "  addresses: [192.0.2.10, 198.51.100.0/24]\n"
         "  ports: [{number: 80, name: http, protocol: HTTP}, {number: 443, name: tls, protocol: "
         "TLS}]\n"
         "  resolution: STATIC\n"
         "  endpoints:\n"
         "  - {address: 192.0.2.1}\n"
         "  - {address: \"2001:db8:0::1\", ports: {http: 8080}}\n"
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: ServiceEntry\n"
         "metadata: {name: dns, namespace: default}\n"
         "spec:\n"
         "  hosts: [www.example.org]\n"
         "  ports: [{number: 80, name: http, protocol: HTTP}]\n"
         "  resolution: DNS\n");
    compile_in("default");
    cr_expect_eq(n_endpoints("outbound|80||api.example.com"), 2);
    cr_expect_eq(n_endpoints("outbound|80||api2.example.com"), 2);
    cr_expect_eq(n_endpoints("outbound|443||api.example.com"), 2);
    cr_expect_str_eq(endpoint_addr("outbound|80||api.example.com", 0), "192.0.2.1");
    cr_expect_str_eq(endpoint_addr("outbound|80||api.example.com", 1), "2001:db8::1",
                     "addresses in canonical form");
    json_t *vh = vhost("api.example.com");
    cr_expect(has_domain(vh, "192.0.2.10"));
    cr_expect(!has_domain(vhost("api2.example.com"), "192.0.2.10"), "one vhost per domain");
    cr_expect_eq(n_endpoints("outbound|80||www.example.org"), 0);
    cr_expect(has_diag(MESH_DIAG_WARNING, "ServiceEntry default/dns", "spec.resolution",
                       "cannot resolve"));
}

COMPILE_TEST(endpoint_slices)
{
    load("apiVersion: v1\n"
         "kind: Service\n"
         "metadata: {name: web, namespace: default}\n"
         "spec: {ports: [{name: http, port: 80, targetPort: 8080}]}\n"
         "---\n"
         "apiVersion: discovery.k8s.io/v1\n"
         "kind: EndpointSlice\n"
         "metadata:\n"
         "  name: web-abc\n"
         "  namespace: default\n"
         "  labels: {kubernetes.io/service-name: web}\n"
         "addressType: IPv4\n"
         "ports: [{name: http, port: 8080}]\n"
         "endpoints:\n"
         "- addresses: [10.4.0.1]\n"
         "- addresses: [10.4.0.2]\n"
         "  conditions: {ready: false}\n"
         "- addresses: [10.4.0.3]\n"
         "  conditions: {ready: true}\n"
         "---\n"
         "apiVersion: v1\n"
         "kind: Endpoints\n"
         "metadata: {name: web, namespace: default}\n"
         "subsets: [{addresses: [{ip: 10.4.0.99}], ports: [{name: http, port: 8080}]}]\n");
    compile_in("default");
    const char *c = "outbound|80||web.default.svc.cluster.local";
    cr_assert_eq(n_endpoints(c), 2, "ready slice endpoints only; the Endpoints mirror is ignored");
    cr_expect_str_eq(endpoint_addr(c, 0), "10.4.0.1");
    cr_expect_str_eq(endpoint_addr(c, 1), "10.4.0.3");
}

COMPILE_TEST(deterministic)
{
    const char *docs[] = {
        REVIEWS_SVC,
        RATINGS_SVC("default"),
        "---\n" CANARY,
        "---\n" SIDECAR_MESH,
    };
    char a[16384] = "", b[16384] = "";
    for (size_t i = 0; i < MESH_ARRAY_LEN(docs); i++)
        strcat(a, docs[i]);
    for (size_t i = MESH_ARRAY_LEN(docs); i-- > 0;) {
        const char *d = docs[i];
        if (i == MESH_ARRAY_LEN(docs) - 1 && strncmp(d, "---\n", 4) == 0)
            d += 4;
        strcat(b, d);
        if (i > 0 && strncmp(docs[i - 1], "---\n", 4) != 0)
            strcat(b, "---\n");
    }
    struct mesh_node n;
    node_for(&n, "default", "client", NULL, 0);
    n.version = NULL;

    load(a);
    compile_node(&n);
    char *t1 = json_dumps(snap, JSON_SORT_KEYS);
    compile_node(&n);
    char *t2 = json_dumps(snap, JSON_SORT_KEYS);
    load(b);
    compile_node(&n);
    char *t3 = json_dumps(snap, JSON_SORT_KEYS);
    cr_expect_str_eq(t1, t2);
    cr_expect_str_eq(t1, t3, "the order of the documents does not matter");
    cr_expect(strncmp(jstr(snap, "version"), "c-", 2) == 0);

    /* a change changes the version */
    char c2[16384];
    snprintf(c2, sizeof(c2), "%s", a);
    char *p = strstr(c2, "10.1.0.3");
    cr_assert(p);
    p[7] = '7';
    load(c2);
    compile_node(&n);
    char *t4 = json_dumps(snap, JSON_SORT_KEYS);
    cr_expect_str_neq(t1, t4);
    json_t *s1 = json_loads(t1, 0, NULL);
    cr_expect_str_neq(jstr(s1, "version"), jstr(snap, "version"));
    json_decref(s1);
    free(t1);
    free(t2);
    free(t3);
    free(t4);
}

#define GATEWAY_MESH                                                                               \
    "---\n"                                                                                        \
    "apiVersion: networking.istio.io/v1\n"                                                         \
    "kind: Gateway\n"                                                                              \
    "metadata: {name: bookinfo-gateway, namespace: default}\n"                                     \
    "spec:\n"                                                                                      \
    "  selector: {istio: ingressgateway}\n"                                                        \
    "  servers:\n"                                                                                 \
    "  - port: {number: 8080, name: http, protocol: HTTP}\n"                                       \
    "    hosts: [\"*\"]\n"                                                                         \
    "  - port: {number: 8443, name: https, protocol: HTTPS}\n"                                     \
    "    hosts: [\"*\"]\n"                                                                         \
    "    tls: {mode: SIMPLE, credentialName: cert}\n"                                              \
    "---\n"                                                                                        \
    "apiVersion: networking.istio.io/v1\n"                                                         \
    "kind: VirtualService\n"                                                                       \
    "metadata: {name: bookinfo, namespace: default}\n"                                             \
    "spec:\n"                                                                                      \
    "  hosts: [\"*\"]\n"                                                                           \
    "  gateways: [bookinfo-gateway]\n"                                                             \
    "  http:\n"                                                                                    \
    "  - match: [{uri: {exact: /productpage}}, {uri: {prefix: /static}}]\n"                        \
    "    route: [{destination: {host: reviews, port: {number: 9080}}}]\n"

COMPILE_TEST(gateway)
{
    load(REVIEWS_SVC GATEWAY_MESH);
    struct mesh_kv lab[] = {{"istio", "ingressgateway"}};
    struct mesh_node n;
    node_for(&n, "istio-system", "ingressgateway", lab, 1);
    n.role = MESH_NODE_GATEWAY;
    compile_node(&n);
    json_t *ls = json_object_get(snap, "listeners");
    cr_assert_eq(json_array_size(ls), 1, "the HTTPS server is left out");
    json_t *l = json_array_get(ls, 0);
    cr_expect_str_eq(jstr(l, "address"), "0.0.0.0");
    cr_expect_eq(jint(l, "port"), 8080);
    cr_expect_str_eq(jstr(l, "route_config"), "http.8080");
    json_t *rc = find_named(json_object_get(snap, "route_configs"), "http.8080");
    json_t *vh = find_named(json_object_get(rc, "virtual_hosts"), "*");
    cr_assert(vh);
    cr_expect_eq(json_array_size(json_object_get(vh, "routes")), 2, "no default route");
    cr_expect_str_eq(jstr(route(vh, 0), "match.path"), "/productpage");
    cr_expect_str_eq(jstr(route(vh, 1), "route.cluster"), REVIEWS_CLUSTER);
    cr_expect_eq(n_endpoints(REVIEWS_CLUSTER), 3);
    cr_expect(has_diag(MESH_DIAG_WARNING, "Gateway default/bookinfo-gateway", "spec.servers[1].tls",
                       "the server is left out"));

    /* the mesh's sidecars do not get the gateway's routes */
    compile_in("default");
    cr_expect_eq(json_array_size(json_object_get(vhost(REVIEWS_FQDN), "routes")), 1);
}

COMPILE_TEST(gateway_without_servers_is_an_error)
{
    load(REVIEWS_SVC GATEWAY_MESH);
    struct mesh_node n;
    node_for(&n, "istio-system", "other-gateway", NULL, 0);
    n.role = MESH_NODE_GATEWAY;
    int rc = mesh_compile(&set, &n, &snap, &diags);
    cr_expect_eq(rc, MESH_EINVAL);
    cr_expect_null(snap);
    cr_expect_eq(diags.n_errors, 1);
}

COMPILE_TEST(empty_mesh_still_parses)
{
    load("apiVersion: networking.istio.io/v1\n"
         "kind: Sidecar\n"
         "metadata: {name: default, namespace: default}\n"
         "spec: {egress: [{hosts: [\"./*\"]}]}\n");
    compile_in("default");
    cr_expect_eq(json_array_size(vhosts()), 0);
}

COMPILE_TEST(parse_labels)
{
    struct mesh_kv *kv;
    size_t n;
    cr_assert(mesh_compile_parse_labels("app=web,version=v1,empty=", &kv, &n));
    cr_assert_eq(n, 3);
    cr_expect_str_eq(kv[0].key, "app");
    cr_expect_str_eq(kv[1].value, "v1");
    cr_expect_str_eq(kv[2].value, "");
    free(kv);
    cr_expect(!mesh_compile_parse_labels("app", &kv, &n));
    cr_expect(!mesh_compile_parse_labels("=x", &kv, &n));
    cr_expect(mesh_compile_parse_labels(NULL, &kv, &n) && n == 0 && kv == NULL);
}

COMPILE_TEST(gateway_hosts_and_namespaces)
{
    load(REVIEWS_SVC
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: Gateway\n"
         "metadata: {name: edge, namespace: istio-system}\n"
         "spec:\n"
         "  selector: {istio: ingressgateway}\n"
         "  servers:\n"
         "  - port: {number: 80, name: http, protocol: HTTP}\n"
         "    hosts: [\"default/*.example.com\"]\n"
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: VirtualService\n"
         "metadata: {name: api, namespace: default}\n"
         "spec:\n"
         "  hosts: [api.example.com, other.org]\n"
         "  gateways: [istio-system/edge]\n"
         "  http: [{route: [{destination: {host: reviews}}]}]\n"
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: VirtualService\n"
         "metadata: {name: intruder, namespace: dev}\n"
         "spec:\n"
         "  hosts: [\"*\"]\n"
         "  gateways: [istio-system/edge]\n"
         "  http: [{route: [{destination: {host: reviews.default.svc.cluster.local}}]}]\n");
    struct mesh_kv lab[] = {{"istio", "ingressgateway"}};
    struct mesh_node n;
    node_for(&n, "istio-system", "ingress", lab, 1);
    n.role = MESH_NODE_GATEWAY;
    n.gateway_address = "127.0.0.1";
    compile_node(&n);
    json_t *l = json_array_get(json_object_get(snap, "listeners"), 0);
    cr_expect_str_eq(jstr(l, "address"), "127.0.0.1");
    json_t *rc = find_named(json_object_get(snap, "route_configs"), "http.80");
    json_t *vhs = json_object_get(rc, "virtual_hosts");
    cr_assert_eq(json_array_size(vhs), 1, "only default's VirtualService binds, only its host");
    cr_expect_str_eq(jstr(json_array_get(vhs, 0), "name"), "api.example.com");
    cr_expect_str_eq(jstr(route(json_array_get(vhs, 0), 0), "route.cluster"), REVIEWS_CLUSTER);
}

COMPILE_TEST(virtual_service_host_without_service)
{
    load(REVIEWS_SVC
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: VirtualService\n"
         "metadata: {name: alias, namespace: default}\n"
         "spec:\n"
         "  hosts: [reviews.internal.example]\n"
         "  http: [{match: [{uri: {prefix: /v1}}], route: [{destination: {host: reviews}}]}]\n"
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: VirtualService\n"
         "metadata: {name: alias2, namespace: default}\n"
         "spec:\n"
         "  hosts: [reviews.internal.example]\n"
         "  http: [{route: [{destination: {host: reviews}}]}]\n");
    compile_in("default");
    json_t *vh = vhost("reviews.internal.example");
    cr_assert(vh);
    cr_expect_eq(json_array_size(json_object_get(vh, "routes")), 1, "no default route");
    cr_expect_str_eq(jstr(route(vh, 0), "route.cluster"), REVIEWS_CLUSTER);
    cr_expect(has_diag(MESH_DIAG_WARNING, "VirtualService default/alias2", "spec.hosts[0]",
                       "only that one is used"));
}

COMPILE_TEST(two_virtual_services_for_one_host)
{
    load(REVIEWS_SVC RATINGS_SVC("default")
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: VirtualService\n"
         "metadata: {name: b-reviews, namespace: default}\n"
         "spec: {hosts: [reviews], http: [{route: [{destination: {host: ratings}}]}]}\n"
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: VirtualService\n"
         "metadata: {name: a-reviews, namespace: default}\n"
         "spec:\n"
         "  hosts: [reviews.default.svc.cluster.local]\n"
         "  http: [{match: [{uri: {prefix: /a}}], route: [{destination: {host: ratings}}]}]\n");
    compile_in("default");
    json_t *vh = vhost(REVIEWS_FQDN);
    cr_expect_str_eq(jstr(route(vh, 0), "match.prefix"), "/a", "the first by name");
    cr_expect(has_diag(MESH_DIAG_WARNING, "VirtualService default/b-reviews", "spec.hosts[0]",
                       "only that one is used"));
}

COMPILE_TEST(destination_rule_workload_selector)
{
    load(REVIEWS_SVC
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: DestinationRule\n"
         "metadata: {name: all, namespace: default}\n"
         "spec: {host: reviews, trafficPolicy: {connectionPool: {tcp: {maxConnections: 1}}}}\n"
         "---\n"
         "apiVersion: networking.istio.io/v1\n"
         "kind: DestinationRule\n"
         "metadata: {name: for-web, namespace: default}\n"
         "spec:\n"
         "  host: reviews\n"
         "  workloadSelector: {matchLabels: {app: web}}\n"
         "  trafficPolicy: {connectionPool: {tcp: {maxConnections: 2}}}\n");
    compile_in("default");
    cr_expect_eq(jint(cluster(REVIEWS_CLUSTER), "max_connections"), 1);
    struct mesh_kv lab[] = {{"app", "web"}};
    struct mesh_node n;
    node_for(&n, "default", "web", lab, 1);
    compile_node(&n);
    cr_expect_eq(jint(cluster(REVIEWS_CLUSTER), "max_connections"), 2);
}

COMPILE_TEST(publish_not_ready_addresses)
{
    load("apiVersion: v1\n"
         "kind: Service\n"
         "metadata: {name: db, namespace: default}\n"
         "spec: {publishNotReadyAddresses: true, ports: [{name: tcp-db, port: 5432}]}\n"
         "---\n"
         "apiVersion: v1\n"
         "kind: Endpoints\n"
         "metadata: {name: db, namespace: default}\n"
         "subsets:\n"
         "- addresses: [{ip: 10.5.0.1}]\n"
         "  notReadyAddresses: [{ip: 10.5.0.2}]\n"
         "  ports: [{name: tcp-db, port: 5432}]\n");
    compile_in("default");
    cr_expect_eq(n_endpoints("outbound|5432||db.default.svc.cluster.local"), 2);
    /* a TCP-only service: clusters and a tcp route, no virtual host */
    cr_expect_null(vhost("db.default.svc.cluster.local"));
    json_t *tcp = json_object_get(json_array_get(json_object_get(snap, "listeners"), 0),
                                  "tcp_routes");
    cr_assert_eq(json_array_size(tcp), 1);
    cr_expect_eq(jint(json_object_get(json_array_get(tcp, 0), "match"), "destination_port"), 5432);
    cr_expect_str_eq(jstr(json_array_get(tcp, 0), "cluster"),
                     "outbound|5432||db.default.svc.cluster.local");
}

COMPILE_TEST(hand_written_endpoints)
{
    load("apiVersion: v1\n"
         "kind: Service\n"
         "metadata: {name: api, namespace: default}\n"
         "spec: {ports: [{name: http, port: 80}]}\n"
         "---\n"
         "apiVersion: v1\n"
         "kind: Endpoints\n"
         "metadata: {name: api, namespace: default}\n"
         "subsets: [{addresses: [{ip: 10.6.0.1}], ports: [{port: 8080}]}]\n"
         "---\n"
         "apiVersion: v1\n"
         "kind: Endpoints\n"
         "metadata: {name: orphan, namespace: default}\n"
         "subsets: [{addresses: [{ip: 10.6.0.2}], ports: [{port: 8080}]}]\n");
    compile_in("default");
    /* one port on each side: matched although the names differ */
    cr_assert_eq(n_endpoints("outbound|80||api.default.svc.cluster.local"), 1);
    cr_expect(has_diag(MESH_DIAG_NOTE, "Endpoints default/orphan", NULL, "not used"));
}
