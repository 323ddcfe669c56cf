/*
 * The sidecar's data path in the compiler and the router: the inbound listener
 * for the node's own workload (one route per application port, matched on
 * match.destination_port), and HTTP/2 towards endpoints that have a sidecar.
 * The router's side of destination_port is test_route_dst_port.c.
 */
#include "compile_fixture.h"

/* reviews: one HTTP port to targetPort 9081, a grpc port, a TCP port; two meshed pods. */
#define REVIEWS_MESHED                                                                             \
    "apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: default}\n"               \
    "spec:\n  selector: {app: reviews}\n"                                                          \
    "  ports: [{name: http, port: 9080, targetPort: 9081}, {name: grpc, port: 9090},\n"            \
    "          {name: tcp-db, port: 3306}]\n"                                                      \
    "---\n"                                                                                        \
    "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n"                                    \
    "metadata: {name: reviews-v1, namespace: default, labels: {meshd.io/registered: 'true'}}\n"   \
    "spec: {address: 10.244.2.1,\n"                                                             \
    "       labels: {app: reviews, version: v1, security.istio.io/tlsMode: istio}}\n"                          \
    "---\n"                                                                                        \
    "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n"                                    \
    "metadata: {name: reviews-v2, namespace: default, labels: {meshd.io/registered: 'true'}}\n"   \
    "spec: {address: 10.244.3.1,\n"                                                             \
    "       labels: {app: reviews, version: v2, security.istio.io/tlsMode: istio}}\n"

#define REVIEWS_DR                                                                                 \
    "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"                             \
    "metadata: {name: reviews, namespace: default}\n"                                              \
    "spec:\n  host: reviews\n  subsets:\n"                                                         \
    "  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n"

/* A plain (not meshed) pod of reviews v2, next to the registered ones. */
#define REVIEWS_PLAIN_V2                                                                           \
    "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n"                               \
    "metadata: {name: reviews-vm, namespace: default}\n"                                           \
    "spec: {address: 10.9.0.1, labels: {app: reviews, version: v2}}\n"

static const struct mesh_kv reviews_v1[] = {{"app", "reviews"}, {"version", "v1"}};

static json_t *compile_reviews_pod(void)
{
    struct mesh_node n;
    node_for(&n, "default", "reviews-v1", reviews_v1, 2);
    return compile_node(&n);
}

static json_t *inbound_vhost(void)
{
    json_t *rc = find_named(json_object_get(snap, "route_configs"), "inbound");
    return json_array_get(json_object_get(rc, "virtual_hosts"), 0);
}

COMPILE_TEST(inbound_listener_serves_each_port_of_the_workload)
{
    load(REVIEWS_MESHED);
    compile_reviews_pod();
    json_t *l = find_named(json_object_get(snap, "listeners"), "inbound");
    cr_assert(l, "a sidecar selected by a Service has an inbound listener");
    expect_json(l, "{\"name\": \"inbound\", \"address\": \"0.0.0.0\", \"port\": 15006,"
                   " \"route_config\": \"inbound\", \"tcp_routes\": ["
                   " {\"match\": {\"destination_port\": 3306}, \"cluster\": \"inbound|3306||\"}]}");
    /* HTTP ports by the port the application listens on (the targetPort), in port order */
    expect_json(inbound_vhost(),
                "{\"name\": \"inbound\", \"domains\": [\"*\"], \"routes\": ["
                " {\"match\": {\"prefix\": \"/\", \"destination_port\": 9081},"
                "  \"route\": {\"cluster\": \"inbound|9081||\", \"timeout_ms\": 0}},"
                " {\"match\": {\"prefix\": \"/\", \"destination_port\": 9090},"
                "  \"route\": {\"cluster\": \"inbound|9090||\", \"timeout_ms\": 0}}]}");
    /* the application on localhost, in its own protocol */
    cr_expect_str_eq(jstr(cluster("inbound|9081||"), "protocol"), "http1");
    cr_expect_str_eq(jstr(cluster("inbound|9090||"), "protocol"), "http2");
    cr_expect_str_eq(endpoint_addr("inbound|9081||", 0), "127.0.0.1");
    cr_expect_eq(jint(json_array_get(json_object_get(cluster("inbound|9081||"), "endpoints"), 0),
                      "port"),
                 9081);
    cr_expect_eq(n_endpoints("inbound|3306||"), 1);
}

COMPILE_TEST(no_inbound_listener_for_a_workload_no_service_selects)
{
    load(REVIEWS_MESHED
         "---\napiVersion: v1\nkind: Service\nmetadata: {name: other, namespace: shop}\n"
         "spec: {selector: {app: reviews}, ports: [{name: http, port: 80}]}\n"
         "---\napiVersion: v1\nkind: Service\nmetadata: {name: manual, namespace: default}\n"
         "spec: {ports: [{name: http, port: 81}]}\n");
    compile_in("default"); /* the "client" node, no labels: selected by nothing */
    cr_expect_null(find_named(json_object_get(snap, "listeners"), "inbound"));
    cr_expect_null(find_named(json_object_get(snap, "route_configs"), "inbound"));
    /* the same labels in another namespace do not select the node */
    static const struct mesh_kv app[] = {{"app", "reviews"}};
    struct mesh_node n;
    node_for(&n, "shop", "x", app, 1);
    compile_node(&n);
    cr_expect(find_named(json_object_get(snap, "listeners"), "inbound"));
    cr_expect(cluster("inbound|80||"));
    cr_expect_null(cluster("inbound|9081||"), "reviews is in another namespace");
    cr_expect_null(cluster("inbound|81||"), "a Service without a selector serves no workload");
}

COMPILE_TEST(inbound_address_follows_the_node)
{
    load(REVIEWS_MESHED);
    struct mesh_node n;
    node_for(&n, "default", "reviews-v1", reviews_v1, 2);
    n.outbound_address = "127.0.0.1";
    n.outbound_port = 0; /* tests: every sidecar on one host, so no fixed inbound port either */
    compile_node(&n);
    json_t *l = find_named(json_object_get(snap, "listeners"), "inbound");
    cr_expect_str_eq(jstr(l, "address"), "127.0.0.1");
    cr_expect_eq(jint(l, "port"), 0);
    n.inbound_address = "10.244.2.1";
    n.inbound_port = 16006;
    compile_node(&n);
    l = find_named(json_object_get(snap, "listeners"), "inbound");
    cr_expect_str_eq(jstr(l, "address"), "10.244.2.1");
    cr_expect_eq(jint(l, "port"), 16006);
    n.inbound_address = "pod.local";
    json_decref(snap);
    snap = NULL;
    cr_expect_eq(mesh_compile(&set, &n, &snap, &diags), MESH_EINVAL);
    cr_expect(has_diag(MESH_DIAG_ERROR, NULL, NULL, "inbound address must be a numeric IP"));
}

COMPILE_TEST(named_target_port_resolved_from_the_endpoints)
{
    load("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n"
         "spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: web},"
         " {name: http-admin, port: 81, targetPort: admin}]}\n"
         "---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: web, namespace: default}\n"
         "subsets: [{addresses: [{ip: 10.1.0.1}], ports: [{name: http, port: 8080}]}]\n");
    static const struct mesh_kv app[] = {{"app", "web"}};
    struct mesh_node n;
    node_for(&n, "default", "web-1", app, 1);
    compile_node(&n);
    cr_expect(cluster("inbound|8080||"));
    cr_expect(has_diag(MESH_DIAG_WARNING, "Service default/web", "spec.ports[1].targetPort",
                       "named targetPort 'admin'"));
}

/* ---- sidecar to sidecar: HTTP/2 ---- */

COMPILE_TEST(clusters_of_meshed_endpoints_speak_http2)
{
    load(REVIEWS_MESHED REVIEWS_DR);
    compile_in("default");
    cr_expect_str_eq(jstr(cluster("outbound|9080||reviews.default.svc.cluster.local"),
                          "protocol"), "http2");
    cr_expect_str_eq(jstr(cluster("outbound|9080|v1|reviews.default.svc.cluster.local"),
                          "protocol"), "http2");
    /* a TCP port stays bytes */
    cr_expect_str_neq(jstr(cluster("outbound|3306||reviews.default.svc.cluster.local"),
                           "protocol"), "http2");
}

COMPILE_TEST(mixed_clusters_stay_http1)
{
    load(REVIEWS_MESHED REVIEWS_DR REVIEWS_PLAIN_V2);
    compile_in("default");
    /* v2 has a pod without a sidecar: its cluster and the whole service's speak HTTP/1.1 */
    cr_expect_str_eq(jstr(cluster("outbound|9080||reviews.default.svc.cluster.local"),
                          "protocol"), "http1");
    cr_expect_str_eq(jstr(cluster("outbound|9080|v2|reviews.default.svc.cluster.local"),
                          "protocol"), "http1");
    cr_expect_eq(n_endpoints("outbound|9080|v2|reviews.default.svc.cluster.local"), 2);
    /* v1's endpoints all have one */
    cr_expect_str_eq(jstr(cluster("outbound|9080|v1|reviews.default.svc.cluster.local"),
                          "protocol"), "http2");
}

COMPILE_TEST(istio_tls_mode_label_and_registered_pod_ips_mark_sidecars)
{
    /* Kubernetes Endpoints at a registered workload's address are that pod: meshed */
    load("apiVersion: v1\nkind: Service\nmetadata: {name: ratings, namespace: default}\n"
         "spec: {selector: {app: ratings}, ports: [{name: http, port: 9080}]}\n"
         "---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: ratings, namespace: default}\n"
         "subsets: [{addresses: [{ip: 10.244.5.1}], ports: [{name: http, port: 9080}]}]\n"
         "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n"
         "metadata: {name: r1, namespace: other, labels: {meshd.io/registered: 'true'}}\n"
         "spec: {address: 10.244.5.1, labels: {app: x, security.istio.io/tlsMode: istio}}\n"
         "---\napiVersion: v1\nkind: Service\nmetadata: {name: local, namespace: default}\n"
         "spec: {selector: {app: local}, ports: [{name: http, port: 9080}]}\n"
         "---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: local, namespace: default}\n"
         "subsets: [{addresses: [{ip: 10.244.6.1}], ports: [{name: http, port: 9080}]}]\n"
         "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n"
         "metadata: {name: r2, namespace: default, labels: {meshd.io/registered: 'true'}}\n"
         "spec: {address: 10.244.6.1, labels: {app: local}}\n"
         "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
         "metadata: {name: vm, namespace: default}\n"
         "spec: {hosts: [vm.example.com], resolution: STATIC, ports: [{name: http, number: 80}],\n"
         "  endpoints: [{address: 10.9.0.7, labels: {security.istio.io/tlsMode: istio}}]}\n"
         "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
         "metadata: {name: ext, namespace: default}\n"
         "spec: {hosts: [ext.example.com], resolution: STATIC, ports: [{name: http, number: 80}],\n"
         "  endpoints: [{address: 10.9.0.8, labels: {security.istio.io/tlsMode: disabled}}]}\n");
    compile_in("default");
    cr_expect_str_eq(jstr(cluster("outbound|9080||ratings.default.svc.cluster.local"),
                          "protocol"), "http2");
    /* registered without the label: nothing intercepts its port (loopback), plain HTTP/1.1 */
    cr_expect_str_eq(jstr(cluster("outbound|9080||local.default.svc.cluster.local"),
                          "protocol"), "http1");
    cr_expect_str_eq(jstr(cluster("outbound|80||vm.example.com"), "protocol"), "http2");
    cr_expect_str_eq(jstr(cluster("outbound|80||ext.example.com"), "protocol"), "http1");
}

COMPILE_TEST(no_endpoints_no_http2)
{
    load("apiVersion: v1\nkind: Service\nmetadata: {name: empty, namespace: default}\n"
         "spec: {selector: {app: empty}, ports: [{name: http, port: 80}]}\n");
    compile_in("default");
    cr_expect_str_eq(jstr(cluster("outbound|80||empty.default.svc.cluster.local"), "protocol"),
                     "http1");
}
