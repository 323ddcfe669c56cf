/*
 * Inside the compiler (compile*.c only): the service registry built from a
 * resource set, the per-compile context and a small string map.
 *
 * Everything here lives in one arena per mesh_compile() call and is freed when
 * it returns; the resources are borrowed from the set.
 */
#ifndef MESH_CORE_COMPILE_INT_H
#define MESH_CORE_COMPILE_INT_H

#include <jansson.h>
#include "core/common.h"
#include "core/compile.h"
#include "core/diag.h"
#include "core/resource.h"

#define MESH_ROOT_NAMESPACE "istio-system"
#define MESH_DOMAIN_SUFFIX "svc.cluster.local"

/* ---- String map: open addressing, keys borrowed (arena or resource strings) ---- */

struct mesh_cmap_slot {
    const char *key;
    uint64_t hash;
    void *val;
};

struct mesh_cmap {
    struct mesh_cmap_slot *slots; /* malloc'ed; mesh_cmap_free() */
    size_t cap, n;
};

uint64_t mesh_cmap_hash(const char *s);
void *mesh_cmap_get(const struct mesh_cmap *m, const char *key);
/** Inserts or replaces. */
void mesh_cmap_put(struct mesh_cmap *m, const char *key, void *val);
void mesh_cmap_free(struct mesh_cmap *m);

/* ---- Registry ---- */

enum mesh_csvc_source {
    MESH_CSVC_K8S = 0,     /* Kubernetes Service */
    MESH_CSVC_SE = 1,      /* one host of a ServiceEntry */
};

struct mesh_cport {
    uint32_t port;
    const char *name;              /* "" when unnamed */
    const char *protocol;          /* "HTTP", "HTTP2", "GRPC", "TCP", "HTTPS"... or "" (sniffed) */
    bool http;                     /* served by the HTTP outbound listener */
    bool h2;                       /* HTTP/2 towards the endpoints (http2, grpc) */
    uint32_t target;               /* numeric target port; 0 = same as <port> */
    const char *target_name;       /* named targetPort (Kubernetes), else NULL */
    size_t index;                  /* position in the resource (for paths) */
};

struct mesh_cinst {                /* one endpoint of one service port */
    const char *address;           /* canonical numeric IP */
    uint32_t port;                 /* endpoint port */
    size_t port_idx;               /* index in the service's <ports> */
    const struct mesh_kv *labels;
    size_t n_labels;
    uint32_t weight;               /* >= 1 */
    const char *locality;          /* "region/zone/subzone" or NULL when unknown */
};

struct mesh_csvc {
    const char *host;              /* FQDN (K8s) or the ServiceEntry host, lowercase */
    const char *name;              /* K8s: the Service name; SE: the host */
    const char *ns;
    enum mesh_csvc_source source;
    const struct mesh_resource *res;
    const char **export_to;
    size_t n_export_to;
    struct mesh_cport *ports;
    size_t n_ports;
    const char **addrs;            /* cluster IPs, ServiceEntry addresses (IPs only), then <vip>
                                      when it was allocated */
    size_t n_addrs;
    /*
     * The virtual IP clients dial: the first explicit address, else one
     * allocated in 240.240.0.0/16 (mesh_cc_assign_vips); NULL for headless
     * Services (clusterIP: None) and wildcard hosts.
     */
    const char *vip;
    bool vip_allocated;
    struct mesh_cinst *inst;
    size_t n_inst, cap_inst;
    bool has_slices;               /* endpoints came from EndpointSlices (Endpoints ignored) */
    bool visible;                  /* chosen for this node (exportTo, Sidecar, host dedupe) */
    bool local;                    /* in the node's namespace (sort order) */
};

/* ---- Compile context ---- */

/* The node's locality, split (compile_locality.c); all "" when unknown. */
struct mesh_clocality {
    const char *region, *zone, *subzone;
    bool known;
};


struct mesh_cc {
    const struct mesh_resource_set *set;
    const struct mesh_node *node;
    struct mesh_diags *diags;
    struct mesh_arena *arena;
    struct mesh_cmap warned;       /* "subject|path|msg" already reported */

    /* resources by kind, sorted by key (deterministic whatever the load order) */
    const struct mesh_resource **by_kind[MESH_KIND_COUNT];
    size_t n_by_kind[MESH_KIND_COUNT];

    /* registry */
    struct mesh_csvc **svcs;       /* every service, sorted by host then key */
    size_t n_svcs;
    struct mesh_cmap k8s_by_key;   /* "ns/name" -> K8s mesh_csvc */
    struct mesh_cmap we_by_ns;     /* namespace -> WorkloadEntries (compile_registry.c) */
    struct mesh_cmap visible;      /* host -> the visible mesh_csvc for that host */
    struct mesh_csvc **vis;        /* visible services sorted by host */
    size_t n_vis;

    const struct mesh_resource *sidecar; /* the Sidecar that scopes this node, or NULL */

    /* output */
    struct mesh_cmap clusters;     /* name -> json_t cluster (borrowed from <cluster_arr>) */
    json_t *cluster_list;          /* every cluster object, sorted at the end */
    struct mesh_cmap dr_warned;    /* DestinationRule key -> itself once its fields were checked */
    struct dr_index *drx;          /* DestinationRules by host (compile.c) */
    struct mesh_cmap all_hosts;    /* host -> a mesh_csvc, visible or not */
    struct mesh_cmap *free_maps[8]; /* maps of the other files, freed with the context */
    struct mesh_clocality node_loc; /* cache of mesh_cc_node_locality() for the registry */
    bool node_loc_done;
    size_t n_free_maps;
    struct mesh_cmap meshed;       /* address -> itself: endpoints with a sidecar (compile.c) */
    bool meshed_done;
};

/* compile.c */
/** <m> (allocated in the arena) is freed with the context. */
void mesh_cc_own_map(struct mesh_cc *c, struct mesh_cmap *m);
void *mesh_cc_alloc(struct mesh_cc *c, size_t size);
char *mesh_cc_strdup(struct mesh_cc *c, const char *s);
char *mesh_cc_printf(struct mesh_cc *c, const char *fmt, ...) MESH_PRINTF(2, 3);
/** The <n> strings of <parts> joined: printf costs too much on the per-service paths. */
char *mesh_cc_join(struct mesh_cc *c, const char *const *parts, size_t n);
#define MESH_CC_JOIN(c, ...)                                                                       \
    mesh_cc_join((c), (const char *const[]){__VA_ARGS__},                                         \
                 sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
/** "<a><b>[<i>]<d>": a field path such as "spec.http[2].route". */
char *mesh_cc_path(struct mesh_cc *c, const char *a, const char *b, size_t i, const char *d);
/** Decimal text of <v> into <buf> (at least 24 bytes); returns <buf>. */
char *mesh_cc_utoa(char *buf, uint64_t v);
/** Warning (or note) about resource <r> (may be NULL), reported once per text. */
void mesh_cc_diag(struct mesh_cc *c, enum mesh_diag_severity sev, const struct mesh_resource *r,
                  const char *path, const char *fmt, ...) MESH_PRINTF(5, 6);
bool mesh_cc_labels_match(const struct mesh_kv *sel, size_t n_sel, const struct mesh_kv *labels,
                          size_t n_labels);
/** Whether an object of namespace <ns> with <export_to> is visible from namespace <from>. */
bool mesh_cc_exported(const char *ns, const char **export_to, size_t n_export_to,
                      const char *from);
/** Istio host expansion: a name without dots becomes NAME.<ns>.svc.cluster.local. */
const char *mesh_cc_expand_host(struct mesh_cc *c, const char *host, const char *ns);
/** Whether host pattern <pat> ("*", "*.x.com" or a name) covers host <h> (maybe a wildcard). */
bool mesh_cc_host_match(const char *pat, const char *h);
/** "outbound|PORT|SUBSET|HOST": the cluster, built on first use. Returns its name. */
const char *mesh_cc_cluster(struct mesh_cc *c, const struct mesh_csvc *svc, const char *host,
                            uint32_t port, const char *subset, const struct mesh_resource *from,
                            const char *from_path);
/** The DestinationRule that applies to <svc> for this node, or NULL. */
const struct mesh_resource *mesh_cc_destination_rule(struct mesh_cc *c,
                                                     const struct mesh_csvc *svc);

/* Where routes are being compiled for (compile_route.c and the route helpers). */
struct mesh_crctx {
    uint32_t match_port;           /* the port requests arrive on (match.port); 0 = any */
    uint32_t dest_port;            /* port for a destination without one; 0 = none */
    const struct mesh_resource *gw; /* the Gateway when compiling a gateway, else NULL */
};

/* The traffic policy of one cluster after Istio's merge (MergeTrafficPolicy). */
struct mesh_cpolicy {
    const struct mesh_load_balancer *lb;
    const struct mesh_connection_pool *pool;
    const struct mesh_outlier_detection *outlier;
};

/* compile_policy.c */
/** Every DestinationRule field the snapshot cannot express, warned once per rule. */
void mesh_cc_warn_dr_once(struct mesh_cc *c, const struct mesh_resource *dr);
/** The policy of port <port> of a subset (either may be NULL). */
struct mesh_cpolicy mesh_cc_effective_policy(const struct mesh_traffic_policy *host,
                                             const struct mesh_traffic_policy *subset,
                                             uint32_t port);
/** A cluster object with the policy's fields (lb, pool, outlier detection); no endpoints. */
json_t *mesh_cc_cluster_json(const char *name, bool h2, const struct mesh_cpolicy *pol);

/* compile_locality.c */
/** The node's locality: node->locality, else its topology labels. */
struct mesh_clocality mesh_cc_node_locality(struct mesh_cc *c);
/** An endpoint's locality from its labels (istio-locality, topology.*), or NULL. */
const char *mesh_cc_labels_locality(struct mesh_cc *c, const struct mesh_kv *labels, size_t n);
/**
 * Applies locality load balancing (failover priorities, distribute weights,
 * failoverPriority) to the endpoint objects of <eps> (each has "locality" when
 * known and may carry its "labels" in <labels>[i]), as Istio does for a cluster
 * whose policy is <pol>. Endpoints a distribute rule leaves out are removed.
 */
void mesh_cc_apply_locality(struct mesh_cc *c, const struct mesh_resource *dr,
                            const struct mesh_cpolicy *pol, json_t *eps,
                            const struct mesh_cinst *const *inst);

/* compile_match.c */
/**
 * The snapshot "match" of HTTPMatchRequest <m> at field path <mp>, or NULL
 * (with a warning ending in <left_out>) when it cannot be expressed.
 */
json_t *mesh_cc_http_match(struct mesh_cc *c, const struct mesh_resource *r, const char *mp,
                           const struct mesh_http_match *m, const char *left_out);

/* compile_action.c */
/**
 * "request_headers"/"response_headers" operations, or NULL when nothing
 * remains. <route_request>: the route's request operations, whose "host" set
 * becomes the authority rewrite (mesh_cc_route_extras) instead.
 */
json_t *mesh_cc_header_ops(struct mesh_cc *c, const struct mesh_resource *r, const char *path,
                           const struct mesh_header_operations *ops, bool route_request);
/** The redirect object of spec.http[i].redirect, or NULL (warned: the route is left out). */
json_t *mesh_cc_redirect(struct mesh_cc *c, const struct mesh_crctx *x,
                         const struct mesh_resource *r, const char *p,
                         const struct mesh_http_redirect *rd);
/** Istio's retry policy of a route: the one given, else the mesh default; NULL = none. */
json_t *mesh_cc_retry(struct mesh_cc *c, const struct mesh_resource *r, const char *p,
                      const struct mesh_http_retry *rt, bool consistent_hash);
/** Fields of the route object besides match and action: cors, fault, header operations. */
void mesh_cc_route_filters(struct mesh_cc *c, const struct mesh_resource *r, const char *p,
                           const struct mesh_http_route *h, json_t *rt);
/** "rewrite" and "mirrors" of a forwarding route into <action>. */
void mesh_cc_route_extras(struct mesh_cc *c, const struct mesh_crctx *x,
                          const struct mesh_resource *r, const char *p,
                          const struct mesh_http_route *h, json_t *action);
/** Destination port per Istio: the one given, the service's only port, or the request's. */
uint32_t mesh_cc_dest_port(const struct mesh_crctx *x, const struct mesh_csvc *svc,
                           const struct mesh_destination *d);

/* compile_l4.c */
bool mesh_cc_port_is_tls(const struct mesh_cport *p);
/**
 * Appends to <out> the tcp_routes of the tls (when <tls>) and tcp sections of
 * VirtualService <r>, each match being <base> plus the entry's conditions;
 * <host> (NULL on gateways) narrows sniHosts to one service.
 */
void mesh_cc_l4_routes(struct mesh_cc *c, const struct mesh_crctx *x,
                       const struct mesh_resource *r, const char *host, bool tls, json_t *base,
                       json_t *out);
/** A sidecar's tcp_routes for TCP/TLS port <p> of <s> (VirtualService <vs> or NULL). */
void mesh_cc_sidecar_l4(struct mesh_cc *c, const struct mesh_csvc *s, const struct mesh_cport *p,
                        const struct mesh_resource *vs, json_t *out);
/** Appends to <out> the tcp_routes of TCP/TLS server <srv> of Gateway <gw> on <port>. */
void mesh_cc_gateway_tcp_routes(struct mesh_cc *c, const struct mesh_resource *gw,
                                const struct mesh_server *srv, uint32_t port, json_t *out);

/* compile_registry.c */
/** Builds c->svcs from Services, Endpoints, EndpointSlices, ServiceEntries, WorkloadEntries. */
void mesh_cc_build_registry(struct mesh_cc *c);
/** Picks the node's Sidecar and the services it sees: c->visible, c->vis. */
void mesh_cc_select_visible(struct mesh_cc *c);
/** Whether the node's Sidecar (if any) lets it reach <host> of namespace <ns>. */
bool mesh_cc_sidecar_allows(struct mesh_cc *c, const char *ns, const char *host);

/* Virtual IPs allocated in 240.240.0.0/16: slots 1..65534 (x.x.0.0 and x.x.255.255 unused). */
#define MESH_VIP_PREFIX "240.240."
#define MESH_VIP_SLOTS 65534u
/** The first slot tried for <host>: a hash of the name alone (FNV-1a), 1..MESH_VIP_SLOTS. */
uint32_t mesh_cc_vip_home(const char *host);
/**
 * Gives every service its <vip> (called at the end of mesh_cc_build_registry):
 * hosts without an address, in name order, take their home slot or the next
 * free one (linear probing, wrapping), skipping addresses given explicitly.
 * Computed over every service of the set, not what one node sees, so all
 * proxies agree.
 */
void mesh_cc_assign_vips(struct mesh_cc *c);

/* compile_inbound.c */
/**
 * The sidecar's inbound listener for the node's own workload (docs/compile.md
 * "Inbound"): appends it to <listeners>, its route config to <route_configs>
 * and its "inbound|PORT||" clusters. Nothing when no service selects the node.
 */
void mesh_cc_inbound(struct mesh_cc *c, json_t *listeners, json_t *route_configs);
/** Whether a sidecar serves <addr> (a registered WorkloadEntry's address) or <labels> say so. */
bool mesh_cc_inst_meshed(struct mesh_cc *c, const struct mesh_cinst *e);

/* compile_dns.c */
/**
 * The snapshot's "dns" table for the visible services: [{"name", "addresses"}]
 * sorted by name (docs/snapshot.md "dns").
 */
json_t *mesh_cc_dns(struct mesh_cc *c);

/* compile_outbound.c */
/** The node's outbound traffic policy: its Sidecar's, else the mesh-wide default. */
enum mesh_outbound_mode mesh_cc_outbound_mode(struct mesh_cc *c);
/** "unmatched" of the sidecar's outbound listener <listener> (and the PassthroughCluster). */
void mesh_cc_outbound_unmatched(struct mesh_cc *c, json_t *listener);

/* compile_route.c */
/**
 * The sidecar's outbound route config (virtual hosts for every visible host)
 * and, in <*tcp_routes> (NULL when none), the tcp_routes of its TCP/TLS ports.
 */
json_t *mesh_cc_sidecar_routes(struct mesh_cc *c, json_t **tcp_routes);
/** Whether a gateways list (absent = ["mesh"]) includes <gw> (NULL = the mesh). */
bool mesh_cc_gateways_include(const char **gws, size_t n, const char *vs_ns,
                              const struct mesh_resource *gw);
/** A gateway's listeners and route configs, appended to the two arrays. */
void mesh_cc_gateway(struct mesh_cc *c, json_t *listeners, json_t *route_configs);

#endif /* MESH_CORE_COMPILE_INT_H */
