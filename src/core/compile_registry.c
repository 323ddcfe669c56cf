#include "core/common.h"
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include "core/compile-int.h"

/*
 * The service registry of one compile: every service host with its ports and
 * endpoints, from Kubernetes Services (+ Endpoints or EndpointSlices, + the
 * WorkloadEntries their selector picks) and ServiceEntries (+ inline endpoints
 * or selected WorkloadEntries); then the part of it one node sees (exportTo,
 * Sidecar egress, one service per host).
 */

#define EXPORT_TO_ANNOTATION "networking.istio.io/exportTo"
#define SERVICE_NAME_LABEL "kubernetes.io/service-name"

static char *lower(struct mesh_cc *c, const char *s)
{
    char *p = mesh_cc_strdup(c, s);
    for (char *q = p; *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q - 'A' + 'a');
    return p;
}

/* "10.1.2.3" as inet_ntop writes it: four numbers 0..255 without leading zeros. */
static bool canonical_ipv4(const char *s)
{
    int parts = 0;
    while (parts < 4) {
        if (s[0] < '0' || s[0] > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
            return false;
        unsigned v = 0;
        int digits = 0;
        for (; *s >= '0' && *s <= '9' && digits < 4; s++, digits++)
            v = v * 10 + (unsigned)(*s - '0');
        if (digits > 3 || v > 255)
            return false;
        parts++;
        if (parts < 4 && *s++ != '.')
            return false;
    }
    return *s == '\0';
}

/* Canonical text of a numeric IP ("::0:1" -> "::1"), or NULL when <s> is not one. */
static const char *canonical_ip(struct mesh_cc *c, const char *s)
{
    unsigned char buf[16];
    char out[INET6_ADDRSTRLEN];
    if (!s)
        return NULL;
    if (canonical_ipv4(s)) /* the usual case, without a parse and a print */
        return strcmp(s, "0.0.0.0") == 0 ? NULL : s;
    if (inet_pton(AF_INET, s, buf) == 1) {
        if (memcmp(buf, "\0\0\0\0", 4) == 0)
            return NULL;
        inet_ntop(AF_INET, buf, out, sizeof(out));
    } else if (inet_pton(AF_INET6, s, buf) == 1) {
        static const unsigned char any[16];
        if (memcmp(buf, any, 16) == 0)
            return NULL;
        inet_ntop(AF_INET6, buf, out, sizeof(out));
    } else {
        return NULL;
    }
    /* already canonical (the usual case): keep the resource's own string */
    return strcmp(out, s) == 0 ? s : mesh_cc_strdup(c, out);
}

static const char *kv_get(const struct mesh_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0)
            return kv[i].value ? kv[i].value : "";
    return NULL;
}

/*
 * Istio's protocol selection: appProtocol (or the ServiceEntry protocol), else
 * the port name's prefix up to '-' ("http-web", "grpc"); anything else is
 * sniffed by Istio, which the HTTP listener amounts to here.
 */
static void classify(struct mesh_cport *p, const char *explicit_proto, const char *name)
{
    static const struct {
        const char *name, *proto;
    } known[] = {
        {"http", "HTTP"},   {"http2", "HTTP2"}, {"grpc", "GRPC"},   {"grpc-web", "GRPC-WEB"},
        {"https", "HTTPS"}, {"tls", "TLS"},     {"tcp", "TCP"},     {"mongo", "MONGO"},
        {"mysql", "MYSQL"}, {"redis", "REDIS"}, {"udp", "UDP"},     {"h2c", "HTTP2"},
        {"kubernetes.io/h2c", "HTTP2"},         {"kubernetes.io/ws", "HTTP"},
        {"kubernetes.io/wss", "HTTPS"},
    };
    p->protocol = "";
    const char *src = explicit_proto && *explicit_proto ? explicit_proto : NULL;
    char prefix[32] = "";
    if (!src && name && *name) {
        size_t n = strcspn(name, "-");
        /* "grpc-web" is a whole protocol name, not "grpc" + "-web" */
        if (strncasecmp(name, "grpc-web", 8) == 0 && (name[8] == '\0' || name[8] == '-'))
            n = 8;
        if (n < sizeof(prefix)) {
            memcpy(prefix, name, n);
            prefix[n] = '\0';
            src = prefix;
        }
    }
    for (size_t i = 0; src && i < MESH_ARRAY_LEN(known); i++)
        if (strcasecmp(src, known[i].name) == 0)
            p->protocol = known[i].proto;
    p->http = !*p->protocol || strcmp(p->protocol, "HTTP") == 0 ||
              strcmp(p->protocol, "HTTP2") == 0 || strcmp(p->protocol, "GRPC") == 0 ||
              strcmp(p->protocol, "GRPC-WEB") == 0;
    p->h2 = strcmp(p->protocol, "HTTP2") == 0 || strcmp(p->protocol, "GRPC") == 0;
}

static struct mesh_csvc *new_svc(struct mesh_cc *c)
{
    struct mesh_csvc *s = mesh_cc_alloc(c, sizeof(*s));
    if ((c->n_svcs & (c->n_svcs - 1)) == 0) {
        /* grow at powers of two, in the arena (the old block stays until the end) */
        struct mesh_csvc **v = mesh_cc_alloc(c, (c->n_svcs ? c->n_svcs * 2 : 16) * sizeof(*v));
        if (c->n_svcs)
            memcpy(v, c->svcs, c->n_svcs * sizeof(*v));
        c->svcs = v;
    }
    c->svcs[c->n_svcs++] = s;
    return s;
}

static void add_inst(struct mesh_cc *c, struct mesh_csvc *s, const char *addr, uint32_t port,
                     size_t port_idx, const struct mesh_kv *labels, size_t n_labels,
                     uint32_t weight, const char *locality)
{
    if (s->n_inst == s->cap_inst) {
        size_t cap = s->cap_inst ? s->cap_inst * 2 : 8;
        struct mesh_cinst *v = mesh_cc_alloc(c, cap * sizeof(*v));
        if (s->n_inst)
            memcpy(v, s->inst, s->n_inst * sizeof(*v));
        s->inst = v;
        s->cap_inst = cap;
    }
    s->inst[s->n_inst++] = (struct mesh_cinst){addr, port, port_idx, labels, n_labels,
                                               weight ? weight : 1, locality};
}

/*
 * An EndpointSlice endpoint names its zone only: its region is taken to be the
 * node's (a cluster is in one region).
 */
static const char *zone_locality(struct mesh_cc *c, const char *zone)
{
    if (!zone || !*zone)
        return NULL;
    if (!c->node_loc_done) {
        c->node_loc = mesh_cc_node_locality(c);
        c->node_loc_done = true;
    }
    return MESH_CC_JOIN(c, c->node_loc.region, "/", zone);
}

static void add_addr(struct mesh_cc *c, struct mesh_csvc *s, const char *ip, size_t max)
{
    const char *a = canonical_ip(c, ip);
    if (!a)
        return;
    for (size_t i = 0; i < s->n_addrs; i++)
        if (strcmp(s->addrs[i], a) == 0)
            return;
    if (s->n_addrs < max)
        s->addrs[s->n_addrs++] = a;
}

/* "ns1, ns2" from the exportTo annotation of a Service. */
static void parse_export_annotation(struct mesh_cc *c, struct mesh_csvc *s, const char *v)
{
    size_t n = 1;
    for (const char *p = v; *p; p++)
        n += *p == ',';
    s->export_to = mesh_cc_alloc(c, n * sizeof(*s->export_to));
    char *copy = mesh_cc_strdup(c, v);
    for (char *tok = copy; tok;) {
        char *next = strchr(tok, ',');
        if (next)
            *next++ = '\0';
        while (*tok == ' ' || *tok == '\t')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (*tok)
            s->export_to[s->n_export_to++] = tok;
        tok = next;
    }
}

static void add_k8s_service(struct mesh_cc *c, const struct mesh_resource *r)
{
    const struct mesh_k8s_service_spec *sp = r->typed.service;
    if (!sp) {
        mesh_cc_diag(c, MESH_DIAG_NOTE, r, "spec", "no spec: the service is left out");
        return;
    }
    if (sp->type && strcmp(sp->type, "ExternalName") == 0) {
        mesh_cc_diag(c, MESH_DIAG_WARNING, r, "spec.type",
                     "ExternalName services are not supported yet; the service is left out");
        return;
    }
    struct mesh_csvc *s = new_svc(c);
    s->source = MESH_CSVC_K8S;
    s->res = r;
    s->name = r->meta.name;
    s->ns = r->meta.namespace_;
    s->host = lower(c, MESH_CC_JOIN(c, s->name, ".", s->ns, "." MESH_DOMAIN_SUFFIX));
    const char *exp = kv_get(r->meta.annotations, r->meta.n_annotations, EXPORT_TO_ANNOTATION);
    if (exp)
        parse_export_annotation(c, s, exp);
    s->ports = mesh_cc_alloc(c, (sp->n_ports + 1) * sizeof(*s->ports));
    for (size_t i = 0; i < sp->n_ports; i++) {
        const struct mesh_k8s_service_port *kp = &sp->ports[i];
        if (kp->protocol && strcmp(kp->protocol, "TCP") != 0) {
            mesh_cc_diag(c, MESH_DIAG_NOTE, r, mesh_cc_printf(c, "spec.ports[%zu].protocol", i),
                         "%s ports are not proxied; port %d is left out", kp->protocol,
                         (int)kp->port);
            continue;
        }
        if (kp->port <= 0 || kp->port > 65535)
            continue;
        struct mesh_cport *p = &s->ports[s->n_ports++];
        p->port = (uint32_t)kp->port;
        p->name = kp->name ? kp->name : "";
        p->index = i;
        if (kp->target_port.str)
            p->target_name = kp->target_port.str;
        else if (kp->target_port.num > 0 && kp->target_port.num <= 65535)
            p->target = (uint32_t)kp->target_port.num;
        classify(p, kp->app_protocol, p->name);
    }
    size_t max_addrs = 1 + sp->n_cluster_ips;
    s->addrs = mesh_cc_alloc(c, max_addrs * sizeof(*s->addrs));
    add_addr(c, s, sp->cluster_ip, max_addrs);
    for (size_t i = 0; i < sp->n_cluster_ips; i++)
        add_addr(c, s, sp->cluster_ips[i], max_addrs);
    mesh_cmap_put(&c->k8s_by_key, MESH_CC_JOIN(c, s->ns, "/", s->name), s);
}

static bool same_name(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/*
 * The service port an Endpoints/EndpointSlice port belongs to: matched by name,
 * as kube-proxy does; a single port on both sides matches whatever the names
 * (hand-written Endpoints often leave the name out).
 */
static size_t match_port(const struct mesh_csvc *s, const char *name, size_t n_ep_ports)
{
    for (size_t i = 0; i < s->n_ports; i++)
        if (same_name(s->ports[i].name, name))
            return i;
    return s->n_ports == 1 && n_ep_ports == 1 ? 0 : SIZE_MAX;
}

static void add_slice(struct mesh_cc *c, const struct mesh_resource *r)
{
    const char *svc_name = kv_get(r->meta.labels, r->meta.n_labels, SERVICE_NAME_LABEL);
    if (!svc_name) {
        mesh_cc_diag(c, MESH_DIAG_NOTE, r, "metadata.labels",
                     "no label " SERVICE_NAME_LABEL ": the slice belongs to no Service");
        return;
    }
    struct mesh_csvc *s =
        mesh_cmap_get(&c->k8s_by_key, MESH_CC_JOIN(c, r->meta.namespace_, "/", svc_name));
    if (!s) {
        mesh_cc_diag(c, MESH_DIAG_NOTE, r, "metadata.labels." SERVICE_NAME_LABEL,
                     "no Service %s in namespace %s: the slice is not used", svc_name,
                     r->meta.namespace_);
        return;
    }
    const struct mesh_k8s_endpoint_slice *es = r->typed.endpoint_slice;
    if (es->address_type && strcmp(es->address_type, "FQDN") == 0) {
        mesh_cc_diag(c, MESH_DIAG_WARNING, r, "addressType",
                     "FQDN endpoints cannot be resolved by the data plane yet; the slice is "
                     "left out");
        return;
    }
    s->has_slices = true;
    for (size_t pi = 0; pi < es->n_ports; pi++) {
        const struct mesh_k8s_slice_port *sp = &es->ports[pi];
        if (!sp->port.set || sp->port.v == 0 || sp->port.v > 65535)
            continue;
        if (sp->protocol && strcmp(sp->protocol, "TCP") != 0)
            continue;
        size_t idx = match_port(s, sp->name, es->n_ports);
        if (idx == SIZE_MAX)
            continue;
        for (size_t e = 0; e < es->n_endpoints; e++) {
            const struct mesh_k8s_slice_endpoint *ep = &es->endpoints[e];
            /* absent "ready" means ready (Kubernetes API convention) */
            if (ep->conditions && ep->conditions->ready.set && !ep->conditions->ready.v &&
                !s->res->typed.service->publish_not_ready_addresses)
                continue;
            for (size_t a = 0; a < ep->n_addresses; a++) {
                const char *ip = canonical_ip(c, ep->addresses[a]);
                if (ip)
                    add_inst(c, s, ip, sp->port.v, idx, s->res->typed.service->selector,
                             s->res->typed.service->n_selector, 1, zone_locality(c, ep->zone));
            }
        }
    }
}

static void add_endpoints(struct mesh_cc *c, const struct mesh_resource *r)
{
    struct mesh_csvc *s = mesh_cmap_get(
        &c->k8s_by_key, MESH_CC_JOIN(c, r->meta.namespace_, "/", r->meta.name));
    if (!s) {
        mesh_cc_diag(c, MESH_DIAG_NOTE, r, NULL,
                     "no Service %s in namespace %s: these Endpoints are not used", r->meta.name,
                     r->meta.namespace_);
        return;
    }
    /* EndpointSlices are the newer, mirrored form: when a service has them they win */
    if (s->has_slices)
        return;
    const struct mesh_k8s_service_spec *sp = s->res->typed.service;
    const struct mesh_k8s_endpoints *ep = r->typed.endpoints;
    for (size_t i = 0; i < ep->n_subsets; i++) {
        const struct mesh_k8s_endpoint_subset *ss = &ep->subsets[i];
        for (size_t pi = 0; pi < ss->n_ports; pi++) {
            const struct mesh_k8s_endpoint_port *p = &ss->ports[pi];
            if (p->port <= 0 || p->port > 65535)
                continue;
            if (p->protocol && strcmp(p->protocol, "TCP") != 0)
                continue;
            size_t idx = match_port(s, p->name, ss->n_ports);
            if (idx == SIZE_MAX)
                continue;
            for (size_t a = 0; a < ss->n_addresses; a++) {
                const char *ip = canonical_ip(c, ss->addresses[a].ip);
                if (ip)
                    add_inst(c, s, ip, (uint32_t)p->port, idx, sp->selector, sp->n_selector, 1,
                             NULL);
            }
            /* notReadyAddresses receive no traffic, unless the Service publishes them */
            for (size_t a = 0; sp->publish_not_ready_addresses && a < ss->n_not_ready_addresses;
                 a++) {
                const char *ip = canonical_ip(c, ss->not_ready_addresses[a].ip);
                if (ip)
                    add_inst(c, s, ip, (uint32_t)p->port, idx, sp->selector, sp->n_selector, 1,
                             NULL);
            }
        }
    }
}

/* The endpoint port of a WorkloadEntry for service port <p>: its ports map, else the target. */
static uint32_t we_port(const struct mesh_workload_entry *we, const struct mesh_cport *p)
{
    for (size_t i = 0; i < we->n_ports; i++)
        if (p->name && strcmp(we->ports[i].key, p->name) == 0 && we->ports[i].value > 0 &&
            we->ports[i].value <= 65535)
            return we->ports[i].value;
    return p->target ? p->target : p->port;
}

static void add_workload_entry(struct mesh_cc *c, struct mesh_csvc *s,
                               const struct mesh_resource *from, const char *path,
                               const struct mesh_workload_entry *we)
{
    const char *ip = canonical_ip(c, we->address);
    if (!ip) {
        mesh_cc_diag(c, MESH_DIAG_WARNING, from, path,
                     "address '%s' is not a numeric IP: names are not resolved by the data "
                     "plane yet; the endpoint is left out",
                     we->address ? we->address : "");
        return;
    }
    /* "region/zone/subzone" as written, else the topology labels */
    const char *loc = we->locality && *we->locality
                          ? we->locality
                          : mesh_cc_labels_locality(c, we->labels, we->n_labels);
    for (size_t i = 0; i < s->n_ports; i++)
        add_inst(c, s, ip, we_port(we, &s->ports[i]), i, we->labels, we->n_labels, we->weight,
                 loc);
}

/* WorkloadEntries by namespace (key order), for the selectors of Services and ServiceEntries. */
struct we_list {
    const struct mesh_resource **v;
    size_t n;
};

static const struct we_list *entries_of(struct mesh_cc *c, const char *ns)
{
    static const struct we_list none;
    if (!c->we_by_ns.n && c->n_by_kind[MESH_KIND_WORKLOAD_ENTRY]) {
        size_t n = c->n_by_kind[MESH_KIND_WORKLOAD_ENTRY];
        /* count per namespace, then fill */
        for (size_t i = 0; i < n; i++) {
            const struct mesh_resource *r = c->by_kind[MESH_KIND_WORKLOAD_ENTRY][i];
            struct we_list *l = mesh_cmap_get(&c->we_by_ns, r->meta.namespace_);
            if (!l) {
                l = mesh_cc_alloc(c, sizeof(*l));
                mesh_cmap_put(&c->we_by_ns, r->meta.namespace_, l);
            }
            l->n++;
        }
        for (size_t i = 0; i < n; i++) {
            const struct mesh_resource *r = c->by_kind[MESH_KIND_WORKLOAD_ENTRY][i];
            struct we_list *l = mesh_cmap_get(&c->we_by_ns, r->meta.namespace_);
            if (!l->v) {
                l->v = mesh_cc_alloc(c, l->n * sizeof(*l->v));
                l->n = 0;
            }
            l->v[l->n++] = r;
        }
    }
    const struct we_list *l = mesh_cmap_get(&c->we_by_ns, ns);
    return l ? l : &none;
}

/* WorkloadEntries of <ns> whose labels match <sel>: Services and ServiceEntries select them. */
static void add_selected_entries(struct mesh_cc *c, struct mesh_csvc *s, const char *ns,
                                 const struct mesh_kv *sel, size_t n_sel)
{
    if (n_sel == 0)
        return;
    const struct we_list *l = entries_of(c, ns);
    for (size_t i = 0; i < l->n; i++) {
        const struct mesh_workload_entry *we = l->v[i]->typed.workload_entry;
        if (mesh_cc_labels_match(sel, n_sel, we->labels, we->n_labels))
            add_workload_entry(c, s, l->v[i], "spec.address", we);
    }
}

static void add_service_entry(struct mesh_cc *c, const struct mesh_resource *r)
{
    const struct mesh_service_entry *se = r->typed.service_entry;
    if (se->n_hosts == 0)
        return;
    struct mesh_cport *ports = mesh_cc_alloc(c, (se->n_ports + 1) * sizeof(*ports));
    size_t n_ports = 0;
    for (size_t i = 0; i < se->n_ports; i++) {
        const struct mesh_service_port *sp = &se->ports[i];
        if (sp->number == 0 || sp->number > 65535)
            continue;
        struct mesh_cport *p = &ports[n_ports++];
        p->port = sp->number;
        p->name = sp->name ? sp->name : "";
        p->target = sp->target_port <= 65535 ? sp->target_port : 0;
        p->index = i;
        classify(p, sp->protocol, p->name);
    }

    /* the endpoints, shared by every host of the entry */
    struct mesh_csvc proto = {.ports = ports, .n_ports = n_ports};
    const char *host0 = se->hosts[0];
    switch (se->resolution) {
    case MESH_SE_RESOLUTION_STATIC:
    case MESH_SE_RESOLUTION_DNS:
    case MESH_SE_RESOLUTION_DNS_ROUND_ROBIN:
        for (size_t i = 0; i < se->n_endpoints; i++)
            add_workload_entry(c, &proto, r, mesh_cc_path(c, "spec.endpoints", "", i, ".address"),
                               &se->endpoints[i]);
        if (se->workload_selector)
            add_selected_entries(c, &proto, r->meta.namespace_, se->workload_selector->labels,
                                 se->workload_selector->n_labels);
        if (se->resolution != MESH_SE_RESOLUTION_STATIC && se->n_endpoints == 0)
            mesh_cc_diag(c, MESH_DIAG_WARNING, r, "spec.resolution",
                         "DNS: the data plane cannot resolve %s yet; its clusters have no "
                         "endpoints (503)",
                         host0);
        break;
    case MESH_SE_RESOLUTION_NONE:
        mesh_cc_diag(c, MESH_DIAG_WARNING, r, "spec.resolution",
                     "NONE (forward to the address the application dialled) is not supported "
                     "yet; the clusters of %s have no endpoints (503)",
                     host0);
        break;
    case MESH_SE_RESOLUTION_DYNAMIC_DNS:
        mesh_cc_diag(c, MESH_DIAG_WARNING, r, "spec.resolution",
                     "DYNAMIC_DNS is not supported yet; the clusters of %s have no endpoints "
                     "(503)",
                     host0);
        break;
    }

    for (size_t h = 0; h < se->n_hosts; h++) {
        struct mesh_csvc *s = new_svc(c);
        s->source = MESH_CSVC_SE;
        s->res = r;
        s->host = lower(c, se->hosts[h]);
        s->name = s->host;
        s->ns = r->meta.namespace_;
        s->export_to = se->export_to;
        s->n_export_to = se->n_export_to;
        s->ports = ports;
        s->n_ports = n_ports;
        s->inst = proto.inst;
        s->n_inst = s->cap_inst = proto.n_inst;
        s->addrs = mesh_cc_alloc(c, (se->n_addresses + 1) * sizeof(*s->addrs));
        for (size_t i = 0; i < se->n_addresses; i++)
            add_addr(c, s, se->addresses[i], se->n_addresses); /* CIDRs are not hosts */
    }
}

void mesh_cc_build_registry(struct mesh_cc *c)
{
    for (size_t i = 0; i < c->n_by_kind[MESH_KIND_SERVICE]; i++)
        add_k8s_service(c, c->by_kind[MESH_KIND_SERVICE][i]);
    for (size_t i = 0; i < c->n_by_kind[MESH_KIND_ENDPOINT_SLICE]; i++)
        add_slice(c, c->by_kind[MESH_KIND_ENDPOINT_SLICE][i]);
    for (size_t i = 0; i < c->n_by_kind[MESH_KIND_ENDPOINTS]; i++)
        add_endpoints(c, c->by_kind[MESH_KIND_ENDPOINTS][i]);
    /* Kubernetes Services select WorkloadEntries too (VMs behind a Service) */
    size_t n_k8s = c->n_svcs;
    if (c->n_by_kind[MESH_KIND_WORKLOAD_ENTRY]) {
        for (size_t i = 0; i < n_k8s; i++) {
            struct mesh_csvc *s = c->svcs[i];
            const struct mesh_k8s_service_spec *sp = s->res->typed.service;
            add_selected_entries(c, s, s->ns, sp->selector, sp->n_selector);
        }
    }
    for (size_t i = 0; i < c->n_by_kind[MESH_KIND_SERVICE_ENTRY]; i++)
        add_service_entry(c, c->by_kind[MESH_KIND_SERVICE_ENTRY][i]);
    for (size_t i = 0; i < c->n_svcs; i++)
        if (!mesh_cmap_get(&c->all_hosts, c->svcs[i]->host))
            mesh_cmap_put(&c->all_hosts, c->svcs[i]->host, c->svcs[i]);
    mesh_cc_assign_vips(c);
}

/* ---- Virtual IPs ---- */

uint32_t mesh_cc_vip_home(const char *host)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)host; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    return (uint32_t)(h % MESH_VIP_SLOTS) + 1;
}

/* The slot of an address written in 240.240.0.0/16, or 0. */
static uint32_t vip_slot_of(const char *a)
{
    struct in_addr in;
    if (inet_pton(AF_INET, a, &in) != 1)
        return 0;
    uint32_t v = ntohl(in.s_addr);
    return (v >> 16) == ((240u << 8) | 240u) ? (v & 0xffffu) : 0;
}

static bool wants_vip(const struct mesh_csvc *s)
{
    if (s->n_addrs || strchr(s->host, '*'))
        return false;
    /* headless: clients get the endpoints' addresses */
    if (s->source == MESH_CSVC_K8S && s->res->typed.service->cluster_ip &&
        strcmp(s->res->typed.service->cluster_ip, "None") == 0)
        return false;
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Why a hash and not an allocation table: the compiler is a pure function of
 * the resource set (meshd ctl snapshot gives what the control plane pushes),
 * and a name keeps its address across restarts with nothing stored. A host
 * moves only when a host sorting before it newly lands on its probe path
 * (about n/65534 of the time per new service); addresses given explicitly
 * never move.
 */
void mesh_cc_assign_vips(struct mesh_cc *c)
{
    uint64_t *taken = NULL;
    struct mesh_cmap want = {0};
    const char **hosts = NULL;
    size_t n_hosts = 0;
    for (size_t i = 0; i < c->n_svcs; i++) {
        struct mesh_csvc *s = c->svcs[i];
        if (s->n_addrs) {
            s->vip = s->addrs[0];
            continue;
        }
        if (!wants_vip(s) || mesh_cmap_get(&want, s->host))
            continue;
        mesh_cmap_put(&want, s->host, (void *)s->host);
        if (!hosts)
            hosts = mesh_cc_alloc(c, (c->n_svcs + 1) * sizeof(*hosts));
        hosts[n_hosts++] = s->host;
    }
    if (!n_hosts) {
        mesh_cmap_free(&want);
        return;
    }
    taken = mesh_cc_alloc(c, (MESH_VIP_SLOTS + 2 + 63) / 64 * sizeof(*taken));
    memset(taken, 0, (MESH_VIP_SLOTS + 2 + 63) / 64 * sizeof(*taken));
    size_t n_free = MESH_VIP_SLOTS;
    for (size_t i = 0; i < c->n_svcs; i++)
        for (size_t a = 0; a < c->svcs[i]->n_addrs; a++) {
            uint32_t slot = vip_slot_of(c->svcs[i]->addrs[a]);
            if (slot >= 1 && slot <= MESH_VIP_SLOTS && !(taken[slot / 64] & (1ull << (slot % 64))))
                n_free--;
            taken[slot / 64] |= 1ull << (slot % 64);
        }
    qsort(hosts, n_hosts, sizeof(*hosts), cmp_str);
    for (size_t i = 0; i < n_hosts && n_free; i++, n_free--) {
        uint32_t slot = mesh_cc_vip_home(hosts[i]);
        while (taken[slot / 64] & (1ull << (slot % 64)))
            slot = slot % MESH_VIP_SLOTS + 1;
        taken[slot / 64] |= 1ull << (slot % 64);
        char buf[24];
        snprintf(buf, sizeof(buf), MESH_VIP_PREFIX "%u.%u", slot >> 8, slot & 0xffu);
        mesh_cmap_put(&want, hosts[i], mesh_cc_strdup(c, buf));
    }
    for (size_t i = 0; i < c->n_svcs; i++) {
        struct mesh_csvc *s = c->svcs[i];
        if (s->n_addrs || !wants_vip(s))
            continue;
        const char *vip = mesh_cmap_get(&want, s->host);
        if (vip == s->host) { /* the range is full */
            mesh_cc_diag(c, MESH_DIAG_WARNING, s->res, NULL,
                         "no virtual IP left in 240.240.0.0/16 for %s", s->host);
            continue;
        }
        const char **addrs = mesh_cc_alloc(c, sizeof(*addrs));
        addrs[0] = vip;
        s->addrs = addrs;
        s->n_addrs = 1;
        s->vip = vip;
        s->vip_allocated = true;
    }
    mesh_cmap_free(&want);
}

/* ---- What the node sees ---- */

/*
 * The Sidecar of a workload: one in its namespace whose workloadSelector
 * matches its labels, else the namespace's Sidecar without selector, else the
 * root namespace's.
 */
static const struct mesh_resource *pick_sidecar(struct mesh_cc *c)
{
    const struct mesh_resource *with_sel = NULL, *ns_default = NULL, *root = NULL;
    for (size_t i = 0; i < c->n_by_kind[MESH_KIND_SIDECAR]; i++) {
        const struct mesh_resource *r = c->by_kind[MESH_KIND_SIDECAR][i];
        const struct mesh_sidecar *sc = r->typed.sidecar;
        bool has_sel = sc->workload_selector && sc->workload_selector->n_labels > 0;
        const struct mesh_resource **slot = NULL;
        if (strcmp(r->meta.namespace_, c->node->namespace_) == 0) {
            if (!has_sel)
                slot = &ns_default;
            else if (mesh_cc_labels_match(sc->workload_selector->labels,
                                          sc->workload_selector->n_labels, c->node->labels,
                                          c->node->n_labels))
                slot = &with_sel;
        } else if (strcmp(r->meta.namespace_, MESH_ROOT_NAMESPACE) == 0 && !has_sel) {
            slot = &root;
        }
        if (!slot)
            continue;
        if (*slot)
            mesh_cc_diag(c, MESH_DIAG_WARNING, r, has_sel ? "spec.workloadSelector" : NULL,
                         "Sidecar %s/%s applies to the same workloads; only that one is used",
                         (*slot)->meta.namespace_, (*slot)->meta.name);
        else
            *slot = r;
    }
    return with_sel ? with_sel : ns_default ? ns_default : root;
}

bool mesh_cc_sidecar_allows(struct mesh_cc *c, const char *ns, const char *host)
{
    /* a Sidecar without egress (only outboundTrafficPolicy, say) sees everything, as with
     * Istio's default egress listener (hosts: every namespace, every host) */
    if (!c->sidecar || c->sidecar->typed.sidecar->n_egress == 0)
        return true;
    const struct mesh_sidecar *sc = c->sidecar->typed.sidecar;
    for (size_t i = 0; i < sc->n_egress; i++) {
        const struct mesh_egress_listener *eg = &sc->egress[i];
        for (size_t j = 0; j < eg->n_hosts; j++) {
            const char *e = eg->hosts[j];
            const char *slash = strchr(e, '/');
            const char *h = slash ? slash + 1 : e;
            size_t nlen = slash ? (size_t)(slash - e) : 1;
            const char *nsp = slash ? e : "*";
            bool ns_ok;
            if (nlen == 1 && nsp[0] == '*')
                ns_ok = true;
            else if (nlen == 1 && nsp[0] == '~')
                ns_ok = false;
            /* "." is the workload's namespace, also for the root namespace's default */
            else if (nlen == 1 && nsp[0] == '.')
                ns_ok = strcmp(ns, c->node->namespace_) == 0;
            else
                ns_ok = strlen(ns) == nlen && strncmp(ns, nsp, nlen) == 0;
            if (ns_ok && mesh_cc_host_match(mesh_cc_expand_host(c, h, ns), host))
                return true;
        }
    }
    return false;
}

static int cmp_svc(const void *a, const void *b)
{
    const struct mesh_csvc *x = *(const struct mesh_csvc *const *)a;
    const struct mesh_csvc *y = *(const struct mesh_csvc *const *)b;
    int d = strcmp(x->host, y->host);
    if (d)
        return d;
    /* one host, several definitions: the node's namespace first, then Kubernetes, then name */
    if (x->local != y->local)
        return x->local ? -1 : 1;
    if (x->source != y->source)
        return x->source < y->source ? -1 : 1;
    return strcmp(x->res->key, y->res->key);
}

void mesh_cc_select_visible(struct mesh_cc *c)
{
    c->sidecar = c->node->role == MESH_NODE_SIDECAR ? pick_sidecar(c) : NULL;
    for (size_t i = 0; i < c->n_svcs; i++)
        c->svcs[i]->local = strcmp(c->svcs[i]->ns, c->node->namespace_) == 0;
    if (c->n_svcs)
        qsort(c->svcs, c->n_svcs, sizeof(*c->svcs), cmp_svc);
    c->vis = mesh_cc_alloc(c, (c->n_svcs + 1) * sizeof(*c->vis));
    for (size_t i = 0; i < c->n_svcs; i++) {
        struct mesh_csvc *s = c->svcs[i];
        if (!mesh_cc_exported(s->ns, s->export_to, s->n_export_to, c->node->namespace_))
            continue;
        if (!mesh_cc_sidecar_allows(c, s->ns, s->host))
            continue;
        struct mesh_csvc *have = mesh_cmap_get(&c->visible, s->host);
        if (have) {
            mesh_cc_diag(c, MESH_DIAG_WARNING, s->res, NULL,
                         "host %s is also defined by %s %s/%s, which this proxy uses instead",
                         s->host, mesh_kind_name(have->res->kind), have->res->meta.namespace_,
                         have->res->meta.name);
            continue;
        }
        s->visible = true;
        mesh_cmap_put(&c->visible, s->host, s);
        c->vis[c->n_vis++] = s;
    }
}
