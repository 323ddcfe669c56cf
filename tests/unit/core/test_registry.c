/* Virtual IPs (allocation, stability, collisions) and the compiled dns table. */
#include "compile_fixture.h"
#include <arpa/inet.h>
#include "core/compile-int.h"

#define K8S_SVC(name, ns, extra)                                                                   \
    "apiVersion: v1\nkind: Service\nmetadata: {name: " name ", namespace: " ns "}\n"             \
    "spec: {" extra "ports: [{name: http, port: 9080}], selector: {app: " name "}}\n---\n"

static const char *dns_addr(const char *name, size_t i)
{
    json_t *e = find_named(json_object_get(snap, "dns"), name);
    return e ? json_string_value(json_array_get(json_object_get(e, "addresses"), i)) : NULL;
}

static bool in_vip_range(const char *ip)
{
    struct in_addr a;
    if (!ip || inet_pton(AF_INET, ip, &a) != 1)
        return false;
    uint32_t v = ntohl(a.s_addr);
    return (v >> 16) == 0xf0f0 && (v & 0xffff) != 0 && (v & 0xffff) != 0xffff;
}

COMPILE_TEST(vip_allocated_when_no_cluster_ip)
{
    load(K8S_SVC("reviews", "default", "") K8S_SVC("ratings", "default", "clusterIP: 10.96.0.7, "));
    compile_in("default");
    const char *vip = dns_addr("reviews.default.svc.cluster.local", 0);
    cr_assert(in_vip_range(vip), "got %s", vip ? vip : "(none)");
    cr_expect_str_eq(dns_addr("ratings.default.svc.cluster.local", 0), "10.96.0.7");
    /* the VIP is a domain of the virtual host, like a clusterIP */
    cr_expect(has_domain(vhost("reviews.default.svc.cluster.local:9080"), vip) ||
              has_domain(vhost("reviews.default.svc.cluster.local"), vip));
    /* and it is the hash's home slot when nothing collides */
    uint32_t home = mesh_cc_vip_home("reviews.default.svc.cluster.local");
    char want[24];
    snprintf(want, sizeof(want), "240.240.%u.%u", home >> 8, home & 0xff);
    cr_expect_str_eq(vip, want);
}

/* Same name, same address, whatever else is in the set and in whatever order. */
COMPILE_TEST(vip_stable_across_sets)
{
    load(K8S_SVC("reviews", "default", ""));
    compile_in("default");
    char first[32];
    snprintf(first, sizeof(first), "%s", dns_addr("reviews.default.svc.cluster.local", 0));
    load(K8S_SVC("zeta", "other", "") K8S_SVC("alpha", "default", "")
             K8S_SVC("reviews", "default", "") K8S_SVC("beta", "x", ""));
    compile_in("other");
    cr_expect_str_eq(dns_addr("reviews.default.svc.cluster.local", 0), first);
}

/* Two hosts with the same home slot: the first by name keeps it, the other takes the next. */
COMPILE_TEST(vip_collision_probes_in_name_order)
{
    /* find two names svcN that collide (birthday: a few hundred tries at most) */
    static char a[64], b[64];
    uint32_t seen_slot[4096] = {0};
    int seen_idx[4096];
    int ia = -1, ib = -1;
    for (int i = 0; i < 4096 && ia < 0; i++) {
        char h[64];
        snprintf(h, sizeof(h), "s%d.default.svc.cluster.local", i);
        uint32_t slot = mesh_cc_vip_home(h);
        for (int j = 0; j < i; j++)
            if (seen_slot[j] == slot) {
                ia = seen_idx[j];
                ib = i;
                break;
            }
        seen_slot[i] = slot;
        seen_idx[i] = i;
    }
    cr_assert(ia >= 0, "no collision among 4096 names");
    snprintf(a, sizeof(a), "s%d", ia);
    snprintf(b, sizeof(b), "s%d", ib);
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: default}\n"
             "spec: {ports: [{name: http, port: 80}]}\n---\n"
             "apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: default}\n"
             "spec: {ports: [{name: http, port: 80}]}\n",
             b, a);
    load(yaml);
    compile_in("default");
    char fa[96], fb[96];
    snprintf(fa, sizeof(fa), "%s.default.svc.cluster.local", a);
    snprintf(fb, sizeof(fb), "%s.default.svc.cluster.local", b);
    const char *first = strcmp(fa, fb) < 0 ? fa : fb, *second = first == fa ? fb : fa;
    uint32_t home = mesh_cc_vip_home(fa);
    char want1[24], want2[24];
    snprintf(want1, sizeof(want1), "240.240.%u.%u", home >> 8, home & 0xff);
    uint32_t next = home % MESH_VIP_SLOTS + 1;
    snprintf(want2, sizeof(want2), "240.240.%u.%u", next >> 8, next & 0xff);
    cr_expect_str_eq(dns_addr(first, 0), want1);
    cr_expect_str_eq(dns_addr(second, 0), want2);
    /* an explicit clusterIP on the home slot pushes both along, never the other way */
    snprintf(yaml, sizeof(yaml),
             "apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: default}\n"
             "spec: {ports: [{name: http, port: 80}]}\n---\n"
             "apiVersion: v1\nkind: Service\nmetadata: {name: pinned, namespace: default}\n"
             "spec: {clusterIP: %s, ports: [{name: http, port: 80}]}\n",
             first == fa ? a : b, want1);
    load(yaml);
    compile_in("default");
    cr_expect_str_eq(dns_addr(first, 0), want2);
    cr_expect_str_eq(dns_addr("pinned.default.svc.cluster.local", 0), want1);
}

COMPILE_TEST(vip_none_for_headless_and_wildcards)
{
    load(K8S_SVC("db", "default", "clusterIP: None, ")
         "apiVersion: v1\nkind: Endpoints\nmetadata: {name: db, namespace: default}\n"
         "subsets: [{addresses: [{ip: 10.1.0.5}, {ip: 10.1.0.6}], ports: [{name: http, port: 9080}]}]\n---\n"
         "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
         "metadata: {name: wild, namespace: default}\n"
         "spec: {hosts: ['*.example.com'], ports: [{number: 443, name: tls, protocol: TLS}], "
         "resolution: NONE}\n---\n"
         "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
         "metadata: {name: ext, namespace: default}\n"
         "spec: {hosts: [api.example.org], ports: [{number: 80, name: http, protocol: HTTP}], "
         "resolution: DNS, endpoints: [{address: 10.9.0.1}]}\n");
    compile_in("default");
    /* headless: the endpoints' addresses */
    cr_expect_str_eq(dns_addr("db.default.svc.cluster.local", 0), "10.1.0.5");
    cr_expect_str_eq(dns_addr("db.default.svc.cluster.local", 1), "10.1.0.6");
    cr_expect_null(find_named(json_object_get(snap, "dns"), "*.example.com"));
    /* a ServiceEntry host without addresses gets a VIP */
    cr_expect(in_vip_range(dns_addr("api.example.org", 0)));
    cr_expect_null(dns_addr("api.example.org", 1));
}

COMPILE_TEST(dns_names)
{
    load(K8S_SVC("reviews", "default", "clusterIP: 10.96.0.10, ")
             K8S_SVC("ratings", "shop", "clusterIP: 10.96.0.11, ")
         "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
         "metadata: {name: ext, namespace: default}\n"
         "spec: {hosts: [Api.Example.org], addresses: [192.0.2.1], "
         "ports: [{number: 80, name: http, protocol: HTTP}], resolution: STATIC, "
         "endpoints: [{address: 10.9.0.1}]}\n");
    compile_in("default");
    static const char *const present[][2] = {
        {"reviews", "10.96.0.10"},
        {"reviews.default", "10.96.0.10"},
        {"reviews.default.svc", "10.96.0.10"},
        {"reviews.default.svc.cluster.local", "10.96.0.10"},
        {"ratings.shop", "10.96.0.11"},
        {"ratings.shop.svc", "10.96.0.11"},
        {"ratings.shop.svc.cluster.local", "10.96.0.11"},
        {"api.example.org", "192.0.2.1"},
    };
    for (size_t i = 0; i < MESH_ARRAY_LEN(present); i++)
        cr_expect_str_eq(dns_addr(present[i][0], 0), present[i][1], "%s", present[i][0]);
    /* the short name only in the node's own namespace */
    cr_expect_null(find_named(json_object_get(snap, "dns"), "ratings"));
    /* sorted by name, each once */
    json_t *d = json_object_get(snap, "dns");
    cr_expect_eq(json_array_size(d), MESH_ARRAY_LEN(present));
    for (size_t i = 1; i < json_array_size(d); i++)
        cr_expect_lt(strcmp(jstr(json_array_get(d, i - 1), "name"),
                            jstr(json_array_get(d, i), "name")),
                     0);
    /* a node in "shop" gets "ratings" short, not "reviews" */
    compile_in("shop");
    cr_expect_str_eq(dns_addr("ratings", 0), "10.96.0.11");
    cr_expect_null(find_named(json_object_get(snap, "dns"), "reviews"));
}

/* Gateways have no DNS proxy: no table. */
COMPILE_TEST(dns_only_for_sidecars)
{
    load(K8S_SVC("reviews", "default", "")
         "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: default}\n"
         "spec: {selector: {istio: ingress}, servers: [{port: {number: 8080, name: http, protocol: "
         "HTTP}, hosts: ['*']}]}\n");
    struct mesh_node n;
    static const struct mesh_kv lab[] = {{"istio", "ingress"}};
    node_for(&n, "default", "gw", lab, 1);
    n.role = MESH_NODE_GATEWAY;
    compile_node(&n);
    cr_expect_null(json_object_get(snap, "dns"));
}


/* A TCP port's route matches the allocated VIP; a TLS port's does not (SNI names the host). */
COMPILE_TEST(vip_in_tcp_routes_not_tls)
{
    load("apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: default}\n"
         "spec: {ports: [{name: tcp-db, port: 5432}, {name: tls-x, port: 8443}]}\n");
    compile_in("default");
    const char *vip = dns_addr("db.default.svc.cluster.local", 0);
    cr_assert(in_vip_range(vip));
    json_t *l = find_named(json_object_get(snap, "listeners"), "outbound");
    json_t *routes = json_object_get(l, "tcp_routes");
    bool tcp_seen = false, tls_seen = false;
    size_t i;
    json_t *r;
    json_array_foreach(routes, i, r)
    {
        json_t *m = json_object_get(r, "match");
        json_t *da = json_object_get(m, "destination_addresses");
        long long port = jint(m, "destination_port");
        if (port == 5432) {
            tcp_seen = true;
            cr_expect_str_eq(json_string_value(json_array_get(da, 0)), vip);
        } else if (port == 8443) {
            tls_seen = true;
            cr_expect_null(da);
        }
    }
    cr_expect(tcp_seen && tls_seen);
}
