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
    const char **addrs;            /* cluster IPs, ServiceEntry addresses (IPs only) */
    size_t n_addrs;
    struct mesh_cinst *inst;
    size_t n_inst, cap_inst;
    bool has_slices;               /* endpoints came from EndpointSlices (Endpoints ignored) */
    bool visible;                  /* chosen for this node (exportTo, Sidecar, host dedupe) */
    bool local;                    /* in the node's namespace (sort order) */
};

/* ---- Compile context ---- */

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
    size_t n_free_maps;
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

/* compile_registry.c */
/** Builds c->svcs from Services, Endpoints, EndpointSlices, ServiceEntries, WorkloadEntries. */
void mesh_cc_build_registry(struct mesh_cc *c);
/** Picks the node's Sidecar and the services it sees: c->visible, c->vis. */
void mesh_cc_select_visible(struct mesh_cc *c);
/** Whether the node's Sidecar (if any) lets it reach <host> of namespace <ns>. */
bool mesh_cc_sidecar_allows(struct mesh_cc *c, const char *ns, const char *host);

/* compile_route.c */
/** The sidecar's outbound route config (virtual hosts for every visible host). */
json_t *mesh_cc_sidecar_routes(struct mesh_cc *c);
/** A gateway's listeners and route configs, appended to the two arrays. */
void mesh_cc_gateway(struct mesh_cc *c, json_t *listeners, json_t *route_configs);

#endif /* MESH_CORE_COMPILE_INT_H */
