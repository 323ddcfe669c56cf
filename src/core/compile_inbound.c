/*
 * The sidecar's inbound side (docs/compile.md, "Inbound"): the listener that
 * iptables sends every inbound TCP connection to (15006), serving the node's
 * own workload on 127.0.0.1, and which endpoints have a sidecar in front of
 * them (their clusters then speak HTTP/2 to it).
 *
 * With REDIRECT every inbound connection lands on one port; its original
 * destination port (SO_ORIGINAL_DST) says which of the workload's ports it
 * was for. So the inbound route config has one route per port, matched on
 * "destination_port", each to a cluster "inbound|PORT||" whose one endpoint
 * is 127.0.0.1:PORT in the application's protocol. A port the workload does
 * not declare gets 404 (no route): nothing is forwarded that no Service
 * asked for.
 */
#include "core/common.h"
#include <string.h>
#include <arpa/inet.h>
#include "core/compile-int.h"

#define TLS_MODE_LABEL "security.istio.io/tlsMode"
#define REGISTERED_LABEL "meshd.io/registered" /* control_registry.h: self-registration */

/* ---- endpoints with a sidecar ---- */

static const char *kv_value(const struct mesh_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0)
            return kv[i].value ? kv[i].value : "";
    return NULL;
}

/* inet_ntop's text of a numeric IP (what the registry keeps), or NULL. */
static const char *canonical(struct mesh_cc *c, const char *s)
{
    unsigned char buf[16];
    char out[INET6_ADDRSTRLEN];
    if (!s)
        return NULL;
    if (inet_pton(AF_INET, s, buf) == 1)
        inet_ntop(AF_INET, buf, out, sizeof(out));
    else if (inet_pton(AF_INET6, s, buf) == 1)
        inet_ntop(AF_INET6, buf, out, sizeof(out));
    else
        return NULL;
    return strcmp(out, s) == 0 ? s : mesh_cc_strdup(c, out);
}

/*
 * The addresses of self-registered workloads whose traffic their sidecar intercepts (the
 * registration carries security.istio.io/tlsMode=istio, as Istio's injector labels such
 * pods): every endpoint at such an address (its WorkloadEntry, or the pod's Kubernetes
 * Endpoints, which carry no pod labels) is meshed. A sidecar registered on loopback without
 * interception is not: HTTP/2 sent to its application would go to the application itself.
 * Built once per compile.
 */
static void build_meshed(struct mesh_cc *c)
{
    c->meshed_done = true;
    for (size_t i = 0; i < c->n_by_kind[MESH_KIND_WORKLOAD_ENTRY]; i++) {
        const struct mesh_resource *r = c->by_kind[MESH_KIND_WORKLOAD_ENTRY][i];
        const char *v = kv_value(r->meta.labels, r->meta.n_labels, REGISTERED_LABEL);
        if (!v || strcmp(v, "true") != 0)
            continue;
        const struct mesh_workload_entry *we = r->typed.workload_entry;
        const char *mode = kv_value(we->labels, we->n_labels, TLS_MODE_LABEL);
        if (!mode || strcmp(mode, "istio") != 0)
            continue;
        const char *a = canonical(c, r->typed.workload_entry->address);
        if (a)
            mesh_cmap_put(&c->meshed, a, (void *)a);
    }
}

bool mesh_cc_inst_meshed(struct mesh_cc *c, const struct mesh_cinst *e)
{
    /* Istio's injector labels every pod with a sidecar so */
    const char *mode = kv_value(e->labels, e->n_labels, TLS_MODE_LABEL);
    if (mode && strcmp(mode, "istio") == 0)
        return true;
    if (!c->meshed_done)
        build_meshed(c);
    return c->meshed.n && mesh_cmap_get(&c->meshed, e->address) != NULL;
}

/* ---- the inbound listener ---- */

struct in_port {
    uint32_t port;                 /* where the application listens (the target port) */
    const struct mesh_cport *p;    /* the service port it came from (protocol) */
    const struct mesh_csvc *svc;
};

/* By application port, then service host and key, then service port: a total order. */
static int cmp_in_port(const void *a, const void *b)
{
    const struct in_port *x = a, *y = b;
    if (x->port != y->port)
        return x->port < y->port ? -1 : 1;
    int d = strcmp(x->svc->host, y->svc->host);
    if (!d)
        d = strcmp(x->svc->res->key, y->svc->res->key);
    if (!d)
        d = x->p->port < y->p->port ? -1 : x->p->port > y->p->port;
    return d;
}

/* Whether service <s> selects the node: its selector (K8s) or workloadSelector (SE). */
static bool selects_node(struct mesh_cc *c, const struct mesh_csvc *s)
{
    const struct mesh_node *n = c->node;
    if (strcmp(s->ns, n->namespace_) != 0)
        return false;
    const struct mesh_kv *sel = NULL;
    size_t n_sel = 0;
    if (s->source == MESH_CSVC_K8S) {
        sel = s->res->typed.service->selector;
        n_sel = s->res->typed.service->n_selector;
    } else if (s->res->typed.service_entry->workload_selector) {
        sel = s->res->typed.service_entry->workload_selector->labels;
        n_sel = s->res->typed.service_entry->workload_selector->n_labels;
    }
    /* a Service without a selector has hand-made endpoints: it serves no workload of ours */
    return n_sel > 0 && mesh_cc_labels_match(sel, n_sel, n->labels, n->n_labels);
}

/*
 * The port the application listens on for service port <i> of <s>: the numeric target, a
 * named target as the endpoints give it (Kubernetes resolved the name), else the port.
 * 0 when a named target has no endpoint to say what it is.
 */
static uint32_t app_port(const struct mesh_csvc *s, size_t i)
{
    const struct mesh_cport *p = &s->ports[i];
    if (p->target)
        return p->target;
    if (!p->target_name)
        return p->port;
    for (size_t k = 0; k < s->n_inst; k++)
        if (s->inst[k].port_idx == i)
            return s->inst[k].port;
    return 0;
}

/* A TCP port's cluster carries bytes: its protocol field is not read then. */
static json_t *inbound_cluster(const struct in_port *ip, const char *name)
{
    json_t *o = mesh_cc_cluster_json(name, ip->p->h2, NULL);
    json_t *eps = json_array(), *ep = json_object();
    json_object_set_new_nocheck(ep, "address", json_string("127.0.0.1"));
    json_object_set_new_nocheck(ep, "port", json_integer(ip->port));
    json_array_append_new(eps, ep);
    json_object_set_new_nocheck(o, "endpoints", eps);
    return o;
}

void mesh_cc_inbound(struct mesh_cc *c, json_t *listeners, json_t *route_configs)
{
    size_t cap = 0, n = 0;
    for (size_t i = 0; i < c->n_svcs; i++)
        cap += c->svcs[i]->n_ports;
    struct in_port *v = mesh_cc_alloc(c, (cap + 1) * sizeof(*v));
    for (size_t i = 0; i < c->n_svcs; i++) {
        const struct mesh_csvc *s = c->svcs[i];
        if (!selects_node(c, s))
            continue;
        for (size_t k = 0; k < s->n_ports; k++) {
            uint32_t port = app_port(s, k);
            if (!port) {
                mesh_cc_diag(c, MESH_DIAG_WARNING, s->res,
                             mesh_cc_path(c, "spec.ports", "", s->ports[k].index, ".targetPort"),
                             "named targetPort '%s' has no endpoint to resolve it: the inbound "
                             "listener does not serve this port",
                             s->ports[k].target_name);
                continue;
            }
            v[n++] = (struct in_port){port, &s->ports[k], s};
        }
    }
    if (n == 0)
        return;
    /* one route per application port; the first service (host order) gives its protocol */
    qsort(v, n, sizeof(*v), cmp_in_port);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!m || v[m - 1].port != v[i].port)
            v[m++] = v[i];

    json_t *routes = json_array(), *tcp_routes = json_array();
    char num[24];
    for (size_t i = 0; i < m; i++) {
        const char *name = MESH_CC_JOIN(c, "inbound|", mesh_cc_utoa(num, v[i].port), "||");
        json_t *cl = inbound_cluster(&v[i], name);
        json_array_append_new(c->cluster_list, cl);
        mesh_cmap_put(&c->clusters, name, cl);
        if (v[i].p->http) {
            json_t *r = json_pack("{s:{s:s, s:i}, s:{s:s, s:i}}", "match", "prefix", "/",
                                  "destination_port", (int)v[i].port, "route", "cluster",
                                  name, "timeout_ms", 0);
            json_array_append_new(routes, r);
        } else {
            json_t *r = json_pack("{s:{s:i}, s:s}", "match", "destination_port",
                                  (int)v[i].port, "cluster", name);
            json_array_append_new(tcp_routes, r);
        }
    }
    json_t *vh = json_pack("{s:s, s:[s], s:o}", "name", "inbound", "domains", "*", "routes",
                           routes);
    json_array_append_new(route_configs,
                          json_pack("{s:s, s:[o]}", "name", "inbound", "virtual_hosts", vh));

    const struct mesh_node *node = c->node;
    const char *addr = node->inbound_address;
    uint16_t port = node->inbound_port;
    if (!addr) {
        /* ephemeral outbound (tests): several sidecars share the host, so no fixed port */
        addr = node->outbound_port == 0 ? node->outbound_address : "0.0.0.0";
        port = node->outbound_port == 0 ? 0 : 15006;
    }
    json_t *l = json_object();
    json_object_set_new_nocheck(l, "address", json_string(addr));
    json_object_set_new_nocheck(l, "name", json_string("inbound"));
    json_object_set_new_nocheck(l, "port", json_integer(port));
    json_object_set_new_nocheck(l, "route_config", json_string("inbound"));
    if (json_array_size(tcp_routes))
        json_object_set_new_nocheck(l, "tcp_routes", tcp_routes);
    else
        json_decref(tcp_routes);
    json_array_append_new(listeners, l);
}
